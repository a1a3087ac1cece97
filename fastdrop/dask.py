"""fastdrop on Dask arrays: the same results as on NumPy arrays, whatever the chunking.

Each chunk computes its own elements' stream positions: the C-order index of each
element in the whole array, plus ``offset``. So
``fastdrop.dask.dropout(da.from_array(x, chunks=c), p, rng=s, offset=o).compute()`` is
bit-identical to ``fastdrop.dropout(x, p, rng=s, offset=o)`` for every chunking ``c``.
A seed is fixed when the graph is built (``rng=None`` draws one then), so recomputing a
graph, or a chunk lost with a worker, gives the same answer. Each function adds one task
per chunk and reads each chunk once.

A chunk's stream positions form rows: the chunk's trailing axes that span the whole
array run on in C order, and each step along the axis before them jumps by a fixed
number of positions. The kernels take such rows (a first position and a row step), so a
chunk is one kernel call per index of its remaining leading axes, and no chunk ever
builds an array of positions.

Needs Dask: ``pip install "fastdrop[dask]"``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

try:
    import dask.array as da
    from dask.base import tokenize
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        'fastdrop.dask needs Dask, which is not installed: pip install "fastdrop[dask]"'
    ) from exc

from fastdrop._api import core as _api
from fastdrop._api import family as _variants
from fastdrop._api.core import IDENTITY, NO_BITS
from fastdrop._contract import stream
from fastdrop._contract.stream import U64
from fastdrop._engine import backends as _backends
from fastdrop._engine import checks as _checks
from fastdrop._engine import plan as _layout
from fastdrop._engine import threads as _threads
from fastdrop._engine.checks import RngLike

__all__ = [
    "alpha_dropout",
    "alpha_dropout_backward",
    "bernoulli_mask",
    "drop_path",
    "drop_path_backward",
    "dropout",
    "dropout_add",
    "dropout_add_backward",
    "dropout_backward",
    "feature_alpha_dropout",
    "feature_alpha_dropout_backward",
    "gaussian_dropout",
    "gaussian_dropout_backward",
    "locked_dropout",
    "locked_dropout_backward",
    "spatial_dropout",
    "spatial_dropout_backward",
]

Where = tuple[tuple[int, ...], tuple[int, ...]]  # (shape of the whole array, chunk's start)


# -- inside a chunk ----------------------------------------------------------------------


def _origin(where: Where) -> tuple[tuple[int, ...], int]:
    """The whole array's C-order steps, and the position of the chunk's first element."""
    shape, start = where
    steps = tuple(math.prod(shape[k + 1 :]) for k in range(len(shape)))
    return steps, sum(s * g for s, g in zip(start, steps, strict=True))


def _layouts(where: Where, block: tuple[int, ...]):
    """The ways to see a chunk of shape ``block`` as rows of consecutive positions, longest
    rows first: ``(lead, rows, cols, row_step)``. The chunk, reshaped to ``lead + (rows,
    cols)``, has at ``idx + (r, c)`` the position of ``idx`` plus ``r * row_step + c``.
    Rows may span the chunk's trailing axes that span the whole array; the last layout,
    rows along the chunk's last axis, is the chunk's own shape."""
    shape, _ = where
    steps, _ = _origin(where)
    first = len(shape) - 1  # axes after it span the whole array: they run on in C order
    while first > 0 and block[first] == shape[first]:
        first -= 1
    for j in range(max(first, 0), max(len(shape), 1)):
        cols = math.prod(block[j:])
        yield ((), 1, cols, cols) if j == 0 else (block[: j - 1], block[j - 1], cols, steps[j - 1])


def _reshaped(arrays, block, core) -> list[np.ndarray] | None:
    """Views of ``arrays`` (each ``extra axes + block``) as ``extra axes + core``, or None
    when one of them would need a copy."""
    try:
        return [a.reshape(a.shape[: a.ndim - len(block)] + core, copy=False) for a in arrays]
    except ValueError:
        return None


def _positioned(kernel, inputs, y, where, offset, lead: int = 0) -> None:
    """``kernel(*input rows, y rows, first position, row step)`` over a chunk, ``y`` with
    ``lead`` extra leading (sample) axes, in the longest rows that every array's layout
    gives without a copy."""
    arrays = [*(_layout.native(a) for a in inputs), y]
    block = y.shape[lead:]
    fits = (
        (layout, _reshaped(arrays, block, (*layout[0], layout[1], layout[2])))
        for layout in _layouts(where, block)
    )
    (axes, _, _, row_step), views = next((lay, v) for lay, v in fits if v is not None)
    steps, base = _origin(where)
    samples = (slice(None),) * lead
    for idx in np.ndindex(axes):
        first = (offset + base + sum(i * g for i, g in zip(idx, steps, strict=False))) % U64
        kernel(*(v[idx] for v in views[:-1]), views[-1][samples + idx], first, row_step)


def _forward(x, y, where, draw, affine, backend) -> None:
    """``y[s] = keep ? x * scale + shift : fill`` over a chunk, ``y`` of shape ``(samples,
    *x.shape)``, ``keep`` drawn at the chunk's own positions, sample ``s`` from ``offset +
    s * (whole array's size)`` on; ``draw = (seed, offset, threshold)``, ``affine = (scale,
    shift, fill)``."""
    seed, offset, threshold = draw
    step = math.prod(where[0])

    def run(k):
        n_threads = _threads.for_call(y.size, k)

        def kernel(x2, y2, first, row_step):
            k.forward(x2, y2, NO_BITS, seed, first, row_step, step, threshold, *affine, n_threads)

        _positioned(kernel, [x], y, where, offset, lead=1)

    _api.call(_api.backend_for(backend), run)


def _keep(where, block, draw, backend) -> np.ndarray:
    """The chunk's boolean keep-mask, drawn at its own positions: the forward pass of a
    broadcast 1.0 (no copy), 1.0 where kept and 0.0 where dropped."""
    y = np.empty((1, *block), np.float32)
    if y.size:
        one = np.broadcast_to(np.float32(1), block)
        _forward(one, y, where, draw, (1.0, IDENTITY, 0.0), backend)
    return y[0] != 0


def _noise_where(where, block, noise) -> tuple[Where, tuple[int, ...]]:
    """The part of the mask, of shape ``noise``, that a chunk at ``where`` of shape
    ``block`` broadcasts from: its place and its shape."""
    shape, start = where
    part = tuple(1 if n == 1 and s != 1 else b for n, s, b in zip(noise, shape, block, strict=True))
    first = tuple(
        0 if n == 1 and s != 1 else a for n, s, a in zip(noise, shape, start, strict=True)
    )
    return (noise, first), part


def _where(block_info) -> Where:
    info = block_info[0]
    return tuple(info["shape"]), tuple(a for a, _ in info["array-location"])


def _affine_chunk(x, draw, affine, noise, samples, backend, block_info=None):
    """A chunk of dropout or one of its affine variants, with a leading axis of
    ``samples`` unless that is None; ``noise`` is the mask's shape when it broadcasts."""
    where = _where(block_info)
    k = 1 if samples is None else samples
    y = np.empty((k, *x.shape), _checks.native(x.dtype))
    if x.size and k and noise is None:
        _forward(x, y, where, draw, affine, backend)
    elif x.size and k:
        noise_where, part = _noise_where(where, x.shape, noise)
        seed, offset, threshold = draw
        m = math.prod(noise)
        draws = [(seed, (offset + s * m) % U64, threshold) for s in range(k)]
        flags = np.stack([_keep(noise_where, part, d, backend) for d in draws]).view(np.uint8)
        choice = _api.backend_for(backend)
        n_threads = _threads.for_call(y.size, choice[2])
        _api.call(choice, _api._broadcast_apply, x, y, flags, affine, n_threads)
    return y if samples is not None else y[0]


def _eval_chunk(x, factor, samples, backend):
    """A chunk of eval mode: ``x * factor`` (``factor`` None: ``x``), once per sample."""
    return _api.evaluate(_api.backend_for(backend), x, factor, samples, None)


def _add_chunk(x, residual, bias, draw, scale, backend, block_info=None):
    """A chunk of the fused bias-dropout-add; ``bias`` is its (broadcastable) part of the
    bias, or None."""
    where = _where(block_info)
    dtype = _checks.native(x.dtype)
    y = np.empty(x.shape, dtype)
    if not x.size:
        return y
    # Native before broadcasting, so a byteswapped bias is copied at its own size.
    bias = np.array(IDENTITY, dtype) if bias is None else _layout.native(bias)
    seed, offset, threshold = draw
    no_bits = np.empty(0, np.uint8)

    def run(k):
        n_threads = _threads.for_call(x.size, k)

        def kernel(x2, b2, r2, y2, first, row_step):
            k.add(x2, b2, r2, y2, no_bits, seed, first, row_step, threshold, scale, n_threads)

        inputs = [x, np.broadcast_to(bias, x.shape), residual]
        _positioned(kernel, inputs, y, where, offset)

    _api.call(_api.backend_for(backend), run)
    return y


def _gaussian_chunk(x, seed, offset, sigma, backend, block_info=None):
    where = _where(block_info)
    y = np.empty(x.shape, _checks.native(x.dtype))
    if x.size:

        def run(k):
            n_threads = _threads.for_call(x.size, k)

            def kernel(x2, y2, first, row_step):
                k.gaussian(x2, y2, seed, first, row_step, sigma, n_threads)

            _positioned(kernel, [x], y, where, offset)

        _api.call(_api.backend_for(backend), run)
    return y


def _mask_chunk(draw, noise, packed, backend, chunks, nbytes, block_id=None):
    """Chunk ``block_id`` of the mask of an array chunked as ``chunks``: ``bool``, or
    packed and padded to ``nbytes`` as ``bernoulli_mask`` lays it out."""
    grid = block_id[: len(chunks)]
    block = tuple(c[i] for c, i in zip(chunks, grid, strict=True))
    start = tuple(sum(c[:i]) for c, i in zip(chunks, grid, strict=True))
    where = (tuple(sum(c) for c in chunks), start)
    if noise is not None:
        where, part = _noise_where(where, block, noise)
        keep = np.broadcast_to(_keep(where, part, draw, backend), block)
    else:
        keep = _keep(where, block, draw, backend)
    if not packed:
        return np.ascontiguousarray(keep)
    bits = np.zeros(nbytes, np.uint8)
    packed_bits = np.packbits(keep, axis=None, bitorder="little")
    bits[: packed_bits.size] = packed_bits
    return bits.reshape((1,) * len(block) + (nbytes,))


def _mask_backward_chunk(grad, mask, scale, backend):
    """``keep ? grad * scale : +0.0`` over a chunk, ``keep`` from its packed ``mask``."""
    y = np.empty(grad.shape, _checks.native(grad.dtype))
    if grad.size:
        bits = mask.reshape(-1)[: (grad.size + 7) // 8]
        choice = _api.backend_for(backend)
        n_threads = _threads.for_call(grad.size, choice[2])
        _api.call(
            choice,
            lambda k: _layout.run(k.backward, [grad], y, lambda *_: (bits, scale, n_threads)),
        )
    return y


# -- building graphs ---------------------------------------------------------------------


def _packed_chunks(chunks) -> tuple[tuple[int, ...], ...]:
    """The chunks of the packed masks of an array chunked as ``chunks``: one block per
    chunk along the grid axes, then the largest chunk's byte count."""
    nbytes = max((math.prod(b) + 7) // 8 for b in itertools.product(*chunks))
    return (*((1,) * len(c) for c in chunks), (nbytes,))


def _plain(x: da.Array, name: str) -> da.Array:
    """``x`` with plain ndarray chunks, as the kernels need: masked chunks are an error (as
    a masked array is in memory); other subclasses' (a matrix's) are read as their data."""
    meta = da.utils.meta_from_array(x)
    _checks.unmasked(meta, name)
    if type(meta) is np.ndarray:
        return x
    return da.map_blocks(_ndarray, x, meta=np.empty((0,) * x.ndim, x.dtype))


def _ndarray(block: np.ndarray) -> np.ndarray:
    return np.asarray(block)


def _array(x: object, name: str) -> da.Array:
    if not isinstance(x, da.Array):
        raise TypeError(f"{name} must be a dask array, got {type(x).__name__}")
    if x.dtype.char not in "efd":
        raise TypeError(f"{name} must be a float16, float32 or float64 array, got dtype {x.dtype}")
    if any(math.isnan(c) for axis in x.chunks for c in axis):
        raise ValueError(f"{name} has unknown chunk sizes; call compute_chunk_sizes() first")
    return _plain(x, name)


def _draw(p, rng, offset) -> tuple[int, int, int]:
    """``(seed, offset, threshold)``, the seed drawn now (once, at graph construction)."""
    rng = _checks.rng(rng)
    offset = _checks.u64(offset, "offset")
    return _checks.seed(rng), offset, stream.threshold(p)


def _eval_draw(rng, offset) -> tuple[int, int, int]:
    """The draw of eval mode, ``rng`` and ``offset`` checked but unused: every element kept."""
    _checks.rng(rng)
    _checks.u64(offset, "offset")
    return 0, 0, 0


def _map(fn: Callable, x: da.Array, name: str, *args, samples: int | None = None) -> da.Array:
    """One task per chunk of ``x``: ``fn(chunk, *args)``, with a leading axis of
    ``samples`` unless that is None."""
    lead = () if samples is None else ((samples,),)
    dtype = _checks.native(x.dtype)
    return da.map_blocks(
        fn,
        x,
        *args,
        dtype=dtype,
        chunks=(*lead, *x.chunks),
        new_axis=[0] if lead else None,
        meta=np.empty((0,) * (x.ndim + len(lead)), dtype),
        name=f"fastdrop-{name}-{tokenize(x, *args)}",
    )


def _mask_graph(shape, chunks, draw, noise, packed, backend) -> da.Array:
    """The masks of :func:`bernoulli_mask` (validated arguments, ``chunks`` normalised)."""
    name = f"fastdrop-mask-{tokenize(shape, chunks, draw, noise, packed, backend)}"
    if not packed:
        return da.map_blocks(
            _mask_chunk,
            draw,
            noise,
            False,
            backend,
            chunks,
            0,
            chunks=chunks,
            dtype=bool,
            meta=np.empty((0,) * len(shape), bool),
            name=name,
        )
    grid = _packed_chunks(chunks)
    return da.map_blocks(
        _mask_chunk,
        draw,
        noise,
        True,
        backend,
        chunks,
        grid[-1][0],
        chunks=grid,
        dtype=np.uint8,
        meta=np.empty((0,) * (len(shape) + 1), np.uint8),
        name=name,
    )


def _returned_masks(x, draw, noise, samples, backend) -> da.Array:
    """What ``return_mask=True`` gives: the packed masks, per chunk of ``x``, that the
    result was drawn with, stacked along a leading axis of ``samples`` unless None."""
    if samples is None:
        return _mask_graph(x.shape, x.chunks, draw, noise, True, backend)
    seed, offset, threshold = draw
    m = math.prod(x.shape if noise is None else noise)
    grid = _packed_chunks(x.chunks)
    if not samples:
        shape = (0, *(len(c) for c in x.chunks), grid[-1][0])
        return da.zeros(shape, np.uint8, chunks=((0,), *grid))
    draws = [(seed, (offset + s * m) % U64, threshold) for s in range(samples)]
    return da.stack([_mask_graph(x.shape, x.chunks, d, noise, True, backend) for d in draws])


def _sampled(x, draw, affine, noise, samples, return_mask, backend, name):
    """The training-mode graph of dropout and its affine variants (validated arguments)."""
    y = _map(_affine_chunk, x, name, draw, affine, noise, samples, backend, samples=samples)
    return (y, _returned_masks(x, draw, noise, samples, backend)) if return_mask else y


def _evaluated(x, factor, samples, backend) -> da.Array:
    """Eval mode: ``x`` itself (``factor`` None, no samples), else ``x * factor`` per sample."""
    if factor is None and samples is None:
        return x
    return _map(_eval_chunk, x, "eval", factor, samples, backend, samples=samples)


def dropout(
    x: da.Array,
    p: float = 0.5,
    *,
    rng: RngLike = None,
    offset: int = 0,
    training: bool = True,
    scaling: str = "inverted",
    noise_shape: tuple[int | None, ...] | None = None,
    samples: int | None = None,
    return_mask: bool = False,
    backend: str | None = None,
) -> da.Array | tuple[da.Array, da.Array]:
    """:func:`fastdrop.dropout` on a Dask array, chunk by chunk, with the same result.

    Parameters
    ----------
    x : dask.array.Array
        float16, float32 or float64, any chunking (ragged, split along every axis).
    p, rng, offset, training, scaling, noise_shape, samples, backend
        As for :func:`fastdrop.dropout`. ``rng=None`` draws a seed now, when the graph is
        built, so every computation of the result gives the same values. With
        ``samples``, each chunk reads ``x`` once and writes all its samples.
    return_mask : bool
        Also return the packed masks, one per chunk, as :func:`bernoulli_mask` lays them
        out (with a leading ``samples`` axis if asked): what :func:`dropout_backward`
        reads. They are drawn by a graph of their own, which reads no data.

    Returns
    -------
    y : dask.array.Array
        Same shape (with a leading ``samples`` axis, in one chunk, if asked), dtype and
        chunks as ``x``; one task per chunk. In eval mode with inverted scaling and no
        samples, ``x`` itself.
    mask : dask.array.Array of uint8
        Only with ``return_mask=True``.

    Examples
    --------
    >>> import dask.array as da, numpy as np, fastdrop, fastdrop.dask
    >>> x = np.arange(1.0, 13.0).reshape(3, 4)
    >>> y = fastdrop.dask.dropout(da.from_array(x, chunks=(2, 3)), 0.5, rng=7)
    >>> bool((y.compute() == fastdrop.dropout(x, 0.5, rng=7)).all())
    True
    >>> ys = fastdrop.dask.dropout(da.from_array(x, chunks=2), 0.5, rng=7, samples=4)
    >>> bool((ys.compute() == fastdrop.dropout(x, 0.5, rng=7, samples=4)).all())
    True
    """
    x = _array(x, "x")
    p = _checks.rate(p)
    scaling = _checks.scaling(scaling)
    noise = _checks.noise_shape(noise_shape, x.shape)
    samples = _checks.samples(samples)
    return_mask = _checks.flag(return_mask, "return_mask")
    _backends.requested(backend)  # a bad name fails now, not on a worker
    if not _checks.flag(training, "training"):
        draw = _eval_draw(rng, offset)
        y = _evaluated(x, 1.0 - p if scaling == "classic" else None, samples, backend)
        return (y, _returned_masks(x, draw, noise, samples, backend)) if return_mask else y
    affine = (stream.keep_scale(p, scaling), IDENTITY, 0.0)
    draw = _draw(p, rng, offset)
    return _sampled(x, draw, affine, noise, samples, return_mask, backend, "dropout")


def _backward_graph(grad, p, scale, mask, rng, offset, noise_shape, backend, name):
    """The gradient of dropout or an affine variant: ``keep ? grad * scale : +0.0``."""
    noise = _checks.noise_shape(noise_shape, grad.shape)
    offset = _checks.u64(offset, "offset")
    _backends.requested(backend)
    if (mask is None) == (rng is None):
        raise ValueError("give exactly one of mask= and rng= (the forward call's seed)")
    if mask is None:
        affine = (scale, IDENTITY, 0.0)
        return _map(_affine_chunk, grad, name, _draw(p, rng, offset), affine, noise, None, backend)
    if offset != 0:
        raise ValueError("offset= belongs with rng=; a mask is already positioned")
    layout = _packed_chunks(grad.chunks)
    if not isinstance(mask, da.Array) or mask.dtype != np.uint8 or mask.chunks != layout:
        raise ValueError(
            "mask must be the packed uint8 dask array of bernoulli_mask(..., chunks=grad.chunks),"
            f" chunked {layout}, got {getattr(mask, 'chunks', type(mask).__name__)}"
        )
    mask = _plain(mask, "mask")
    index = tuple(range(grad.ndim))
    dtype = _checks.native(grad.dtype)
    return da.blockwise(
        _mask_backward_chunk,
        index,
        grad,
        index,
        mask,
        (*index, grad.ndim),
        scale,
        None,  # blockwise takes (argument, index) pairs: None for plain values
        backend,
        None,
        dtype=dtype,
        concatenate=True,
        align_arrays=False,
        meta=np.empty((0,) * grad.ndim, dtype),
        name=f"fastdrop-{name}-{tokenize(grad, mask, scale, backend)}",
    )


def dropout_backward(
    grad: da.Array,
    p: float,
    *,
    mask: da.Array | None = None,
    rng: RngLike = None,
    offset: int = 0,
    scaling: str = "inverted",
    noise_shape: tuple[int | None, ...] | None = None,
    backend: str | None = None,
) -> da.Array:
    """:func:`fastdrop.dropout_backward` on a Dask array: the mask redrawn on each chunk
    from ``(rng, offset)``, or read from packed masks.

    Parameters
    ----------
    grad : dask.array.Array
    p, rng, offset, scaling, noise_shape, backend
        As for :func:`fastdrop.dropout_backward`; ``rng`` must be the forward's seed.
    mask : dask.array.Array, optional
        One packed mask per chunk of ``grad``, as :func:`bernoulli_mask` lays them out
        (``chunks=grad.chunks``) and ``dropout(..., return_mask=True)`` returns them.
        They are the full masks, already broadcast: ``noise_shape`` is not needed.

    Returns
    -------
    dask.array.Array

    Examples
    --------
    >>> import dask.array as da, numpy as np, fastdrop.dask
    >>> g = da.ones((2, 4), chunks=(1, 3))
    >>> fastdrop.dask.dropout_backward(g, 0.5, rng=42).compute()
    array([[2., 0., 0., 0.],
           [2., 0., 2., 0.]])
    """
    grad = _array(grad, "grad")
    p = _checks.rate(p)
    scale = stream.keep_scale(p, _checks.scaling(scaling))
    return _backward_graph(grad, p, scale, mask, rng, offset, noise_shape, backend, "backward")


def bernoulli_mask(
    shape: int | tuple[int, ...],
    p: float,
    *,
    chunks,
    rng: RngLike = None,
    offset: int = 0,
    noise_shape: tuple[int | None, ...] | None = None,
    packed: bool = True,
    backend: str | None = None,
) -> da.Array:
    """The keep-mask of :func:`dropout` for an array of ``shape`` chunked as ``chunks``.

    Parameters
    ----------
    shape : int or tuple of int
    p, rng, offset, noise_shape, backend
        As for :func:`fastdrop.bernoulli_mask`.
    chunks
        Any chunks Dask accepts for ``shape``, e.g. ``x.chunks``.
    packed : bool
        False: a ``bool`` dask array of ``shape`` and ``chunks``, True = kept, equal to
        ``fastdrop.bernoulli_mask(shape, ..., packed=False)``. True: ``uint8``, one packed
        mask per chunk: for a chunk grid of ``numblocks``, the array has shape
        ``numblocks + (nbytes,)`` and chunks of one block along the grid axes, and
        ``mask[i, j, ...]`` holds chunk ``(i, j, ...)``'s mask, its elements in the
        chunk's own C order, little bit order (bit ``k % 8`` of byte ``k // 8``), then
        zero bytes up to ``nbytes``, the largest chunk's byte count. That is what
        :func:`dropout_backward` reads, and ``numpy.unpackbits(m, bitorder="little")``
        unpacks one chunk.

    Returns
    -------
    dask.array.Array

    Examples
    --------
    >>> import fastdrop.dask
    >>> fastdrop.dask.bernoulli_mask((2, 4), 0.5, chunks=(1, 3), rng=42, packed=False).compute()
    array([[ True, False, False, False],
           [ True, False,  True, False]])
    """
    shape = _checks.shape(shape)
    p = _checks.rate(p)
    noise = _checks.noise_shape(noise_shape, shape)
    packed = _checks.flag(packed, "packed")
    _backends.requested(backend)  # a bad name fails now, not on a worker
    chunks = da.core.normalize_chunks(chunks, shape)
    return _mask_graph(shape, chunks, _draw(p, rng, offset), noise, packed, backend)


# -- the variants ------------------------------------------------------------------------


def alpha_dropout(
    x: da.Array,
    p: float = 0.5,
    *,
    rng: RngLike = None,
    offset: int = 0,
    training: bool = True,
    noise_shape: tuple[int | None, ...] | None = None,
    return_mask: bool = False,
    backend: str | None = None,
) -> da.Array | tuple[da.Array, da.Array]:
    """:func:`fastdrop.alpha_dropout` on a Dask array, chunk by chunk, with the same result;
    ``return_mask`` as for :func:`dropout`.

    Examples
    --------
    >>> import dask.array as da, numpy as np, fastdrop, fastdrop.dask
    >>> x = np.linspace(-1, 1, 12).reshape(3, 4)
    >>> y = fastdrop.dask.alpha_dropout(da.from_array(x, chunks=2), 0.2, rng=3)
    >>> bool((y.compute() == fastdrop.alpha_dropout(x, 0.2, rng=3)).all())
    True
    """
    x = _array(x, "x")
    p = _checks.rate(p)
    noise = _checks.noise_shape(noise_shape, x.shape)
    return_mask = _checks.flag(return_mask, "return_mask")
    _backends.requested(backend)
    if not _checks.flag(training, "training") or p == 0.0:  # as fastdrop.alpha_dropout: x itself
        draw = _eval_draw(rng, offset)
        return (x, _returned_masks(x, draw, noise, None, backend)) if return_mask else x
    affine = _variants._alpha_affine(p, x.dtype)
    return _sampled(x, _draw(p, rng, offset), affine, noise, None, return_mask, backend, "alpha")


def alpha_dropout_backward(
    grad: da.Array,
    p: float,
    *,
    mask: da.Array | None = None,
    rng: RngLike = None,
    offset: int = 0,
    noise_shape: tuple[int | None, ...] | None = None,
    backend: str | None = None,
) -> da.Array:
    """:func:`fastdrop.alpha_dropout_backward` on a Dask array; the arguments as for
    :func:`dropout_backward`.

    Examples
    --------
    >>> import dask.array as da, numpy as np, fastdrop.dask
    >>> fastdrop.dask.alpha_dropout_backward(da.ones(4, chunks=3), 0.5, rng=42).compute()
    array([0.88640489, 0.        , 0.        , 0.        ])
    """
    grad = _array(grad, "grad")
    p = _checks.rate(p)
    scale = _variants._alpha_affine(p, grad.dtype)[0] if p else 1.0
    return _backward_graph(grad, p, scale, mask, rng, offset, noise_shape, backend, "alpha-bwd")


def _structured(forward: Callable, noise_of: Callable, x: da.Array, p: float, axis, options):
    """``forward(x, p, noise_shape=noise_of(x.shape, *axis), **options)``."""
    noise = noise_of(_array(x, "x").shape, *axis)
    return forward(x, p, noise_shape=noise, **options)


def spatial_dropout(x: da.Array, p: float = 0.5, *, channel_axis: int = 1, **options):
    """:func:`fastdrop.spatial_dropout` on a Dask array: whole channels, across chunks.

    Examples
    --------
    >>> import dask.array as da, numpy as np, fastdrop, fastdrop.dask
    >>> x = np.ones((2, 3, 4, 4), np.float32)
    >>> y = fastdrop.dask.spatial_dropout(da.from_array(x, chunks=(1, 2, 3, 2)), 0.5, rng=1)
    >>> bool((y.compute() == fastdrop.spatial_dropout(x, 0.5, rng=1)).all())
    True
    """
    return _structured(dropout, _variants._spatial_noise, x, p, (channel_axis,), options)


def spatial_dropout_backward(grad: da.Array, p: float, *, channel_axis: int = 1, **options):
    """The gradient of :func:`spatial_dropout`; ``**options`` as for :func:`dropout_backward`.

    Examples
    --------
    >>> import dask.array as da, numpy as np, fastdrop, fastdrop.dask
    >>> g = np.ones((2, 3, 4))
    >>> b = fastdrop.dask.spatial_dropout_backward(da.from_array(g, chunks=2), 0.5, rng=1)
    >>> bool((b.compute() == fastdrop.spatial_dropout_backward(g, 0.5, rng=1)).all())
    True
    """
    return _structured(
        dropout_backward, _variants._spatial_noise, grad, p, (channel_axis,), options
    )


def locked_dropout(x: da.Array, p: float = 0.5, *, time_axis: int = 0, **options):
    """:func:`fastdrop.locked_dropout` on a Dask array: one mask for every time step.

    Examples
    --------
    >>> import dask.array as da, numpy as np, fastdrop, fastdrop.dask
    >>> x = np.ones((5, 2, 3))
    >>> y = fastdrop.dask.locked_dropout(da.from_array(x, chunks=2), 0.5, rng=1)
    >>> bool((y.compute() == fastdrop.locked_dropout(x, 0.5, rng=1)).all())
    True
    """
    return _structured(dropout, _variants._time_noise, x, p, (time_axis,), options)


def locked_dropout_backward(grad: da.Array, p: float, *, time_axis: int = 0, **options):
    """The gradient of :func:`locked_dropout`; ``**options`` as for :func:`dropout_backward`.

    Examples
    --------
    >>> import dask.array as da, numpy as np, fastdrop, fastdrop.dask
    >>> g = np.ones((2, 3, 4))
    >>> b = fastdrop.dask.locked_dropout_backward(da.from_array(g, chunks=2), 0.5, rng=1)
    >>> bool((b.compute() == fastdrop.locked_dropout_backward(g, 0.5, rng=1)).all())
    True
    """
    return _structured(dropout_backward, _variants._time_noise, grad, p, (time_axis,), options)


def drop_path(x: da.Array, p: float = 0.5, **options):
    """:func:`fastdrop.drop_path` on a Dask array: whole samples (axis 0).

    Examples
    --------
    >>> import dask.array as da, numpy as np, fastdrop, fastdrop.dask
    >>> x = np.ones((4, 3))
    >>> y = fastdrop.dask.drop_path(da.from_array(x, chunks=(3, 2)), 0.5, rng=1)
    >>> bool((y.compute() == fastdrop.drop_path(x, 0.5, rng=1)).all())
    True
    """
    return _structured(dropout, _variants._path_noise, x, p, (), options)


def drop_path_backward(grad: da.Array, p: float, **options):
    """The gradient of :func:`drop_path`; ``**options`` as for :func:`dropout_backward`.

    Examples
    --------
    >>> import dask.array as da, numpy as np, fastdrop, fastdrop.dask
    >>> g = np.ones((2, 3, 4))
    >>> b = fastdrop.dask.drop_path_backward(da.from_array(g, chunks=2), 0.5, rng=1)
    >>> bool((b.compute() == fastdrop.drop_path_backward(g, 0.5, rng=1)).all())
    True
    """
    return _structured(dropout_backward, _variants._path_noise, grad, p, (), options)


def feature_alpha_dropout(x: da.Array, p: float = 0.5, *, channel_axis: int = 1, **options):
    """:func:`fastdrop.feature_alpha_dropout` on a Dask array: alpha dropout of whole
    channels, across chunks.

    Examples
    --------
    >>> import dask.array as da, numpy as np, fastdrop, fastdrop.dask
    >>> x = np.zeros((2, 3, 4))
    >>> y = fastdrop.dask.feature_alpha_dropout(da.from_array(x, chunks=2), 0.5, rng=1)
    >>> bool((y.compute() == fastdrop.feature_alpha_dropout(x, 0.5, rng=1)).all())
    True
    """
    return _structured(alpha_dropout, _variants._feature_noise, x, p, (channel_axis,), options)


def feature_alpha_dropout_backward(grad: da.Array, p: float, *, channel_axis: int = 1, **options):
    """The gradient of :func:`feature_alpha_dropout`; ``**options`` as for
    :func:`alpha_dropout_backward`.

    Examples
    --------
    >>> import dask.array as da, numpy as np, fastdrop, fastdrop.dask
    >>> g = np.ones((2, 3, 4))
    >>> b = fastdrop.dask.feature_alpha_dropout_backward(da.from_array(g, chunks=2), 0.5, rng=1)
    >>> bool((b.compute() == fastdrop.feature_alpha_dropout_backward(g, 0.5, rng=1)).all())
    True
    """
    return _structured(
        alpha_dropout_backward, _variants._feature_noise, grad, p, (channel_axis,), options
    )


def _gaussian_graph(x, p, rng, offset, backend, name, factor_at_zero, training=True):
    """Gaussian noise on ``x``; at ``p = 0`` or out of training, as the NumPy API: ``x``
    itself for a ``factor_at_zero`` of None, else ``x`` times it in native byte order."""
    x = _array(x, name)
    p = _checks.rate(p, below_one=True)
    _backends.requested(backend)
    if p == 0.0 or not training:
        _eval_draw(rng, offset)
        return _evaluated(x, factor_at_zero, None, backend)
    seed, offset, _ = _draw(p, rng, offset)
    return _map(_gaussian_chunk, x, "gaussian", seed, offset, math.sqrt(p / (1.0 - p)), backend)


def gaussian_dropout(
    x: da.Array,
    p: float = 0.5,
    *,
    rng: RngLike = None,
    offset: int = 0,
    training: bool = True,
    backend: str | None = None,
) -> da.Array:
    """:func:`fastdrop.gaussian_dropout` on a Dask array, with the same result.

    Examples
    --------
    >>> import dask.array as da, numpy as np, fastdrop, fastdrop.dask
    >>> x = np.ones((3, 5))
    >>> y = fastdrop.dask.gaussian_dropout(da.from_array(x, chunks=(2, 2)), 0.1, rng=4)
    >>> bool((y.compute() == fastdrop.gaussian_dropout(x, 0.1, rng=4)).all())
    True
    """
    training = _checks.flag(training, "training")
    return _gaussian_graph(x, p, rng, offset, backend, "x", None, training)


def gaussian_dropout_backward(
    grad: da.Array,
    p: float,
    *,
    rng: RngLike,
    offset: int = 0,
    backend: str | None = None,
) -> da.Array:
    """:func:`fastdrop.gaussian_dropout_backward` on a Dask array: the noise redrawn on
    each chunk from the forward's ``(rng, offset)``.

    Examples
    --------
    >>> import dask.array as da, numpy as np, fastdrop, fastdrop.dask
    >>> g = np.ones((3, 5))
    >>> b = fastdrop.dask.gaussian_dropout_backward(da.from_array(g, chunks=2), 0.1, rng=4)
    >>> bool((b.compute() == fastdrop.gaussian_dropout_backward(g, 0.1, rng=4)).all())
    True
    """
    if rng is None:
        raise ValueError("gaussian_dropout_backward needs the forward's rng=")
    return _gaussian_graph(grad, p, rng, offset, backend, "grad", 1.0)


# -- fused bias-dropout-add --------------------------------------------------------------


def _bias_array(bias: object, x: da.Array) -> da.Array | None:
    """``bias`` as a dask array of ``x``'s dtype that broadcasts to ``x``, or None."""
    if bias is None:
        return None
    b = bias if isinstance(bias, da.Array) else da.from_array(_checks.array(bias, "bias"))
    b = _plain(b, "bias")
    _variants._same_kind(b, x, "bias")
    _variants._bias_shape(b.shape, x.shape)
    lead = x.ndim - b.ndim  # each axis of b in x's chunks, or one chunk where it broadcasts
    return b.rechunk(tuple((1,) if n == 1 else x.chunks[lead + k] for k, n in enumerate(b.shape)))


def dropout_add(
    x: da.Array,
    residual: da.Array,
    p: float = 0.5,
    *,
    bias: da.Array | np.typing.ArrayLike | None = None,
    rng: RngLike = None,
    offset: int = 0,
    training: bool = True,
    scaling: str = "inverted",
    return_mask: bool = False,
    backend: str | None = None,
) -> da.Array | tuple[da.Array, da.Array]:
    """:func:`fastdrop.dropout_add`, ``residual + dropout(x + bias)``, on Dask arrays,
    chunk by chunk, with the same result.

    Parameters
    ----------
    x, residual : dask.array.Array
        Same shape and dtype; ``residual`` is rechunked like ``x`` if it differs.
    p, rng, offset, training, scaling, backend
        As for :func:`fastdrop.dropout_add`.
    bias : dask.array.Array or array_like, optional
        Same dtype as ``x``, broadcastable to its shape.
    return_mask : bool
        As for :func:`dropout`.

    Returns
    -------
    y : dask.array.Array
        ``x``'s chunks; one task per chunk.
    mask : dask.array.Array of uint8
        Only with ``return_mask=True``.

    Examples
    --------
    >>> import dask.array as da, numpy as np, fastdrop, fastdrop.dask
    >>> x, h, b = np.ones((3, 4)), np.full((3, 4), 10.0), np.full(4, 0.5)
    >>> lazy = fastdrop.dask.dropout_add(
    ...     da.from_array(x, chunks=2), da.from_array(h, chunks=2), 0.5, bias=b, rng=42
    ... )
    >>> bool((lazy.compute() == fastdrop.dropout_add(x, h, 0.5, bias=b, rng=42)).all())
    True
    """
    x = _array(x, "x")
    residual = _array(residual, "residual")
    _variants._same_kind(residual, x, "residual")
    if residual.shape != x.shape:
        raise ValueError(f"residual must have x's shape {x.shape}, got {residual.shape}")
    residual = residual.rechunk(x.chunks)  # no-op when they match
    bias = _bias_array(bias, x)
    p = _checks.rate(p)
    scaling = _checks.scaling(scaling)
    return_mask = _checks.flag(return_mask, "return_mask")
    _backends.requested(backend)
    if _checks.flag(training, "training"):
        draw, scale = _draw(p, rng, offset), stream.keep_scale(p, scaling)
    else:
        draw, scale = _eval_draw(rng, offset), (1.0 - p if scaling == "classic" else 1.0)
    dtype = _checks.native(x.dtype)
    arrays = (x, residual) if bias is None else (x, residual, bias)
    y = da.map_blocks(
        _add_chunk,
        x,
        residual,
        bias,
        draw,
        scale,
        backend,
        dtype=dtype,
        meta=np.empty((0,) * x.ndim, dtype),
        name=f"fastdrop-add-{tokenize(*arrays, draw, scale, backend)}",
    )
    return (y, _returned_masks(x, draw, None, None, backend)) if return_mask else y


def dropout_add_backward(
    grad: da.Array,
    p: float,
    *,
    bias: da.Array | np.typing.ArrayLike | None = None,
    mask: da.Array | None = None,
    rng: RngLike = None,
    offset: int = 0,
    scaling: str = "inverted",
    backend: str | None = None,
) -> tuple[da.Array, da.Array, da.Array | None]:
    """:func:`fastdrop.dropout_add_backward` on a Dask array: ``(grad_x, grad_residual,
    grad_bias)``.

    ``grad_x`` is :func:`dropout_backward`'s, bit for bit as in memory. ``grad_bias`` sums
    ``grad_x`` over the axes ``bias`` was broadcast along (in float32 for float16), as a
    Dask reduction: it equals the in-memory one up to the order of the additions.

    Examples
    --------
    >>> import dask.array as da, numpy as np, fastdrop.dask
    >>> gx, gr, gb = fastdrop.dask.dropout_add_backward(
    ...     da.ones((2, 4), chunks=1), 0.5, bias=np.zeros(4), rng=42
    ... )
    >>> gb.compute()
    array([4., 0., 2., 0.])
    """
    grad = _array(grad, "grad")
    shape = None if bias is None else _variants._bias_shape(np.shape(bias), grad.shape)
    grad_x = dropout_backward(
        grad, p, mask=mask, rng=rng, offset=offset, scaling=scaling, backend=backend
    )
    return grad_x, grad, None if shape is None else _variants._sum_to(grad_x, shape)
