"""Bad input raises a clear ValueError or TypeError and leaves the caller's arrays as they were."""

from __future__ import annotations

import numpy as np
import pytest
from strategies import UNBUFFERED

import fastdrop

BACKENDS = fastdrop.available_backends()


def _inputs():
    x = np.linspace(-1, 1, 24).reshape(4, 6)
    out = np.full_like(x, 7.0)
    return x, out


BAD_DROPOUT = [
    # (kwargs, exception, message fragment)
    (dict(p=-0.1), ValueError, "p must be in"),
    (dict(p=1.5), ValueError, "p must be in"),
    (dict(p=float("nan")), ValueError, "p must be in"),
    (dict(p="0.5"), TypeError, "p must be a real"),
    (dict(p=True), TypeError, "p must be a real"),
    (dict(rng=-1), ValueError, r"\[0, 2\*\*64\)"),
    (dict(rng=2**64), ValueError, r"\[0, 2\*\*64\)"),
    (dict(rng=1.5), TypeError, "rng"),
    (dict(rng="seed"), TypeError, "rng"),
    (dict(offset=-1), ValueError, "offset"),
    (dict(offset=2**64), ValueError, "offset"),
    (dict(offset=1.0), TypeError, "offset"),
    (dict(scaling="upscale"), ValueError, "scaling"),
    (dict(backend="fortran"), ValueError, "unknown backend"),
    (dict(backend=3), TypeError, "backend"),
    (dict(out=np.empty((4, 6), np.float32)), TypeError, "dtype"),
    (dict(out=np.empty((6, 4))), ValueError, "shape"),
    (dict(out=[0.0] * 24), TypeError, "out must be a numpy.ndarray"),
    (dict(noise_shape=4), TypeError, "noise_shape must be a tuple"),
    (dict(noise_shape=(4,)), ValueError, "one entry per axis"),
    (dict(noise_shape=(2, 6)), ValueError, "or be 1"),
    (dict(noise_shape=(4, 1.0)), TypeError, "integers or None"),
    (dict(samples=-1), ValueError, "samples"),
    (dict(samples=2.0), TypeError, "samples"),
    (dict(samples=2), ValueError, "shape"),  # out is (4, 6), the result (2, 4, 6)
    # Switches are bools: None, 0 or "no" is a TypeError, not a guess (None once meant eval).
    (dict(training=None), TypeError, "training must be a bool"),
    (dict(training=0), TypeError, "training must be a bool"),
    (dict(training="no"), TypeError, "training must be a bool"),
    (dict(return_mask=None), TypeError, "return_mask must be a bool"),
    (dict(return_mask=1), TypeError, "return_mask must be a bool"),
    # Integers are ints or NumPy integers, never bools or timedelta64 (a NumPy integer).
    (dict(offset=True), TypeError, "offset"),
    (dict(offset=np.timedelta64(3)), TypeError, "offset"),
    (dict(rng=np.timedelta64(3)), TypeError, "rng"),
    (dict(samples=True), TypeError, "samples"),
    (dict(noise_shape=(4, True)), TypeError, "integers or None"),
    (dict(scaling=None), TypeError, "scaling must be a string"),
    (dict(scaling=np.array(["inverted", "classic"])), TypeError, "scaling must be a string"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("kwargs", "exc", "match"), BAD_DROPOUT)
def test_dropout_rejects(backend, kwargs, exc, match):
    x, out = _inputs()
    kwargs = {"p": 0.5, "rng": 1, "out": out, "backend": backend, **kwargs}
    before = (x.copy(), out.copy())
    with pytest.raises(exc, match=match):
        fastdrop.dropout(x, **kwargs)
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(out, before[1])


def test_disjoint_out_in_the_same_buffer_is_fine():
    c = np.zeros((4, 4))
    c[:, :2] = 1.0
    y = fastdrop.dropout(c[:, :2], 0.5, rng=1, out=c[:, 2:])
    np.testing.assert_array_equal(y, fastdrop.dropout(np.ones((4, 2)), 0.5, rng=1))
    a = np.ones(10)
    fastdrop.dropout(a[::2], 0.5, rng=1, out=a[1::2])


def test_read_only_out():
    x, out = _inputs()
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        fastdrop.dropout(x, 0.5, rng=1, out=out)
    assert (out == 7.0).all()


def test_partially_overlapping_out():
    base = np.arange(48.0)
    x = base[:24].reshape(4, 6)
    before = base.copy()
    for out in (base[3:27].reshape(4, 6), x[::-1], x[:, ::-1]):
        with pytest.raises(ValueError, match="overlaps"):
            fastdrop.dropout(x, 0.5, rng=1, out=out)
        with pytest.raises(ValueError, match="overlaps"):
            fastdrop.dropout_backward(x, 0.5, rng=1, out=out)
    np.testing.assert_array_equal(base, before)


@pytest.mark.parametrize(
    "x", [np.arange(6), np.ones(3, bool), np.ones(3, complex), np.array([1.0, None]), ["a"]]
)
def test_non_float_input_is_a_type_error(x):
    with pytest.raises(TypeError, match="float16, bfloat16, float32 or float64"):
        fastdrop.dropout(x, 0.5, rng=1)
    with pytest.raises(TypeError, match="float16, bfloat16, float32 or float64"):
        fastdrop.dropout_backward(x, 0.5, rng=1)


@pytest.mark.parametrize("dtype", UNBUFFERED, ids=str)
@pytest.mark.parametrize("backend", BACKENDS)
def test_dtypes_without_a_buffer_are_a_type_error(dtype, backend):
    # float8 and datetimes once reached the C fast path's buffer request.
    x = np.zeros(16, dtype)
    for fn in (fastdrop.dropout, fastdrop.alpha_dropout, fastdrop.gaussian_dropout):
        with pytest.raises(TypeError, match="float16, bfloat16, float32 or float64"):
            fn(x, 0.5, rng=1, backend=backend)
    with pytest.raises(TypeError, match="float16, bfloat16, float32 or float64"):
        fastdrop.dropout_backward(x, 0.5, rng=1, backend=backend)


def test_long_double_is_a_type_error():
    with pytest.raises(TypeError):
        fastdrop.dropout(np.ones(3, np.longdouble), 0.5, rng=1)


def test_generator_is_not_consumed_by_a_failing_call():
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    with pytest.raises(ValueError):
        fastdrop.dropout(np.ones(3), 2.0, rng=rng)
    assert rng.bit_generator.state == state


def test_backward_rejects():
    g, out = _inputs()
    _, mask = fastdrop.dropout(g, 0.5, rng=1, return_mask=True)
    before = (g.copy(), out.copy(), mask.copy())
    cases = [
        (dict(), ValueError, "exactly one of mask= and rng="),
        (dict(mask=mask, rng=1), ValueError, "exactly one of mask= and rng="),
        (dict(mask=mask[:-1]), ValueError, "mask must have shape"),
        (dict(mask=np.zeros(4, np.uint8)), ValueError, "mask must have shape"),
        (dict(mask=mask.astype(np.int64)), TypeError, "mask must be the packed uint8"),
        (dict(mask=mask.astype(bool)), TypeError, "mask must be the packed uint8"),
        (dict(mask=mask, p=2.0), ValueError, "p must be in"),
        (dict(rng=1, offset=-5), ValueError, "offset"),
        (dict(mask=mask, out=out[:2]), ValueError, "shape"),
        (dict(mask=mask, scaling="x"), ValueError, "scaling"),
        (dict(mask=mask, offset=5), ValueError, "offset= belongs with rng="),
    ]
    for kwargs, exc, match in cases:
        kwargs = {"p": 0.5, "out": out, **kwargs}
        with pytest.raises(exc, match=match):
            fastdrop.dropout_backward(g, **kwargs)
    for array, original in zip((g, out, mask), before, strict=True):
        np.testing.assert_array_equal(array, original)


def test_bernoulli_mask_rejects():
    with pytest.raises(ValueError, match="negative"):
        fastdrop.bernoulli_mask((3, -1), 0.5, rng=1)
    with pytest.raises(TypeError, match="shape"):
        fastdrop.bernoulli_mask((3.0,), 0.5, rng=1)
    with pytest.raises(ValueError, match="p must be in"):
        fastdrop.bernoulli_mask(3, -0.5, rng=1)
    with pytest.raises(ValueError, match="offset"):
        fastdrop.bernoulli_mask(3, 0.5, rng=1, offset=2**64)


def test_thread_settings_reject():
    for bad in (0, -2):
        with pytest.raises(ValueError, match="positive"):
            fastdrop.set_num_threads(bad)
        with pytest.raises(ValueError, match="positive"), fastdrop.threads(bad):
            pass
    for bad in (1.5, "2", True):
        with pytest.raises(TypeError, match="positive"):
            fastdrop.set_num_threads(bad)


def test_backend_settings_reject():
    with pytest.raises(ValueError, match="unknown backend"):
        fastdrop.set_backend("gpu")
    with pytest.raises(ValueError, match="unknown backend"), fastdrop.use_backend("gpu"):
        pass
    assert fastdrop.get_backend() == "auto"


# The family: (function, positional args after x, kwargs, exception, message fragment).
BAD_FAMILY = [
    (fastdrop.spatial_dropout, (0.5,), {}, ValueError, "3 to 5 dimensions"),
    (fastdrop.spatial_dropout_backward, (0.5,), {"rng": 1}, ValueError, "dimensions"),
    (fastdrop.feature_alpha_dropout, (0.5,), {"channel_axis": 0}, ValueError, "batch axis"),
    (fastdrop.feature_alpha_dropout, (0.5,), {"channel_axis": 2}, ValueError, "out of range"),
    (fastdrop.feature_alpha_dropout, (0.5,), {"channel_axis": "1"}, TypeError, "integer"),
    (fastdrop.locked_dropout, (0.5,), {"time_axis": 5}, ValueError, "out of range"),
    (fastdrop.locked_dropout, (0.5,), {"noise_shape": (1, 1)}, TypeError, "noise_shape"),
    (fastdrop.alpha_dropout, (2.0,), {}, ValueError, "p must be in"),
    (fastdrop.alpha_dropout, (0.5,), {"noise_shape": (3, 6)}, ValueError, "or be 1"),
    (fastdrop.alpha_dropout_backward, (0.5,), {}, ValueError, "exactly one of"),
    (fastdrop.gaussian_dropout, (1.0,), {"rng": 1}, ValueError, "below 1"),
    (fastdrop.gaussian_dropout_backward, (0.5,), {"rng": None}, ValueError, "rng"),
    (fastdrop.gaussian_dropout_backward, (0.5,), {"rng": 1, "offset": -2}, ValueError, "offset"),
    (fastdrop.dropout_add, (np.ones((4, 5)), 0.5), {}, ValueError, "residual must have"),
    (fastdrop.dropout_add, (np.ones((4, 6), np.float32), 0.5), {}, TypeError, "residual must"),
    (fastdrop.dropout_add, (np.ones((4, 6)), 0.5), {"bias": np.ones(4)}, ValueError, "bias"),
    (fastdrop.dropout_add, (np.ones((4, 6)), 0.5), {"bias": np.ones(6, "f2")}, TypeError, "bias"),
    (fastdrop.dropout_add, (np.ones((4, 6)), 0.5), {"bias": [1j] * 6}, TypeError, "bias"),
    (fastdrop.dropout_add_backward, (0.5,), {"bias": np.ones(5), "rng": 1}, ValueError, "bias"),
    (fastdrop.drop_block, (0.5,), {"rng": 1}, ValueError, "4-d array"),
    (fastdrop.drop_block_backward, (0.5,), {"rng": 1}, ValueError, "4-d array"),
]


@pytest.mark.parametrize(
    ("fn", "args", "kwargs", "exc", "match"), BAD_FAMILY, ids=lambda v: getattr(v, "__name__", "")
)
def test_family_rejects(fn, args, kwargs, exc, match):
    x, _ = _inputs()
    before = x.copy()
    with pytest.raises(exc, match=match):
        fn(x, *args, **kwargs)
    np.testing.assert_array_equal(x, before)


def test_dropout_add_out_may_not_partially_overlap_the_residual():
    x = np.ones(8)
    buf = np.zeros(9)
    with pytest.raises(ValueError, match="overlaps"):
        fastdrop.dropout_add(x, buf[:8], 0.5, rng=1, out=buf[1:])
    assert (buf == 0).all()


def test_a_failing_variant_does_not_consume_the_generator():
    g = np.random.default_rng(3)
    state = g.bit_generator.state
    with pytest.raises(ValueError):
        fastdrop.alpha_dropout(np.ones(3), 0.5, rng=g, noise_shape=(2,))
    with pytest.raises(ValueError):
        fastdrop.dropout_add(np.ones(3), np.ones(4), 0.5, rng=g)
    assert g.bit_generator.state == state


@pytest.mark.parametrize("backend", BACKENDS)
def test_numpy_bools_are_bools(backend):
    x = np.linspace(-1, 1, 24).reshape(4, 6)
    assert fastdrop.dropout(x, 0.5, training=np.False_, backend=backend) is x
    y, mask = fastdrop.dropout(x, 0.5, rng=1, return_mask=np.True_, backend=backend)
    np.testing.assert_array_equal(mask, fastdrop.bernoulli_mask(x.shape, 0.5, rng=1))
    flags = fastdrop.bernoulli_mask(x.shape, 0.5, rng=1, packed=np.False_, backend=backend)
    np.testing.assert_array_equal(flags, y != 0)


def test_every_switch_rejects_a_non_bool():
    x = np.ones((2, 3, 4))
    calls = {
        "training": [
            lambda v: fastdrop.alpha_dropout(x, 0.5, rng=1, training=v),
            lambda v: fastdrop.gaussian_dropout(x, 0.5, rng=1, training=v),
            lambda v: fastdrop.dropout_add(x, x, 0.5, rng=1, training=v),
            lambda v: fastdrop.spatial_dropout(x, 0.5, rng=1, training=v),
            lambda v: fastdrop.Dropout(0.5).train(v),
        ],
        "return_mask": [
            lambda v: fastdrop.alpha_dropout(x, 0.5, rng=1, return_mask=v),
            lambda v: fastdrop.dropout_add(x, x, 0.5, rng=1, return_mask=v),
            lambda v: fastdrop.locked_dropout(x, 0.5, rng=1, return_mask=v),
        ],
        "packed": [lambda v: fastdrop.bernoulli_mask(4, 0.5, rng=1, packed=v)],
        "store_mask": [lambda v: fastdrop.Dropout(0.5, store_mask=v)],
    }
    for name, fns in calls.items():
        for fn in fns:
            for bad in (None, 0, 1, "yes", np.array(True), [True]):
                with pytest.raises(TypeError, match=f"{name} must be a bool"):
                    fn(bad)
    layer = fastdrop.Dropout(0.5, rng=1)
    with pytest.raises(TypeError, match="training must be a bool"):
        layer.training = None
    assert layer.eval().training is False and layer.train(np.True_).training is True


def test_integer_arguments_reject_bools():
    with pytest.raises(TypeError, match="shape"):
        fastdrop.bernoulli_mask((True, 3), 0.5, rng=1)
    with pytest.raises(TypeError, match="channel_axis"):
        fastdrop.spatial_dropout(np.ones((2, 3, 4)), 0.5, rng=1, channel_axis=True)
    with pytest.raises(TypeError, match="time_axis"):
        fastdrop.locked_dropout(np.ones((2, 3)), 0.5, rng=1, time_axis=np.timedelta64(0))
    with pytest.raises(TypeError, match="p must be a real"):
        fastdrop.dropout(np.ones(3), np.timedelta64(0), rng=1)
    assert fastdrop.bernoulli_mask((np.int8(3), np.uint64(2)), 0.5, rng=1).shape == (1,)


# -- ndarray subclasses and aliasing ---------------------------------------------------------


def _subclass_outs(shape):
    """Writeable arrays of ``shape`` (float64) that are not plain ndarrays."""
    return [np.asmatrix(np.zeros(shape)), np.ma.zeros(shape), np.zeros(shape).view(np.recarray)]


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@pytest.mark.parametrize("backend", BACKENDS)
def test_out_must_be_a_plain_ndarray(backend):
    # A matrix out once failed inside the kernels (a different error on each backend) after
    # a Generator had been drawn from; a masked out kept a mask that no longer fitted.
    x, _ = _inputs()
    calls = [
        lambda out, g: fastdrop.dropout(x, 0.5, rng=g, out=out, backend=backend),
        lambda out, g: fastdrop.dropout(x, 0.5, rng=g, out=out, training=False, backend=backend),
        lambda out, g: fastdrop.dropout_backward(x, 0.5, rng=g, out=out, backend=backend),
        lambda out, g: fastdrop.alpha_dropout(x, 0.5, rng=g, out=out, backend=backend),
        lambda out, g: fastdrop.gaussian_dropout(x, 0.5, rng=g, out=out, backend=backend),
        lambda out, g: fastdrop.dropout_add(x, x, 0.5, rng=g, out=out, backend=backend),
    ]
    for call in calls:
        for out in _subclass_outs(x.shape):
            g = np.random.default_rng(0)
            state = g.bit_generator.state
            with pytest.raises(TypeError, match=r"out must be a numpy\.ndarray, got .*subclass"):
                call(out, g)
            assert g.bit_generator.state == state
            assert (np.asarray(out) == 0).all()
        # The documented way to write into a subclass's memory: a plain view of it.
        out = np.asmatrix(np.zeros(x.shape))
        call(out.view(np.ndarray), 7)
        assert (np.asarray(out) == call(None, 7)).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_masked_inputs_are_a_type_error(backend):
    # Reading a masked array as its data would silently drop the mask.
    x = np.ma.masked_less(np.linspace(-1, 1, 8), 0)
    with pytest.raises(TypeError, match="x must not be a masked array"):
        fastdrop.dropout(x, 0.5, rng=1, backend=backend)
    with pytest.raises(TypeError, match="grad must not be a masked array"):
        fastdrop.dropout_backward(x, 0.5, rng=1, backend=backend)
    with pytest.raises(TypeError, match="residual must not be a masked array"):
        fastdrop.dropout_add(x.data, x, 0.5, rng=1, backend=backend)
    with pytest.raises(TypeError, match="bias must not be a masked array"):
        fastdrop.dropout_add(x.data, x.data, 0.5, bias=x, rng=1, backend=backend)
    _, mask = fastdrop.dropout(x.data, 0.5, rng=1, return_mask=True)
    with pytest.raises(TypeError, match="mask must not be a masked array"):
        fastdrop.dropout_backward(x.data, 0.5, mask=np.ma.masked_equal(mask, 0), backend=backend)
    layer = fastdrop.Dropout(0.5, rng=1)
    with pytest.raises(TypeError, match="x must not be a masked array"):
        layer(x)
    assert layer.offset == 0


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_other_subclass_inputs_are_read_as_their_data():
    x = np.linspace(-1, 1, 12).reshape(3, 4)
    y = fastdrop.dropout(np.asmatrix(x), 0.5, rng=1)
    assert type(y) is np.ndarray
    np.testing.assert_array_equal(y, fastdrop.dropout(x, 0.5, rng=1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_may_not_overwrite_the_mask_it_reads(backend):
    g = np.ones(64)
    _, mask = fastdrop.dropout(g, 0.5, rng=1, return_mask=True)
    buf = np.zeros(64)
    alias = buf.view(np.uint8)[:8]
    alias[:] = mask
    before = buf.copy()
    with pytest.raises(ValueError, match="overlaps"):
        fastdrop.dropout_backward(g, 0.5, mask=alias, out=buf, backend=backend)
    np.testing.assert_array_equal(buf, before)


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_whose_elements_overlap_is_a_value_error(backend):
    # Threads writing one element from several places would race: rejected up front.
    x = np.ones((4, 6))
    buf = np.zeros(64)
    for strides in ((0, 8), (8, 0), (8, 8), (16, 24)):
        out = np.lib.stride_tricks.as_strided(buf, (4, 6), strides, writeable=True)
        with pytest.raises(ValueError, match="overlap each other"):
            fastdrop.dropout(x, 0.5, rng=1, out=out, backend=backend)
    assert (buf == 0).all()
    # Strides made by hand that share no element (here, Fortran order) are fine.
    out = np.lib.stride_tricks.as_strided(buf, (4, 6), (8, 32), writeable=True)
    fastdrop.dropout(x, 0.5, rng=1, out=out, backend=backend)
    np.testing.assert_array_equal(out, fastdrop.dropout(x, 0.5, rng=1))


def test_backward_scaling_must_be_a_string_on_the_fast_path_too():
    g = np.ones(16, np.float32)
    for bad in (np.array("inverted"), np.array(["inverted", "classic"])):
        with pytest.raises(TypeError, match="scaling"):
            fastdrop.dropout_backward(g, 0.5, rng=1, scaling=bad)
