"""Thumbnail prefetch for the voting panels: thumbnails of the pairs queued ahead are made on a background thread.

A panel keeps more pairs queued in Python than it shows the browser (the look-ahead, :data:`AHEAD_PAIRS` pairs).
As soon as pairs enter the queue it hands their image ids, front first, to :meth:`ThumbPrefetch.ask`; a daemon
thread makes each thumbnail (``make(image_id)``: decode, thumbnail file, catalog row, i.e.
:meth:`Collection.thumbnail_bytes`) and keeps the JPEG bytes. When a pair moves into the shown window (a vote
advanced the queue) the panel takes its bytes with :meth:`ThumbPrefetch.take`, which never decodes on the
caller's thread when the worker got there first, so the vote's reply is cheap.

Failures: ``make`` returns None for an image that cannot be decoded (the thumbnail pass has then marked it
``corrupt`` and recorded the failure); :meth:`take` hands that None to the panel, whose own check reports the skip
and drops the pair (the recorded-failure path). An exception inside ``make`` is logged and the image is left to the
caller (``take`` answers "not done", the panel makes it itself and sees the error where it can report it), so the
worker never dies and a vote never waits for it longer than one thumbnail in flight.

Measured by ``benchmarks/bench_compare_kernel.py`` (100,000 images, thumbnails made on demand, 40 votes at four a
second): 0 thumbnails decoded on the kernel's thread (80 before), and with thumbnail rows written as derived-only
commits (no pool reload) a vote's kernel time fell from 427 ms to 10 ms median.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

__all__ = ["AHEAD_PAIRS", "ThumbPrefetch"]

log = logging.getLogger(__name__)

#: Pairs a panel keeps queued in Python beyond those shown in the browser, so their thumbnails are made ahead
#: (~3 s of voting at 4 keys/s). With the browser's 8 queued pairs the prefetch window is 20 pairs.
AHEAD_PAIRS = 12
#: Thumbnails kept beyond the ids last asked for (pairs pushed out of the window may come back with an undo).
_KEEP_EXTRA = 64


class ThumbPrefetch:
    """Makes thumbnails of the ids asked for on a background thread, front first, and keeps their bytes.

    Args:
        make: ``make(image_id) -> JPEG bytes | None`` (None: the image cannot be shown; the failure is recorded by
            ``make``). Called on the worker thread; must be thread-safe (the catalog's database is).
        name: the worker thread's name.

    Thread-safety: every method may be called from any thread; the worker is started on the first :meth:`ask`.
    """

    def __init__(self, make: Callable[[int], bytes | None], *, name: str = "imagerank-thumb-prefetch") -> None:
        self._make = make
        self._name = name
        self._cv = threading.Condition()
        self._wanted: list[int] = []  # ids to make, front first
        self._done: dict[int, bytes | None] = {}  # id -> bytes, or None when it cannot be shown
        self._busy: int | None = None  # the id being made now
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._paused = 0  # > 0 while the caller handles a message: the worker starts no new thumbnail
        #: Thumbnails made by the worker (for tests and benchmarks).
        self.made = 0

    # ------------------------------------------------------------------ caller side
    def ask(self, ids: Iterable[int]) -> None:
        """Make thumbnails for ``ids`` (front first), replacing the earlier request: ids no longer asked for are
        not made (those made are kept a while, in case they come back)."""
        order = list(dict.fromkeys(int(i) for i in ids))
        with self._cv:
            if self._stopped:
                return
            self._wanted = [i for i in order if i not in self._done]
            keep = set(order)
            if len(self._done) > len(keep) + _KEEP_EXTRA:
                for i in [i for i in self._done if i not in keep][: len(self._done) - len(keep) - _KEEP_EXTRA]:
                    del self._done[i]
            if self._wanted and self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._cv.notify_all()

    def take(self, image_id: int, timeout: float = 30.0) -> tuple[bool, bytes | None]:
        """The prefetched thumbnail of ``image_id``: ``(True, bytes)``, or ``(True, None)`` when it cannot be shown
        (the failure was recorded), or ``(False, None)`` when the worker has not made it (the caller makes it; the
        worker will not). Waits only while the worker is making this very id (at most ``timeout`` seconds)."""
        image_id = int(image_id)
        with self._cv:
            self._cv.wait_for(lambda: self._busy != image_id, timeout)
            if image_id in self._done:
                return True, self._done[image_id]
            if image_id in self._wanted:
                self._wanted.remove(image_id)
            return False, None

    @contextmanager
    def paused(self) -> Iterator[None]:
        """While inside, the worker starts no new thumbnail (one in flight finishes): the kernel's thread handling
        a vote gets the CPU and the database to itself. Not a priority change: a thread waiting in :meth:`take`
        never waits on a deprioritised worker."""
        with self._cv:
            self._paused += 1
        try:
            yield
        finally:
            with self._cv:
                self._paused -= 1
                self._cv.notify_all()

    def ready(self, image_id: int) -> bool:
        """Whether the worker has made (or given up on) ``image_id``."""
        with self._cv:
            return int(image_id) in self._done

    def failed(self) -> set[int]:
        """Ids the worker found cannot be shown (``make`` returned None), until :meth:`forget`."""
        with self._cv:
            return {i for i, data in self._done.items() if data is None}

    def forget(self, image_id: int, timeout: float = 30.0) -> None:
        """Drop what is kept for ``image_id`` and do not make it (its thumbnail is rebuilt elsewhere); waits while
        the worker is making this very id (at most ``timeout`` seconds), so nothing stale lands after."""
        image_id = int(image_id)
        with self._cv:
            self._cv.wait_for(lambda: self._busy != image_id, timeout)
            self._done.pop(image_id, None)
            if image_id in self._wanted:
                self._wanted.remove(image_id)

    def wait(self, timeout: float = 30.0) -> bool:
        """True once every id asked for is made (or given up on); False after ``timeout`` seconds. For tests and
        scripts: a panel never waits for the worker."""
        with self._cv:
            return self._cv.wait_for(lambda: not self._wanted and self._busy is None, timeout)

    def stop(self) -> None:
        """End the worker after the thumbnail in flight; later :meth:`ask` calls do nothing."""
        with self._cv:
            self._stopped = True
            self._wanted = []
            self._cv.notify_all()

    # ------------------------------------------------------------------ worker
    def _loop(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._stopped or (bool(self._wanted) and not self._paused))
                if self._stopped:
                    self._busy = None
                    self._cv.notify_all()
                    return
                image_id = self._wanted.pop(0)
                self._busy = image_id
            made = True
            data: bytes | None = None
            try:
                data = self._make(image_id)
            except Exception:  # the caller makes it again and reports what failed; the worker goes on
                log.exception("thumbnail prefetch of image %s failed", image_id)
                made = False
            with self._cv:
                if made:
                    self._done[image_id] = data
                    self.made += 1
                self._busy = None
                self._cv.notify_all()
