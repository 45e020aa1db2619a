"""Helpers shared by the voting panels (compare now; triage and burst next): message argument parsing, the
zoomed original, the top of the leaderboard from a pool, the prior's confidence for a header."""

from __future__ import annotations

import io
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import ratings as R
from ..errors import InvalidArgumentError
from ..media.thumbs import LARGE_THUMB_SIZE

if TYPE_CHECKING:
    from ..collection import Collection
    from ..pairing import Pool

__all__ = ["LargeThumbs", "as_int", "prior_confidence", "top_by_ordinal", "zoom_jpeg"]

log = logging.getLogger(__name__)

#: device pixels drawn above this multiple of the cached size ask for the larger thumbnails (512 px drawn on 640+)
UPSCALE_OK = 1.25
#: seconds without a vote before the larger thumbnails are made: a fast run of votes keeps the kernel for itself
QUIET_S = 0.4


def as_int(value: Any, name: str) -> int:
    """``value`` (an int, float or numeric string from a browser message) as an int.

    Raises:
        InvalidArgumentError: anything else (a bool, None, a non-numeric string), naming ``name``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidArgumentError(f"{name}: expected an integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise InvalidArgumentError(f"{name}: expected an integer, got {value!r}") from None


def prior_confidence(report: Any) -> float | None:
    """The learned prior's confidence (0..1, two decimals) for a header, None when no prior was fitted."""
    c = getattr(report, "confidence", None)
    return None if c is None else round(float(c), 2)


def top_by_ordinal(pool: Pool, m: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The pool indices of the best ``m`` images in the leaderboard's order (ordinal ``mu - 3 sigma`` descending,
    then id ascending) and every image's ordinal; O(N) plus a sort of the ties at the cut.

    Returns:
        ``(idx (<= m,) int64 pool indices, best first; ordinal (N,) float64)``.
    """
    ordinal = R.ordinal(pool.mu, pool.sigma)
    n = len(pool)
    m = min(int(m), n)
    if m <= 0:
        return np.zeros(0, dtype=np.int64), ordinal
    cut = np.partition(ordinal, n - m)[n - m]  # everything tied with the m-th best competes
    idx = np.flatnonzero(ordinal >= cut)
    return idx[np.lexsort((pool.ids[idx], -ordinal[idx]))][:m], ordinal


def zoom_jpeg(path: str, width: int, height: int, max_pixels: int) -> tuple[bytes, tuple[int, int],
                                                                                  tuple[int, int]]:
    """The image at ``path`` upright (EXIF orientation applied), fit into ``width`` x ``height`` pixels, as JPEG
    (quality 90).

    Args:
        max_pixels: decompression-bomb limit in pixels (``Settings.max_image_pixels``); Pillow's own, lower limit
            does not apply (see :func:`imagerank.media.decode.decode_image`).

    Returns:
        ``(jpeg bytes, (shown width, shown height), (original width, original height))`` in pixels.

    Raises:
        OSError / ValueError / SyntaxError: unreadable or undecodable file. PIL.Image.DecompressionBombError: more
            than ``max_pixels`` pixels (the message names the limit).
    """
    from PIL import Image

    from ..media import decode_image

    rgb, w, h = decode_image(path, max(width, height), max_pixels)
    rgb.thumbnail((width, height), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=90)
    return buf.getvalue(), rgb.size, (w, h)


class LargeThumbs:
    """Sends images again at the cache's larger size (:data:`~imagerank.media.thumbs.LARGE_THUMB_SIZE`) from a
    background thread, so a panel drawn on a high-density display gets sharp images without a vote ever waiting for
    a decode. Each is sent as an ``images`` message (one id, ``px`` 1024) through ``send(content, buffers)``.

    Args:
        collection: the panel's collection (its thumbnail cache makes the larger files, once per image).
        send: the widget's ``send``; called from the background thread (ipykernel's comms allow it).

    The panel calls :meth:`ask` with the ids it just sent at the small size, :meth:`keep` with the ids still
    queued (others are passed over and sent again if they come back), :meth:`touch` at each vote (the thread
    waits until :data:`QUIET_S` seconds have passed without one, so decodes never compete with a fast run of
    votes) and :meth:`reset` when a new view says ``ready``.
    """

    def __init__(self, collection: Collection, send: Callable[[dict[str, Any], list[bytes]], None]) -> None:
        self.collection = collection
        self._send = send
        self._sent: set[int] = set()
        self._current: frozenset[int] = frozenset()
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._last_vote = 0.0

    def wanted(self, device_px: int) -> bool:
        """True when ``device_px`` (the longest side of a slot in device pixels) is more than the cached size can
        draw without visible upscaling."""
        return int(device_px) > UPSCALE_OK * self.collection.thumbs.size

    def ask(self, ids: Iterable[int]) -> None:
        """Send these ids at the larger size (each once until :meth:`keep` drops it or :meth:`reset`)."""
        ids = [int(i) for i in ids]
        self._current = self._current | frozenset(ids)
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="imagerank-large-thumbs", daemon=True)
            self._thread.start()
        for i in ids:
            if i not in self._sent:
                self._sent.add(i)
                self._queue.put(i)

    def keep(self, ids: Iterable[int]) -> None:
        """Only these ids are still wanted (the rest is skipped if not sent yet, and sent again if asked again)."""
        self._current = frozenset(int(i) for i in ids)
        self._sent &= self._current

    def touch(self) -> None:
        """A vote just happened: make no larger thumbnail for the next :data:`QUIET_S` seconds."""
        self._last_vote = time.monotonic()

    def reset(self) -> None:
        """A new view holds nothing at the larger size."""
        self._sent = set()

    def wait(self, timeout: float = 30.0) -> bool:
        """True once every id asked for so far was sent or passed over; False after ``timeout`` seconds."""
        done = threading.Event()

        def drained() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=drained, daemon=True).start()
        return done.wait(timeout)

    def stop(self) -> None:
        """End the background thread (after what is queued)."""
        if self._thread is not None:
            self._queue.put(None)

    def _loop(self) -> None:
        while True:
            image_id = self._queue.get()
            try:
                if image_id is None:
                    return
                while (wait := QUIET_S - (time.monotonic() - self._last_vote)) > 0:
                    time.sleep(wait)
                if image_id not in self._current:
                    self._sent.discard(image_id)
                    continue
                data = self.collection.thumbs.read_bytes(image_id, size=LARGE_THUMB_SIZE)
                if data is not None:
                    self._send({"type": "images", "ids": [image_id], "mime": "image/jpeg", "px": LARGE_THUMB_SIZE},
                               [data])
            except Exception:  # the smaller thumbnail is on screen already: log why and go on
                log.exception("larger thumbnail of image %s failed", image_id)
            finally:
                self._queue.task_done()
