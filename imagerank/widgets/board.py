"""The generation board: the tree growing live (an anywidget; ``board.js`` and ``board.css`` beside this file).

One column per pipeline step (by order), each with its counts (candidates, active, rejected, jobs queued or in
flight that will land there) and its candidates as thumbnails, best rated first, each captioned with its rating
(``mu``, ``sigma``, votes) and outlined by status (active, rejected, final). Below: what each server is doing (from
the runner's :meth:`~imagerank.generation.runner.Runner.snapshot` while a runner is attached; else from the
catalog's jobs in flight), the job queue (jobs queued or in flight, then the last finished ones), and the run's
counts and jobs per minute.

The browser asks for a refresh every ``interval_s`` seconds (a ``poll`` message; the kernel answers between
cells, so a runner in a background thread fills the board while the user triages). Thumbnails travel once, as
binary buffers (custom ``images`` message: ``ids`` + one JPEG each). :meth:`GenerationBoard.refresh` is the
same from Python; :meth:`GenerationBoard.handle_message` is the whole Python side (tests call it directly).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets as t

from ..errors import InvalidArgumentError
from ..generation import jobs as J
from ..generation import tree
from .common import Message, MessagePanel, panel_css, panel_esm

if TYPE_CHECKING:
    from ..collection import Collection
    from ..generation.runner import Runner

__all__ = ["GenerationBoard"]

log = logging.getLogger(__name__)
_OPEN = ("queued", "submitted", "running")


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _opt_int(x: Any) -> int | None:
    import pandas as pd

    return None if x is None or pd.isna(x) else int(x)


class GenerationBoard(MessagePanel, anywidget.AnyWidget):
    """The generation tree live: columns of thumbnails with ratings and status, counts, the servers, the queue.

    Args:
        collection: the open :class:`~imagerank.collection.Collection` whose workspace holds the tree.
        runner: a :class:`~imagerank.generation.runner.Runner` (running in the background or not) whose snapshot
            says what each server is doing; None: read the servers from the catalog's jobs in flight. Settable
            later (``board.runner = runner``).
        interval_s: seconds between the browser's refreshes, 0.2..60. Default 1.
        per_column: thumbnails shown per column (the best rated active ones first, then rejected), 1..500.
        finished_jobs: finished jobs listed after the open ones, 0..200.

    Raises:
        InvalidArgumentError: an argument out of its range.
    """

    _esm = panel_esm("board.js")
    _css = panel_css("board.css")

    panel_name = "generation board"

    board_id = t.Unicode("").tag(sync=True)
    columns = t.List(t.Dict()).tag(sync=True)
    servers = t.List(t.Dict()).tag(sync=True)
    jobs = t.List(t.Dict()).tag(sync=True)
    summary = t.Dict().tag(sync=True)
    interval_ms = t.Int(1000).tag(sync=True)

    def __init__(self, collection: Collection, runner: Runner | None = None, *, interval_s: float = 1.0,
                 per_column: int = 60, finished_jobs: int = 10) -> None:
        if isinstance(interval_s, bool) or not isinstance(interval_s, (int, float)) or not 0.2 <= interval_s <= 60:
            raise InvalidArgumentError(f"interval_s: expected seconds in 0.2..60, got {interval_s!r}")
        for name, v, hi in (("per_column", per_column, 500), ("finished_jobs", finished_jobs, 200)):
            if isinstance(v, bool) or not isinstance(v, int) or not (0 if name == "finished_jobs" else 1) <= v <= hi:
                raise InvalidArgumentError(f"{name}: expected an integer in {0 if name == 'finished_jobs' else 1}.."
                                           f"{hi}, got {v!r}")
        self.collection = collection
        self.runner = runner
        self.per_column = per_column
        self.finished_jobs = finished_jobs
        super().__init__(interval_ms=round(interval_s * 1000), board_id=uuid.uuid4().hex)
        self._ready = False
        self._sent: set[int] = set()
        self.on_msg(self._on_custom_msg)
        self.refresh()

    def refresh(self) -> None:
        """Read the tree, the jobs and the runner's snapshot again and update the board (thumbnails of new
        candidates are sent to the browser once)."""
        cols, shown = self._columns()
        snap: dict[str, Any] | None = self.runner.snapshot() if self.runner is not None else None
        self.servers = self._servers(snap)
        self.jobs = self._jobs()
        counts = {s: 0 for s in J.JOB_STATUSES}
        for status, n in self.collection.catalog.db.query(
                "SELECT status, COUNT(*) FROM generation_jobs GROUP BY status"):
            counts[str(status)] = int(n)
        self.summary = {
            "jobs": counts,
            "candidates": int(sum(c["candidates"] for c in cols)),
            "runner": None if snap is None else ("running" if snap.get("running") else "stopped"),
            "jobs_per_minute": None if snap is None else _num(snap.get("jobs_per_minute")),
            "elapsed_s": None if snap is None else _num(snap.get("elapsed_s")),
        }
        if self._ready:
            self._send_images([i for i in shown if i not in self._sent])
        self.columns = cols

    def handle_message(self, content: dict[str, Any], buffers: Sequence[Any] | None = None) -> list[Message]:
        """Handle one browser message (``ready``: send every shown thumbnail; ``poll``: refresh) and return the
        replies sent. Never raises: a failure is logged and shown in the summary's ``error``."""
        return self._dispatch(content, {"ready": self._on_ready, "poll": lambda _m: self.refresh()})

    def _on_ready(self, _m: dict[str, Any]) -> None:
        self._ready = True
        self._sent = set()
        self.refresh()

    def _failed(self, text: str) -> None:  # the board has no status line: the summary shows the error
        self.summary = {**self.summary, "error": text}

    # ------------------------------------------------------------------ reading
    def _columns(self) -> tuple[list[dict[str, Any]], list[int]]:
        cat = self.collection.catalog
        per = tree.columns_df(cat)
        cands = tree.candidates_df(cat)
        cols, shown = [], []
        for row in per.itertuples(index=False):
            c = cands[cands["step_id"] == row.step_id].copy()
            c["_rejected"] = c["status"] != "active"
            c = c.sort_values(["_rejected", "mu", "id"], ascending=[True, False, True]).head(self.per_column)
            items = [{"id": int(r.id), "name": str(r.filename), "status": str(r.status), "mu": float(r.mu),
                      "sigma": float(r.sigma), "comparisons": int(r.comparison_count),
                      "parent_id": _opt_int(r.parent_id),
                      "children": int(r.child_count)} for r in c.itertuples(index=False)]
            shown += [int(r.id) for r in c.itertuples(index=False)]
            cols.append({"step": str(row.step), "order": int(row.step_order), "is_final": bool(row.is_final),
                         "candidates": int(row.candidates), "active": int(row.active), "rejected": int(row.rejected),
                         "pending_jobs": int(row.pending_jobs), "items": items})
        return cols, shown

    def _servers(self, snap: dict[str, Any] | None) -> list[dict[str, Any]]:
        if snap is not None:
            out = []
            for s in snap.get("servers", []):
                prog = s.get("progress")
                out.append({"url": str(s.get("url")), "state": str(s.get("state")), "job_id": s.get("job_id"),
                            "step": s.get("step"), "node": s.get("node"),
                            "progress": list(prog) if prog else None, "since": s.get("since"),
                            "done": int(s.get("done") or 0), "failed": int(s.get("failed") or 0),
                            "error": s.get("error")})
            return out
        df = J.jobs_df(self.collection.catalog)
        df = df[df["server"].notna()]
        out = []
        for url, g in df.groupby("server", sort=True):
            live = g[g["status"].isin(_OPEN)]
            cur = live.iloc[0] if not live.empty else None
            out.append({"url": str(url), "state": str(cur["status"]) if cur is not None else "idle",
                        "job_id": int(cur["id"]) if cur is not None else None,
                        "step": str(cur["step"]) if cur is not None else None, "node": None, "progress": None,
                        "since": None, "done": int((g["status"] == "done").sum()),
                        "failed": int((g["status"] == "failed").sum()), "error": None})
        return out

    def _jobs(self) -> list[dict[str, Any]]:
        df = J.jobs_df(self.collection.catalog)
        open_ = df[df["status"].isin(_OPEN)]
        done = df[~df["status"].isin(_OPEN)].tail(self.finished_jobs).iloc[::-1]
        rows = []
        for r in list(open_.itertuples(index=False)) + list(done.itertuples(index=False)):
            rows.append({"id": int(r.id), "step": str(r.step), "status": str(r.status),
                         "parent_id": _opt_int(r.parent_id), "image_id": _opt_int(r.image_id),
                         "server": r.server if isinstance(r.server, str) else None, "attempts": int(r.attempts),
                         "error": r.error if isinstance(r.error, str) else None, "run_s": _num(r.run_s)})
        return rows

    # ------------------------------------------------------------------ comm
    def _send_images(self, ids: list[int]) -> None:
        got, bufs = [], []
        for i in ids:
            data = self.collection.thumbnail_bytes(i)
            if data is None:
                continue
            got.append(i)
            bufs.append(data)
            self._sent.add(i)
        if got:
            self._emit({"type": "images", "ids": got}, bufs)
