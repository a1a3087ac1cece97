"""Every backend agrees bit for bit with the NumPy reference, the executable specification."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import awkward_arrays, offsets, rates, seeds

import fastdrop
import fastdrop.testing


def assert_bits_equal(a: np.ndarray, b: np.ndarray, *, nan_payloads: bool = True) -> None:
    """Same dtype, shape and bytes (NaN payloads included, unless ``nan_payloads=False``:
    then a NaN matches any NaN, for results that IEEE leaves to the operand order)."""
    assert a.dtype == b.dtype and a.shape == b.shape
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    if not nan_payloads and a.dtype.kind == "f":
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
