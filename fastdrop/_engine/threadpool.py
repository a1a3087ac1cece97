"""fastdrop's threads as threadpoolctl sees them.

threadpoolctl finds the thread pools of a process through the shared libraries loaded in
it. The controller that :func:`register` gives it recognises fastdrop's compiled extension
(``fastdrop/_cy/kernels*``) by the symbol ``fastdrop_pool_workers``, which only it
exports, and reads and sets fastdrop's process-wide thread count, whichever backend runs
the calls. So ``threadpoolctl.threadpool_info()`` lists fastdrop (``user_api`` and
``internal_api`` ``"fastdrop"``) from the moment it is imported, and
``threadpoolctl.threadpool_limits(n)`` limits it, like ``fastdrop.set_num_threads(n)``,
until the block ends.
"""

from __future__ import annotations

import re
from importlib import metadata

from fastdrop._engine import backends as _backends
from fastdrop._engine import threads as _threads
from fastdrop._version import version

# threadpoolctl takes controllers from 3.2 on, and checks their symbols from 3.3 on
# (without that check this controller would claim any library named "kernels...").
SINCE = (3, 3)

_registered = False


def register() -> None:
    """Give threadpoolctl a controller of fastdrop's threads, once, where threadpoolctl
    3.3 or later is installed (else nothing: older ones cannot take it), and load the
    library it looks for."""
    global _registered
    if _registered:
        return
    _registered = True
    try:
        installed = metadata.version("threadpoolctl")
    except metadata.PackageNotFoundError:
        return
    if tuple(int(part) for part in re.findall(r"\d+", installed)[:2]) < SINCE:
        return
    from threadpoolctl import LibController
    from threadpoolctl import register as register_controller

    class FastdropController(LibController):
        """threadpoolctl's handle on fastdrop's thread count."""

        user_api = "fastdrop"
        internal_api = "fastdrop"
        filename_prefixes = ("kernels",)
        check_symbols = ("fastdrop_pool_workers",)

        def get_num_threads(self) -> int:
            try:
                return _threads.default()
            except ValueError:  # a bad FASTDROP_NUM_THREADS: fastdrop's own calls report it
                return _threads.cores()

        def set_num_threads(self, num_threads: int) -> None:
            _threads.set_num_threads(num_threads)

        def get_version(self) -> str:
            return version

    register_controller(FastdropController)
    _backends.load("cython")
