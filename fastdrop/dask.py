"""fastdrop on Dask arrays: the same results as on NumPy arrays, whatever the chunking.

Each chunk computes its own elements' stream positions: the C-order index of each
element in the whole array, plus ``offset``. So
``fastdrop.dask.dropout(da.from_array(x, chunks=c), p, rng=s, offset=o).compute()`` is
bit-identical to ``fastdrop.dropout(x, p, rng=s, offset=o)`` for every chunking ``c``.
A seed is fixed when the graph is built (``rng=None`` draws one then), so recomputing a
graph, or a chunk lost with a worker, gives the same answer. Each function adds one task
per chunk and reads each chunk once.

Each task hands the engine its chunk's window (``fastdrop._engine.plan.Window``): the
same checks, kernels and mask drawing as an in-memory call, which is the window that
covers the whole array. This module builds the graphs.

Needs Dask: ``pip install "fastdrop[dask]"``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from typing import Any

import numpy as np

try:
    import dask.array as da
    from dask.base import tokenize
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        'fastdrop.dask needs Dask, which is not installed: pip install "fastdrop[dask]"'
    ) from exc

from fastdrop._contract.stream import keep_scale
from fastdrop._engine import blocks, checks, request
from fastdrop._engine.checks import RngLike
from fastdrop._engine.plan import Window
from fastdrop._engine.request import Blocks, Drop, Evaluate, Mask, Request, Sampled, Stream
from fastdrop._engine.run import run, sum_to

__all__ = [
    "alpha_dropout",
    "alpha_dropout_backward",
    "bernoulli_mask",
    "drop_block",
    "drop_block_backward",
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


# -- inside a chunk: the engine on the chunk's window --------------------------------------


def _chunk(*arrays: Any, req: Request, block_info=None) -> np.ndarray:
    """The request's result on one chunk of each of ``arrays`` (None: an absent bias)."""
    info = block_info[0]
    window = Window(
        tuple(info["shape"]), tuple(a for a, _ in info["array-location"]), arrays[0].shape
    )
    return run(req, arrays, window).y


def _from_mask_chunk(grad: np.ndarray, mask: np.ndarray, req: Request) -> np.ndarray:
    """The backward of a chunk from its packed mask, in the chunk's own C order."""
    return run(req, [grad, mask.reshape(-1)[: (grad.size + 7) // 8]]).y


def _window(chunks, block_id) -> Window:
    """The window of chunk ``block_id`` of an array chunked as ``chunks``."""
    grid = block_id[: len(chunks)]
    block = tuple(c[i] for c, i in zip(chunks, grid, strict=True))
    start = tuple(sum(c[:i]) for c, i in zip(chunks, grid, strict=True))
    return Window(tuple(sum(c) for c in chunks), start, block)


def _mask_chunk(req: Mask, chunks, nbytes: int, block_id=None) -> np.ndarray:
    """Chunk ``block_id`` of the mask of an array chunked as ``chunks``: ``bool``, or
    packed and padded to ``nbytes`` as :func:`bernoulli_mask` lays it out."""
    window = _window(chunks, block_id)
    if req.packed and req.noise is None:
        packed = run(req, window=window).y
    else:  # the block's flags, broadcast from its part of the noise-shaped mask
        keep = run(replace(req, packed=False), window=window).y
        if not req.packed:
            return keep
        packed = np.packbits(keep, axis=None, bitorder="little")
    bits = np.zeros(nbytes, np.uint8)
    bits[: packed.size] = packed
    return bits.reshape((1,) * len(window.block) + (nbytes,))


def _keep_chunk(req: Blocks, chunks, block_id=None) -> np.ndarray:
    """Chunk ``block_id`` of DropBlock's keep flags, the mask chunked as ``chunks``: its
    seeds drawn from the whole mask's stream positions, halo included."""
    return blocks.keep(req, _window(chunks, block_id))


def _blocks_chunk(x: np.ndarray, flags: np.ndarray, kept, req: Blocks) -> np.ndarray:
    """DropBlock on one chunk, given its flags and the whole mask's kept count."""
    return blocks.apply(req, x, flags, int(kept))


# -- building graphs -----------------------------------------------------------------------


def _array(x: object, name: str) -> da.Array:
    """``x``, once it is a float Dask array of known chunks, with plain ndarray chunks as
    the kernels need: masked chunks are an error (as a masked array is in memory); other
    subclasses' (a matrix's) are read as their data."""
    if not isinstance(x, da.Array):
        raise TypeError(f"{name} must be a dask array, got {type(x).__name__}")
    checks.element_type(x.dtype, name)
    if any(math.isnan(c) for axis in x.chunks for c in axis):
        raise ValueError(f"{name} has unknown chunk sizes; call compute_chunk_sizes() first")
    return _plain(x, name)


def _plain(x: da.Array, name: str) -> da.Array:
    meta = da.utils.meta_from_array(x)
    checks.unmasked(meta, name)
    if type(meta) is np.ndarray:
        return x
    return da.map_blocks(np.asarray, x, meta=np.empty((0,) * x.ndim, x.dtype))


def _map(x: da.Array, req: Request, name: str, *others, samples: int | None = None) -> da.Array:
    """One task per chunk of ``x`` (and of ``others``, chunked alike): the request's result
    there, with a leading axis of ``samples`` unless that is None."""
    lead = () if samples is None else ((samples,),)
    dtype = checks.native(x.dtype)
    return da.map_blocks(
        _chunk,
        x,
        *others,
        req=req,
        dtype=dtype,
        chunks=(*lead, *x.chunks),
        new_axis=[0] if lead else None,
        meta=np.empty((0,) * (x.ndim + len(lead)), dtype),
        name=f"fastdrop-{name}-{tokenize(x, *others, req)}",
    )


def _graph(x: da.Array, req: Request, name: str):
    """The graph of a request on ``x`` alone (and the masks it returns, if asked): eval
    mode's ``x`` itself where the NumPy API returns it, else one task per chunk."""
    masks = None
    if isinstance(req, Sampled) and req.return_mask:
        stream = req.stream if isinstance(req, Drop) else Stream(0, 0, 0)  # eval: all kept
        masks = _returned_masks(x, stream, req.noise, req.samples, req.backend)
        req = replace(req, return_mask=False)
    samples = req.samples if isinstance(req, Sampled) else None
    if isinstance(req, Evaluate) and req.factor is None and samples is None:
        y = x
    else:
        y = _map(x, req, name, samples=samples)
    return y if masks is None else (y, masks)


def _packed_chunks(chunks) -> tuple[tuple[int, ...], ...]:
    """The chunks of the packed masks of an array chunked as ``chunks``: one block per
    chunk along the grid axes, then the largest chunk's byte count."""
    nbytes = max((math.prod(b) + 7) // 8 for b in itertools.product(*chunks))
    return (*((1,) * len(c) for c in chunks), (nbytes,))


def _mask_graph(shape, chunks, req: Mask) -> da.Array:
    """The masks of :func:`bernoulli_mask` (``chunks`` normalised)."""
    grid = _packed_chunks(chunks) if req.packed else chunks
    dtype = np.uint8 if req.packed else bool
    return da.map_blocks(
        _mask_chunk,
        req,
        chunks,
        grid[-1][0] if req.packed else 0,
        chunks=grid,
        dtype=dtype,
        meta=np.empty((0,) * len(grid), dtype),
        name=f"fastdrop-mask-{tokenize(shape, chunks, req)}",
    )


def _returned_masks(x, stream: Stream, noise, samples, backend: str) -> da.Array:
    """What ``return_mask=True`` gives: the packed masks, per chunk of ``x``, that the
    result was drawn with, stacked along a leading axis of ``samples`` unless None."""
    req = Mask(backend, stream, noise, True)
    if samples is None:
        return _mask_graph(x.shape, x.chunks, req)
    grid = _packed_chunks(x.chunks)
    if not samples:
        return da.zeros(
            (0, *(len(c) for c in x.chunks), grid[-1][0]), np.uint8, chunks=((0,), *grid)
        )
    m = math.prod(x.shape if noise is None else noise)
    masks = [replace(req, stream=stream.sample(s, m)) for s in range(samples)]
    return da.stack([_mask_graph(x.shape, x.chunks, r) for r in masks])


def _backward(grad, p, scale, mask, rng, offset, noise_shape, backend, name) -> da.Array:
    """The gradient of dropout or an affine variant: ``keep ? grad * scale : +0.0``, the
    mask redrawn, or read from the packed masks of :func:`bernoulli_mask` (already
    broadcast: ``noise_shape`` is checked, and not needed)."""
    noise = checks.noise_shape(noise_shape, grad.shape)
    if mask is not None:
        layout = _packed_chunks(grad.chunks)
        if not isinstance(mask, da.Array) or mask.dtype != np.uint8 or mask.chunks != layout:
            raise ValueError(
                "mask must be the packed uint8 dask array of bernoulli_mask(..., "
                f"chunks=grad.chunks), chunked {layout}, "
                f"got {getattr(mask, 'chunks', type(mask).__name__)}"
            )
        mask, noise = _plain(mask, "mask"), None
    req = request.backward(
        grad, p, scale, mask=mask, rng=rng, offset=offset, noise=noise, backend=backend
    )
    if isinstance(req, Drop):
        return _map(grad, req, name)
    index = tuple(range(grad.ndim))
    dtype = checks.native(grad.dtype)
    return da.blockwise(
        _from_mask_chunk,
        index,
        grad,
        index,
        mask,
        (*index, grad.ndim),
        req,
        None,  # blockwise takes (argument, index) pairs: None for plain values
        dtype=dtype,
        concatenate=True,
        align_arrays=False,
        meta=np.empty((0,) * grad.ndim, dtype),
        name=f"fastdrop-{name}-{tokenize(grad, mask, req)}",
    )


def _drop_block(x: da.Array, req: Blocks | Evaluate, name: str) -> da.Array:
    """DropBlock's graph: the keep flags chunked as ``x`` (one chunk along the batch when
    batchwise), their kept count summed over the whole mask, then one task per chunk of
    ``x``."""
    if isinstance(req, Evaluate):
        return _graph(x, req, name)
    pairs = zip(req.shape, x.shape, x.chunks, strict=True)
    chunks = tuple(c if m == n else (m,) for m, n, c in pairs)
    flags = da.map_blocks(
        _keep_chunk,
        req,
        chunks,
        chunks=chunks,
        dtype=bool,
        meta=np.empty((0,) * x.ndim, bool),
        name=f"fastdrop-{name}-mask-{tokenize(req, chunks)}",
    )
    kept = flags.sum(dtype=np.int64) if req.scale_by_keep else 0
    index = tuple(range(x.ndim))
    dtype = checks.native(x.dtype)
    return da.blockwise(
        _blocks_chunk,
        index,
        x,
        index,
        flags,
        index,
        kept,
        () if req.scale_by_keep else None,
        req,
        None,
        dtype=dtype,
        meta=np.empty((0,) * x.ndim, dtype),
        name=f"fastdrop-{name}-{tokenize(x, req)}",
    )


def _bias_array(bias: object, x: da.Array) -> da.Array | None:
    """``bias`` as a dask array of ``x``'s dtype that broadcasts to ``x``, each chunk to
    its chunk of ``x``; or None."""
    if bias is None:
        return None
    b = bias if isinstance(bias, da.Array) else da.from_array(checks.array(bias, "bias"))
    b = _plain(b, "bias")
    request.same_kind(b, x, "bias")
    request.bias_shape(b.shape, x.shape)
    lead = x.ndim - b.ndim  # each axis of b in x's chunks, or one chunk where it broadcasts
    return b.rechunk(tuple((1,) if n == 1 else x.chunks[lead + k] for k, n in enumerate(b.shape)))


# -- the public functions: their signatures and a parse; the engine does the rest -------


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
    """:func:`fastdrop.dropout` on a Dask array of any chunking, with the same result.

    The arguments are :func:`fastdrop.dropout`'s but ``out``. ``rng=None`` draws the
    seed now, so every computation of the graph gives the same values. ``samples`` adds
    a leading axis in one chunk; each task reads its chunk of ``x`` once. With
    ``return_mask``, the packed masks of :func:`bernoulli_mask` follow (stacked per
    sample), from a graph of their own that reads no data. In eval mode with inverted
    scaling and no samples, the result is ``x`` itself.

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
    req = request.dropout(
        x, p, rng=rng, offset=offset, training=training, scaling=scaling,
        noise_shape=noise_shape, samples=samples, return_mask=return_mask, backend=backend,
    )  # fmt: skip
    return _graph(x, req, "dropout")


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
    from the forward's ``(rng, offset)``, or read from the packed masks that
    ``dropout(..., return_mask=True)`` returned (already broadcast: ``noise_shape`` is
    not needed with them).

    Examples
    --------
    >>> import dask.array as da, numpy as np, fastdrop.dask
    >>> g = da.ones((2, 4), chunks=(1, 3))
    >>> fastdrop.dask.dropout_backward(g, 0.5, rng=42).compute()
    array([[2., 0., 0., 0.],
           [2., 0., 2., 0.]])
    """
    grad = _array(grad, "grad")
    p = checks.rate(p)
    scale = keep_scale(p, checks.scaling(scaling))
    return _backward(grad, p, scale, mask, rng, offset, noise_shape, backend, "backward")


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
    """The keep-mask of :func:`dropout` for an array of ``shape`` chunked as ``chunks``
    (anything Dask accepts for ``shape``, e.g. ``x.chunks``); the other arguments as for
    :func:`fastdrop.bernoulli_mask`.

    ``packed=False`` gives the ``bool`` mask with those chunks. ``packed=True`` gives one
    packed mask per chunk, ``uint8`` of shape ``numblocks + (nbytes,)``: entry ``[i, j,
    ...]`` holds chunk ``(i, j, ...)``'s mask in the chunk's own C order, little bit
    order, padded with zero bytes to the largest chunk's ``nbytes`` (``docs/dask.md``).

    Examples
    --------
    >>> import fastdrop.dask
    >>> fastdrop.dask.bernoulli_mask((2, 4), 0.5, chunks=(1, 3), rng=42, packed=False).compute()
    array([[ True, False, False, False],
           [ True, False,  True, False]])
    """
    shape = checks.shape(shape)
    chunks = da.core.normalize_chunks(chunks, shape)
    req = request.mask(
        shape, p, rng=rng, offset=offset, noise_shape=noise_shape, packed=packed, backend=backend
    )
    return _mask_graph(shape, chunks, req)


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
    req = request.dropout(
        x, p, rng=rng, offset=offset, training=training, noise_shape=noise_shape,
        return_mask=return_mask, backend=backend, alpha=True,
    )  # fmt: skip
    return _graph(x, req, "alpha")


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
    p, scale = request.alpha_scale(p, grad.dtype)
    return _backward(grad, p, scale, mask, rng, offset, noise_shape, backend, "alpha-bwd")


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
    x = _array(x, "x")
    noise = request.feature_noise(x.shape, channel_axis)
    return alpha_dropout(x, p, noise_shape=noise, **options)


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
    grad = _array(grad, "grad")
    noise = request.feature_noise(grad.shape, channel_axis)
    return alpha_dropout_backward(grad, p, noise_shape=noise, **options)


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
    x = _array(x, "x")
    noise = request.spatial_noise(x.shape, channel_axis)
    return dropout(x, p, noise_shape=noise, **options)


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
    grad = _array(grad, "grad")
    noise = request.spatial_noise(grad.shape, channel_axis)
    return dropout_backward(grad, p, noise_shape=noise, **options)


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
    x = _array(x, "x")
    noise = request.time_noise(x.shape, time_axis)
    return dropout(x, p, noise_shape=noise, **options)


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
    grad = _array(grad, "grad")
    noise = request.time_noise(grad.shape, time_axis)
    return dropout_backward(grad, p, noise_shape=noise, **options)


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
    x = _array(x, "x")
    return dropout(x, p, noise_shape=request.path_noise(x.shape), **options)


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
    grad = _array(grad, "grad")
    noise = request.path_noise(grad.shape)
    return dropout_backward(grad, p, noise_shape=noise, **options)


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
    x = _array(x, "x")
    req = request.gaussian(x, p, rng=rng, offset=offset, training=training, backend=backend)
    return _graph(x, req, "gaussian")


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
    grad = _array(grad, "grad")
    req = request.gaussian(grad, p, rng=rng, offset=offset, backend=backend, gradient=True)
    return _graph(grad, req, "gaussian-bwd")


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
    chunk by chunk, with the same result; ``residual`` is rechunked like ``x``, and
    ``bias`` may be a Dask array or in memory. ``return_mask`` as for :func:`dropout`.

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
    request.same_kind(residual, x, "residual")
    if residual.shape != x.shape:
        raise ValueError(f"residual must have x's shape {x.shape}, got {residual.shape}")
    residual = residual.rechunk(x.chunks)  # no-op when they match
    bias = _bias_array(bias, x)
    req = request.add(
        x, residual, bias, p, rng=rng, offset=offset, training=training, scaling=scaling,
        return_mask=return_mask, backend=backend,
    )  # fmt: skip
    y = _map(x, replace(req, return_mask=False), "add", residual, bias)
    return (y, _returned_masks(x, req.stream, None, None, req.backend)) if return_mask else y


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
    grad_bias)``. ``grad_x`` is bit for bit the in-memory one; ``grad_bias`` is a Dask
    reduction, equal to it up to the order of the additions.

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
    shape = None if bias is None else request.bias_shape(np.shape(bias), grad.shape)
    grad_x = dropout_backward(
        grad, p, mask=mask, rng=rng, offset=offset, scaling=scaling, backend=backend
    )
    return grad_x, grad, None if shape is None else sum_to(grad_x, shape)


def drop_block(
    x: da.Array,
    p: float = 0.1,
    *,
    block_size: int = 7,
    gamma_scale: float = 1.0,
    batchwise: bool = False,
    scale_by_keep: bool = True,
    channel_axis: int = 1,
    rng: RngLike = None,
    offset: int = 0,
    backend: str | None = None,
) -> da.Array:
    """:func:`fastdrop.drop_block` on a Dask array of any chunking, with the same result.

    Blocks cross chunk edges whole: each chunk draws the seeds that reach it, from their
    stream positions in the whole seed mask, and grows them itself. The normalisation
    takes the kept count of the whole mask, a sum over the chunks' counts; so every
    task waits for every chunk's flags. ``p = 0`` gives ``x`` itself.

    Examples
    --------
    >>> import dask.array as da, numpy as np, fastdrop, fastdrop.dask
    >>> x = np.ones((2, 3, 9, 9))
    >>> lazy = da.from_array(x, chunks=(1, 2, 4, 5))
    >>> y = fastdrop.dask.drop_block(lazy, 0.3, block_size=3, rng=2)
    >>> bool((y.compute() == fastdrop.drop_block(x, 0.3, block_size=3, rng=2)).all())
    True
    """
    x = _array(x, "x")
    req = request.drop_block(
        x, p, block_size=block_size, gamma_scale=gamma_scale, batchwise=batchwise,
        scale_by_keep=scale_by_keep, channel_axis=channel_axis, rng=rng, offset=offset,
        backend=backend,
    )  # fmt: skip
    return _drop_block(x, req, "drop-block")


def drop_block_backward(
    grad: da.Array,
    p: float,
    *,
    block_size: int = 7,
    gamma_scale: float = 1.0,
    batchwise: bool = False,
    scale_by_keep: bool = True,
    channel_axis: int = 1,
    rng: RngLike = None,
    offset: int = 0,
    backend: str | None = None,
) -> da.Array:
    """:func:`fastdrop.drop_block_backward` on a Dask array: the blocks redrawn from the
    forward's ``rng`` (required) and ``offset``.

    Examples
    --------
    >>> import dask.array as da, numpy as np, fastdrop, fastdrop.dask
    >>> g = np.ones((2, 8, 8, 3))
    >>> kw = dict(block_size=3, channel_axis=-1, rng=4)
    >>> b = fastdrop.dask.drop_block_backward(da.from_array(g, chunks=3), 0.2, **kw)
    >>> bool((b.compute() == fastdrop.drop_block_backward(g, 0.2, **kw)).all())
    True
    """
    grad = _array(grad, "grad")
    req = request.drop_block(
        grad, p, block_size=block_size, gamma_scale=gamma_scale, batchwise=batchwise,
        scale_by_keep=scale_by_keep, channel_axis=channel_axis, rng=rng, offset=offset,
        backend=backend, gradient=True,
    )  # fmt: skip
    return _drop_block(grad, req, "drop-block-bwd")
