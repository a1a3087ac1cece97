"""Hypothesis strategies shared by the tests: awkward arrays, rates, seeds and offsets."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fastdrop.testing import DTYPES, LAYOUTS, make_array

U64 = 2**64


def _ml_dtypes(*names: str) -> list[np.dtype]:
    """ml_dtypes' dtypes of ``names`` where it is installed, else none."""
    try:
        import ml_dtypes
    except ImportError:
        return []
    return [np.dtype(getattr(ml_dtypes, name)) for name in names]


# Dtypes that NumPy exports no buffer of, and that fastdrop does not take: datetimes, and
# ml_dtypes' float8 where it is installed (each raises on a buffer request instead).
# ml_dtypes' bfloat16 has no buffer either; fastdrop takes it.
UNBUFFERED = [np.dtype("M8[s]"), np.dtype("m8[s]"), *_ml_dtypes("float8_e4m3fn")]
BFLOAT16 = _ml_dtypes("bfloat16")  # [] without ml_dtypes
HALVES = [np.dtype(np.float16), *BFLOAT16]  # the 16-bit floats: each has 65536 bit patterns


@st.composite
def awkward_arrays(draw, max_dims: int = 4, max_side: int = 9) -> np.ndarray:
    """Float arrays of every dtype, shape (0-d and empty included) and memory layout."""
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=max_side))
    dtype = draw(st.sampled_from(DTYPES))
    layout = draw(st.sampled_from(LAYOUTS))
    return make_array(shape, dtype, layout, seed=draw(st.integers(0, 2**32 - 1)))


# Uniform p, plus the edges and values whose threshold rounds.
rates = st.one_of(
    st.sampled_from([0.0, 1.0, 0.5, 0.1, 0.9, 2.0**-33, 1 - 2.0**-33, 1e-300]),
    st.floats(0.0, 1.0),
)
seeds = st.integers(0, U64 - 1)
# Uniform offsets, plus offsets near 2**64 where positions wrap.
offsets = st.one_of(st.integers(0, U64 - 1), st.integers(U64 - 64, U64 - 1), st.integers(0, 64))


@st.composite
def noise_shapes(draw, shape: tuple[int, ...]) -> tuple[int | None, ...]:
    """A Keras ``noise_shape`` for ``shape``: each axis kept, set to 1, or None (kept)."""
    return tuple(draw(st.sampled_from([d, 1, None])) for d in shape)


@st.composite
def feature_maps(draw, max_side: int = 9) -> tuple[np.ndarray, dict]:
    """A 4-d array of any dtype and layout (channels first or last, empty sides too), and
    DropBlock's keywords for it."""
    n, c = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    h, w = draw(st.integers(0, max_side)), draw(st.integers(0, max_side))
    channel_axis = draw(st.sampled_from([1, -1, 3]))
    shape = (n, c, h, w) if channel_axis == 1 else (n, h, w, c)
    dtype, layout = draw(st.sampled_from(DTYPES)), draw(st.sampled_from(LAYOUTS))
    x = make_array(shape, dtype, layout, seed=draw(st.integers(0, 2**16)))
    kw = dict(
        block_size=draw(st.integers(1, 11)),
        gamma_scale=draw(st.sampled_from([1.0, 0.5, 3.0])),
        batchwise=draw(st.booleans()),
        scale_by_keep=draw(st.booleans()),
        channel_axis=channel_axis,
    )
    return x, kw
