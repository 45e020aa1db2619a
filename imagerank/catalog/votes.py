"""The vote log: sessions, recording matches, exact undo, replay from the priors, ``doctor``, and hooks.

The log is append-only (DESIGN §3): a match is one judgement (a pairwise win, draw or skip, or an N-way ranking
such as best-of-burst) with its session, voter, time to decide and, per entry, image, rank, screen position and
the OpenSkill mu/sigma before and after (:mod:`imagerank.ratings`). Undo marks a match undone and restores the
before values, or replays the log when later matches touched the same images. Replaying every kept rated match in
id order from each image's prior reproduces the stored ratings exactly; :meth:`VoteLog.doctor` checks it.

Listeners subscribed with :meth:`VoteLog.subscribe` are called after each change is committed (a rated vote, an
undo, a replay); inside :meth:`VoteLog.batch` they get one ``"batch"`` event at the end instead of one per vote.
A listener that raises is logged and never fails the vote.
"""

from __future__ import annotations

import itertools
import logging
import math
import numbers
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .. import ratings as R
from .._util import utcnow
from ..errors import InvalidArgumentError, NotFoundError
from .db import Database
from .judge import JudgeConsistency, fit_log_beta, judge_consistency
from .replay import replay as replay_log
from .replay import set_beta as store_beta
from .replay import stored_beta, swap_priors

if TYPE_CHECKING:
    import pandas as pd

    from ..config import Settings

__all__ = ["DoctorReport", "Match", "Outcome", "Session", "VoteEvent", "VoteLog", "pair_key", "pair_keys"]

log = logging.getLogger(__name__)
Outcome = Literal["left", "right", "draw", "skip"]
MAX_VOTER_CHARS = 200


def pair_key(a: int, b: int) -> tuple[int, int]:
    """The unordered key of a pair of image ids."""
    return (a, b) if a < b else (b, a)


def pair_keys(ids: Sequence[int]) -> set[tuple[int, int]]:
    """The keys of every pair among ``ids`` (one match of N images holds N(N-1)/2 pairs)."""
    return {pair_key(int(a), int(b)) for a, b in itertools.combinations(ids, 2)}


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


@dataclass(frozen=True)
class VoteEvent:
    """What a listener hears after a committed change.

    Attributes:
        kind: ``"vote"`` (one rated match), ``"undo"``, ``"replay"`` (every rating may have changed: priors set,
            log replayed) or ``"batch"`` (the end of :meth:`VoteLog.batch`, ``rated`` votes in it).
        match: the match voted or undone (None for replay and batch).
        restored: for an undo, whether the before values were restored in place (else the log was replayed).
        rated: rated votes this event stands for (1 for a vote, the count for a batch, 0 otherwise).
    """

    kind: Literal["vote", "undo", "replay", "batch"]
    match: Match | None = None
    restored: bool = False
    rated: int = 0


Listener = Callable[[VoteEvent], None]


class VoteLog:
    """The catalog's vote log over one :class:`~imagerank.catalog.db.Database`.

    Args:
        db: the catalog connection.
        settings: the workspace settings (``strategy`` for new sessions, ``skip_as_draw``).
    """

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._session: Session | None = None
        self._listeners: list[Listener] = []
        self._batch_depth = 0
        self._batch_rated = 0
        self._local = threading.local()

    # ------------------------------------------------------------------ listeners
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` after each committed change; returns a function that unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _fire(self, event: VoteEvent) -> None:
        if event.kind == "vote" and self._batch_depth:
            self._batch_rated += event.rated
            event = VoteEvent("vote", event.match, rated=0)  # caches still update; counters wait for the batch
        for fn in list(self._listeners):
            try:
                fn(event)
            except Exception:  # a listener must never lose a stored vote
                log.exception("vote log listener %r failed", fn)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Record many matches (an import, a simulation) as one batch: listeners see each vote with ``rated=0``
        and one ``"batch"`` event with the count at the end (the live prior refits once). Nestable."""
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if not self._batch_depth:
                n, self._batch_rated = self._batch_rated, 0
                self._fire(VoteEvent("batch", rated=n))

    # ------------------------------------------------------------------ sessions
    @property
    def session(self) -> Session:
        """The current voting session (started on first use; inside :meth:`session_scope`, that one)."""
        scoped = getattr(self._local, "session", None)
        if scoped is not None:
            return scoped
        if self._session is None:
            self._session = self.start_session()
        return self._session

    @property
    def current_session(self) -> Session | None:
        """The current session, or None when none was started yet (never starts one)."""
        scoped = getattr(self._local, "session", None)
        return scoped if scoped is not None else self._session

    def _new_session(self, voter: str | None, strategy: str | None, seed: int | None) -> Session:
        strategy = strategy or self.settings.strategy
        cur = self.db.execute("INSERT INTO sessions (voter, strategy, started_at) VALUES (?,?,?)",
                              (voter, strategy, utcnow()))
        return Session(int(cur.lastrowid or 0), voter, strategy, np.random.default_rng(seed))

    def start_session(self, voter: str | None = None, strategy: str | None = None, seed: int | None = None) -> Session:
        """Start a new voting session (its own RNG and no-repeat memory) and make it current."""
        self._session = self._new_session(voter, strategy, seed)
        return self._session

    @contextmanager
    def session_scope(
        self, voter: str | None = None, strategy: str | None = None, seed: int | None = None, *,
        note: str | None = None,
    ) -> Iterator[Session]:
        """A new session that is current only inside the block, in this thread (an import, a simulation); the
        session current before it is current again afterwards, whatever happens in the block. ``note`` is stored
        with the session (an import stores the digest of its file: :meth:`sessions_with_note`)."""
        previous = getattr(self._local, "session", None)
        session = self._new_session(voter, strategy, seed)
        if note is not None:
            self.db.execute("UPDATE sessions SET note=? WHERE id=?", (note, session.id))
        self._local.session = session
        try:
            yield session
        finally:
            self._local.session = previous

    def sessions_with_note(self, note: str) -> list[int]:
        """Ids of the sessions stored with ``note`` (ascending)."""
        return [int(r[0]) for r in self.db.query("SELECT id FROM sessions WHERE note=? ORDER BY id", (note,))]

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

    # ------------------------------------------------------------------ recording
    def vote(self, left: int, right: int, outcome: Outcome, *, decision_ms: float | None = None,
             voter: str | None = None) -> Match:
        """Record one A-vs-B judgement: ``outcome`` is ``"left"``, ``"right"``, ``"draw"`` or ``"skip"``.

        Raises:
            InvalidArgumentError: unknown ``outcome`` or ``left == right``.
            NotFoundError: an image id is not in the catalog.
        """
        ranks = {"left": [0, 1], "right": [1, 0], "draw": [0, 0], "skip": [0, 0]}.get(outcome)
        if ranks is None:
            raise InvalidArgumentError(f"outcome: expected 'left', 'right', 'draw' or 'skip', got {outcome!r}")
        kind = {"left": "win", "right": "win", "draw": "draw", "skip": "skip"}[outcome]
        return self.record([left, right], ranks, positions=[0, 1], kind=kind, decision_ms=decision_ms, voter=voter)

    def record(
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
            source: ``user``, ``import``, ``suggestion``, ``simulated`` ...

        Returns:
            The stored :class:`Match` with before/after ratings (OpenSkill Plackett-Luce, :mod:`imagerank.ratings`).

        Raises:
            InvalidArgumentError: fewer than 2 images, duplicates, ranks/positions of the wrong length,
                ``decision_ms`` not a finite number >= 0, or ``voter`` longer than 200 characters.
            NotFoundError: an image id is not in the catalog.
        """
        if decision_ms is not None and not (isinstance(decision_ms, numbers.Real) and math.isfinite(decision_ms)
                                            and decision_ms >= 0):
            raise InvalidArgumentError(f"decision_ms: expected a finite number of milliseconds >= 0, got "
                                       f"{decision_ms!r}")
        if voter is not None and (not isinstance(voter, str) or len(voter) > MAX_VOTER_CHARS):
            shown = f"{len(voter)} characters" if isinstance(voter, str) else repr(voter)
            raise InvalidArgumentError(f"voter: expected a name of at most {MAX_VOTER_CHARS} characters, got {shown}")
        ids = [int(i) for i in image_ids]
        if len(ids) < 2:
            raise InvalidArgumentError(f"image_ids: a match needs at least 2 images, got {len(ids)}")
        if len(set(ids)) != len(ids):
            raise InvalidArgumentError(f"image_ids: duplicates in {ids}")
        rk = list(range(len(ids))) if ranks is None else [int(r) for r in ranks]
        if len(rk) != len(ids):
            raise InvalidArgumentError(f"ranks: expected {len(ids)} values, got {len(rk)}")
        pos: list[int | None] = [None] * len(ids) if positions is None else list(positions)
        if len(pos) != len(ids):
            raise InvalidArgumentError(f"positions: expected {len(ids)} values, got {len(pos)}")
        if kind is None:
            kind = "ranking" if len(ids) > 2 else ("draw" if rk[0] == rk[1] else "win")
        if kind not in ("win", "draw", "skip", "ranking"):
            raise InvalidArgumentError(f"kind: expected win, draw, skip or ranking, got {kind!r}")
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
            after = R.rate_ranking(before, rk, stored_beta(conn)) if rated else before
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
        session.seen.update(pair_keys(ids))
        entries = [R.Rated(i, r, b[0], b[1], a[0], a[1]) for i, r, b, a in zip(ids, rk, before, after)]
        match = Match(mid, kind, ids, rk, pos, rated, session.id, now, entries)
        if rated:
            self._fire(VoteEvent("vote", match, rated=1))
        return match

    def get(self, match_id: int) -> Match:
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

        With no ``match_id``, the last kept match of the current session (of any session with ``any_session``).
        When no later kept match touched the same images, the before values are restored; otherwise the whole
        log is replayed (see :meth:`replay`).

        Returns:
            The undone :class:`Match`, or None when there is nothing to undo.

        Raises:
            NotFoundError: ``match_id`` does not exist or is already undone.
        """
        current = self.current_session
        with self.db.atomic() as conn:
            if match_id is None:
                if any_session or current is None:
                    row = conn.execute("SELECT id FROM matches WHERE undone=0 ORDER BY id DESC LIMIT 1").fetchone()
                else:
                    row = conn.execute(
                        "SELECT id FROM matches WHERE undone=0 AND session_id=? ORDER BY id DESC LIMIT 1",
                        (current.id,),
                    ).fetchone()
                if row is None:
                    return None
                match_id = int(row[0])
            match = self.get(match_id)
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
        if current is not None and match.session_id == current.id:
            current.seen.difference_update(pair_keys(match.image_ids))
        self._fire(VoteEvent("undo", match, restored=restored))
        return match

    def undo_source(self, source: str) -> int:
        """Undo every kept match recorded with ``source`` (``"simulated"``, ``"import"`` ...) exactly, at once.

        The matches are marked undone and the log replayed from the priors in one transaction, so the ratings are
        those of the matches left, as if the removed ones had never been recorded (:meth:`doctor` stays ok).
        Listeners hear one ``"replay"`` event. Stored priors are left as they are.

        Returns:
            The number of matches undone (0 when none is kept with that source; nothing changes then).

        Raises:
            InvalidArgumentError: ``source`` is not a non-empty string.
        """
        if not isinstance(source, str) or not source.strip():
            raise InvalidArgumentError(f"source: expected a vote source such as 'simulated', got {source!r}")
        current = self.current_session
        with self.db.atomic() as conn:
            ids = [int(r[0]) for r in conn.execute("SELECT id FROM matches WHERE undone=0 AND source=?",
                                                   (source,)).fetchall()]
            if not ids:
                return 0
            in_session: dict[int, list[int]] = {}  # match -> images, for the current session's seen pairs
            if current is not None:
                for mid, image_id in conn.execute(
                        "SELECT m.id, e.image_id FROM match_entries e JOIN matches m ON m.id=e.match_id "
                        "WHERE m.undone=0 AND m.source=? AND m.session_id=?", (source, current.id)).fetchall():
                    in_session.setdefault(int(mid), []).append(int(image_id))
            conn.execute("UPDATE matches SET undone=1, undone_at=? WHERE undone=0 AND source=?", (utcnow(), source))
            self._replay(conn, write=True)
        if current is not None:
            for image_ids in in_session.values():  # the current session may show those pairs again
                current.seen.difference_update(pair_keys(image_ids))
        self._fire(VoteEvent("replay"))
        return len(ids)

    # ------------------------------------------------------------------ replay
    def _replay(self, conn: Any, *, write: bool) -> tuple[int, list[dict[str, Any]]]:
        """Replay kept rated matches from the priors; returns (matches replayed, differences from stored)."""
        return replay_log(conn, write=write)

    def set_priors(self, priors: Iterable[tuple[float, float, int]] | None, *, beta: float | None = None,
                   fitted_votes: int = 0) -> int:
        """Set prior ratings and replay the vote log from them, in one transaction (a crash leaves either the old
        priors and ratings or the new ones, never a mix that :meth:`doctor` would flag).

        Args:
            priors: ``(prior_mu, prior_sigma, image_id)`` rows (OpenSkill units, sigma > 0); None removes every
                prior (back to mu 25, sigma 25/3).
            beta: also store this beta (the judge's performance SD, :meth:`fit_beta`) before the replay.
            fitted_votes: the votes ``beta`` was fitted on (shown to the user).

        Returns:
            The number of images whose stored rating changed.

        Raises:
            InvalidArgumentError: ``beta`` is not a positive finite number.
        """
        if beta is not None:
            R.model_for(beta)
        with self.db.atomic() as conn:
            if beta is not None:
                store_beta(conn, beta, fitted_votes)
            if priors is None:
                conn.execute("UPDATE images SET prior_mu=NULL, prior_sigma=NULL WHERE prior_mu IS NOT NULL "
                             "OR prior_sigma IS NOT NULL")
            else:
                conn.executemany("UPDATE images SET prior_mu=?, prior_sigma=? WHERE id=?", priors)
            _, diffs = self._replay(conn, write=True)
        self._fire(VoteEvent("replay"))
        return len(diffs)

    def swap_priors(self, priors: Iterable[tuple[float, float, int]], *, beta: float | None = None,
                    fitted_votes: int = 0) -> int:
        """Like :meth:`set_priors`, but never holds the write lock for long, so votes from another thread go on
        while thousands of priors change (the live prior's background refit; see
        :func:`imagerank.catalog.replay.swap_priors`). Every committed state replays exactly; an image voted on
        during the swap keeps its old prior. With ``beta``, the new beta is stored in the same transaction as the
        replayed ratings.

        Returns:
            The number of images whose stored rating changed.

        Raises:
            InvalidArgumentError: ``beta`` is not a positive finite number.
        """
        changed = swap_priors(self.db, priors, beta=beta, fitted_votes=fitted_votes)
        self._fire(VoteEvent("replay"))
        return changed

    # ------------------------------------------------------------------ the judge's consistency (beta)
    @property
    def beta(self) -> float:
        """The performance SD the ratings use (OpenSkill units): the fitted one, else openskill's 25/6."""
        return stored_beta(self.db)

    def set_beta(self, beta: float, *, fitted_votes: int = 0) -> int:
        """Store ``beta`` and replay the log with it, in one transaction (``doctor`` stays exact).

        Returns:
            The number of images whose stored rating changed.

        Raises:
            InvalidArgumentError: ``beta`` is not a positive finite number.
        """
        R.model_for(beta)
        with self.db.atomic() as conn:
            store_beta(conn, beta, fitted_votes)
            _, diffs = self._replay(conn, write=True)
        self._fire(VoteEvent("replay"))
        return len(diffs)

    def fit_beta(self) -> tuple[float, int]:
        """``(beta, matches)`` fitted to the kept votes from the stored priors; nothing is written
        (:func:`imagerank.catalog.judge.fit_log_beta`)."""
        return fit_log_beta(self.db)

    def consistency(self) -> JudgeConsistency:
        """The stored beta and how often the judge would repeat their answers (:class:`JudgeConsistency`)."""
        return judge_consistency(self.db)

    def replay(self) -> int:
        """Recompute every rating from the priors and the kept matches, and store the result.

        Returns:
            The number of images whose stored rating changed (0 on a healthy catalog).
        """
        with self.db.atomic() as conn:
            _, diffs = self._replay(conn, write=True)
        self._fire(VoteEvent("replay"))
        return len(diffs)

    def doctor(self) -> DoctorReport:
        """Check the catalog: ``PRAGMA integrity_check`` and replayed ratings == stored ratings (exactly)."""
        integrity = "; ".join(str(r[0]) for r in self.db.query("PRAGMA integrity_check"))
        with self.db.atomic() as conn:
            n, diffs = self._replay(conn, write=False)
        return DoctorReport(integrity, n, diffs)

    # ------------------------------------------------------------------ reading
    def kept_entries(self, *, include_skips: bool = False) -> np.ndarray:
        """(M, 3) int64 rows ``(match_id, image_id, rank)`` of every kept (not undone) match, in vote order (match
        id, then entry order); skips are left out unless ``include_skips``."""
        where = "m.undone=0" + ("" if include_skips else " AND m.kind != 'skip'")
        rows = self.db.snapshot_query("SELECT m.id, e.image_id, e.rank FROM matches m JOIN match_entries e ON "
                                      f"e.match_id=m.id WHERE {where} ORDER BY m.id, e.rowid")
        return np.array(rows, dtype=np.int64).reshape(-1, 3)

    def matches_df(self, include_undone: bool = False) -> pd.DataFrame:
        """The vote log, one row per match entry: match_id, kind, rated, source, session_id, voter, decision_ms,
        created_at, undone, image_id, rank, position, mu/sigma before and after."""
        sql = (
            "SELECT m.id AS match_id, m.kind, m.rated, m.source, m.session_id, m.voter, m.decision_ms, m.created_at,"
            " m.undone, e.image_id, e.rank, e.position, e.mu_before, e.sigma_before, e.mu_after, e.sigma_after "
            "FROM matches m JOIN match_entries e ON e.match_id = m.id"
            + ("" if include_undone else " WHERE m.undone = 0")
            + " ORDER BY m.id, e.rowid"
        )
        return self.db.read_frame(sql)

    def comparisons_df(self) -> pd.DataFrame:
        """The seed's view: one row per (winner_id, loser_id, was_draw) of kept rated matches."""
        return self.db.read_frame("SELECT * FROM comparisons ORDER BY match_id")
