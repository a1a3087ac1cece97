"""How every ratio fastdrop reports is timed: interleaved rounds, summed up per row."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Hashable
from typing import NamedTuple, TypeVar

import numpy as np

Key = TypeVar("Key", bound=Hashable)  # names the rows of round_times and best_times
Clock = Callable[[], float]  # seconds, as time.perf_counter


def round_times(
    rows: dict[Key, Callable[[], object]],
    budget: float = 0.0,
    *,
    number: int = 1,
    clock: Clock = time.perf_counter,
) -> dict[Key, list[float]]:
    """Time per call of each callable, in seconds, in every one of interleaved rounds.

    Every round times ``number`` calls of each callable in turn, so that drifts in clock
    speed, cache state or background load fall on all rows alike: this is how every
    ratio fastdrop reports is measured. Each round takes the rows in a new random order
    (the same orders every run), so that no row always follows the same one: a row right
    after a slow NumPy row ran 2x slower at 1e5 elements, whichever row it was, when
    rounds only rotated. After one warm-up call each, rounds go on for about ``budget``
    seconds, at least 3 and at most 200.

    Parameters
    ----------
    rows : dict
        Name -> zero-argument callable.
    budget : float
        Seconds of rounds, beyond the first 3.
    number : int
        Calls of each callable per round.
    clock : callable
        Returns the time in seconds; every time is a difference of two of its readings.

    Returns
    -------
    dict
        Name -> seconds per call in each round, for every name of ``rows``.
    """
    for fn in rows.values():
        fn()
    times: dict[Key, list[float]] = {name: [] for name in rows}
    deadline = clock() + budget
    rounds = 0
    names = list(rows)
    order = random.Random(0)
    while rounds < 3 or (clock() < deadline and rounds < 200):
        for name in order.sample(names, len(names)):
            fn = rows[name]
            t0 = clock()
            for _ in range(number):
                fn()
            times[name].append((clock() - t0) / number)
        rounds += 1
    return times


def best_times(
    rows: dict[Key, Callable[[], object]],
    budget: float = 0.0,
    *,
    number: int = 1,
    percentile: float = 0.0,
) -> dict[Key, float]:
    """Best time per call of each callable, in seconds, over interleaved rounds.

    The rounds are those of :func:`round_times`; "best" is the round's ``percentile``
    (0, the default: the fastest round).

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
    times = round_times(rows, budget, number=number)
    return {name: float(np.percentile(ts, percentile)) for name, ts in times.items()}


class Summary(NamedTuple):
    """One row's rounds in two numbers, as pyperf reports them.

    Attributes
    ----------
    median : float
        The median round's seconds per call.
    spread : float
        Half the interquartile range of the rounds relative to the median: the middle
        half of the rounds lies within about ± ``spread`` of the median.
    """

    median: float
    spread: float


def summarize(times: list[float]) -> Summary:
    """The median and the spread of one row's rounds.

    Parameters
    ----------
    times : list of float
        Seconds per call in each round, as :func:`round_times` returns them.

    Returns
    -------
    Summary
        Their median and spread.
    """
    q25, median, q75 = np.percentile(times, [25, 50, 75])
    return Summary(float(median), float((q75 - q25) / (2 * median)) if median > 0 else 0.0)
