"""The triage panel of the generation tree: keyboard-first A-vs-B votes and the kill-left walk (an anywidget;
``triage.js`` and ``triage.css`` beside this file).

The logic is :class:`imagerank.generation.triage.Triage` (which pair to ask, the walk, exact undo); this panel
shows its current question and sends the user's keys to it. Click the panel once (a ring shows the keys go
there), then:

====================  ===========================================================================================
←  or 1 / →  or 2     the left / right candidate is better (a vote through the vote log, like the compare panel)
D                     draw
S                     skip the pair (asked no more); in a walk: stop, the last kill was the root cause
K then ← / →          kill the left / right candidate (rejected: never a parent again); Esc cancels the K
U or Backspace        undo the last vote, kill or stop (a kill is restored)
Esc                   give the keys back to JupyterLab
====================  ===========================================================================================

After a kill the panel walks left: the killed candidate's parent (the suspect, on the left, outlined) beside one of
the parent's siblings; kill the suspect too and the walk goes one column further left, vote or press S when it
looks fine. The header says where in the triage or the walk the user is.

Protocol. Python → browser: synced ``question`` (the question's fields plus, per side, ``id``, ``name``, ``step``,
``mu``, ``sigma``, ``comparisons``, ``status``), ``header`` (``text``, ``mode``, ``votes``, ``kills``,
``can_undo``) and ``status`` (``text``, ``level``, ``seq``); thumbnails as binary buffers in a custom ``images``
message (``ids`` + one JPEG per id, never base64). Browser → Python (``type``): ``ready`` (send the thumbnails),
``vote`` (qid, outcome, ms), ``kill`` (qid, id), ``stop`` (qid), ``undo``, ``poll`` (sent every two seconds while
nothing is to be asked, so candidates a runner adds show up). :meth:`TriagePanel.handle_message` is the whole
Python side: tests call it with message dicts, without a browser.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets as t

from ..errors import InvalidArgumentError
from ..generation import tree
from ..generation.triage import Question, Triage
from .common import Message, MessagePanel, as_int, panel_css, panel_esm

if TYPE_CHECKING:
    from ..collection import Collection

__all__ = ["TriagePanel"]

log = logging.getLogger(__name__)


class TriagePanel(MessagePanel, anywidget.AnyWidget):
    """Triage the generation tree with the keyboard (module docstring for keys and protocol).

    Args:
        collection: the open :class:`~imagerank.collection.Collection` whose workspace holds the tree.
        voter: name stored with each vote (default: the session's voter).
        seed: seeds the side shuffle of pair questions (int >= 0).

    Raises:
        InvalidArgumentError: a bad ``seed``.

    Attributes:
        triage: the :class:`~imagerank.generation.triage.Triage` behind the panel (its ``question``, ``votes``,
            ``kills``; :meth:`vote`, :meth:`kill`, :meth:`stop`, :meth:`undo` act on it and update the panel).
    """

    _esm = panel_esm("triage.js")
    _css = panel_css("triage.css")

    panel_name = "triage panel"
    internal_note = "; the vote log is intact"

    panel_id = t.Unicode("").tag(sync=True)
    question = t.Dict().tag(sync=True)
    header = t.Dict().tag(sync=True)
    status = t.Dict().tag(sync=True)

    def __init__(self, collection: Collection, *, voter: str | None = None, seed: int = 0) -> None:
        self.triage = Triage(collection, voter=voter, seed=seed)
        self.collection = collection
        super().__init__(panel_id=uuid.uuid4().hex)
        self._sent: set[int] = set()
        self._ready = False
        self.on_msg(self._on_custom_msg)
        self._publish()

    # ------------------------------------------------------------------ headless API (tests, notebooks)
    def vote(self, outcome: str, decision_ms: float | None = None) -> None:
        """Vote on the question on screen (``left``, ``right``, ``draw``, ``skip``)."""
        self.handle_message({"type": "vote", "qid": self.triage.question.qid, "outcome": outcome,
                             "ms": decision_ms})

    def kill(self, side: str) -> None:
        """Kill the ``left`` or ``right`` candidate on screen.

        Raises:
            InvalidArgumentError: ``side`` is not left/right or has no candidate.
        """
        q = self.triage.question
        image_id = {"left": q.left, "right": q.right}.get(side)
        if image_id is None:
            raise InvalidArgumentError(f"side: expected 'left' or 'right' with a candidate on it, got {side!r} "
                                       f"(on screen: {list(q.ids)})")
        self.handle_message({"type": "kill", "qid": q.qid, "id": image_id})

    def stop(self) -> None:
        """End the kill-left walk (the last kill was the root cause)."""
        self.handle_message({"type": "stop", "qid": self.triage.question.qid})

    def undo(self) -> None:
        """Undo the last vote, kill or stop."""
        self.handle_message({"type": "undo"})

    def handle_message(self, content: dict[str, Any], buffers: Sequence[Any] | None = None) -> list[Message]:
        """Handle one browser message (module docstring) and return the replies sent.

        Never raises: bad input and failures become a ``status`` with level ``error`` (nothing is recorded for a
        refused action), so a bad message cannot break the panel.
        """
        return self._dispatch(content, {"ready": self._on_ready, "vote": self._on_vote, "kill": self._on_kill,
                                        "stop": self._on_stop, "undo": self._on_undo, "poll": self._on_poll})

    def _after_message(self) -> None:
        try:
            self._publish()
        except Exception as e:  # the question could not be shown: say so, the next action tries again
            log.exception("triage panel: publishing the question failed")
            self._report(f"the question could not be shown ({type(e).__name__}: {e})", "error")

    # ------------------------------------------------------------------ handlers

    def _qid(self, m: dict[str, Any]) -> int:
        return as_int(m.get("qid"), "qid")

    def _on_ready(self, m: dict[str, Any]) -> None:
        self._ready = True
        self._sent = set()

    def _on_vote(self, m: dict[str, Any]) -> None:
        ms = m.get("ms")
        match = self.triage.vote(str(m.get("outcome")), qid=self._qid(m),
                                 decision_ms=ms if isinstance(ms, (int, float)) else None)
        self._report(f"{match.kind} recorded (match {match.id})")

    def _on_kill(self, m: dict[str, Any]) -> None:
        image_id = as_int(m.get("id"), "id")
        q = self.triage.kill(image_id, qid=self._qid(m))
        self._report(f"#{image_id} killed" + (f"; is its ancestor #{q.left} the cause?" if q.kind == "walk" else ""))

    def _on_stop(self, m: dict[str, Any]) -> None:
        killed = self.triage.question.killed
        self.triage.stop(qid=self._qid(m))
        self._report(f"walk stopped: #{killed[-1]} was the root cause" if killed else "walk stopped")

    def _on_undo(self, m: dict[str, Any]) -> None:
        u = self.triage.undo()
        if u is None:
            self._report("nothing to undo", "warn")
        else:
            self._report(f"undone: {u.action}" + (f" of #{u.image_id} (active again)" if u.image_id else ""))

    def _on_poll(self, m: dict[str, Any]) -> None:
        self.triage.refresh()

    # ------------------------------------------------------------------ publishing
    def _side(self, image_id: int | None) -> dict[str, Any] | None:
        if image_id is None:
            return None
        c = tree.get_candidate(self.collection, image_id)
        return {"id": int(image_id), "name": str(c["filename"]), "step": str(c["step"]), "mu": float(c["mu"]),
                "sigma": float(c["sigma"]), "comparisons": int(c["comparison_count"]), "status": str(c["status"])}

    def _publish(self) -> None:
        q: Question = self.triage.question
        if self._ready:
            missing = [i for i in q.ids if i not in self._sent]
            ids, bufs = [], []
            for i in missing:
                data = self.collection.thumbnail_bytes(i)
                if data is None:
                    self._report(f"candidate #{i} has no thumbnail (its file cannot be decoded)", "warn")
                    continue
                ids.append(i)
                bufs.append(data)
                self._sent.add(i)
            if ids:
                self._emit({"type": "images", "ids": ids}, bufs)
        question = q.as_dict()
        question["sides"] = {"left": self._side(q.left), "right": self._side(q.right)}
        self.question = question
        tr = self.triage
        self.header = {"text": q.text, "mode": q.kind, "votes": tr.votes, "kills": tr.kills,
                       "can_undo": tr.can_undo, "walk": list(q.killed)}
