"""The Numba backend: JIT kernels, compiled on first use and cached on disk, run on a
thread pool of fastdrop's own (``fastdrop._numba.pool``), so Numba's threading layer and
its other global settings are left as the user has them."""

from fastdrop._numba.kernels import add, apply, backward, forward, gaussian, mask, scale
from fastdrop._numba.philox import philox4x32
from fastdrop._numba.pool import workers as pool_workers

# Calls that produce fewer elements run on the calling thread alone: waking a worker
# would cost more than it saves. `python -m fastdrop --crossover` measures it; on the
# project's 2-core machine (two runs), the dropout kernel on two threads took 1.28-1.69x
# the time of one up to 2**16 float32 elements, 0.86-0.91x at 2**17 and 0.71-0.88x at
# 2**18. From 2**19 on it varied from run to run, 0.57-0.62x in one and 1.03-1.12x in the
# other: a worker is a Python thread, woken through a queue and the GIL, and at times
# starts too late to take a part.
PARALLEL_MIN = 1 << 18

__all__ = [
    "PARALLEL_MIN",
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
