"""The Cython/OpenMP backend, compiled at install time."""

from fastdrop._cy.kernels import OPENMP, backward, forward, mask, max_threads, philox4x32, scale

__all__ = ["OPENMP", "backward", "forward", "mask", "max_threads", "philox4x32", "scale"]
