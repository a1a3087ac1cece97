"""``rng=`` takes what ``numpy.random.default_rng`` takes (SPEC 7), in every public function,
and ints and Generators keep the keys they always gave."""

from __future__ import annotations

import numpy as np
import pytest

import fastdrop

da = pytest.importorskip("dask.array")
fdask = pytest.importorskip("fastdrop.dask")

U64 = 2**64

# Packed masks of bernoulli_mask(64, 0.5, rng=...) as fastdrop gave them before SeedSequence,
# BitGenerator and sequences were accepted: an int is the Philox key itself, a Generator
# gives its next integers(0, 2**64, dtype=np.uint64).
KNOWN = {
    "42": (lambda: 42, [81, 127, 2, 2, 69, 11, 64, 86]),
    "top": (lambda: U64 - 1, [196, 188, 103, 108, 97, 253, 173, 137]),
    "uint64": (lambda: np.uint64(42), [81, 127, 2, 2, 69, 11, 64, 86]),
    "Generator": (lambda: np.random.default_rng(0), [63, 113, 176, 126, 223, 71, 228, 40]),
}


@pytest.mark.parametrize("name", list(KNOWN))
def test_int_and_generator_keys_are_unchanged(name):
    make, bits = KNOWN[name]
    for backend in fastdrop.available_backends():
        mask = fastdrop.bernoulli_mask(64, 0.5, rng=make(), backend=backend)
        np.testing.assert_array_equal(mask, np.array(bits, np.uint8))
    # The docstrings' examples, as they were.
    y = fastdrop.dropout(np.ones(8, np.float32), 0.5, rng=42)
    np.testing.assert_array_equal(y, np.array([2, 0, 0, 0, 2, 0, 2, 0], np.float32))


def key(rng) -> int:
    """The key each kind of ``rng`` should give, by SPEC 7's normalisation: one draw."""
    return int(np.random.default_rng(rng).integers(0, U64, dtype=np.uint64))


def test_seed_sequences_and_int_sequences_give_the_same_key_every_time():
    ss = np.random.SeedSequence(1234)
    x = np.ones(100)
    want = fastdrop.dropout(x, 0.5, rng=key(np.random.SeedSequence(1234)))
    for rng in (ss, ss, [1234], (1234,), np.array([1234], np.uint32)):
        np.testing.assert_array_equal(fastdrop.dropout(x, 0.5, rng=rng), want)
    assert ss.n_children_spawned == 0  # used, not spawned from
    # A sequence goes through default_rng like a SeedSequence; an int is the key itself.
    assert not np.array_equal(fastdrop.dropout(x, 0.5, rng=[5]), fastdrop.dropout(x, 0.5, rng=5))
    np.testing.assert_array_equal(
        fastdrop.dropout(x, 0.5, rng=[1, 2**70]), fastdrop.dropout(x, 0.5, rng=key([1, 2**70]))
    )


def test_a_bit_generator_gives_one_draw_and_advances():
    bits = np.random.PCG64(7)
    twin = np.random.default_rng(7)  # the same PCG64 stream, wrapped
    x = np.ones(100)
    first = fastdrop.dropout(x, 0.5, rng=bits)
    np.testing.assert_array_equal(first, fastdrop.dropout(x, 0.5, rng=twin))
    assert bits.state == twin.bit_generator.state  # one draw each
    second = fastdrop.dropout(x, 0.5, rng=bits)
    np.testing.assert_array_equal(second, fastdrop.dropout(x, 0.5, rng=twin))
    assert not np.array_equal(first, second)
    # Any BitGenerator, not only PCG64: drawn from as numpy.random.Generator(bits).
    want = fastdrop.dropout(x, 0.5, rng=key(np.random.Philox(3)))
    np.testing.assert_array_equal(fastdrop.dropout(x, 0.5, rng=np.random.Philox(3)), want)


BAD = [
    (np.random.RandomState(0), TypeError, "rng must be"),
    (1.0, TypeError, "rng must be"),
    ("1234", TypeError, "rng must be"),
    (b"12", TypeError, "rng must be"),
    (True, TypeError, "rng must be"),
    (np.bool_(True), TypeError, "rng must be"),
    (np.timedelta64(3), TypeError, "rng must be"),
    ({1, 2}, TypeError, "rng must be"),
    (np.array(5), TypeError, "seed sequence"),  # 0-d: neither an int nor a sequence
    ([1.5], TypeError, "seed sequence"),
    (np.array([1.0, 2.0]), TypeError, "seed sequence"),
    ([-1], ValueError, "seed sequence"),
    (-1, ValueError, r"\[0, 2\*\*64\)"),
    (U64, ValueError, r"\[0, 2\*\*64\)"),
]


@pytest.mark.parametrize(("rng", "exc", "match"), BAD, ids=lambda v: type(v).__name__)
def test_what_default_rng_would_not_take_or_fastdrop_cannot_key_is_rejected(rng, exc, match):
    with pytest.raises(exc, match=match):
        fastdrop.dropout(np.ones(4), 0.5, rng=rng)
    with pytest.raises(exc, match=match):
        fastdrop.Dropout(0.5, rng=rng)


def test_a_failing_call_draws_nothing_from_a_bit_generator():
    bits = np.random.PCG64(1)
    state = bits.state
    with pytest.raises(ValueError):
        fastdrop.dropout(np.ones(4), 0.5, rng=bits, offset=-1)
    with pytest.raises(TypeError):
        fastdrop.dropout(np.ones(4), 0.5, rng=bits, training=None)
    with pytest.raises(ValueError):
        fastdrop.Dropout(0.5, rng=bits, noise_shape=(-1,))
    assert bits.state == state


# Every public function that takes rng: (name, call with rng=...).
x3 = np.linspace(-2, 2, 2 * 3 * 4).reshape(2, 3, 4)
CALLS = {
    "dropout": lambda r: fastdrop.dropout(x3, 0.5, rng=r),
    "dropout samples": lambda r: fastdrop.dropout(x3, 0.5, rng=r, samples=2),
    "dropout_backward": lambda r: fastdrop.dropout_backward(x3, 0.5, rng=r),
    "bernoulli_mask": lambda r: fastdrop.bernoulli_mask(x3.shape, 0.5, rng=r),
    "spatial_dropout": lambda r: fastdrop.spatial_dropout(x3, 0.5, rng=r),
    "spatial_dropout_backward": lambda r: fastdrop.spatial_dropout_backward(x3, 0.5, rng=r),
    "locked_dropout": lambda r: fastdrop.locked_dropout(x3, 0.5, rng=r),
    "locked_dropout_backward": lambda r: fastdrop.locked_dropout_backward(x3, 0.5, rng=r),
    "drop_path": lambda r: fastdrop.drop_path(x3, 0.5, rng=r),
    "drop_path_backward": lambda r: fastdrop.drop_path_backward(x3, 0.5, rng=r),
    "alpha_dropout": lambda r: fastdrop.alpha_dropout(x3, 0.5, rng=r),
    "alpha_dropout_backward": lambda r: fastdrop.alpha_dropout_backward(x3, 0.5, rng=r),
    "feature_alpha_dropout": lambda r: fastdrop.feature_alpha_dropout(x3, 0.5, rng=r),
    "feature_alpha_dropout_backward": lambda r: fastdrop.feature_alpha_dropout_backward(
        x3, 0.5, rng=r
    ),
    "gaussian_dropout": lambda r: fastdrop.gaussian_dropout(x3, 0.5, rng=r),
    "gaussian_dropout_backward": lambda r: fastdrop.gaussian_dropout_backward(x3, 0.5, rng=r),
    "dropout_add": lambda r: fastdrop.dropout_add(x3, x3, 0.5, bias=x3[0, 0], rng=r),
    "dropout_add_backward": lambda r: fastdrop.dropout_add_backward(x3, 0.5, bias=x3[0, 0], rng=r)[
        0
    ],
    "Dropout": lambda r: fastdrop.Dropout(0.5, rng=r)(x3),
    "Dropout.backward": lambda r: _layer_backward(fastdrop.Dropout(0.5, rng=r)),
}


def _layer_backward(layer):
    layer(x3)
    return layer.backward(np.ones_like(x3))


def _lazy(fn):
    def call(r):
        return fn(da.from_array(x3, chunks=(1, 2, 3)), r).compute()

    return call


# fastdrop.dask's functions, against the in-memory ones above.
DASK = {
    "dropout": _lazy(lambda x, r: fdask.dropout(x, 0.5, rng=r)),
    "dropout_backward": _lazy(lambda x, r: fdask.dropout_backward(x, 0.5, rng=r)),
    "bernoulli_mask": lambda r: fdask.bernoulli_mask(
        x3.shape, 0.5, chunks=2, rng=r, packed=False
    ).compute(),
    "spatial_dropout": _lazy(lambda x, r: fdask.spatial_dropout(x, 0.5, rng=r)),
    "alpha_dropout": _lazy(lambda x, r: fdask.alpha_dropout(x, 0.5, rng=r)),
    "gaussian_dropout": _lazy(lambda x, r: fdask.gaussian_dropout(x, 0.5, rng=r)),
    "gaussian_dropout_backward": _lazy(lambda x, r: fdask.gaussian_dropout_backward(x, 0.5, rng=r)),
    "dropout_add": _lazy(lambda x, r: fdask.dropout_add(x, x, 0.5, bias=x3[0, 0], rng=r)),
}
DASK_EXPECTED = {
    "bernoulli_mask": lambda r: fastdrop.bernoulli_mask(x3.shape, 0.5, rng=r, packed=False)
}


def kinds():
    """``(name, factory, key)``: each kind of ``rng``, made fresh, and the key it gives."""
    return [
        ("int", lambda: 987654321, 987654321),
        ("numpy int", lambda: np.int64(987654321), 987654321),
        ("Generator", lambda: np.random.default_rng(11), key(np.random.default_rng(11))),
        ("BitGenerator", lambda: np.random.SFC64(11), key(np.random.SFC64(11))),
        ("SeedSequence", lambda: np.random.SeedSequence(11), key(np.random.SeedSequence(11))),
        ("list", lambda: [11, 12], key([11, 12])),
        ("array", lambda: np.array([11, 12], np.uint64), key([11, 12])),
    ]


@pytest.mark.parametrize("name", list(CALLS))
def test_every_function_keys_every_kind_of_rng_alike(name):
    call = CALLS[name]
    for _, make, k in kinds():
        np.testing.assert_array_equal(call(make()), call(k))


@pytest.mark.parametrize("name", list(DASK))
def test_every_dask_function_keys_every_kind_of_rng_alike(name):
    expected = DASK_EXPECTED.get(name, CALLS[name])
    for _, make, k in kinds():
        np.testing.assert_array_equal(DASK[name](make()), expected(k))
