"""Numba kernels: :class:`fastdrop._contract.kernels.Kernels` as plain loops that Numba
compiles (``fastdrop._numba.jit`` decides how).

They have the structure of ``fastdrop/_cy/kernels.pyx``: tiles of ``TILE`` flat
elements; each tile's keep flags or normals are drawn into buffers that stay in L1,
applied row segment by row segment, and packed. ``forward`` draws and applies a row
segment a vector of Philox counters at a time instead (``_drop_run``), written in LLVM IR
(``_drop_vectors``) so that words and flags stay in the registers from draw to store; it
runs every sample over a tile before the next tile, so ``x`` is read from memory once
whatever the number of samples.
Each kernel's compiled part (``_mask``, ``_forward``, ...) runs a range of tiles on the
calling thread; ``fastdrop._numba.jit.launch`` runs the ranges on threads.

A row segment whose arrays all have unit inner stride, the common case, is handed to the
row loop as contiguous views, which LLVM vectorises; other segments take the same loop
with strided views. The row loops compute and round in the contract's order, with
``jit.to_compute`` and ``jit.to_element``.
"""

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from fastdrop._contract.stream import BERNOULLI
from fastdrop._numba.jit import (
    TILE,
    assume_contiguous,
    bfloat16_to_float,
    compiled,
    float_to_bfloat16,
    float_to_half,
    half_to_float,
    is_kept,
    launch,
    shifted,
    slice_or_none,
    store_or_none,
    tile_bounds,
    to_compute,
    to_element,
)
from fastdrop._numba.philox import LANES, keep_flags, normals, splat, vector_words

MAX_WORD = np.uint64(2**32 - 1)
GATHER = np.uint64(0x0102040810204080)  # _pack: byte k is 2**(7 - k)
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)


@compiled
def _unit(a):
    """Whether the rows of the 2-D array ``a`` have unit stride."""
    return a.strides[1] == a.itemsize


@compiled
def _span(r, cols, i0, i1):
    """The part of row ``r``, in rows of ``cols`` elements, with flat indices ``i0 <= i <
    i1``: ``(c, n, j)``, its first column, its length and the place ``i - i0`` of its first
    element in the tile that starts at ``i0``. Rows ``i0 // cols`` to ``(i1 - 1) // cols``
    have one."""
    start = r * cols
    c = max(i0 - start, 0)
    return c, min(i1 - start, cols) - c, start + c - i0


@compiled
def _keep_scratch():
    """A tile's scratch for ``_draw_keep``: ``keep`` and ``buf``."""
    return np.empty(TILE, np.uint8), np.empty(TILE // 4 + 2, np.uint32)


@compiled
def _draw_keep(keep, buf, seed, pos0, row_step, cols, threshold, i0, i1):
    """The keep flags of the flat indices ``i0 <= i < i1``: ``flags[i - i0] = draw(position
    of flat index i) >= threshold``, drawn into the scratch ``buf`` (``uint32``, at least
    ``TILE // 4 + 2`` values).

    Returns a view of ``buf`` when the indices lie in one row, with nothing copied (a
    byte copy does not vectorise here and took about half the time of drawing); else
    ``keep``, filled row segment by row segment. A threshold of 0 keeps all and one above
    every word keeps none, without drawing.
    """
    n = i1 - i0
    if threshold == 0 or threshold > MAX_WORD:
        keep[:n] = np.uint8(threshold == 0)
        return keep[:n]
    flags = buf.view(np.uint8)
    r0, r1 = i0 // cols, (i1 - 1) // cols
    for r in range(r0, r1 + 1):
        c, m, j = _span(r, cols, i0, i1)
        skip = keep_flags(buf, pos0 + np.uint64(r) * row_step + np.uint64(c), m, seed, threshold)
        if r0 == r1:
            return flags[skip : skip + m]
        keep[j : j + m] = flags[skip : skip + m]
    return keep[:n]


VECTOR = 4 * LANES  # elements of the blocks of one vector of counters: 32
STEP = 4  # vectors drawn at a time in the middle of a run, under AVX-512 (_step_vectors)
# How far ahead of a step the lines of x and y are asked for, in elements: drop.h's
# distance, where it made fused dropout about 25% faster at 1e8 elements on 2 threads.
AHEAD = 2048


def _step_vectors(context):
    """The vectors of counters ``_drop_step`` draws at a time on the target Numba compiles
    for: ``STEP`` with AVX-512, whose 32 registers hold four vectors' rounds, which hide
    each other's latency; one elsewhere, where more would spill (twice the instructions
    per element under AVX2)."""
    features = context.codegen().magic_tuple()[2].split(",")
    return STEP if "+avx512f" in features else 1


def _at(context, builder, array, array_type, k, lanes):
    """IR: a pointer to the ``lanes`` elements of ``array`` from ``k`` on, as a vector."""
    data = context.make_array(array_type)(context, builder, array).data
    vector = ir.VectorType(context.get_data_type(array_type.dtype), lanes)
    return builder.bitcast(builder.gep(data, [k]), vector.as_pointer())


def _prefetch(context, builder, x, xt, y, yt, e, n):
    """IR: ask for the lines of ``x`` and ``y`` that hold elements ``e + AHEAD`` to ``e +
    AHEAD + n``, as drop.h does (a read prefetch for ``y`` too: a write prefetch took
    4-8% longer for float64 at 1e8 elements). Past the end of an array a prefetch is
    only wasted: an address computed without ``inbounds``, and no fault."""
    size = yt.dtype.bitwidth // 8
    byte = ir.IntType(8).as_pointer()
    fetch = builder.module.declare_intrinsic(
        "llvm.prefetch", [byte], ir.FunctionType(ir.VoidType(), [byte, _I32, _I32, _I32])
    )
    start = builder.mul(builder.add(e, _I64(AHEAD)), _I64(size))
    for array, array_type in ((x, xt), (y, yt)):
        data = context.make_array(array_type)(context, builder, array).data
        data = builder.bitcast(data, byte)
        for line in range(0, n * size, 64):
            address = builder.gep(data, [builder.add(start, _I64(line))])
            builder.call(fetch, [address, _I32(0), _I32(3), _I32(1)])  # read, keep in L1


# The 16-bit floats, as the bit patterns they travel as: to float32 and back, in IR.
_CONVERSIONS = {
    types.uint16: (half_to_float, float_to_half),
    types.int16: (bfloat16_to_float, float_to_bfloat16),
}


def _put(context, builder, keep, x, xt, y, yt, k, scale, shift, fill):
    """IR: ``y = keep ? x * scale + shift : fill`` for the sixteen elements of ``x`` and
    ``y`` from ``k`` on, ``keep`` their sixteen ``i1``, in 512-bit vectors of the compute
    precision (float16 and bfloat16, as their bits, converted to and from float32), each
    operation rounded on its own. A ``shift`` of None adds nothing and a ``fill`` of None
    is +0.0: dropout's multiply with the dropped lanes zeroed."""
    widen, narrow = _CONVERSIONS.get(yt.dtype, (None, None))
    lanes = 8 if yt.dtype == types.float64 else 16  # one 512-bit vector
    size = yt.dtype.bitwidth // 8
    for h in range(0, 2 * LANES, lanes):
        order = ir.Constant(ir.VectorType(_I32, lanes), list(range(h, h + lanes)))
        kept = builder.shuffle_vector(keep, keep, order)
        kh = builder.add(k, _I64(h))
        v = builder.load(_at(context, builder, x, xt, kh, lanes), align=size)
        if widen is not None:
            v = widen(builder, v)
        v = builder.fmul(v, splat(builder, scale, lanes))
        if shift is not None:
            v = builder.fadd(v, splat(builder, shift, lanes))
        if narrow is not None:
            v = narrow(builder, v)
        f = ir.Constant(v.type, None) if fill is None else splat(builder, fill, lanes)
        builder.store(builder.select(kept, v, f), _at(context, builder, y, yt, kh, lanes), size)


def _drop_vectors(vectors):
    """An intrinsic ``drop(x, y, flags, e, block, seed, threshold, scale, shift, fill)``:
    ``_kept`` and the flags over the ``VECTOR * vectors(context)`` elements from ``e`` on
    of contiguous ``x`` and ``y``, element ``e + k`` at word ``k`` of the stream blocks
    from ``block`` on, in the registers from draw to store.

    ``fastdrop/_cy/drop.h``'s loop in generic IR: each vector of sixteen words from
    ``vector_words`` is compared with ``threshold``, unsigned, into sixteen ``i1`` (a
    mask register under AVX-512), which ``_put`` selects with. The flags go to ``flags``
    (``uint8``, one a byte) unless it is None; ``x`` and ``y`` None draw the flags
    alone.
    """

    @intrinsic
    def drop(typingctx, x, y, flags, e, block, seed, threshold, scale, shift, fill):
        def codegen(context, builder, signature, args):
            x, y, flags, e, block, seed, threshold, scale, shift, fill = args
            xt, yt, ft = signature.args[:3]
            none = [isinstance(a, types.NoneType) for a in signature.args]
            shift, fill = (None if none[i] else args[i] for i in (8, 9))
            n = vectors(context)
            if not none[1]:
                _prefetch(context, builder, x, xt, y, yt, e, VECTOR * n)
            t = splat(builder, builder.trunc(threshold, _I32), 2 * LANES)
            for i, word in enumerate(vector_words(builder, block, seed, BERNOULLI, n)):
                keep = builder.icmp_unsigned(">=", word, t)
                k = builder.add(e, _I64(2 * LANES * i))
                if not none[2]:
                    byte = builder.zext(keep, ir.VectorType(ir.IntType(8), 2 * LANES))
                    builder.store(byte, _at(context, builder, flags, ft, k, 2 * LANES), 1)
                if not none[1]:
                    _put(context, builder, keep, x, xt, y, yt, k, scale, shift, fill)
            return context.get_dummy_value()

        return types.none(x, y, flags, e, block, seed, threshold, scale, shift, fill), codegen

    return drop


_drop_vector = _drop_vectors(lambda context: 1)
_drop_step = _drop_vectors(_step_vectors)


@intrinsic
def _step_elements(typingctx):
    """The elements ``_drop_step`` takes at a time, a constant of the target."""

    def codegen(context, builder, signature, args):
        return _I64(VECTOR * _step_vectors(context))

    return types.int64(), codegen


@compiled(inline="always")
def _kept(x, y, k, keep, scale, shift, fill):
    """``y[k] = keep ? x[k] * scale + shift : fill``; ``x[k]`` is read whatever ``keep``,
    so that a vector of them is one load, not a gather under a mask."""
    v = to_element(y, shifted(to_compute(y, x[k]) * scale, shift))
    y[k] = v if keep else fill


@compiled(inline="always")
def _drop_some(x, y, flags, keep, e, block, seed, threshold, scale, shift, fill):
    """``_kept`` over the elements ``max(e, 0) <= k < min(e + VECTOR, len(x))`` of a run,
    element ``k`` at word ``k - e`` of the ``LANES`` stream blocks from ``block`` on: the
    vectors at a run's ends, and every vector of a strided run. Their flags are drawn
    into ``keep`` (``VECTOR`` bytes) and copied to ``flags`` unless it is None."""
    _drop_vector(None, None, keep, 0, block, seed, threshold, None, None, None)
    for k in range(max(e, 0), min(e + VECTOR, x.shape[0])):
        _kept(x, y, k, keep[k - e], scale, shift, fill)
        store_or_none(flags, k, keep[k - e])


@compiled(inline="always")
def _drop_fused(x, y, flags, e, block, seed, threshold, scale, shift, fill):
    """The whole vectors of a contiguous run from element ``e >= 0`` on, with
    ``_drop_step`` and then ``_drop_vector``; returns ``e`` and ``block`` after them."""
    m = x.shape[0]
    step = _step_elements()
    while e + step <= m:
        _drop_step(x, y, flags, e, block, seed, threshold, scale, shift, fill)
        e += step
        block += np.uint64(step >> 2)
    while e + VECTOR <= m:
        _drop_vector(x, y, flags, e, block, seed, threshold, scale, shift, fill)
        e += VECTOR
        block += np.uint64(LANES)
    return e, block


def _drop_whole(x, y, flags, e, block, seed, threshold, scale, shift, fill):
    """``_drop_fused`` where ``x`` and ``y`` are contiguous, dropout's own ``shift`` and
    ``fill`` (-0.0 and +0.0) compiled in; strided runs leave every vector to
    ``_drop_some`` (a typed stub)."""


@overload(_drop_whole, inline="always")
def _drop_whole_impl(x, y, flags, e, block, seed, threshold, scale, shift, fill):
    if x.layout != "C" or y.layout != "C":
        return lambda x, y, flags, e, block, seed, threshold, scale, shift, fill: (e, block)

    def whole(x, y, flags, e, block, seed, threshold, scale, shift, fill):
        plain = (
            shift == 0
            and math.copysign(1.0, shift) < 0
            and fill == 0
            and math.copysign(1.0, fill) > 0
        )
        if plain:
            return _drop_fused(x, y, flags, e, block, seed, threshold, scale, None, None)
        return _drop_fused(x, y, flags, e, block, seed, threshold, scale, shift, fill)

    return whole


@compiled
def _drop_run(x, y, flags, keep, pos, seed, threshold, scale, shift, fill):
    """``y = keep ? x * scale + shift : fill`` along a row segment whose positions run on
    from ``pos``, its keep flags written to ``flags`` unless it is None; ``keep`` is
    ``VECTOR`` bytes of scratch.

    Vectors of ``LANES`` blocks from the block of ``pos`` on: the first (unless ``pos``
    starts a block) and the last partial one take ``_drop_some``, the whole ones between
    ``_drop_whole``. A threshold of 0 keeps all and one above every word keeps none,
    without drawing.
    """
    m = x.shape[0]
    if threshold == 0 or threshold > MAX_WORD:
        for k in range(m):
            _kept(x, y, k, threshold == 0, scale, shift, fill)
            store_or_none(flags, k, threshold == 0)
        return
    e = -np.int64(pos & np.uint64(3))
    block = pos >> np.uint64(2)
    if e < 0:
        _drop_some(x, y, flags, keep, e, block, seed, threshold, scale, shift, fill)
        e += VECTOR
        block += np.uint64(LANES)
    e, block = _drop_whole(x, y, flags, e, block, seed, threshold, scale, shift, fill)
    while e < m:
        _drop_some(x, y, flags, keep, e, block, seed, threshold, scale, shift, fill)
        e += VECTOR
        block += np.uint64(LANES)


@compiled
def _gather(keep, flags, i0, i1):
    """``flags[i - i0] = keep[r, c] != 0`` for the elements ``(r, c)`` of flat indices
    ``i0 <= i < i1`` of the 2-D ``keep``."""
    cols = keep.shape[1]
    for r in range(i0 // cols, (i1 - 1) // cols + 1):
        c, n, j = _span(r, cols, i0, i1)
        for k in range(n):
            flags[j + k] = keep[r, c + k] != 0


@compiled
def _pack(keep, bits, n):
    """Pack ``n`` keep flags (0 or 1) into ``ceil(n / 8)`` bytes, little bit order: whole
    bytes, then the tail. A whole byte's eight flags, as the bytes of a 64-bit ``w``, are
    gathered by one multiply: flag ``j`` times ``GATHER``'s byte ``7 - j`` lands on bit
    ``56 + j``, and no two products share a bit, so nothing carries (6x faster than
    shifting each flag into place)."""
    whole = n // 8
    for b in range(whole):
        w = np.uint64(0)
        for j in range(8):
            w |= np.uint64(keep[8 * b + j]) << np.uint64(8 * j)
        bits[b] = (w * GATHER) >> np.uint64(56)
    if n > 8 * whole:
        v = 0
        for j in range(n - 8 * whole):
            v |= np.int64(keep[8 * whole + j]) << j
        bits[whole] = v


@compiled
def _unpack(bits, keep, n):
    """``keep[i]`` nonzero where bit ``i`` of the packed ``bits`` is set: whole bytes with a
    constant mask per bit, which vectorises, then the tail."""
    whole = n // 8
    for b in range(whole):
        for j in range(8):
            keep[8 * b + j] = bits[b] & (1 << j)
    for j in range(n - 8 * whole):
        keep[8 * whole + j] = bits[whole] & (1 << j)


@compiled
def _affine_row(x, y, keep, scale, shift, fill):
    """``y = keep ? x * scale + shift : fill`` along a row segment, ``scale`` and
    ``shift`` in the compute precision, ``fill`` an element."""
    for k in range(x.shape[0]):
        kept = to_element(y, shifted(to_compute(y, x[k]) * scale, shift))
        y[k] = kept if is_kept(keep, k) else fill


@compiled
def _affine(x, y, keep, scale, shift, fill, i0, i1):
    """``y = keep ? x * scale + shift : fill`` over the flat indices ``i0 <= i < i1`` of
    the 2-D ``x`` and ``y``, ``keep`` holding the flags of the tile that starts at ``i0``.

    ``keep`` None keeps all. ``shift`` None adds nothing, which is what the reference's
    shift of ``-0.0`` does, without an addition that LLVM cannot drop from a variable:
    ``scale``, the speed baseline, and ``backward`` pass None.
    """
    sc, sh, fl = to_compute(y, scale), to_compute(y, shift), to_element(y, to_compute(y, fill))
    unit = _unit(x) and _unit(y)
    cols = x.shape[1]
    for r in range(i0 // cols, (i1 - 1) // cols + 1):
        c, n, j = _span(r, cols, i0, i1)
        xr, yr, kr = x[r, c : c + n], y[r, c : c + n], slice_or_none(keep, j, n)
        if unit:
            _affine_row(assume_contiguous(xr), assume_contiguous(yr), kr, sc, sh, fl)
        else:
            _affine_row(xr, yr, kr, sc, sh, fl)


@compiled
def _noise_row(x, y, z, sigma):
    """``y = x * f`` along a row segment, ``f = 1 + sigma * z`` rounded to the compute
    precision."""
    for k in range(x.shape[0]):
        f = to_compute(y, 1.0 + sigma * z[k])
        y[k] = to_element(y, to_compute(y, x[k]) * f)


@compiled
def _noise(x, y, seed, pos0, row_step, sigma, i0, i1):
    """``_noise_row`` over the flat indices ``i0 <= i < i1`` of the 2-D ``x`` and ``y``."""
    z = np.empty(TILE + 8, np.float64)
    words = np.empty(TILE + 8, np.uint32)
    unit = _unit(x) and _unit(y)
    cols = x.shape[1]
    for r in range(i0 // cols, (i1 - 1) // cols + 1):
        c, n, _ = _span(r, cols, i0, i1)
        skip = normals(z, words, pos0 + np.uint64(r) * row_step + np.uint64(c), n, seed)
        xr, yr, zr = x[r, c : c + n], y[r, c : c + n], z[skip : skip + n]
        if unit:
            _noise_row(assume_contiguous(xr), assume_contiguous(yr), zr, sigma)
        else:
            _noise_row(xr, yr, zr, sigma)


@compiled
def _add_row(x, bias, residual, y, keep, scale):
    """``y = keep ? residual + (x + bias) * scale : residual`` along a row segment, a
    dropped element keeping ``residual``'s own bits."""
    for k in range(x.shape[0]):
        res = residual[k]
        t = to_compute(y, x[k]) + to_compute(y, bias[k])
        kept = to_element(y, to_compute(y, res) + t * scale)
        y[k] = kept if keep[k] else res


@compiled
def _add_tile(x, bias, residual, y, keep, scale, i0, i1):
    """``_add_row`` over the flat indices ``i0 <= i < i1`` of the 2-D arrays, ``keep``
    holding the flags of the tile that starts at ``i0``."""
    sc = to_compute(y, scale)
    unit = _unit(x) and _unit(bias) and _unit(residual) and _unit(y)
    cols = x.shape[1]
    for r in range(i0 // cols, (i1 - 1) // cols + 1):
        c, n, j = _span(r, cols, i0, i1)
        row = slice(c, c + n)
        xr, br, rr, yr = x[r, row], bias[r, row], residual[r, row], y[r, row]
        kr = keep[j : j + n]
        if unit:
            _add_row(
                assume_contiguous(xr),
                assume_contiguous(br),
                assume_contiguous(rr),
                assume_contiguous(yr),
                kr,
                sc,
            )
        else:
            _add_row(xr, br, rr, yr, kr, sc)


# The kernels' compiled parts: each does the tiles t0 <= t < t1 of its n elements on the
# calling thread, with its buffers made once for them all; jit.launch runs the ranges.


@compiled
def _mask(bits, cols, seed, pos0, row_step, threshold, n, t0, t1):
    keep, buf = _keep_scratch()
    for t in range(t0, t1):
        i0, i1 = tile_bounds(t, n)
        flags = _draw_keep(keep, buf, seed, pos0, row_step, cols, threshold, i0, i1)
        _pack(flags, bits[i0 // 8 :], i1 - i0)


@compiled
def _forward_tiles(
    x, y, bits, flags, seed, pos0, row_step, sample_step, threshold, sc, sh, fl, n, t0, t1
):
    """``_forward`` with its scalars in the compute precision, and ``flags`` a tile's
    scratch for the keep flags to pack into ``bits``, or None for no mask."""
    unit = _unit(x) and _unit(y[0])
    cols = x.shape[1]
    keep = np.empty(VECTOR, np.uint8)
    for t in range(t0, t1):
        i0, i1 = tile_bounds(t, n)
        for s in range(y.shape[0]):  # every sample while this tile of x is in L1
            start = pos0 + np.uint64(s) * sample_step
            ys = y[s]
            for r in range(i0 // cols, (i1 - 1) // cols + 1):
                c, m, j = _span(r, cols, i0, i1)
                pos = start + np.uint64(r) * row_step + np.uint64(c)
                xr, yr, fr = x[r, c : c + m], ys[r, c : c + m], slice_or_none(flags, j, m)
                if unit:
                    xc, yc = assume_contiguous(xr), assume_contiguous(yr)
                    _drop_run(xc, yc, fr, keep, pos, seed, threshold, sc, sh, fl)
                else:
                    _drop_run(xr, yr, fr, keep, pos, seed, threshold, sc, sh, fl)
            if flags is not None:
                _pack(flags, bits[s, i0 // 8 :], i1 - i0)


@compiled
def _forward(
    x, y, bits, seed, pos0, row_step, sample_step, threshold, scale, shift, fill, n, t0, t1
):
    sc, sh, fl = to_compute(y, scale), to_compute(y, shift), to_element(y, to_compute(y, fill))
    args = (seed, pos0, row_step, sample_step, threshold, sc, sh, fl, n, t0, t1)
    if bits.size:
        _forward_tiles(x, y, bits, np.empty(TILE, np.uint8), *args)
    else:
        _forward_tiles(x, y, bits, None, *args)


@compiled
def _apply(x, keep, y, scale, shift, fill, n, t0, t1):
    flags = np.empty(TILE, np.uint8)
    for t in range(t0, t1):
        i0, i1 = tile_bounds(t, n)
        _gather(keep, flags, i0, i1)
        _affine(x, y, flags, scale, shift, fill, i0, i1)


@compiled
def _backward(g, out, bits, scale, n, t0, t1):
    keep = np.empty(TILE, np.uint8)
    for t in range(t0, t1):
        i0, i1 = tile_bounds(t, n)
        _unpack(bits[i0 // 8 :], keep, i1 - i0)
        _affine(g, out, keep, scale, None, 0.0, i0, i1)


@compiled
def _scale(x, y, factor, n, t0, t1):
    for t in range(t0, t1):
        i0, i1 = tile_bounds(t, n)
        _affine(x, y, None, factor, None, 0.0, i0, i1)


@compiled
def _gaussian(x, y, seed, pos0, row_step, sigma, n, t0, t1):
    for t in range(t0, t1):
        i0, i1 = tile_bounds(t, n)
        _noise(x, y, seed, pos0, row_step, sigma, i0, i1)


@compiled
def _add(x, bias, residual, y, bits, seed, pos0, row_step, threshold, scale, n, t0, t1):
    keep, buf = _keep_scratch()
    for t in range(t0, t1):
        i0, i1 = tile_bounds(t, n)
        flags = _draw_keep(keep, buf, seed, pos0, row_step, x.shape[1], threshold, i0, i1)
        _add_tile(x, bias, residual, y, flags, scale, i0, i1)
        if bits.size:
            _pack(flags, bits[i0 // 8 :], i1 - i0)


def mask(bits, rows, cols, seed, pos0, row_step, threshold, n_threads):
    """:meth:`Kernels.mask`: each tile's flags drawn four to a word, packed a byte a
    multiply."""
    args = (np.uint64(seed), np.uint64(pos0), np.uint64(row_step), np.uint64(threshold))
    launch(_mask, rows * cols, n_threads, bits, cols, *args)


def forward(
    x, y, bits, seed, pos0, row_step, sample_step, threshold, scale, shift, fill, n_threads
):
    """:meth:`Kernels.forward`: every sample drawn and applied over a tile of ``x`` while
    the tile is in L1, 128 elements at a time under AVX-512 and 32 elsewhere; the keep
    flags packed a tile at a time when a mask is wanted."""
    launch(
        _forward,
        x.size,
        n_threads,
        x,
        y,
        bits,
        np.uint64(seed),
        np.uint64(pos0),
        np.uint64(row_step),
        np.uint64(sample_step),
        np.uint64(threshold),
        float(scale),
        float(shift),
        float(fill),
    )


def apply(x, keep, y, scale, shift, fill, n_threads):
    """:meth:`Kernels.apply`: each tile's ``keep`` gathered into a flag buffer, then
    applied as ``forward``'s flags are."""
    args = (x, keep, y, float(scale), float(shift), float(fill))
    launch(_apply, x.size, n_threads, *args)


def backward(g, out, bits, scale, n_threads):
    """:meth:`Kernels.backward`: each tile's bits unpacked into a flag buffer, then
    applied with no shift, compiled away."""
    launch(_backward, g.size, n_threads, g, out, bits, float(scale))


def scale(x, y, factor, n_threads):
    """:meth:`Kernels.scale`: the row loop of ``forward`` with no flags and no shift, both
    compiled away."""
    launch(_scale, x.size, n_threads, x, y, float(factor))


def gaussian(x, y, seed, pos0, row_step, sigma, n_threads):
    """:meth:`Kernels.gaussian`: each row segment's normals drawn into a buffer, then
    applied in a loop of their own."""
    launch(
        _gaussian,
        x.size,
        n_threads,
        x,
        y,
        np.uint64(seed),
        np.uint64(pos0),
        np.uint64(row_step),
        float(sigma),
    )


def add(x, bias, residual, y, bits, seed, pos0, row_step, threshold, scale, n_threads):
    """:meth:`Kernels.add`: every element computed, then kept or replaced by
    ``residual``'s own value, which vectorises."""
    launch(
        _add,
        x.size,
        n_threads,
        x,
        bias,
        residual,
        y,
        bits,
        np.uint64(seed),
        np.uint64(pos0),
        np.uint64(row_step),
        np.uint64(threshold),
        float(scale),
    )
