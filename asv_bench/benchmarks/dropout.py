"""Airspeed velocity benchmarks for fastdrop.

The cases (dtypes, sizes, rates) come from :mod:`fastdrop.testing`, so what is measured is
what is tested; the implementations, the scale-copy bound among them, come from
:mod:`fastdrop._tools.peers`, as for the other benchmarks.

``setup_cache`` makes each input once per run, with ``make_array``, and saves it; each
``setup`` loads it. That is faster than making it again for every case (seconds at 1e8
elements), and it keeps ``make_array``'s float64 temporaries out of the ``peakmem``
figures, which count setup too.

Every ``setup`` ends with one call of what its benchmarks time, so that neither Numba's
JIT compilation nor the first touch of a fresh output is measured.

Environment
-----------
FASTDROP_BENCH_MAX_SIZE
    The largest input, in elements; cases above it are skipped. The suite goes up to
    1e8 elements (800 MB per float64 array, minutes for the whole suite); a quick CI run
    caps it, and may add ``--launch-method=forkserver`` to save an interpreter start per
    case: ``FASTDROP_BENCH_MAX_SIZE=100000 asv run --python=same --quick``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from functools import partial

import numpy as np

import fastdrop
from fastdrop._engine.backends import NAMES
from fastdrop._tools.peers import LAYER_ROWS, implementations, layer_rows
from fastdrop._tools.timing import best_times
from fastdrop.testing import (
    BENCH_RATES,
    BENCH_SIZES,
    BOUND,
    DTYPES,
    LAYER_SIZES,
    PIPELINES,
    REFERENCE_LIMIT,
    make_array,
    pipelines,
)

BACKENDS = ("auto", *NAMES)
DTYPE_NAMES = tuple(np.dtype(d).name for d in DTYPES)
MAX_SIZE = int(os.environ.get("FASTDROP_BENCH_MAX_SIZE", max(BENCH_SIZES)))
# The drop rate of the cases not run at every rate in BENCH_RATES.
P = 0.5
SEED = 1
# track_ratio_to_scale_copy: the fewest elements one sample covers (a small input is called
# several times per sample, to rise above the timer's resolution).
RATIO_SAMPLE_SIZE = 1_000_000


def _input(cache_dir: str, dtype: str, size: int, backend: str = "auto") -> np.ndarray:
    """The input of a case, from the files that ``setup_cache`` wrote.

    Raises
    ------
    NotImplementedError
        Which asv reports as a skipped case: a size above ``FASTDROP_BENCH_MAX_SIZE``, the
        numpy backend above ``REFERENCE_LIMIT``, or a backend not available here.
    """
    if size > MAX_SIZE:
        raise NotImplementedError(f"{size} elements > FASTDROP_BENCH_MAX_SIZE={MAX_SIZE}")
    if backend == "numpy" and size > REFERENCE_LIMIT:
        raise NotImplementedError(f"the numpy backend is benchmarked up to {REFERENCE_LIMIT}")
    # Loads every backend, for all cases alike: peakmem counts the imports.
    if backend not in ("auto", *fastdrop.available_backends()):
        raise NotImplementedError(f"the {backend} backend is not available")
    # .npy files keep no ml_dtypes dtype: a bfloat16 input comes back as 2-byte voids.
    return np.load(_path(cache_dir, dtype, size)).view(dtype)


def _path(cache_dir: str, dtype: str | type, size: int) -> str:
    return os.path.join(cache_dir, f"{np.dtype(dtype).name}-{size}.npy")


def _best_ratio(fn: Callable[[], object], bound: Callable[[], object], size: int) -> float:
    """Best time of ``fn`` over best time of ``bound``, sampled alternately (3 rounds)."""
    times = best_times({"fn": fn, "bound": bound}, number=max(1, RATIO_SAMPLE_SIZE // size))
    return times["fn"] / times["bound"]


class _Inputs:
    """Base of the benchmark classes: ``setup_cache`` makes the inputs of every case.

    Its key is the method's source location, so asv runs it once for all the classes.
    """

    timeout = 300.0

    def setup_cache(self) -> str:
        """Save each input as ``<dtype>-<size>.npy`` in asv's cache directory, the working
        directory here, and return that directory."""
        cache_dir = os.getcwd()
        sizes = [size for size in BENCH_SIZES if size <= MAX_SIZE]
        for dtype, size in itertools.product(DTYPES, sizes):
            np.save(_path(cache_dir, dtype, size), make_array((size,), dtype))
        return cache_dir

    setup_cache.timeout = 600.0


class Dropout(_Inputs):
    """Forward dropout into a preallocated output, alone and relative to the bound."""

    params = (BACKENDS, DTYPE_NAMES, BENCH_SIZES, BENCH_RATES)
    param_names = ("backend", "dtype", "size", "p")

    def setup(self, cache_dir: str, backend: str, dtype: str, size: int, p: float) -> None:
        rows = implementations(_input(cache_dir, dtype, size, backend), p, peers=False)
        self.dropout = rows[f"fastdrop {backend} out="]
        self.bound = rows[BOUND]
        self.size = size
        self.dropout()

    def time_dropout(self, *params: object) -> None:
        self.dropout()

    def track_ratio_to_scale_copy(self, *params: object) -> float:
        """Dropout's time over the scale-copy bound's, timed side by side in one process:
        comparable across machines, unlike either time."""
        return _best_ratio(self.dropout, self.bound, self.size)

    track_ratio_to_scale_copy.unit = "ratio"


class ScaleCopy(_Inputs):
    """The bound: a parallel ``y = x * s``, the fastest that x can stream into y."""

    params = (DTYPE_NAMES, BENCH_SIZES)
    param_names = ("dtype", "size")

    def setup(self, cache_dir: str, dtype: str, size: int) -> None:
        self.bound = implementations(_input(cache_dir, dtype, size), P, peers=False)[BOUND]
        self.bound()

    def time_scale_copy(self, *params: object) -> None:
        self.bound()


class Backward(_Inputs):
    """The gradient, from the forward call's packed mask or by drawing the mask again."""

    params = (BACKENDS, DTYPE_NAMES, BENCH_SIZES)
    param_names = ("backend", "dtype", "size")

    def setup(self, cache_dir: str, backend: str, dtype: str, size: int) -> None:
        grad = _input(cache_dir, dtype, size, backend)
        _, mask = fastdrop.dropout(grad, P, rng=SEED, return_mask=True, backend=backend)
        backward = partial(
            fastdrop.dropout_backward, grad, P, out=np.empty_like(grad), backend=backend
        )
        self.from_mask = partial(backward, mask=mask)
        self.regenerate = partial(backward, rng=SEED)
        self.from_mask()
        self.regenerate()

    def time_backward_mask(self, *params: object) -> None:
        self.from_mask()

    def time_backward_regenerate(self, *params: object) -> None:
        self.regenerate()


class Memory(_Inputs):
    """Peak memory of ``dropout(x, p)``, output allocation included (and ``x`` itself)."""

    params = (BACKENDS, DTYPE_NAMES, BENCH_SIZES)
    param_names = ("backend", "dtype", "size")

    def setup(self, cache_dir: str, backend: str, dtype: str, size: int) -> None:
        x = _input(cache_dir, dtype, size, backend)
        self.dropout = partial(fastdrop.dropout, x, P, rng=SEED, backend=backend)
        self.dropout()

    def peakmem_dropout(self, *params: object) -> None:
        self.dropout()


class TorchLayer:
    """``fastdrop.torch.Dropout`` against ``torch.nn.Dropout`` on float32 tensors, forward
    and forward+backward, on fastdrop's threads both (``LAYER_ROWS``); skipped without
    PyTorch."""

    params = (LAYER_ROWS, LAYER_SIZES)
    param_names = ("row", "size")

    def setup(self, row: str, size: int) -> None:
        if size > MAX_SIZE:
            raise NotImplementedError(f"{size} elements > FASTDROP_BENCH_MAX_SIZE={MAX_SIZE}")
        rows = layer_rows(make_array((size,), np.float32), P, fastdrop.get_num_threads())
        if not rows:
            raise NotImplementedError("PyTorch is not installed")
        self.run = rows[row]
        self.run()

    def time_layer(self, row: str, size: int) -> None:
        self.run()


class Pipelines:
    """Dropout inside real pipelines, between BLAS matrix products: a NumPy MLP's training
    step and Monte Carlo dropout inference, with and without dropout
    (:func:`fastdrop.testing.pipelines`)."""

    params = (tuple(PIPELINES),)
    param_names = ("pipeline",)

    def setup(self, name: str) -> None:
        rows = pipelines()
        self.run = rows[name]
        self.plain = rows[PIPELINES[name]]
        self.run()

    def time_pipeline(self, name: str) -> None:
        self.run()

    def track_ratio_to_no_dropout(self, name: str) -> float:
        """The pipeline's time over the same pipeline's without dropout, timed side by side."""
        times = best_times({"run": self.run, "plain": self.plain}, 1.0, number=20)
        return times["run"] / times["plain"]

    track_ratio_to_no_dropout.unit = "ratio"
