"""DropBlock: the same bits on every backend and chunking, timm's formula on the same seed
mask, its backward, its statistics and its edges."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import feature_maps, offsets, seeds
from test_agreement import assert_bits_equal

import fastdrop
from fastdrop.testing import make_array

BACKENDS = fastdrop.available_backends()
rates = st.sampled_from([0.0, 0.05, 0.1, 0.5, 0.9, 1.0])


def seed_mask(x_shape, p, *, block_size, gamma_scale, batchwise, channel_axis, rng, offset):
    """The documented seed mask: True at the block corners that are seeds, and the kernel."""
    shape = (1, *x_shape[1:]) if batchwise else x_shape
    axes = (2, 3) if channel_axis == 1 else (1, 2)
    h, w = (shape[a] for a in axes)
    kh, kw = min(block_size, h), min(block_size, w)
    corners = list(shape)
    corners[axes[0]], corners[axes[1]] = (h - kh + 1, w - kw + 1) if h * w else (0, 0)
    if not h * w:  # an empty map: no corners
        return np.zeros(corners, bool), (kh, kw)
    gamma = float(gamma_scale * p * h * w) / float(kh * kw) / float((h - kh + 1) * (w - kw + 1))
    keep = fastdrop.bernoulli_mask(
        tuple(corners), min(gamma, 1.0), rng=rng, offset=offset, packed=False
    )
    return ~keep, (kh, kw)


def timm_drop_block_2d(x, seeds, kh, kw):
    """timm's ``drop_block_2d`` in NumPy, channels first, fed ``seeds`` (``(B or 1, C, H,
    W)``, True at the block centres) for its Bernoulli draw: ``clip_mask_2d``'s valid
    centres, ``-max_pool2d(-keep)`` with stride 1 and padding ``k // 2`` (the first row
    and column cropped for even kernels, as timm since 1.0.23 does), and
    ``numel / (sum + 1e-7)`` in float32, where torch computes ``a / t`` as
    ``t.reciprocal() * a``, cast to x's dtype."""
    _, _, h, w = seeds.shape
    hi, wi = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    valid = (hi >= kh // 2) & (hi < h - (kh - 1) // 2) & (wi >= kw // 2) & (wi < w - (kw - 1) // 2)
    keep = (~(seeds & valid)).astype(x.dtype)
    padded = np.pad(
        keep, ((0, 0), (0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2)), constant_values=np.inf
    )
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(2, 3))
    block_mask = windows.min(axis=(-2, -1))[..., (kh + 1) % 2 :, (kw + 1) % 2 :]
    f32 = np.float32
    total = block_mask.astype(f32).sum(dtype=f32)
    scale = f32(block_mask.size) * (f32(1) / (total + f32(1e-7)))
    with np.errstate(over="ignore"):
        return x * block_mask * scale.astype(x.dtype)


def test_equals_timm_on_the_same_seed_mask():
    rng = np.random.default_rng(0)
    cases = [  # (shape, block_size, p, dtype, batchwise)
        ((2, 3, 9, 9), 3, 0.3, np.float32, False),
        ((2, 3, 10, 7), 4, 0.5, np.float16, False),
        ((1, 2, 5, 6), 7, 0.9, np.float64, True),
        ((3, 2, 8, 8), 2, 0.2, np.float32, True),
        ((2, 4, 16, 12), 5, 0.15, np.float64, False),
        ((1, 1, 1, 1), 1, 0.5, np.float32, False),
        ((2, 2, 6, 6), 5, 1.0, np.float16, False),
    ]
    for k, (shape, block_size, p, dtype, batchwise) in enumerate(cases):
        x = rng.standard_normal(shape).astype(dtype)
        kw = dict(block_size=block_size, batchwise=batchwise, rng=k, offset=11)
        corners, (kh, kw_) = seed_mask(shape, p, gamma_scale=1.0, channel_axis=1, **kw)
        centres = np.zeros((corners.shape[0], *shape[1:]), bool)
        _, _, ch, cw = corners.shape
        centres[..., kh // 2 : kh // 2 + ch, kw_ // 2 : kw_ // 2 + cw] = corners
        want = timm_drop_block_2d(x, centres, kh, kw_)
        got = fastdrop.drop_block(x, p, **kw)
        assert_bits_equal(got, want + 0.0)  # + 0.0: timm's dropped negatives are -0.0
        assert 0 < np.count_nonzero(got == 0) or p == 0.5  # blocks were dropped


@given(case=feature_maps(), p=rates, seed=seeds, offset=offsets)
def test_backends_agree(fast_backend, case, p, seed, offset):
    x, kw = case
    kw.update(rng=seed, offset=offset)
    want = fastdrop.drop_block(x, p, backend="numpy", **kw)
    assert_bits_equal(fastdrop.drop_block(x, p, backend=fast_backend, **kw), want)
    assert_bits_equal(fastdrop.drop_block_backward(x, p, backend=fast_backend, **kw), want)


@given(case=feature_maps(), p=rates, seed=seeds, offset=offsets)
def test_blocks_grow_from_the_documented_seeds(case, p, seed, offset):
    x, kw = case
    y = fastdrop.drop_block(x, p, rng=seed, offset=offset, **kw)
    if p == 0:
        assert y is x
        return
    options = {k: v for k, v in kw.items() if k != "scale_by_keep"}
    corners, (kh, kw_) = seed_mask(x.shape, p, rng=seed, offset=offset, **options)
    axes = (2, 3) if kw["channel_axis"] == 1 else (1, 2)
    # Covered elements: those of every seed's block, stamped with a plain loop.
    moved = np.moveaxis(corners, axes, (-2, -1))
    cov = np.zeros((*moved.shape[:-2], *(x.shape[a] for a in axes)), bool)
    for di in range(kh):
        for dj in range(kw_):
            cov[..., di : di + moved.shape[-2], dj : dj + moved.shape[-1]] |= moved
    keep = ~np.moveaxis(cov, (-2, -1), axes)
    covered = np.broadcast_to(~keep, x.shape)
    native = x.dtype.newbyteorder("=")
    if kw["scale_by_keep"]:
        f32 = np.float32
        s = f32(keep.size) * (f32(1) / (f32(np.count_nonzero(keep)) + f32(1e-7)))
        with np.errstate(over="ignore"):
            scale = s.astype(native)
    else:
        scale = native.type(1)
    c = np.float64 if native == np.float64 else np.float32
    with np.errstate(all="ignore"):
        kept = (x.astype(c) * c(scale)).astype(native)
    assert_bits_equal(y, np.where(covered, native.type(0), kept))


@pytest.mark.parametrize("backend", BACKENDS)
def test_drops_about_p_of_large_feature_maps(backend):
    n, c, h, w, k, p = 4, 8, 40, 40, 5, 0.1
    y = fastdrop.drop_block(np.ones((n, c, h, w), np.float32), p, block_size=k, rng=3)
    gamma = p * h * w / k**2 / (h - k + 1) ** 2
    # Element i is covered by min(i, k - 1, h - 1 - i, ...) + 1 corners along an axis.
    i = np.arange(h)
    reach = np.minimum.reduce([i + 1, np.full(h, k), h - i, np.full(h, h - k + 1)])
    expected = np.mean(1 - (1 - gamma) ** np.multiply.outer(reach, reach))
    dropped = np.mean(y == 0)
    se = math.sqrt(expected * (1 - expected) * k * k / (n * c * h * w))  # blocks correlate
    assert abs(dropped - expected) < 5 * se
    assert abs(expected - p) < 0.02  # the paper's rate aims at p
    assert y.mean() == pytest.approx(1.0, rel=1e-6)  # scale_by_keep keeps the mean


def test_backward_is_the_forward_mask():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 12, 12, 3))
    kw = dict(block_size=3, channel_axis=-1, batchwise=True, rng=9, offset=4)
    y = fastdrop.drop_block(x, 0.4, **kw)
    g = fastdrop.drop_block_backward(np.ones_like(x), 0.4, **kw)
    assert_bits_equal(y, x * g + 0.0)  # + 0.0: x * +0.0 is -0.0 for negative x
    w = rng.standard_normal(x.shape)
    assert_bits_equal(fastdrop.drop_block_backward(w, 0.4, **kw), fastdrop.drop_block(w, 0.4, **kw))
    assert (g == g[:1]).all()  # batchwise: one mask for the batch
    assert fastdrop.drop_block_backward(w, 0.0, rng=1) is w
    with pytest.raises(ValueError, match="rng"):
        fastdrop.drop_block_backward(w, 0.4, channel_axis=-1)


def test_edges():
    x = np.full((1, 2, 5, 5), np.inf)
    x[0, 0, 0, 0] = np.nan
    y = fastdrop.drop_block(x, 1.0, block_size=5, rng=1)  # gamma = 1: every map dropped
    assert (y == 0).all() and not np.signbit(y).any()
    assert fastdrop.drop_block(x, 0.0, rng=1) is x  # as timm's DropBlock2d
    empty = np.ones((2, 3, 0, 4), np.float16)
    assert fastdrop.drop_block(empty, 0.5, rng=1).shape == empty.shape
    g = np.random.default_rng(5)
    state = g.bit_generator.state
    fastdrop.drop_block(x, 0.5, rng=g)
    assert g.bit_generator.state != state  # one key drawn, as dropout does
    # A channels-last array and the same data channels-first draw different seeds (positions
    # follow x's own axis order), but each is a valid DropBlock of its own layout.
    a = np.ones((2, 3, 8, 8))
    first = fastdrop.drop_block(a, 0.5, block_size=3, rng=1)
    last = fastdrop.drop_block(np.moveaxis(a, 1, -1), 0.5, block_size=3, rng=1, channel_axis=-1)
    assert first.shape == a.shape and last.shape == (2, 8, 8, 3)


BAD = [  # (x shape, kwargs, exception, message fragment)
    ((2, 3, 4), {}, ValueError, "4-d array"),
    ((1, 2, 3, 4, 5), {}, ValueError, "4-d array"),
    ((2, 3, 4, 4), {"channel_axis": 0}, ValueError, "channel_axis must be 1"),
    ((2, 3, 4, 4), {"channel_axis": 2}, ValueError, "channel_axis must be 1"),
    ((2, 3, 4, 4), {"channel_axis": 4}, ValueError, "out of range"),
    ((2, 3, 4, 4), {"channel_axis": 1.0}, TypeError, "channel_axis"),
    ((2, 3, 4, 4), {"block_size": 0}, ValueError, "block_size must be at least 1"),
    ((2, 3, 4, 4), {"block_size": 3.0}, TypeError, "block_size must be an integer"),
    ((2, 3, 4, 4), {"block_size": True}, TypeError, "block_size"),
    ((2, 3, 4, 4), {"gamma_scale": -1.0}, ValueError, "gamma_scale"),
    ((2, 3, 4, 4), {"gamma_scale": math.inf}, ValueError, "gamma_scale"),
    ((2, 3, 4, 4), {"gamma_scale": "1"}, TypeError, "gamma_scale must be a real"),
    ((2, 3, 4, 4), {"batchwise": 1}, TypeError, "batchwise must be a bool"),
    ((2, 3, 4, 4), {"scale_by_keep": None}, TypeError, "scale_by_keep must be a bool"),
    ((2, 3, 4, 4), {"p": 1.5}, ValueError, "p must be in"),
    ((2, 3, 4, 4), {"offset": -1}, ValueError, "offset"),
    ((2, 3, 4, 4), {"backend": "gpu"}, ValueError, "unknown backend"),
]


@pytest.mark.parametrize(("shape", "kwargs", "exc", "match"), BAD)
def test_bad_input_is_refused_up_front(shape, kwargs, exc, match):
    x = make_array(shape, np.float32, seed=1)
    before = x.copy()
    for fn in (fastdrop.drop_block, fastdrop.drop_block_backward):
        g = np.random.default_rng(0)
        state = g.bit_generator.state
        with pytest.raises(exc, match=match):
            fn(x, **{"p": 0.5, "rng": g, **kwargs})
        assert g.bit_generator.state == state
        assert_bits_equal(x, before)
