"""Numba kernels: ``mask``, ``forward``, ``backward`` and ``scale``.

Same signatures and results as the reference in ``fastdrop._numpy.kernels``, and the
same structure as ``fastdrop/_cy/kernels.pyx``: ``prange`` over tiles of ``TILE`` flat
elements (a multiple of 8, so each tile owns whole bytes of a packed mask); each tile is
drawn, applied and packed while it sits in L1. float16 travels as its ``uint16`` bit
pattern and is scaled in float32 through LLVM's correctly rounded ``half`` conversions.
"""

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from fastdrop._numba.philox import draw

TILE = 4096


@intrinsic
def _h2f(typingctx, h):
    def codegen(context, builder, signature, args):
        return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())

    return types.float32(types.uint16), codegen


@intrinsic
def _f2h(typingctx, f):
    def codegen(context, builder, signature, args):
        return builder.bitcast(builder.fptrunc(args[0], ir.HalfType()), ir.IntType(16))

    return types.uint16(types.float32), codegen


def _kept(v, scale):
    """``v * scale`` in the contract's compute precision (a typed stub for Numba)."""


@overload(_kept, inline="always")
def _kept_impl(v, scale):
    if v == types.uint16:
        return lambda v, scale: _f2h(_h2f(v) * np.float32(scale))
    if v == types.float32:
        return lambda v, scale: v * np.float32(scale)
    return lambda v, scale: v * scale


@njit(cache=True, nogil=True)
def _draw_keep(keep, seed, pos0, row_step, cols, threshold, i0, i1):
    """``keep[i - i0] = draw(position of flat index i) >= threshold`` for ``i0 <= i < i1``."""
    buf = np.empty(TILE + 8, np.uint32)
    i = i0
    while i < i1:
        r, c = divmod(i, cols)
        n = min(cols - c, i1 - i)
        skip = draw(buf, pos0 + np.uint64(r) * row_step + np.uint64(c), n, seed, 0)
        for k in range(n):
            keep[i - i0 + k] = np.uint64(buf[skip + k]) >= threshold
        i += n


@njit(cache=True, nogil=True)
def _apply(x, y, keep, scale, i0, i1):
    """``y = keep ? x * scale : +0.0`` for flat indices ``i0 <= i < i1`` (all kept if None)."""
    cols = x.shape[1]
    zero = y.dtype.type(0)
    i = i0
    while i < i1:
        r, c = divmod(i, cols)
        n = min(cols - c, i1 - i)
        xr = x[r, c : c + n]
        yr = y[r, c : c + n]
        if keep is None:
            for k in range(n):
                yr[k] = _kept(xr[k], scale)
        else:
            kr = keep[i - i0 : i - i0 + n]
            for k in range(n):
                yr[k] = _kept(xr[k], scale) if kr[k] else zero
        i += n


@njit(cache=True, nogil=True)
def _pack(keep, bits, n):
    """Pack ``n`` keep flags into ``ceil(n / 8)`` bytes, little bit order."""
    for b in range((n + 7) // 8):
        v = 0
        for j in range(min(8, n - 8 * b)):
            v |= np.int64(keep[8 * b + j]) << j
        bits[b] = v


@njit(cache=True, nogil=True)
def _unpack(bits, keep, n):
    for i in range(n):
        keep[i] = (bits[i >> 3] >> (i & 7)) & 1


@njit(cache=True, nogil=True, parallel=True)
def _mask(bits, n, seed, offset, threshold):
    for t in prange((n + TILE - 1) // TILE):
        i0 = t * TILE
        i1 = min(i0 + TILE, n)
        keep = np.empty(TILE, np.uint8)
        _draw_keep(keep, seed, offset, np.uint64(0), n, threshold, i0, i1)
        _pack(keep, bits[i0 // 8 :], i1 - i0)


@njit(cache=True, nogil=True, parallel=True)
def _forward(x, y, bits, seed, pos0, row_step, threshold, scale):
    n = x.shape[0] * x.shape[1]
    for t in prange((n + TILE - 1) // TILE):
        i0 = t * TILE
        i1 = min(i0 + TILE, n)
        keep = np.empty(TILE, np.uint8)
        _draw_keep(keep, seed, pos0, row_step, x.shape[1], threshold, i0, i1)
        _apply(x, y, keep, scale, i0, i1)
        if bits.size:
            _pack(keep, bits[i0 // 8 :], i1 - i0)


@njit(cache=True, nogil=True, parallel=True)
def _backward(g, out, bits, scale):
    n = g.shape[0] * g.shape[1]
    for t in prange((n + TILE - 1) // TILE):
        i0 = t * TILE
        i1 = min(i0 + TILE, n)
        keep = np.empty(TILE, np.uint8)
        _unpack(bits[i0 // 8 :], keep, i1 - i0)
        _apply(g, out, keep, scale, i0, i1)


@njit(cache=True, nogil=True, parallel=True)
def _scale(x, y, factor):
    n = x.shape[0] * x.shape[1]
    for t in prange((n + TILE - 1) // TILE):
        i0 = t * TILE
        _apply(x, y, None, factor, i0, min(i0 + TILE, n))


def _bits_of(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint16) if a.dtype == np.float16 else a


def _run(kernel, n_threads: int, *args) -> None:
    """Call a parallel kernel on ``n_threads`` threads, then give the calling thread back
    the Numba thread count it had (the user's own Numba code shares the setting)."""
    previous = numba.get_num_threads()
    # Numba cannot use more threads than it started with (NUMBA_NUM_THREADS). The setting
    # is made here, per calling thread: inside a jitted function it would stop caching.
    numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
    try:
        kernel(*args)
    finally:
        numba.set_num_threads(previous)


def mask(bits, n, seed, offset, threshold, n_threads):
    """Write the packed keep-mask of positions ``offset + i``, ``0 <= i < n``, into ``bits``."""
    _run(_mask, n_threads, bits, n, np.uint64(seed), np.uint64(offset), np.uint64(threshold))


def forward(x, y, bits, seed, pos0, row_step, threshold, scale, n_threads):
    """``y = keep ? x * scale : +0.0``, drawing ``keep`` from the stream; pack it into ``bits``."""
    _run(
        _forward,
        n_threads,
        _bits_of(x),
        _bits_of(y),
        bits,
        np.uint64(seed),
        np.uint64(pos0),
        np.uint64(row_step),
        np.uint64(threshold),
        scale,
    )


def backward(g, out, bits, scale, n_threads):
    """``out = keep ? g * scale : +0.0`` with ``keep`` read from the packed ``bits``."""
    _run(_backward, n_threads, _bits_of(g), _bits_of(out), bits, scale)


def scale(x, y, factor, n_threads):
    """``y = x * factor`` in the compute precision: classic-scaling eval, and the speed baseline."""
    _run(_scale, n_threads, _bits_of(x), _bits_of(y), factor)
