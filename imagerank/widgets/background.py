"""Work a panel does off the kernel's message path: one job at a time on a daemon thread, the latest request wins.

A panel's figure that takes long to compute (the compare panel's top-k stability: posterior samples, 0.2–1 s at
100,000 images) must not sit inside the handler of a vote, whose reply the browser waits for. The panel snapshots
the inputs on its own thread (cheap array copies), hands a closure to :meth:`LatestJob.ask` and returns; a daemon
thread runs it and hands the result to ``done(seq, result)``. A request made while one runs replaces any request
still waiting (only the newest inputs matter), so at most one job runs and one waits, whatever the voting pace.

Handing the result back to the widget: ipywidgets and traitlets are not thread-safe (a trait set from another
thread can land inside the kernel thread's ``hold_sync`` or ``hold_trait_notifications`` while a browser update is
applied, and be sent, merged or rolled back with it). :func:`kernel_call_soon` gives the running kernel's main
IO loop's ``add_callback`` (tornado documents it as safe to call from any thread): the panel schedules the trait
update there, so it runs on the kernel's own thread between two messages, never inside one. Without a kernel
(tests, scripts) nothing is displayed and the panel takes the result at its next message or when asked to wait.

Pattern: :class:`~imagerank.widgets.prefetch.ThumbPrefetch` (one condition variable, a worker started on the first
request, ``paused()`` while the caller handles a message, ``wait`` for tests, ``stop`` at close).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

__all__ = ["LatestJob", "kernel_call_soon"]

log = logging.getLogger(__name__)

R = TypeVar("R")


def kernel_call_soon() -> Callable[[Callable[[], None]], None] | None:
    """``add_callback`` of the running IPython kernel's main IO loop (the thread that handles comm messages), or
    None when this process is no kernel (tests, scripts) or ipykernel is not installed. The returned function may be
    called from any thread; the callback then runs on the kernel's thread between two messages."""
    try:
        from ipykernel.kernelbase import Kernel
    except ImportError:  # pragma: no cover (ipykernel comes with JupyterLab; a bare install has no kernel)
        return None
    if not Kernel.initialized():
        return None
    loop = getattr(Kernel.instance(), "io_loop", None)
    add = getattr(loop, "add_callback", None)
    return add if callable(add) else None


class LatestJob(Generic[R]):
    """Runs jobs on one daemon thread, one at a time; a job asked for while another waits replaces it.

    Args:
        done: ``done(seq, result)``, called on the worker thread after each job that returned (``seq`` is what
            :meth:`ask` returned for it, increasing). A job that raises is logged and reported to nobody (the
            panel keeps its last figure).
        name: the worker thread's name.

    Thread-safety: every method may be called from any thread; the worker is started on the first :meth:`ask`.
    """

    def __init__(self, done: Callable[[int, R], None], *, name: str = "imagerank-background") -> None:
        self._done = done
        self._name = name
        self._cv = threading.Condition()
        self._job: tuple[int, Callable[[], R]] | None = None  # the job waiting to run (the newest asked for)
        self._busy = False  # a job is running now
        self._seq = 0
        self._paused = 0  # > 0 while the caller handles a message: no job starts
        self._stopped = False
        self._thread: threading.Thread | None = None
        #: Jobs run to the end (for tests and benchmarks).
        self.runs = 0

    def ask(self, job: Callable[[], R]) -> int:
        """Run ``job()`` on the worker (after the job in flight, if any), replacing a job still waiting. Returns the
        job's sequence number (0 after :meth:`stop`: nothing runs)."""
        with self._cv:
            if self._stopped:
                return 0
            self._seq += 1
            self._job = (self._seq, job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._cv.notify_all()
            return self._seq

    @property
    def idle(self) -> bool:
        """True when no job runs or waits."""
        with self._cv:
            return self._job is None and not self._busy

    @contextmanager
    def paused(self) -> Iterator[None]:
        """While inside, no job starts (one in flight finishes): the kernel's thread handling a vote gets the CPU."""
        with self._cv:
            self._paused += 1
        try:
            yield
        finally:
            with self._cv:
                self._paused -= 1
                self._cv.notify_all()

    def wait(self, timeout: float = 30.0) -> bool:
        """True once no job runs or waits (the last one's ``done`` has returned, or :meth:`stop` dropped it); False
        after ``timeout`` seconds. For tests and scripts: a panel never waits for the worker."""
        with self._cv:
            return self._cv.wait_for(lambda: self._job is None and not self._busy, timeout)

    def stop(self) -> None:
        """Drop a waiting job and end the worker after the job in flight (whose result is then not handed on); later
        :meth:`ask` calls do nothing. Returns at once (:meth:`join` waits for the thread)."""
        with self._cv:
            self._stopped = True
            self._job = None
            self._cv.notify_all()

    def join(self, timeout: float = 30.0) -> bool:
        """After :meth:`stop`: wait up to ``timeout`` seconds for the worker thread to end; True when it has (or
        never started)."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        return not self.alive

    @property
    def alive(self) -> bool:
        """Whether the worker thread is running."""
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ worker
    def _loop(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._stopped or (self._job is not None and not self._paused))
                if self._stopped or self._job is None:
                    return
                (seq, job), self._job = self._job, None
                self._busy = True
            try:
                result = job()
                with self._cv:
                    stopped = self._stopped
                    self.runs += 1
                if not stopped:
                    self._done(seq, result)
            except Exception:  # the panel keeps its last figure; the worker goes on
                log.exception("%s: background job failed", self._name)
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()
