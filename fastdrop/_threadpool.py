"""fastdrop's threads as threadpoolctl sees them.

threadpoolctl finds the thread pools of a process through the shared libraries loaded in
it. :class:`FastdropController` recognises fastdrop's compiled extension
(``fastdrop/_cy/kernels*``) by the symbol ``fastdrop_pool_workers``, which only it
exports, and reads and sets fastdrop's process-wide thread count, whichever backend runs
the calls. So ``threadpoolctl.threadpool_info()`` lists fastdrop (``user_api`` and
``internal_api`` ``"fastdrop"``) from the moment it is imported, and
``threadpoolctl.threadpool_limits(n)`` limits it, like ``fastdrop.set_num_threads(n)``,
until the block ends. Imported by ``fastdrop`` when threadpoolctl is installed.
"""

from __future__ import annotations

from threadpoolctl import LibController, register

from fastdrop import _backends, _threads
from fastdrop._version import version


class FastdropController(LibController):
    """threadpoolctl's handle on fastdrop's thread count."""

    user_api = "fastdrop"
    internal_api = "fastdrop"
    filename_prefixes = ("kernels",)
    check_symbols = ("fastdrop_pool_workers",)

    def get_num_threads(self) -> int:
        return _threads.default()

    def set_num_threads(self, num_threads: int) -> None:
        _threads.set_num_threads(num_threads)

    def get_version(self) -> str:
        return version


register(FastdropController)
_backends.load("cython")  # the library threadpoolctl looks for
