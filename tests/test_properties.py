"""What the contract promises users: offsets, statistics, inf/NaN, scaling, dtypes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import offsets, seeds

import fastdrop
from fastdrop._engine.run import all_kept

BACKENDS = fastdrop.available_backends()


def assert_values_equal(a: np.ndarray, b: np.ndarray) -> None:
    """``np.testing.assert_array_equal`` (a NaN equals a NaN) through float64: NumPy's
    comparison knows the NaNs of its own dtypes only, not bfloat16's."""
    np.testing.assert_array_equal(np.asarray(a, np.float64), np.asarray(b, np.float64))


@pytest.mark.parametrize("backend", BACKENDS)
@given(
    n=st.integers(0, 300),
    data=st.data(),
    seed=seeds,
    base=offsets,
    p=st.floats(0, 1),
)
def test_offset_property(backend, n, data, seed, base, p):
    # dropout(x[a:b], rng=s, offset=a) == dropout(x, rng=s)[a:b], from any base offset.
    a = data.draw(st.integers(0, n))
    b = data.draw(st.integers(a, n))
    x = np.arange(1, n + 1, dtype=np.float32)
    whole = fastdrop.dropout(x, p, rng=seed, offset=base, backend=backend)
    part = fastdrop.dropout(x[a:b], p, rng=seed, offset=(base + a) % 2**64, backend=backend)
    np.testing.assert_array_equal(part, whole[a:b])


@pytest.mark.parametrize("backend", BACKENDS)
def test_offset_property_on_a_large_array(backend):
    x = np.ones(100_003, np.float32)
    whole = fastdrop.dropout(x, 0.3, rng=5, backend=backend)
    for a, b in [(0, 4096), (1, 99_999), (4097, 100_003), (50_001, 50_002)]:
        np.testing.assert_array_equal(fastdrop.dropout(x[a:b], 0.3, rng=5, offset=a), whole[a:b])


@pytest.mark.parametrize("p", [0.0, 0.001, 0.1, 0.5, 0.9, 0.999, 1.0])
@pytest.mark.parametrize("backend", BACKENDS)
def test_keep_rate_within_binomial_bounds(backend, p):
    n = 200_000 if backend != "numpy" else 50_000
    for seed in (0, 1, 2**63 + 7):
        kept = np.unpackbits(fastdrop.bernoulli_mask(n, p, rng=seed, backend=backend), count=n)
        k = int(kept.sum())
        mean, sd = n * (1 - p), np.sqrt(n * p * (1 - p))
        assert abs(k - mean) <= 6 * sd  # exact when p is 0 or 1


def test_threshold_honours_p_to_2_pow_minus_33():
    # t = floor(p * 2**32 + 0.5): a p just below half a step rounds down, just above up.
    from fastdrop._contract.stream import threshold as _threshold

    assert _threshold(0.0) == 0
    assert _threshold(1.0) == 2**32
    assert _threshold(0.5) == 2**31
    assert _threshold(2.0**-33) == 1  # exactly half a step rounds up
    assert _threshold(np.nextafter(2.0**-33, 0)) == 0
    assert _threshold(1 - 2.0**-33) == 2**32
    assert _threshold(np.nextafter(1 - 2.0**-33, 0)) == 2**32 - 1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", fastdrop.testing.DTYPES)
def test_dropped_inf_and_nan_become_plus_zero(backend, dtype):
    x = np.array([np.inf, -np.inf, np.nan, -0.0, -1.0] * 200, dtype)
    y, mask = fastdrop.dropout(x, 0.5, rng=3, return_mask=True, backend=backend)
    keep = np.unpackbits(mask, count=x.size, bitorder="little").astype(bool)
    assert 0 < keep.sum() < x.size
    dropped = y[~keep]
    assert not np.isnan(dropped).any()
    assert (dropped.view(np.uint8) == 0).all()  # +0.0: every byte zero
    assert_values_equal(y[keep], x[keep] * dtype(2))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", fastdrop.testing.DTYPES)
def test_p_zero_is_identity_and_p_one_is_zeros(backend, dtype):
    x = fastdrop.testing.make_array((37, 5), dtype)
    y0, m0 = fastdrop.dropout(x, 0.0, rng=1, return_mask=True, backend=backend)
    assert_values_equal(y0, x)
    assert m0.tolist() == all_kept(x.size, None).tolist()
    with np.errstate(all="raise"):  # no division by zero anywhere
        y1 = fastdrop.dropout(x, 1.0, rng=1, backend=backend)
        g1 = fastdrop.dropout_backward(x, 1.0, rng=1, backend=backend)
    assert not np.signbit(y1).any() and (y1 == 0).all()
    assert not np.signbit(g1).any() and (g1 == 0).all()


@pytest.mark.parametrize("dtype", fastdrop.testing.DTYPES)
def test_kept_values_are_scaled_once_in_the_contract_precision(dtype):
    x = fastdrop.testing.make_array((1000,), dtype)
    y, mask = fastdrop.dropout(x, 0.3, rng=11, return_mask=True)
    keep = np.unpackbits(mask, count=x.size, bitorder="little").astype(bool)
    compute = np.float64 if dtype == np.float64 else np.float32
    with np.errstate(all="ignore"):
        expected = (x.astype(compute) * compute(1 / 0.7)).astype(dtype)
    assert_values_equal(y[keep], expected[keep])


def test_classic_scaling_and_eval():
    x = np.arange(1.0, 9.0)
    train = fastdrop.dropout(x, 0.25, rng=2, scaling="classic")
    mask = fastdrop.bernoulli_mask(x.shape, 0.25, rng=2, packed=False)
    np.testing.assert_array_equal(train, np.where(mask, x, 0.0))
    np.testing.assert_array_equal(
        fastdrop.dropout(x, 0.25, training=False, scaling="classic"), x * 0.75
    )
    assert fastdrop.dropout(x, 0.25, training=False) is x
    out = np.empty_like(x)
    assert fastdrop.dropout(x, 0.25, training=False, out=out) is out
    np.testing.assert_array_equal(out, x)
    _y, mask = fastdrop.dropout(x, 0.25, training=False, return_mask=True)
    assert np.unpackbits(mask, bitorder="little").all()


def test_inverted_scaling_matches_the_mask():
    x = np.arange(1.0, 1001.0)
    y = fastdrop.dropout(x, 0.2, rng=4)
    mask = fastdrop.bernoulli_mask(x.shape, 0.2, rng=4, packed=False)
    np.testing.assert_array_equal(y, np.where(mask, x / 0.8, 0.0))


@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2), (1,), (5, 7), (2, 3, 4, 5)])
def test_shapes_and_dtype_are_kept(shape):
    for dtype in fastdrop.testing.DTYPES:
        x = np.ones(shape, dtype)
        y, mask = fastdrop.dropout(x, 0.5, rng=0, return_mask=True)
        assert y.shape == x.shape and y.dtype == x.dtype
        assert mask.dtype == np.uint8 and mask.shape == ((x.size + 7) // 8,)


def test_mask_layout_is_little_bit_order_over_c_order():
    x = np.ones((3, 5))
    y, mask = fastdrop.dropout(np.asfortranarray(x), 0.5, rng=9, return_mask=True)
    keep = np.unpackbits(mask, count=15, bitorder="little").astype(bool).reshape(3, 5)
    np.testing.assert_array_equal(keep, y != 0)


def test_a_generator_gives_one_seed_per_call_even_when_empty():
    for call in (
        lambda rng: fastdrop.dropout(np.ones(0), 0.5, rng=rng),
        lambda rng: fastdrop.dropout_backward(np.ones(0), 0.5, rng=rng),
        lambda rng: fastdrop.bernoulli_mask(0, 0.5, rng=rng),
    ):
        rng = np.random.default_rng(3)
        call(rng)
        expected = np.random.default_rng(3)
        expected.integers(0, 2**64, dtype=np.uint64)
        assert rng.bit_generator.state == expected.bit_generator.state


def test_numba_thread_setting_is_restored():
    import numba

    before = numba.get_num_threads()
    with fastdrop.threads(1):
        fastdrop.dropout(np.ones(10_000), 0.5, rng=1, backend="numba")
    assert numba.get_num_threads() == before


def test_rng_generator_and_none():
    x = np.ones(64)
    a = fastdrop.dropout(x, 0.5, rng=np.random.default_rng(7))
    seed = int(np.random.default_rng(7).integers(0, 2**64, dtype=np.uint64))
    np.testing.assert_array_equal(a, fastdrop.dropout(x, 0.5, rng=seed))
    draws = {fastdrop.dropout(x, 0.5).tobytes() for _ in range(4)}
    assert len(draws) > 1  # fresh entropy each call


def test_backward_from_mask_and_by_regeneration_agree_with_forward():
    x = fastdrop.testing.make_array((50, 21), np.float32)
    g = np.arange(x.size, dtype=np.float32).reshape(x.shape)
    _y, mask = fastdrop.dropout(x, 0.4, rng=21, offset=1000, return_mask=True)
    from_mask = fastdrop.dropout_backward(g, 0.4, mask=mask)
    regenerated = fastdrop.dropout_backward(g, 0.4, rng=21, offset=1000)
    np.testing.assert_array_equal(from_mask, regenerated)
    np.testing.assert_array_equal(from_mask, fastdrop.dropout(g, 0.4, rng=21, offset=1000))
    classic = fastdrop.dropout_backward(g, 0.4, mask=mask, scaling="classic")
    keep = np.unpackbits(mask, count=x.size, bitorder="little").astype(bool).reshape(x.shape)
    np.testing.assert_array_equal(classic, np.where(keep, g, 0))


def test_backward_is_the_gradient():
    # y = x * keep * s is linear in x: the directional derivative equals <grad, dx>.
    rng = np.random.default_rng(0)
    x, dx, g = rng.standard_normal((3, 64))
    eps = 1e-3
    y_plus = fastdrop.dropout(x + eps * dx, 0.3, rng=8)
    y_minus = fastdrop.dropout(x - eps * dx, 0.3, rng=8)
    numeric = np.dot(g, (y_plus - y_minus) / (2 * eps))
    analytic = np.dot(fastdrop.dropout_backward(g, 0.3, rng=8), dx)
    assert numeric == pytest.approx(analytic, rel=1e-9)


def test_in_place():
    x = np.arange(1.0, 101.0)
    expected = fastdrop.dropout(x, 0.5, rng=1)
    assert fastdrop.dropout(x, 0.5, rng=1, out=x) is x
    np.testing.assert_array_equal(x, expected)


@pytest.mark.parametrize("backend", ["numba", "cython"])
@pytest.mark.parametrize("layout", ["C", "F", "sliced", "byteswapped", "transposed"])
def test_no_temporaries_the_size_of_the_input(backend, layout):
    # NumPy reports its allocations to tracemalloc: the peak during a call may hold the
    # output and the mask, and nothing else of the input's size.
    import tracemalloc

    x = fastdrop.testing.make_array((64, 128, 64), np.float32, layout)
    fastdrop.dropout(x[:1], 0.5, rng=1, backend=backend)  # compile outside the window
    nbytes = x.size * x.itemsize
    out = np.empty(x.shape, np.float32)
    calls = [
        lambda: fastdrop.dropout(x, 0.5, rng=1, backend=backend, out=out, return_mask=True),
        lambda: fastdrop.dropout_backward(x, 0.5, rng=1, backend=backend, out=out),
        lambda: fastdrop.dropout_backward(x, 0.5, mask=mask, backend=backend, out=out),
    ]
    mask = fastdrop.bernoulli_mask(x.shape, 0.5, rng=1)
    # Small change: Python objects, and each thread's tile buffers (about 20 kB; seen
    # on 16 threads), which do not grow with the input.
    small = 65536 + 32768 * fastdrop.get_num_threads()
    for call in calls:
        tracemalloc.start()
        call()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < nbytes / 8 + small  # at most the packed mask
    tracemalloc.start()
    fastdrop.dropout(x, 0.5, rng=1, backend=backend)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < nbytes + small  # the output alone
