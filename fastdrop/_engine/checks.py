"""Argument validation and normalisation for the public functions.

Every check runs before anything is written or drawn, so a call that raises leaves the
caller's arrays, and a Generator or BitGenerator passed as ``rng``, as they were.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, TypeGuard

import numpy as np

from fastdrop._contract import dtypes
from fastdrop._contract.stream import U64

SCALINGS = ("inverted", "classic")

# What ``rng=`` takes (SPEC 7's ``rng``, what ``numpy.random.default_rng`` takes, bar the
# legacy RandomState): see :func:`rng` for how each becomes the 64-bit Philox key.
RngLike = (
    int
    | np.integer
    | np.random.Generator
    | np.random.BitGenerator
    | np.random.SeedSequence
    | Sequence[int]
    | np.ndarray
    | None
)


def unmasked(value: object, name: str) -> None:
    """Reject a masked array, whose mask reading it as a plain array would silently drop."""
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(
            f"{name} must not be a masked array: fastdrop would ignore its mask "
            "(fill the masked elements first, or pass the data alone)"
        )


def array(x: object, name: str) -> np.ndarray:
    """``x`` as a plain ndarray (a subclass, such as a memmap or a matrix, is read as one),
    once it is float16, bfloat16, float32 or float64 and not a masked array.

    An array-like that is not an ndarray is read without a copy where it allows: through
    DLPack (``__dlpack__``: a PyTorch CPU tensor, a JAX CPU array), else through
    ``__array__``, the buffer protocol or a nested sequence, as ``np.asarray`` reads it. One
    that can be read neither way (a tensor on a GPU, or one that requires grad) is a
    TypeError that says why."""
    unmasked(x, name)
    a = np.asarray(x) if isinstance(x, np.ndarray) else _array_like(x, name)
    element_type(a.dtype, name)
    return a


def element_type(dtype: np.dtype, name: str) -> None:
    """Reject an array ``name`` of ``dtype`` unless the kernels take it (NumPy's and Dask's
    fronts alike)."""
    if not dtypes.is_real(dtype):
        raise TypeError(f"{name} must be a {dtypes.NAMES} array, got dtype {dtype}")


def _array_like(x: object, name: str) -> np.ndarray:
    if hasattr(x, "__dlpack__"):
        try:
            return np.from_dlpack(x)
        except (BufferError, RuntimeError, TypeError, ValueError) as e:
            if not hasattr(x, "__array__"):
                raise TypeError(f"{name} could not be read through DLPack: {e}") from e
    try:
        return np.asarray(x)
    except RuntimeError as e:  # a tensor that requires grad, or on another device
        raise TypeError(f"{name} could not be read as a NumPy array: {e}") from e


def integer(value: object) -> TypeGuard[int | np.integer]:
    """Whether ``value`` is a Python or NumPy integer; not a bool, nor a ``timedelta64``
    (which NumPy counts as an integer)."""
    return type(value) is int or (
        isinstance(value, int | np.integer) and not isinstance(value, bool | np.timedelta64)
    )


def flag(value: object, name: str) -> bool:
    """A boolean switch: ``bool`` or ``numpy.bool_``; anything else (None, 0, "yes") is a
    TypeError rather than a guess at what it means."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def real(value: object, name: str) -> float:
    """A Python or NumPy real number (not a bool, an array or a string) as a float."""
    if type(value) is not float and not (integer(value) or isinstance(value, float | np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


def rate(p: object, *, below_one: bool = False) -> float:
    p = real(p, "p")
    if not 0.0 <= p <= 1.0:  # also catches NaN
        raise ValueError(f"p must be in [0, 1], got {p}")
    if below_one and p == 1.0:
        raise ValueError("p must be below 1 here: the noise's spread sqrt(p / (1 - p)) is infinite")
    return p


def u64(value: object, name: str) -> int:
    if not integer(value):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    v = int(value)
    if not 0 <= v < U64:
        raise ValueError(f"{name} must be in [0, 2**64), got {v}")
    return v


def positive(value: object, name: str) -> int:
    """An integer of at least 1."""
    if not integer(value):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return int(value)


def nonnegative(value: object, name: str) -> float:
    """A finite real number of at least 0."""
    v = real(value, name)
    if not 0.0 <= v < math.inf:  # also catches NaN
        raise ValueError(f"{name} must be finite and at least 0, got {v}")
    return v


def scaling(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"scaling must be a string, got {type(value).__name__}")
    if value not in SCALINGS:
        raise ValueError(f"scaling must be 'inverted' or 'classic', got {value!r}")
    return value


def rng(value: object) -> int | np.random.Generator | None:
    """``rng=`` checked and normalised as SPEC 7 has it, with nothing drawn yet.

    Returns the 64-bit Philox key when ``value`` fixes it: an int in ``[0, 2**64)`` is the
    key itself; a SeedSequence, or a sequence of non-negative ints, gives the first draw of
    ``numpy.random.default_rng(value)`` (see :func:`key_of`), the same key every time.
    Returns a Generator when the key is to be drawn from one, by :func:`seed` once every
    other argument has passed: ``value`` itself, or a BitGenerator wrapped in one (the
    draw advances it). Returns None (OS entropy) for None. A legacy RandomState is a
    TypeError.
    """
    if value is None or isinstance(value, np.random.Generator):
        return value
    if isinstance(value, np.random.BitGenerator):
        return np.random.Generator(value)
    if isinstance(value, np.random.SeedSequence | np.ndarray) or (
        isinstance(value, Sequence) and not isinstance(value, str | bytes)
    ):
        try:
            return key_of(np.random.default_rng(value))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"rng is not a valid seed sequence: {exc}") from None
    if not integer(value):
        raise TypeError(
            "rng must be an int seed, a numpy.random Generator, BitGenerator or SeedSequence, "
            f"a sequence of ints or None, got {type(value).__name__}"
        )
    return u64(value, "rng (an integer seed)")


def key_of(generator: np.random.Generator) -> int:
    """The one 64-bit key a Generator gives: ``integers(0, 2**64, dtype=np.uint64)``."""
    return int(generator.integers(0, U64, dtype=np.uint64))


def seed(value: int | np.random.Generator | None) -> int:
    """The 64-bit Philox key for a normalised ``rng`` (:func:`rng`): the key itself, a
    Generator's next draw, or 8 bytes of OS entropy for None."""
    if value is None:
        return int.from_bytes(os.urandom(8), "little")
    if isinstance(value, np.random.Generator):
        return key_of(value)
    return value


def compute_dtype(dtype: np.dtype) -> type:
    """float64 for float64 arrays, float32 for float16, bfloat16 and float32."""
    return np.float64 if dtype.char == "d" else np.float32


def native(dtype: np.dtype) -> np.dtype:
    return dtype if dtype.isnative else dtype.newbyteorder("=")


def out(value: object, shape: tuple[int, ...], dtype: np.dtype, *inputs: Any) -> np.ndarray | None:
    """``out=`` as given, once it fits ``shape`` and ``dtype`` and overlaps no input except by
    being exactly one of them (in place)."""
    if value is None:
        return None
    if type(value) is not np.ndarray:  # a subclass's rules (a matrix's, a mask) would be bypassed
        kind = type(value).__name__
        if isinstance(value, np.ndarray):
            kind += ", a subclass (out.view(numpy.ndarray) is a plain view of it)"
        raise TypeError(f"out must be a numpy.ndarray, got {kind}")
    if value.dtype != native(dtype):
        raise TypeError(f"out must have dtype {native(dtype)}, got {value.dtype}")
    if value.shape != shape:
        raise ValueError(f"out must have shape {shape}, got {value.shape}")
    if not value.flags.writeable:
        raise ValueError("out is read-only")
    if self_overlapping(value):
        raise ValueError("out's elements overlap each other (zero or interleaved strides)")
    for a in inputs:
        if value is a or not np.may_share_memory(value, a) or same_view(value, a):
            continue
        if overlap(value, a):
            raise ValueError("out partially overlaps an input; pass the input itself for in-place")
    return value


def overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` share an element (assumed so when that is too hard to tell)."""
    try:
        return np.shares_memory(a, b, max_work=100_000)
    except np.exceptions.TooHardError:
        return True


def self_overlapping(a: np.ndarray) -> bool:
    """Whether two elements of ``a`` may share memory, as in a writeable view with a zero
    stride (assumed so wherever an axis's stride is shorter than the span of the axes
    with shorter strides: no ordinary layout is)."""
    if not a.size:
        return False
    span = a.itemsize
    for stride, n in sorted((abs(s), n) for s, n in zip(a.strides, a.shape, strict=True) if n > 1):
        if stride < span:
            return True
        span += stride * (n - 1)
    return False


def same_view(a: np.ndarray, b: np.ndarray) -> bool:
    return (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.strides == b.strides
        and a.shape == b.shape
    )


def packed_mask(mask: object, shape: tuple[int, ...]) -> np.ndarray:
    """A packed mask for ``shape`` (``(samples, nbytes)`` or ``(nbytes,)``)."""
    unmasked(mask, "mask")
    if not isinstance(mask, np.ndarray) or mask.dtype != np.uint8:
        raise TypeError("mask must be the packed uint8 array returned with return_mask=True")
    if mask.shape != shape:
        raise ValueError(f"mask must have shape {shape} for this call, got {mask.shape}")
    return np.ascontiguousarray(mask)


def shape(value: object) -> tuple[int, ...]:
    dims = value if isinstance(value, tuple | list) else (value,)
    if not all(integer(d) for d in dims):
        raise TypeError(f"shape must be an int or a tuple of ints, got {value!r}")
    dims = tuple(int(d) for d in dims)
    if any(d < 0 for d in dims):
        raise ValueError(f"shape must not have negative dimensions, got {dims}")
    return dims


def noise_template(value: object) -> tuple[int | None, ...] | None:
    """A ``noise_shape`` checked on its own, before the array it will meet is known."""
    if value is None:
        return None
    if not isinstance(value, tuple | list):
        raise TypeError(f"noise_shape must be a tuple, got {type(value).__name__}")
    for d in value:
        if d is not None and not integer(d):
            raise TypeError(f"noise_shape entries must be integers or None, got {d!r}")
        if d is not None and d < 0:
            raise ValueError(f"noise_shape entries must not be negative, got {d}")
    return tuple(value)


def noise_shape(value: object, full: tuple[int, ...]) -> tuple[int, ...] | None:
    """The mask's shape for ``noise_shape=`` on arrays of shape ``full``, Keras-style: each
    entry is ``full``'s or 1 (None stands for ``full``'s). None when it is ``full`` itself."""
    value = noise_template(value)
    if value is None:
        return None
    if len(value) != len(full):
        raise ValueError(f"noise_shape {value} must have one entry per axis of {full}")
    dims = tuple(n if d is None else int(d) for d, n in zip(value, full, strict=True))
    if any(d not in (n, 1) for d, n in zip(dims, full, strict=True)):
        raise ValueError(f"noise_shape {value} must match {full} or be 1 on each axis")
    return None if dims == full else dims


def axis(value: object, ndim: int, name: str) -> int:
    if not integer(value):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    a = int(value)
    if not -ndim <= a < ndim:
        raise ValueError(f"{name}={a} is out of range for an array of {ndim} dimensions")
    return a % ndim


def samples(value: object) -> int | None:
    if value is None:
        return None
    if not integer(value):
        raise TypeError(f"samples must be an integer or None, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"samples must be at least 0, got {value}")
    return int(value)
