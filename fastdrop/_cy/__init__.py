"""The Cython backend, compiled at install time, with a thread pool of its own."""

from fastdrop._cy.kernels import (
    add,
    apply,
    backward,
    forward,
    gaussian,
    mask,
    philox4x32,
    pool_workers,
    scale,
    small,
    use_simd,
)

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
    "small",
    "use_simd",
]
