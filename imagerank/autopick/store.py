"""The auto-pick tables of a catalog: ``autopick_subjects`` (one row per subject: state, reason, the picked image and
its provenance) and ``autopick_candidates`` (every candidate scored, with its embedding, preview and label).

A subject moves ``pending`` -> ``picked`` (an image was stored), ``flagged`` (no suitable image: the reason says
why, for a person to resolve) or ``error`` (the source or a download failed: the reason names the error; a rerun
tries it again). A rerun of :func:`imagerank.autopick.auto_pick` skips ``picked`` and ``flagged`` subjects unless
asked to redo them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .._util import utcnow
from ..catalog import Catalog
from ..errors import InvalidArgumentError, NotFoundError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RESOLVED", "SUBJECT_STATUSES", "PickStore", "Subject"]

SUBJECT_STATUSES: tuple[str, ...] = ("pending", "picked", "flagged", "error")
#: Statuses a rerun skips unless ``redo=True``: the subject has an image or a person has to look at it.
RESOLVED: tuple[str, ...] = ("picked", "flagged")
_CANDIDATE_COLS = (
    "position", "title", "source", "source_url", "thumb_url", "page_url", "licence", "licence_url", "author",
    "attribution", "mime", "width", "height", "aesthetic", "similarity", "score", "status", "reason", "embedding",
    "embedding_model", "preview",
)


@dataclass(frozen=True)
class Subject:
    """One subject to find an image for: ``name`` (what the source is searched for) and an optional ``category``
    (which selects the fallback image)."""

    name: str
    category: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidArgumentError(f"subject name: expected a non-empty string, got {self.name!r}")


class PickStore:
    """Reads and writes the auto-pick tables of ``catalog`` (every write in one ``atomic()`` transaction).

    Args:
        catalog: an open :class:`~imagerank.catalog.Catalog`.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.cat = catalog
        self.db = catalog.db

    # ------------------------------------------------------------------ subjects
    def ensure(self, subjects: Sequence[Subject]) -> dict[str, int]:
        """Insert the subjects not stored yet (a stored subject keeps its state; a new category is written);
        returns name -> subject id for all of them."""
        out: dict[str, int] = {}
        with self.db.atomic() as conn:
            for s in subjects:
                conn.execute("INSERT INTO autopick_subjects (name, category) VALUES (?, ?) ON CONFLICT(name) DO "
                             "UPDATE SET category=COALESCE(excluded.category, category)", (s.name, s.category))
                out[s.name] = int(conn.execute("SELECT id FROM autopick_subjects WHERE name=?",
                                               (s.name,)).fetchone()[0])
        return out

    def status_of(self, names: Sequence[str]) -> dict[str, str]:
        """name -> status of the stored subjects among ``names``."""
        out: dict[str, str] = {}
        for k in range(0, len(names), 500):
            part = list(names[k:k + 500])
            q = ",".join("?" * len(part))
            for r in self.db.query(f"SELECT name, status FROM autopick_subjects WHERE name IN ({q})", tuple(part)):
                out[str(r[0])] = str(r[1])
        return out

    def get(self, subject: str | int) -> dict[str, Any]:
        """One subject's row as a dict (by name or id).

        Raises:
            NotFoundError: no such subject.
        """
        col = "id" if isinstance(subject, int) else "name"
        rows = self.db.query(f"SELECT * FROM autopick_subjects WHERE {col}=?", (subject,))
        if not rows:
            raise NotFoundError(f"auto-pick subject {subject!r} does not exist; run auto_pick on it first")
        return dict(rows[0])

    def finish(self, subject_id: int, status: str, *, reason: str | None = None,
               candidates: Sequence[dict[str, Any]] = (), pick: dict[str, Any] | None = None) -> None:
        """Record one subject's outcome in one transaction: its candidates (replacing earlier ones; the labels of
        candidates found again, by source and title, are kept), its status and
        reason, and with ``pick`` the image and provenance (image_id, candidate position, score, source,
        source_url, page_url, licence, licence_url, author, attribution).

        Raises:
            InvalidArgumentError: unknown status.
        """
        if status not in SUBJECT_STATUSES:
            raise InvalidArgumentError(f"status: expected one of {', '.join(SUBJECT_STATUSES)}, got {status!r}")
        p = pick or {}
        with self.db.atomic() as conn:
            kept = {(r[0], r[1]): (r[2], r[3], r[4]) for r in conn.execute(  # labels survive a re-scoring
                "SELECT source, title, label, label_source, labelled_at FROM autopick_candidates "
                "WHERE subject_id=? AND label IS NOT NULL", (subject_id,))}
            conn.execute("DELETE FROM autopick_candidates WHERE subject_id=?", (subject_id,))
            picked_id = None
            for c in candidates:
                cur = conn.execute(
                    f"INSERT INTO autopick_candidates (subject_id, {', '.join(_CANDIDATE_COLS)}) "
                    f"VALUES (?, {', '.join('?' * len(_CANDIDATE_COLS))})",
                    (subject_id, *[c.get(k) for k in _CANDIDATE_COLS]),
                )
                old = kept.get((c.get("source"), c.get("title")))
                if old is not None:
                    conn.execute("UPDATE autopick_candidates SET label=?, label_source=?, labelled_at=? WHERE id=?",
                                 (*old, cur.lastrowid))
                if p and c.get("position") == p.get("position") and c.get("source") == p.get("source"):
                    picked_id = cur.lastrowid
            conn.execute(
                "UPDATE autopick_subjects SET status=?, reason=?, image_id=?, candidate_id=?, score=?, source=?, "
                "source_url=?, page_url=?, licence=?, licence_url=?, author=?, attribution=?, "
                "attempts=attempts+1, updated_at=? WHERE id=?",
                (status, reason, p.get("image_id"), picked_id, p.get("score"), p.get("source"), p.get("source_url"),
                 p.get("page_url"), p.get("licence"), p.get("licence_url"), p.get("author"), p.get("attribution"),
                 utcnow(), subject_id),
            )

    def subjects_df(self, status: str | None = None) -> pd.DataFrame:
        """Every subject (or those with ``status``): id, name, category, status, reason, image_id, score, source,
        source_url, licence, author, attribution, attempts, updated_at."""
        where = " WHERE status=?" if status else ""
        return self.db.read_frame(
            "SELECT id, name, category, status, reason, image_id, score, source, source_url, page_url, licence, "
            f"licence_url, author, attribution, attempts, updated_at FROM autopick_subjects{where} ORDER BY id",
            (status,) if status else None)

    # ------------------------------------------------------------------ candidates
    def candidates_df(self, subject: str | int | None = None) -> pd.DataFrame:
        """Candidates (of one subject, or all) without the blobs: id, subject_id, subject, position, title, source,
        source_url, thumb_url, licence, author, aesthetic (0-10), similarity (cosine, -1..1), score (0-10), status,
        reason, label, label_source."""
        where, args = "", None
        if subject is not None:
            sid = int(self.get(subject)["id"])
            where, args = " WHERE c.subject_id=?", (sid,)
        return self.db.read_frame(
            "SELECT c.id, c.subject_id, s.name AS subject, c.position, c.title, c.source, c.source_url, c.thumb_url,"
            " c.licence, c.author, c.aesthetic, c.similarity, c.score, c.status, c.reason, c.label, c.label_source "
            f"FROM autopick_candidates c JOIN autopick_subjects s ON s.id = c.subject_id{where} "
            "ORDER BY c.subject_id, c.score DESC, c.position", args)

    def preview(self, candidate_id: int) -> bytes | None:
        """The candidate's stored JPEG preview (longest side <= 256 px), or None.

        Raises:
            NotFoundError: no such candidate.
        """
        rows = self.db.query("SELECT preview FROM autopick_candidates WHERE id=?", (int(candidate_id),))
        if not rows:
            raise NotFoundError(f"auto-pick candidate {candidate_id} does not exist")
        return None if rows[0][0] is None else bytes(rows[0][0])

    def label(self, candidate_id: int, label: str | None, *, source: str = "user") -> None:
        """Label a candidate ``good`` or ``bad`` (None clears it), remembering who labelled it (``source``:
        ``label-panel``, ``cli``, ``user`` ...).

        Raises:
            InvalidArgumentError: unknown label or empty source. NotFoundError: no such candidate.
        """
        if label not in ("good", "bad", None):
            raise InvalidArgumentError(f"label: expected 'good', 'bad' or None, got {label!r}")
        if not source or not str(source).strip():
            raise InvalidArgumentError(f"source: expected a non-empty string, got {source!r}")
        cur = self.db.execute(
            "UPDATE autopick_candidates SET label=?, label_source=?, labelled_at=? WHERE id=?",
            (label, None if label is None else source, None if label is None else utcnow(), int(candidate_id)))
        if cur.rowcount == 0:
            raise NotFoundError(f"auto-pick candidate {candidate_id} does not exist")

    def labelled_embeddings(self, model: str | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """The labelled candidates' embeddings: ((N, D) float32 L2-normalised, (N,) float32 1 good / 0 bad,
        embedding model names). With ``model``, only rows embedded by it."""
        sql = ("SELECT embedding, label, embedding_model FROM autopick_candidates "
               "WHERE label IS NOT NULL AND embedding IS NOT NULL")
        rows = self.db.query(sql + (" AND embedding_model=?" if model else "") + " ORDER BY id",
                             (model,) if model else ())
        if not rows:
            return np.zeros((0, 0), np.float32), np.zeros(0, np.float32), []
        X = np.stack([np.frombuffer(bytes(r[0]), dtype=np.float32) for r in rows])
        y = np.asarray([1.0 if r[1] == "good" else 0.0 for r in rows], np.float32)
        return X, y, [str(r[2]) for r in rows]

    def counts(self) -> dict[str, int]:
        """Subjects by status (every status present, 0 when none)."""
        got = {str(r[0]): int(r[1]) for r in self.db.query(
            "SELECT status, COUNT(*) FROM autopick_subjects GROUP BY status")}
        return {s: got.get(s, 0) for s in SUBJECT_STATUSES}
