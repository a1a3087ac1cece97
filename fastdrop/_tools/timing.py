"""How every ratio fastdrop reports is timed: interleaved rounds, best round."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import TypeVar

import numpy as np

Key = TypeVar("Key", bound=Hashable)  # names the rows of best_times


def best_times(
    rows: dict[Key, Callable[[], object]],
    budget: float = 0.0,
    *,
    number: int = 1,
    percentile: float = 0.0,
) -> dict[Key, float]:
    """Best time per call of each callable, in seconds, over interleaved rounds.

    Every round times ``number`` calls of each callable in turn, so that drifts in clock
    speed, cache state or background load fall on all rows alike: this is how every
    ratio fastdrop reports is measured. Each round starts one row later than the last,
    so that no row always follows the same one (PyTorch's threads, say, spin on the
    cores for a while after its call). After one warm-up call each, rounds go on for
    about ``budget`` seconds, at least 3 and at most 200. "Best" is the round's
    ``percentile`` (0, the default: the fastest round).

    Parameters
    ----------
    rows : dict
        Name -> zero-argument callable.
    budget : float
        Seconds of rounds, beyond the first 3.
    number : int
        Calls of each callable per round.
    percentile : float
        Which round's time is each row's, from 0 (the fastest) to 100.

    Returns
    -------
    dict
        Name -> seconds per call, for every name of ``rows``.
    """
    for fn in rows.values():
        fn()
    times: dict[Key, list[float]] = {name: [] for name in rows}
    deadline = time.perf_counter() + budget
    rounds = 0
    names = list(rows)
    while rounds < 3 or (time.perf_counter() < deadline and rounds < 200):
        k = rounds % len(names)
        for name in names[k:] + names[:k]:
            fn = rows[name]
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            times[name].append((time.perf_counter() - t0) / number)
        rounds += 1
    return {name: float(np.percentile(ts, percentile)) for name, ts in times.items()}
