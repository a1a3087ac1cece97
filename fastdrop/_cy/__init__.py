"""The Cython/OpenMP backend, compiled at install time."""

from fastdrop._cy.kernels import (
    OPENMP,
    add,
    apply,
    backward,
    forward,
    gaussian,
    mask,
    max_threads,
    philox4x32,
    scale,
    small,
    use_simd,
)

__all__ = [
    "OPENMP",
    "add",
    "apply",
    "backward",
    "forward",
    "gaussian",
    "mask",
    "max_threads",
    "philox4x32",
    "scale",
    "small",
    "use_simd",
]
