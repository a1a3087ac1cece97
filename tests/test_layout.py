"""Results keep the input's memory layout, and array-likes are read without a copy."""

from __future__ import annotations

import numpy as np
import pytest
from family_cases import FAMILY

import fastdrop
from fastdrop._engine import checks

BACKENDS = fastdrop.available_backends()


def _layouts():
    c = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    return {
        "fortran": np.asfortranarray(c),
        "channels_last": np.ascontiguousarray(c.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2),
        "reversed": c[:, ::-1, :, ::-1],
        "strided": np.asfortranarray(np.repeat(c, 2, axis=3))[..., ::2],
    }


LAYOUTS = _layouts()


def assert_laid_out_like(y: np.ndarray, x: np.ndarray) -> None:
    """y has the strides np.empty_like(x, order="K") would give it."""
    assert y.strides == np.empty_like(x, order="K").strides


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", FAMILY)
def test_results_keep_the_layout_and_the_values(name, layout, backend):
    forward, backward = FAMILY[name]
    x = LAYOUTS[layout]
    with fastdrop.use_backend(backend):
        for f in (forward, backward):
            y, expected = f(x), f(np.ascontiguousarray(x))
            assert_laid_out_like(y, x)
            np.testing.assert_array_equal(y, expected, strict=True)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_dropout_add_keeps_the_layout(layout):
    x = LAYOUTS[layout]
    y = fastdrop.dropout_add(x, x, 0.3, rng=2)
    assert_laid_out_like(y, x)
    c = np.ascontiguousarray(x)
    np.testing.assert_array_equal(y, fastdrop.dropout_add(c, c, 0.3, rng=2), strict=True)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_sample_keeps_the_layout(layout, training):
    x = LAYOUTS[layout].astype(np.float32)
    y = fastdrop.dropout(x, 0.3, rng=3, samples=3, training=training, scaling="classic")
    expected = fastdrop.dropout(
        np.ascontiguousarray(x), 0.3, rng=3, samples=3, training=training, scaling="classic"
    )
    np.testing.assert_array_equal(y, expected, strict=True)
    for s in range(3):
        assert_laid_out_like(y[s], x)
    assert y.strides[0] == x.nbytes  # the samples axis is outermost


class DLPackOnly:
    """An array-like that exports DLPack and nothing else."""

    def __init__(self, a: np.ndarray) -> None:
        self.a = a

    def __dlpack__(self, **kwargs):
        return self.a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.a.__dlpack_device__()


class ArrayOnly:
    """An array-like that has ``__array__`` and nothing else."""

    def __init__(self, a: np.ndarray) -> None:
        self.a = a

    def __array__(self, dtype=None, copy=None):
        return self.a


class Unreadable:
    """An array-like whose DLPack export fails (as a tensor on another device's does)."""

    def __dlpack__(self, **kwargs):
        raise BufferError("the data lives on a device NumPy cannot see")

    def __dlpack_device__(self):
        return (2, 0)


@pytest.mark.parametrize("wrap", [DLPackOnly, ArrayOnly])
def test_array_likes_are_read_in_place(wrap):
    a = LAYOUTS["channels_last"].astype(np.float32)
    assert np.shares_memory(checks.array(wrap(a), "x"), a)
    y = fastdrop.dropout(wrap(a), 0.4, rng=7, offset=3)
    assert type(y) is np.ndarray
    assert_laid_out_like(y, a)
    np.testing.assert_array_equal(y, fastdrop.dropout(a, 0.4, rng=7, offset=3), strict=True)
    g = fastdrop.dropout_backward(wrap(a), 0.4, rng=7, offset=3)
    np.testing.assert_array_equal(g, fastdrop.dropout_backward(a, 0.4, rng=7, offset=3))


def test_an_unreadable_array_like_is_a_type_error():
    with pytest.raises(TypeError, match="could not be read through DLPack: the data lives"):
        fastdrop.dropout(Unreadable(), 0.5, rng=1)


def test_torch_tensors_are_read_in_place():
    torch = pytest.importorskip("torch")
    t = torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last)
    assert np.shares_memory(checks.array(t, "x"), t.numpy())
    y = fastdrop.dropout(t, 0.5, rng=3)
    assert type(y) is np.ndarray
    assert y.strides == t.numpy().strides
    np.testing.assert_array_equal(y, fastdrop.dropout(t.numpy(), 0.5, rng=3), strict=True)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda torch: torch.ones(3, requires_grad=True), "requires grad"),
        (lambda torch: torch.ones(3, device="meta"), "meta"),
    ],
)
def test_tensors_numpy_cannot_read_are_type_errors(make, match):
    torch = pytest.importorskip("torch")
    t = make(torch)
    with pytest.raises(TypeError, match=match):
        fastdrop.dropout(t, 0.5, rng=1)
