"""The Numba backend: parallel JIT kernels, compiled on first use and cached on disk.

Numba's default ``workqueue`` threading layer aborts the process when two Python threads
run parallel code at once, so a thread-safe layer (OpenMP or TBB) is chosen here, before
anything is compiled, unless the user has picked one explicitly.
"""

import numba

if numba.config.THREADING_LAYER == "default":
    numba.config.THREADING_LAYER = "threadsafe"

from fastdrop._numba.kernels import add, apply, backward, forward, gaussian, mask, scale
from fastdrop._numba.philox import philox4x32

__all__ = ["add", "apply", "backward", "forward", "gaussian", "mask", "philox4x32", "scale"]
