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

from fastdrop import _api, _backends, _checks, _layout, _variants
from fastdrop._api import IDENTITY, NO_BITS
from fastdrop._checks import U64

__all__ = [
    "alpha_dropout",
    "bernoulli_mask",
    "drop_path",
    "dropout",
    "dropout_backward",
    "gaussian_dropout",
    "gaussian_dropout_backward",
    "locked_dropout",
    "spatial_dropout",
]

Where = tuple[tuple[int, ...], tuple[int, ...]]  # (shape of the whole array, chunk's start)


# -- inside a chunk ----------------------------------------------------------------------


def _rows(where: Where, block: tuple[int, ...]):
    """How the positions of a chunk of shape ``block`` run: ``(lead, rows, cols,
    row_step, firsts)``. The chunk, reshaped to ``lead + (rows, cols)``, has at
    ``idx + (r, c)`` the position ``firsts[idx] + r * row_step + c`` (before ``offset``)."""
    shape, start = where
    steps = [math.prod(shape[k + 1 :]) for k in range(len(shape))]
    j = len(shape) - 1  # axes after j span the whole array: they run on in C order
    while j > 0 and block[j] == shape[j]:
        j -= 1
    cols = math.prod(block[j:])
    lead, rows, row_step = ((), 1, cols) if j <= 0 else (block[: j - 1], block[j - 1], steps[j - 1])
    base = sum(s * g for s, g in zip(start, steps, strict=True))
    firsts = {
        idx: base + sum(i * g for i, g in zip(idx, steps, strict=False)) for idx in np.ndindex(lead)
    }
    return lead, rows, cols, row_step, firsts


def _native(a: np.ndarray) -> np.ndarray:
    """``a`` in native byte order and aligned, as the kernels need it."""
    if a.dtype.isnative and a.flags.aligned:
        return a
    return np.ascontiguousarray(a, a.dtype.newbyteorder("="))


def _positioned(kernel, inputs, y, where, offset) -> None:
    """``kernel(*input rows, y rows, first position, row step)`` over a chunk."""
    lead, rows, cols, row_step, firsts = _rows(where, y.shape)
    views = [_native(a).reshape((*lead, rows, cols)) for a in (*inputs, y)]
    for idx, first in firsts.items():
        kernel(*(v[idx] for v in views), (offset + first) % U64, row_step)


def _choice(backend, n, dtype):
    return _api.backend_for(backend, n, None if dtype is None else np.dtype(dtype))


def _forward(x, y, where, draw, affine, backend) -> None:
    """``y = keep ? x * scale + shift : fill`` over a chunk, ``keep`` drawn at its own
    positions; ``draw = (seed, offset, threshold)``, ``affine = (scale, shift, fill)``."""
    seed, offset, threshold = draw
    n_threads = _backends.get_num_threads()

    def run(k):
        def kernel(x2, y2, first, row_step):
            k.forward(
                x2, y2[None], NO_BITS, seed, first, row_step, 0, threshold, *affine, n_threads
            )

        _positioned(kernel, [x], y, where, offset)

    _api.call(_choice(backend, y.size, y.dtype), run)


def _keep(where, block, draw, backend) -> np.ndarray:
    """The chunk's boolean keep-mask, drawn at its own positions: the forward pass of a
    broadcast 1.0 (no copy), 1.0 where kept and 0.0 where dropped."""
    y = np.empty(block, np.float32)
    if y.size:
        _forward(
            np.broadcast_to(np.float32(1), block), y, where, draw, (1.0, IDENTITY, 0.0), backend
        )
    return y != 0


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


def _affine_chunk(x, draw, affine, noise, backend, block_info=None):
    """A chunk of dropout or one of its affine variants."""
    where = _where(block_info)
    y = np.empty(x.shape, _checks.native(x.dtype))
    if not x.size:
        return y
    if noise is None:
        _forward(x, y, where, draw, affine, backend)
        return y
    noise_where, part = _noise_where(where, x.shape, noise)
    flags = _keep(noise_where, part, draw, backend).view(np.uint8)
    _api.call(
        _choice(backend, x.size, x.dtype),
        _api._broadcast_apply,
        _native(x),
        y[None],
        flags[None],
        affine,
        _backends.get_num_threads(),
    )
    return y


def _gaussian_chunk(x, seed, offset, sigma, backend, block_info=None):
    where = _where(block_info)
    y = np.empty(x.shape, _checks.native(x.dtype))
    if x.size:
        n_threads = _backends.get_num_threads()

        def run(k):
            def kernel(x2, y2, first, row_step):
                k.gaussian(x2, y2, seed, first, row_step, sigma, n_threads)

            _positioned(kernel, [x], y, where, offset)

        _api.call(_choice(backend, x.size, x.dtype), run)
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
        n_threads = _backends.get_num_threads()
        _api.call(
            _choice(backend, grad.size, grad.dtype),
            lambda k: _layout.run(
                k.backward, [_native(grad)], y, lambda *_: (bits, scale, n_threads)
            ),
        )
    return y


# -- building graphs ---------------------------------------------------------------------


def _packed_chunks(chunks) -> tuple[tuple[int, ...], ...]:
    """The chunks of the packed masks of an array chunked as ``chunks``: one block per
    chunk along the grid axes, then the largest chunk's byte count."""
    nbytes = max((math.prod(b) + 7) // 8 for b in itertools.product(*chunks))
    return (*((1,) * len(c) for c in chunks), (nbytes,))


def _array(x: object, name: str) -> da.Array:
    if not isinstance(x, da.Array):
        raise TypeError(f"{name} must be a dask array, got {type(x).__name__}")
    if x.dtype.char not in "efd":
        raise TypeError(f"{name} must be a float16, float32 or float64 array, got dtype {x.dtype}")
    if any(math.isnan(c) for axis in x.chunks for c in axis):
        raise ValueError(f"{name} has unknown chunk sizes; call compute_chunk_sizes() first")
    return x


def _draw(p, rng, offset) -> tuple[int, int, int]:
    """``(seed, offset, threshold)``, the seed drawn now (once, at graph construction)."""
    _checks.rng(rng)
    offset = _checks.u64(offset, "offset")
    return _checks.seed(rng), offset, _checks.threshold(p)


def _map(fn: Callable, x: da.Array, name: str, *args, **kwargs) -> da.Array:
    return da.map_blocks(
        fn,
        x,
        *args,
        dtype=x.dtype,
        meta=np.empty((0,) * x.ndim, x.dtype),
        name=f"fastdrop-{name}-{tokenize(x, *args, kwargs)}",
        **kwargs,
    )


def _dropout_graph(x, p, rng, offset, affine, noise_shape, backend, name):
    noise = _checks.noise_shape(noise_shape, x.shape)
    _backends.requested(backend)  # a bad name fails now, not on a worker
    return _map(_affine_chunk, x, name, _draw(p, rng, offset), affine, noise, backend)


def dropout(
    x: da.Array,
    p: float = 0.5,
    *,
    rng: int | np.random.Generator | None = None,
    offset: int = 0,
    training: bool = True,
    scaling: str = "inverted",
    noise_shape: tuple[int | None, ...] | None = None,
    backend: str | None = None,
) -> da.Array:
    """:func:`fastdrop.dropout` on a Dask array, chunk by chunk, with the same result.

    Parameters
    ----------
    x : dask.array.Array
        float16, float32 or float64, any chunking (ragged, split along every axis).
    p, rng, offset, training, scaling, noise_shape, backend
        As for :func:`fastdrop.dropout`. ``rng=None`` draws a seed now, when the graph is
        built, so every computation of the result gives the same values.

    Returns
    -------
    dask.array.Array
        Same shape, dtype and chunks as ``x``; one task per chunk.

    Examples
    --------
    >>> import dask.array as da, numpy as np, fastdrop, fastdrop.dask
    >>> x = np.arange(1.0, 13.0).reshape(3, 4)
    >>> y = fastdrop.dask.dropout(da.from_array(x, chunks=(2, 3)), 0.5, rng=7)
    >>> bool((y.compute() == fastdrop.dropout(x, 0.5, rng=7)).all())
    True
    """
    x = _array(x, "x")
    p = _checks.rate(p)
    scaling = _checks.scaling(scaling)
    if not training:
        return x if scaling == "inverted" else x * x.dtype.type(1.0 - p)
    affine = (_checks.keep_scale(p, scaling), IDENTITY, 0.0)
    return _dropout_graph(x, p, rng, offset, affine, noise_shape, backend, "dropout")


def dropout_backward(
    grad: da.Array,
    p: float,
    *,
    rng: int | np.random.Generator | None = None,
    offset: int = 0,
    mask: da.Array | None = None,
    scaling: str = "inverted",
    noise_shape: tuple[int | None, ...] | None = None,
    backend: str | None = None,
) -> da.Array:
    """:func:`fastdrop.dropout_backward` on a Dask array: the mask redrawn on each chunk
    from ``(rng, offset)``, or read from a packed ``mask`` of :func:`bernoulli_mask`.

    Parameters
    ----------
    grad : dask.array.Array
    p, rng, offset, scaling, noise_shape, backend
        As for :func:`fastdrop.dropout_backward`; ``rng`` must be the forward's seed.
    mask : dask.array.Array, optional
        ``bernoulli_mask(grad.shape, p, chunks=grad.chunks, packed=True, ...)``: one packed
        mask per chunk of ``grad`` (see :func:`bernoulli_mask`).

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
    scale = _checks.keep_scale(p, _checks.scaling(scaling))
    if mask is None:
        if rng is None:
            raise ValueError("dropout_backward needs the forward's rng= (or a mask=)")
        affine = (scale, IDENTITY, 0.0)
        return _dropout_graph(grad, p, rng, offset, affine, noise_shape, backend, "backward")
    if noise_shape is not None:
        raise ValueError("mask= is already the full mask: leave noise_shape out")
    _backends.requested(backend)
    layout = _packed_chunks(grad.chunks)
    if not isinstance(mask, da.Array) or mask.dtype != np.uint8 or mask.chunks != layout:
        raise ValueError(
            "mask must be the packed uint8 dask array of bernoulli_mask(..., chunks=grad.chunks),"
            f" chunked {layout}, got {getattr(mask, 'chunks', type(mask).__name__)}"
        )
    index = tuple(range(grad.ndim))
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
        dtype=grad.dtype,
        concatenate=True,
        align_arrays=False,
        meta=np.empty((0,) * grad.ndim, grad.dtype),
        name=f"fastdrop-backward-{tokenize(grad, mask, scale)}",
    )


def bernoulli_mask(
    shape: int | tuple[int, ...],
    p: float,
    *,
    chunks,
    rng: int | np.random.Generator | None = None,
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
    _backends.requested(backend)  # a bad name fails now, not on a worker
    chunks = da.core.normalize_chunks(chunks, shape)
    draw = _draw(p, rng, offset)
    name = f"fastdrop-mask-{tokenize(shape, chunks, draw, noise, packed)}"
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
    nbytes = grid[-1][0]
    return da.map_blocks(
        _mask_chunk,
        draw,
        noise,
        True,
        backend,
        chunks,
        nbytes,
        chunks=grid,
        dtype=np.uint8,
        meta=np.empty((0,) * (len(shape) + 1), np.uint8),
        name=name,
    )


def alpha_dropout(
    x: da.Array,
    p: float = 0.5,
    *,
    rng: int | np.random.Generator | None = None,
    offset: int = 0,
    training: bool = True,
    noise_shape: tuple[int | None, ...] | None = None,
    backend: str | None = None,
) -> da.Array:
    """:func:`fastdrop.alpha_dropout` on a Dask array, chunk by chunk, with the same result.

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
    if not training or p == 0.0:  # as fastdrop.alpha_dropout: x itself
        return x
    affine = _variants._alpha_affine(p, x.dtype)
    return _dropout_graph(x, p, rng, offset, affine, noise_shape, backend, "alpha")


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
    noise = _variants._spatial_noise(_array(x, "x").shape, channel_axis)
    return dropout(x, p, noise_shape=noise, **options)


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
    noise = _variants._time_noise(_array(x, "x").shape, time_axis)
    return dropout(x, p, noise_shape=noise, **options)


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
    noise = _variants._path_noise(_array(x, "x").shape)
    return dropout(x, p, noise_shape=noise, **options)


def _gaussian_graph(x, p, rng, offset, backend, name):
    x = _array(x, name)
    p = _checks.rate(p, below_one=True)
    _backends.requested(backend)
    if p == 0.0:  # no noise: as the NumPy API, x itself
        return x
    seed, offset, _ = _draw(p, rng, offset)
    return _map(_gaussian_chunk, x, "gaussian", seed, offset, math.sqrt(p / (1.0 - p)), backend)


def gaussian_dropout(
    x: da.Array,
    p: float = 0.5,
    *,
    rng: int | np.random.Generator | None = None,
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
    if not training:
        return _array(x, "x")
    return _gaussian_graph(x, p, rng, offset, backend, "x")


def gaussian_dropout_backward(
    grad: da.Array,
    p: float,
    *,
    rng: int | np.random.Generator,
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
    return _gaussian_graph(grad, p, rng, offset, backend, "grad")
