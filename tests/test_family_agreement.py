"""The dropout family agrees bit for bit with the NumPy reference on every backend."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from strategies import awkward_arrays, noise_shapes, offsets, rates, seeds
from test_agreement import assert_bits_equal

import fastdrop
import fastdrop.testing


def both(fn, fast_backend, *args, **kw):
    """``fn`` on the fast backend and on the reference."""
    return fn(*args, backend=fast_backend, **kw), fn(*args, backend="numpy", **kw)


def assert_same(got, expected) -> None:
    if isinstance(expected, tuple):
        for a, b in zip(got, expected, strict=True):
            assert_same(a, b)
    elif expected is None:
        assert got is None
    else:
        assert_bits_equal(got, expected)


@given(
    data=st.data(),
    x=awkward_arrays(),
    p=rates,
    seed=seeds,
    offset=offsets,
    samples=st.one_of(st.none(), st.integers(0, 3)),
    scaling=st.sampled_from(["inverted", "classic"]),
)
def test_dropout_noise_shape_and_samples(fast_backend, data, x, p, seed, offset, samples, scaling):
    noise = data.draw(noise_shapes(x.shape))
    kw = dict(
        rng=seed,
        offset=offset,
        noise_shape=noise,
        samples=samples,
        scaling=scaling,
        return_mask=True,
    )
    assert_same(*both(fastdrop.dropout, fast_backend, x, p, **kw))


@given(data=st.data(), x=awkward_arrays(), p=rates, seed=seeds, offset=offsets)
def test_backward_with_noise_shape(fast_backend, data, x, p, seed, offset):
    noise = data.draw(noise_shapes(x.shape))
    _, mask = fastdrop.dropout(
        x, p, rng=seed, offset=offset, noise_shape=noise, return_mask=True, backend="numpy"
    )
    kw = dict(noise_shape=noise)
    assert_same(*both(fastdrop.dropout_backward, fast_backend, x, p, mask=mask, **kw))
    assert_same(*both(fastdrop.dropout_backward, fast_backend, x, p, rng=seed, offset=offset, **kw))
    for packed in (True, False):
        assert_same(
            *both(
                fastdrop.bernoulli_mask,
                fast_backend,
                x.shape,
                p,
                rng=seed,
                offset=offset,
                noise_shape=noise,
                packed=packed,
            )
        )


@given(data=st.data(), x=awkward_arrays(), p=rates, seed=seeds, offset=offsets)
def test_alpha_dropout(fast_backend, data, x, p, seed, offset):
    noise = data.draw(st.one_of(st.none(), noise_shapes(x.shape)))
    kw = dict(rng=seed, offset=offset, noise_shape=noise)
    fast, ref = both(fastdrop.alpha_dropout, fast_backend, x, p, return_mask=True, **kw)
    assert_same(fast, ref)
    assert_same(*both(fastdrop.alpha_dropout_backward, fast_backend, x, p, **kw))
    assert_same(
        *both(fastdrop.alpha_dropout_backward, fast_backend, x, p, mask=ref[1], noise_shape=noise)
    )


@given(
    x=awkward_arrays(),
    p=st.one_of(st.floats(0, 0.999), st.sampled_from([0.5, 1e-9])),
    seed=seeds,
    offset=offsets,
)
def test_gaussian_dropout(fast_backend, x, p, seed, offset):
    kw = dict(rng=seed, offset=offset)
    assert_same(*both(fastdrop.gaussian_dropout, fast_backend, x, p, **kw))
    assert_same(*both(fastdrop.gaussian_dropout_backward, fast_backend, x, p, **kw))


@given(
    data=st.data(),
    x=awkward_arrays(),
    p=rates,
    seed=seeds,
    offset=offsets,
    training=st.booleans(),
    scaling=st.sampled_from(["inverted", "classic"]),
)
def test_dropout_add(fast_backend, data, x, p, seed, offset, training, scaling):
    native = x.dtype.newbyteorder("=")
    residual = fastdrop.testing.make_array(
        x.shape, native.type, data.draw(st.sampled_from(fastdrop.testing.LAYOUTS)), seed=5
    )
    bias_shape = data.draw(st.sampled_from([None, x.shape[-1:], x.shape, (1,) * x.ndim]))
    bias = None if bias_shape is None else fastdrop.testing.make_array(bias_shape, native.type)
    kw = dict(
        bias=bias, rng=seed, offset=offset, training=training, scaling=scaling, return_mask=True
    )
    (y, mask), (ref_y, ref_mask) = both(fastdrop.dropout_add, fast_backend, x, residual, p, **kw)
    assert_bits_equal(y, ref_y, nan_payloads=False)  # NaN residual + NaN product: either NaN
    assert_bits_equal(mask, ref_mask)
    back = dict(bias=bias, rng=seed, offset=offset, scaling=scaling)
    assert_same(*both(fastdrop.dropout_add_backward, fast_backend, x, p, **back))


@given(x=awkward_arrays(max_dims=3), p=rates, seed=seeds, into=st.sampled_from(["x", "residual"]))
def test_dropout_add_in_place(fast_backend, x, p, seed, into):
    x = np.array(x, dtype=x.dtype.newbyteorder("="))
    residual = fastdrop.testing.make_array(x.shape, x.dtype.type, "F", seed=3)
    expected = fastdrop.dropout_add(x, residual, p, rng=seed, backend="numpy")
    target = x if into == "x" else residual
    got = fastdrop.dropout_add(x, residual, p, rng=seed, backend=fast_backend, out=target)
    assert got is target
    assert_bits_equal(target, expected, nan_payloads=False)


@given(
    x=awkward_arrays(max_dims=3),
    p=rates,
    seed=seeds,
    samples=st.integers(1, 3),
    layout=st.sampled_from(["sliced", "transposed", "F"]),
)
def test_samples_into_awkward_out(fast_backend, x, p, seed, samples, layout):
    native = x.dtype.newbyteorder("=")
    out = fastdrop.testing.make_array((samples, *x.shape), native.type, layout)
    kw = dict(rng=seed, samples=samples, return_mask=True)
    y, mask = fastdrop.dropout(x, p, backend=fast_backend, out=out, **kw)
    assert y is out
    assert_same((y, mask), fastdrop.dropout(x, p, backend="numpy", **kw))
