"""How many threads a call runs on.

A call runs on one thread when it has fewer elements to produce than its backend's
``PARALLEL_MIN`` (measured per backend: ``python -m fastdrop --crossover``); otherwise on
the count in force for the calling thread, which is the first of:

1. the innermost ``threads(n)`` block of the calling thread (and context);
2. the process default set by ``set_num_threads(n)``, which is also what
   ``threadpoolctl.threadpool_limits`` sets (and restores when its block ends);
3. the environment variable ``FASTDROP_NUM_THREADS``;
4. the environment variable ``OMP_NUM_THREADS`` (its first entry, as OpenMP reads a
   list; a value OpenMP would ignore is ignored here too);
5. the number of cores this process may run on.

The environment is read at the first call that needs it, not at import, so a bad
``FASTDROP_NUM_THREADS`` is reported there, with the variable's name. Results never
depend on the thread count: every element's draw depends on its stream position alone.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator

import numpy as np

from fastdrop._contract.kernels import Kernels

PER_CORE = 8  # the most threads a call runs per core, whatever the setting

_default: int | None = None  # set_num_threads's, or the environment's once read
_most: int | None = None  # PER_CORE times the cores, once counted
_scope: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "fastdrop_threads", default=None
)


def cores() -> int:
    """The number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check(n: object, source: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise TypeError(f"{source} must be a positive integer, got {n!r}")
    if n < 1:
        raise ValueError(f"{source} must be a positive integer, got {n!r}")
    return int(n)


def _from_environment() -> int:
    value = os.environ.get("FASTDROP_NUM_THREADS", "").strip()
    if value:
        try:
            return check(int(value), "FASTDROP_NUM_THREADS")
        except ValueError:
            raise ValueError(
                f"FASTDROP_NUM_THREADS must be a positive integer, got {value!r}"
            ) from None
    first = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if first.isdecimal() and int(first) > 0:
        return int(first)
    return cores()


def default() -> int:
    """The process default: ``set_num_threads``'s count, else the environment's."""
    global _default
    if _default is None:
        _default = _from_environment()
    return _default


def get_num_threads() -> int:
    """The number of threads a large call made now from this thread would use.

    Calls with fewer elements to produce than their backend's threshold (65536 for
    Cython, 262144 for Numba) run on one thread whatever the setting: waking a worker
    would cost them more than it saves.

    Raises
    ------
    ValueError
        When the count comes from a ``FASTDROP_NUM_THREADS`` that is not a positive integer.

    Examples
    --------
    >>> import fastdrop
    >>> with fastdrop.threads(3):
    ...     fastdrop.get_num_threads()
    3
    """
    scoped = _scope.get()
    return default() if scoped is None else scoped


def set_num_threads(n: int) -> None:
    """Set the default number of threads the kernels use, for every thread of the process.

    ``threadpoolctl.threadpool_limits`` sets this too, and restores it when its block
    ends. A count above the number of cores is allowed: the calls then oversubscribe them
    and run slower, with the same results (every element's draw depends on its position
    alone). They run on at most ``PER_CORE`` (8) threads a core.

    Parameters
    ----------
    n : int
        At least 1.

    Examples
    --------
    >>> import fastdrop
    >>> previous = fastdrop.get_num_threads()
    >>> fastdrop.set_num_threads(1)
    >>> fastdrop.get_num_threads()
    1
    >>> fastdrop.set_num_threads(previous)
    """
    global _default
    _default = check(n)


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """Run the calls in a ``with`` block with ``n`` threads (this thread and context only).

    Examples
    --------
    >>> import numpy as np, fastdrop
    >>> with fastdrop.threads(1):
    ...     y = fastdrop.dropout(np.ones(4), 0.5, rng=1)
    """
    token = _scope.set(check(n))
    try:
        yield
    finally:
        _scope.reset(token)


def usable() -> int:
    """The count in force, at most ``PER_CORE`` threads a core: beyond that a call only
    pays for threads that wait (a count of 10**6 would start that many).

    Every small call asks, so the common case (no ``threads`` block, the default read)
    makes no further call: each costs about 0.1 us, a tenth of a 64-element dropout.
    """
    global _most
    scoped = _scope.get()
    if _most is None:
        _most = PER_CORE * cores()
    count = scoped if scoped is not None else _default if _default is not None else default()
    return count if count < _most else _most


def for_call(n: int, kernels: Kernels) -> int:
    """The threads for a call of ``kernels`` that produces ``n`` elements: one below the
    backend's ``PARALLEL_MIN``, else :func:`usable`.

    The setting is read either way, so that a bad ``FASTDROP_NUM_THREADS`` is reported
    at the first call, whatever its size.
    """
    count = usable()
    return 1 if n < kernels.PARALLEL_MIN else count
