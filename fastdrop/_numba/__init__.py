"""The Numba backend: JIT kernels, compiled on first use and cached on disk, run on a
thread pool of fastdrop's own (``fastdrop._numba.pool``), so Numba's threading layer and
its other global settings are left as the user has them."""

from fastdrop._numba.kernels import add, apply, backward, forward, gaussian, mask, scale
from fastdrop._numba.philox import philox4x32
from fastdrop._numba.pool import workers as pool_workers

__all__ = [
    "add",
    "apply",
    "backward",
    "forward",
    "gaussian",
    "mask",
    "philox4x32",
    "pool_workers",
    "scale",
]
