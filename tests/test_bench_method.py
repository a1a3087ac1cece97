"""How ``fastdrop bench`` sums up and flags its rounds, on a fake clock: no wall-clock
time is asserted on here."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

import numpy as np
import pytest
from stand_ins import numpy_rows

from fastdrop._tools import bench
from fastdrop._tools.timing import round_times, summarize
from fastdrop.testing import BOUND

US = 1e-6
F4 = np.dtype(np.float32)


class FakeClock:
    """A clock that moves only when a row says how long its call took."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def row(self, seconds: Iterable[float]) -> Callable[[], None]:
        """A row whose successive calls take ``seconds``, cycled."""
        durations = itertools.cycle(seconds)

        def call() -> None:
            self.now += next(durations)

        return call


def test_median_and_spread_of_the_rounds():
    clock = FakeClock()
    # After one warm-up call each (here 100 us), 200 rounds (the cap: the budget is never
    # spent); the unstable row alternates 1 and 3 us per call, 2 calls per round.
    rows = {
        "steady": clock.row([100 * US] + [2 * US] * 1000),
        "unsteady": clock.row([100 * US] + [1 * US, 1 * US, 3 * US, 3 * US] * 1000),
    }
    times = round_times(rows, budget=1e9, number=2, clock=clock)
    assert {name: len(ts) for name, ts in times.items()} == {"steady": 200, "unsteady": 200}
    assert summarize(times["steady"]) == pytest.approx((2 * US, 0.0))
    # rounds of 1 and 3 us, a hundred each: median 2, quartiles 1 and 3, spread ±50%
    assert summarize(times["unsteady"]) == pytest.approx((2 * US, 0.5))


def test_the_budget_ends_the_rounds_on_the_clock():
    clock = FakeClock()
    times = round_times({"a": clock.row([1.0]), "b": clock.row([1.0])}, budget=10, clock=clock)
    # each round takes 2 s: 5 rounds spend the 10 s
    assert times == {"a": [1.0] * 5, "b": [1.0] * 5}


def _records(seconds: dict[str, list[float]]) -> list[dict]:
    """``bench.measure``'s records of one case whose rows' calls take ``seconds``, on
    100,000 elements: one call per round."""
    clock = FakeClock()
    rows = {name: clock.row(s) for name, s in seconds.items()}
    return bench.measure(
        (100_000,),
        (0.1,),
        ("float32",),
        1e9,
        lambda x, p, *, peers=True: rows,
        None,
        clock=clock,
    )


def test_an_unstable_row_is_flagged():
    records = _records({BOUND: [1 * US], "steady": [2 * US], "unsteady": [1 * US, 3 * US]})
    by_name = {r["implementation"]: r for r in records}
    assert by_name[BOUND]["ratio_to_bound"] == 1.0
    assert by_name["steady"]["ratio_to_bound"] == pytest.approx(2.0)
    assert by_name["steady"]["ns_per_element"] == pytest.approx(0.02)
    assert by_name["unsteady"]["spread"] == pytest.approx(0.5)
    assert [r["unstable"] for r in records] == [False, False, True]
    assert all(r["case_flags"] == ["unsteady ±50.0%"] for r in records)
    assert bench.flagged(records) == ["! float32 n=100000 p=0.1: unsteady ±50.0%"]
    table = bench.table(records).splitlines()
    assert table[3].endswith("!") and not table[2].rstrip().endswith("!")
    assert table[-1] == "! float32 n=100000 p=0.1: unsteady ±50.0%"


def test_a_steady_case_is_not_flagged():
    records = _records({BOUND: [1 * US], "steady": [2 * US]})
    assert not any(r["unstable"] or r["case_flags"] for r in records)
    assert bench.flagged(records) == []


@pytest.mark.parametrize(("twin_us", "flagged"), [(2.15, False), (1.85, False), (2.3, True)])
def test_rows_that_run_the_same_code_must_agree_within_10_percent(twin_us, flagged):
    twin = bench.same_code("fastdrop auto", F4, 100_000)
    assert twin is not None and twin != "fastdrop auto"
    rows = {BOUND: [1 * US], "fastdrop auto": [2 * US], twin: [twin_us * US]}
    flags = _records(rows)[0]["case_flags"]
    if twin_us < 2:  # auto's backend is the fastest row: auto is 8% slower than it
        assert flags == ["fastdrop auto takes 8% longer than " + twin]
    else:
        assert flags == ([f"fastdrop auto and {twin} differ by 15%"] if flagged else [])
    assert not any(r["unstable"] for r in _records(rows))  # each row is steady


@pytest.mark.parametrize(("other_us", "flagged"), [(2.0, False), (1.92, False), (1.88, True)])
def test_auto_must_be_within_5_percent_of_the_fastest_backend(other_us, flagged):
    twin = bench.same_code("fastdrop auto", F4, 100_000)
    other = next(f"fastdrop {b}" for b in ("numba", "cython") if f"fastdrop {b}" != twin)
    rows = {BOUND: [1 * US], "fastdrop auto": [2 * US], twin: [2 * US], other: [other_us * US]}
    flags = _records({**rows, "numpy idiom": [1 * US]})[0]["case_flags"]  # not a backend
    assert flags == ([f"fastdrop auto takes 6% longer than {other}"] if flagged else [])


def test_only_auto_has_a_same_code_twin():
    assert bench.same_code("fastdrop cython", F4, 64) is None
    assert bench.same_code(BOUND, F4, 64) is None


def test_time_apart_times_the_rows_in_another_process():
    times = bench.time_apart(numpy_rows, "float32", 1000, 0.1, budget=0)
    assert set(times) == {"numpy scale", "numpy sum"}
    assert all(len(ts) >= 3 and all(t > 0 for t in ts) for ts in times.values())
