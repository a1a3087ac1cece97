"""Every backend agrees bit for bit with the NumPy reference, the executable specification."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import BFLOAT16, HALVES, awkward_arrays, offsets, rates, seeds

import fastdrop
import fastdrop.testing
from fastdrop._contract import dtypes


def assert_bits_equal(a: np.ndarray, b: np.ndarray, *, nan_payloads: bool = True) -> None:
    """Same dtype, shape and bytes (NaN payloads included, unless ``nan_payloads=False``:
    then a NaN matches any NaN, for results that IEEE leaves to the operand order)."""
    assert a.dtype == b.dtype and a.shape == b.shape
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    if not nan_payloads and dtypes.is_real(a.dtype):
        with np.errstate(invalid="ignore"):  # ml_dtypes warns of a signalling NaN
            both = np.isnan(a) & np.isnan(b)
        a, b = np.where(both, 0, a).astype(a.dtype), np.where(both, 0, b).astype(b.dtype)
    np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))


@given(
    x=awkward_arrays(),
    p=rates,
    seed=seeds,
    offset=offsets,
    scaling=st.sampled_from(["inverted", "classic"]),
)
def test_forward_and_mask(fast_backend, x, p, seed, offset, scaling):
    kw = dict(rng=seed, offset=offset, scaling=scaling, return_mask=True)
    ref_y, ref_mask = fastdrop.dropout(x, p, backend="numpy", **kw)
    y, mask = fastdrop.dropout(x, p, backend=fast_backend, **kw)
    assert_bits_equal(y, ref_y)
    assert_bits_equal(mask, ref_mask)
    assert y.dtype == x.dtype.newbyteorder("=")


@given(x=awkward_arrays(), p=rates, seed=seeds, offset=offsets)
def test_backward_both_ways(fast_backend, x, p, seed, offset):
    _, mask = fastdrop.dropout(x, p, rng=seed, offset=offset, return_mask=True, backend="numpy")
    ref = fastdrop.dropout_backward(x, p, mask=mask, backend="numpy")
    assert_bits_equal(fastdrop.dropout_backward(x, p, mask=mask, backend=fast_backend), ref)
    regenerated = fastdrop.dropout_backward(x, p, rng=seed, offset=offset, backend=fast_backend)
    assert_bits_equal(regenerated, ref)


@given(x=awkward_arrays(max_dims=3), p=rates, seed=seeds, offset=offsets)
def test_bernoulli_mask(fast_backend, x, p, seed, offset):
    for packed in (True, False):
        kw = dict(rng=seed, offset=offset, packed=packed)
        assert_bits_equal(
            fastdrop.bernoulli_mask(x.shape, p, backend=fast_backend, **kw),
            fastdrop.bernoulli_mask(x.shape, p, backend="numpy", **kw),
        )


@given(x=awkward_arrays(max_dims=3), p=rates)
def test_classic_eval(fast_backend, x, p):
    kw = dict(training=False, scaling="classic")
    assert_bits_equal(
        fastdrop.dropout(x, p, backend=fast_backend, **kw),
        fastdrop.dropout(x, p, backend="numpy", **kw),
    )


@given(x=awkward_arrays(max_dims=3), p=rates, seed=seeds, offset=offsets, n=st.integers(1, 4))
def test_thread_count_does_not_matter(fast_backend, x, p, seed, offset, n):
    ref = fastdrop.dropout(x, p, rng=seed, offset=offset, backend="numpy")
    with fastdrop.threads(n):
        assert_bits_equal(
            fastdrop.dropout(x, p, rng=seed, offset=offset, backend=fast_backend), ref
        )


@pytest.mark.parametrize("n_threads", [1, 2, 3, 4])
def test_thread_count_does_not_matter_on_many_tiles(fast_backend, n_threads, monkeypatch):
    # Enough tiles (4096 elements each) for every thread to get some, in every layout; and
    # every call parallel, however small.
    monkeypatch.setattr(fastdrop._engine.backends.load(fast_backend), "PARALLEL_MIN", 0)
    for layout in fastdrop.testing.LAYOUTS:
        x = fastdrop.testing.make_array((5, 3, 4099), np.float32, layout)
        kw = dict(rng=3, offset=2**64 - 7, return_mask=True)
        ref = fastdrop.dropout(x, 0.3, backend="numpy", **kw)
        with fastdrop.threads(n_threads):
            got = fastdrop.dropout(x, 0.3, backend=fast_backend, **kw)
        assert_bits_equal(got[0], ref[0])
        assert_bits_equal(got[1], ref[1])


def test_misaligned_and_structured_fields(fast_backend):
    # A packed structured array's field has strides that are not whole items.
    for dtype in ("<f2", "<f4", "<f8"):
        a = np.zeros(4099, [("v", dtype), ("tag", "<u1")])
        a["v"] = np.arange(4099)
        a["tag"] = 7
        ref = fastdrop.dropout(np.ascontiguousarray(a["v"]), 0.4, rng=2, backend="numpy")
        assert_bits_equal(fastdrop.dropout(a["v"], 0.4, rng=2, backend=fast_backend), ref)
        fastdrop.dropout(a["v"], 0.4, rng=2, backend=fast_backend, out=a["v"])
        assert_bits_equal(np.ascontiguousarray(a["v"]), ref)
        assert (a["tag"] == 7).all()  # the neighbours are untouched


def test_many_tiles_and_ragged_rows(fast_backend):
    # Several kernel tiles, rows that straddle tiles, and a mask whose last byte is partial.
    for shape in [(3 * 4096 + 5,), (1001, 13), (7, 3, 1999)]:
        for layout in ("C", "F", "sliced"):
            x = fastdrop.testing.make_array(shape, np.float32, layout)
            kw = dict(rng=99, offset=2**64 - 3, return_mask=True)
            ref = fastdrop.dropout(x, 0.3, backend="numpy", **kw)
            got = fastdrop.dropout(x, 0.3, backend=fast_backend, **kw)
            assert_bits_equal(got[0], ref[0])
            assert_bits_equal(got[1], ref[1])


@given(x=awkward_arrays(max_dims=3), p=rates, seed=seeds)
def test_in_place_matches(fast_backend, x, p, seed):
    ref = fastdrop.dropout(x, p, rng=seed, backend="numpy")
    x = np.array(x, dtype=x.dtype.newbyteorder("="), order="K")
    y = fastdrop.dropout(x, p, rng=seed, backend=fast_backend, out=x)
    assert y is x
    assert_bits_equal(x, ref)


@given(
    x=awkward_arrays(max_dims=4),
    out_layout=st.sampled_from(["sliced", "transposed", "strided", "F"]),
    p=rates,
    seed=seeds,
    offset=offsets,
)
def test_into_awkward_out(fast_backend, x, out_layout, p, seed, offset):
    # An out= whose axes do not collapse is filled block by block, masks included.
    native = x.dtype.newbyteorder("=")
    kw = dict(rng=seed, offset=offset, return_mask=True)
    ref_y, ref_mask = fastdrop.dropout(x, p, backend="numpy", **kw)
    out = fastdrop.testing.make_array(x.shape, native.type, out_layout)
    y, mask = fastdrop.dropout(x, p, backend=fast_backend, out=out, **kw)
    assert y is out
    assert_bits_equal(y, ref_y)
    assert_bits_equal(mask, ref_mask)
    back = fastdrop.testing.make_array(x.shape, native.type, out_layout)
    fastdrop.dropout_backward(x, p, mask=mask, backend=fast_backend, out=back)
    assert_bits_equal(back, fastdrop.dropout_backward(x, p, mask=mask, backend="numpy"))


@pytest.mark.parametrize("backend", fastdrop.available_backends())
def test_zero_dimensional_arrays_are_written(backend):
    """A 0-d result is written through a 0-d view, not into a temporary scalar."""
    x = np.array(3.0, np.float32)
    classic = fastdrop.dropout(x, 0.5, training=False, scaling="classic", backend=backend)
    assert classic.shape == () and classic == np.float32(1.5)
    assert fastdrop.gaussian_dropout_backward(x, 0.0, rng=0, backend=backend) == x
    assert fastdrop.alpha_dropout(x, 0.0, rng=0, backend=backend) == x


# Calls that reach every rounding case of a 16-bit float: exact scaling (p = 0.5), an
# inexact scale and shift (alpha), products by float32 factors (Gaussian), a scale of
# 0.5 * (1 + 2**-8), whose products of values with 8 significant bits lie halfway between
# two bfloat16 values (classic eval), sums of two values (dropout_add), and the backward.
SIXTEEN_BIT_CALLS = {
    "dropout": lambda x, b: fastdrop.dropout(x, 0.5, rng=3, offset=5, backend=b),
    "alpha_dropout": lambda x, b: fastdrop.alpha_dropout(x, 0.1, rng=3, offset=5, backend=b),
    "gaussian_dropout": lambda x, b: fastdrop.gaussian_dropout(x, 0.3, rng=3, backend=b),
    "classic eval": lambda x, b: fastdrop.dropout(
        x, 0.5 - 2**-9, training=False, scaling="classic", backend=b
    ),
    "dropout_add": lambda x, b: fastdrop.dropout_add(
        x, x[::-1], 0.2, bias=np.ones(1, x.dtype), rng=3, backend=b
    ),
    "dropout_backward": lambda x, b: fastdrop.dropout_backward(x, 0.7, rng=3, backend=b),
}


@pytest.mark.parametrize("dtype", HALVES, ids=str)
@pytest.mark.parametrize("name", SIXTEEN_BIT_CALLS)
def test_every_16_bit_pattern(fast_backend, dtype, name):
    """Every float16 and bfloat16 value (NaNs, infinities and subnormals too), kept or
    dropped, gives the reference's bits: for bfloat16, ml_dtypes' rounding."""
    x = np.arange(2**16 + 5, dtype=np.uint64).astype(np.uint16).view(dtype)
    got, expected = (SIXTEEN_BIT_CALLS[name](x, b) for b in (fast_backend, "numpy"))
    assert got.dtype == x.dtype
    assert_bits_equal(got, expected, nan_payloads=name != "dropout_add")  # NaN + NaN: either


@pytest.mark.skipif(not BFLOAT16, reason="ml_dtypes is not installed")
@pytest.mark.skipif("numba" not in fastdrop.available_backends(), reason="numba unavailable")
def test_numba_rounds_float32_to_bfloat16_as_ml_dtypes():
    """Numba's float32 -> bfloat16, on every high half of a float32 with the low halves
    around each rounding edge: ties, one either side of them, and the extremes."""
    from numba import njit

    from fastdrop._numba.jit import _b2f, _f2b

    @njit
    def narrow(f, out):
        for k in range(f.size):
            out[k] = _f2b(f[k])

    @njit
    def widen(b, out):
        for k in range(b.size):
            out[k] = _b2f(b[k])

    high = np.arange(2**16, dtype=np.uint32) << np.uint32(16)
    low = np.array([0, 1, 0x7FFF, 0x8000, 0x8001, 0xFFFF, 0x1234], np.uint32)
    f = (high[:, None] | low[None, :]).ravel().view(np.float32)
    out = np.empty(f.size, np.int16)
    narrow(f, out)
    with np.errstate(invalid="ignore"):
        expected = f.astype(BFLOAT16[0]).view(np.int16)
    np.testing.assert_array_equal(out, expected)
    bits = np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(np.int16)
    wide = np.empty(bits.size, np.float32)
    widen(bits, wide)
    np.testing.assert_array_equal(
        wide.view(np.uint32), bits.view(BFLOAT16[0]).astype(np.float32).view(np.uint32)
    )
