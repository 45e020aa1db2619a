"""The label panel: auto-pick candidates one at a time beside the subject's current image, labelled good or bad.

Each item is one candidate of :func:`imagerank.autopick.auto_pick` (its stored preview) shown beside the image the
subject has now (the picked winner or fallback, or a note that it has none), with its scores and licence. Keys
(click the panel first; Esc hands the keyboard back to JupyterLab): ``G`` good, ``B`` bad, ``S`` skip, ``U`` back to
the previous candidate. Labels go to ``autopick_candidates`` with their source (``label-panel`` by default) and
train the aesthetic head (:func:`imagerank.autopick.train_head`).

Protocol (browser -> Python): ``{"type": "ready"}``, ``{"type": "label", "cid": id, "label": "good"|"bad"|"skip"}``,
``{"type": "back"}``. Python -> browser: the ``item`` trait (candidate and subject fields, position, total) and a
custom message ``{"type": "images", "cid": id, "has_current": bool}`` with two buffers (current image JPEG or
empty, candidate preview JPEG). Headless use (tests, scripts): :meth:`LabelPanel.handle_message`,
:meth:`LabelPanel.label`, :meth:`LabelPanel.back`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

import anywidget
import traitlets as t

from ..autopick import PickStore
from ..catalog import CatalogLike, as_catalog
from ..errors import ImagerankError, InvalidArgumentError
from .common import Message, MessagePanel, as_int, panel_css, panel_esm, zoom_jpeg

__all__ = ["LabelPanel"]

log = logging.getLogger(__name__)


class LabelPanel(MessagePanel, anywidget.AnyWidget):
    """Label auto-pick candidates good (G) or bad (B), or skip them (S), beside the subject's current image.

    Args:
        col: the collection or catalog holding the auto-pick tables.
        subjects: only these subject names (default every subject with candidates).
        unlabelled_only: leave out candidates already labelled (default True).
        source: stored with each label (default ``label-panel``).

    Attributes:
        items: the queue (dicts of candidate and subject fields), position: the index shown, done: labels given.

    Raises:
        InvalidArgumentError: an empty ``source``.
    """

    _esm = panel_esm("label.js")
    _css = panel_css("label.css")

    panel_name = "label panel"

    panel_id = t.Unicode("").tag(sync=True)
    item = t.Dict().tag(sync=True)
    status = t.Dict().tag(sync=True)

    def __init__(self, col: CatalogLike, subjects: Sequence[str] | None = None, *, unlabelled_only: bool = True,
                 source: str = "label-panel") -> None:
        if not isinstance(source, str) or not source.strip():
            raise InvalidArgumentError(f"source: expected a non-empty string, got {source!r}")
        self.cat = as_catalog(col)
        self.store = PickStore(self.cat)
        self.source = source
        df = self.store.candidates_df()
        df = df[df["status"].isin(["scored", "picked"])]
        if subjects is not None:
            df = df[df["subject"].isin(list(subjects))]
        if unlabelled_only:
            df = df[df["label"].isna()]
        subj = self.store.subjects_df().set_index("id")
        self.items: list[dict[str, Any]] = []
        for r in df.itertuples(index=False):
            s = subj.loc[r.subject_id]
            self.items.append({
                "cid": int(r.id), "subject": str(r.subject), "title": str(r.title), "licence": _str(r.licence),
                "author": _str(r.author), "score": _num(r.score), "aesthetic": _num(r.aesthetic),
                "similarity": _num(r.similarity), "candidate_status": str(r.status), "label": _str(r.label),
                "current_id": None if s.image_id != s.image_id or s.image_id is None else int(s.image_id),
                "subject_status": str(s.status),
            })
        self.position = 0
        self.done: list[tuple[int, str]] = []
        super().__init__(panel_id=uuid.uuid4().hex)
        self.on_msg(lambda _w, content, buffers: self.handle_message(content, buffers))
        self._publish()

    # ------------------------------------------------------------------ headless API
    def label(self, value: str) -> list[Message]:
        """Label the candidate shown ``good`` or ``bad``, or ``skip`` it; shows the next one."""
        cur = self._current()
        return self.handle_message({"type": "label", "cid": cur["cid"] if cur else -1, "label": value})

    def back(self) -> list[Message]:
        """Show the previous candidate again (its label can be changed)."""
        return self.handle_message({"type": "back"})

    def handle_message(self, content: dict[str, Any], buffers: Sequence[Any] | None = None) -> list[Message]:
        """Handle one browser message and return the replies sent. Never raises: bad input becomes a ``status``
        with level ``error``."""
        return self._dispatch(content, {"ready": lambda _m: self._send_images(), "label": self._on_label,
                                        "back": self._on_back})

    # ------------------------------------------------------------------ internals
    def _current(self) -> dict[str, Any] | None:
        return self.items[self.position] if self.position < len(self.items) else None

    def _on_back(self, _m: dict[str, Any]) -> None:
        if self.position == 0:
            raise InvalidArgumentError("back: already at the first candidate")
        self.position -= 1
        self._publish()
        self._send_images()

    def _on_label(self, content: dict[str, Any]) -> None:
        cur = self._current()
        cid = as_int(content.get("cid"), "cid")
        value = content.get("label")
        if value not in ("good", "bad", "skip"):
            raise InvalidArgumentError(f"label: expected good, bad or skip, got {value!r}")
        if cur is None or cid != cur["cid"]:
            raise InvalidArgumentError(f"cid: the candidate shown is {cur and cur['cid']}, got {cid} (stale key)")
        if value != "skip":
            self.store.label(cid, str(value), source=self.source)
            cur["label"] = value
            self.done.append((cid, str(value)))
        self.position += 1
        self._report(f"{cur['title']}: {'skipped' if value == 'skip' else value}")
        self._publish()
        self._send_images()

    def _publish(self) -> None:
        cur = self._current()
        self.item = {**(cur or {}), "position": self.position, "total": len(self.items),
                     "labelled": len(self.done), "finished": cur is None}

    def _send_images(self) -> None:
        cur = self._current()
        if cur is None:
            return
        current = b""
        if cur["current_id"] is not None:
            try:
                path = str(self.cat.images.get(cur["current_id"])["filepath"])
                current = zoom_jpeg(path, 480, 360, int(self.cat.settings.max_image_pixels))[0]
            except (ImagerankError, OSError, ValueError, SyntaxError) as e:
                self._report(f"current image of {cur['subject']!r} unreadable: {e}", "warning")
        preview = self.store.preview(cur["cid"]) or b""
        self._emit({"type": "images", "cid": cur["cid"], "has_current": bool(current)}, [current, preview])



def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _num(v: Any) -> float | None:
    return None if v is None or v != v else round(float(v), 3)
