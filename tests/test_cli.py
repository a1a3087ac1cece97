"""``python -m fastdrop`` and the ``fastdrop`` console script."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from fastdrop import __version__
from fastdrop._tools.cli import main


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
    serial = r"calls under \d+ \(cython\), \d+ \(numba\) elements run on one"
    assert re.search(rf"threads +\d+ \(of \d+ cores; {serial}\)", out)
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


def test_bench_writes_files_only_when_asked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--sizes", "64", "--budget", "0"]) == 0
    assert "x bound" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


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
    assert all(r["spread"] >= 0 and isinstance(r["unstable"], bool) for r in data["records"])
    assert all(isinstance(r["case_flags"], list) for r in data["records"])
    assert data["meta"]["threads"] >= 1 and data["meta"]["cpu"]
    if plot:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_times_the_peers_in_a_process_of_their_own(tmp_path):
    # A stand-in for torch that records whether it was imported in a child process.
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text(
        "import multiprocessing, pathlib\n"
        "where = 'child' if multiprocessing.parent_process() else 'parent'\n"
        "pathlib.Path(__file__).with_name('imported_in').write_text(where)\n"
        "def set_num_threads(n): pass\n"
        "def from_numpy(a): return a\n"
        "class nn:\n"
        "    class functional:\n"
        "        def dropout(x, p, training): return x * 2\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    command = [sys.executable, "-m", "fastdrop", "bench", "--sizes", "1000", "--budget", "0"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    table = [line for line in result.stdout.splitlines() if line.startswith("float32")]
    rows = [line.split() for line in table if " torch " in line]
    assert len(rows) == 1 and rows[0][-1].endswith("*") and float(rows[0][4]) > 0
    assert (tmp_path / "torch" / "imported_in").read_text() == "child"


def test_console_script():
    script = shutil.which("fastdrop", path=str(pathlib.Path(sys.executable).parent))
    if script is None:
        pytest.skip("console script not on this interpreter's bin directory")
    assert "backend cython" in _run(script, "--no-speed")


def test_version():
    assert _run(sys.executable, "-m", "fastdrop", "--version") == f"fastdrop {__version__}\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sizes", "ten"], "argument --sizes: 'ten' is not a positive integer"),
        (["--sizes", "0"], "argument --sizes: '0' is not a positive integer"),
        (["--sizes", "1.5"], "argument --sizes: '1.5' is not a positive integer"),
        (["--threads", "-2"], "argument --threads: '-2' is not a positive integer"),
        (["bench", "--sizes", "-3"], "argument --sizes: '-3' is not a positive integer"),
        (["bench", "--rates", "1.5"], "argument --rates: '1.5' is not a rate in [0, 1]"),
        (["bench", "--rates", "-0.1"], "argument --rates: '-0.1' is not a rate in [0, 1]"),
        (["bench", "--rates", "nan"], "argument --rates: 'nan' is not a rate in [0, 1]"),
        (["bench", "--rates", "half"], "argument --rates: 'half' is not a rate in [0, 1]"),
        (["bench", "--dtypes", "float8"], "argument --dtypes: invalid choice: 'float8'"),
        (["bench", "--budget", "inf"], "argument --budget: 'inf' is not a number of seconds"),
        (["--family", "bench"], "argument --family: not allowed before the bench command"),
        (["--no-speed", "bench"], "argument --no-speed: not allowed before the bench command"),
        (["--sizes", "5", "--family", "bench"], "argument --sizes: not allowed before the bench"),
        (["bogus"], "argument COMMAND: invalid choice: 'bogus'"),
    ],
)
def test_bad_arguments_give_usage_and_one_error_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: fastdrop")
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], err


def test_bad_argument_exits_2_without_a_traceback():
    command = [sys.executable, "-m", "fastdrop", "bench", "--rates", "2"]
    result = subprocess.run(command, cwd=tempfile.gettempdir(), capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("fastdrop bench: error: argument --rates")


def test_no_speed_reads_versions_without_importing_the_peers(tmp_path):
    # Stand-ins for torch and jax: metadata that says 9.9.9, and a package that would
    # record its import.
    for name in ("torch", "jax"):
        info = tmp_path / f"{name}-9.9.9.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 9.9.9\n")
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("__version__ = 'imported'\n")
    code = (
        "import sys\n"
        "from fastdrop._tools.cli import main\n"
        "main(['--no-speed'])\n"
        "print('imported:', sorted({'torch', 'jax'} & set(sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"^torch +9\.9\.9$", result.stdout, flags=re.M)
    assert re.search(r"^jax +9\.9\.9$", result.stdout, flags=re.M)
    assert result.stdout.splitlines()[-1] == "imported: []"


def test_best_times_interleaves_and_counts_calls():
    from fastdrop._tools.timing import best_times

    order: list[str] = []
    names = ("a", "b", "c", "d")
    rows = {name: (lambda n=name: order.append(n)) for name in names}
    times = best_times(rows, number=2)
    assert set(times) == set(names) and all(t >= 0 for t in times.values())
    # one warm-up call each, then three rounds of two calls of each row in turn, each
    # round in its own order, so that no row always follows the same one
    warm_up, calls = order[:4], order[4:]
    assert warm_up == list(names) and len(calls) == 3 * 8
    rounds = [calls[8 * r : 8 * r + 8 : 2] for r in range(3)]
    assert calls[::2] == calls[1::2] and all(sorted(r) == list(names) for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1


def test_pipelines_table():
    from fastdrop._tools import cli
    from fastdrop.testing import PIPELINES

    assert cli.parser().parse_args(["--pipelines"]).pipelines
    rows = {line[:30].strip(): line.split() for line in cli.pipelines_table(0.0).splitlines()}
    for name, twin in PIPELINES.items():
        assert float(rows[name][-1]) > 0
        if name == twin:
            assert rows[name][-1] == "1.00"


def test_crossover_table():
    from fastdrop._tools import cli

    assert cli.parser().parse_args(["--crossover"]).crossover
    rows = [line.split() for line in cli.crossover_table(rounds=1).splitlines()[2:]]
    assert {row[0] for row in rows} == {"cython", "numba"}
    assert [int(row[1]) for row in rows if row[0] == "cython"] == [2**e for e in range(14, 22)]
    assert all(float(v) > 0 for row in rows for v in row[2:])
