"""``fastdrop bench``: fastdrop's backends against the installed peers, side by side.

Every case (dtype, size, rate) times the implementations of
:func:`fastdrop._tools.peers.implementations` (the scale-copy bound, fastdrop's backends,
the NumPy idiom) in interleaved rounds, then the peers' (PyTorch and JAX when installed)
in a process of their own on the same array, so that their threads, which spin on the
cores for a while after each call, cannot slow fastdrop's rows. It reports each row's
median ns per element with the spread of its rounds, GB/s (``x`` read and ``y``
written) and the ratio of medians to the scale-copy, and flags the unstable cases. Quick
by default; ``--full`` runs the whole grid of the shared case tables.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import multiprocessing
import platform
import sys
import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

import fastdrop
from fastdrop._engine import backends as _backends
from fastdrop._engine import tuning
from fastdrop._tools import peers
from fastdrop._tools.timing import Clock, Key, round_times, summarize
from fastdrop.testing import BENCH_RATES, BENCH_SIZES, BOUND, DTYPES, make_array

QUICK_SIZES = (10_000, 1_000_000)
QUICK_RATES = (0.1,)
QUICK_DTYPES = ("float32",)
UNSTABLE = 0.10  # a row whose spread is over this is unstable
SAME_CODE = 0.10  # how far apart two rows that run the same code may be
OUT = " out="  # the suffix of the rows that write into a preallocated array
AUTO_SLACK = 0.05  # how much slower than the fastest backend auto may be

Rows = dict[str, Callable[[], object]]
# fastdrop's rows, not auto's: returning a new array, and writing into out=
BACKEND_ROWS = frozenset(f"fastdrop {name}{to}" for name in _backends.NAMES for to in ("", OUT))
# Input, drop rate and thread count -> the peers' rows, as fastdrop._tools.peers.peer_rows.
PeerRows = Callable[[np.ndarray, float, int], Rows]


class Implementations(Protocol):
    """Input and drop rate -> the rows to time on them, as in
    :func:`fastdrop._tools.peers.implementations`."""

    def __call__(self, x: np.ndarray, p: float, *, peers: bool = True) -> Rows: ...


def progress(done: int, total: int, label: str) -> None:
    """Draw a progress bar on stderr: ``done`` of ``total`` steps, the next one ``label``."""
    width = 30
    filled = width * done // total
    bar = "#" * filled + "." * (width - filled)
    end = "\n" if done == total else ""
    print(f"\r[{bar}] {done}/{total} {label:<40}", end=end, file=sys.stderr, flush=True)


def _input(dtype: str, n: int) -> np.ndarray:
    return make_array((n,), np.dtype(dtype).type)


def rounds(
    rows: dict[Key, Callable[[], object]], n: int, budget: float, clock: Clock
) -> dict[Key, list[float]]:
    """:func:`round_times` of ``rows`` on ``n`` elements. Small calls are timed in
    batches, so that the clock's own cost does not count. The inputs hold inf: the
    peers' idioms turn a dropped one into NaN, silently here.

    Parameters
    ----------
    rows : dict
        Name -> zero-argument callable.
    n : int
        Elements each call processes.
    budget : float
        Seconds of rounds, beyond the first 3.
    clock : callable
        The clock, as :func:`round_times` takes it.

    Returns
    -------
    dict
        Name -> seconds per call in each round.
    """
    with np.errstate(invalid="ignore"):
        return round_times(rows, budget, number=max(1, 100_000 // max(n, 1)), clock=clock)


def _time_peers(
    peer_rows: PeerRows, dtype: str, n: int, p: float, budget: float, n_threads: int
) -> dict[str, list[float]]:
    """What :func:`time_apart` runs in the child process."""
    return rounds(peer_rows(_input(dtype, n), p, n_threads), n, budget, time.perf_counter)


def time_apart(
    peer_rows: PeerRows, dtype: str, n: int, p: float, budget: float
) -> dict[str, list[float]]:
    """The rounds of ``peer_rows`` on the bench's input, timed in a new process.

    The process is spawned, not forked, so that it shares no threads with this one, and
    ends before this returns, so that its threads are gone too.

    Parameters
    ----------
    peer_rows : callable
        Input, drop rate, thread count -> the rows to time; a module-level function, so
        that the child process can import it.
    dtype : str
        The input's dtype.
    n : int
        Its size; the child makes the same input as ``make_array((n,), dtype)``.
    p : float
        The drop rate.
    budget : float
        Seconds of rounds, as for :func:`fastdrop._tools.timing.round_times`.

    Returns
    -------
    dict
        Name -> seconds per call in each round.
    """
    context = multiprocessing.get_context("spawn")
    args = (peer_rows, dtype, n, p, budget, fastdrop.get_num_threads())
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(_time_peers, *args).result()


def same_code(name: str, dtype: np.dtype, n: int) -> str | None:
    """The row that runs the same code as row ``name`` on ``n`` elements of ``dtype``:
    the backend's that auto takes there for ``fastdrop auto`` (with ``out=`` for
    ``fastdrop auto out=``), else none.

    Parameters
    ----------
    name : str
        A row name.
    dtype : numpy.dtype
        The case's dtype.
    n : int
        The case's size.

    Returns
    -------
    str or None
        The other row's name.
    """
    if name not in ("fastdrop auto", "fastdrop auto" + OUT):
        return None
    return f"fastdrop {_backends.resolve('auto', dtype, n)[0]}{name[len('fastdrop auto') :]}"


def case_records(
    times: dict[str, list[float]], n: int, dtype: np.dtype, apart: frozenset[str] = frozenset()
) -> list[dict]:
    """One record per row of a case, from the rounds of every row.

    Each row's median and spread (:func:`fastdrop._tools.timing.summarize`) give its ns
    per element, GB/s and ratio to the bound's median. The case is flagged, in every
    record's ``case_flags``, for each row whose spread is over ``UNSTABLE`` (the bound's
    among them: the scale-copy moved between rounds), for each pair of rows that run
    the same code (:func:`same_code`) whose medians are more than ``SAME_CODE`` apart,
    and when ``fastdrop auto``'s median is more than ``AUTO_SLACK`` over that of the
    fastest of fastdrop's backends (its dispatch table, ``fastdrop tune``, is off here).

    Parameters
    ----------
    times : dict
        Row name -> seconds per call in each round, the bound's among them.
    n : int
        Elements of the input.
    dtype : numpy.dtype
        The input's dtype.
    apart : frozenset
        The rows timed in a process of their own.

    Returns
    -------
    list of dict
        The records, in the order of ``times``, without the case's dtype and rate.
    """
    summaries = {name: summarize(ts) for name, ts in times.items()}
    bound = summaries[BOUND].median
    flags = [f"{name} ±{s.spread:.1%}" for name, s in summaries.items() if s.spread > UNSTABLE]
    for name in summaries:
        twin = same_code(name, dtype, n)
        if twin in summaries:
            a, b = sorted((summaries[name].median, summaries[twin].median))
            if b > (1 + SAME_CODE) * a:
                flags.append(f"{name} and {twin} differ by {b / a - 1:.0%}")
    for to in ("", OUT):  # auto against the fastest backend, each writing as auto does
        own = [
            (s.median, name)
            for name, s in summaries.items()
            if name in BACKEND_ROWS and name.endswith(to) and (to or not name.endswith(OUT))
        ]
        auto = summaries.get("fastdrop auto" + to)
        if auto is not None and own:
            fastest, name = min(own)
            if auto.median > (1 + AUTO_SLACK) * fastest:
                flags.append(
                    f"fastdrop auto{to} takes {auto.median / fastest - 1:.0%} longer than {name}"
                )
    return [
        {
            "size": n,
            "implementation": name,
            "seconds": s.median,
            "spread": s.spread,
            "ns_per_element": s.median / n * 1e9,
            "gb_per_s": 2 * n * dtype.itemsize / s.median / 1e9,
            "ratio_to_bound": s.median / bound,
            "unstable": s.spread > UNSTABLE,
            "own_process": name in apart,
            "case_flags": flags,
        }
        for name, s in summaries.items()
    ]


def measure(
    sizes: tuple[int, ...],
    rates: tuple[float, ...],
    dtypes: tuple[str, ...],
    budget: float,
    implementations: Implementations = peers.implementations,
    peer_rows: PeerRows | None = peers.peer_rows,
    *,
    clock: Clock = time.perf_counter,
) -> list[dict]:
    """One record per (case, row) of :func:`case_records`, with the case's dtype and rate.

    Parameters
    ----------
    sizes, rates, dtypes : tuple
        The cases: every combination.
    budget : float
        Seconds of rounds per case, for fastdrop's rows and again for the peers'.
    implementations : callable
        Input, drop rate -> the rows timed here, the bound first; called with
        ``peers=False``.
    peer_rows : callable or None
        The rows timed by :func:`time_apart` when a peer is installed; None for none.
    clock : callable
        The clock of the rows timed here.

    Returns
    -------
    list of dict
        The records.
    """
    apart_rows = peer_rows if peers.installed() else None  # no process for no rows
    cases = [(d, n, p) for d in dtypes for n in sizes for p in rates]
    records = []
    for i, (dtype, n, p) in enumerate(cases):
        progress(i, len(cases), f"{dtype} n={n} p={p}")
        x = _input(dtype, n)
        times = rounds(implementations(x, p, peers=False), n, budget, clock)
        apart = time_apart(apart_rows, dtype, n, p, budget) if apart_rows else {}
        for record in case_records({**times, **apart}, n, x.dtype, frozenset(apart)):
            records.append({"dtype": dtype, "p": p, **record})
    progress(len(cases), len(cases), "done")
    return records


def flagged(records: list[dict]) -> list[str]:
    """One line per flagged case of ``records``: the case and why.

    Parameters
    ----------
    records : list of dict
        As :func:`measure` returns them.

    Returns
    -------
    list of str
        The lines, each starting with ``!``.
    """
    cases = {(r["dtype"], r["size"], r["p"]): r["case_flags"] for r in records if r["case_flags"]}
    return [f"! {d} n={n} p={p}: {'; '.join(why)}" for (d, n, p), why in cases.items()]


def table(records: list[dict]) -> str:
    """The records of :func:`measure` as the text table that ``fastdrop bench`` prints:
    medians, with the spread of the rounds; ``!`` marks an unstable row, ``*`` a row
    timed in a process of its own, and the flagged cases follow the table."""
    lines = [
        f"{'dtype':<8}{'size':>11}{'p':>6}  {'implementation':<20}"
        f"{'ns/elem':>9}{'spread':>8}{'GB/s':>8}{'x bound':>9}"
    ]
    for r in records:
        mark = ("!" if r["unstable"] else " ") + ("*" if r["own_process"] else "")
        lines.append(
            f"{r['dtype']:<8}{r['size']:>11}{r['p']:>6}  {r['implementation']:<20}"
            f"{r['ns_per_element']:>9.3f}{'±' + format(r['spread'], '.1%'):>8}"
            f"{r['gb_per_s']:>8.2f}{r['ratio_to_bound']:>9.2f} {mark}"
        )
    lines.append(
        f"medians of interleaved rounds; ! spread over ±{UNSTABLE:.0%}; "
        "* timed in a process of its own"
    )
    return "\n".join(lines + flagged(records))


def meta() -> dict:
    """What a bench ran on: versions, machine, CPU model, threads and backends.

    Returns
    -------
    dict
        The ``meta`` of ``--json``'s file.
    """
    return {
        **dict(peers.versions()),
        "machine": platform.machine(),
        "cpu": tuning.cpu()[0],
        "threads": fastdrop.get_num_threads(),
        "backends": fastdrop.available_backends(),
    }


def plot(records: list[dict], path: str, about: dict) -> None:
    """Each row's median time as a ratio to the bound's, against size, on log axes: one
    line per implementation, one panel per dtype and rate.

    Parameters
    ----------
    records : list of dict
        As :func:`measure` returns them.
    path : str
        The image file to write.
    about : dict
        :func:`meta`'s, whose threads, CPU and versions the title names.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install matplotlib") from None
    panels = sorted({(r["dtype"], r["p"]) for r in records})
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, (dtype, p) in zip(axes[0], panels, strict=True):
        rows = [r for r in records if r["dtype"] == dtype and r["p"] == p]
        for name in dict.fromkeys(r["implementation"] for r in rows):
            mine = [r for r in rows if r["implementation"] == name]
            ax.plot(
                [r["size"] for r in mine], [r["ratio_to_bound"] for r in mine], "o-", label=name
            )
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="elements",
            ylabel=f"median time / {BOUND}'s",
            title=f"{dtype}, p = {p}",
        )
        ax.legend(fontsize="small")
    names = ("fastdrop", "numpy", "numba", *peers.PEERS)
    versions = ", ".join(f"{k} {about[k]}" for k in names if k in about)
    fig.suptitle(f"{about['threads']} threads on {about['cpu']}\n{versions}", fontsize="small")
    fig.tight_layout()
    fig.savefig(path)


def positive_int(text: str) -> int:
    """A positive integer from the command line: an array size or a thread count.

    Parameters
    ----------
    text : str
        The argument as typed.

    Returns
    -------
    int
        Its value.

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not an integer of at least 1; argparse reports it as a usage error.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def rate(text: str) -> float:
    """A dropout rate from the command line: a number in [0, 1].

    Parameters
    ----------
    text : str
        The argument as typed.

    Returns
    -------
    float
        The rate.

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not a number in [0, 1]; argparse reports it as a usage error.
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate in [0, 1]")
    return value


def seconds(text: str) -> float:
    """A time budget from the command line: a number of seconds, at least 0.

    Parameters
    ----------
    text : str
        The argument as typed.

    Returns
    -------
    float
        The budget in seconds.

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not a number of at least 0; argparse reports it as a usage error.
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def _default(values: tuple[object, ...]) -> str:
    return f"(default: {' '.join(map(str, values))}; --full: the shared case table's)"


def add_budget(parser: argparse.ArgumentParser) -> None:
    """Give ``parser`` the ``--budget`` option of ``fastdrop bench`` and ``fastdrop tune``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        A command's parser.
    """
    parser.add_argument(
        "--budget",
        type=seconds,
        default=0.5,
        metavar="S",
        help="seconds of rounds per case (default: 0.5)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Give ``parser`` the options of ``fastdrop bench``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The ``bench`` command's parser; :func:`command` runs what it parses.
    """
    parser.add_argument(
        "--full", action="store_true", help="the whole grid of sizes, rates and dtypes"
    )
    parser.add_argument(
        "--sizes",
        type=positive_int,
        nargs="+",
        metavar="N",
        help=f"array sizes {_default(QUICK_SIZES)}",
    )
    parser.add_argument(
        "--rates", type=rate, nargs="+", metavar="P", help=f"dropout rates {_default(QUICK_RATES)}"
    )
    parser.add_argument(
        "--dtypes",
        nargs="+",
        choices=[np.dtype(d).name for d in DTYPES],
        help=f"dtypes {_default(QUICK_DTYPES)}",
    )
    add_budget(parser)
    parser.add_argument("--json", metavar="FILE", help="write every record to FILE")
    parser.add_argument(
        "--plot", metavar="FILE.png", help="draw the ratios to the bound against size"
    )


def command(args: argparse.Namespace) -> int:
    """Run ``fastdrop bench`` with the options that :func:`add_arguments` defines.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options.

    Returns
    -------
    int
        The exit status.
    """
    full_dtypes = tuple(np.dtype(d).name for d in DTYPES)
    sizes = tuple(args.sizes or (BENCH_SIZES if args.full else QUICK_SIZES))
    rates = tuple(args.rates or (BENCH_RATES if args.full else QUICK_RATES))
    dtypes = tuple(args.dtypes or (full_dtypes if args.full else QUICK_DTYPES))

    records = measure(sizes, rates, dtypes, args.budget)
    print(table(records))
    about = meta()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": about, "records": records}, f, indent=1)
        print(f"wrote {args.json}")
    if args.plot:
        plot(records, args.plot, about)
        print(f"wrote {args.plot}")
    return 0
