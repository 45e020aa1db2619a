"""Helpers shared by the panels (compare, triage, burst, label, the generation board): the browser-message plumbing
(:class:`MessagePanel`), message argument parsing, the zoomed original, the top of the leaderboard from a pool, the
prior's confidence for a header, the larger thumbnails, and the browser side every panel shares (:func:`panel_esm`,
:func:`panel_css`)."""

from __future__ import annotations

import io
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .. import ratings as R
from ..errors import ImagerankError, InvalidArgumentError
from ..media.thumbs import LARGE_THUMB_SIZE

if TYPE_CHECKING:
    from ..collection import Collection
    from ..pairing import Pool

__all__ = ["LargeThumbs", "Message", "MessagePanel", "as_int", "panel_css", "panel_esm", "prior_confidence",
           "top_by_ordinal", "zoom_jpeg"]

log = logging.getLogger(__name__)

_HERE = Path(__file__).parent


def panel_esm(name: str) -> str:
    """A panel's anywidget ``_esm`` source: ``panel.js`` (the helpers every panel shares: ``el``, ``fmt``,
    ``sharedViews`` and ``takeKeys``, the keyboard contract) followed by the panel's own module ``name``.

    Raises:
        FileNotFoundError: no such file beside this module (a packaging error).
    """
    return (_HERE / "panel.js").read_text(encoding="utf-8") + "\n" + (_HERE / name).read_text(encoding="utf-8")


def panel_css(name: str) -> str:
    """A panel's anywidget ``_css``: ``panel.css`` (the frame, theme colours and focus ring of ``.ir-panel``)
    followed by the panel's own stylesheet ``name``.

    Raises:
        FileNotFoundError: no such file beside this module (a packaging error).
    """
    return (_HERE / "panel.css").read_text(encoding="utf-8") + "\n" + (_HERE / name).read_text(encoding="utf-8")


#: One reply to the browser: (content, [bytes buffers]), as sent through the widget's comm.
Message = tuple[dict[str, Any], list[bytes]]


class MessagePanel:
    """Mixin of the anywidget panels: browser messages dispatched by ``type`` without ever raising, the replies of
    each message recorded (what ``handle_message`` returns to tests and scripts), and a ``status`` trait
    ``{"text", "level", "seq"}`` that the panel's script shows.

    A panel subclasses ``(MessagePanel, anywidget.AnyWidget)``, declares a ``status`` trait, sets
    :attr:`panel_name` (log records) and :attr:`internal_note` (appended to an internal error's status), and calls
    :meth:`_dispatch` from its ``handle_message`` with its handlers in the order its error message lists them.
    """

    panel_name: ClassVar[str] = "panel"
    internal_note: ClassVar[str] = ""
    _outbox: list[Message] | None = None
    _status_seq: int = 0

    def _dispatch(self, content: Any, handlers: Mapping[str, Callable[[dict[str, Any]], None]]) -> list[Message]:
        """Run the handler of ``content["type"]``; returns the replies it sent. Bad input (an
        :class:`~imagerank.errors.ImagerankError`, ValueError, TypeError, KeyError: an unknown type names the
        expected ones) becomes an error status via :meth:`_failed`; any other exception is logged with its
        traceback and reported as an internal error. :meth:`_after_message` runs last, inside the same reply window.
        """
        out: list[Message] = []
        self._outbox = out
        try:
            kind = content.get("type") if isinstance(content, dict) else None
            handler = handlers.get(str(kind))
            if handler is None:
                names = list(handlers)
                expected = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
                raise InvalidArgumentError(f"message type: expected {expected}, got {kind!r}")
            handler(content)
        except (ImagerankError, ValueError, TypeError, KeyError) as e:
            self._failed(f"{type(e).__name__}: {e}")
        except Exception as e:  # a bug must not freeze the panel: say so and keep going
            log.exception("%s: %s failed", self.panel_name, content)
            self._failed(f"internal error ({type(e).__name__}: {e}){self.internal_note}")
        try:
            self._after_message()
        finally:
            self._outbox = None
        return out

    def _after_message(self) -> None:
        """Called after every message, errors included, while its replies are still recorded (default: nothing)."""

    def _failed(self, text: str) -> None:
        """Show a failed message to the user (default: an error status)."""
        self._report(text, "error")

    def _on_custom_msg(self, _widget: Any, content: dict[str, Any], buffers: Sequence[Any]) -> None:
        self.handle_message(content, buffers)

    def handle_message(self, content: dict[str, Any], buffers: Sequence[Any] | None = None) -> list[Message]:
        raise NotImplementedError  # pragma: no cover (every panel defines it)

    def _emit(self, content: dict[str, Any], buffers: Sequence[bytes] | None = None) -> None:
        """Send one reply to the browser and record it for :meth:`_dispatch`'s caller."""
        bufs = list(buffers or [])
        self.send(content, bufs)  # type: ignore[attr-defined]  # anywidget.AnyWidget.send
        if self._outbox is not None:
            self._outbox.append((content, bufs))

    def _report(self, text: str, level: str = "info") -> None:
        """Set the ``status`` trait (a new ``seq`` each time, so the same text twice still shows) and log it."""
        self._status_seq += 1
        self.status = {"text": text, "level": level, "seq": self._status_seq}
        (log.warning if level != "info" else log.info)("%s: %s", self.panel_name, text)


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
    """The learned prior's r for a header (0..1, two decimals): a live prior's held-out correlation with the judge's
    utility (``LivePriorReport.r``), a trained ranker's validated confidence; None when no prior was fitted or the
    live prior is switched off (the header then shows why)."""
    if report is None or getattr(report, "off_reason", None):
        return None
    c = getattr(report, "r", getattr(report, "confidence", None))
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
