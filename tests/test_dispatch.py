"""Backend and thread selection, fallbacks, caching, GIL release, thread safety."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from strategies import BFLOAT16, UNBUFFERED, awkward_arrays, offsets, rates, seeds
from test_agreement import assert_bits_equal

import fastdrop
from fastdrop._engine import backends as _backends


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (so an abort fails a test, not the run).

    It runs outside the source tree, so that it imports the installed fastdrop.
    """
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tempfile.gettempdir(),
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_all_three_backends_are_available():
    assert fastdrop.available_backends() == ["numba", "cython", "numpy"]


def test_backend_by_argument_context_and_setter(monkeypatch):
    calls = []
    for name in _backends.NAMES:
        kernels = _backends.load(name)
        for entry in ("forward", "common"):  # common: Cython's whole-call entry
            if hasattr(kernels, entry):
                f = getattr(kernels, entry)
                spy = lambda *a, n=name, f=f: calls.append(n) or f(*a)  # noqa: E731
                monkeypatch.setattr(kernels, entry, spy)
    x = np.ones(10)
    fastdrop.dropout(x, 0.5, rng=1, backend="numpy")
    with fastdrop.use_backend("numba"):
        assert fastdrop.get_backend() == "numba"
        fastdrop.dropout(x, 0.5, rng=1)
        fastdrop.dropout(x, 0.5, rng=1, backend="cython")  # the argument wins
    assert fastdrop.get_backend() == "auto"
    fastdrop.set_backend("numpy")
    try:
        fastdrop.dropout(x, 0.5, rng=1)
        with fastdrop.use_backend("cython"):
            fastdrop.dropout(x, 0.5, rng=1)
    finally:
        fastdrop.set_backend("auto")
    assert calls == ["numpy", "numba", "cython", "numpy", "cython"]


def test_use_backend_is_local_to_a_thread():
    seen = []
    with fastdrop.use_backend("numpy"):
        worker = threading.Thread(target=lambda: seen.append(fastdrop.get_backend()))
        worker.start()
        worker.join()
    assert seen == ["auto"]


def test_auto_takes_cython():
    assert _backends.resolve("auto")[0] == "cython"


@settings(deadline=None)
@given(x=awkward_arrays(max_dims=3, max_side=20), p=rates, seed=seeds, offset=offsets)
def test_common_calls_match_the_reference(x, p, seed, offset):
    # Contiguous calls take Cython's whole-call entry; the rest the general path. With a
    # serial size of 0 the entry's parallel runs are tested too.
    ref = fastdrop.dropout(x, p, rng=seed, offset=offset, backend="numpy")
    with pytest.MonkeyPatch.context() as patch, fastdrop.threads(3):
        patch.setattr(_backends.load("cython"), "PARALLEL_MIN", 0)
        assert_bits_equal(fastdrop.dropout(x, p, rng=seed, offset=offset), ref)
        grad = fastdrop.dropout_backward(x, p, rng=seed, offset=offset)
    assert_bits_equal(
        grad, fastdrop.dropout_backward(x, p, rng=seed, offset=offset, backend="numpy")
    )


def test_common_entry_takes_the_common_call_and_declines_the_rest():
    common = _backends.load("cython").common
    x = np.ones(64, np.float32)
    top = 2**64 - 1
    assert common(x, 0.1, 1, 0, None, 1, 1) is not None
    assert common(np.ones((64, 64)), np.float64(0.0), top, top, None, 2, 0) is not None
    assert common(np.ones(100_000, np.float32), 0.1, 1, 0, None, 2, 1).shape == (100_000,)
    # out=: x itself, or an array like x that shares no byte with it, is filled and returned
    pair, inplace = np.ones(128, np.float32), x.copy()
    for source, out in ((x, np.empty_like(x)), (inplace, inplace), (pair[64:], pair[:64])):
        assert common(source, 0.5, 7, 3, out, 2, 0) is out
        assert_bits_equal(out, fastdrop.dropout(np.ones(64, np.float32), 0.5, rng=7, offset=3))
    misaligned = np.frombuffer(np.zeros(260, np.uint8).data, np.float32, count=64, offset=1)
    declined = [
        (x.astype(np.float16), 0.1, 1, 0),  # float16: its own conversions, general path
        (x[::2], 0.1, 1, 0),
        (x.astype(">f4"), 0.1, 1, 0),
        (misaligned, 0.1, 1, 0),
        (x.tolist(), 0.1, 1, 0),
        (np.ma.masked_array(x), 0.1, 1, 0),
        *((x.astype(dtype), 0.1, 1, 0) for dtype in BFLOAT16),  # bfloat16: general path
        *((x.astype(dtype), 0.1, 1, 0) for dtype in UNBUFFERED),  # datetime64, float8...
        (x, 1.0, 1, 0),
        (x, -0.1, 1, 0),
        (x, float("nan"), 1, 0),
        (x, np.float32(0.1), 1, 0),
        (x, 0, 1, 0),
        (x, 0.1, -1, 0),
        (x, 0.1, 2**64, 0),
        (x, 0.1, True, 0),
        (x, 0.1, None, 0),
        (x, 0.1, np.uint64(1), 0),
        (x, 0.1, 1, -1),
        (x, 0.1, 1, 2**64),
        *(  # out= of another kind, or overlapping x in part: the general path's to judge
            (x, 0.1, 1, 0, out)
            for out in (
                np.empty(64),
                np.empty(65, np.float32),
                np.empty((8, 8), np.float32),
                np.empty(128, np.float32)[::2],
                np.empty(64, ">f4"),
                np.zeros(64, np.float32).view(np.ma.MaskedArray),
                np.frombuffer(bytes(256), np.float32),  # read-only
                [0.0] * 64,
            )
        ),
    ]
    overlapping = np.ones(65, np.float32)
    assert common(overlapping[:64], 0.1, 1, 0, overlapping[1:], 2, 0) is None
    # the same memory seen with other strides on a length-1 axis: the general path's call
    row = np.ones(8)
    assert common(row[None, :], 0.1, 1, 0, row.reshape(1, 8), 2, 0) is None
    with pytest.raises(ValueError, match="overlaps"):
        fastdrop.dropout(row[None, :], 0.1, rng=1, out=row.reshape(1, 8))
    for args in declined:
        out = args[4] if len(args) == 5 else None
        assert common(*args[:4], out, 2, 0) is None, args
    # A declined call still gets its answer, or its error, from the general path.
    assert fastdrop.dropout(misaligned, 0.5, rng=3).flags.aligned
    with pytest.raises(ValueError):
        fastdrop.dropout(x, 0.1, rng=-1)


@pytest.mark.parametrize("name", ["numba", "cython", "numpy"])
def test_backend_from_environment(name):
    result = run_python(
        """
        import numpy as np, fastdrop
        from fastdrop._engine import backends as _backends
        used = []
        k = _backends.load(fastdrop.get_backend())
        for entry in ("forward", "common"):  # common: Cython's whole-call entry
            if hasattr(k, entry):
                f = getattr(k, entry)
                setattr(k, entry, lambda *a, f=f: used.append(1) or f(*a))
        fastdrop.dropout(np.ones(5), 0.5, rng=1)
        print(fastdrop.get_backend(), len(used))
        """,
        FASTDROP_BACKEND=name,
    )
    assert result.stdout.split() == [name, "1"], result.stderr


def test_unknown_backend_in_environment_is_a_clear_error():
    result = run_python(
        "import numpy as np, fastdrop; fastdrop.dropout(np.ones(5), 0.5, rng=1)",
        FASTDROP_BACKEND="cuda",
    )
    assert result.returncode != 0
    assert "ValueError: unknown FASTDROP_BACKEND 'cuda'" in result.stderr


def test_threads_by_setter_context_and_environment():
    default = fastdrop.get_num_threads()
    with fastdrop.threads(3):
        assert fastdrop.get_num_threads() == 3
    assert fastdrop.get_num_threads() == default
    fastdrop.set_num_threads(1)
    try:
        assert fastdrop.get_num_threads() == 1
    finally:
        fastdrop.set_num_threads(default)
    result = run_python(
        "import fastdrop; print(fastdrop.get_num_threads())", FASTDROP_NUM_THREADS="3"
    )
    assert result.stdout.strip() == "3", result.stderr


def test_auto_never_imports_numba():
    # Cython serves every dtype and size under auto, so the JIT is never loaded.
    result = run_python(
        """
        import sys
        import numpy as np, fastdrop
        for dtype in (np.float16, np.float32, np.float64):
            for n in (64, 200_000):
                fastdrop.dropout(np.ones(n, dtype), 0.5, rng=1, return_mask=True)
                fastdrop.gaussian_dropout(np.ones(n, dtype), 0.5, rng=1)
        print("numba" in sys.modules)
        """
    )
    assert result.stdout.strip() == "False", result.stderr


def test_works_without_ml_dtypes_and_never_imports_it():
    # bfloat16 arrays need ml_dtypes; fastdrop and its backends never import it, and its
    # case tables do without it.
    result = run_python(
        """
        import sys
        import numpy as np, fastdrop
        for backend in fastdrop.available_backends():
            fastdrop.dropout(np.ones(64, np.float16), 0.5, rng=1, backend=backend)
        print("ml_dtypes" in sys.modules)
        sys.modules["ml_dtypes"] = None  # makes `import ml_dtypes` raise ImportError
        import fastdrop.testing
        print(len(fastdrop.testing.DTYPES))
        """
    )
    assert result.stdout.split() == ["False", "3"], result.stderr


def test_works_without_numba():
    # Numba missing (or broken on import): the Cython backend serves everything.
    result = run_python(
        """
        import sys
        sys.modules["numba"] = None  # makes `import numba` raise ImportError
        import numpy as np, fastdrop
        print(fastdrop.available_backends())
        x = np.ones(200_000, np.float32)
        y = fastdrop.dropout(x, 0.5, rng=1)
        ref = fastdrop.dropout(x, 0.5, rng=1, backend="numpy")
        print(bool((y == ref).all()))
        """
    )
    assert result.stdout.split("\n")[:2] == ["['cython', 'numpy']", "True"], result.stderr


def test_auto_falls_back_when_numba_fails_to_compile(monkeypatch):
    kernels = _backends.load("numba")

    def broken(*args):
        raise RuntimeError("simulated Numba compilation failure")

    monkeypatch.setattr(kernels, "forward", broken)
    monkeypatch.setattr(_backends, "AUTO_ORDER", ("numba", "cython", "numpy"))
    x = np.ones(4096, np.float16)
    try:
        with pytest.warns(RuntimeWarning, match="numba backend failed"):
            y = fastdrop.dropout(x, 0.5, rng=1)
        np.testing.assert_array_equal(y, fastdrop.dropout(x, 0.5, rng=1, backend="numpy"))
        assert "numba" not in fastdrop.available_backends()
        with pytest.raises(ValueError, match="not available"):
            fastdrop.dropout(x, 0.5, rng=1, backend="numba")
    finally:
        _backends._failed.pop("numba", None)
        _backends._loaded["numba"] = kernels
    monkeypatch.undo()
    assert "numba" in fastdrop.available_backends()


def test_explicit_backend_errors_propagate(monkeypatch):
    kernels = _backends.load("numba")
    monkeypatch.setattr(kernels, "forward", lambda *a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        fastdrop.dropout(np.ones(4), 0.5, rng=1, backend="numba")


def test_numba_kernels_are_cached_across_processes():
    code = """
        import numpy as np, fastdrop
        from fastdrop._numba import kernels
        for dtype in (np.float16, np.float32, np.float64):
            fastdrop.dropout(np.ones(100, dtype), 0.5, rng=1, backend="numba", return_mask=True)
        stats = kernels._forward.stats
        print(sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
        """
    run_python(code)  # fills the cache if this is the first run
    hits, misses = run_python(code).stdout.split()
    assert (int(hits), int(misses)) == (3, 0)


def test_numba_settings_are_left_as_the_user_has_them():
    import numba

    layer = numba.config.THREADING_LAYER
    threads = numba.get_num_threads()
    with fastdrop.threads(2):
        fastdrop.dropout(np.ones(1 << 19), 0.5, rng=1, backend="numba")
    assert (numba.config.THREADING_LAYER, numba.get_num_threads()) == (layer, threads)


@pytest.mark.parametrize("backend", ["numba", "cython"])
def test_kernels_release_the_gil(backend):
    # While one thread runs a long kernel, another thread keeps running Python code.
    x = np.ones(30_000_000, np.float32)
    y = np.empty_like(x)
    fastdrop.dropout(x[:10], 0.5, rng=1, backend=backend)  # compile outside the window
    running = threading.Event()
    finished = threading.Event()
    ticks_while_running = []

    def work():
        running.set()
        with fastdrop.threads(1):
            for _ in range(3):
                fastdrop.dropout(x, 0.5, rng=1, out=y, backend=backend)
        finished.set()

    worker = threading.Thread(target=work)
    worker.start()
    running.wait()
    ticks = 0
    while not finished.is_set():
        ticks += 1
    ticks_while_running.append(ticks)
    worker.join()
    # Held for a whole kernel, the GIL would leave this thread a few thousand ticks at most
    # (the Python-level parts of three calls); released, it gets millions.
    assert ticks_while_running[0] > 300_000


def test_concurrent_calls_match_serial_calls():
    # In a subprocess, so that a deadlock or an abort fails this test alone. Each call is
    # big enough for the thread pools: concurrent calls take turns on them.
    result = run_python(
        """
        from concurrent.futures import ThreadPoolExecutor
        import numpy as np, fastdrop
        x = np.random.default_rng(0).standard_normal(300_000).astype(np.float32)
        jobs = [(b, s) for b in ("numba", "cython", "auto") for s in range(16)]
        def call(job):
            b, s = job
            return fastdrop.dropout(x, 0.3, rng=s, offset=s * 7, return_mask=True, backend=b)
        serial = [call(j) for j in jobs]
        with ThreadPoolExecutor(8) as pool:
            for _ in range(3):
                parallel = list(pool.map(call, jobs))
                assert all(
                    np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
                    for a, b in zip(serial, parallel)
                )
        ref = fastdrop.dropout(x, 0.3, rng=5, offset=35, backend="numpy")
        assert np.array_equal(serial[5][0], ref)
        print("ok")
        """
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
