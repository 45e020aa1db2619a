"""The compare panel's thumbnails and originals: which images can be shown, sending thumbnails (and the larger ones
for high-density screens), the ``zoom`` and ``broken`` handlers, and skipped images.

:class:`ThumbsMixin` is one of the bases of :class:`~imagerank.widgets.compare.ComparePanel`; its methods are typed
against :class:`_Panel`, the part of the panel they use. Moved unchanged from ``compare.py``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from PIL import Image

from ..errors import ImagerankError, NotFoundError
from .common import LargeThumbs, as_int, zoom_jpeg
from .prefetch import ThumbPrefetch

if TYPE_CHECKING:
    from ..collection import Collection
    from ..pairing import PairQueue, RoundQueue

__all__ = ["ThumbsMixin"]

log = logging.getLogger("imagerank.widgets.compare")  # the panel's records, as before the split

_SKIPPED_KEEP = 20
_ZOOM_MIN, _ZOOM_MAX = 64, 4096


class _Panel(Protocol):
    """What the thumbnail plumbing uses of the compare panel."""

    collection: Collection
    pair_queue: PairQueue
    round_queue: RoundQueue
    thumb_px: int
    top: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    _large: LargeThumbs
    _prefetch: ThumbPrefetch
    _ready: bool
    _thumbs: dict[int, bytes]
    _names: dict[int, str]

    @property
    def large_thumbnails(self) -> bool: ...
    def _fill(self) -> None: ...
    def _publish(self) -> None: ...
    def _report(self, text: str, level: str = "info") -> None: ...
    def _emit(self, content: dict[str, Any], buffers: Sequence[bytes] | None = None) -> None: ...
    def _name(self, image_id: int) -> str: ...
    def _queued_ids(self) -> list[int]: ...
    def _window_ids(self) -> list[int]: ...
    def _usable(self, image_id: int, *, thumbnail: bool = True) -> str | None: ...
    def _thumbnail(self, image_id: int) -> bytes | None: ...
    def _skip(self, image_id: int, reason: str, path: str | None = None) -> None: ...
    def _send_images(self, ids: Iterable[int]) -> list[int]: ...
    def _zoom_jpeg(self, image_id: int, width: int, height: int) -> tuple[bytes, tuple[int, int],
                                                                           tuple[int, int]]: ...


class ThumbsMixin:
    """Thumbnails, larger thumbnails, originals (zoom) and skipped images of the compare panel."""

    @property
    def large_thumbnails(self: _Panel) -> bool:
        """True when the browser draws more device pixels than the cached thumbnails have (``thumb_px``), so the
        queued pairs are sent again at :data:`~imagerank.media.thumbs.LARGE_THUMB_SIZE`."""
        return self._large.wanted(self.thumb_px)

    def wait_thumbnails(self: _Panel, timeout: float = 30.0) -> bool:
        """Wait until the background thread has sent every larger thumbnail asked for so far; True when it has
        (False after ``timeout`` seconds). For tests and scripts: the panel itself never waits."""
        return self._large.wait(timeout)

    def _on_thumb_px(self: _Panel, change: dict[str, Any]) -> None:
        if self.large_thumbnails and self._ready:
            self._large.ask(self._queued_ids())

    def _settle(self: _Panel) -> None:
        """Make sure every pair shown in the browser has its thumbnails (pairs with an image that cannot be shown
        leave the queue, reported, and the queue is refilled), then hand the whole queue to the prefetch."""
        q = self.pair_queue
        for _ in range(q.depth + 1):
            bad = [i for i in self._window_ids() if self._usable(i) is not None]
            # images the worker could not decode (queued ahead, or already out of the queue): report them now
            bad += [i for i in self._prefetch.failed() if i not in bad and self._usable(i) is not None]
            if not bad:
                break
            q.drop_images(bad)
            self._fill()
        self._prefetch.ask(i for i in [*q.image_ids(), *(int(d["id"]) for d in self.top)] if i not in self._thumbs)

    def _queueable(self: _Panel, image_id: int) -> str | None:
        """The queue's check (cheap: the catalog row and the file); the thumbnail is made ahead by the prefetch
        and checked when the pair enters the browser's window (:meth:`_settle`)."""
        return self._usable(image_id, thumbnail=False)

    def _usable(self: _Panel, image_id: int, *, thumbnail: bool = True) -> str | None:
        """None when the image can be shown (thumbnail bytes cached; with ``thumbnail`` False the bytes are not
        needed yet); else the reason it was skipped (a missing file is marked ``missing``, an undecodable one
        ``corrupt``; both are reported)."""
        if image_id in self._thumbs:
            return None
        try:
            row = self.collection.images.get(image_id)
        except NotFoundError:
            return "not in the catalog"
        self._names[int(image_id)] = row["filename"]
        if row["status"] != "active":
            if thumbnail and row["status"] == "corrupt" and self._prefetch.take(image_id)[0]:
                # the prefetch found it undecodable (the thumbnail pass marked it corrupt): report the skip here
                self._prefetch.forget(image_id)
                why = row["status_reason"] or "no thumbnail could be made"
                self._skip(image_id, f"cannot be decoded: {why}", row["filepath"])
                return "cannot be decoded"
            return f"status {row['status']}" + (f" ({row['status_reason']})" if row["status_reason"] else "")
        if _gone(row["filepath"]):
            self.collection.images.set_status(image_id, "missing", "file not found when queued for comparison")
            self._skip(image_id, "file not found", row["filepath"])
            return "file not found"
        if not thumbnail:
            return None
        data = self._thumbnail(image_id)
        if data is None:
            why = self.collection.images.get(image_id)["status_reason"] or "no thumbnail could be made"
            self._skip(image_id, f"cannot be decoded: {why}", row["filepath"])
            return "cannot be decoded"
        self._thumbs[int(image_id)] = data
        return None

    def _thumbnail(self: _Panel, image_id: int) -> bytes | None:
        """The thumbnail's bytes: from the prefetch when its worker made it, else made here."""
        done, data = self._prefetch.take(image_id)
        return data if done else self.collection.thumbnail_bytes(image_id)

    def _skip(self: _Panel, image_id: int, reason: str, path: str | None = None) -> None:
        name = self._name(image_id)
        known: int | None = int(image_id)
        if path is None:
            try:
                path = self.collection.images.get(image_id)["filepath"]
            except NotFoundError:  # a failure row may not point at an image the catalog does not have
                known = None
        self.collection.images.record_failures([(known, path, "compare", reason)])
        self.skipped = [*self.skipped, {"id": int(image_id), "name": name, "reason": reason}][-_SKIPPED_KEEP:]
        self._report(f"skipped {name}: {reason}", "warning")

    def _send_images(self: _Panel, ids: Iterable[int]) -> list[int]:
        """Send thumbnails (binary JPEG buffers) for ``ids``; only once a view has said ``ready``. Returns the ids
        sent."""
        out_ids: list[int] = []
        if not self._ready:
            return out_ids
        bufs = []
        for i in ids:
            data = self._thumbs.get(int(i))
            if data is None:
                data = self._thumbnail(int(i))
                if data is None:
                    continue
                self._thumbs[int(i)] = data
            out_ids.append(int(i))
            bufs.append(data)
        if out_ids:
            self._emit({"type": "images", "ids": out_ids, "mime": "image/jpeg", "px": self.collection.thumbs.size},
                       bufs)
            if self.large_thumbnails:
                queued = set(self._queued_ids())
                self._large.ask(i for i in out_ids if i in queued)
        return out_ids

    def _on_zoom(self: _Panel, m: dict[str, Any]) -> None:
        """Reply ``zoom`` with the original, or ``zoom_error`` with the reason: every zoom request gets one of the
        two (the browser's caption waits for it). The status changes only when an active image's file is gone
        (``missing``); a decode failure, an unreadable file or a refused size leaves the status as it is."""
        raw_id = m.get("id")
        image_id: int | None = None
        try:
            image_id = as_int(raw_id, "id")
            width = min(max(as_int(m.get("width", 1600), "width"), _ZOOM_MIN), _ZOOM_MAX)
            height = min(max(as_int(m.get("height", 1200), "height"), _ZOOM_MIN), _ZOOM_MAX)
            data, size, original = self._zoom_jpeg(image_id, width, height)
        except Exception as e:  # whatever failed, the browser gets its answer
            if not isinstance(e, (OSError, ValueError, SyntaxError, ImagerankError, Image.DecompressionBombError)):
                log.exception("compare panel: zoom of %r failed", raw_id)
            reason = f"{type(e).__name__}: {e}"[:300]
            self._emit({"type": "zoom_error", "id": raw_id if image_id is None else image_id, "reason": reason})
            name = repr(raw_id) if image_id is None else self._name(image_id)
            self._report(f"cannot show {name} larger: {reason}", "warning")
            return
        self._emit(
            {"type": "zoom", "id": image_id, "width": size[0], "height": size[1], "original": list(original),
             "name": self._name(image_id)},
            [data],
        )

    def _on_broken(self: _Panel, m: dict[str, Any]) -> None:
        image_id = as_int(m.get("id"), "id")
        self._thumbs.pop(image_id, None)
        self._prefetch.forget(image_id)
        try:
            row = self.collection.images.get(image_id)
        except NotFoundError:
            self._report(f"the browser reported a broken thumbnail for image {image_id}, which is not in the "
                         "catalog; ignored", "warning")
            return
        if row["status"] == "active" and _gone(row["filepath"]):
            self._usable(image_id)  # marks it missing (a rebuild would call it corrupt) and reports the skip
        else:
            self.collection.build_thumbnails([image_id], progress=False, force=True)
            reason = self._usable(image_id)
            if reason is None:
                self._send_images([image_id])
                return
            self._skip(image_id, f"its thumbnail cannot be shown ({reason})")
        self.pair_queue.drop_images({image_id})
        self.round_queue.drop_images({image_id})
        self._fill()
        self._publish()

    def _zoom_jpeg(self: _Panel, image_id: int, width: int,
                   height: int) -> tuple[bytes, tuple[int, int], tuple[int, int]]:
        """The original of ``image_id`` upright, fit into ``width`` x ``height`` pixels, as JPEG (quality 90).

        Raises:
            NotFoundError: no such image, or it is not active (the message gives its status and reason).
            FileNotFoundError: the file is gone (an active image is then marked ``missing``).
            OSError / ValueError / SyntaxError / PIL.Image.DecompressionBombError: the file cannot be read or
                decoded, or has more pixels than ``Settings.max_image_pixels`` (the status is left as it is).
        """
        row = self.collection.image(image_id)
        path = row["filepath"]
        if row["status"] != "active":
            why = f" ({row['status_reason']})" if row["status_reason"] else ""
            raise NotFoundError(f"image {image_id} is {row['status']}{why}; only active images are shown")
        if _gone(path):
            self.collection.images.set_status(image_id, "missing", "file not found when opened in the compare panel")
            raise FileNotFoundError(f"{path} is gone")
        return zoom_jpeg(path, width, height, self.collection.settings.max_image_pixels)


def _gone(path: str) -> bool:
    """True only when ``path`` certainly does not exist (no such file, or a parent is not a folder); a file that
    cannot be checked (permission, I/O error, a name the file system refuses) is not called gone."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except (OSError, ValueError):
        return False
    return False
