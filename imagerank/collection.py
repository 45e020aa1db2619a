"""``Collection``: the front door over the catalog, scan, thumbnails, ratings, pairing and export.

Open one with :func:`imagerank.open` (an existing workspace) or :func:`imagerank.init` (a new one). A workspace
folder holds ``imagerank.toml``, ``imagerank.db``, ``sidecars/``, ``thumbs/`` and ``exports/``; image files stay
where they are and are never modified.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from . import ratings as R
from .config import CONFIG_NAME, Settings, load_settings, write_settings
from .errors import ImagerankError, NotFoundError, WorkspaceNotFoundError
from .pairing import PairContext, Pool, pair_key, pair_keys, select_pairs
from .scan import WalkReport, walk_images
from .store import Database, connect
from .thumbnails import DecodeJob, fingerprint, run_decode_jobs, thumb_path

if TYPE_CHECKING:
    import pandas as pd

    from .export import ExportReport

__all__ = ["DB_NAME", "Collection", "DoctorReport", "Match", "ScanReport", "Session", "init", "open_collection"]

DB_NAME = "imagerank.db"
log = logging.getLogger(__name__)
Outcome = Literal["left", "right", "draw", "skip"]


def utcnow() -> str:
    """Current UTC time as ISO 8601 with milliseconds and a ``Z`` (the catalog's timestamp format)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class ScanReport:
    """What a scan found. Counts are numbers of files; ``errors`` are (path, reason) pairs."""

    added: int = 0
    changed: int = 0
    unchanged: int = 0
    missing: int = 0
    returned: int = 0
    invalid_names: int = 0
    thumbnails_built: int = 0
    corrupt: int = 0
    seconds: float = 0.0
    errors: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"scan: {self.added} added, {self.changed} changed, {self.unchanged} unchanged, "
            f"{self.missing} missing, {self.returned} back, {self.corrupt} corrupt, "
            f"{self.invalid_names} bad names, {self.thumbnails_built} thumbnails, "
            f"{len(self.errors)} errors in {self.seconds:.2f} s"
        )


@dataclass
class Match:
    """One judgement as stored: ``image_ids`` in entry order with their ``ranks`` (0 best, ties share)."""

    id: int
    kind: str
    image_ids: list[int]
    ranks: list[int]
    positions: list[int | None]
    rated: bool
    session_id: int | None
    created_at: str
    entries: list[R.Rated] = field(default_factory=list)


@dataclass
class Session:
    """A voting session: its id, voter, strategy, seeded RNG and the pairs it has already judged."""

    id: int
    voter: str | None
    strategy: str
    rng: np.random.Generator
    seen: set[tuple[int, int]] = field(default_factory=set)


@dataclass
class DoctorReport:
    """``imagerank doctor``: SQLite's integrity check and a replay of the vote log against stored ratings."""

    integrity: str
    matches_replayed: int
    mismatches: list[dict[str, Any]]

    @property
    def ok(self) -> bool:
        return self.integrity == "ok" and not self.mismatches

    def __str__(self) -> str:
        head = f"integrity_check: {self.integrity}; replayed {self.matches_replayed} matches; "
        if not self.mismatches:
            return head + "stored ratings equal the replay: OK"
        return head + f"{len(self.mismatches)} images differ from the replay, e.g. {self.mismatches[:3]}"


class Collection:
    """One workspace. Not constructed directly: use :func:`imagerank.open` or :func:`imagerank.init`.

    Thread-safe for one kernel (the connection is locked); several processes may vote on one workspace at
    once (SQLite WAL + ``BEGIN IMMEDIATE``; the in-memory pool reloads when another process commits).
    """

    def __init__(self, root: str | os.PathLike[str], settings: Settings, db: Database) -> None:
        self.root = Path(root).resolve()
        self.settings = settings
        self.db = db
        self._pool: Pool | None = None
        self._pool_version: int | None = None
        self._session: Session | None = None
        self._prior_scores: dict[int, float] | None = None
        self._live_prior: Any = None  # imagerank.training.prior.LivePriorState
        self._votes_since_prior = 0
        self._prior_deferred = 0
        self._prior_origin: str | None = None  # "live" or "ranker" (apply_prior) in this process
        #: One line on the learned prior: the last refit's report, or why there is none.
        self.prior_status: str = "no learned prior yet"
        #: The last prior report of this process (``LivePriorReport`` or ``PriorReport``), None before one.
        self.prior_report: Any = None

    # ------------------------------------------------------------------ paths
    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    @property
    def sidecars_dir(self) -> Path:
        return self.root / "sidecars"

    @property
    def thumbs_dir(self) -> Path:
        return self.root / "thumbs"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def __repr__(self) -> str:
        return f"Collection({str(self.root)!r})"

    def close(self) -> None:
        """Close the catalog connection."""
        self.db.close()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ scan
    def scan(self, *, thumbnails: bool = True, progress: bool = True, extractors: Sequence[str] = ()) -> ScanReport:
        """Discover files under the roots, upsert them, mark vanished ones ``missing``, then build thumbnails.

        Stat only for discovery (no file reads); new and changed files are decoded once in a process pool to
        write their thumbnail (and run ``extractors``); a file that cannot be decoded gets status ``corrupt``
        with the decoder's reason. Missing files are never deleted from the catalog and become ``active``
        again when they return. Full paths are the key: equal file names in two folders are two images.

        Returns:
            A :class:`ScanReport`; every file met is counted in exactly one of its buckets or in ``errors``.
        """
        t0 = time.perf_counter()
        report = ScanReport()
        walk = WalkReport()
        found = {
            f.path: f
            for f in walk_images(
                self.settings.roots, self.settings.extensions, recursive=self.settings.recursive, report=walk
            )
        }
        report.errors.extend(walk.errors)
        now = utcnow()
        existing = {
            row[1]: row
            for row in self.db.query("SELECT id, filepath, size, mtime_ns, status, status_reason FROM images")
        }
        new_rows, changed, returned, missing = [], [], [], []
        bad_names = []
        for path, f in found.items():
            row = existing.get(path)
            if not f.valid_name:
                bad_names.append(f)
                continue
            if row is None:
                new_rows.append((path, os.path.basename(path), R.DEFAULT_MU, R.DEFAULT_SIGMA, f.size, f.mtime_ns, now))
            elif row["size"] != f.size or row["mtime_ns"] != f.mtime_ns:
                changed.append((f.size, f.mtime_ns, row["id"]))
            elif row["status"] == "missing":
                returned.append(row["id"])
            else:
                report.unchanged += 1
        for path, row in existing.items():
            if path not in found and row["status"] in ("active", "corrupt") and not os.path.exists(path):
                missing.append(row["id"])
        new_rows.sort()  # ids in path order, whatever order the file system lists folders in (reproducible)
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
            conn.executemany(
                "UPDATE images SET status='active', status_reason=NULL WHERE id=?", [(i,) for i in returned]
            )
            conn.executemany(
                "UPDATE images SET status='missing', status_reason='file not found at scan' WHERE id=?",
                [(i,) for i in missing],
            )
            for f in bad_names:
                conn.execute(
                    "INSERT INTO images (filepath, filename, mu, sigma, size, mtime_ns, added_at, status, "
                    "status_reason) VALUES (?,?,?,?,?,?,?,'corrupt',?) ON CONFLICT(filepath) DO NOTHING",
                    (f.path, os.path.basename(f.path), R.DEFAULT_MU, R.DEFAULT_SIGMA, f.size, f.mtime_ns, now,
                     "file name is not valid UTF-8; rename the file to include it"),
                )
        report.added, report.changed = len(new_rows), len(changed)
        report.returned, report.missing, report.invalid_names = len(returned), len(missing), len(bad_names)
        self._invalidate()
        if thumbnails:
            built = self.build_thumbnails(progress=progress, extractors=extractors)
            report.thumbnails_built, report.corrupt = built
        report.seconds = time.perf_counter() - t0
        return report

    def _thumb_jobs(
        self, ids: Iterable[int] | None, extractors: Sequence[str], force: bool, keep_current: bool = False
    ) -> list[DecodeJob]:
        where = "status = 'active'" + ("" if force else " AND (thumb_fingerprint IS NULL OR thumb_fingerprint != "
                                       "CAST(size AS TEXT) || '-' || CAST(mtime_ns AS TEXT))")
        wanted = None if ids is None else set(int(i) for i in ids)
        params: tuple[int, ...] = ()
        if wanted is not None and len(wanted) <= 500:  # a few ids (a panel's on-demand thumbnail): no full scan
            where += f" AND id IN ({','.join('?' * len(wanted))})"
            params = tuple(wanted)
        rows = self.db.query(
            f"SELECT id, filepath, size, mtime_ns, thumb_fingerprint FROM images WHERE {where}", params
        )
        size = self.settings.thumb_size
        jobs = []
        for r in rows:
            if wanted is not None and r["id"] not in wanted:
                continue
            fp = fingerprint(r["size"] or 0, r["mtime_ns"] or 0)
            path = thumb_path(self.thumbs_dir, r["id"], fp, size)
            # keep_current: decode for the extractors only when the thumbnail is current
            dest = None if keep_current and r["thumb_fingerprint"] == fp and path.exists() else path
            jobs.append(
                DecodeJob(
                    image_id=r["id"],
                    path=r["filepath"],
                    fingerprint=fp,
                    thumb_dest=None if dest is None else str(dest),
                    thumb_size=size,
                    max_pixels=self.settings.max_image_pixels,
                    extractors=tuple(extractors),
                )
            )
        return jobs

    def build_thumbnails(
        self,
        ids: Iterable[int] | None = None,
        *,
        progress: bool = True,
        force: bool = False,
        extractors: Sequence[str] = (),
        on_result: Any = None,
        keep_current: bool = False,
    ) -> tuple[int, int]:
        """Write thumbnails for active images whose thumbnail is missing or stale (one decode each).

        Args:
            ids: restrict to these image ids (default: all that need one).
            force: rebuild even when the thumbnail is current.
            extractors: feature extractors to run on the same decode (see ``imagerank.features``).
            on_result: called with each :class:`~imagerank.thumbnails.DecodeResult` (used by the feature pass).
                When None and ``extractors`` are given, their values are written to the sidecars.
            keep_current: with ``force``, decode images whose thumbnail is current for the extractors only,
                without rewriting the thumbnail.

        Returns:
            (thumbnails written, images marked corrupt).
        """
        jobs = self._thumb_jobs(ids, extractors, force, keep_current)
        collector = None
        if extractors and on_result is None:
            from .features.pipeline import DecodeCollector

            collector = on_result = DecodeCollector(self, extractors)
        written = corrupt = 0
        pending: list[tuple[Any, ...]] = []
        fails: list[tuple[Any, ...]] = []

        def flush() -> None:
            if not pending and not fails:
                return
            with self.db.atomic() as conn:
                for p in pending:
                    if p[0] == "ok":
                        conn.execute(
                            "UPDATE images SET width=?, height=?, thumb_fingerprint=? WHERE id=?", p[1:]
                        )
                    else:
                        conn.execute(
                            "UPDATE images SET status='corrupt', status_reason=? WHERE id=?", p[1:]
                        )
                self.record_failures(fails)  # joins this transaction
            pending.clear()
            fails.clear()

        by_id = {j.image_id: j for j in jobs}
        for res in run_decode_jobs(jobs, progress=progress):
            job = by_id[res.image_id]
            if res.ok:
                if res.thumb_written:
                    written += 1
                    pending.append(("ok", res.width, res.height, job.fingerprint, res.image_id))
                for stage, reason in res.failures.items():
                    fails.append((res.image_id, job.path, stage, reason))
            else:
                corrupt += 1
                pending.append(("bad", res.reason, res.image_id))
                fails.append((res.image_id, job.path, "decode", res.reason))
            if on_result is not None:
                on_result(res, job)
            if len(pending) >= 256:
                flush()
        flush()
        if collector is not None:
            collector.close()
        if corrupt:
            self._invalidate()
        return written, corrupt

    def thumbnail_path(self, image_id: int) -> Path | None:
        """Path of the current thumbnail of ``image_id``, or None when none is built (or the image is gone)."""
        rows = self.db.query("SELECT thumb_fingerprint FROM images WHERE id=?", (int(image_id),))
        if not rows or rows[0][0] is None:
            return None
        p = thumb_path(self.thumbs_dir, int(image_id), rows[0][0], self.settings.thumb_size)
        return p if p.exists() else None

    def thumbnail_bytes(self, image_id: int) -> bytes | None:
        """JPEG bytes of the thumbnail (building it on demand), or None when the image cannot be decoded."""
        p = self.thumbnail_path(image_id)
        if p is None:  # never built, stale, or the file was deleted from the cache: rebuild this one
            self.build_thumbnails([image_id], progress=False, force=True)
            p = self.thumbnail_path(image_id)
        if p is None:
            return None
        try:
            return p.read_bytes()
        except OSError:
            return None

    # ------------------------------------------------------------------ features (imagerank.features)
    def compute_features(
        self,
        *,
        hashes: bool = True,
        quality: bool = True,
        exif: bool = True,
        embeddings: str | Sequence[str] | None = None,
        ids: Iterable[int] | None = None,
        force: bool = False,
        scan: bool = False,
        devices: int | str = 1,
        strategy: str = "auto",
        accelerator: str = "auto",
        batch_size: int = 64,
        num_workers: int | None = None,
        precision: str = "32-true",
        skip_failures: bool = True,
        progress: bool = True,
    ) -> Any:
        """Compute missing or stale feature sidecars (hashes + quality in the thumbnail's single decode, EXIF,
        ``embeddings="MODEL:PRETRAINED"``); returns a ``FeatureReport``. See
        :func:`imagerank.features.pipeline.compute_features`."""
        from .features.pipeline import compute_features

        return compute_features(
            self, hashes=hashes, quality=quality, exif=exif, embeddings=embeddings, ids=ids, force=force, scan=scan,
            devices=devices, strategy=strategy, accelerator=accelerator, batch_size=batch_size,
            num_workers=num_workers, precision=precision, skip_failures=skip_failures, progress=progress,
        )

    def features_df(self, name: str) -> pd.DataFrame:
        """Sidecar ``name`` (``hashes``, ``quality``, ``exif``, ``embeddings/<model>__<pretrained>``) as a
        DataFrame, one current row per image, sorted by ``image_id``. See
        :func:`imagerank.features.sidecar.features_frame`."""
        from .features.sidecar import features_frame

        return features_frame(self, name)

    def embeddings(self, name: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(image_ids (N,) int64 ascending, X (N, D) float32 L2-normalised)`` of embedding set ``name``
        (``"<model>__<pretrained>"``; default the newest). Raises FeatureError when none was computed."""
        from .features.neighbors import embedding_matrix

        return embedding_matrix(self, name)

    def embedding_sets(self) -> dict[str, dict[str, Any]]:
        """Computed embedding sets: ``"<model>__<pretrained>"`` -> metadata (model, pretrained, dim, ...)."""
        from .features.neighbors import embedding_sets

        return embedding_sets(self)

    def near_duplicates(self, method: str = "phash", *, threshold: float | None = None) -> list[list[int]]:
        """Groups of near-duplicate active images (lists of ids, largest first) by ``"phash"`` Hamming distance
        (<= ``Settings.phash_threshold``) or ``"embedding"`` cosine (>= ``Settings.cosine_threshold``). See
        :func:`imagerank.features.neighbors.near_duplicate_groups`."""
        from .features.neighbors import near_duplicate_groups

        return near_duplicate_groups(self, method, threshold=threshold)

    def exact_duplicates(self) -> list[list[int]]:
        """Groups of active images with byte-identical files (equal digests), largest first."""
        from .features.neighbors import exact_duplicate_groups

        return exact_duplicate_groups(self)

    def similar(self, image_id: int, k: int = 10) -> pd.DataFrame:
        """The ``k`` nearest active images to ``image_id`` by embedding cosine: ``image_id``, ``similarity``,
        ``filepath``."""
        from .features.neighbors import similar_images

        return similar_images(self, image_id, k)

    def feature_map(self, method: str = "pca", *, source: str = "auto") -> pd.DataFrame:
        """2-D map of the active images (``image_id``, ``x``, ``y``) by PCA of embeddings (else hash bits)."""
        from .features.neighbors import feature_map

        return feature_map(self, method, source=source)

    # ------------------------------------------------------------------ pool & sessions
    def _invalidate(self) -> None:
        self._pool = None

    def pool(self) -> Pool:
        """The active images as arrays (cached; reloaded when another process has written the catalog)."""
        version = self.db.data_version()
        if self._pool is None or version != self._pool_version:
            rows = self.db.query(
                "SELECT id, mu, sigma, comparison_count FROM images WHERE status='active' ORDER BY id"
            )
            if rows:
                arr = np.array([tuple(r) for r in rows], dtype=np.float64)
                ids, mu, sigma, count = arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3]
            else:
                ids = mu = sigma = count = np.zeros(0)
            prior = None
            if self._prior_scores:
                prior = np.array([self._prior_scores.get(int(i), np.nan) for i in ids], dtype=np.float64)
            self._pool = Pool.from_arrays(ids, mu, sigma, count, prior)
            self._pool_version = version
        return self._pool

    def set_prior_scores(self, scores: dict[int, float] | None) -> None:
        """Give pairing strategies a learned prior: image id -> standardised ranker score (higher is better)."""
        self._prior_scores = dict(scores) if scores else None
        self._invalidate()

    def apply_prior(self, ranker: Any, *, max_comparisons: int = 3, scale: float | None = None) -> Any:
        """Turn a trained ranker's scores into prior ratings for images with at most ``max_comparisons``
        comparisons (``prior_mu = 25 + scale * confidence * z``, sigma shrunk by the ranker's validated
        confidence), replay the log and hand the scores to the pairing strategies. See
        :func:`imagerank.training.prior.apply_prior` for the mapping; returns its ``PriorReport``."""
        from .training.prior import apply_prior

        report = apply_prior(self, ranker, max_comparisons=max_comparisons, scale=scale)
        self._prior_origin = "ranker"  # the live prior no longer overwrites it in this process
        self.prior_status = str(report)
        self.prior_report = report
        return report

    def refit_prior(self, features: str | None = None, *, compute: bool = True) -> Any:
        """Refit the live prior now: the linear Bradley-Terry ranker on ``features`` (default
        ``Settings.prior_features``) from the votes so far becomes every image's prior rating, and the log is
        replayed. See :func:`imagerank.training.prior.refit_prior`; returns its ``LivePriorReport``.

        Raises:
            NoVotesError: no decisive vote between two images with features.
            FeatureError: no features (``compute=False``: none cached).
        """
        from .training.prior import refit_prior

        report = refit_prior(self, features=features or self.settings.prior_features, compute=compute)
        self._prior_origin = "live"
        self._votes_since_prior = 0
        self.prior_status = str(report)
        self.prior_report = report
        return report

    def clear_prior(self) -> int:
        """Remove every learned prior (ranker or live), replay the log; returns the ratings that changed."""
        from .training.prior import clear_prior

        changed = clear_prior(self)
        self._prior_origin = None
        self._votes_since_prior = 0
        self.prior_status = "no learned prior (cleared)"
        self.prior_report = None
        return changed

    def _after_rated_vote(self) -> None:
        """Every ``Settings.prior_refit_every`` rated votes in this process, refit the live prior (unless a
        trained ranker's prior was applied, or inside :meth:`deferred_prior`). A failed refit never fails the
        vote: it is logged and shown in ``prior_status``."""
        self._votes_since_prior += 1
        if not self._prior_deferred:
            self._maybe_refit_prior()

    def _maybe_refit_prior(self) -> None:
        every = self.settings.prior_refit_every
        if every <= 0 or self._prior_origin == "ranker" or self._votes_since_prior < every:
            return
        self._votes_since_prior = 0
        try:
            self.refit_prior(compute=False)
        except ImagerankError as exc:
            self.prior_status = f"no learned prior: {exc}"
        except Exception as exc:  # the vote is stored; a bug in the fit must not lose the session
            log.exception("live prior refit failed")
            self.prior_status = f"live prior refit failed: {type(exc).__name__}: {exc}"

    @contextmanager
    def deferred_prior(self) -> Iterator[None]:
        """Record many matches (an import, say) without refitting the live prior every
        ``prior_refit_every`` of them; one refit runs at the end when enough votes came in. Nestable."""
        self._prior_deferred += 1
        try:
            yield
        finally:
            self._prior_deferred -= 1
            if not self._prior_deferred:
                self._maybe_refit_prior()

    @property
    def session(self) -> Session:
        """The current voting session (started on first use)."""
        if self._session is None:
            self._session = self.start_session()
        return self._session

    def start_session(self, voter: str | None = None, strategy: str | None = None, seed: int | None = None) -> Session:
        """Start a new voting session (its own RNG and no-repeat memory) and make it current."""
        strategy = strategy or self.settings.strategy
        cur = self.db.execute(
            "INSERT INTO sessions (voter, strategy, started_at) VALUES (?,?,?)", (voter, strategy, utcnow())
        )
        sid = int(cur.lastrowid or 0)
        self._session = Session(sid, voter, strategy, np.random.default_rng(seed))
        return self._session

    def resume_session(self, session_id: int, seed: int | None = None) -> Session:
        """Make an earlier session current again, with the pairs it already judged.

        Raises:
            NotFoundError: no such session.
        """
        rows = self.db.query("SELECT id, voter, strategy FROM sessions WHERE id=?", (int(session_id),))
        if not rows:
            raise NotFoundError(f"session {session_id} does not exist")
        seen = {
            pair_key(r[0], r[1])
            for r in self.db.query(
                "SELECT a.image_id, b.image_id FROM matches m JOIN match_entries a ON a.match_id=m.id "
                "JOIN match_entries b ON b.match_id=m.id AND a.image_id < b.image_id "
                "WHERE m.session_id=? AND m.undone=0",
                (int(session_id),),
            )
        }
        r = rows[0]
        self._session = Session(r[0], r[1], r[2] or self.settings.strategy, np.random.default_rng(seed), seen)
        return self._session

    def next_pairs(
        self,
        n: int = 1,
        *,
        strategy: str | None = None,
        avoid: Iterable[tuple[int, int]] = (),
    ) -> list[tuple[int, int]]:
        """Up to ``n`` new (left, right) pairs of image ids for the current session.

        Pairs already judged in the session and pairs in ``avoid`` (e.g. queued in the browser) are not
        repeated; sides are randomised. ``strategy`` defaults to the session's (``Settings.strategy``).

        Raises:
            StrategyNotFoundError: unknown strategy name.
        """
        s = self.session
        ctx = PairContext(self.pool(), s.rng, s.seen, topk=self.settings.topk)
        return select_pairs(ctx, strategy or s.strategy, n, avoid=avoid)

    # ------------------------------------------------------------------ votes
    def vote(
        self,
        left: int,
        right: int,
        outcome: Outcome,
        *,
        decision_ms: float | None = None,
        voter: str | None = None,
    ) -> Match:
        """Record one A-vs-B judgement: ``outcome`` is ``"left"``, ``"right"``, ``"draw"`` or ``"skip"``.

        Ratings change for wins and draws (OpenSkill Plackett-Luce); a skip is recorded but not rated unless
        ``Settings.skip_as_draw``. Left is screen position 0, right 1.

        Raises:
            ValueError: unknown ``outcome`` or ``left == right``.
            NotFoundError: an image id is not in the catalog.
        """
        ranks = {"left": [0, 1], "right": [1, 0], "draw": [0, 0], "skip": [0, 0]}.get(outcome)
        if ranks is None:
            raise ValueError(f"outcome: expected 'left', 'right', 'draw' or 'skip', got {outcome!r}")
        kind = {"left": "win", "right": "win", "draw": "draw", "skip": "skip"}[outcome]
        return self.record_match([left, right], ranks, positions=[0, 1], kind=kind, decision_ms=decision_ms,
                                 voter=voter)

    def record_match(
        self,
        image_ids: Sequence[int],
        ranks: Sequence[int] | None = None,
        *,
        positions: Sequence[int | None] | None = None,
        kind: str | None = None,
        decision_ms: float | None = None,
        voter: str | None = None,
        source: str = "user",
    ) -> Match:
        """Record any judgement: a pairwise win or draw, a skip, or an N-way ranking (best-of-burst ...).

        Args:
            image_ids: N >= 2 distinct image ids.
            ranks: rank per image, 0 best; ties share a rank. Default: the order of ``image_ids``.
            positions: screen position per image (0 = left / first). Default: None (not shown on screen).
            kind: ``win``, ``draw``, ``skip`` or ``ranking``; inferred from N and ranks when None.
            source: ``user``, ``import``, ``suggestion`` ...

        Returns:
            The stored :class:`Match` with before/after ratings.

        Raises:
            ValueError: fewer than 2 images, duplicates, or ranks/positions of the wrong length.
            NotFoundError: an image id is not in the catalog.
        """
        ids = [int(i) for i in image_ids]
        if len(ids) < 2:
            raise ValueError(f"image_ids: a match needs at least 2 images, got {len(ids)}")
        if len(set(ids)) != len(ids):
            raise ValueError(f"image_ids: duplicates in {ids}")
        rk = list(range(len(ids))) if ranks is None else [int(r) for r in ranks]
        if len(rk) != len(ids):
            raise ValueError(f"ranks: expected {len(ids)} values, got {len(rk)}")
        pos: list[int | None] = [None] * len(ids) if positions is None else list(positions)
        if len(pos) != len(ids):
            raise ValueError(f"positions: expected {len(ids)} values, got {len(pos)}")
        if kind is None:
            kind = "ranking" if len(ids) > 2 else ("draw" if rk[0] == rk[1] else "win")
        if kind not in ("win", "draw", "skip", "ranking"):
            raise ValueError(f"kind: expected win, draw, skip or ranking, got {kind!r}")
        if kind == "skip":
            rk = [0] * len(ids)
        rated = kind != "skip" or self.settings.skip_as_draw
        session = self.session
        with self.db.atomic() as conn:
            now = utcnow()  # under the write lock: created_at follows id order even with several writers
            q = ",".join("?" * len(ids))
            rows = {r[0]: r for r in conn.execute(f"SELECT id, mu, sigma FROM images WHERE id IN ({q})", ids)}
            absent = [i for i in ids if i not in rows]
            if absent:
                raise NotFoundError(f"image_ids: no image with id {absent} in the catalog")
            before = [(rows[i][1], rows[i][2]) for i in ids]
            after = R.rate_ranking(before, rk) if rated else before
            cur = conn.execute(
                "INSERT INTO matches (session_id, voter, kind, rated, source, decision_ms, created_at) "
                "VALUES (?,?,?,?,?,?,?)",
                (session.id, voter or session.voter, kind, int(rated), source, decision_ms, now),
            )
            mid = int(cur.lastrowid or 0)
            conn.executemany(
                "INSERT INTO match_entries (match_id, image_id, rank, position, mu_before, sigma_before, "
                "mu_after, sigma_after) VALUES (?,?,?,?,?,?,?,?)",
                [(mid, i, r, p, b[0], b[1], a[0], a[1]) for i, r, p, b, a in zip(ids, rk, pos, before, after)],
            )
            if rated:
                conn.executemany(
                    "UPDATE images SET mu=?, sigma=?, comparison_count=comparison_count+1, last_compared_at=? "
                    "WHERE id=?",
                    [(a[0], a[1], now, i) for i, a in zip(ids, after)],
                )
        if rated and self._pool is not None:
            for i, a in zip(ids, after):
                self._pool.update(i, a[0], a[1], 1)
        session.seen.update(pair_keys(ids))
        entries = [R.Rated(i, r, b[0], b[1], a[0], a[1]) for i, r, b, a in zip(ids, rk, before, after)]
        match = Match(mid, kind, ids, rk, pos, rated, session.id, now, entries)
        if rated:
            self._after_rated_vote()
        return match

    def get_match(self, match_id: int) -> Match:
        """The stored match ``match_id``.

        Raises:
            NotFoundError: no such match.
        """
        m = self.db.query("SELECT id, kind, rated, session_id, created_at FROM matches WHERE id=?", (int(match_id),))
        if not m:
            raise NotFoundError(f"match {match_id} does not exist")
        es = self.db.query(
            "SELECT image_id, rank, position, mu_before, sigma_before, mu_after, sigma_after FROM match_entries "
            "WHERE match_id=? ORDER BY COALESCE(position, rank), image_id",
            (int(match_id),),
        )
        r = m[0]
        return Match(
            r[0], r[1], [e[0] for e in es], [e[1] for e in es], [e[2] for e in es], bool(r[2]), r[3], r[4],
            [R.Rated(e[0], e[1], e[3], e[4], e[5], e[6]) for e in es],
        )

    def undo(self, match_id: int | None = None, *, any_session: bool = False) -> Match | None:
        """Undo a match exactly: mark it undone and restore the ratings as if it had never happened.

        With no ``match_id``, the last kept match of the current session (of any session with
        ``any_session``). When no later kept match touched the same images, the before values are restored;
        otherwise the whole log is replayed (see :meth:`replay`).

        Returns:
            The undone :class:`Match`, or None when there is nothing to undo.

        Raises:
            NotFoundError: ``match_id`` does not exist or is already undone.
        """
        with self.db.atomic() as conn:
            if match_id is None:
                if any_session or self._session is None:
                    row = conn.execute("SELECT id FROM matches WHERE undone=0 ORDER BY id DESC LIMIT 1").fetchone()
                else:
                    row = conn.execute(
                        "SELECT id FROM matches WHERE undone=0 AND session_id=? ORDER BY id DESC LIMIT 1",
                        (self._session.id,),
                    ).fetchone()
                if row is None:
                    return None
                match_id = int(row[0])
            match = self.get_match(match_id)
            state = conn.execute("SELECT undone FROM matches WHERE id=?", (match_id,)).fetchone()
            if state[0]:
                raise NotFoundError(f"match {match_id} is already undone")
            conn.execute("UPDATE matches SET undone=1, undone_at=? WHERE id=?", (utcnow(), match_id))
            restored = False
            if match.rated:
                q = ",".join("?" * len(match.image_ids))
                later = conn.execute(
                    f"SELECT 1 FROM match_entries e JOIN matches m ON m.id=e.match_id WHERE m.id > ? "
                    f"AND m.undone=0 AND m.rated=1 AND e.image_id IN ({q}) LIMIT 1",
                    (match_id, *match.image_ids),
                ).fetchone()
                restored = later is None
                if restored:
                    for e in match.entries:
                        last = conn.execute(
                            "SELECT MAX(m.created_at) FROM matches m JOIN match_entries e ON e.match_id=m.id "
                            "WHERE e.image_id=? AND m.undone=0 AND m.rated=1",
                            (e.image_id,),
                        ).fetchone()[0]
                        conn.execute(
                            "UPDATE images SET mu=?, sigma=?, comparison_count=comparison_count-1, "
                            "last_compared_at=? WHERE id=?",
                            (e.mu_before, e.sigma_before, last, e.image_id),
                        )
                else:
                    self._replay(conn, write=True)
        if self._session is not None and match.session_id == self._session.id:
            self._session.seen.difference_update(pair_keys(match.image_ids))
        if match.rated and restored and self._pool is not None:  # the before values, as written above
            for e in match.entries:
                self._pool.update(e.image_id, e.mu_before, e.sigma_before, -1)
        elif match.rated:  # the log was replayed: reload
            self._invalidate()
        return match

    def _replay(self, conn: Any, *, write: bool) -> tuple[int, list[dict[str, Any]]]:
        """Replay kept rated matches from the priors; returns (matches replayed, differences from stored)."""
        stored = {
            r[0]: r
            for r in conn.execute(
                "SELECT id, mu, sigma, comparison_count, last_compared_at, prior_mu, prior_sigma FROM images"
            )
        }
        state: dict[int, list[Any]] = {
            i: [r[5] if r[5] is not None else R.DEFAULT_MU, r[6] if r[6] is not None else R.DEFAULT_SIGMA, 0, None]
            for i, r in stored.items()
        }
        rows = conn.execute(
            "SELECT m.id, m.created_at, e.image_id, e.rank, e.mu_before, e.sigma_before, e.mu_after, e.sigma_after "
            "FROM matches m JOIN match_entries e ON e.match_id=m.id WHERE m.undone=0 AND m.rated=1 "
            "ORDER BY m.id, e.rowid"
        ).fetchall()
        entry_updates = []
        n = 0
        for mid, grouped in itertools.groupby(rows, key=lambda r: r[0]):
            group = list(grouped)
            before = [(state[g[2]][0], state[g[2]][1]) for g in group]
            after = R.rate_ranking(before, [g[3] for g in group])
            for g, b, a in zip(group, before, after):
                st = state[g[2]]
                st[0], st[1] = a
                st[2] += 1
                st[3] = g[1]
                if (g[4], g[5], g[6], g[7]) != (b[0], b[1], a[0], a[1]):
                    entry_updates.append((b[0], b[1], a[0], a[1], mid, g[2]))
            n += 1
        diffs = []
        for i, r in stored.items():
            st = state[i]
            if (r[1], r[2], r[3]) != (st[0], st[1], st[2]):
                diffs.append({"image_id": i, "stored": (r[1], r[2], r[3]), "replayed": (st[0], st[1], st[2])})
        if write:
            conn.executemany(
                "UPDATE match_entries SET mu_before=?, sigma_before=?, mu_after=?, sigma_after=? "
                "WHERE match_id=? AND image_id=?",
                entry_updates,
            )
            conn.executemany(
                "UPDATE images SET mu=?, sigma=?, comparison_count=?, last_compared_at=? WHERE id=?",
                [(state[d["image_id"]][0], state[d["image_id"]][1], state[d["image_id"]][2],
                  state[d["image_id"]][3], d["image_id"]) for d in diffs],
            )
        return n, diffs

    def set_priors(self, priors: Iterable[tuple[float, float, int]] | None) -> int:
        """Set prior ratings and replay the vote log from them, in one transaction (a crash leaves either the old
        priors and ratings or the new ones, never a mix that ``doctor`` would flag).

        Args:
            priors: ``(prior_mu, prior_sigma, image_id)`` rows (OpenSkill units, sigma > 0); None removes every
                prior (back to mu 25, sigma 25/3).

        Returns:
            The number of images whose stored rating changed.
        """
        with self.db.atomic() as conn:
            if priors is None:
                conn.execute("UPDATE images SET prior_mu=NULL, prior_sigma=NULL WHERE prior_mu IS NOT NULL "
                             "OR prior_sigma IS NOT NULL")
            else:
                conn.executemany("UPDATE images SET prior_mu=?, prior_sigma=? WHERE id=?", priors)
            _, diffs = self._replay(conn, write=True)
        self._invalidate()
        return len(diffs)

    def replay(self) -> int:
        """Recompute every rating from the priors and the kept matches, and store the result.

        Returns:
            The number of images whose stored rating changed (0 on a healthy catalog).
        """
        with self.db.atomic() as conn:
            _, diffs = self._replay(conn, write=True)
        self._invalidate()
        return len(diffs)

    def doctor(self) -> DoctorReport:
        """Check the catalog: ``PRAGMA integrity_check`` and replayed ratings == stored ratings (exactly)."""
        integrity = "; ".join(str(r[0]) for r in self.db.query("PRAGMA integrity_check"))
        with self.db.atomic() as conn:
            n, diffs = self._replay(conn, write=False)
        return DoctorReport(integrity, n, diffs)

    # ------------------------------------------------------------------ tables
    def images_df(self, status: str | None = None) -> pd.DataFrame:
        """All images (or those with ``status``) as a DataFrame, one row per image, with ``ordinal``."""
        import pandas as pd

        sql = "SELECT * FROM images" + (" WHERE status=?" if status else "") + " ORDER BY id"
        df = pd.read_sql_query(sql, self.db.conn, params=(status,) if status else None)
        df["ordinal"] = R.ordinal(df["mu"], df["sigma"])
        return df

    def matches_df(self, include_undone: bool = False) -> pd.DataFrame:
        """The vote log, one row per match entry: match_id, kind, session_id, image_id, rank, position,
        mu/sigma before and after, decision_ms, created_at, undone."""
        import pandas as pd

        sql = (
            "SELECT m.id AS match_id, m.kind, m.rated, m.source, m.session_id, m.voter, m.decision_ms, m.created_at,"
            " m.undone, e.image_id, e.rank, e.position, e.mu_before, e.sigma_before, e.mu_after, e.sigma_after "
            "FROM matches m JOIN match_entries e ON e.match_id = m.id"
            + ("" if include_undone else " WHERE m.undone = 0")
            + " ORDER BY m.id, e.rowid"
        )
        return pd.read_sql_query(sql, self.db.conn)

    def comparisons_df(self) -> pd.DataFrame:
        """The seed's view: one row per (winner_id, loser_id, was_draw) of kept rated matches."""
        import pandas as pd

        return pd.read_sql_query("SELECT * FROM comparisons ORDER BY match_id", self.db.conn)

    def leaderboard(
        self, limit: int | None = None, *, include_inactive: bool = False, min_comparisons: int = 0
    ) -> pd.DataFrame:
        """Images ranked by ordinal ``mu - 3*sigma`` (descending), with rank 1..N, filename, mu, sigma.

        Columns: rank, image_id, filename, filepath, mu, sigma, ordinal, comparison_count, status.

        Args:
            limit: at most this many rows (the top).
            include_inactive: also missing, corrupt and rejected images.
            min_comparisons: only images in at least this many rated comparisons; 1 leaves out images never
                voted on, which a learned prior can rank high (ranks are then counted among the rest).

        Raises:
            ValueError: ``min_comparisons`` < 0.
        """
        import pandas as pd

        if int(min_comparisons) < 0:
            raise ValueError(f"min_comparisons: expected >= 0, got {min_comparisons!r}")
        where = ["comparison_count >= ?"] + ([] if include_inactive else ["status='active'"])
        sql = (
            "SELECT id AS image_id, filename, filepath, mu, sigma, mu - 3*sigma AS ordinal, comparison_count, "
            f"status FROM images WHERE {' AND '.join(where)} ORDER BY ordinal DESC, id ASC"
            + (f" LIMIT {int(limit)}" if limit else "")
        )
        df = pd.read_sql_query(sql, self.db.conn, params=(int(min_comparisons),))
        df.insert(0, "rank", np.arange(1, len(df) + 1))
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

    def record_failures(self, failures: Sequence[tuple[int | None, str | None, str, str]]) -> None:
        """Append ``(image_id, filepath, stage, reason)`` rows to the ``failures`` table (see :meth:`failures_df`);
        inside another transaction of this collection they join it."""
        if failures:
            with self.db.atomic() as conn:
                conn.executemany("INSERT INTO failures (image_id, filepath, stage, reason) VALUES (?,?,?,?)",
                                 failures)

    def failures_df(self) -> pd.DataFrame:
        """Every recorded failure of a batch pass: image_id, filepath, stage, reason, created_at."""
        import pandas as pd

        return pd.read_sql_query("SELECT * FROM failures ORDER BY id", self.db.conn)

    def image(self, image_id: int) -> dict[str, Any]:
        """One image's catalog row as a dict.

        Raises:
            NotFoundError: no such image.
        """
        rows = self.db.query("SELECT * FROM images WHERE id=?", (int(image_id),))
        if not rows:
            raise NotFoundError(f"image {image_id} does not exist")
        return dict(rows[0])

    def set_status(self, image_id: int, status: str, reason: str | None = None) -> None:
        """Set an image's status (``active``, ``missing``, ``corrupt``, ``rejected``) with a reason."""
        if status not in ("active", "missing", "corrupt", "rejected"):
            raise ValueError(f"status: expected active, missing, corrupt or rejected, got {status!r}")
        self.image(image_id)
        self.db.execute("UPDATE images SET status=?, status_reason=? WHERE id=?", (status, reason, int(image_id)))
        self._invalidate()

    def add_label(self, image_id: int, label: str, *, source: str = "user", note: str | None = None) -> int:
        """Attach ``good``, ``bad`` or ``flag`` to an image; returns the label id."""
        if label not in ("good", "bad", "flag"):
            raise ValueError(f"label: expected good, bad or flag, got {label!r}")
        self.image(image_id)
        cur = self.db.execute(
            "INSERT INTO labels (image_id, label, source, note) VALUES (?,?,?,?)", (int(image_id), label, source, note)
        )
        return int(cur.lastrowid or 0)

    # ------------------------------------------------------------------ export
    def export_top(
        self, n: int, out_dir: str | os.PathLike[str] | None = None, *, mode: str = "copy", min_comparisons: int = 0
    ) -> ExportReport:
        """Copy (or symlink / hardlink) the top ``n`` of the leaderboard as ``0001_name.ext`` ... See
        :func:`imagerank.export.export_images`; ``min_comparisons`` as in :meth:`leaderboard`."""
        from .export import export_images

        board = self.leaderboard(limit=n, min_comparisons=min_comparisons)
        return export_images(board, out_dir or self.exports_dir / f"top{n}-{_stamp()}", mode=mode)

    def export_above(
        self, threshold: float, out_dir: str | os.PathLike[str] | None = None, *, mode: str = "copy",
        min_comparisons: int = 0,
    ) -> ExportReport:
        """Export every active image whose ordinal ``mu - 3*sigma`` is >= ``threshold`` (and, with
        ``min_comparisons``, that was voted on at least that often)."""
        from .export import export_images

        board = self.leaderboard(min_comparisons=min_comparisons)
        board = board[board["ordinal"] >= threshold]
        return export_images(board, out_dir or self.exports_dir / f"above{threshold:g}-{_stamp()}", mode=mode)

    def to_csv(self, path: str | os.PathLike[str] | None = None, *, include_inactive: bool = True) -> Path:
        """Write the leaderboard (all images by default) to CSV; never overwrites an existing file.

        Raises:
            ExportError: ``path`` exists already.
        """
        from .export import write_csv

        return write_csv(self.leaderboard(include_inactive=include_inactive),
                         path or self.exports_dir / f"leaderboard-{_stamp()}.csv")


def _stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def init(
    workspace: str | os.PathLike[str],
    images: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] = (),
    *,
    recursive: bool = True,
    extensions: Sequence[str] | None = None,
    **settings: Any,
) -> Collection:
    """Create (or update) a workspace: write ``imagerank.toml`` and ``imagerank.db``; does not scan.

    Args:
        workspace: folder to create; may already exist.
        images: one or more image folders (stored as absolute paths).
        recursive: walk sub-folders.
        extensions: image suffixes (default ``.jpg .jpeg .png .webp``).
        **settings: any other :class:`~imagerank.config.Settings` field.

    Raises:
        ConfigError: a bad setting. DatabaseReadOnlyError: the folder is not writable.
    """
    root = Path(workspace)
    root.mkdir(parents=True, exist_ok=True)
    roots = [images] if isinstance(images, (str, os.PathLike)) else list(images)
    overrides: dict[str, Any] = {"recursive": recursive, **settings}
    if roots:
        overrides["roots"] = tuple(str(Path(r).expanduser().resolve()) for r in roots)
    if extensions is not None:
        overrides["extensions"] = tuple(extensions)
    cfg = load_settings(root, **overrides)
    write_settings(root, cfg)
    for sub in ("sidecars", "thumbs", "exports"):
        (root / sub).mkdir(exist_ok=True)
    return Collection(root, cfg, connect(root / DB_NAME))


def open_collection(workspace: str | os.PathLike[str], **overrides: Any) -> Collection:
    """Open an existing workspace folder.

    Raises:
        WorkspaceNotFoundError: no ``imagerank.db`` / ``imagerank.toml`` there.
        DatabaseReadOnlyError: the catalog cannot be written.
    """
    root = Path(workspace)
    if not (root / DB_NAME).exists() and not (root / CONFIG_NAME).exists():
        raise WorkspaceNotFoundError(
            f"{root} is not an imagerank workspace (no {DB_NAME}); create one with "
            f"`imagerank init {root} --images DIR` or `imagerank demo {root}`"
        )
    cfg = load_settings(root, **overrides)
    return Collection(root, cfg, connect(root / DB_NAME, create=True))
