"""pytest-benchmark suite: every implementation in the shared table, side by side, and
the real pipelines (a NumPy MLP's training step, Monte Carlo inference) with and without
dropout.

The cases come from :mod:`fastdrop.testing` and the implementations from
:mod:`fastdrop._tools.peers`, as for the asv suite; each case is one benchmark group, so
its implementations are compared with each other and with the scale-copy bound.
pyproject.toml's ``--benchmark-disable`` makes a plain ``pytest`` run every benchmark
once, as a smoke test, and each fastdrop backend's output is then checked bit for bit
against the numpy backend's. To time them::

    FASTDROP_BENCH_FULL=1 pytest tests/test_benchmarks.py --benchmark-enable

Environment
-----------
FASTDROP_BENCH_FULL
    ``1`` adds the sizes of ``BENCH_SIZES`` above ``SMOKE_SIZE`` (up to 1e8 elements).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest

import fastdrop
from fastdrop._tools.peers import LAYER_ROWS, implementations, layer_rows
from fastdrop.testing import (
    BENCH_RATES,
    BENCH_SIZES,
    DTYPES,
    LAYER_SIZES,
    MLP,
    MLP_P,
    PIPELINES,
    REFERENCE_LIMIT,
    digits,
    make_array,
    pipelines,
)

FULL = os.environ.get("FASTDROP_BENCH_FULL") == "1"
# The largest size of the default smoke pass: the largest the numpy backend, the slow
# reference, is run at.
SMOKE_SIZE = REFERENCE_LIMIT
SIZES = BENCH_SIZES if FULL else tuple(size for size in BENCH_SIZES if size <= SMOKE_SIZE)
REFERENCE = "fastdrop numpy"
NAMES = tuple(implementations(make_array((1,), DTYPES[0]), BENCH_RATES[0]))
CASES = [(dtype, size, p) for dtype in DTYPES for size in SIZES for p in BENCH_RATES]


class Case(NamedTuple):
    """One input and drop rate, with every implementation ready to run on it.

    Attributes
    ----------
    group : str
        The benchmark group, which names the case.
    rows : dict
        ``implementations(x, p)``.
    expected : ndarray or None
        The numpy backend's output; None above ``SMOKE_SIZE``.
    """

    group: str
    rows: dict[str, Callable[[], object]]
    expected: np.ndarray | None


def _case_id(case: tuple[type, int, float]) -> str:
    dtype, size, p = case
    return f"{np.dtype(dtype).name} n={size} p={p}"


@pytest.fixture(scope="module", params=CASES, ids=_case_id)
def case(request: pytest.FixtureRequest) -> Case:
    """Module-scoped, so that pytest makes each input once, for all its implementations."""
    dtype, size, p = request.param
    rows = implementations(make_array((size,), dtype), p)
    expected = rows[REFERENCE]() if size <= SMOKE_SIZE else None
    return Case(_case_id(request.param), rows, expected)


# The NumPy idiom multiplies inf by 0, the NaN that fastdrop's dropped elements never are.
@pytest.mark.filterwarnings("ignore:invalid value encountered in multiply:RuntimeWarning")
@pytest.mark.parametrize("name", NAMES)
def test_implementation(benchmark, case: Case, name: str) -> None:
    if name.startswith(REFERENCE) and case.expected is None:  # its out= row too
        pytest.skip(f"the numpy backend is run up to {SMOKE_SIZE} elements only")
    benchmark.group = case.group
    result = benchmark(case.rows[name])
    if name.startswith("fastdrop ") and case.expected is not None:
        bits = np.dtype(f"u{result.itemsize}")
        np.testing.assert_array_equal(result.view(bits), case.expected.view(bits))


@pytest.fixture(scope="module")
def torch_layer_rows() -> dict[str, Callable[[], object]]:
    pytest.importorskip("torch")
    x = make_array((min(LAYER_SIZES),), np.float32)
    return layer_rows(x, BENCH_RATES[0], fastdrop.get_num_threads())


@pytest.mark.parametrize("name", LAYER_ROWS)
def test_torch_layer(benchmark, torch_layer_rows, name: str) -> None:
    # fastdrop.torch.Dropout and torch.nn.Dropout in one group: the forward pass gives a
    # tensor of x's shape, the forward and backward pass the gradient with respect to x.
    benchmark.group = f"torch layer n={min(LAYER_SIZES)}"
    result = benchmark(torch_layer_rows[name])
    grad = result[0] if isinstance(result, tuple) else result
    assert tuple(grad.shape) == (min(LAYER_SIZES),)


ASV_DIR = pathlib.Path(__file__).resolve().parent.parent / "asv_bench"


@pytest.mark.skipif(not (ASV_DIR / "asv.conf.json").exists(), reason="run from a checkout")
def test_asv_suite_runs_quick(tmp_path):
    # The CI smoke step for the asv suite: every benchmark once, on the installed fastdrop
    # (--python=same), inputs capped at 1000 elements, nothing timed or saved. HOME is a
    # temporary folder, so asv's machine file does not land in the user's.
    pytest.importorskip("asv")
    env = {**os.environ, "HOME": str(tmp_path), "FASTDROP_BENCH_MAX_SIZE": "1000"}
    asv = [sys.executable, "-m", "asv"]
    subprocess.run(
        [*asv, "machine", "--yes"], cwd=ASV_DIR, env=env, check=True, capture_output=True
    )
    result = subprocess.run(
        [*asv, "run", "--python=same", "--quick", "--dry-run", "--launch-method=forkserver"],
        cwd=ASV_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "failed" not in result.stdout
    assert "dropout.Dropout.time_dropout" in result.stdout


@pytest.fixture(scope="module")
def pipeline_rows() -> dict[str, Callable[[], object]]:
    return pipelines()


@pytest.mark.parametrize("name", PIPELINES)
def test_pipeline(benchmark, pipeline_rows, name: str) -> None:
    # Dropout between BLAS calls: each pipeline in a group with its no-dropout twin, so
    # that pytest-benchmark's table shows what dropout adds to a real step.
    benchmark.group = f"pipeline {PIPELINES[name]}"
    result = np.asarray(benchmark(pipeline_rows[name]))
    assert np.isfinite(result).all()


def test_the_pipelines_train_and_sample():
    # What the pipeline benchmarks time is real work: the MLP learns a batch (of the
    # digits, or of their random stand-in without scikit-learn) with and without dropout,
    # and Monte Carlo samples differ where dropout is on, not where off.
    images, labels = digits()
    for p in (None, MLP_P):
        mlp = MLP(p)
        losses = [mlp.step(images[:64], labels[:64]) for _ in range(40)]
        assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])
        preds = mlp.predict(images[:8], 4)
        assert preds.shape == (4, 8, 10)
        assert (p is None) == all(np.array_equal(preds[0], preds[s]) for s in range(4))
