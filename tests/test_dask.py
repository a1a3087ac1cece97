"""fastdrop.dask: every chunking gives the in-memory result, bit for bit."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import feature_maps, offsets, seeds
from test_agreement import assert_bits_equal

import fastdrop
from fastdrop.testing import DTYPES, LAYOUTS, make_array

da = pytest.importorskip("dask.array")
fdask = pytest.importorskip("fastdrop.dask")

BACKENDS = [b for b in ("numba", "cython", "numpy") if b in fastdrop.available_backends()]
rates = st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0])


@st.composite
def chunked(draw, max_dims: int = 4, max_side: int = 9):
    """``(x, chunks)``: an array of any memory layout (so chunks are strided, reversed or
    byteswapped views too) and a chunking of it, ragged and split along any axis."""
    shape = tuple(draw(st.lists(st.integers(0, max_side), min_size=0, max_size=max_dims)))
    dtype, layout = draw(st.sampled_from(DTYPES)), draw(st.sampled_from(LAYOUTS))
    x = make_array(shape, dtype, layout, seed=draw(st.integers(0, 2**16)))
    return x, draw(chunkings(shape))


@st.composite
def chunkings(draw, shape: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    chunks = []
    for n in shape:
        cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=n))) if n > 1 else []
        edges = [0, *cuts, n]
        chunks.append(tuple(b - a for a, b in itertools.pairwise(edges)) or (0,))
    return tuple(chunks)


def noise_of(draw, shape):
    return tuple(1 if draw(st.booleans()) else n for n in shape)


@settings(deadline=None, max_examples=60)
@given(
    case=chunked(),
    p=rates,
    seed=seeds,
    offset=offsets,
    backend=st.sampled_from(BACKENDS),
    data=st.data(),
)
def test_dropout_is_chunk_invariant(case, p, seed, offset, backend, data):
    x, chunks = case
    noise = noise_of(data.draw, x.shape) if data.draw(st.booleans()) else None
    samples = data.draw(st.sampled_from([None, None, 0, 2]))
    training = data.draw(st.sampled_from([True, True, False]))
    kw = dict(rng=seed, offset=offset, noise_shape=noise, samples=samples, training=training)
    scaling = data.draw(st.sampled_from(["inverted", "classic"]))
    lazy = da.from_array(x, chunks=chunks)
    y, masks = fdask.dropout(lazy, p, scaling=scaling, return_mask=True, backend=backend, **kw)
    expected = fastdrop.dropout(x, p, scaling=scaling, backend="numpy", **kw)
    assert y.chunks == ((() if samples is None else ((samples,),)) + lazy.chunks)
    assert_bits_equal(y.compute(), expected)
    # The packed masks each sample was drawn with (all kept in eval mode), per chunk.
    m = math.prod(x.shape if noise is None else noise)
    assert masks.ndim == x.ndim + 1 + (samples is not None)
    for s, mask in enumerate([masks] if samples is None else masks):
        drawn = fdask.bernoulli_mask(
            x.shape,
            p if training else 0.0,
            chunks=chunks,
            rng=seed,
            offset=(offset + s * m) % 2**64,
            noise_shape=noise,
        )
        np.testing.assert_array_equal(mask.compute(), drawn.compute())


@settings(deadline=None, max_examples=30)
@given(case=chunked(), p=st.sampled_from([0.0, 0.2, 0.7]), seed=seeds, offset=offsets)
def test_variants_are_chunk_invariant(case, p, seed, offset):
    x, chunks = case
    lazy = da.from_array(x, chunks=chunks)
    assert_bits_equal(
        fdask.alpha_dropout(lazy, p, rng=seed, offset=offset).compute(),
        fastdrop.alpha_dropout(x, p, rng=seed, offset=offset, backend="numpy"),
    )
    assert_bits_equal(
        fdask.gaussian_dropout(lazy, p, rng=seed, offset=offset).compute(),
        fastdrop.gaussian_dropout(x, p, rng=seed, offset=offset, backend="numpy"),
    )
    assert_bits_equal(
        fdask.gaussian_dropout_backward(lazy, p, rng=seed, offset=offset).compute(),
        fastdrop.gaussian_dropout_backward(x, p, rng=seed, offset=offset, backend="numpy"),
    )


@settings(deadline=None, max_examples=40)
@given(case=chunked(), p=rates, seed=seeds, offset=offsets, data=st.data())
def test_backward_regenerates_on_chunks(case, p, seed, offset, data):
    g, chunks = case
    noise = noise_of(data.draw, g.shape) if data.draw(st.booleans()) else None
    lazy = fdask.dropout_backward(
        da.from_array(g, chunks=chunks), p, rng=seed, offset=offset, noise_shape=noise
    )
    expected = fastdrop.dropout_backward(
        g, p, rng=seed, offset=offset, noise_shape=noise, backend="numpy"
    )
    assert_bits_equal(lazy.compute(), expected)


@settings(deadline=None, max_examples=40)
@given(case=chunked(), p=rates, seed=seeds, offset=offsets, data=st.data())
def test_masks_are_chunk_invariant(case, p, seed, offset, data):
    x, chunks = case
    noise = noise_of(data.draw, x.shape) if data.draw(st.booleans()) else None
    flags = fdask.bernoulli_mask(
        x.shape, p, chunks=chunks, rng=seed, offset=offset, noise_shape=noise, packed=False
    )
    expected = fastdrop.bernoulli_mask(
        x.shape, p, rng=seed, offset=offset, noise_shape=noise, packed=False
    )
    np.testing.assert_array_equal(flags.compute(), expected)
    packed = fdask.bernoulli_mask(
        x.shape, p, chunks=chunks, rng=seed, offset=offset, noise_shape=noise
    ).compute()
    # The documented layout: chunk (i, j, ...)'s mask, in its own C order, at [i, j, ...].
    starts = [np.cumsum((0, *c))[:-1] for c in flags.chunks]
    for grid in itertools.product(*(range(len(c)) for c in flags.chunks)):
        block = tuple(c[i] for c, i in zip(flags.chunks, grid, strict=True))
        where = tuple(slice(s[i], s[i] + b) for s, i, b in zip(starts, grid, block, strict=True))
        bits = np.unpackbits(packed[grid], bitorder="little")
        n = math.prod(block)
        np.testing.assert_array_equal(bits[:n].reshape(block).astype(bool), expected[where])
        assert not bits[n:].any()
    g = da.from_array(x, chunks=chunks)
    assert_bits_equal(
        fdask.dropout_backward(
            g, p, mask=da.from_array(packed, chunks=(1,) * x.ndim + (-1,))
        ).compute(),
        fastdrop.dropout_backward(
            x, p, rng=seed, offset=offset, noise_shape=noise, backend="numpy"
        ),
    )


@settings(deadline=None, max_examples=40)
@given(case=chunked(), p=rates, seed=seeds, offset=offsets, data=st.data())
def test_dropout_add_is_chunk_invariant(case, p, seed, offset, data):
    x, chunks = case
    residual = make_array(x.shape, x.dtype, seed=data.draw(st.integers(0, 99)))
    # A bias over x's trailing axes, each x's length or 1; in memory or chunked anyhow.
    tail = x.shape[data.draw(st.integers(0, x.ndim)) :]
    bias = make_array(noise_of(data.draw, tail), x.dtype, seed=1)
    bias = bias if data.draw(st.booleans()) else None
    lazy_bias = bias
    if bias is not None and data.draw(st.booleans()):
        lazy_bias = da.from_array(bias, chunks=data.draw(chunkings(bias.shape)))
    training = data.draw(st.booleans())
    scaling = data.draw(st.sampled_from(["inverted", "classic"]))
    kw = dict(rng=seed, offset=offset, training=training, scaling=scaling, return_mask=True)
    y, mask = fdask.dropout_add(
        da.from_array(x, chunks=chunks),
        da.from_array(residual, chunks=data.draw(chunkings(x.shape))),  # rechunked like x
        p,
        bias=lazy_bias,
        **kw,
    )
    want_y, want_mask = fastdrop.dropout_add(x, residual, p, bias=bias, backend="numpy", **kw)
    assert y.chunks == da.from_array(x, chunks=chunks).chunks
    # Dask runs another backend than the reference: NaN residual + NaN product, either NaN.
    assert_bits_equal(y.compute(), want_y, nan_payloads=False)
    ones = da.ones(x.shape, chunks=chunks, dtype=x.dtype)
    gx, gr, gb = fdask.dropout_add_backward(ones, p, bias=lazy_bias, mask=mask, scaling=scaling)
    want = fastdrop.dropout_add_backward(
        np.ones(x.shape, x.dtype), p, bias=bias, mask=want_mask, scaling=scaling
    )
    assert_bits_equal(gx.compute(), want[0])
    assert gr is ones
    if bias is None:
        assert gb is None
    else:  # a Dask reduction: the in-memory sum up to the order of the additions
        np.testing.assert_allclose(gb.compute(), want[2], rtol=2e-3)
        assert gb.dtype == want[2].dtype and gb.shape == want[2].shape


STRUCTURED = ["spatial_dropout", "locked_dropout", "drop_path", "feature_alpha_dropout"]


@pytest.mark.parametrize("name", STRUCTURED)
def test_structured_functions_and_gradients_match_numpy(name):
    x = make_array((4, 3, 6, 5), np.float32, "strided", seed=2)
    lazy = da.from_array(x, chunks=(3, 2, 4, 2))
    forward, backward = getattr(fdask, name), getattr(fdask, f"{name}_backward")
    y, mask = forward(lazy, 0.4, rng=5, offset=3, return_mask=True)
    assert_bits_equal(y.compute(), getattr(fastdrop, name)(x, 0.4, rng=5, offset=3))
    want = getattr(fastdrop, f"{name}_backward")(x, 0.4, rng=5, offset=3)
    assert_bits_equal(backward(lazy, 0.4, rng=5, offset=3).compute(), want)
    assert_bits_equal(backward(lazy, 0.4, mask=mask).compute(), want)


@settings(deadline=None, max_examples=30)
@given(case=chunked(), p=rates, seed=seeds, offset=offsets, data=st.data())
def test_alpha_dropout_gradient_is_chunk_invariant(case, p, seed, offset, data):
    x, chunks = case
    noise = noise_of(data.draw, x.shape) if data.draw(st.booleans()) else None
    lazy = da.from_array(x, chunks=chunks)
    kw = dict(rng=seed, offset=offset, noise_shape=noise)
    y, mask = fdask.alpha_dropout(lazy, p, return_mask=True, **kw)
    assert_bits_equal(y.compute(), fastdrop.alpha_dropout(x, p, backend="numpy", **kw))
    want = fastdrop.alpha_dropout_backward(x, p, backend="numpy", **kw)
    assert_bits_equal(fdask.alpha_dropout_backward(lazy, p, **kw).compute(), want)
    assert_bits_equal(fdask.alpha_dropout_backward(lazy, p, mask=mask).compute(), want)


@settings(deadline=None, max_examples=40)
@given(case=feature_maps(), p=rates, seed=seeds, offset=offsets, data=st.data())
def test_drop_block_is_chunk_invariant(case, p, seed, offset, data):
    # Blocks that cross a chunk edge stay whole, and the normalisation counts every chunk.
    x, kw = case
    kw.update(rng=seed, offset=offset)
    lazy = da.from_array(x, chunks=data.draw(chunkings(x.shape)))
    want = fastdrop.drop_block(x, p, backend="numpy", **kw)
    assert_bits_equal(fdask.drop_block(lazy, p, **kw).compute(), want)
    assert_bits_equal(fdask.drop_block_backward(lazy, p, **kw).compute(), want)


def test_chunk_split_along_every_axis_across_the_offset_wrap():
    x = make_array((7, 6, 5), np.float32, seed=3)
    expected = fastdrop.dropout(x, 0.3, rng=11, offset=2**64 - 100)
    for chunks in [(2, 3, 2), (7, 6, 1), (1, 1, 5), ((3, 4), (1, 2, 3), (4, 1))]:
        y = fdask.dropout(da.from_array(x, chunks=chunks), 0.3, rng=11, offset=2**64 - 100)
        assert_bits_equal(y.compute(), expected)


def test_one_task_per_chunk_and_no_extra_passes():
    lazy = da.from_array(np.ones((10, 10)), chunks=(3, 4))
    y = fdask.dropout(lazy, 0.5, rng=1)
    graph = y.__dask_graph__()
    assert len(graph.layers) == 2  # the input's layer, then ours
    assert len(graph.layers[y.name]) == lazy.npartitions
    samples = fdask.dropout(lazy, 0.5, rng=1, samples=8)  # x read once for all 8
    assert len(samples.__dask_graph__().layers[samples.name]) == lazy.npartitions
    added = fdask.dropout_add(lazy, lazy, 0.5, bias=da.ones(10, chunks=5), rng=1)
    assert len(added.__dask_graph__().layers[added.name]) == lazy.npartitions


def test_seed_is_drawn_once_at_graph_construction():
    lazy = da.from_array(np.ones(1000), chunks=300)
    y = fdask.dropout(lazy, 0.5)  # rng=None: fresh entropy, now
    assert_bits_equal(y.compute(), y.compute())
    gen = np.random.default_rng(9)
    y = fdask.dropout(lazy, 0.5, rng=gen)
    expected = fastdrop.dropout(np.ones(1000), 0.5, rng=np.random.default_rng(9))
    assert_bits_equal(y.compute(), expected)
    assert_bits_equal(y.compute(), expected)  # computing again does not draw again


def test_eval_mode():
    lazy = da.from_array(np.full(5, 2.0), chunks=2)
    assert fdask.dropout(lazy, 0.5, training=False) is lazy
    np.testing.assert_array_equal(
        fdask.dropout(lazy, 0.25, training=False, scaling="classic").compute(), np.full(5, 1.5)
    )


def test_bad_input():
    lazy = da.ones(4, chunks=2)
    with pytest.raises(TypeError, match="dask array"):
        fdask.dropout(np.ones(4), 0.5, rng=1)
    with pytest.raises(TypeError, match="float16, bfloat16, float32 or float64"):
        fdask.dropout(da.ones(4, chunks=2, dtype=int), 0.5, rng=1)
    with pytest.raises(ValueError):
        fdask.dropout(lazy, 1.5, rng=1)
    with pytest.raises(ValueError, match="backend"):
        fdask.dropout(lazy, 0.5, rng=1, backend="gpu")
    with pytest.raises(ValueError):
        fdask.dropout(lazy, 0.5, rng=1, noise_shape=(3,))
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        fdask.dropout(lazy[lazy > 0], 0.5, rng=1)
    with pytest.raises(ValueError, match="rng"):
        fdask.dropout_backward(lazy, 0.5)
    with pytest.raises(ValueError, match="packed uint8"):
        fdask.dropout_backward(lazy, 0.5, mask=da.ones((2, 2), chunks=1, dtype=np.uint8))
    packed = fdask.bernoulli_mask(4, 0.5, chunks=2, rng=1)
    with pytest.raises(ValueError, match="packed uint8"):  # the right bytes, chunked wrongly
        fdask.dropout_backward(lazy, 0.5, mask=packed.rechunk((2, 1)))
    with pytest.raises(ValueError, match="backend"):
        fdask.dropout_backward(lazy, 0.5, mask=packed, backend="gpu")
    with pytest.raises(ValueError, match="exactly one of mask= and rng="):
        fdask.dropout_backward(lazy, 0.5, mask=packed, rng=1)
    with pytest.raises(ValueError, match="offset="):
        fdask.alpha_dropout_backward(lazy, 0.5, mask=packed, offset=3)
    with pytest.raises(ValueError, match="samples"):
        fdask.dropout(lazy, 0.5, rng=1, samples=-1)
    with pytest.raises(TypeError, match="residual must be a dask array"):
        fdask.dropout_add(lazy, np.ones(4), 0.5, rng=1)
    with pytest.raises(ValueError, match="residual must have x's shape"):
        fdask.dropout_add(lazy, da.ones(5, chunks=2), 0.5, rng=1)
    with pytest.raises(TypeError, match="residual must have x's dtype"):
        fdask.dropout_add(lazy, da.ones(4, chunks=2, dtype=np.float32), 0.5, rng=1)
    with pytest.raises(ValueError, match="does not broadcast"):
        fdask.dropout_add(lazy, lazy, 0.5, bias=np.ones(3), rng=1)
    with pytest.raises(TypeError, match="bias must have x's dtype"):
        fdask.dropout_add(lazy, lazy, 0.5, bias=da.ones(4, chunks=4, dtype=np.float16), rng=1)
    with pytest.raises(ValueError, match="channel_axis"):
        fdask.spatial_dropout_backward(da.ones((2, 3, 4), chunks=2), 0.5, rng=1, channel_axis=5)
    with pytest.raises(TypeError, match="training must be a bool"):
        fdask.dropout(lazy, 0.5, rng=1, training=None)
    with pytest.raises(TypeError, match="training must be a bool"):
        fdask.gaussian_dropout(lazy, 0.5, rng=1, training=0)
    with pytest.raises(ValueError, match="below 1"):  # checked in eval mode too, as in memory
        fdask.gaussian_dropout(lazy, 1.0, rng=1, training=False)
    with pytest.raises(TypeError, match="return_mask must be a bool"):
        fdask.dropout_add(lazy, lazy, 0.5, rng=1, return_mask=None)
    with pytest.raises(TypeError, match="packed must be a bool"):
        fdask.bernoulli_mask(4, 0.5, chunks=2, rng=1, packed=None)
    masked = da.from_array(np.ma.masked_equal(np.arange(4.0), 1.0), chunks=2)
    with pytest.raises(TypeError, match="x must not be a masked array"):
        fdask.dropout(masked, 0.5, rng=1)
    with pytest.raises(TypeError, match="bias must not be a masked array"):
        fdask.dropout_add(lazy, lazy, 0.5, bias=masked, rng=1)


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@pytest.mark.parametrize("backend", BACKENDS)
def test_subclass_chunks_are_read_as_their_data(backend):
    # As in memory: a matrix is its data. Its chunks once reached the NumPy reference's
    # kernels as matrices, which turned a kept -0.0 into +0.0.
    x = np.asmatrix(make_array((3, 4), np.float16, seed=2))
    x[0, 0] = -0.0
    lazy = da.from_array(x, chunks=2)
    for fn, p in ((fdask.dropout, 0.0), (fdask.dropout_backward, 0.0), (fdask.alpha_dropout, 0.5)):
        want = getattr(fastdrop, fn.__name__)(np.asarray(x), p, rng=1)
        assert_bits_equal(fn(lazy, p, rng=1, backend=backend).compute(), want)


def test_missing_dask_names_the_extra(tmp_path):
    code = "import sys; sys.modules['dask'] = None\nimport fastdrop.dask"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode != 0
    assert 'pip install "fastdrop[dask]"' in result.stderr


def test_local_cluster_matches_in_memory():
    distributed = pytest.importorskip("distributed")
    x = make_array((64, 48), np.float32, seed=4)
    expected = fastdrop.dropout(x, 0.3, rng=21, offset=5)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env={"FASTDROP_NUM_THREADS": "1"},
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        assert set(client.run(fastdrop.get_num_threads).values()) == {1}
        y = fdask.dropout(da.from_array(x, chunks=(20, 13)), 0.3, rng=21, offset=5)
        assert_bits_equal(y.compute(), expected)
        assert_bits_equal(client.compute(y).result(), expected)
        assert len(client.run(fastdrop.available_backends)) == 2
