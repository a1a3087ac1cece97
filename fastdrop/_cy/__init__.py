"""The Cython backend, compiled at install time, with a thread pool of its own."""

from fastdrop._cy.kernels import (
    SIMD_LEVELS,
    add,
    apply,
    backward,
    common,
    forward,
    gaussian,
    mask,
    philox4x32,
    pool_workers,
    scale,
    use_simd,
)

# Calls that produce fewer elements run on the calling thread alone: waking a worker
# would cost more than it saves. `python -m fastdrop --crossover` measures it; on the
# project's 2-core machine (two runs), the dropout kernel on two threads took 1.06-1.08x
# the time of one at 2**14 float32 elements, 0.90-1.03x at 2**15, 0.79-0.86x at 2**16 and
# 0.52-0.61x from 2**18 on, called back to back or right after a NumPy matrix product.
PARALLEL_MIN = 1 << 16

__all__ = [
    "PARALLEL_MIN",
    "SIMD_LEVELS",
    "add",
    "apply",
    "backward",
    "common",
    "forward",
    "gaussian",
    "mask",
    "philox4x32",
    "pool_workers",
    "scale",
    "use_simd",
]
