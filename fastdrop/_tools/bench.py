"""``fastdrop bench``: fastdrop's backends against the installed peers, side by side.

Every case (dtype, size, rate) times the implementations of
:func:`fastdrop._tools.peers.implementations` (the scale-copy bound, fastdrop's backends,
the NumPy idiom, PyTorch and JAX when installed) in interleaved rounds, and reports ns per
element, GB/s (``x`` read and ``y`` written) and the ratio to the scale-copy. Quick by
default; ``--full`` runs the whole grid of the shared case tables.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
from collections.abc import Callable

import numpy as np

import fastdrop
from fastdrop._tools import peers
from fastdrop._tools.timing import best_times
from fastdrop.testing import BENCH_RATES, BENCH_SIZES, BOUND, DTYPES, make_array

QUICK_SIZES = (10_000, 1_000_000)
QUICK_RATES = (0.1,)
QUICK_DTYPES = ("float32",)

# Input and drop rate -> the rows to time on them, as in fastdrop._tools.peers.
Implementations = Callable[[np.ndarray, float], dict[str, Callable[[], object]]]


def _progress(done: int, total: int, label: str) -> None:
    width = 30
    filled = width * done // total
    bar = "#" * filled + "." * (width - filled)
    end = "\n" if done == total else ""
    print(f"\r[{bar}] {done}/{total} {label:<40}", end=end, file=sys.stderr, flush=True)


def measure(
    sizes: tuple[int, ...],
    rates: tuple[float, ...],
    dtypes: tuple[str, ...],
    budget: float,
    implementations: Implementations = peers.implementations,
) -> list[dict]:
    """One record per (case, row of ``implementations``): its best time and what follows
    from it."""
    cases = [(d, n, p) for d in dtypes for n in sizes for p in rates]
    records = []
    for i, (dtype, n, p) in enumerate(cases):
        _progress(i, len(cases), f"{dtype} n={n} p={p}")
        x = make_array((n,), np.dtype(dtype).type)
        # Small calls are timed in batches, so that the clock's own cost does not count.
        # The inputs hold inf: the peers' idioms turn a dropped one into NaN, silently here.
        with np.errstate(invalid="ignore"):
            times = best_times(implementations(x, p), budget, number=max(1, 100_000 // max(n, 1)))
        for name, t in times.items():
            records.append(
                {
                    "dtype": dtype,
                    "size": n,
                    "p": p,
                    "implementation": name,
                    "seconds": t,
                    "ns_per_element": t / n * 1e9,
                    "gb_per_s": 2 * x.nbytes / t / 1e9,
                    "ratio_to_bound": t / times[BOUND],
                }
            )
    _progress(len(cases), len(cases), "done")
    return records


def table(records: list[dict]) -> str:
    """The records of :func:`run` as the text table that ``fastdrop bench`` prints."""
    lines = [
        f"{'dtype':<8}{'size':>11}{'p':>6}  {'implementation':<20}"
        f"{'ns/elem':>9}{'GB/s':>8}{'x bound':>9}"
    ]
    for r in records:
        lines.append(
            f"{r['dtype']:<8}{r['size']:>11}{r['p']:>6}  {r['implementation']:<20}"
            f"{r['ns_per_element']:>9.3f}{r['gb_per_s']:>8.2f}{r['ratio_to_bound']:>9.2f}"
        )
    return "\n".join(lines)


def plot(records: list[dict], path: str) -> None:
    """Throughput (GB/s) against size, one line per implementation, one panel per dtype
    and rate."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install matplotlib") from None
    panels = sorted({(r["dtype"], r["p"]) for r in records})
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, (dtype, p) in zip(axes[0], panels, strict=True):
        rows = [r for r in records if r["dtype"] == dtype and r["p"] == p]
        for name in dict.fromkeys(r["implementation"] for r in rows):
            mine = [r for r in rows if r["implementation"] == name]
            ax.plot([r["size"] for r in mine], [r["gb_per_s"] for r in mine], "o-", label=name)
        ax.set(
            xscale="log", xlabel="elements", ylabel="GB/s (read + write)", title=f"{dtype}, p = {p}"
        )
        ax.legend(fontsize="small")
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
    parser.add_argument(
        "--budget",
        type=seconds,
        default=0.5,
        metavar="S",
        help="seconds of rounds per case (default: 0.5)",
    )
    parser.add_argument("--json", metavar="FILE", help="write every record to FILE")
    parser.add_argument("--plot", metavar="FILE.png", help="draw throughput against size")


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
    if args.json:
        meta = {
            "fastdrop": fastdrop.__version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "machine": platform.machine(),
            "threads": fastdrop.get_num_threads(),
            "backends": fastdrop.available_backends(),
        }
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "records": records}, f, indent=1)
        print(f"wrote {args.json}")
    if args.plot:
        plot(records, args.plot)
        print(f"wrote {args.plot}")
    return 0
