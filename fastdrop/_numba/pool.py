"""fastdrop's worker threads for the Numba kernels: the counterpart of ``_cy/pool.h``.

``run(task, ntasks, n_threads)`` calls ``task(begin, end)`` over ``[0, ntasks)`` on the
calling thread and up to ``n_threads - 1`` workers. With one thread, or one task, the
caller runs it all and the pool is never touched. The kernels are compiled with
``nogil=True``, so the threads run at once. The tasks are claimed in parts of about a
quarter of a thread's share, each thread taking the next part when it is done with its
last: a worker the system starts late takes fewer parts, and one that has not started
when the parts run out is never waited for.

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

from numba.core.compiler_lock import global_compiler_lock

Task = Callable[[int, int], None]


class _Call:
    """One parallel call: its parts, handed out one at a time, and the workers in it."""

    def __init__(self, task: Task, ntasks: int, part: int) -> None:
        self.task, self.ntasks, self.part = task, ntasks, part
        self.lock = threading.Lock()
        self.idle = threading.Condition(self.lock)  # a worker left
        self.next = 0  # the first task no thread has claimed
        self.over = False  # no worker may join any more
        self.workers = 0  # workers in the call
        self.error: BaseException | None = None

    def claim(self) -> tuple[int, int] | None:
        with self.lock:
            begin = self.next
            if begin >= self.ntasks:
                return None
            self.next = min(begin + self.part, self.ntasks)
            return begin, self.next

    def work(self) -> None:
        """Run claimed parts until none is left; the first error ends the call's parts."""
        try:
            while (part := self.claim()) is not None:
                self.task(*part)
        except BaseException as exc:
            with self.lock:
                self.error = self.error or exc
                self.next = self.ntasks

    def join(self) -> bool:
        """Join as a worker, unless the caller has finished."""
        with self.lock:
            if self.over:
                return False
            self.workers += 1
            return True

    def leave(self) -> None:
        with self.lock:
            self.workers -= 1
            self.idle.notify()

    def close(self) -> None:
        """The caller's end: no part is handed out and no worker joins any more, and those
        in the call finish. An interrupt (Ctrl-C) while waiting is raised only once they
        have: until then they still write into the call's arrays."""
        interrupted: BaseException | None = None
        with self.lock:
            self.over = True
            self.next = self.ntasks
            while self.workers:
                try:
                    self.idle.wait()
                except BaseException as exc:
                    interrupted = interrupted or exc
        if interrupted is not None:
            raise interrupted


class _Pool:
    def __init__(self) -> None:
        self.lock = threading.Lock()  # held by the parallel call in flight
        self.inboxes: list[queue.SimpleQueue] = []  # one per worker: calls to join

    def _work(self, inbox: queue.SimpleQueue) -> None:
        while True:
            call = inbox.get()
            if call.join():
                call.work()
                call.leave()

    def run(self, task: Task, ntasks: int, n_threads: int) -> None:
        threads = min(n_threads, ntasks)
        if threads <= 1:
            if ntasks > 0:
                task(0, ntasks)
            return
        call = _Call(task, ntasks, max(1, ntasks // (4 * threads)))
        with self.lock:
            self._spawn(threads - 1)
            for inbox in self.inboxes[: threads - 1]:
                inbox.put(call)
            try:
                call.work()
            finally:
                call.close()
        if call.error is not None:
            raise call.error

    def _spawn(self, want: int) -> None:
        """Start workers until there are ``want`` of them, or starting one fails (then the
        call runs on those there are, as ``_cy/pool.h`` does)."""
        while len(self.inboxes) < want:
            inbox: queue.SimpleQueue = queue.SimpleQueue()
            name = f"fastdrop-numba-{len(self.inboxes) + 1}"
            try:
                threading.Thread(target=self._work, args=(inbox,), name=name, daemon=True).start()
            except RuntimeError:  # "can't start new thread"
                return
            self.inboxes.append(inbox)

    def workers(self) -> int:
        return len(self.inboxes)


_pool = _Pool()


def _forget_workers() -> None:
    """In a forked child: the workers did not survive the fork; start afresh."""
    global _pool
    _pool = _Pool()


os.register_at_fork(after_in_child=_forget_workers)
# A child forked while another thread compiles would find Numba's compiler lock taken by a
# thread it does not have, and hang at its first compilation: the fork waits for the lock.
os.register_at_fork(
    before=global_compiler_lock.acquire,
    after_in_parent=global_compiler_lock.release,
    after_in_child=global_compiler_lock.release,
)


def run(task: Task, ntasks: int, n_threads: int) -> None:
    """Call ``task(begin, end)`` over ``[0, ntasks)`` on up to ``n_threads`` threads."""
    _pool.run(task, ntasks, n_threads)


def workers() -> int:
    """The worker threads started so far (besides the calling thread)."""
    return _pool.workers()
