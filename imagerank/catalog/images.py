"""The ``images`` table and what hangs off it: scan upsert, status, labels, the ``failures`` table, and reads.

One row per file path (the full path is the key: equal file names in two folders are two images) with its size,
mtime, displayed width and height, status (``active``, ``missing``, ``corrupt``, ``rejected``) and reason, and the
rating columns that the vote log owns (:mod:`.votes`). Image files are never moved or modified.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .. import ratings as R
from .._util import utcnow
from ..errors import InvalidArgumentError, NotFoundError
from .db import Database

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["STATUSES", "FileLike", "ImageTable", "UpsertCounts", "is_transient_reason"]

STATUSES: tuple[str, ...] = ("active", "missing", "corrupt", "rejected")
LABELS: tuple[str, ...] = ("good", "bad", "flag")
BAD_NAME_REASON = "file name is not valid UTF-8; rename the file to include it"

# Decoder reasons (``"<ExceptionType>: <message>"``) that say the file could not be *read*, not that its bytes are
# bad: a corrupt image with such a reason is decoded again at the next scan.
_TRANSIENT_MARKERS: tuple[str, ...] = (
    "permissionerror", "timeouterror", "blockingioerror", "interruptederror", "connectionerror",
    "permission denied", "operation not permitted", "input/output error", "timed out", "stale file handle",
    "resource temporarily unavailable", "device or resource busy", "too many open files",
    "[errno 1]", "[errno 5]", "[errno 11]", "[errno 13]", "[errno 16]", "[errno 24]", "[errno 110]", "[errno 116]",
)


def is_transient_reason(reason: str | None) -> bool:
    """Whether a ``corrupt`` status reason is an access or transient error (permission denied, I/O error, time-out,
    busy device ...) rather than bad file content; such images are retried at the next scan."""
    r = (reason or "").lower()
    return any(m in r for m in _TRANSIENT_MARKERS)


class FileLike(Protocol):
    """A discovered file (:class:`imagerank.scan.FileStat`): absolute path, size in bytes, mtime in ns."""

    @property
    def path(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def mtime_ns(self) -> int: ...
    @property
    def valid_name(self) -> bool: ...


@dataclass
class UpsertCounts:
    """What :meth:`ImageTable.upsert` changed, in files."""

    added: int = 0
    changed: int = 0
    unchanged: int = 0
    missing: int = 0
    returned: int = 0
    invalid_names: int = 0
    retried: int = 0


class ImageTable:
    """The ``images``, ``labels`` and ``failures`` tables of one catalog.

    Args:
        db: the catalog connection.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ scan
    def upsert(self, found: Mapping[str, FileLike]) -> UpsertCounts:
        """Bring the table in line with the files ``found`` (path -> file) in one transaction.

        New files are inserted (ids in path order, so reproducible whatever order the file system lists); changed
        ones (size or mtime) become ``active`` again with their thumbnail marked stale; files that came back after
        being ``missing`` become ``active``; rows whose file is neither found nor on disk become ``missing`` (never
        deleted: their votes stay); a file whose name is not valid UTF-8 gets status ``corrupt`` with the reason.
        An unchanged file that is ``corrupt`` for an access or transient error (:func:`is_transient_reason`, such as
        ``Permission denied``) becomes ``active`` with its thumbnail stale, so the decode pass tries it again
        (counted in ``retried``).
        """
        counts = UpsertCounts()
        now = utcnow()
        existing = {row[1]: row for row in self.db.query(
            "SELECT id, filepath, size, mtime_ns, status, status_reason FROM images")}
        new_rows, changed, returned, missing, bad_names, retry = [], [], [], [], [], []
        for path, f in found.items():
            row = existing.get(path)
            if not f.valid_name:
                bad_names.append(f)
            elif row is None:
                new_rows.append((path, os.path.basename(path), R.DEFAULT_MU, R.DEFAULT_SIGMA, f.size, f.mtime_ns, now))
            elif row["size"] != f.size or row["mtime_ns"] != f.mtime_ns:
                changed.append((f.size, f.mtime_ns, row["id"]))
            elif row["status"] == "missing":
                returned.append(row["id"])
            elif row["status"] == "corrupt" and is_transient_reason(row["status_reason"]):
                retry.append(row["id"])
            else:
                counts.unchanged += 1
        for path, row in existing.items():
            if path not in found and row["status"] in ("active", "corrupt") and not os.path.exists(path):
                missing.append(row["id"])
        new_rows.sort()
        with self.db.atomic() as conn:
            conn.executemany(
                "INSERT INTO images (filepath, filename, mu, sigma, size, mtime_ns, added_at) VALUES (?,?,?,?,?,?,?)",
                new_rows,
            )
            conn.executemany(
                "UPDATE images SET size=?, mtime_ns=?, status='active', status_reason=NULL, thumb_fingerprint=NULL "
                "WHERE id=? AND status != 'rejected'",
                changed,
            )
            conn.executemany("UPDATE images SET status='active', status_reason=NULL WHERE id=?",
                             [(i,) for i in returned])
            conn.executemany("UPDATE images SET status='active', status_reason=NULL, thumb_fingerprint=NULL "
                             "WHERE id=? AND status='corrupt'", [(i,) for i in retry])
            conn.executemany("UPDATE images SET status='missing', status_reason='file not found at scan' WHERE id=?",
                             [(i,) for i in missing])
            for f in bad_names:
                conn.execute(
                    "INSERT INTO images (filepath, filename, mu, sigma, size, mtime_ns, added_at, status, "
                    "status_reason) VALUES (?,?,?,?,?,?,?,'corrupt',?) ON CONFLICT(filepath) DO NOTHING",
                    (f.path, os.path.basename(f.path), R.DEFAULT_MU, R.DEFAULT_SIGMA, f.size, f.mtime_ns, now,
                     BAD_NAME_REASON),
                )
        counts.added, counts.changed = len(new_rows), len(changed)
        counts.returned, counts.missing, counts.invalid_names = len(returned), len(missing), len(bad_names)
        counts.retried = len(retry)
        return counts

    def retry_corrupt(self) -> list[int]:
        """Make ``corrupt`` images ``active`` again with their thumbnail stale, so the next decode pass (a scan,
        :meth:`ThumbnailCache.build` with the returned ids) tries them again; a file that still cannot be decoded
        is marked ``corrupt`` again with the new reason. Files whose name is not valid UTF-8 stay ``corrupt``.

        Returns:
            The ids made active, ascending.
        """
        rows = self.db.query("SELECT id, status_reason FROM images WHERE status='corrupt' ORDER BY id")
        ids = [int(r[0]) for r in rows if r[1] != BAD_NAME_REASON]
        with self.db.atomic() as conn:
            conn.executemany("UPDATE images SET status='active', status_reason=NULL, thumb_fingerprint=NULL "
                             "WHERE id=? AND status='corrupt'", [(i,) for i in ids])
        return ids

    def add_files(self, paths: Sequence[tuple[str, int, int]]) -> dict[str, int]:
        """Insert files not in the catalog yet (``(path, size, mtime_ns)``); returns path -> id for all of them."""
        now = utcnow()
        with self.db.atomic() as conn:
            conn.executemany(
                "INSERT INTO images (filepath, filename, mu, sigma, size, mtime_ns, added_at) VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT(filepath) DO NOTHING",
                [(p, os.path.basename(p), R.DEFAULT_MU, R.DEFAULT_SIGMA, s, m, now) for p, s, m in paths],
            )
            out = {}
            for p, _, _ in paths:
                row = conn.execute("SELECT id FROM images WHERE filepath=?", (p,)).fetchone()
                out[p] = int(row[0])
        return out

    def record_decodes(
        self,
        sizes: Sequence[tuple[Any, ...]],
        corrupt: Sequence[tuple[Any, ...]],
        failures: Sequence[tuple[int | None, str | None, str, str]],
    ) -> None:
        """Write the thumbnail pass's results in one transaction: ``(width, height, thumb_fingerprint, id)`` of
        decoded images, ``(reason, id)`` of undecodable ones (status ``corrupt``), and the failures. Without a
        ``corrupt`` row the commit is a derived-only write (see :meth:`Database.atomic`): the cached pool of active
        images and their ratings stays valid."""
        with self.db.atomic(derived=not corrupt) as conn:
            conn.executemany("UPDATE images SET width=?, height=?, thumb_fingerprint=? WHERE id=?", sizes)
            conn.executemany("UPDATE images SET status='corrupt', status_reason=? WHERE id=?", corrupt)
            self.record_failures(failures)

    # ------------------------------------------------------------------ one image
    def get(self, image_id: int) -> dict[str, Any]:
        """One image's catalog row as a dict.

        Raises:
            NotFoundError: no such image.
        """
        rows = self.db.query("SELECT * FROM images WHERE id=?", (int(image_id),))
        if not rows:
            raise NotFoundError(f"image {image_id} does not exist")
        return dict(rows[0])

    def id_of(self, path: str) -> int | None:
        """The id of the image at ``path`` (exact string), or None."""
        rows = self.db.query("SELECT id FROM images WHERE filepath=?", (path,))
        return int(rows[0][0]) if rows else None

    def names(self, ids: Sequence[int]) -> dict[int, str]:
        """image id -> file name for the ids that exist."""
        ids = [int(i) for i in ids]
        if not ids:
            return {}
        q = ",".join("?" * len(ids))
        return {int(r[0]): str(r[1]) for r in self.db.query(f"SELECT id, filename FROM images WHERE id IN ({q})",
                                                             tuple(ids))}

    def set_status(self, image_id: int, status: str, reason: str | None = None) -> None:
        """Set an image's status (``active``, ``missing``, ``corrupt``, ``rejected``) with a reason.

        Raises:
            InvalidArgumentError: unknown status. NotFoundError: no such image.
        """
        if status not in STATUSES:
            raise InvalidArgumentError(f"status: expected active, missing, corrupt or rejected, got {status!r}")
        self.get(image_id)
        self.db.execute("UPDATE images SET status=?, status_reason=? WHERE id=?", (status, reason, int(image_id)))

    def add_label(self, image_id: int, label: str, *, source: str = "user", note: str | None = None) -> int:
        """Attach ``good``, ``bad`` or ``flag`` to an image; returns the label id.

        Raises:
            InvalidArgumentError: unknown label. NotFoundError: no such image.
        """
        if label not in LABELS:
            raise InvalidArgumentError(f"label: expected good, bad or flag, got {label!r}")
        self.get(image_id)
        cur = self.db.execute("INSERT INTO labels (image_id, label, source, note) VALUES (?,?,?,?)",
                              (int(image_id), label, source, note))
        return int(cur.lastrowid or 0)

    # ------------------------------------------------------------------ failures
    def record_failures(self, failures: Sequence[tuple[int | None, str | None, str, str]]) -> None:
        """Append ``(image_id, filepath, stage, reason)`` rows to the ``failures`` table; inside another
        transaction on this connection they join it (a derived-only write: no cached pool reloads for it)."""
        if failures:
            with self.db.atomic(derived=True) as conn:
                conn.executemany("INSERT INTO failures (image_id, filepath, stage, reason) VALUES (?,?,?,?)",
                                 failures)

    def failures_df(self) -> pd.DataFrame:
        """Every recorded failure of a batch pass: image_id, filepath, stage, reason, created_at."""
        return self.db.read_frame("SELECT * FROM failures ORDER BY id")

    # ------------------------------------------------------------------ tables
    def count_active(self) -> int:
        """The number of active images."""
        return int(self.db.snapshot_query("SELECT COUNT(*) FROM images WHERE status='active'")[0][0])

    def active_ids(self) -> np.ndarray:
        """(N,) int64 ids of the active images, ascending."""
        return np.asarray([r[0] for r in self.db.query("SELECT id FROM images WHERE status='active' ORDER BY id")],
                          dtype=np.int64)

    def images_df(self, status: str | None = None) -> pd.DataFrame:
        """All images (or those with ``status``) as a DataFrame, one row per image, with ``ordinal``."""
        sql = "SELECT * FROM images" + (" WHERE status=?" if status else "") + " ORDER BY id"
        df = self.db.read_frame(sql, (status,) if status else None)
        df["ordinal"] = R.ordinal(df["mu"], df["sigma"])
        return df

    def leaderboard(
        self, limit: int | None = None, *, include_inactive: bool = False, min_comparisons: int = 0,
        prior_only: bool = False,
    ) -> pd.DataFrame:
        """Images ranked by ordinal ``mu - 3*sigma`` (descending), with rank 1..N.

        Columns: rank, image_id, filename, filepath, mu, sigma, ordinal, comparison_count, status, and with
        ``prior_only`` a last bool column ``prior_only``: True for an image ranked by the learned prior alone
        (never in a rated comparison, a stored ``prior_mu``).

        Args:
            limit: at most this many rows (the top).
            include_inactive: also missing, corrupt and rejected images.
            min_comparisons: only images in at least this many rated comparisons; 1 leaves out images never
                voted on, which a learned prior can rank high (ranks are then counted among the rest).
            prior_only: add the ``prior_only`` column (the CLI and the leaderboard panel mark those rows).

        Raises:
            InvalidArgumentError: ``min_comparisons`` < 0.
        """
        if int(min_comparisons) < 0:
            raise InvalidArgumentError(f"min_comparisons: expected >= 0, got {min_comparisons!r}")
        where = ["comparison_count >= ?"] + ([] if include_inactive else ["status='active'"])
        sql = (
            "SELECT id AS image_id, filename, filepath, mu, sigma, mu - 3*sigma AS ordinal, comparison_count, "
            "status" + (", (comparison_count = 0 AND prior_mu IS NOT NULL) AS prior_only" if prior_only else "")
            + f" FROM images WHERE {' AND '.join(where)} ORDER BY ordinal DESC, id ASC"
            + (f" LIMIT {int(limit)}" if limit else "")
        )
        df = self.db.read_frame(sql, (int(min_comparisons),))
        df.insert(0, "rank", np.arange(1, len(df) + 1))
        if prior_only:
            df["prior_only"] = df["prior_only"].astype(bool)
        return df

    def stats(self) -> dict[str, Any]:
        """Totals: images by status, kept matches by kind, undone matches, sessions, last vote time."""
        by_status: dict[str, int] = {
            r[0]: r[1] for r in self.db.query("SELECT status, COUNT(*) FROM images GROUP BY status")
        }
        kinds: dict[str, int] = {
            r[0]: r[1] for r in self.db.query("SELECT kind, COUNT(*) FROM matches WHERE undone=0 GROUP BY kind")
        }
        undone = self.db.query("SELECT COUNT(*) FROM matches WHERE undone=1")[0][0]
        sessions = self.db.query("SELECT COUNT(*) FROM sessions")[0][0]
        last = self.db.query("SELECT MAX(created_at) FROM matches WHERE undone=0")[0][0]
        return {
            "images": int(sum(by_status.values())),
            "active": int(by_status.get("active", 0)),
            "missing": int(by_status.get("missing", 0)),
            "corrupt": int(by_status.get("corrupt", 0)),
            "rejected": int(by_status.get("rejected", 0)),
            "comparisons": int(sum(v for k, v in kinds.items() if k != "skip")),
            "wins": int(kinds.get("win", 0)),
            "draws": int(kinds.get("draw", 0)),
            "skips": int(kinds.get("skip", 0)),
            "rankings": int(kinds.get("ranking", 0)),
            "undone": int(undone),
            "sessions": int(sessions),
            "last_vote_at": last,
        }
