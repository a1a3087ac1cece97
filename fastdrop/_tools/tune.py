"""``fastdrop tune``: which backend auto runs on this machine, by dtype and size.

Each case (dtype, size) times the forward dropout kernel of every compiled backend (the
NumPy reference only where none loads) into a preallocated output, on the threads a call
of that size gets, in interleaved rounds (:func:`fastdrop._tools.bench.rounds`). Each
case goes to the backend with the lowest median, or to auto's built-in choice where that
is within ``TIE`` of it (it needs no JIT). Between two measured sizes, the choice changes
at their geometric mean. The rules are stored in the cache directory
(:mod:`fastdrop._engine.tuning`), where every later process's auto reads them.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import math
import time
from bisect import bisect_right
from collections.abc import Callable, Sequence

import numpy as np

import fastdrop
from fastdrop._contract import stream
from fastdrop._engine import backends, threads, tuning
from fastdrop._engine.run import NO_BITS
from fastdrop._tools import bench
from fastdrop._tools.timing import Clock, summarize
from fastdrop.testing import make_array

SIZES = (64, 1024, 1 << 14, 1 << 16, 1 << 18, 1 << 20, 1 << 22)
LARGE = (1 << 24, 1 << 26)  # --large: 2**26 float64 elements are 512 MiB, twice
P = 0.1
TIE = 0.02  # auto's built-in choice stands unless another backend is this much faster

# dtype name -> size -> backend -> median seconds per call
Seconds = dict[str, dict[int, dict[str, float]]]
# dtype name, size, backends -> backend -> a call of its kernel on that case
RowMaker = Callable[[str, int, Sequence[str]], dict[str, Callable[[], object]]]


def candidates() -> list[str]:
    """The backends to compare: the compiled ones that load here, else the reference.

    Returns
    -------
    list of str
        In auto's built-in order.
    """
    compiled = [n for n in backends.AUTO_ORDER if n != "numpy" and backends.load(n) is not None]
    return compiled or ["numpy"]


def kernel_rows(dtype: str, n: int, names: Sequence[str]) -> dict[str, Callable[[], object]]:
    """Each backend's forward kernel on ``n`` elements of ``dtype`` (p = ``P``), writing
    into a preallocated output, on the threads that fastdrop gives a call of ``n``
    elements on that backend.

    Parameters
    ----------
    dtype : str
        The dtype's name.
    n : int
        The number of elements.
    names : sequence of str
        The backends.

    Returns
    -------
    dict
        Backend -> zero-argument callable.
    """
    x = make_array((1, n), np.dtype(dtype).type)
    y = np.empty((1, 1, n), x.dtype)
    affine = (stream.keep_scale(P, "inverted"), stream.IDENTITY, 0.0)
    rows: dict[str, Callable[[], object]] = {}
    for name in names:
        kernels = backends.resolve(name)[1]
        t = threads.for_call(n, kernels)
        rows[name] = functools.partial(
            kernels.forward, x, y, NO_BITS, 1, 0, n, n, stream.threshold(P), *affine, t
        )
    return rows


def measure(
    sizes: Sequence[int],
    dtypes: Sequence[str],
    budget: float,
    names: Sequence[str],
    *,
    rows: RowMaker = kernel_rows,
    clock: Clock = time.perf_counter,
) -> Seconds:
    """The median time per call of each backend in each case.

    Parameters
    ----------
    sizes, dtypes : sequence
        The cases: every combination.
    budget : float
        Seconds of rounds per case, as :func:`fastdrop._tools.bench.rounds` takes it.
    names : sequence of str
        The backends.
    rows : callable
        Dtype name, size, backends -> the calls to time; :func:`kernel_rows` by default.
    clock : callable
        The clock of the rounds.

    Returns
    -------
    dict
        Dtype -> size -> backend -> median seconds per call.
    """
    cases = [(d, n) for d in dtypes for n in sizes]
    seconds: Seconds = {d: {} for d in dtypes}
    for i, (dtype, n) in enumerate(cases):
        bench.progress(i, len(cases), f"{dtype} n={n}")
        times = bench.rounds(rows(dtype, n, names), n, budget, clock)
        seconds[dtype][n] = {name: summarize(ts).median for name, ts in times.items()}
    bench.progress(len(cases), len(cases), "done")
    return seconds


def choose(seconds: dict[str, float]) -> str:
    """The backend auto should take for one case.

    Parameters
    ----------
    seconds : dict
        Backend -> median seconds per call.

    Returns
    -------
    str
        The fastest backend, unless the first of ``seconds`` in auto's built-in order is
        within ``TIE`` of it.
    """
    fastest = min(seconds, key=seconds.__getitem__)
    preferred = next(name for name in backends.AUTO_ORDER if name in seconds)
    return preferred if seconds[preferred] <= (1 + TIE) * seconds[fastest] else fastest


def rules(seconds: Seconds) -> tuning.Rules:
    """The dispatch rules of the measured cases.

    Parameters
    ----------
    seconds : dict
        As :func:`measure` returns it.

    Returns
    -------
    dict
        Dtype -> ``[(from size, backend), ...]``: each measured size's choice
        (:func:`choose`) from the geometric mean of it and the size below, the smallest
        size's from 0, the largest's beyond it.
    """
    table: tuning.Rules = {}
    for dtype, by_size in seconds.items():
        sizes = sorted(by_size)
        rule = [(0, choose(by_size[sizes[0]]))]
        for below, n in itertools.pairwise(sizes):
            chosen = choose(by_size[n])
            if chosen != rule[-1][1]:
                rule.append((math.isqrt(below * n), chosen))
        table[dtype] = rule
    return table


def describe() -> tuple[str, dict | None]:
    """Where this machine's dispatch table is and whether auto follows it.

    Returns
    -------
    tuple
        A phrase that says so, and the table, if one could be read.
    """
    file = tuning.path()
    built_in = (
        f"auto runs its built-in order ({', '.join(backends.AUTO_ORDER)}: the first that loads)"
    )
    try:
        table = tuning.read(file)
    except FileNotFoundError:
        return f"none at {file}; {built_in}", None
    except (OSError, ValueError) as exc:
        return f"{file} is ignored ({type(exc).__name__}: {exc}); {built_in}", None
    why = tuning.stale(table)
    if why:
        return f"{file} is stale ({'; '.join(why)}), ignored; {built_in}", table
    return f"{file}, in force", table


def show() -> str:
    """The text of ``fastdrop tune --show``: where the table is, whether it is in force,
    what it was measured on, and its rules."""
    phrase, table = describe()
    lines = [f"dispatch table: {phrase}"]
    if table is not None:
        key = table["key"]
        versions = ", ".join(
            f"{k} {key[k]}" for k in ("fastdrop", "numpy", "numba", "python") if k in key
        )
        lines.append(
            f"measured {table.get('measured', '?')} on {key.get('cpu')}, "
            f"{table.get('threads', '?')} threads; {versions}"
        )
        lines.append(f"{'dtype':<9}{'from n':>11}  backend")
        for dtype, rule in table["rules"].items():
            for i, (size, name) in enumerate(rule):
                lines.append(f"{dtype if i == 0 else '':<9}{size:>11}  {name}")
    return "\n".join(lines)


def table(seconds: Seconds, chosen: tuning.Rules, names: Sequence[str]) -> str:
    """The measurements as ``fastdrop tune`` prints them: ns per element of each backend
    of ``names`` in each case, and the backend the rules give that case."""
    lines = [f"{'dtype':<9}{'size':>10}" + "".join(f"{n:>10}" for n in names) + "  auto"]
    for dtype, by_size in seconds.items():
        sizes = [size for size, _ in chosen[dtype]]
        for n, row in sorted(by_size.items()):
            cells = "".join(f"{row[name] / n * 1e9:>10.3f}" for name in names)
            pick = chosen[dtype][bisect_right(sizes, n) - 1][1]
            lines.append(f"{dtype:<9}{n:>10}{cells}  {pick}")
    lines.append(
        f"ns per element, medians of interleaved rounds, p = {P}, into out=, "
        f"{fastdrop.get_num_threads()} threads"
    )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Give ``parser`` the options of ``fastdrop tune``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The ``tune`` command's parser; :func:`command` runs what it parses.
    """
    parser.add_argument(
        "--sizes",
        type=bench.positive_int,
        nargs="+",
        metavar="N",
        help=f"array sizes to measure (default: {' '.join(map(str, SIZES))})",
    )
    parser.add_argument(
        "--large",
        action="store_true",
        help=f"also measure {' '.join(map(str, LARGE))} elements (more memory and time)",
    )
    parser.add_argument(
        "--dtypes",
        nargs="+",
        choices=tuning.DTYPES,
        help=f"dtypes to measure (default: {' '.join(tuning.DTYPES)}); the others then run "
        "auto's built-in order",
    )
    bench.add_budget(parser)
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument(
        "--show", action="store_true", help="print the table in force and where it lives"
    )
    shown.add_argument(
        "--clear", action="store_true", help="remove the table: auto runs its built-in order"
    )


def command(args: argparse.Namespace) -> int:
    """Run ``fastdrop tune`` with the options that :func:`add_arguments` defines.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options.

    Returns
    -------
    int
        The exit status.
    """
    if args.show:
        print(show())
        return 0
    if args.clear:
        file = tuning.path()
        print(f"removed {file}" if tuning.clear() else f"no dispatch table at {file}")
        backends.retune()
        return 0
    sizes = sorted({*(args.sizes or SIZES), *(LARGE if args.large else ())})
    dtypes = tuple(args.dtypes or tuning.DTYPES)
    names = candidates()
    seconds = measure(sizes, dtypes, args.budget, names)
    chosen = rules(seconds)
    file = tuning.write(
        chosen,
        threads=fastdrop.get_num_threads(),
        measured=time.strftime("%Y-%m-%d %H:%M"),
        seconds=[
            {"dtype": dtype, "size": n, "seconds": row}
            for dtype, by_size in seconds.items()
            for n, row in by_size.items()
        ],
    )
    backends.retune()
    print(table(seconds, chosen, names))
    print(f"wrote {file}")
    return 0
