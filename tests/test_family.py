"""What the dropout family promises: noise_shape semantics, the helpers' equivalences,
Monte Carlo samples, alpha and Gaussian dropout's values and statistics, the fused add,
backward passes against finite differences, and the layer object."""

from __future__ import annotations

import math

import numpy as np
import pytest
from family_cases import FAMILY
from hypothesis import given
from hypothesis import strategies as st
from strategies import awkward_arrays, noise_shapes, offsets, rates, seeds
from test_agreement import assert_bits_equal

import fastdrop
import fastdrop.testing

BACKENDS = fastdrop.available_backends()
ALPHA_PRIME = -1.7580993408473766


def keep_flags(shape, p, seed, offset=0, noise=None):
    return fastdrop.bernoulli_mask(
        shape, p, rng=seed, offset=offset, noise_shape=noise, packed=False
    )


# -- noise_shape ---------------------------------------------------------------------------


@given(data=st.data(), x=awkward_arrays(), p=rates, seed=seeds, offset=offsets)
def test_noise_shape_broadcasts_one_draw_per_mask_element(data, x, p, seed, offset):
    noise = data.draw(noise_shapes(x.shape))
    resolved = tuple(d if n is None else n for d, n in zip(x.shape, noise, strict=True))
    y, mask = fastdrop.dropout(x, p, rng=seed, offset=offset, noise_shape=noise, return_mask=True)
    # The mask is the plain mask of an array of the noise shape: positions index it.
    plain = fastdrop.bernoulli_mask(resolved, p, rng=seed, offset=offset)
    assert_bits_equal(mask, plain)
    keep = np.broadcast_to(
        np.unpackbits(plain, count=math.prod(resolved), bitorder="little").reshape(resolved),
        x.shape,
    ).astype(bool)
    assert_bits_equal(keep, keep_flags(x.shape, p, seed, offset, noise))
    # ... and y is dropout of x with that mask broadcast.
    ctype = np.float64 if x.dtype.char == "d" else np.float32
    scale = 1 / (1 - p) if p < 1 else 0.0
    with np.errstate(all="ignore"):
        expected = np.where(keep, x.astype(ctype) * ctype(scale), 0)
    assert_bits_equal(y, expected.astype(y.dtype))


def test_noise_shape_equal_to_the_shape_is_plain_dropout():
    x = fastdrop.testing.make_array((3, 4, 5), np.float32, "F")
    plain = fastdrop.dropout(x, 0.3, rng=1, offset=9, return_mask=True)
    for noise in [(3, 4, 5), (None, None, None), (3, None, 5)]:
        got = fastdrop.dropout(x, 0.3, rng=1, offset=9, noise_shape=noise, return_mask=True)
        assert_bits_equal(got[0], plain[0])
        assert_bits_equal(got[1], plain[1])


def test_helpers_are_their_noise_shapes():
    x = fastdrop.testing.make_array((2, 3, 4, 5), np.float64, "transposed")
    kw = dict(rng=4, offset=77, return_mask=True)
    cases = [
        (fastdrop.spatial_dropout, fastdrop.spatial_dropout_backward, {}, (2, 3, 1, 1)),
        (
            fastdrop.spatial_dropout,
            fastdrop.spatial_dropout_backward,
            {"channel_axis": -1},
            (2, 1, 1, 5),
        ),
        (fastdrop.locked_dropout, fastdrop.locked_dropout_backward, {}, (1, 3, 4, 5)),
        (fastdrop.locked_dropout, fastdrop.locked_dropout_backward, {"time_axis": 1}, (2, 1, 4, 5)),
        (fastdrop.drop_path, fastdrop.drop_path_backward, {}, (2, 1, 1, 1)),
    ]
    for forward, backward, axis, noise in cases:
        y, mask = forward(x, 0.4, **axis, **kw)
        ref_y, ref_mask = fastdrop.dropout(x, 0.4, noise_shape=noise, **kw)
        assert_bits_equal(y, ref_y)
        assert_bits_equal(mask, ref_mask)
        g = fastdrop.testing.make_array(x.shape, np.float64, seed=3)
        expected = fastdrop.dropout_backward(g, 0.4, rng=4, offset=77, noise_shape=noise)
        assert_bits_equal(backward(g, 0.4, rng=4, offset=77, **axis), expected)
        assert_bits_equal(backward(g, 0.4, mask=mask, **axis), expected)
    fa = fastdrop.feature_alpha_dropout(x, 0.4, channel_axis=-1, **kw)
    ref = fastdrop.alpha_dropout(x, 0.4, noise_shape=(2, 1, 1, 5), **kw)
    assert_bits_equal(fa[0], ref[0])
    g = fastdrop.feature_alpha_dropout_backward(x, 0.4, channel_axis=-1, mask=fa[1])
    assert_bits_equal(
        g, fastdrop.alpha_dropout_backward(x, 0.4, mask=ref[1], noise_shape=(2, 1, 1, 5))
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_spatial_dropout_drops_whole_feature_maps(backend):
    x = np.ones((8, 16, 5, 5), np.float32)
    y = fastdrop.spatial_dropout(x, 0.5, rng=3, backend=backend)
    per_map = y.reshape(8, 16, 25)
    assert (per_map == per_map[:, :, :1]).all()  # each map all kept or all dropped
    assert 0 < (per_map[:, :, 0] == 0).sum() < 8 * 16


def test_drop_path_keeps_or_drops_each_sample_whole():
    y = fastdrop.drop_path(np.ones((64, 3, 7)), 0.5, rng=8)
    per_sample = y.reshape(64, -1)
    assert (per_sample == per_sample[:, :1]).all()
    assert set(np.unique(per_sample)) == {0.0, 2.0}


# -- Monte Carlo samples -------------------------------------------------------------------


@given(
    data=st.data(),
    x=awkward_arrays(max_dims=3),
    p=rates,
    seed=seeds,
    offset=offsets,
    k=st.integers(0, 4),
)
def test_samples_are_separate_calls(data, x, p, seed, offset, k):
    noise = data.draw(st.one_of(st.none(), noise_shapes(x.shape)))
    ys, masks = fastdrop.dropout(
        x, p, rng=seed, offset=offset, noise_shape=noise, samples=k, return_mask=True
    )
    assert ys.shape == (k, *x.shape)
    m = fastdrop.bernoulli_mask(x.shape, p, rng=seed, noise_shape=noise, packed=False)
    step = (
        x.size
        if noise is None
        else math.prod(d if n is None else n for d, n in zip(x.shape, noise, strict=True))
    )
    assert m.shape == x.shape
    for s in range(k):
        one, mask = fastdrop.dropout(
            x, p, rng=seed, offset=(offset + s * step) % 2**64, noise_shape=noise, return_mask=True
        )
        assert_bits_equal(ys[s], one)
        assert_bits_equal(masks[s], mask)


def test_samples_in_eval_mode_repeat_the_eval_result():
    x = np.arange(6.0).reshape(2, 3)
    ys = fastdrop.dropout(x, 0.25, samples=3, training=False, scaling="classic")
    assert_bits_equal(ys, np.stack([x * 0.75] * 3))
    assert_bits_equal(fastdrop.dropout(x, 0.25, samples=2, training=False), np.stack([x, x]))


# -- alpha dropout -------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", fastdrop.testing.DTYPES)
def test_alpha_dropout_values(backend, dtype):
    p = 0.3
    x = fastdrop.testing.make_array((2000,), dtype)
    y, mask = fastdrop.alpha_dropout(x, p, rng=5, return_mask=True, backend=backend)
    keep = np.unpackbits(mask, count=x.size, bitorder="little").astype(bool)
    # The keep/drop decisions are dropout's for the same (rng, offset, p).
    assert_bits_equal(keep, keep_flags(x.shape, p, 5))
    a = ((1 - p) * (1 + p * ALPHA_PRIME**2)) ** -0.5
    b = -a * ALPHA_PRIME * p
    c = np.float64 if dtype == np.float64 else np.float32
    with np.errstate(all="ignore"):
        kept = (x.astype(c) * c(a) + c(b)).astype(dtype)
    fill = (c(a) * c(ALPHA_PRIME) + c(b)).astype(dtype)
    assert_bits_equal(y, np.where(keep, kept, fill))
    assert np.isfinite(y[~keep]).all()  # a dropped inf or NaN does not leak


def test_alpha_dropout_constants_match_torch():
    torch = pytest.importorskip("torch")
    for p in (0.1, 0.5, 0.8):
        t = torch.nn.functional.alpha_dropout(torch.zeros(4096, dtype=torch.float64), p, True)
        ours = fastdrop.alpha_dropout(np.zeros(4096), p, rng=0)
        np.testing.assert_allclose(np.unique(ours), np.unique(t.numpy()), rtol=1e-15)


def test_alpha_dropout_keeps_zero_mean_unit_variance():
    x = np.random.default_rng(0).standard_normal(1_000_000)
    for p in (0.1, 0.5):
        y = fastdrop.alpha_dropout(x, p, rng=1)
        assert abs(y.mean()) < 5e-3 and abs(y.var() - 1) < 1e-2


def test_alpha_dropout_edges():
    x = np.array([1.0, -np.inf, np.nan])
    assert fastdrop.alpha_dropout(x, 0.0, rng=1) is x
    assert fastdrop.alpha_dropout(x, 0.5, training=False) is x
    y = fastdrop.alpha_dropout(x, 1.0, rng=1)
    assert (y == 0).all() and not np.signbit(y).any()
    assert (fastdrop.alpha_dropout_backward(x, 1.0, rng=1) == 0).all()


# -- Gaussian dropout ----------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_gaussian_noise_statistics(backend, p):
    n = 400_000 if backend != "numpy" else 100_000
    f = fastdrop.gaussian_dropout(np.ones(n), p, rng=2, offset=3, backend=backend)
    z = (f - 1) / math.sqrt(p / (1 - p))
    se = 1 / math.sqrt(n)
    assert abs(z.mean()) < 5 * se  # mean 0
    assert abs(z.var() - 1) < 5 * math.sqrt(2) * se  # variance 1
    assert abs(np.mean(z**3)) < 5 * math.sqrt(15) * se  # symmetric
    assert abs(np.mean(z**4) - 3) < 5 * math.sqrt(96) * se  # normal tails
    # Every decile of N(0, 1) holds a tenth of the draws.
    deciles = [
        -1.2815516,
        -0.8416212,
        -0.5244005,
        -0.2533471,
        0.0,
        0.2533471,
        0.5244005,
        0.8416212,
        1.2815516,
    ]
    counts = np.bincount(np.searchsorted(deciles, z), minlength=10) / n
    assert np.all(np.abs(counts - 0.1) < 5 * math.sqrt(0.09 / n))


def test_gaussian_normals_follow_the_documented_transform():
    # Spot-check the reference transform against libm's log, cos and sin.
    from fastdrop._numpy.philox import _block_words, normal

    pos = np.arange(4000, dtype=np.uint64)
    z = normal(pos, 99)
    words = _block_words(pos, 99, 1).astype(np.float64)
    pair = (pos & 2).astype(np.intp)
    u = np.take_along_axis(words, pair[:, None], 1)[:, 0]
    v = np.take_along_axis(words, pair[:, None] + 1, 1)[:, 0]
    r = np.sqrt(-2 * np.log((2 * u + 1) / 2**33))
    t = 2 * np.pi * (2 * v + 1) / 2**33
    expected = np.where(pos & 1, r * np.sin(t), r * np.cos(t))
    np.testing.assert_allclose(z, expected, rtol=1e-13, atol=1e-13)


@given(x=awkward_arrays(max_dims=3), p=st.floats(0, 0.99), seed=seeds, offset=offsets)
def test_gaussian_offsets_and_factor(x, p, seed, offset):
    # y = x * factor, with factor the noise at the element's own position.
    y = fastdrop.gaussian_dropout(x, p, rng=seed, offset=offset)
    if p == 0:
        assert y is x  # no noise at all: x itself, as in eval mode
        return
    ctype = np.float64 if x.dtype.char == "d" else np.float32
    f = fastdrop.gaussian_dropout(np.ones(x.shape, ctype), p, rng=seed, offset=offset)
    with np.errstate(all="ignore"):
        assert_bits_equal(y, (x.astype(ctype) * f).astype(y.dtype))
    if x.ndim == 1 and x.size > 2:
        part = fastdrop.gaussian_dropout(x[1:], p, rng=seed, offset=(offset + 1) % 2**64)
        assert_bits_equal(part, y[1:])


def test_gaussian_edges():
    x = np.array([1.0, np.inf])
    assert fastdrop.gaussian_dropout(x, 0.0, rng=1) is x
    assert fastdrop.gaussian_dropout(x, 0.3, training=False) is x
    with pytest.raises(ValueError, match="below 1"):
        fastdrop.gaussian_dropout(x, 1.0, rng=1)
    with pytest.raises(ValueError, match="rng"):
        fastdrop.gaussian_dropout_backward(x, 0.3, rng=None)


# -- fused bias-dropout-add ----------------------------------------------------------------


@given(x=awkward_arrays(max_dims=3), p=rates, seed=seeds, offset=offsets)
def test_dropout_add_is_residual_plus_dropout(x, p, seed, offset):
    native = x.dtype.newbyteorder("=").type
    residual = fastdrop.testing.make_array(x.shape, native, "C", seed=7)
    bias = fastdrop.testing.make_array(x.shape[-1:], native, "C", seed=8)
    y, mask = fastdrop.dropout_add(
        x, residual, p, bias=bias, rng=seed, offset=offset, return_mask=True
    )
    assert_bits_equal(mask, fastdrop.bernoulli_mask(x.shape, p, rng=seed, offset=offset))
    keep = keep_flags(x.shape, p, seed, offset)
    c = np.float64 if native == np.float64 else np.float32
    scale = 1 / (1 - p) if p < 1 else 0.0
    with np.errstate(all="ignore"):
        kept = (residual.astype(c) + (x.astype(c) + bias.astype(c)) * c(scale)).astype(native)
    # Dropped: residual, bit for bit. Kept NaN + NaN may be either NaN (IEEE).
    assert_bits_equal(y, np.where(keep, kept, residual), nan_payloads=False)
    assert_bits_equal(y[~keep], residual[~keep])


def test_dropout_add_without_bias_and_in_eval():
    x = np.array([1.0, np.inf, -0.0, 2.0] * 8)
    r = np.full(x.shape, -0.0)
    y = fastdrop.dropout_add(x, r, 0.5, rng=3)
    keep = keep_flags(x.shape, 0.5, 3)
    with np.errstate(invalid="ignore"):
        assert_bits_equal(y, np.where(keep, r + x * 2.0, r))
    assert_bits_equal(fastdrop.dropout_add(x, r, 0.5, training=False), r + x)
    assert_bits_equal(
        fastdrop.dropout_add(x, r, 0.5, training=False, scaling="classic"), r + x * 0.5
    )


def test_dropout_add_backward_gradients():
    g = fastdrop.testing.make_array((4, 3, 5), np.float32, seed=2)
    g[~np.isfinite(g)] = 1
    bias = np.zeros((3, 1), np.float32)
    gx, gr, gb = fastdrop.dropout_add_backward(g, 0.3, bias=bias, rng=6, offset=2)
    assert_bits_equal(gx, fastdrop.dropout_backward(g, 0.3, rng=6, offset=2))
    assert gr is g
    assert_bits_equal(gb, gx.sum(axis=(0, 2), dtype=np.float32).reshape(3, 1))
    assert fastdrop.dropout_add_backward(g, 0.3, rng=6)[2] is None


# -- backward passes against finite differences ----------------------------------------------


def directional(f, x, d, h=1e-6):
    return np.sum(f(x + h * d) - f(x - h * d)) / (2 * h)


@pytest.mark.parametrize("name", FAMILY)
def test_backward_matches_finite_differences(name):
    forward, backward = FAMILY[name]
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 4, 5))
    grad = backward(w)  # of the loss sum(w * forward(x))
    for _ in range(5):
        d = rng.standard_normal(x.shape)
        fd = directional(lambda v: w * forward(v), x, d)
        assert fd == pytest.approx(np.sum(grad * d), rel=1e-6, abs=1e-8)


def test_dropout_add_backward_matches_finite_differences():
    rng = np.random.default_rng(1)
    x, r, w = (rng.standard_normal((3, 4, 6)) for _ in range(3))
    bias = rng.standard_normal(6)
    gx, gr, gb = fastdrop.dropout_add_backward(w, 0.4, bias=bias, rng=9)
    f = lambda x_, r_, b_: w * fastdrop.dropout_add(x_, r_, 0.4, bias=b_, rng=9)  # noqa: E731
    for _ in range(3):
        dx, dr, db = (
            rng.standard_normal(x.shape),
            rng.standard_normal(r.shape),
            rng.standard_normal(6),
        )
        assert directional(lambda v: f(v, r, bias), x, dx) == pytest.approx(np.sum(gx * dx))
        assert directional(lambda v: f(x, v, bias), r, dr) == pytest.approx(np.sum(gr * dr))
        assert directional(lambda v: f(x, r, v), bias, db) == pytest.approx(np.sum(gb * db))


# -- the layer -----------------------------------------------------------------------------


def test_layer_walks_its_stream_and_replays():
    x = fastdrop.testing.make_array((6, 5), np.float32, seed=1)
    a, b = fastdrop.Dropout(0.4, rng=123), fastdrop.Dropout(0.4, rng=123)
    first, second = a(x), a(x)
    assert not np.array_equal(first != 0, second != 0)  # fresh masks
    assert_bits_equal(first, fastdrop.dropout(x, 0.4, rng=123))
    assert_bits_equal(second, fastdrop.dropout(x, 0.4, rng=123, offset=x.size))
    assert a.offset == 2 * x.size and a.seed == 123
    assert_bits_equal(b(x), first)  # same seed, same sequence
    assert_bits_equal(b(x), second)


def test_layer_backward_regenerates_or_uses_the_stored_mask():
    x = fastdrop.testing.make_array((7, 9), np.float64, seed=2)
    g = np.ones_like(x)
    for store in (False, True):
        layer = fastdrop.Dropout(0.3, rng=np.random.default_rng(5), store_mask=store)
        layer(x)
        y = layer(x)
        grad = layer.backward(g)
        assert_bits_equal(grad, fastdrop.dropout_backward(g, 0.3, rng=layer.seed, offset=x.size))
        assert np.array_equal(grad != 0, y != 0)
        assert (layer._last.mask is not None) == store


def test_layer_noise_shape_follows_the_batch():
    layer = fastdrop.Dropout(0.5, noise_shape=(None, 1, 4), rng=1)
    for batch in (2, 5):
        y = layer(np.ones((batch, 3, 4)))
        assert (y == y[:, :1]).all()
    assert layer.offset == 2 * 4 + 5 * 4
    assert "noise_shape=(None, 1, 4)" in repr(layer)


def test_layer_train_eval_and_errors():
    layer = fastdrop.Dropout(0.25, scaling="classic", rng=1)
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(np.ones(3))
    x = np.ones(4)
    assert layer.eval() is layer and not layer.training
    assert_bits_equal(layer(x), x * 0.75)
    assert_bits_equal(layer.backward(x), x * 0.75)
    assert layer.offset == 0  # eval calls do not move the stream
    assert layer.train() is layer and layer.training
    layer(x)
    with pytest.raises(ValueError, match="shape"):
        layer.backward(np.ones(5))
    with pytest.raises(ValueError):
        fastdrop.Dropout(1.5)
    with pytest.raises(TypeError):
        fastdrop.Dropout(0.5, noise_shape=3)
    assert repr(fastdrop.Dropout(0.1)) == "Dropout(p=0.1, scaling='inverted')"


def test_dropout_add_backward_into_grad_keeps_the_residual_gradient():
    g = np.ones((2, 4))
    gx, gr, gb = fastdrop.dropout_add_backward(g, 0.5, bias=np.zeros(4), rng=42, out=g)
    assert gx is g and gr is not g
    assert_bits_equal(gr, np.ones((2, 4)))
    assert_bits_equal(gb, gx.sum(axis=0))


def test_layer_backward_uses_the_forward_calls_settings():
    for store in (False, True):
        layer = fastdrop.Dropout(0.5, rng=1, store_mask=store)
        y = layer(np.ones(8))
        layer.p, layer.scaling = 0.9, "classic"  # changed between forward and backward
        assert_bits_equal(layer.backward(np.ones(8)), y)


def test_layer_rejects_a_bad_noise_shape_when_built():
    g = np.random.default_rng(0)
    state = g.bit_generator.state
    for bad, exc in [
        ((1, "a"), TypeError),
        (3, TypeError),
        ((True, None), TypeError),
        ((-1,), ValueError),
    ]:
        with pytest.raises(exc, match="noise_shape"):
            fastdrop.Dropout(0.5, noise_shape=bad, rng=g)
    assert g.bit_generator.state == state


def test_zero_dimensional_boolean_mask_is_an_array():
    m = fastdrop.bernoulli_mask((), 0.5, rng=1, packed=False)
    assert isinstance(m, np.ndarray) and m.shape == () and m.dtype == bool


def test_dropout_add_backward_of_a_0d_array_gives_arrays():
    # NumPy sums a 0-d array to a scalar; the bias gradient is still an array.
    g = np.array(3.0, np.float16)
    gx, gr, gb = fastdrop.dropout_add_backward(g, 0.0, bias=np.array(0.5, np.float16), rng=1)
    assert all(type(a) is np.ndarray and a.shape == () for a in (gx, gr, gb))
    assert gb == 3.0 and gb.dtype == np.float16
