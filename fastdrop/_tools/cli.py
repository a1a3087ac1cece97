"""``python -m fastdrop`` / ``fastdrop``: what this install can do, and how fast it is here.

Prints the versions, the backends that load, the thread count, the dispatch table auto
follows (``fastdrop tune``), and a quick side-by-side table. fastdrop's rows are timed in
this process, interleaved, the peers' in a process of their own (as by ``fastdrop
bench``), and each median is reported as a ratio to that of a parallel scale-copy
``y = x * s`` of the same array with the same threads: the memory bandwidth bound that
dropout cannot beat.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

import fastdrop
from fastdrop._contract import stream
from fastdrop._contract.kernels import Kernels
from fastdrop._engine import backends as _backends
from fastdrop._engine import threads as _threads
from fastdrop._tools import bench, peers, tune
from fastdrop._tools.timing import best_times
from fastdrop.testing import BOUND, PIPELINES, REFERENCE_LIMIT, pipelines

P = 0.1
SIZES = (1_000, 1_000_000, 10_000_000)
NO_BITS = np.empty((0, 0), np.uint8)  # forward's packed mask: none wanted


def report() -> str:
    """The environment part of the ``python -m fastdrop`` output."""
    lines = [f"{k:<22}{v}" for k, v in peers.versions()]
    for name in _backends.NAMES:
        why = _backends.why_unavailable(name) if _backends.load(name) is None else None
        lines.append(f"{'backend ' + name:<22}{'available' if why is None else why}")
    lines.append(f"{'default backend':<22}{fastdrop.get_backend()}")
    lines.append(f"{'dispatch table':<22}{tune.describe()[0]}")
    serial = ", ".join(
        f"{k.PARALLEL_MIN} ({name})"
        for name in ("cython", "numba")
        if (k := _backends.load(name)) is not None
    )
    lines.append(
        f"{'threads':<22}{fastdrop.get_num_threads()} (of {_threads.cores()} cores; calls "
        f"under {serial} elements run on one)"
    )
    return "\n".join(lines)


def speed_table(
    sizes: tuple[int, ...] = SIZES, budget: float = 2.0, *, family: bool = False
) -> str:
    """Time every implementation at each size (float32, p = 0.1): ns per element and the
    ratio to the scale-copy bound. ``family``: the dropout family's table instead, at
    sizes rounded down to a multiple of 4096."""
    implementations = peers.family_implementations if family else peers.implementations
    peer_rows = peers.family_peer_rows if family else peers.peer_rows
    if family:
        sizes = tuple(max(4096, n - n % 4096) for n in sizes)
    lines = [
        f"float32, p = {P}, {fastdrop.get_num_threads()} threads; medians of interleaved "
        "runs, the peers' in a process of their own",
        f"{'size':>10}  {'implementation':<28}{'ns/elem':>9}{'x bound':>9}",
    ]
    records = bench.measure(sizes, (P,), ("float32",), budget, implementations, peer_rows)
    for r in records:
        lines.append(
            f"{r['size']:>10}  {r['implementation']:<28}"
            f"{r['ns_per_element']:>9.3f}{r['ratio_to_bound']:>9.2f}"
        )
    return "\n".join(lines + bench.flagged(records))


def scaling_table(n: int, counts: tuple[int, ...], budget: float = 2.0) -> str:
    """Dropout of ``n`` float32 elements on each backend and the scale-copy, with each
    thread count in ``counts``, timed interleaved: ns per element and the speed-up over
    the same row's first thread count."""
    x = np.random.default_rng(0).standard_normal(n, dtype=np.float32)
    y = np.empty_like(x)
    bound: Kernels = peers.bound_kernels()
    names = [BOUND] + [f"fastdrop {b}" for b in ("auto", *fastdrop.available_backends())]
    names = [name for name in names if name != "fastdrop numpy" or n <= REFERENCE_LIMIT]

    def row(name: str, t: int) -> Callable[[], object]:
        if name == BOUND:
            return lambda: bound.scale(x[None], y[None], 2.0, t)
        backend = name.split()[1]

        def call() -> None:
            with fastdrop.threads(t):
                fastdrop.dropout(x, P, rng=1, backend=backend)

        return call

    times = best_times({(name, t): row(name, t) for name in names for t in counts}, budget)
    lines = [
        f"float32, p = {P}, {n} elements; best of interleaved runs",
        f"{'threads':>7}  {'implementation':<24}{'ns/elem':>9}{'speed-up':>10}",
    ]
    for name in names:
        for t in counts:
            speedup = times[name, counts[0]] / times[name, t]
            lines.append(f"{t:>7}  {name:<24}{times[name, t] / n * 1e9:>9.3f}{speedup:>10.2f}")
    return "\n".join(lines)


def crossover_table(rounds: int = 40) -> str:
    """Where a second thread pays: each compiled backend's dropout kernel on float32
    arrays of 2**14 to 2**21 elements, into a preallocated output, on one thread and on
    ``get_num_threads()`` threads, called back to back and right after a NumPy matrix
    product (whose BLAS threads may still be busy; the product itself is not timed).
    Reports the 10th percentile of ``rounds`` interleaved calls of each (this machine's
    quiet moments) and the ratio of the parallel time to the serial one: the
    measurements behind each backend's ``PARALLEL_MIN``."""
    n_threads = fastdrop.get_num_threads()
    a = np.ones((64, 256), np.float32)
    w = np.ones((256, 256), np.float32)
    cases = [(blas, t) for blas in (False, True) for t in (1, n_threads)]
    affine = (stream.keep_scale(P, "inverted"), stream.IDENTITY, 0.0)
    lines = [
        f"float32, p = {P}, into out=; 1 thread against {n_threads}; 10th percentile of "
        f"{rounds} interleaved calls, in us",
        f"{'backend':<9}{'size':>9}{'1':>10}{n_threads:>10}{'ratio':>7}"
        f"{'after BLAS: 1':>16}{n_threads:>10}{'ratio':>7}",
    ]
    for backend in ("cython", "numba"):
        kernels: Kernels | None = _backends.load(backend)
        if kernels is None:
            continue
        for n in (1 << e for e in range(14, 22)):
            x = np.random.default_rng(0).standard_normal((1, n), dtype=np.float32)
            y = np.empty((1, 1, n), np.float32)
            times: dict[tuple[bool, int], list[float]] = {case: [] for case in cases}
            for r in range(rounds + 1):  # the first round warms up, untimed
                for blas, t in cases[r % 4 :] + cases[: r % 4]:
                    if blas:
                        a @ w
                    t0 = time.perf_counter()
                    kernels.forward(x, y, NO_BITS, 1, 0, n, n, stream.threshold(P), *affine, t)
                    if r:
                        times[blas, t].append((time.perf_counter() - t0) * 1e6)
            us = {case: float(np.percentile(ts, 10)) for case, ts in times.items()}
            cells = "".join(
                f"{us[blas, 1]:>{16 if blas else 10}.1f}{us[blas, n_threads]:>10.1f}"
                f"{us[blas, n_threads] / us[blas, 1]:>7.2f}"
                for blas in (False, True)
            )
            lines.append(f"{backend:<9}{n:>9}{cells}")
    return "\n".join(lines)


def pipelines_table(budget: float = 10.0) -> str:
    """The real pipelines of :func:`fastdrop.testing.pipelines` (a NumPy MLP's training
    step, Monte Carlo inference), timed interleaved: each one's time and its ratio to the
    same pipeline without dropout."""
    times = best_times(pipelines(), budget, number=20)
    lines = [
        f"{fastdrop.get_num_threads()} threads; best of interleaved runs",
        f"{'pipeline':<30}{'ms':>8}{'x no dropout':>14}",
    ]
    for name, t in times.items():
        lines.append(f"{name:<30}{t * 1e3:>8.3f}{t / times[PIPELINES[name]]:>14.2f}")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    """The command line of ``fastdrop`` and ``python -m fastdrop``.

    Returns
    -------
    argparse.ArgumentParser
        Without a command, the options of the environment report and speed table; with
        the ``bench`` command, those of :mod:`fastdrop._tools.bench`; with ``tune``, those
        of :mod:`fastdrop._tools.tune`.
    """
    cli = argparse.ArgumentParser(
        prog="fastdrop",
        description="Without a command: the versions, backends and threads of this install of "
        "fastdrop, and a quick speed table. The bench command compares fastdrop with the "
        "installed peers; the tune command measures which backend auto runs here.",
    )
    cli.add_argument("--version", action="version", version=f"fastdrop {fastdrop.__version__}")
    report_options = cli.add_argument_group("without a command")
    report_options.add_argument("--no-speed", action="store_true", help="skip the speed table")
    report_options.add_argument(
        "--sizes",
        type=bench.positive_int,
        nargs="+",
        metavar="N",
        dest="report_sizes",  # not bench's --sizes, which would overwrite it
        help=f"array sizes to time (default: {' '.join(map(str, SIZES))})",
    )
    report_options.add_argument(
        "--family", action="store_true", help="time the dropout family instead of dropout"
    )
    report_options.add_argument(
        "--threads",
        type=bench.positive_int,
        nargs="+",
        metavar="T",
        help="instead of the speed table, a thread-scaling table at the first of --sizes",
    )
    report_options.add_argument(
        "--crossover",
        action="store_true",
        help="instead of the speed table, where a second thread pays off, back to back and "
        "after a BLAS call: what the size calls run serially below was chosen from",
    )
    report_options.add_argument(
        "--pipelines",
        action="store_true",
        help="instead of the speed table, a NumPy MLP's training step and Monte Carlo "
        "inference, each against the same without dropout",
    )
    commands = cli.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    bench_command = commands.add_parser(
        "bench",
        help="fastdrop's backends against PyTorch, JAX and NumPy",
        description="Time fastdrop's backends, the NumPy idiom, and PyTorch and JAX where "
        "installed, in interleaved rounds per case (dtype, size, rate): ns per element, GB/s "
        "and the ratio to a scale-copy, the memory-bandwidth bound.",
    )
    bench.add_arguments(bench_command)
    bench_command.set_defaults(run=bench.command)
    tune_command = commands.add_parser(
        "tune",
        help="measure which backend auto runs on this machine, by dtype and size",
        description="Time the compiled backends' dropout kernel on this machine, in "
        "interleaved rounds per case (dtype, size), and store which one auto takes for each "
        "in the cache directory ($FASTDROP_CACHE_DIR, else the platform's user cache), keyed "
        "by the CPU and the versions of fastdrop, NumPy, Numba and Python. Without a table "
        "that matches, auto runs Cython, then Numba, then NumPy: the first that loads.",
    )
    tune.add_arguments(tune_command)
    tune_command.set_defaults(run=tune.command)
    return cli


def main(argv: list[str] | None = None) -> int:
    """Run ``fastdrop`` or ``python -m fastdrop``.

    Parameters
    ----------
    argv : list of str, optional
        The arguments, ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        The exit status. Bad arguments exit with status 2 and argparse's usage message.
    """
    cli = parser()
    args = cli.parse_args(argv)
    if args.command is not None:
        given = [
            option
            for option, value in (
                ("--no-speed", args.no_speed),
                ("--sizes", args.report_sizes),
                ("--family", args.family),
                ("--threads", args.threads),
                ("--pipelines", args.pipelines),
                ("--crossover", args.crossover),
            )
            if value
        ]
        if given:
            cli.error(f"argument {given[0]}: not allowed before the {args.command} command")
        return args.run(args)
    print(report())
    if args.no_speed:
        return 0
    print()
    sizes = tuple(args.report_sizes or SIZES)
    if args.pipelines:
        print(pipelines_table())
    elif args.crossover:
        print(crossover_table())
    elif args.threads:
        print(scaling_table(sizes[0], tuple(args.threads)))
    else:
        print(speed_table(sizes, family=args.family))
    return 0
