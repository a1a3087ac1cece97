"""Threads inside other people's pipelines: when the pools are used, that idle workers
cost nothing, thread settings and their precedence, threadpoolctl, and fork safety.

Whatever can hang or abort (forks, fresh thread settings) runs in a subprocess with a
timeout, so that a regression fails a test instead of stalling the run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import threading

import numpy as np
import pytest
from test_agreement import assert_bits_equal

import fastdrop
from fastdrop._engine import backends as _backends
from fastdrop._engine import threads as _threads
from fastdrop._numba import pool

COMPILED = [name for name in ("numba", "cython") if name in fastdrop.available_backends()]


def run_python(code: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter, outside the source tree, with ``env`` added
    (a value of None removes the variable)."""
    environ = {**os.environ, **env}
    for name in [k for k, v in environ.items() if v is None]:
        del environ[name]
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tempfile.gettempdir(),
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_call_runs_on_the_calling_thread_below_parallel_min():
    out = ok(
        run_python(
            """
            import numpy as np, fastdrop
            from fastdrop._engine import backends as _backends
            for name in ("cython", "numba"):
                kernels = _backends.load(name)
                below = kernels.PARALLEL_MIN - 1
                with fastdrop.threads(2):
                    fastdrop.dropout(np.ones(below, np.float32), 0.5, rng=1, backend=name)
                    fastdrop.dropout(np.ones(64, np.float32), 0.5, rng=1, backend=name)
                    print(name, kernels.pool_workers(), end=" ")
                    fastdrop.dropout(np.ones(below + 1, np.float32), 0.5, rng=1, backend=name)
                    print(kernels.pool_workers())
            """
        )
    )
    assert out.split("\n")[:2] == ["cython 0 1", "numba 0 1"]


def test_no_thread_runs_between_calls():
    # Idle workers sleep: the process uses no CPU while it waits after parallel calls (GNU
    # OpenMP's would spin for milliseconds, taking the cores from the next BLAS call).
    out = ok(
        run_python(
            """
            import resource, time
            import numpy as np, fastdrop
            x = np.ones(1 << 20, np.float32)
            for name in ("cython", "numba"):
                with fastdrop.threads(4):
                    fastdrop.dropout(x, 0.5, rng=1, backend=name)
            def cpu():
                usage = resource.getrusage(resource.RUSAGE_SELF)
                return usage.ru_utime + usage.ru_stime
            before = cpu()
            time.sleep(0.5)
            print(cpu() - before)
            """
        )
    )
    assert float(out) < 0.01


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"FASTDROP_NUM_THREADS": "3", "OMP_NUM_THREADS": "5"}, "3"),
        ({"FASTDROP_NUM_THREADS": None, "OMP_NUM_THREADS": "5,2"}, "5"),
        ({"FASTDROP_NUM_THREADS": "", "OMP_NUM_THREADS": "7"}, "7"),
        ({"FASTDROP_NUM_THREADS": None, "OMP_NUM_THREADS": "none"}, "cores"),
        ({"FASTDROP_NUM_THREADS": None, "OMP_NUM_THREADS": None}, "cores"),
    ],
)
def test_thread_count_from_the_environment(env, expected):
    result = run_python("import fastdrop; print(fastdrop.get_num_threads())", **env)
    assert ok(result).strip() == (str(_threads.cores()) if expected == "cores" else expected)


def test_a_bad_fastdrop_num_threads_fails_at_first_use_not_at_import():
    result = run_python(
        """
        import numpy as np, fastdrop
        print("imported")
        fastdrop.dropout(np.ones(10_000), 0.5, rng=1)
        """,
        FASTDROP_NUM_THREADS="many",
    )
    assert result.stdout.strip() == "imported"
    assert "ValueError: FASTDROP_NUM_THREADS must be a positive integer, got 'many'" in (
        result.stderr
    )


def test_setter_and_scope_win_over_the_environment():
    out = ok(
        run_python(
            """
            import fastdrop
            print(fastdrop.get_num_threads())
            fastdrop.set_num_threads(2)
            with fastdrop.threads(5):
                print(fastdrop.get_num_threads())
            print(fastdrop.get_num_threads())
            """,
            FASTDROP_NUM_THREADS="3",
            OMP_NUM_THREADS="4",
        )
    )
    assert out.split() == ["3", "5", "2"]


@pytest.mark.parametrize("backend", COMPILED)
def test_more_threads_than_cores_gives_the_same_bits(backend, monkeypatch):
    monkeypatch.setattr(_backends.load(backend), "PARALLEL_MIN", 0)
    x = fastdrop.testing.make_array((7, 4099), np.float32)
    with fastdrop.threads(1):
        ref = fastdrop.dropout(x, 0.3, rng=4, return_mask=True, backend=backend)
    with fastdrop.threads(2 * _threads.cores() + 1):
        got = fastdrop.dropout(x, 0.3, rng=4, return_mask=True, backend=backend)
    assert_bits_equal(got[0], ref[0])
    assert_bits_equal(got[1], ref[1])


def test_a_failing_part_raises_in_the_caller_and_the_pool_goes_on():
    def fail(begin: int, end: int) -> None:
        if begin >= 5:
            raise ZeroDivisionError("part")

    with pytest.raises(ZeroDivisionError, match="part"):
        pool.run(fail, 10, 3)
    parts: list[tuple[int, int]] = []
    pool.run(lambda begin, end: parts.append((begin, end)), 1000, 3)
    covered = sorted(i for begin, end in parts for i in range(begin, end))
    assert covered == list(range(1000))  # every task once, in parts of a few


# -- threadpoolctl -----------------------------------------------------------------------


def test_threadpool_info_lists_fastdrop_from_import():
    pytest.importorskip("threadpoolctl")
    out = ok(
        run_python(
            """
            import fastdrop, threadpoolctl
            [info] = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "fastdrop"]
            same_version = info["version"] == fastdrop.__version__
            print(info["internal_api"], info["num_threads"], same_version)
            """,
            FASTDROP_NUM_THREADS="3",
        )
    )
    assert out.split() == ["fastdrop", "3", "True"]


def test_threadpool_limits_limits_fastdrop():
    pytest.importorskip("threadpoolctl")
    out = ok(
        run_python(
            """
            import numpy as np, fastdrop, threadpoolctl
            from fastdrop._engine import backends as _backends
            x = np.ones(1 << 19, np.float32)
            with threadpoolctl.threadpool_limits(1):
                print(fastdrop.get_num_threads())
                for name in ("cython", "numba"):
                    fastdrop.dropout(x, 0.5, rng=1, backend=name)
                    print(_backends.load(name).pool_workers())
            print(fastdrop.get_num_threads())
            with threadpoolctl.threadpool_limits(2, user_api="fastdrop"):
                print(fastdrop.get_num_threads())
                with fastdrop.threads(3):  # fastdrop's own scope is innermost
                    print(fastdrop.get_num_threads())
            """,
            FASTDROP_NUM_THREADS="4",
        )
    )
    assert out.split() == ["1", "0", "0", "4", "2", "3"]


# -- fork --------------------------------------------------------------------------------

FORK_SETUP = """
    import multiprocessing, os
    from concurrent.futures import ProcessPoolExecutor
    import numpy as np, fastdrop

    x = np.random.default_rng(0).standard_normal(1 << 19).astype(np.float32)

    def draw(seed):
        # Parallel calls (two threads, above the serial size) on both compiled backends.
        with fastdrop.threads(2):
            return [
                fastdrop.dropout(x, 0.3, rng=seed, return_mask=True, backend=name)[1]
                for name in ("cython", "numba")
            ]

    def same(seed):
        a, b = draw(seed)
        ref = fastdrop.bernoulli_mask(x.shape, 0.3, rng=seed)
        return bool(np.array_equal(a, ref) and np.array_equal(b, ref))

    assert same(1)  # the parent has run both pools
"""


@pytest.mark.parametrize(
    "children",
    [
        """
        pid = os.fork()
        if pid == 0:
            os._exit(0 if same(2) and same(3) else 1)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status) == 0)
        """,
        """
        with multiprocessing.get_context("fork").Pool(2) as workers:
            print(all(workers.map(same, range(4))))
        """,
        """
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(2, mp_context=context) as workers:
            print(all(workers.map(same, range(4))))
        """,
        """
        with ProcessPoolExecutor(2) as workers:  # the platform's default start method
            print(all(workers.map(same, range(4))))
        """,
    ],
    ids=["os.fork", "fork Pool", "fork ProcessPoolExecutor", "ProcessPoolExecutor"],
)
def test_forked_children_run_and_give_the_same_bits(children):
    code = textwrap.dedent(FORK_SETUP) + textwrap.dedent(children)
    assert ok(run_python(code, timeout=240)).strip() == "True"


def test_fork_while_another_thread_runs_a_parallel_call():
    # The fork handler waits for the call in flight, so the child's pool is never caught
    # half way through one.
    out = ok(
        run_python(
            """
            import os, threading
            import numpy as np, fastdrop
            x = np.ones(1 << 22, np.float32)
            # First calls import modules lazily; a fork while another thread holds an
            # import lock would hang the child in Python's import system, not in fastdrop.
            fastdrop.dropout(x, 0.5, rng=1, backend="cython")
            stop = threading.Event()
            def busy():
                with fastdrop.threads(2):
                    while not stop.is_set():
                        fastdrop.dropout(x, 0.5, rng=1, backend="cython")
            thread = threading.Thread(target=busy)
            thread.start()
            codes = []
            for _ in range(5):
                pid = os.fork()
                if pid == 0:
                    with fastdrop.threads(2):
                        y = fastdrop.dropout(x, 0.5, rng=1, backend="cython")
                    os._exit(0 if y.sum() > 0 else 1)
                codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
            stop.set()
            thread.join()
            print(codes)
            """,
            timeout=240,
        )
    )
    assert out.strip() == "[0, 0, 0, 0, 0]"


def test_parallel_min_is_what_the_kernels_are_called_with(monkeypatch):
    calls = []
    kernels = _backends.load("cython")
    forward = kernels.forward
    monkeypatch.setattr(kernels, "forward", lambda *a: calls.append(a[-1]) or forward(*a))
    kw = dict(rng=1, return_mask=True, backend="cython")  # the general path: forward
    with fastdrop.threads(2):
        fastdrop.dropout(np.ones(kernels.PARALLEL_MIN - 1), 0.5, **kw)
        fastdrop.dropout(np.ones(kernels.PARALLEL_MIN), 0.5, **kw)
        with fastdrop.threads(1):
            fastdrop.dropout(np.ones(kernels.PARALLEL_MIN), 0.5, **kw)
    assert calls == [1, 2, 1]


def test_a_bad_fastdrop_num_threads_draws_nothing_from_the_generator():
    out = ok(
        run_python(
            """
            import numpy as np, fastdrop, threadpoolctl
            x = np.ones((4, 300), np.float32)
            calls = [
                lambda g: fastdrop.dropout(x, 0.5, rng=g, return_mask=True),
                lambda g: fastdrop.dropout(x, 0.5, rng=g, backend="numpy"),
                lambda g: fastdrop.dropout_backward(x, 0.5, rng=g, out=np.empty_like(x)),
                lambda g: fastdrop.bernoulli_mask(x.shape, 0.5, rng=g),
                lambda g: fastdrop.gaussian_dropout(x, 0.5, rng=g),
                lambda g: fastdrop.dropout_add(x, x, 0.5, rng=g),
                lambda g: fastdrop.spatial_dropout(x[None], 0.5, rng=g),
            ]
            for call in calls:
                g = np.random.default_rng(0)
                before = g.bit_generator.state
                try:
                    call(g)
                except ValueError as exc:
                    assert "FASTDROP_NUM_THREADS" in str(exc)
                print(g.bit_generator.state == before, end=" ")
            # threadpoolctl goes on working: fastdrop's own calls report the variable.
            info = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "fastdrop"]
            print(info[0]["num_threads"] >= 1)
            """,
            FASTDROP_NUM_THREADS="many",
        )
    )
    assert out.split() == ["True"] * 8


def test_an_older_threadpoolctl_is_left_alone(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from fastdrop._engine import threadpool as _threadpool

    before = list(threadpoolctl._ALL_CONTROLLERS)
    monkeypatch.setattr(_threadpool, "_registered", False)
    monkeypatch.setattr(_threadpool.metadata, "version", lambda name: "3.2.0")
    _threadpool.register()  # 3.2 takes controllers but does not check their symbols
    assert threadpoolctl._ALL_CONTROLLERS == before


def test_a_thread_that_cannot_start_leaves_the_call_to_those_there_are(monkeypatch):
    def refuse(self):
        raise RuntimeError("can't start new thread")

    fresh = pool._Pool()
    monkeypatch.setattr(threading.Thread, "start", refuse)
    parts: list[tuple[int, int]] = []
    fresh.run(lambda begin, end: parts.append((begin, end)), 100, 4)
    assert fresh.workers() == 0
    assert sorted(i for begin, end in parts for i in range(begin, end)) == list(range(100))


def test_a_count_of_a_billion_runs_on_a_few_threads_per_core():
    x = fastdrop.testing.make_array((300_000,), np.float32)
    ref = fastdrop.dropout(x, 0.3, rng=2, backend="numpy")
    with fastdrop.threads(10**9):
        assert _threads.usable() == _threads.PER_CORE * _threads.cores()
        for backend in ("auto", *COMPILED):
            assert_bits_equal(fastdrop.dropout(x, 0.3, rng=2, backend=backend), ref)
