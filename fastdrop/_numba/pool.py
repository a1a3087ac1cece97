"""fastdrop's worker threads for the Numba kernels: the counterpart of ``_cy/pool.h``.

``run(task, ntasks, n_threads)`` calls ``task(begin, end)`` over ``[0, ntasks)`` split into
``n_threads`` contiguous parts of (nearly) equal size: part 0 on the calling thread, part
``k`` on worker ``k``. With one thread, or one task, the caller runs it all and the pool
is never touched. The kernels are compiled with ``nogil=True``, so the parts run at once.

Numba's own parallel layers are not used: ``workqueue`` aborts the process when two
Python threads run parallel code at once, GNU OpenMP's idle threads spin for milliseconds
after each call (taking the cores from the next BLAS call) and a child forked after one
is stopped, and TBB is an extra install. Here idle workers block on their queue, so
nothing runs between calls, and a forked child starts with no workers: it makes new ones
on its first parallel call. Numba's global settings are left as the user has them.

One parallel call runs at a time; a second one, from another thread, waits for it (each
uses every thread it asked for, so running both at once would only oversubscribe the
cores).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable

Task = Callable[[int, int], None]


class _Pool:
    def __init__(self) -> None:
        self.lock = threading.Lock()  # held by the parallel call in flight
        self.inboxes: list[queue.SimpleQueue] = []  # one per worker: (task, begin, end)
        self.done: queue.SimpleQueue = queue.SimpleQueue()  # None, or what a part raised

    def _work(self, inbox: queue.SimpleQueue) -> None:
        while True:
            task, begin, end = inbox.get()
            try:
                task(begin, end)
            except BaseException as exc:  # handed to the caller, which raises it
                self.done.put(exc)
            else:
                self.done.put(None)

    def run(self, task: Task, ntasks: int, n_threads: int) -> None:
        parts = min(n_threads, ntasks)
        if parts <= 1:
            if ntasks > 0:
                task(0, ntasks)
            return
        with self.lock:
            while len(self.inboxes) < parts - 1:
                inbox: queue.SimpleQueue = queue.SimpleQueue()
                name = f"fastdrop-numba-{len(self.inboxes) + 1}"
                threading.Thread(target=self._work, args=(inbox,), name=name, daemon=True).start()
                self.inboxes.append(inbox)
            for k in range(1, parts):
                self.inboxes[k - 1].put((task, ntasks * k // parts, ntasks * (k + 1) // parts))
            error: BaseException | None = None
            try:
                task(0, ntasks // parts)
            except BaseException as exc:
                error = exc
            for _ in range(parts - 1):  # every part ends before the call returns
                outcome = self.done.get()
                error = error or outcome
            if error is not None:
                raise error

    def workers(self) -> int:
        return len(self.inboxes)


_pool = _Pool()


def _forget_workers() -> None:
    """In a forked child: the workers did not survive the fork; start afresh."""
    global _pool
    _pool = _Pool()


os.register_at_fork(after_in_child=_forget_workers)


def run(task: Task, ntasks: int, n_threads: int) -> None:
    """Call ``task(begin, end)`` over ``[0, ntasks)`` on ``n_threads`` threads."""
    _pool.run(task, ntasks, n_threads)


def workers() -> int:
    """The worker threads started so far (besides the calling thread)."""
    return _pool.workers()
