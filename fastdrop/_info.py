"""``python -m fastdrop`` / ``fastdrop``: what this install can do, and how fast it is here.

Prints the versions, the backends that load, the thread count, and a quick side-by-side
table. Every row of the table is timed in the same process, interleaved, and reported as
a ratio to a parallel scale-copy ``y = x * s`` of the same array with the same threads:
the memory bandwidth bound that dropout cannot beat.
"""

from __future__ import annotations

import argparse
import platform
import sys

import numpy as np

import fastdrop
from fastdrop import _backends, _bench, _threads
from fastdrop.testing import (
    BOUND,
    REFERENCE_LIMIT,
    best_times,
    bound_kernels,
    family_implementations,
    implementations,
)

P = 0.1
SIZES = (1_000, 1_000_000, 10_000_000)


def _versions() -> list[tuple[str, str]]:
    rows = [("fastdrop", fastdrop.__version__), ("python", platform.python_version())]
    rows.append(("numpy", np.__version__))
    for name in ("numba", "torch", "jax"):
        module = sys.modules.get(name)
        if module is None:
            try:
                module = __import__(name)
            except Exception:
                continue
        rows.append((name, module.__version__))
    return rows


def report() -> str:
    """The environment part of the ``python -m fastdrop`` output."""
    lines = [f"{k:<22}{v}" for k, v in _versions()]
    for name in _backends.NAMES:
        why = _backends.why_unavailable(name) if _backends.load(name) is None else None
        lines.append(f"{'backend ' + name:<22}{'available' if why is None else why}")
    lines.append(f"{'default backend':<22}{fastdrop.get_backend()}")
    lines.append(
        f"{'threads':<22}{fastdrop.get_num_threads()} (of {_threads.cores()} cores; calls "
        f"under {_threads.PARALLEL_MIN} elements run on one)"
    )
    return "\n".join(lines)


def speed_table(
    sizes: tuple[int, ...] = SIZES, budget: float = 2.0, *, family: bool = False
) -> str:
    """Time every implementation at each size (float32, p = 0.1): ns per element and the
    ratio to the scale-copy bound. ``family``: the dropout family's table instead, at
    sizes rounded down to a multiple of 4096."""
    table = family_implementations if family else implementations
    if family:
        sizes = tuple(max(4096, n - n % 4096) for n in sizes)
    lines = [
        f"float32, p = {P}, {fastdrop.get_num_threads()} threads; best of interleaved runs",
        f"{'size':>10}  {'implementation':<28}{'ns/elem':>9}{'x bound':>9}",
    ]
    for r in _bench.run(sizes, (P,), ("float32",), budget, table):
        lines.append(
            f"{r['size']:>10}  {r['implementation']:<28}"
            f"{r['ns_per_element']:>9.3f}{r['ratio_to_bound']:>9.2f}"
        )
    return "\n".join(lines)


def scaling_table(n: int, counts: tuple[int, ...], budget: float = 2.0) -> str:
    """Dropout of ``n`` float32 elements on each backend and the scale-copy, with each
    thread count in ``counts``, timed interleaved: ns per element and the speed-up over
    the same row's first thread count."""
    x = np.random.default_rng(0).standard_normal(n, dtype=np.float32)
    y = np.empty_like(x)
    bound = bound_kernels()
    names = [BOUND] + [f"fastdrop {b}" for b in ("auto", *_backends.available_backends())]
    names = [name for name in names if name != "fastdrop numpy" or n <= REFERENCE_LIMIT]

    def row(name: str, t: int):
        if name == BOUND:
            return lambda: bound.scale(x[None], y[None], 2.0, t)
        backend = name.split()[1]

        def call():
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m fastdrop`` and the ``fastdrop`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        return _bench.main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="fastdrop",
        description=__doc__.splitlines()[0],
        epilog="fastdrop bench --help: the benchmark against PyTorch, JAX and NumPy.",
    )
    parser.add_argument("--no-speed", action="store_true", help="skip the speed table")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=SIZES, metavar="N", help="array sizes to time"
    )
    parser.add_argument(
        "--family", action="store_true", help="time the dropout family instead of dropout"
    )
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        metavar="T",
        help="instead of the speed table, a thread-scaling table at the first of --sizes",
    )
    args = parser.parse_args(argv)
    print(report())
    if args.no_speed:
        return 0
    print()
    if args.threads:
        print(scaling_table(args.sizes[0], tuple(args.threads)))
    else:
        print(speed_table(tuple(args.sizes), family=args.family))
    return 0
