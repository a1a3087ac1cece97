"""Every Numba decision of the Numba backend: how its code is compiled, cached, typed and
run on threads.

The kernels (``fastdrop._numba.kernels``) and the stream (``fastdrop._numba.philox``)
are plain loops; what follows is decided here, once for them all.

- **Compilation** (``compiled``): nopython mode, without the GIL (the pool's threads run
  kernels at once), cached on disk, and never ``fastmath``: no fused multiply-adds and no
  reassociation, so each operation rounds where the reference's does.
- **Signatures** (``launch``): a kernel is compiled for explicit signatures, at most twice
  per element type, and its entry point called directly.
- **Threads** (``launch``, ``tile_bounds``): the pool of ``fastdrop._numba.pool`` hands
  each thread ranges of tiles ``t0 <= t < t1``; a kernel walks its range a tile at a time.
- **Types** chosen at compile time: float16 travels as its ``uint16`` bit pattern and is
  converted with LLVM's correctly rounded ``half`` conversions; bfloat16 travels as its
  bit pattern typed ``int16`` (the type tells the two apart) and is converted with
  integer shifts and rounding, as ml_dtypes converts (``to_compute``, ``to_element``);
  an optional argument passed as None is compiled away (``is_kept``,
  ``shifted``, ``slice_or_none``, ``store_or_none``); a row with unit stride is typed
  contiguous, so that LLVM vectorises it (``assume_contiguous``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic, overload

from fastdrop._contract import dtypes
from fastdrop._numba import pool

# Flat elements per tile, the unit of work handed to threads: a multiple of 8, so that each
# tile owns whole bytes of a packed mask, and small enough that a tile's buffers stay in L1.
TILE = 4096


def compiled(func: Callable | None = None, **options: Any) -> Any:
    """Compile ``func`` as all of the backend's Numba code is: nopython, ``nogil``, cached
    on disk, no ``fastmath``.

    Parameters
    ----------
    func : callable, optional
        The function; without it, a decorator.
    **options
        Numba options added to those (``inline="always"``, ``error_model="numpy"``).

    Returns
    -------
    numba.core.registry.CPUDispatcher or callable
        The dispatcher, or a decorator that makes one.
    """
    decorate = njit(cache=True, nogil=True, **options)
    return decorate if func is None else decorate(func)


# Each kernel walks its own range of tiles, ``for t in range(t0, t1)``, and takes each
# tile's bounds from here. A loop written once for all kernels would cost more: as a
# function taking the kernel's tile function, Numba never caches it (numba/numba#9237:
# compiled again in every process); as a generator, it must not be cached (Numba then
# fails to compile a kernel against it, numba/numba#8679), so every process that compiles
# a kernel would spend 0.1-0.2 s compiling it.
@compiled
def tile_bounds(t, n):
    """Tile ``t`` of ``n`` flat elements: ``(i0, i1)``, its flat indices ``i0 <= i < i1``."""
    i0 = t * TILE
    return i0, min(i0 + TILE, n)


def _numba_view(a: Any) -> Any:
    """``a``, with float16 arrays viewed as their ``uint16`` bit patterns and bfloat16
    arrays as their ``int16`` ones."""
    if not isinstance(a, np.ndarray) or a.dtype.itemsize != 2:
        return a
    if a.dtype == np.float16:
        return a.view(np.uint16)
    return a.view(np.int16) if dtypes.is_bfloat16(a.dtype) else a


def _signature_type(value: Any, layout: str) -> Any:
    """Numba's type for a kernel argument; an array is taken as writable, of ``layout``."""
    t = numba.typeof(value)
    return t.copy(layout=layout, readonly=False) if isinstance(t, types.Array) else t


_entry_points: dict = {}  # (kernel, first argument's dtype, layout, ranks) -> entry point


def launch(kernel: Any, n: int, n_threads: int, *args: Any) -> None:
    """Run ``kernel(*args, n, t0, t1)`` over the tiles of its ``n`` elements on
    ``n_threads`` threads (the pool of :mod:`fastdrop._numba.pool`), each call taking a
    contiguous range of tiles ``t0 <= t < t1``. float16 and bfloat16 arrays in ``args``
    are passed as their bit patterns.

    The kernel is compiled on first use at most twice per dtype of its first argument:
    every array typed as C-contiguous when all of them are (the common case, and 10% to
    2.5x faster than the general version, Gaussian noise gaining most), else every array
    typed as of any layout; always as writable. That entry point is called directly: the
    dispatcher would compile the kernel again for every combination of layouts and
    read-only flags (zero-stride broadcasts) its arrays come in, some sixty in
    ``tests/test_kernels.py`` alone. The other arguments' types follow from that dtype
    (the callers convert the scalars). The entry point checks an array's item size but
    not its number of dimensions, so those are part of the key: an array of the wrong
    rank gets an entry point of its own (and a typing error) instead of a wrong one.
    """
    args = tuple(_numba_view(a) for a in args)
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    layout = "C" if all(a.flags.c_contiguous for a in arrays) else "A"
    key = (kernel, args[0].dtype, layout, tuple(a.ndim for a in arrays))
    entry = _entry_points.get(key)
    if entry is None:
        extent = (types.int64,) * 3  # n, and the range t0 <= t < t1 the pool gives a thread
        signature = (*(_signature_type(a, layout) for a in args), *extent)
        entry = _entry_points[key] = kernel.compile(signature)
    pool.run(lambda t0, t1: entry(*args, n, t0, t1), (n + TILE - 1) // TILE, n_threads)


def shaped(v: ir.Value, t: ir.Type) -> ir.Type:
    """``t``, or a vector of ``t`` as long as ``v`` where ``v`` is a vector."""
    return ir.VectorType(t, v.type.count) if isinstance(v.type, ir.VectorType) else t


def _word(v: ir.Value, value: int) -> ir.Constant:
    """The 32-bit ``value``, shaped like ``v``."""
    t = shaped(v, ir.IntType(32))
    return ir.Constant(t, [value] * t.count if isinstance(t, ir.VectorType) else value)


def half_to_float(builder: ir.IRBuilder, h: ir.Value) -> ir.Value:
    """IR: float16 bits (``i16``, or a vector of them) to float32, exactly."""
    return builder.fpext(builder.bitcast(h, shaped(h, ir.HalfType())), shaped(h, ir.FloatType()))


def float_to_half(builder: ir.IRBuilder, f: ir.Value) -> ir.Value:
    """IR: float32 to float16 bits, with LLVM's correctly rounded conversion."""
    return builder.bitcast(builder.fptrunc(f, shaped(f, ir.HalfType())), shaped(f, ir.IntType(16)))


def bfloat16_to_float(builder: ir.IRBuilder, b: ir.Value) -> ir.Value:
    """IR: bfloat16 bits to float32, exactly: the bits moved to the top half of the word."""
    word = builder.zext(b, shaped(b, ir.IntType(32)))
    return builder.bitcast(builder.shl(word, _word(b, 16)), shaped(b, ir.FloatType()))


def float_to_bfloat16(builder: ir.IRBuilder, f: ir.Value) -> ir.Value:
    """IR: float32 to bfloat16 bits as ml_dtypes rounds: to nearest even, by adding
    ``0x7FFF`` and the kept part's last bit and dropping the low half (overflow carries
    into inf); a NaN becomes the quiet NaN ``0x7FC0`` with its sign."""
    word = builder.bitcast(f, shaped(f, ir.IntType(32)))
    high = builder.lshr(word, _word(f, 16))
    even = builder.add(builder.add(word, _word(f, 0x7FFF)), builder.and_(high, _word(f, 1)))
    quiet = builder.or_(builder.and_(high, _word(f, 0x8000)), _word(f, 0x7FC0))
    nan = builder.fcmp_unordered("uno", f, f)
    rounded = builder.select(nan, quiet, builder.lshr(even, _word(f, 16)))
    return builder.trunc(rounded, shaped(f, ir.IntType(16)))


def _conversion(convert: Callable[[ir.IRBuilder, ir.Value], ir.Value], result: Any, arg: Any):
    """An intrinsic of one argument that ``convert`` writes."""

    @intrinsic
    def scalar(typingctx, v):
        return result(arg), lambda context, builder, signature, args: convert(builder, args[0])

    return scalar


_h2f = _conversion(half_to_float, types.float32, types.uint16)
_f2h = _conversion(float_to_half, types.uint16, types.float32)
_b2f = _conversion(bfloat16_to_float, types.float32, types.int16)
_f2b = _conversion(float_to_bfloat16, types.int16, types.float32)


@intrinsic
def assume_contiguous(typingctx, a):
    """The 1-D array ``a``, which has unit stride, typed C-contiguous: the same array, not
    a copy, whose element addresses LLVM can then see are consecutive."""

    def codegen(context, builder, signature, args):
        return impl_ret_borrowed(context, builder, signature.return_type, args[0])

    return a.copy(layout="C")(a), codegen


def to_compute(a, v):
    """``v`` (an element of ``a`` or a float) in ``a``'s compute precision; None stays
    None (a typed stub for Numba)."""


@overload(to_compute, inline="always")
def _to_compute_impl(a, v):
    if isinstance(v, types.NoneType):
        return lambda a, v: None
    if a.dtype == types.float64:
        return lambda a, v: np.float64(v)
    if v == types.uint16:
        return lambda a, v: _h2f(v)
    if v == types.int16:
        return lambda a, v: _b2f(v)
    return lambda a, v: np.float32(v)


def to_element(a, v):
    """``v``, in ``a``'s compute precision, rounded to ``a``'s element type (a stub)."""


@overload(to_element, inline="always")
def _to_element_impl(a, v):
    if a.dtype == types.uint16:
        return lambda a, v: _f2h(v)
    if a.dtype == types.int16:
        return lambda a, v: _f2b(v)
    return lambda a, v: v


def slice_or_none(keep, j, n):
    """``keep[j : j + n]``, or None if ``keep`` is None (a typed stub for Numba)."""


@overload(slice_or_none, inline="always")
def _slice_or_none_impl(keep, j, n):
    if isinstance(keep, types.NoneType):
        return lambda keep, j, n: None
    return lambda keep, j, n: keep[j : j + n]


def store_or_none(a, k, v):
    """``a[k] = v``, or nothing if ``a`` is None (a typed stub for Numba)."""


@overload(store_or_none, inline="always")
def _store_or_none_impl(a, k, v):
    if isinstance(a, types.NoneType):
        return lambda a, k, v: None

    def store(a, k, v):
        a[k] = v

    return store


def is_kept(keep, k):
    """Whether flag ``k`` of ``keep`` is set; always, if ``keep`` is None (a stub)."""


@overload(is_kept, inline="always")
def _is_kept_impl(keep, k):
    if isinstance(keep, types.NoneType):
        return lambda keep, k: True
    return lambda keep, k: keep[k] != 0


def shifted(v, shift):
    """``v + shift``, or ``v`` if ``shift`` is None (a typed stub for Numba)."""


@overload(shifted, inline="always")
def _shifted_impl(v, shift):
    if isinstance(shift, types.NoneType):
        return lambda v, shift: v
    return lambda v, shift: v + shift
