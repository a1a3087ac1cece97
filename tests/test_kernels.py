"""Each compiled backend's kernels against the reference's, called directly.

The kernels see what the public layer hands them: native-order 2-D views with any
strides, inputs that broadcast with zero strides, outputs that alias an input, and
scalars anywhere in their ranges. These tests pin the kernel contract itself, so that a
kernel bug shows up here before it shows up through the public functions.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import U64, offsets, seeds
from test_agreement import assert_bits_equal

import fastdrop._numpy as ref
from fastdrop._engine import backends as _backends
from fastdrop.testing import DTYPES, make_array

LAYOUTS_2D = ("C", "F", "strided", "reversed", "sliced", "transposed")
NO_BITS = np.empty((0, 0), np.uint8)  # forward: no mask wanted
NO_BITS_1D = np.empty(0, np.uint8)  # add: no mask wanted
thresholds = st.one_of(st.sampled_from([0, 1, 2**31, 2**32 - 1, 2**32]), st.integers(0, 2**32))
reals = st.one_of(st.sampled_from([0.0, -0.0, 1.0, 2.0, 1e-3]), st.floats(-1e3, 1e3))


@pytest.fixture(scope="session")
def kernels(fast_backend):
    return _backends.load(fast_backend)


@st.composite
def views(draw, max_side: int = 40):
    """``(x, make)``: an awkward native 2-D array, and a maker of more of its shape."""
    shape = (draw(st.integers(1, max_side)), draw(st.integers(1, max_side)))
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**32 - 1))

    def make(tag: int = 0, zeros: bool = False):
        a = make_array(shape, dtype, draw(st.sampled_from(LAYOUTS_2D)), seed=seed + tag)
        if zeros:
            a[...] = 0
        return a

    return make(), make


@st.composite
def broadcast(draw, shape, dtype):
    """An array of ``shape``: a zero-stride broadcast of a row, a column or a scalar, or full."""
    kind = draw(st.sampled_from(["row", "column", "scalar", "full"]))
    base_shape = {"row": (1, shape[1]), "column": (shape[0], 1), "scalar": (1, 1)}.get(kind, shape)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype == np.uint8:  # keep flags: any nonzero byte means kept
        base = rng.integers(0, 2, base_shape) * rng.integers(1, 256, base_shape)
    else:
        base = make_array(base_shape, dtype, seed=int(rng.integers(2**32)))
    return np.broadcast_to(base.astype(dtype), shape)


def same(a: np.ndarray, b: np.ndarray, *, nan_payloads: bool = True) -> None:
    assert_bits_equal(np.asarray(a), np.asarray(b), nan_payloads=nan_payloads)


@given(
    v=views(),
    k=st.integers(1, 3),
    seed=seeds,
    pos0=offsets,
    extra=st.integers(0, 50),
    sample_step=st.one_of(st.just(0), offsets),
    threshold=thresholds,
    scale=reals,
    shift=reals,
    fill=reals,
    with_bits=st.booleans(),
    n_threads=st.integers(1, 4),
)
def test_forward(
    kernels,
    v,
    k,
    seed,
    pos0,
    extra,
    sample_step,
    threshold,
    scale,
    shift,
    fill,
    with_bits,
    n_threads,
):
    x, make = v
    cols = x.shape[1]
    nb = (x.size + 7) // 8
    results = []
    for mod in (ref, kernels):
        y = np.stack([make(1 + s, zeros=True) for s in range(k)])[:, ::-1][:, ::-1]
        bits = np.zeros((k, nb), np.uint8) if with_bits else NO_BITS
        mod.forward(
            x,
            y,
            bits,
            seed,
            pos0,
            cols + extra,
            sample_step,
            threshold,
            scale,
            shift,
            fill,
            n_threads,
        )
        results.append((y, bits))
    same(results[1][0], results[0][0])
    same(results[1][1], results[0][1])


@given(v=views(), seed=seeds, pos0=offsets, threshold=thresholds, scale=reals)
def test_forward_in_place(kernels, v, seed, pos0, threshold, scale):
    x, _ = v
    expected = np.empty((1, *x.shape), x.dtype)
    ref.forward(x, expected, NO_BITS, seed, pos0, x.shape[1], 0, threshold, scale, -0.0, 0.0, 2)
    kernels.forward(x, x[None], NO_BITS, seed, pos0, x.shape[1], 0, threshold, scale, -0.0, 0.0, 2)
    same(x, expected[0])


@given(data=st.data(), v=views(), scale=reals, shift=reals, fill=reals, n_threads=st.integers(1, 4))
def test_apply(kernels, data, v, scale, shift, fill, n_threads):
    x, make = v
    keep = data.draw(broadcast(x.shape, np.uint8))
    expected, got = make(1, zeros=True), make(2, zeros=True)
    ref.apply(x, keep, expected, scale, shift, fill, n_threads)
    kernels.apply(x, keep, got, scale, shift, fill, n_threads)
    same(got, expected)


@given(data=st.data(), v=views(), scale=reals, n_threads=st.integers(1, 4))
def test_backward(kernels, data, v, scale, n_threads):
    g, make = v
    nb = (g.size + 7) // 8
    bits = np.array(data.draw(st.lists(st.integers(0, 255), min_size=nb, max_size=nb)), np.uint8)
    expected, got = make(1, zeros=True), make(2, zeros=True)
    ref.backward(g, expected, bits, scale, n_threads)
    kernels.backward(g, got, bits, scale, n_threads)
    same(got, expected)


@given(
    v=views(),
    seed=seeds,
    pos0=offsets,
    extra=st.integers(0, 50),
    sigma=st.one_of(st.sampled_from([0.0, 1.0, 1e6]), st.floats(0, 30)),
    n_threads=st.integers(1, 4),
)
def test_gaussian(kernels, v, seed, pos0, extra, sigma, n_threads):
    x, make = v
    expected, got = make(1, zeros=True), make(2, zeros=True)
    ref.gaussian(x, expected, seed, pos0, x.shape[1] + extra, sigma, n_threads)
    kernels.gaussian(x, got, seed, pos0, x.shape[1] + extra, sigma, n_threads)
    same(got, expected)


@given(
    data=st.data(),
    v=views(),
    seed=seeds,
    pos0=offsets,
    extra=st.integers(0, 50),
    threshold=thresholds,
    scale=reals,
    with_bits=st.booleans(),
    alias=st.sampled_from([None, "x", "residual"]),
    n_threads=st.integers(1, 4),
)
def test_add(kernels, data, v, seed, pos0, extra, threshold, scale, with_bits, alias, n_threads):
    x, make = v
    bias = data.draw(broadcast(x.shape, x.dtype))
    residual = make(3)
    nb = (x.size + 7) // 8
    results = []
    for mod in (ref, kernels):
        xs, rs = x.copy(order="K"), residual.copy(order="K")
        y = {"x": xs, "residual": rs}.get(alias, make(4, zeros=True))
        bits = np.zeros(nb, np.uint8) if with_bits else NO_BITS_1D
        mod.add(xs, bias, rs, y, bits, seed, pos0, x.shape[1] + extra, threshold, scale, n_threads)
        results.append((y, bits))
    # A NaN residual plus a NaN product: IEEE leaves open which NaN comes out.
    same(results[1][0], results[0][0], nan_payloads=False)
    same(results[1][1], results[0][1])


@pytest.mark.parametrize("n_threads", [1, 2, 3, 4])
def test_many_tiles(kernels, n_threads):
    # Rows that straddle 4096-element tiles, and more tiles than threads.
    for shape in [(1, 3 * 4096 + 5), (1001, 13), (3, 4099)]:
        for layout in ("C", "F", "sliced"):
            x = make_array(shape, np.float32, layout)
            nb = (x.size + 7) // 8
            out = {}
            for mod in (ref, kernels):
                y = np.empty((2, *shape), np.float32)
                bits = np.zeros((2, nb), np.uint8)
                mod.forward(
                    x, y, bits, 9, U64 - 5, shape[1] + 3, x.size, 2**30, 1.25, -0.0, 0.0, n_threads
                )
                g = np.empty(shape, np.float32)
                mod.gaussian(x, g, 9, U64 - 5, shape[1], 0.5, n_threads)
                s = np.empty(shape, np.float32)
                mod.add(x, x, x, s, bits[0], 9, 7, shape[1], 2**31, 2.0, n_threads)
                out[mod] = (y, bits, g, s)
            for a, b, exact in zip(out[kernels], out[ref], (True, True, True, False), strict=True):
                same(a, b, nan_payloads=exact)  # add's NaN + NaN: either NaN


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_runs_at_every_block_phase(kernels, dtype):
    # Runs that start at each position of a 4-position Philox block, whose length ends
    # them anywhere in a block, around vectors of 8 blocks and steps of 4 vectors (Numba)
    # and around tiles; a second sample a block phase on; masks packed from there. With
    # dropout's own shift and fill (-0.0, +0.0: Numba's masked multiply) and others.
    lengths = (1, 2, 3, 4, 5, 7, 31, 33, 63, 64, 65, 67, 127, 128, 129, 161, 260)
    for n in (*lengths, 4095, 4096, 4097, 2 * 4096 + 66):
        x = make_array((1, n), dtype, seed=n)
        for pos0, with_bits, (shift, fill) in itertools.product(
            (*range(8), U64 - 3), (False, True), ((0.25, -1.0), (-0.0, 0.0))
        ):
            out = []
            for mod in (ref, kernels):
                y = np.empty((2, 1, n), dtype)
                bits = np.zeros((2, (n + 7) // 8), np.uint8) if with_bits else NO_BITS
                mod.forward(x, y, bits, 3, pos0, n, n + 1, 2**31, 1.5, shift, fill, 1)
                out.append((y, bits))
            same(out[1][0], out[0][0])
            same(out[1][1], out[0][1])


# x86-64-v3 (AVX2) as LLVM names it: what Numba compiles for on a CPU without AVX-512.
AVX2_FEATURES = (
    "+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+cx16,+cx8,+f16c,+fma,+fxsr,+lzcnt,+mmx,+movbe,"
    "+popcnt,+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3,+xsave,-avx512f"
)
AVX2_CHILD = """
import numpy as np
import fastdrop._numpy as ref
from fastdrop._engine import backends
from fastdrop.testing import make_array
nb = backends.load("numba")
for dtype in (np.float32, np.float64):
    for n in (5, 33, 130, 4097):
        x = make_array((1, n), dtype, seed=n)
        for pos0, shift, fill, nbits in ((0, -0.0, 0.0, 0), (3, 0.25, -1.0, (n + 7) // 8)):
            out = []
            for mod in (ref, nb):
                y, bits = np.empty((1, 1, n), dtype), np.zeros((1, nbits), np.uint8)
                mod.forward(x, y, bits, 3, pos0, n, 0, 2**31, 1.5, shift, fill, 1)
                out.append((y.view(np.uint8), bits))
            assert all(np.array_equal(a, b) for a, b in zip(*out)), (dtype, n, pos0)
"""


def test_numba_forward_compiled_for_avx2(tmp_path):
    # Numba's forward is LLVM IR written for 512-bit vectors, which LLVM splits where
    # registers are narrower, and draws one vector a step without AVX-512: compiled for
    # AVX2 in a child process (its own cache), it gives the reference's bits.
    if "numba" not in _backends.available_backends():
        pytest.skip("numba unavailable")
    llvm = pytest.importorskip("llvmlite.binding")
    if not llvm.get_host_cpu_features().get("avx2"):
        pytest.skip("the CPU has no AVX2")
    env = {
        **os.environ,
        "NUMBA_CPU_NAME": "haswell",
        "NUMBA_CPU_FEATURES": AVX2_FEATURES,
        "NUMBA_CACHE_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-c", AVX2_CHILD], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_cython_kernels_refuse_arrays_they_would_read_or_write_past():
    # The Cython kernels take raw pointers: a wrong array must raise, not scribble.
    cy = _backends.load("cython")
    if cy is None:
        pytest.skip("cython unavailable")
    x = np.ones((4, 8), np.float32)
    out, bits = np.zeros_like(x), np.zeros(4, np.uint8)
    wrong = [
        (TypeError, (x.astype(np.int8), out.astype(np.int8), bits)),
        (TypeError, (x, out.astype(np.float64), bits)),
        (ValueError, (x, out[:, :4], bits)),
        (ValueError, (x, np.empty((4, 8, 1), np.float32), bits)),
        (ValueError, (x, np.broadcast_to(np.float32(0), x.shape), bits)),  # read-only
        (ValueError, (x, out, bits[:3])),
        (ValueError, (x, out, np.zeros(8, np.uint8)[::2])),
        (ValueError, (x, out, np.zeros(4, np.uint16))),
    ]
    for error, arrays in wrong:
        with pytest.raises(error):
            cy.backward(*arrays, 1.0, 1)
    with pytest.raises(ValueError, match="packed masks"):
        cy.forward(x, out[None], np.zeros((2, 4), np.uint8), 1, 0, 8, 32, 2**31, 2.0, -0.0, 0.0, 1)
    cy.backward(x, out, bits, 1.0, 1)
    assert not out.any()
