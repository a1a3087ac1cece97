"""The element types the kernels take: float16, bfloat16, float32 and float64.

NumPy has no bfloat16 of its own: fastdrop's is ``ml_dtypes.bfloat16``, the one JAX and
others share. fastdrop never imports ml_dtypes: an array can have its dtype only once
something has imported ml_dtypes, so :func:`bfloat16` looks among the modules already
imported. Without ml_dtypes fastdrop works as before, on the other three.
"""

from __future__ import annotations

import sys

import numpy as np

NAMES = "float16, bfloat16, float32 or float64"  # for error messages


def bfloat16() -> np.dtype | None:
    """``ml_dtypes.bfloat16``'s dtype, or None while ml_dtypes is not imported."""
    module = sys.modules.get("ml_dtypes")
    return None if module is None else np.dtype(module.bfloat16)


def is_bfloat16(dtype: np.dtype) -> bool:
    """Whether ``dtype`` is ``ml_dtypes.bfloat16``, in either byte order."""
    return dtype.char == "E" and dtype.newbyteorder("=") == bfloat16()


def is_real(dtype: np.dtype) -> bool:
    """Whether fastdrop takes arrays of ``dtype``: float16, bfloat16, float32 or float64,
    in either byte order."""
    return dtype.char in "efd" or is_bfloat16(dtype)
