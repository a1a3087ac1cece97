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

__all__ = [
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
