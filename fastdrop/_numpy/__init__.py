"""The pure-NumPy reference backend: the executable specification.

Like every backend, it implements ``fastdrop._contract.kernels.Kernels``; the fast ones
(``fastdrop._numba``, ``fastdrop._cy``) are tested bit for bit against it. The code favours
being obviously right over being fast; it still works in bounded chunks so that it never
holds temporaries the size of the input.
"""

from fastdrop._numpy.kernels import add, apply, backward, forward, gaussian, mask, scale
from fastdrop._numpy.philox import draw, normal, philox4x32

PARALLEL_MIN = 0  # the reference ignores n_threads: it always runs on the calling thread

__all__ = [
    "PARALLEL_MIN",
    "add",
    "apply",
    "backward",
    "draw",
    "forward",
    "gaussian",
    "mask",
    "normal",
    "philox4x32",
    "scale",
]
