"""The ``suggestions`` table: what a model proposed (a winner among images, a crop) and what the user decided.

One row per suggestion shown: ``kind`` (``winner`` or ``crop``), the model's name, a JSON ``payload`` (the images
and suggested winner with their scores, or the image and box) and its ``confidence``. A decision (``approve``,
``edit``, ``reject``) is written once, with the decided payload (what the user changed, for edits), the match or
crop it created, and the time; rejected suggestions stay as negative feedback.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgumentError, NotFoundError
from .db import Database

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DECISIONS", "SUGGESTION_KINDS", "SuggestionTable"]

SUGGESTION_KINDS: tuple[str, ...] = ("winner", "crop")
DECISIONS: tuple[str, ...] = ("approve", "edit", "reject")


class SuggestionTable:
    """The ``suggestions`` table of one catalog.

    Args:
        db: the catalog connection.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, kind: str, model: str, payload: dict[str, Any], confidence: float | None = None) -> int:
        """Log one suggestion and return its ``suggestions.id``.

        Args:
            kind: ``winner`` or ``crop``.
            model: the name of the model that made it.
            payload: JSON-serialisable description (e.g. ``{"image_ids", "winner", "scores"}`` or
                ``{"image_id", "box"}``).
            confidence: the model's confidence in [0, 1], or None.

        Raises:
            InvalidArgumentError: unknown ``kind``, or a payload that is not JSON-serialisable.
        """
        if kind not in SUGGESTION_KINDS:
            raise InvalidArgumentError(f"kind: expected one of {', '.join(SUGGESTION_KINDS)}, got {kind!r}")
        try:
            text = json.dumps(payload)
        except (TypeError, ValueError) as e:
            raise InvalidArgumentError(f"payload: expected JSON-serialisable values ({e})") from e
        cur = self.db.execute("INSERT INTO suggestions (kind, model, payload, confidence) VALUES (?,?,?,?)",
                              (kind, model, text, None if confidence is None else float(confidence)))
        return int(cur.lastrowid or 0)

    def decision_of(self, suggestion_id: int) -> str | None:
        """The decision recorded on a suggestion (``approve``, ``edit``, ``reject``), or None while undecided.

        Raises:
            NotFoundError: no such suggestion.
        """
        rows = self.db.query("SELECT decision FROM suggestions WHERE id=?", (int(suggestion_id),))
        if not rows:
            raise NotFoundError(f"suggestion {suggestion_id} does not exist")
        return None if rows[0][0] is None else str(rows[0][0])

    def decide(
        self,
        suggestion_id: int,
        decision: str,
        *,
        decided_payload: dict[str, Any] | None = None,
        match_id: int | None = None,
        crop_id: int | None = None,
    ) -> None:
        """Record the user's decision on an undecided suggestion (with the time, UTC).

        Args:
            decision: ``approve``, ``edit`` or ``reject``.
            decided_payload: what the user changed (``{"winner": id}``, ``{"box": [x, y, w, h]}``), or None.
            match_id, crop_id: the match / crop the decision created, if any.

        Raises:
            InvalidArgumentError: unknown decision, or the suggestion was already decided.
            NotFoundError: no such suggestion.
        """
        if decision not in DECISIONS:
            raise InvalidArgumentError(f"decision: expected approve, edit or reject, got {decision!r}")
        with self.db.atomic() as conn:
            cur = conn.execute(
                "UPDATE suggestions SET decision=?, decided_payload=?, match_id=?, crop_id=?, "
                "decided_at=strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id=? AND decision IS NULL",
                (decision, json.dumps(decided_payload) if decided_payload else None, match_id, crop_id,
                 int(suggestion_id)),
            )
            if cur.rowcount == 0:
                before = self.decision_of(suggestion_id)  # NotFoundError for an unknown id
                raise InvalidArgumentError(f"suggestion {suggestion_id} was already decided ({before})")

    def suggestions_df(self) -> pd.DataFrame:
        """The log, one row per suggestion ordered by id: id, kind, model, payload (JSON text), confidence,
        decision, decided_payload (JSON text or None), match_id, crop_id, created_at, decided_at (ISO text, UTC)."""
        return self.db.read_frame("SELECT * FROM suggestions ORDER BY id")
