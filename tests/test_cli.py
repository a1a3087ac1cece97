"""``python -m fastdrop`` and the ``fastdrop`` console script."""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import pytest


def _run(*command: str) -> str:
    result = subprocess.run(
        command, cwd=tempfile.gettempdir(), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_python_m_fastdrop_reports_and_times():
    out = _run(sys.executable, "-m", "fastdrop", "--sizes", "1000", "20000")
    for expected in (
        "fastdrop ",
        "numpy ",
        "numba ",
        "backend numba         available",
        "backend cython        available",
        "threads ",
        "scale-copy",
        "fastdrop auto",
        "fastdrop cython",
        "numpy idiom",
    ):
        assert expected in out
    assert re.search(r"threads +\d+ \(of \d+ cores; calls under \d+ elements run on one\)", out)
    rows = [
        line.split() for line in out.splitlines() if line.strip().startswith(("1000 ", "20000 "))
    ]
    assert {row[0] for row in rows} == {"1000", "20000"}
    assert all(float(row[-2]) > 0 for row in rows)  # ns per element
    assert [row[-1] for row in rows if row[1] == "scale-copy"] == ["1.00", "1.00"]


def test_family_speed_table():
    out = _run(sys.executable, "-m", "fastdrop", "--family", "--sizes", "5000")
    rows = {line.split()[1] for line in out.splitlines() if line.startswith("      4096 ")}
    for name in ("scale-copy", "dropout_add", "alpha_dropout", "spatial_dropout"):
        assert name in rows
    assert any(line.split()[-1] == "1.00" for line in out.splitlines() if "scale-copy " in line)


def test_thread_scaling_table():
    out = _run(sys.executable, "-m", "fastdrop", "--threads", "1", "2", "--sizes", "20000")
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("1 ", "2 "))]
    assert {(row[0], row[1]) for row in rows} >= {("1", "scale-copy"), ("2", "fastdrop")}
    assert all(row[-1] == "1.00" for row in rows if row[0] == "1")  # speed-up over itself


def test_bench_writes_a_table_json_and_a_plot(tmp_path):
    out_json = tmp_path / "bench.json"
    command = [sys.executable, "-m", "fastdrop", "bench", "--sizes", "1000", "5000"]
    command += ["--rates", "0.1", "0.5", "--budget", "0", "--json", str(out_json)]
    plot = tmp_path / "bench.png"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        plot = None
    out = _run(*command, *(["--plot", str(plot)] if plot else []))
    assert "GB/s" in out and "x bound" in out
    data = json.loads(out_json.read_text())
    cases = {(r["size"], r["p"]) for r in data["records"]}
    assert cases == {(1000, 0.1), (1000, 0.5), (5000, 0.1), (5000, 0.5)}
    names = {r["implementation"] for r in data["records"]}
    assert {"scale-copy", "fastdrop auto", "fastdrop cython", "numpy idiom"} <= names
    bound = [r for r in data["records"] if r["implementation"] == "scale-copy"]
    assert all(r["ratio_to_bound"] == 1.0 for r in bound)
    assert all(r["gb_per_s"] > 0 for r in data["records"])
    assert data["meta"]["threads"] >= 1
    if plot:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_console_script():
    script = shutil.which("fastdrop", path=str(pathlib.Path(sys.executable).parent))
    if script is None:
        pytest.skip("console script not on this interpreter's bin directory")
    assert "backend cython" in _run(script, "--no-speed")


def test_best_times_interleaves_and_counts_calls():
    from fastdrop.testing import best_times

    order: list[str] = []
    rows = {name: (lambda n=name: order.append(n)) for name in ("a", "b")}
    times = best_times(rows, number=2)
    assert set(times) == {"a", "b"} and all(t >= 0 for t in times.values())
    # one warm-up call each, then three rounds of two calls each, row after row, each
    # round starting one row later than the last
    warm_up, rounds = order[:2], [order[2:6], order[6:10], order[10:]]
    assert warm_up == ["a", "b"]
    assert rounds == [["a", "a", "b", "b"], ["b", "b", "a", "a"], ["a", "a", "b", "b"]]
