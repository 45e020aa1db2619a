"""The burst panel: refine a cull's best-of-burst picks with the keyboard (an anywidget; ``burst.js`` and
``burst.css`` beside this file).

Each group (:func:`imagerank.cull.refine.burst_groups`: a near-duplicate cluster of the cull, at most four
frames, the cull's pick among them) shows its frames side by side, each with a 100 % crop under it: the same
spot in every frame, the sharpest region (the IR's ``sharp_x``/``sharp_y``/``sharp_w``/``sharp_h``) of the
group's sharpest frame, so the crops compare focus and detail directly. Keys: 1–4 mark or unmark a keeper, Enter
records the marked keepers (with none marked, the cull's pick), S skips the group, ← / → move between groups,
U undoes the last recorded choice, Z shows or hides the crops, Esc gives the keys back to JupyterLab.

A choice is one N-way match in the workspace's vote log (``VoteLog.record``, source ``burst``): the keepers rank
0, the other frames shown rank 1, with their screen positions and the time to decide; undo is ``VoteLog.undo`` of
that match, so replay and ``doctor`` see exactly what the panel did. The reranker learns from these matches
(:func:`imagerank.training.burst.train_burst_reranker`).

Protocol. browser → Python (``type``): ``ready`` (a view listens: Python sends the images of the current and
next groups), ``pick`` gid, keepers (image ids), ms; ``skip`` gid; ``goto`` position; ``undo``; ``broken`` id.
Python → browser: ``images`` ids, kinds (``view`` | ``zoom``) + one JPEG buffer each; ``undone`` gid (None when
there was nothing to undo). State is in synced traits (``groups``, ``position``, ``done``, ``header``,
``status``, ``can_undo``). :meth:`BurstPanel.handle_message` is the whole Python side: tests call it with
message dicts and read the replies.
"""

from __future__ import annotations

import io
import logging
import os
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anywidget
import pandas as pd
import traitlets as t
from PIL import Image

from ..cull.refine import BurstGroup, burst_groups, ir_image_ids
from ..errors import InvalidArgumentError, NotFoundError
from .common import Message, MessagePanel, as_int, panel_css, panel_esm

if TYPE_CHECKING:
    from ..collection import Collection

__all__ = ["BURST_SOURCE", "BurstPanel", "frame_images"]

log = logging.getLogger(__name__)
#: The match source of the panel's choices (what the reranker learns from).
BURST_SOURCE = "burst"
_AHEAD = 2  # groups after the current one whose images are sent ahead


def _f(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def frame_images(path: str, sharp: Sequence[float | None], view_size: int, zoom_px: int,
                 max_pixels: int) -> tuple[bytes, bytes]:
    """The two JPEGs of one frame: the whole frame fit into ``view_size`` pixels, and a ``zoom_px`` square at
    100 % (one image pixel per screen pixel) centred on the sharpest region ``sharp`` = (x, y, w, h) in 0–1 of
    the width / height (the frame's centre when unknown). A camera RAW file shows its embedded preview
    (:func:`imagerank.cull.preview.find_preview`), so 100 % is of the preview.

    Raises:
        OSError / ValueError / SyntaxError / PIL.Image.DecompressionBombError: the file cannot be read or decoded
            (or has no usable preview).
    """
    from ..cull.ir import RAW_EXTENSIONS
    from ..media import decode_image

    if os.path.splitext(path)[1].lower() in RAW_EXTENSIONS:
        from PIL import ImageOps

        from ..cull.preview import find_preview

        with open(path, "rb") as fh:
            p = find_preview(path, fh.read())
        if p.data:
            with Image.open(io.BytesIO(p.data)) as im:
                rgb = (ImageOps.exif_transpose(im) or im).convert("RGB")
        elif p.image is not None:
            rgb = p.image.convert("RGB")
        else:
            raise OSError(f"{os.path.basename(path)}: no usable embedded preview ({'; '.join(p.tried)})")
    else:
        rgb, _, _ = decode_image(path, 1 << 30, max_pixels)  # full size: the crop is at 100 %
    w, h = rgb.size
    x, y, sw, sh = (v if v is not None else d for v, d in zip(sharp, (0.375, 0.375, 0.25, 0.25)))
    cx, cy = (float(x) + float(sw) / 2) * w, (float(y) + float(sh) / 2) * h
    side = min(int(zoom_px), w, h)
    left = int(min(max(cx - side / 2, 0), w - side))
    top = int(min(max(cy - side / 2, 0), h - side))
    crop = rgb.crop((left, top, left + side, top + side))
    view = rgb.copy()
    view.thumbnail((int(view_size), int(view_size)), Image.Resampling.LANCZOS)
    out = []
    for im in (view, crop):
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out[0], out[1]


class BurstPanel(MessagePanel, anywidget.AnyWidget):
    """Frames of each near-duplicate group side by side with 100 % crops; keys pick the keepers (see the module
    docstring).

    Args:
        collection: the open :class:`~imagerank.collection.Collection` whose vote log receives the choices.
        ir: the cull's IR table (:func:`imagerank.cull.cull`) of the folder ``root``.
        root: the folder the cull read.
        max_candidates: frames shown per group, 2..4 (the best by technical score; the cull's pick always).
        view_size: longest side of each frame in the browser, pixels (160..2048). Default 720.
        zoom_px: side of the 100 % crop, pixels (64..1024). Default 320.
        add: add files the workspace does not list yet to its catalog (so every frame can be recorded).
        voter: name stored with each match (default: the session's voter).

    Raises:
        InvalidArgumentError: ``ir`` is not an IR table, or an argument out of range.
    """

    _esm = panel_esm("burst.js")
    _css = panel_css("burst.css")

    panel_name = "burst panel"
    internal_note = "; the vote log is intact"

    panel_id = t.Unicode("").tag(sync=True)
    groups = t.List(t.Dict()).tag(sync=True)
    position = t.Int(0).tag(sync=True)
    done = t.Dict().tag(sync=True)
    header = t.Dict().tag(sync=True)
    status = t.Dict().tag(sync=True)
    can_undo = t.Int(0).tag(sync=True)
    show_zoom = t.Bool(True).tag(sync=True)

    def __init__(self, collection: Collection, ir: pd.DataFrame, root: str | os.PathLike[str], *,
                 max_candidates: int = 4, view_size: int = 720, zoom_px: int = 320, add: bool = True,
                 voter: str | None = None) -> None:
        if not 160 <= as_int(view_size, "view_size") <= 2048:
            raise InvalidArgumentError(f"view_size: expected 160..2048 pixels, got {view_size!r}")
        if not 64 <= as_int(zoom_px, "zoom_px") <= 1024:
            raise InvalidArgumentError(f"zoom_px: expected 64..1024 pixels, got {zoom_px!r}")
        if voter is not None and not isinstance(voter, str):
            raise InvalidArgumentError(f"voter: expected a name or None, got {voter!r}")
        self.collection = collection
        self.ir = ir
        self.root = os.path.abspath(os.fspath(root))
        self._bursts: list[BurstGroup] = burst_groups(ir, max_candidates=max_candidates)
        self.image_ids = ir_image_ids(collection, ir, self.root, add=add)
        self.view_size, self.zoom_px, self.voter = int(view_size), int(zoom_px), voter
        self._ready = False
        self._sent: set[int] = set()
        self._broken: set[int] = set()
        self._history: list[tuple[str, int]] = []  # (gid, match id), newest last
        super().__init__(panel_id=uuid.uuid4().hex, groups=self._group_states())
        self.on_msg(self._on_custom_msg)
        self._publish()

    # ------------------------------------------------------------------ public
    @property
    def picks(self) -> pd.DataFrame:
        """The choices recorded in this panel: one row per group with ``gid``, ``cluster_id``, ``match_id``,
        ``keepers`` (image ids) and ``keeper_paths`` (IR paths)."""
        by_id = {g["gid"]: g for g in self.groups}
        rows = []
        for gid, d in self.done.items():
            g = by_id.get(gid)
            paths = [it["path"] for it in (g["items"] if g else []) if it["id"] in d["keepers"]]
            rows.append({"gid": gid, "cluster_id": g["cluster_id"] if g else None, "match_id": d["match"],
                         "keepers": list(d["keepers"]), "keeper_paths": paths})
        return pd.DataFrame(rows, columns=["gid", "cluster_id", "match_id", "keepers", "keeper_paths"])

    def handle_message(self, content: dict[str, Any], buffers: Sequence[Any] | None = None) -> list[Message]:
        """Handle one message from the browser (see the module docstring) and return the replies it sent.

        Never raises: bad input and failures become a ``status`` with level ``error`` (and a log record).
        """
        return self._dispatch(content, {"ready": self._on_ready, "pick": self._on_pick, "skip": self._on_skip,
                                        "goto": self._on_goto, "undo": self._on_undo, "broken": self._on_broken})

    # ------------------------------------------------------------------ plumbing

    def _group_states(self) -> list[dict[str, Any]]:
        ir, ids = self.ir, self.image_ids
        out = []
        for g in self._bursts:
            # one region for every frame of the group, so the crops compare the same spot: the sharpest region
            # of the group's sharpest frame (highest Laplacian variance)
            lap = [_f(ir.iloc[r].get("laplacian_var")) for r in g.rows]
            sharpness = [-1.0 if v is None else v for v in lap]
            ref = g.rows[max(range(len(g.rows)), key=sharpness.__getitem__)]
            region = [_f(ir.iloc[ref].get(c)) for c in ("sharp_x", "sharp_y", "sharp_w", "sharp_h")]
            items = []
            for r in g.rows:
                row = ir.iloc[r]
                iid = ids.iloc[r]
                items.append({
                    "id": None if pd.isna(iid) else int(iid), "row": int(r), "path": str(row["path"]),
                    "name": os.path.basename(str(row["path"])), "score": _f(row["score"]),
                    "learned": _f(row.get("learned_score")), "pick": r == g.pick,
                    "bucket": None if pd.isna(row.get("bucket")) else str(row["bucket"]),
                    "sharpness": _f(row.get("laplacian_var")),
                    "sharp": region,
                })
            out.append({"gid": f"c{g.cluster_id}", "cluster_id": g.cluster_id, "burst_id": g.burst_id,
                        "size": g.size, "items": items, "zoom_from": str(ir.iloc[ref]["path"])})
        return out

    def _header(self) -> dict[str, Any]:
        return {"groups": len(self.groups), "done": len(self.done), "position": self.position,
                "session": self.collection.session.id}

    def _publish(self) -> None:
        with self.hold_sync():
            self.header = self._header()
            self.can_undo = len(self._history)
        self._send_upcoming()

    # ------------------------------------------------------------------ images
    def _send_upcoming(self) -> None:
        if not self._ready or not self.groups:
            return
        p = min(max(self.position, 0), len(self.groups) - 1)
        wanted = [it for g in self.groups[p: p + 1 + _AHEAD] for it in g["items"] if it["id"] is not None]
        ids, kinds, bufs = [], [], []
        for it in wanted:
            if it["id"] in self._sent:
                continue
            try:
                view, zoom = frame_images(os.path.join(self.root, *it["path"].split("/")), it["sharp"],
                                          self.view_size, self.zoom_px, self.collection.settings.max_image_pixels)
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
                self._report(f"cannot show {it['name']}: {type(e).__name__}: {e}"[:300], "warning")
                continue
            self._sent.add(it["id"])
            ids += [it["id"], it["id"]]
            kinds += ["view", "zoom"]
            bufs += [view, zoom]
        if ids:
            self._emit({"type": "images", "ids": ids, "kinds": kinds, "mime": "image/jpeg"}, bufs)

    def _group(self, gid: Any) -> tuple[int, dict[str, Any]]:
        for k, g in enumerate(self.groups):
            if g["gid"] == gid:
                return k, g
        raise InvalidArgumentError(f"gid: expected one of this panel's groups, got {gid!r}")

    def _next_open(self, start: int) -> int:
        n = len(self.groups)
        for k in list(range(start, n)) + list(range(0, start)):
            if self.groups[k]["gid"] not in self.done:
                return k
        return min(start, max(n - 1, 0))

    # ------------------------------------------------------------------ handlers
    def _on_ready(self, m: dict[str, Any]) -> None:
        self._ready = True
        self._sent = set()
        self._send_upcoming()
        if not self.groups:
            self._report("no bursts to refine: the cull found no near-duplicate frames", "warning")

    def _on_pick(self, m: dict[str, Any]) -> None:
        k, g = self._group(m.get("gid"))
        raw = m.get("keepers")
        if not isinstance(raw, list) or not raw:
            raise InvalidArgumentError(f"keepers: expected a non-empty list of image ids, got {raw!r}")
        keepers = {as_int(i, "keepers") for i in raw}
        shown = [it["id"] for it in g["items"]]
        if None in shown:
            raise NotFoundError(f"group {g['gid']}: a frame is not in the workspace's catalog (open the panel with "
                                "add=True to add it); nothing was recorded")
        unknown = keepers - set(shown)
        if unknown:
            raise InvalidArgumentError(f"keepers: expected ids shown in group {g['gid']} ({shown}), got "
                                       f"{sorted(unknown)}")
        if g["gid"] in self.done:
            self._report(f"group {k + 1} was already recorded (in another view); undo it first to change it",
                         "warning")
            return
        ms = m.get("ms")
        ms = float(ms) if isinstance(ms, (int, float)) and not isinstance(ms, bool) and ms >= 0 else None
        match = self.collection.votes.record(shown, [0 if i in keepers else 1 for i in shown],
                                             positions=list(range(len(shown))), decision_ms=ms, voter=self.voter,
                                             source=BURST_SOURCE)
        self._history.append((g["gid"], match.id))
        self.done = {**self.done, g["gid"]: {"keepers": sorted(keepers), "match": match.id}}
        names = ", ".join(it["name"] for it in g["items"] if it["id"] in keepers)
        tied = " (all frames kept: no preference to learn from)" if len(keepers) == len(shown) else ""
        self._report(f"group {k + 1}: kept {names}{tied}")
        self.position = self._next_open(k + 1)
        self._publish()

    def _on_skip(self, m: dict[str, Any]) -> None:
        k, _ = self._group(m.get("gid"))
        self.position = min(k + 1, max(len(self.groups) - 1, 0))
        self._publish()

    def _on_goto(self, m: dict[str, Any]) -> None:
        p = as_int(m.get("position"), "position")
        if not 0 <= p < max(len(self.groups), 1):
            raise InvalidArgumentError(f"position: expected 0..{len(self.groups) - 1}, got {p}")
        self.position = p
        self._publish()

    def _on_undo(self, m: dict[str, Any]) -> None:
        if not self._history:
            self._report("nothing to undo in this panel")
            self._emit({"type": "undone", "gid": None})
            return
        gid, mid = self._history.pop()
        try:
            self.collection.votes.undo(mid)
        except NotFoundError as e:  # undone elsewhere (another view, the CLI): the panel follows
            self._report(f"undo: {e}", "warning")
        done = dict(self.done)
        done.pop(gid, None)
        self.done = done
        k, _ = self._group(gid)
        self.position = k
        self._report(f"undone: group {k + 1} is back")
        self._emit({"type": "undone", "gid": gid})
        self._publish()

    def _on_broken(self, m: dict[str, Any]) -> None:
        image_id = as_int(m.get("id"), "id")
        if image_id in self._broken:
            self._report(f"the browser cannot show image {image_id}; pick from the others or skip the group",
                         "warning")
            return
        self._broken.add(image_id)
        self._sent.discard(image_id)
        self._report(f"the browser could not show image {image_id}; sending it again", "warning")
        self._send_upcoming()
