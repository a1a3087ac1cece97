"""The layers: each member of the family as a layer with one interface, from one table."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pytest
from test_agreement import assert_bits_equal

import fastdrop
from fastdrop.testing import make_array


class Case(NamedTuple):
    layer: type
    options: dict  # the layer's keywords, which its functions take too
    forward: object
    backward: object
    shape: tuple[int, ...]
    positions: int  # stream positions one call takes on an input of shape
    eval_is_identity: bool  # eval mode returns x itself


SHAPE = (3, 4, 6, 5)
CASES = [
    Case(fastdrop.Dropout, {}, fastdrop.dropout, fastdrop.dropout_backward, SHAPE, 360, True),
    Case(
        fastdrop.Dropout,
        {"scaling": "classic", "noise_shape": (None, 1, 6, 5)},
        fastdrop.dropout,
        fastdrop.dropout_backward,
        SHAPE,
        90,
        False,
    ),
    Case(
        fastdrop.SpatialDropout,
        {"channel_axis": -1},
        fastdrop.spatial_dropout,
        fastdrop.spatial_dropout_backward,
        SHAPE,
        15,
        True,
    ),
    Case(
        fastdrop.LockedDropout,
        {"time_axis": 1},
        fastdrop.locked_dropout,
        fastdrop.locked_dropout_backward,
        SHAPE,
        90,
        True,
    ),
    Case(
        fastdrop.DropPath,
        {"scaling": "classic"},
        fastdrop.drop_path,
        fastdrop.drop_path_backward,
        SHAPE,
        3,
        False,
    ),
    Case(
        fastdrop.AlphaDropout,
        {"noise_shape": (3, 1, None, 5)},
        fastdrop.alpha_dropout,
        fastdrop.alpha_dropout_backward,
        SHAPE,
        90,
        True,
    ),
    Case(
        fastdrop.FeatureAlphaDropout,
        {},
        fastdrop.feature_alpha_dropout,
        fastdrop.feature_alpha_dropout_backward,
        SHAPE,
        12,
        True,
    ),
    Case(
        fastdrop.GaussianDropout,
        {},
        fastdrop.gaussian_dropout,
        fastdrop.gaussian_dropout_backward,
        SHAPE,
        360,
        True,
    ),
    Case(
        fastdrop.DropBlock,
        {"block_size": 3, "batchwise": True},
        fastdrop.drop_block,
        fastdrop.drop_block_backward,
        (3, 4, 9, 7),
        4 * 7 * 5,
        True,
    ),
    Case(
        fastdrop.DropBlock,
        {"block_size": 2, "channel_axis": -1, "scale_by_keep": False, "gamma_scale": 2.0},
        fastdrop.drop_block,
        fastdrop.drop_block_backward,
        (2, 8, 8, 3),
        2 * 7 * 7 * 3,
        True,
    ),
]
IDS = [f"{c.layer.__name__}-{k}" for k, c in enumerate(CASES)]
P = 0.4


def inputs(case: Case) -> tuple[np.ndarray, np.ndarray]:
    x = make_array(case.shape, np.float32, "F", seed=1)
    return x, make_array(case.shape, np.float32, "C", seed=2)


def evaluated(case: Case, x: np.ndarray) -> np.ndarray:
    if case.layer is fastdrop.DropBlock:
        return x
    return case.forward(x, P, training=False, **case.options)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fresh_masks_per_call_and_backward_redraws(case):
    x, g = inputs(case)
    layer = case.layer(P, rng=123, **case.options)
    for call in range(3):
        offset = call * case.positions
        assert layer.offset == offset
        y = layer(x)
        assert_bits_equal(y, case.forward(x, P, rng=123, offset=offset, **case.options))
        want = case.backward(g, P, rng=123, offset=offset, **case.options)
        assert_bits_equal(layer.backward(g), want)
    assert layer.offset == 3 * case.positions
    first, second = case.forward(x, P, rng=123, **case.options), layer(x)
    assert not np.array_equal(first, second)  # the fourth call's mask is not the first's


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_eval_mode_and_the_per_call_override(case):
    x, g = inputs(case)
    layer = case.layer(P, rng=5, **case.options)
    assert layer.eval() is layer and not layer.training
    y = layer(x)
    assert_bits_equal(y, evaluated(case, x))
    assert (y is x) == case.eval_is_identity
    assert_bits_equal(layer.backward(g), evaluated(case, g))
    assert layer.offset == 0  # eval calls take no positions
    trained = layer(x, training=True)  # this call alone, as Keras's training=
    assert_bits_equal(trained, case.forward(x, P, rng=5, **case.options))
    assert_bits_equal(layer.backward(g), case.backward(g, P, rng=5, **case.options))
    assert not layer.training and layer.offset == case.positions
    layer.train()
    assert_bits_equal(layer(x, training=False), evaluated(case, x))
    assert layer.training and layer.offset == case.positions
    with pytest.raises(TypeError, match="training must be a bool"):
        layer(x, training=1)
    assert layer.offset == case.positions


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_reproducible_from_the_layers_rng(case):
    x, _ = inputs(case)
    a = case.layer(P, rng=np.random.default_rng(7), **case.options)
    b = case.layer(P, rng=np.random.default_rng(7), **case.options)
    assert a.seed == b.seed == int(np.random.default_rng(7).integers(0, 2**64, dtype=np.uint64))
    for _ in range(2):
        assert_bits_equal(a(x), b(x))
    c = case.layer(P, rng=a.seed, **case.options)
    assert_bits_equal(c(x), case.forward(x, P, rng=a.seed, **case.options))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_repr_rebuilds_the_layer(case):
    layer = case.layer(P, rng=1, **case.options)
    text = repr(layer)
    assert text.startswith(f"{case.layer.__name__}(p={P}")
    rebuilt = eval(f"fastdrop.{text}", {"fastdrop": fastdrop})
    assert repr(rebuilt) == text
    for name, value in case.options.items():
        assert getattr(rebuilt, name) == (tuple(value) if isinstance(value, list) else value)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_backward_needs_a_call_of_the_same_shape(case):
    x, _ = inputs(case)
    layer = case.layer(P, rng=1, **case.options)
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(x)
    layer(x)
    with pytest.raises(ValueError, match="shape"):
        layer.backward(x[:1])


BAD_LAYERS = [  # (layer, keywords, exception, message fragment)
    (fastdrop.SpatialDropout, {"channel_axis": 1.0}, TypeError, "channel_axis"),
    (fastdrop.LockedDropout, {"time_axis": None}, TypeError, "time_axis"),
    (fastdrop.DropPath, {"scaling": "up"}, ValueError, "scaling"),
    (fastdrop.AlphaDropout, {"noise_shape": 3}, TypeError, "noise_shape"),
    (fastdrop.FeatureAlphaDropout, {"store_mask": 1}, TypeError, "store_mask"),
    (fastdrop.GaussianDropout, {"p": 1.0}, ValueError, "below 1"),
    (fastdrop.DropBlock, {"block_size": 0}, ValueError, "block_size"),
    (fastdrop.DropBlock, {"gamma_scale": -1}, ValueError, "gamma_scale"),
    (fastdrop.DropBlock, {"batchwise": None}, TypeError, "batchwise"),
    (fastdrop.Dropout, {"p": 2.0}, ValueError, "p must be in"),
]


@pytest.mark.parametrize(("layer", "kwargs", "exc", "match"), BAD_LAYERS)
def test_bad_keywords_are_refused_when_built(layer, kwargs, exc, match):
    g = np.random.default_rng(0)
    state = g.bit_generator.state
    with pytest.raises(exc, match=match):
        layer(**{"p": 0.5, "rng": g, **kwargs})
    assert g.bit_generator.state == state


def test_a_failed_call_takes_no_positions():
    layer = fastdrop.DropBlock(0.3, rng=1)
    with pytest.raises(ValueError, match="4-d"):
        layer(np.ones((2, 3)))
    assert layer.offset == 0
    layer(np.ones((1, 2, 9, 9)))
    assert layer.offset == 2 * 3 * 3 == math.prod((1, 2, 9 - 7 + 1, 9 - 7 + 1))
