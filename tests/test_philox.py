"""Philox4x32-10 against the Random123 known-answer vectors, on every backend."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import HALVES, offsets, seeds

import fastdrop
from fastdrop._engine import backends as _backends
from fastdrop.random import philox4x32
from fastdrop.testing import make_array

KAT_FILE = "philox4x32_10_kat.txt"


def _kat_path() -> pathlib.Path:
    here = pathlib.Path(__file__).resolve().parent
    for candidate in (here / "data" / KAT_FILE, here.parent.parent / "shared" / "data" / KAT_FILE):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(KAT_FILE)


def _vectors() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = [
        line.replace("->", " ").split()
        for line in _kat_path().read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    words = np.array([[int(w, 16) for w in row] for row in rows], np.uint32)
    return words[:, 0:4], words[:, 4:6], words[:, 6:10]


COUNTER, KEY, EXPECTED = _vectors()


def test_kat_file_is_complete():
    assert COUNTER.shape == (9, 4)


def test_kat_copy_matches_the_shared_design_data():
    # tests/data carries a copy, so that the package's tests run on their own; where the
    # project's shared design data sits beside the checkout, the two must agree.
    shared = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / KAT_FILE
    if not shared.exists():
        pytest.skip("no shared design data beside this checkout")
    assert _kat_path().read_text() == shared.read_text()


def test_public_philox_matches_known_answers():
    np.testing.assert_array_equal(philox4x32(COUNTER, KEY), EXPECTED)


@pytest.mark.parametrize("backend", _backends.NAMES)
def test_backend_philox_matches_known_answers(backend):
    kernels = _backends.load(backend)
    if kernels is None:
        pytest.skip(f"{backend} unavailable")
    np.testing.assert_array_equal(kernels.philox4x32(COUNTER, KEY), EXPECTED)


def test_public_philox_broadcasts_key():
    key = KEY[0]
    np.testing.assert_array_equal(
        philox4x32(COUNTER, key), np.stack([philox4x32(c, key) for c in COUNTER])
    )


def test_public_philox_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        philox4x32(np.zeros(3, np.uint32), np.zeros(2, np.uint32))
    with pytest.raises(TypeError):
        philox4x32(np.zeros(4), np.zeros(2, np.uint32))
    with pytest.raises(ValueError, match=r"2\*\*32"):
        philox4x32(np.full(4, 2**32), np.zeros(2, np.uint32))


# The stream maps position j to word j & 3 of counter (lo32(j >> 2), hi32(j >> 2), 0, 0),
# keyed by the seed. Three KAT rows have that form, so dropout itself is pinned to them.
@pytest.mark.parametrize("row", [0, 3, 4])
@pytest.mark.parametrize("backend", _backends.NAMES)
def test_mask_draws_are_the_known_answers(row, backend):
    if backend not in fastdrop.available_backends():
        pytest.skip(f"{backend} unavailable")
    c, k, words = COUNTER[row], KEY[row], EXPECTED[row]
    assert c[2] == c[3] == 0
    seed = int(k[0]) | int(k[1]) << 32
    offset = 4 * (int(c[0]) | int(c[1]) << 32)
    for p in (0.25, 0.5, 0.75):
        threshold = round(p * 2**32)
        expected = np.where(words >= threshold, 1 / (1 - p), 0.0)
        y = fastdrop.dropout(np.ones(4), p, rng=seed, offset=offset, backend=backend)
        np.testing.assert_array_equal(y, expected)


SIMD_LEVELS = ("portable", "avx2", "avx512")  # the Cython backend's, lowest first
# Offsets just before a multiple of 2**34 positions (2**32 blocks, where a block's high
# counter word changes) and of 2**64 (the wrap): the SIMD levels draw a step's first round
# from scalars unless the step crosses one.
CROSSINGS = st.builds(
    lambda k, back: (k * 2**34 - back) % 2**64, st.integers(1, 2**30), st.integers(0, 400)
)


def simd(level: str):
    """The Cython backend, switched to ``level``; skipped where the CPU lacks it (Cython
    would then run a lower level, which its own case tests)."""
    cy = _backends.load("cython")
    if cy.use_simd(level) != level:
        cy.use_simd()
        pytest.skip(f"this CPU lacks {level}: the Cython backend would run a lower level")
    return cy


@pytest.mark.skipif("cython" not in fastdrop.available_backends(), reason="cython unavailable")
@pytest.mark.parametrize("level", SIMD_LEVELS)
@given(
    seed=seeds,
    offset=st.one_of(offsets, CROSSINGS),
    n=st.integers(0, 3000),
    p=st.sampled_from([0.1, 0.5]),
)
def test_cython_simd_and_portable_words_agree(level, seed, offset, n, p):
    """The Cython backend draws words with AVX-512 or AVX2 intrinsics where it can, else in
    portable C: each level gives the reference's masks and normals, across the 2**64 wrap,
    across a change of a block's high counter word, and across the chunks of 288 blocks
    that fd_keep draws at a time, too."""
    cy = simd(level)
    x = np.ones(n)
    expected = (
        fastdrop.dropout(x, p, rng=seed, offset=offset, backend="numpy"),
        fastdrop.gaussian_dropout(x, p, rng=seed, offset=offset, backend="numpy"),
    )
    try:
        got = (
            fastdrop.dropout(x, p, rng=seed, offset=offset, backend="cython"),
            fastdrop.gaussian_dropout(x, p, rng=seed, offset=offset, backend="cython"),
        )
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b)
    finally:
        cy.use_simd()


@pytest.mark.skipif("cython" not in fastdrop.available_backends(), reason="cython unavailable")
@pytest.mark.parametrize("level", SIMD_LEVELS)
@pytest.mark.parametrize("dtype", HALVES, ids=str)
@pytest.mark.parametrize("func", [fastdrop.dropout, fastdrop.alpha_dropout])
@pytest.mark.parametrize("p", [0.1, 0.5])
def test_cython_simd_and_portable_16_bit_floats_agree(level, dtype, func, p):
    """The Cython backend converts float16 eight lanes at a time with F16C where it can,
    else one element at a time, and bfloat16 in the loops compiled for each instruction
    set: each level gives the reference's bits for every value of either (NaNs,
    infinities and subnormals too), kept or dropped, scaled or shifted."""
    cy = simd(level)
    x = np.arange(2**16 + 5, dtype=np.uint64).astype(np.uint16).view(dtype)
    expected = func(x, p, rng=3, offset=5, backend="numpy").view(np.uint16)
    try:
        got = func(x, p, rng=3, offset=5, backend="cython").view(np.uint16)
        np.testing.assert_array_equal(got, expected)
    finally:
        cy.use_simd()


def test_the_simd_levels_are_the_backends():
    if "cython" not in fastdrop.available_backends():
        pytest.skip("cython unavailable")
    assert _backends.load("cython").SIMD_LEVELS == SIMD_LEVELS


def _bits(result) -> list[np.ndarray]:
    """A result, or each array of a tuple of them, as its raw bytes."""
    arrays = result if isinstance(result, tuple) else (result,)
    return [np.ascontiguousarray(a).view(np.uint8) for a in arrays]


@pytest.mark.skipif("cython" not in fastdrop.available_backends(), reason="cython unavailable")
@pytest.mark.parametrize("level", SIMD_LEVELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(
    seed=seeds,
    offset=st.one_of(offsets, CROSSINGS),
    shape=st.tuples(st.integers(1, 40), st.integers(1, 300)),
    cut=st.tuples(st.integers(0, 5), st.integers(1, 3)),
    p=st.sampled_from([0.1, 0.5, 0.9]),
    samples=st.integers(1, 3),
)
def test_cython_fused_dropout_agrees(level, dtype, seed, offset, shape, cut, p, samples):
    """Where the CPU has AVX2 or AVX-512, the Cython backend draws, compares, selects and
    packs a contiguous run in the registers (``drop.h``): its first and last vectors
    reach past the run unless the run starts at a multiple of 4 and ends at a multiple of
    32 (16 with AVX2), and the packed bits of a run start anywhere in a byte when rows
    are cut. Each level gives the reference's values and masks for every sample, the
    shifted and filled values of alpha dropout, and the mask alone."""
    cy = simd(level)
    x = make_array(shape, dtype)[:, cut[0] :: cut[1]]
    calls = [
        lambda b: fastdrop.dropout(
            x, p, rng=seed, offset=offset, samples=samples, return_mask=True, backend=b
        ),
        lambda b: fastdrop.alpha_dropout(x, p, rng=seed, offset=offset, backend=b),
        lambda b: fastdrop.bernoulli_mask(x.shape, p, rng=seed, offset=offset, backend=b),
    ]
    try:
        for call in calls:
            for got, expected in zip(_bits(call("cython")), _bits(call("numpy")), strict=True):
                np.testing.assert_array_equal(got, expected)
    finally:
        cy.use_simd()
