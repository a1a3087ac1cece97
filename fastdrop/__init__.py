"""fastdrop: fast, reproducible, NaN-safe dropout for CPUs.

Every mask is a pure function of ``(seed, offset, p, shape)``, drawn with Philox4x32-10,
and identical on every backend (Numba, Cython/OpenMP, NumPy), thread count and layout.
"""

from fastdrop import random
from fastdrop._api import bernoulli_mask, dropout, dropout_backward
from fastdrop._backends import (
    available_backends,
    get_backend,
    get_num_threads,
    set_backend,
    set_num_threads,
    threads,
    use_backend,
)
from fastdrop._version import version as __version__  # noqa: F401  (set at build time)

__all__ = [
    "available_backends",
    "bernoulli_mask",
    "dropout",
    "dropout_backward",
    "get_backend",
    "get_num_threads",
    "random",
    "set_backend",
    "set_num_threads",
    "threads",
    "use_backend",
]
