"""``fastdrop tune`` and the dispatch table auto follows: how the table is measured (on a
fake clock), stored, read back, ignored when stale or broken, and obeyed. No wall-clock
time is asserted on here."""

from __future__ import annotations

import functools
import json
import math
import os
import pathlib
import platform
import subprocess
import sys
import warnings

import numpy as np
import pytest
from test_bench_method import FakeClock

import fastdrop
from fastdrop._engine import backends as _backends
from fastdrop._engine import tuning
from fastdrop._tools import bench, tune
from fastdrop._tools.cli import main

US = 1e-6
SIZES = (64, 1024, 1 << 16, 1 << 18)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> pathlib.Path:
    """An empty cache directory of the test's own, read afresh at the next auto call."""
    monkeypatch.setenv("FASTDROP_CACHE_DIR", str(tmp_path / "cache"))
    _backends.retune()
    yield tmp_path / "cache"
    _backends.retune()


def _install(rules: tuning.Rules) -> None:
    tuning.write(rules)
    _backends.retune()


@pytest.fixture
def spied(monkeypatch) -> list[str]:
    """The backends whose kernels run, call by call: every kernel entry of every backend
    records its backend's name (Cython's whole-call ``common`` among them)."""
    calls: list[str] = []
    for name in _backends.NAMES:
        kernels = _backends.load(name)
        for entry in ("forward", "common", "gaussian", "mask", "backward", "add", "scale"):
            if hasattr(kernels, entry):
                f = getattr(kernels, entry)
                spy = lambda *a, n=name, f=f: calls.append(n) or f(*a)  # noqa: E731
                monkeypatch.setattr(kernels, entry, spy)
    return calls


# -- where the table lives -------------------------------------------------------------


def test_the_cache_dir_follows_the_platform(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("FASTDROP_CACHE_DIR", str(tmp_path / "own"))
    assert tuning.cache_dir() == tmp_path / "own"
    monkeypatch.delenv("FASTDROP_CACHE_DIR")
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert tuning.cache_dir() == tmp_path / "xdg" / "fastdrop"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # not absolute: ignored, as the spec says
    assert tuning.cache_dir() == tmp_path / ".cache" / "fastdrop"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert tuning.cache_dir() == tmp_path / "Library" / "Caches" / "fastdrop"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "Local"))
    assert tuning.cache_dir() == tmp_path / "Local" / "fastdrop" / "Cache"
    assert tuning.path() == tmp_path / "Local" / "fastdrop" / "Cache" / "dispatch.json"


def test_the_suite_never_reads_or_writes_the_users_cache():
    assert "FASTDROP_CACHE_DIR" in os.environ
    assert not list(pathlib.Path(os.environ["FASTDROP_CACHE_DIR"]).iterdir())


def test_the_key_names_the_cpu_and_the_versions():
    key = tuning.machine_key()
    assert key["fastdrop"] == fastdrop.__version__
    assert key["numpy"] == np.__version__
    assert key["python"] == platform.python_version()
    assert key["cpu"] and len(key["flags"]) == 16
    assert "numba" in key  # installed here; read from its metadata
    assert key == tuning.machine_key()


# -- measuring -------------------------------------------------------------------------


def _fake_rows(clock: FakeClock, us_per_call):
    """A row maker for :func:`tune.measure` whose calls take ``us_per_call(dtype, n,
    backend)`` microseconds on ``clock``."""
    return lambda dtype, n, names: {b: clock.row([us_per_call(dtype, n, b) * US]) for b in names}


def test_tune_picks_the_fastest_backend_of_each_case_on_a_fake_clock(capsys):
    def us(dtype, n, backend):
        if dtype == "float32":  # Numba twice as fast from 2**16 on
            return n * (1.0 if backend == "numba" and n >= 1 << 16 else 2.0) / 1000
        if dtype == "float16":  # Numba 1% faster: a tie, which Cython keeps
            return n * (0.99 if backend == "numba" else 1.0) / 1000
        # float64: Numba faster only at 1024 elements
        return n * (0.5 if backend == "numba" and n == 1024 else 1.0) / 1000

    clock = FakeClock()
    dtypes = ("float16", "float32", "float64")
    rows = _fake_rows(clock, us)
    seconds = tune.measure(SIZES, dtypes, 0, ("cython", "numba"), rows=rows, clock=clock)
    assert seconds["float32"][1 << 16] == pytest.approx(
        {"cython": 131.072 * US, "numba": 65.536 * US}
    )
    assert tune.rules(seconds) == {
        "float16": [(0, "cython")],
        "float32": [(0, "cython"), (math.isqrt(1024 << 16), "numba")],  # 8192
        "float64": [(0, "cython"), (math.isqrt(64 * 1024), "numba"), (8192, "cython")],
    }
    assert "done" in capsys.readouterr().err  # the progress bar


def test_a_backend_within_the_tie_of_the_fastest_loses_to_auto_s_first_choice():
    assert tune.choose({"cython": 1.019, "numba": 1.0}) == "cython"
    assert tune.choose({"cython": 1.03, "numba": 1.0}) == "numba"
    assert tune.choose({"numba": 1.0, "numpy": 0.9}) == "numpy"
    assert tune.choose({"numpy": 1.0}) == "numpy"


def test_tune_compares_the_compiled_backends_only():
    assert tune.candidates() == ["cython", "numba"]


def test_the_real_kernels_are_measured_on_a_tiny_grid():
    seconds = tune.measure((64, 2048), ("float16",), 0, tune.candidates())
    assert set(seconds["float16"]) == {64, 2048}
    assert all(t > 0 for row in seconds["float16"].values() for t in row.values())
    assert set(tune.rules(seconds)) == {"float16"}


# -- storing and reading ----------------------------------------------------------------


def test_the_table_round_trips_through_the_cache_dir(cache):
    rules = {"float32": [(0, "cython"), (8192, "numba")], "float64": [(0, "numpy")]}
    file = tuning.write(rules, threads=2, measured="today")
    assert file == cache / "dispatch.json" and list(cache.iterdir()) == [file]
    table = tuning.read(file)
    assert table["rules"] == rules and table["threads"] == 2
    assert table["key"] == tuning.machine_key() and not tuning.stale(table)
    compiled = tuning.in_force()
    f4 = np.dtype(np.float32)
    assert compiled[f4] == compiled[f4.newbyteorder()] == ((8192,), ("cython", "numba"))
    assert compiled[np.dtype(np.float64)] == ((), ("numpy",))
    assert tuning.clear() and not file.exists() and not tuning.clear()


def test_a_table_naming_only_auto_s_first_choice_is_no_lookup(cache):
    _install({"float32": [(0, "cython")], "float64": [(0, "cython"), (8192, "numba")]})
    assert set(tuning.in_force()) == {np.dtype("<f8"), np.dtype(">f8")}


def test_no_table_means_cython_for_every_dtype_and_size(cache):
    for dtype in ("float16", "float32", "float64"):
        for n in (0, 64, 1 << 20, 10**8):
            assert _backends.resolve("auto", np.dtype(dtype), n)[0] == "cython"


def _write_key(file: pathlib.Path, **changes: str) -> None:
    table = json.loads(file.read_text())
    table["key"].update(changes)
    file.write_text(json.dumps(table))


@pytest.mark.parametrize("field", ["cpu", "flags", "fastdrop", "numpy", "numba", "python"])
def test_a_stale_table_is_ignored_quietly(cache, field):
    tuning.write({"float64": [(0, "numpy")]})
    _write_key(tuning.path(), **{field: "other"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tuning.in_force() == {}
        assert _backends.resolve("auto", np.dtype(np.float64), 64)[0] == "cython"
    phrase, table = tune.describe()
    assert table is not None and "stale" in phrase and f"{field} 'other' there" in phrase


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"format": 1}',
        '{"format": 2, "key": {}, "rules": {}}',
        '{"format": 1, "key": {}, "rules": {"float32": [[0, "cuda"]]}}',
        '{"format": 1, "key": {}, "rules": {"float32": [[64, "numba"]]}}',
        '{"format": 1, "key": {}, "rules": {"float32": [[0, "numba"], [0, "cython"]]}}',
        '{"format": 1, "key": {}, "rules": {"float32": [[0, "numba"], [1.5, "cython"]]}}',
        '{"format": 1, "key": {}, "rules": {"int8": [[0, "numba"]]}}',
        '{"format": 1, "key": {}, "rules": {"float32": []}}',
        '{"format": 1, "key": {}, "rules": {"float32": [0, "numba"]}}',
        None,  # a directory where the file should be: unreadable
    ],
)
def test_a_corrupt_table_falls_back_to_the_default_with_one_warning(cache, content, spied):
    cache.mkdir()
    if content is None:
        (cache / "dispatch.json").mkdir()
    else:
        (cache / "dispatch.json").write_text(content)
    x = np.ones(64)
    with pytest.warns(RuntimeWarning, match="ignoring the dispatch table .*dispatch.json"):
        y = fastdrop.dropout(x, 0.5, rng=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # read once: no second warning
        fastdrop.dropout(x, 0.5, rng=1)
    np.testing.assert_array_equal(y, fastdrop.dropout(x, 0.5, rng=1, backend="numpy"))
    assert spied == ["cython", "cython", "numpy"]
    phrase, table = tune.describe()
    assert table is None and "is ignored" in phrase


def test_a_corrupt_table_under_warnings_as_errors_fails_one_call_only(cache):
    cache.mkdir()
    (cache / "dispatch.json").write_text("not json")
    x = np.ones(64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning, match="ignoring the dispatch table"):
            fastdrop.dropout(x, 0.5, rng=1)
        np.testing.assert_array_equal(
            fastdrop.dropout(x, 0.5, rng=1), fastdrop.dropout(x, 0.5, rng=1, backend="numpy")
        )


# -- dispatch ---------------------------------------------------------------------------


def test_auto_runs_the_backend_the_table_names(cache, spied):
    _install({"float64": [(0, "numpy"), (1000, "cython")], "float16": [(0, "numba")]})
    small, large = np.ones(64), np.ones(5000)
    fastdrop.dropout(small, 0.5, rng=1)  # the table's numpy: not Cython's whole-call path
    fastdrop.dropout(large, 0.5, rng=1)
    fastdrop.dropout(small.astype(">f8"), 0.5, rng=1)  # either byte order
    fastdrop.dropout(small.astype(np.float32), 0.5, rng=1)  # no rule: the default
    fastdrop.dropout(small.astype(np.float16), 0.5, rng=1)
    assert spied == ["numpy", "cython", "numpy", "cython", "numba"]
    spied.clear()
    # The other kernels go by the forward table's choice for the same dtype and size.
    fastdrop.gaussian_dropout(small, 0.5, rng=1)
    fastdrop.dropout_backward(small, 0.5, rng=1)
    fastdrop.dropout_add(small, small, p=0.5, rng=1)
    fastdrop.dropout(small, 0.5, rng=1, return_mask=True)
    fastdrop.dropout(small, 0.5, training=False, scaling="classic")
    fastdrop.gaussian_dropout(large, 0.5, rng=1)
    assert spied == ["numpy"] * 5 + ["cython"]
    spied.clear()
    # What is asked for by name still wins.
    fastdrop.dropout(small, 0.5, rng=1, backend="cython")
    with fastdrop.use_backend("numba"):
        fastdrop.dropout(small, 0.5, rng=1)
    fastdrop.set_backend("cython")
    try:
        fastdrop.dropout(small, 0.5, rng=1)
    finally:
        fastdrop.set_backend("auto")
    assert spied == ["cython", "numba", "cython"]


def test_the_results_do_not_depend_on_the_table(cache):
    x = np.linspace(-1, 1, 3000)
    expected = fastdrop.dropout(x, 0.3, rng=5, offset=7)
    _install({"float64": [(0, "numba"), (1000, "numpy"), (2000, "cython")]})
    for n in (500, 1500, 3000):
        np.testing.assert_array_equal(fastdrop.dropout(x[:n], 0.3, rng=5, offset=7), expected[:n])


def test_auto_falls_back_when_the_tabled_numba_breaks(cache, monkeypatch):
    _install({"float16": [(0, "numba")]})
    kernels = _backends.load("numba")

    def broken(*args):
        raise RuntimeError("simulated Numba compilation failure")

    monkeypatch.setattr(kernels, "forward", broken)
    x = np.ones(4096, np.float16)
    try:
        with pytest.warns(RuntimeWarning, match="numba backend failed"):
            y = fastdrop.dropout(x, 0.5, rng=1)
        np.testing.assert_array_equal(y, fastdrop.dropout(x, 0.5, rng=1, backend="numpy"))
        assert _backends.resolve("auto", x.dtype, x.size)[0] == "cython"
    finally:
        _backends._failed.pop("numba", None)
        _backends._loaded["numba"] = kernels


def test_dask_chunks_follow_the_table_by_their_own_size(cache, spied):
    da = pytest.importorskip("dask.array")
    fdask = pytest.importorskip("fastdrop.dask")
    _install({"float64": [(0, "numpy"), (1000, "cython")]})
    x = da.ones(1500, chunks=(1000, 500))  # chunks of 1000 and 500 elements
    y = fdask.dropout(x, 0.5, rng=1).compute(scheduler="synchronous")
    assert sorted(spied) == ["cython", "numpy"]
    np.testing.assert_array_equal(y, fastdrop.dropout(np.ones(1500), 0.5, rng=1, backend="numpy"))


def test_the_bench_compares_auto_with_the_backend_the_table_names(cache):
    _install({"float64": [(0, "numpy"), (1000, "cython")]})
    f8 = np.dtype(np.float64)
    assert bench.same_code("fastdrop auto", f8, 64) == "fastdrop numpy"
    assert bench.same_code("fastdrop auto", f8, 1000) == "fastdrop cython"


# -- the command -----------------------------------------------------------------------


def test_tune_show_and_clear(cache, capsys):
    assert main(["tune", "--show"]) == 0
    assert capsys.readouterr().out == (
        f"dispatch table: none at {cache / 'dispatch.json'}; auto runs its built-in order "
        "(cython, numba, numpy: the first that loads)\n"
    )
    assert main(["tune", "--sizes", "64", "2048", "--dtypes", "float32", "--budget", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["dtype", "size", "cython", "numba", "auto"]
    assert [line.split()[:2] for line in out[1:3]] == [["float32", "64"], ["float32", "2048"]]
    assert out[-1] == f"wrote {cache / 'dispatch.json'}"
    assert set(tuning.read(cache / "dispatch.json")["rules"]) == {"float32"}
    assert main(["tune", "--show"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0] == f"dispatch table: {cache / 'dispatch.json'}, in force"
    assert shown[1].endswith(
        f"{fastdrop.get_num_threads()} threads; fastdrop {fastdrop.__version__}"
        f", numpy {np.__version__}, numba {tuning.machine_key()['numba']}"
        f", python {tuning.machine_key()['python']}"
    )
    assert shown[2].split() == ["dtype", "from", "n", "backend"]
    assert shown[3].split()[:2] == ["float32", "0"]
    assert main(["tune", "--clear"]) == 0
    assert capsys.readouterr().out == f"removed {cache / 'dispatch.json'}\n"
    assert not (cache / "dispatch.json").exists()
    assert main(["tune", "--clear"]) == 0
    assert capsys.readouterr().out == f"no dispatch table at {cache / 'dispatch.json'}\n"


def test_tune_writes_a_table_that_the_next_call_follows(cache, capsys, monkeypatch, spied):
    # tune measures on a fake clock where NumPy's reference wins at every size
    clock = FakeClock()
    rows = _fake_rows(clock, lambda dtype, n, b: 1.0 if b == "numpy" else 2.0)
    monkeypatch.setattr(tune, "candidates", lambda: ["cython", "numpy"])
    monkeypatch.setattr(tune, "measure", functools.partial(tune.measure, rows=rows, clock=clock))
    fastdrop.dropout(np.ones(64), 0.5, rng=1)  # reads "no table" before tune runs
    assert main(["tune", "--budget", "0"]) == 0
    assert tuning.read(tuning.path())["rules"] == {
        d: [(0, "numpy")] for d in ("float16", "float32", "float64")
    }
    fastdrop.dropout(np.ones(64), 0.5, rng=1)
    assert spied == ["cython", "numpy"]


def test_show_and_clear_exclude_each_other(cache, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["tune", "--show", "--clear"])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_python_m_fastdrop_tune_show_and_the_report(cache):
    env = {**os.environ, "FASTDROP_CACHE_DIR": str(cache)}
    _install({"float64": [(0, "numpy")]})
    for argv, expected in (
        (["tune", "--show"], f"dispatch table: {cache / 'dispatch.json'}, in force"),
        (["--no-speed"], f"dispatch table        {cache / 'dispatch.json'}, in force"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "fastdrop", *argv], env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        assert expected in result.stdout.splitlines()
