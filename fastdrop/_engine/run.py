"""The runner: a request, its arrays and their window in, the result out.

:func:`run` picks the backend for the request and calls that backend's kernels (the
Protocol in ``fastdrop._contract.kernels``) over the pieces of a :func:`plan`. Nothing
here validates arguments (``fastdrop._engine.request`` has) or knows which front called:
an in-memory array is the one window that covers it all, a Dask chunk is a window of a
larger array, and both get the same kernels, the same mask drawing and the same bits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from fastdrop._contract.kernels import Kernels
from fastdrop._contract.stream import IDENTITY, U64
from fastdrop._engine import backends, checks, threads
from fastdrop._engine.plan import Plan, Window, native, plan
from fastdrop._engine.request import (
    Add,
    Affine,
    Drop,
    Evaluate,
    FromMask,
    Mask,
    Noise,
    Request,
    Stream,
)

NO_BITS = np.empty((0, 0), np.uint8)  # forward: no mask wanted
FLOAT32 = np.dtype(np.float32)


@dataclass(slots=True)
class Result:
    """What a request gives: ``y``, and the packed mask when the request asked for it."""

    y: np.ndarray
    mask: np.ndarray | None = None

    def returned(self) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """What a public function returns: ``y``, or ``(y, mask)``."""
        return self.y if self.mask is None else (self.y, self.mask)


def run(req: Request, inputs: Sequence[Any] = (), window: Window | None = None) -> Result:
    """The result of ``req`` on ``inputs`` (for a :class:`Mask`, none), whose elements are
    ``window`` of a larger array (None: the whole of the first input).

    Under ``"auto"``, the backend is the dispatch table's for the first input's dtype
    and the window's size (a mask has no dtype: float32's stands in), and a Numba that
    fails at run time (unable to compile, say) is dropped with a warning, and the call
    goes to the next backend.
    """
    if window is None:
        window = Window.whole(inputs[0].shape)
    dtype = inputs[0].dtype if inputs else FLOAT32
    while True:
        name, module = backends.resolve(req.backend, dtype, window.size)
        try:
            return _execute(req, cast(Kernels, module), inputs, window)
        except Exception as exc:
            if req.backend != "auto" or name != "numba" or isinstance(exc, ValueError | TypeError):
                raise
            backends.disable(name, exc)


def _execute(req: Request, kernels: Kernels, inputs: Sequence[Any], window: Window) -> Result:
    match req:
        case Drop():
            return _drop(req, kernels, inputs[0], window)
        case Evaluate():
            return _evaluate(req, kernels, inputs[0], window)
        case FromMask():
            return _from_mask(req, kernels, inputs[0], inputs[1], window)
        case Noise():
            return _noise(req, kernels, inputs[0], window)
        case Add():
            return _add(req, kernels, *inputs, window=window)
        case Mask():
            return _mask(req, kernels, window)
    raise TypeError(f"not a request: {req!r}")


def common(
    x: object, p: object, rng: object, offset: object, backend: object, out: object = None
) -> np.ndarray | None:
    """``dropout(x, p, rng=rng, offset=offset, out=out)`` whole in C (Cython's
    ``common``), when ``x``, ``p``, ``rng``, ``offset`` and ``out`` are of its kind (an
    aligned, C-contiguous, native float32 or float64 array, a float, two ints, and None
    or an array like ``x`` that is ``x`` or shares no memory with it) and the backend in
    force for ``backend=backend`` runs it on Cython; else None, and the caller takes the
    general path."""
    cython = backends.common_entry(backend, x)
    if cython is None:
        return None
    return cython.common(x, p, rng, offset, out, threads.usable(), cython.PARALLEL_MIN)


def empty_like(x: np.ndarray, samples: int | None = None) -> np.ndarray:
    """A result for ``x``: its shape and dtype (in native byte order), laid out in memory
    as ``x`` is, as ``np.empty_like(x, order="K")`` lays it out (a Fortran-ordered or
    channels-last ``x`` gives a result with the same strides); with ``samples``, a leading
    axis of that length, outermost, each sample laid out so."""
    dtype = checks.native(x.dtype)
    if samples is None:
        return np.empty_like(x, dtype, order="K", subok=False)
    # x's axes from the outermost in memory in, as order="K" sorts them
    order = sorted(range(x.ndim), key=lambda a: -abs(x.strides[a]) if x.shape[a] > 1 else 0)
    y = np.empty((samples, *(x.shape[a] for a in order)), dtype)
    return y.transpose(0, *(1 + order.index(a) for a in range(x.ndim)))


# -- the requests ---------------------------------------------------------------------------


def _drop(req: Drop, kernels: Kernels, x: np.ndarray, window: Window) -> Result:
    k = 1 if req.samples is None else req.samples
    y = empty_like(x, req.samples) if req.out is None else req.out
    y3 = y if req.samples is not None else y[None]
    n_threads = threads.for_call(y.size, kernels)
    if req.noise is not None:
        part = window.within(req.noise)
        bits = _draw_masks(kernels, part, req.stream, k, n_threads)
        if x.size and k:
            _apply(kernels, x, y3, unpack(bits, part.block), req.affine, window, n_threads)
    else:
        bits = np.empty((k, (window.size + 7) // 8), np.uint8) if req.return_mask else NO_BITS
        if x.size and k:
            bits = _fused(kernels, x, y3, bits, req.stream, req.affine, window, n_threads)
    if not req.return_mask:
        return Result(y)
    return Result(y, bits if req.samples is not None else bits[0])


def _fused(
    kernels: Kernels,
    x: np.ndarray,
    y3: np.ndarray,
    bits: np.ndarray,
    stream: Stream,
    affine: Affine,
    window: Window,
    n_threads: int,
) -> np.ndarray:
    """``y3[s] = keep ? x * scale + shift : fill``, the mask drawn and applied in one pass
    by the forward kernel, sample ``s`` drawn ``s * window.total`` positions on. Returns
    the packed masks: the kernel writes them into ``bits`` when the call is one piece;
    else they are drawn on their own (a piece's first element need not start a byte)."""
    p = plan(window, [x], y3, lead=1)
    if bits.size and len(p.pieces) > 1:
        bits = _draw_masks(kernels, window, stream, y3.shape[0], n_threads)
        written = NO_BITS
    else:
        written = bits
    for piece in p.pieces:
        x2, y2 = piece.views
        position = (stream.offset + piece.position) % U64
        kernels.forward(
            x2, y2, written, stream.seed, position, piece.row_step, window.total,
            stream.threshold, affine.scale, affine.shift, affine.fill, n_threads,
        )  # fmt: skip
    p.finish()
    return bits


def _apply(
    kernels: Kernels,
    x: np.ndarray,
    y3: np.ndarray,
    flags: np.ndarray,
    affine: Affine,
    window: Window,
    n_threads: int,
) -> None:
    """``y3[s] = flags[s] ? x * scale + shift : fill``, each ``flags[s]`` broadcast to ``x``."""
    for s in range(y3.shape[0]):
        keep = np.broadcast_to(flags[s], x.shape)
        p = plan(window, [x, keep], y3[s, ...])
        for piece in p.pieces:
            x2, k2, y2 = piece.views
            kernels.apply(x2, k2, y2, affine.scale, affine.shift, affine.fill, n_threads)
        p.finish()


def _draw_masks(
    kernels: Kernels, window: Window, stream: Stream, k: int, n_threads: int
) -> np.ndarray:
    """The packed masks ``(k, nbytes)`` of the block's elements, sample ``s`` drawn ``s *
    window.total`` positions on, each in the block's C order."""
    m = window.size
    bits = np.empty((k, (m + 7) // 8), np.uint8)
    if not m:
        return bits
    if window.block == window.shape:  # a whole array: one run of positions per sample
        for s in range(k):
            at = stream.sample(s, m)
            kernels.mask(bits[s], 1, m, at.seed, at.offset, m, at.threshold, n_threads)
        return bits
    rows = window.layouts()[0]  # no arrays: the longest rows, in the fewest grids
    places = list(window.places(rows))
    size = rows.rows * rows.cols
    aligned = all(first % 8 == 0 for _, _, first in places)
    for s in range(k):
        at = stream.sample(s, window.total)
        flags = None if aligned else np.empty(m, np.uint8)
        for _, position, first in places:
            into = bits[s, first // 8 :] if flags is None else np.empty((size + 7) // 8, np.uint8)
            kernels.mask(
                into, rows.rows, rows.cols, at.seed, (at.offset + position) % U64,
                rows.row_step, at.threshold, n_threads,
            )  # fmt: skip
            if flags is not None:  # a grid that starts inside a byte: placed bit by bit
                flags[first : first + size] = np.unpackbits(into, count=size, bitorder="little")
        if flags is not None:
            bits[s] = np.packbits(flags, bitorder="little")
    return bits


def _evaluate(req: Evaluate, kernels: Kernels, x: np.ndarray, window: Window) -> Result:
    if req.factor is None and req.out is None and req.samples is None:
        y = x
    else:
        y = empty_like(x, req.samples) if req.out is None else req.out
        y3 = y if req.samples is not None else y[None]
        if req.factor is None or not y.size:
            np.copyto(y3, x)
        else:
            n_threads = threads.for_call(x.size, kernels)
            p = plan(window, [x], y3[0, ...])
            for piece in p.pieces:
                x2, y2 = piece.views
                kernels.scale(x2, y2, req.factor, n_threads)
            p.finish()
            np.copyto(y3[1:], y3[0])
    if not req.return_mask:
        return Result(y)
    return Result(y, all_kept(math.prod(x.shape if req.noise is None else req.noise), req.samples))


def _from_mask(
    req: FromMask, kernels: Kernels, grad: np.ndarray, bits: np.ndarray, window: Window
) -> Result:
    y = empty_like(grad) if req.out is None else req.out
    n_threads = threads.for_call(grad.size, kernels)
    affine = Affine(req.scale)
    if req.noise is not None:
        part = window.within(req.noise)
        every_sample = (slice(None), *part.index)
        flags = unpack(bits[None], req.noise)[every_sample]
        if grad.size:
            _apply(kernels, grad, y[None], flags, affine, window, n_threads)
    elif grad.size:
        p = plan(window, [grad], y)
        for piece in p.pieces:
            g2, y2 = piece.views
            kernels.backward(g2, y2, bit_slice(bits, piece.first, g2.size), req.scale, n_threads)
        p.finish()
    return Result(y)


def _noise(req: Noise, kernels: Kernels, x: np.ndarray, window: Window) -> Result:
    y = empty_like(x) if req.out is None else req.out
    if x.size:
        n_threads = threads.for_call(x.size, kernels)
        p = plan(window, [x], y)
        for piece in p.pieces:
            position = (req.offset + piece.position) % U64
            x2, y2 = piece.views
            kernels.gaussian(x2, y2, req.seed, position, piece.row_step, req.sigma, n_threads)
        p.finish()
    return Result(y)


def _add(
    req: Add,
    kernels: Kernels,
    x: np.ndarray,
    residual: np.ndarray,
    bias: np.ndarray | None,
    *,
    window: Window,
) -> Result:
    """``bias`` broadcasts to ``x`` (None: no bias, ``-0.0``, the exact identity); it is
    made native before it is broadcast, so a byteswapped one is copied at its own size."""
    dtype = checks.native(x.dtype)
    y = empty_like(x) if req.out is None else req.out
    bits = np.empty((window.size + 7) // 8 if req.return_mask else 0, np.uint8)
    if x.size:
        b = np.broadcast_to(np.array(IDENTITY, dtype) if bias is None else native(bias), x.shape)
        n_threads = threads.for_call(x.size, kernels)
        p: Plan = plan(window, [x, b, residual], y)
        written = bits
        if bits.size and len(p.pieces) > 1:
            bits, written = _draw_masks(kernels, window, req.stream, 1, n_threads)[0], bits[:0]
        s = req.stream
        for piece in p.pieces:
            position = (s.offset + piece.position) % U64
            x2, b2, r2, y2 = piece.views
            kernels.add(
                x2, b2, r2, y2, written, s.seed, position, piece.row_step, s.threshold, req.scale,
                n_threads,
            )  # fmt: skip
        p.finish()
    return Result(y, bits if req.return_mask else None)


def _mask(req: Mask, kernels: Kernels, window: Window) -> Result:
    """Packed: the bits of the mask's elements that the window reads (of the block, or of
    its part of the noise-shaped mask). Else ``bool`` flags of the block, broadcast."""
    part = window if req.noise is None else window.within(req.noise)
    bits = _draw_masks(kernels, part, req.stream, 1, threads.for_call(part.size, kernels))
    if req.packed:
        return Result(bits[0])
    flags = unpack(bits, part.block)[0, ...].view(bool)
    return Result(flags if req.noise is None else np.broadcast_to(flags, window.block).copy())


# -- packed masks ---------------------------------------------------------------------------


def unpack(bits: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``uint8`` keep flags of ``(samples, *shape)`` from packed masks ``(samples, nbytes)``."""
    flags = np.unpackbits(bits, axis=-1, count=math.prod(shape), bitorder="little")
    return flags.reshape(bits.shape[0], *shape)


def all_kept(m: int, samples: int | None) -> np.ndarray:
    """The packed mask of ``m`` elements that keeps every one (per sample)."""
    bits = np.full((1 if samples is None else samples, (m + 7) // 8), 0xFF, np.uint8)
    if m % 8:
        bits[:, -1] = (1 << (m % 8)) - 1
    return bits[0] if samples is None else bits


def bit_slice(bits: np.ndarray, start: int, count: int) -> np.ndarray:
    """Bits ``[start, start + count)`` of a packed mask, realigned to start a byte."""
    head, shift = divmod(start, 8)
    chunk = bits[head : head + (count + 7) // 8 + 1]
    if not shift:
        return chunk
    words = np.append(chunk, np.uint8(0)).astype(np.uint16)
    return ((words[:-1] >> shift) | (words[1:] << (8 - shift))).astype(np.uint8)


def sum_to(a, shape: tuple[int, ...]):
    """``a`` (an ndarray or a Dask array) summed over the axes along which ``shape``
    broadcasts to ``a.shape``: a broadcast bias's gradient, in float32 for float16 and
    bfloat16."""
    lead = a.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and a.shape[lead + i] != 1
    )
    ctype = checks.compute_dtype(a.dtype)
    with np.errstate(all="ignore"):  # inf - inf, 16-bit overflow: as in the kernels, silent
        total = a.sum(axis=axes, dtype=ctype, keepdims=True).reshape(shape).astype(a.dtype)
    return total[...]  # an array: NumPy sums a 0-d array to a scalar
