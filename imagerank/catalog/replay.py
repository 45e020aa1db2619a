"""Replaying the vote log from the priors, and swapping in new priors without making a vote wait.

The stored ratings are *defined* as the replay of every kept rated match, in id order, from each image's prior
(:mod:`imagerank.ratings`, OpenSkill Plackett-Luce): :func:`replay` recomputes them (and checks them, for
``doctor``). :func:`swap_priors` is how the live prior installs thousands of new priors while the user votes: the
ratings that depend on the vote log (images in a kept rated match) are computed from a snapshot outside the write
lock and written in one short transaction (recomputed under the lock only if a vote came in meanwhile); images
nobody voted on carry their prior as their rating and are written in small transactions, each row only if the
image is still unvoted. Every committed state replays exactly, so ``doctor`` stays green even after a crash half
way; an image voted on during the swap keeps its old prior until the next one.

The rating model's beta (the judge's performance SD, fitted by :func:`imagerank.ratings.consistency.fit_beta`) is
part of that definition: it is stored in ``rating_model`` (:func:`stored_beta`; no row is openskill's 25/6) and
every replay uses it; :func:`swap_priors` can install a new beta together with new priors.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .. import ratings as R
from .db import Database

__all__ = ["replay", "set_beta", "stored_beta", "swap_priors"]

_IMAGES = "SELECT id, mu, sigma, comparison_count, last_compared_at, prior_mu, prior_sigma FROM images"
_LOG = (
    "SELECT m.id, m.created_at, e.image_id, e.rank, e.mu_before, e.sigma_before, e.mu_after, e.sigma_after "
    "FROM matches m JOIN match_entries e ON e.match_id=m.id WHERE m.undone=0 AND m.rated=1 ORDER BY m.id, e.rowid"
)
_LOG_VERSION = "SELECT COALESCE(MAX(id), 0), COALESCE(SUM(undone), 0), COUNT(*) FROM matches"


_BETA = "SELECT beta FROM rating_model WHERE id=1"


def stored_beta(conn: sqlite3.Connection | Database) -> float:
    """The vote log's beta (OpenSkill units): the ``rating_model`` row, else openskill's default 25/6 (also for a
    read-only catalog made before the table existed)."""
    try:
        rows = conn.snapshot_query(_BETA) if isinstance(conn, Database) else conn.execute(_BETA).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return R.BETA
        raise
    return float(rows[0][0]) if rows else R.BETA


def set_beta(conn: sqlite3.Connection, beta: float, fitted_votes: int = 0) -> None:
    """Store ``beta`` (inside the caller's transaction; replay afterwards). Raises InvalidArgumentError when it is
    not a positive finite number."""
    R.model_for(beta)  # validates
    conn.execute("INSERT INTO rating_model (id, beta, fitted_votes, updated_at) VALUES (1, ?, ?, "
                 "strftime('%Y-%m-%dT%H:%M:%fZ','now')) ON CONFLICT(id) DO UPDATE SET beta=excluded.beta, "
                 "fitted_votes=excluded.fitted_votes, updated_at=excluded.updated_at", (float(beta), int(fitted_votes)))


def _start(row: Sequence[Any]) -> list[Any]:
    """[mu, sigma, comparisons, last_compared_at] of an image before any match: its prior, else the default."""
    return [row[5] if row[5] is not None else R.DEFAULT_MU, row[6] if row[6] is not None else R.DEFAULT_SIGMA,
            0, None]


def _run(stored: Mapping[int, Sequence[Any]], rows: Sequence[Sequence[Any]],
         state: dict[int, list[Any]] | None = None, beta: float = R.BETA
         ) -> tuple[int, dict[int, list[Any]], list[tuple[Any, ...]]]:
    """Replay the match ``rows`` with ``beta`` from the priors of ``stored`` (or go on from ``state``, a replay up to
    an earlier match): (matches, image id -> [mu, sigma, comparisons, last_compared_at], entry updates)."""
    state = {i: _start(r) for i, r in stored.items()} if state is None else state
    entry_updates = []
    n = 0
    for mid, grouped in itertools.groupby(rows, key=lambda r: r[0]):
        group = list(grouped)
        before = [(state[g[2]][0], state[g[2]][1]) for g in group]
        after = R.rate_ranking(before, [g[3] for g in group], beta)
        for g, b, a in zip(group, before, after):
            st = state[g[2]]
            st[0], st[1] = a
            st[2] += 1
            st[3] = g[1]
            if (g[4], g[5], g[6], g[7]) != (b[0], b[1], a[0], a[1]):
                entry_updates.append((b[0], b[1], a[0], a[1], mid, g[2]))
        n += 1
    return n, state, entry_updates


def _diffs(stored: Mapping[int, Sequence[Any]], state: dict[int, list[Any]]) -> list[dict[str, Any]]:
    out = []
    for i, r in stored.items():
        st = state[i]
        if (r[1], r[2], r[3]) != (st[0], st[1], st[2]):
            out.append({"image_id": i, "stored": (r[1], r[2], r[3]), "replayed": (st[0], st[1], st[2])})
    return out


def _write(conn: sqlite3.Connection, state: dict[int, list[Any]], diffs: list[dict[str, Any]],
           entry_updates: list[tuple[Any, ...]]) -> None:
    conn.executemany("UPDATE match_entries SET mu_before=?, sigma_before=?, mu_after=?, sigma_after=? "
                     "WHERE match_id=? AND image_id=?", entry_updates)
    conn.executemany("UPDATE images SET mu=?, sigma=?, comparison_count=?, last_compared_at=? WHERE id=?",
                     [(*state[d["image_id"]], d["image_id"]) for d in diffs])


def replay(conn: sqlite3.Connection, *, write: bool) -> tuple[int, list[dict[str, Any]]]:
    """Replay the kept rated matches from the priors (inside the caller's transaction).

    Returns:
        (matches replayed, one dict per image whose stored mu/sigma/comparison_count differ from the replay:
        ``image_id``, ``stored``, ``replayed``); with ``write`` the replay is stored (entries and images).
    """
    stored = {r[0]: r for r in conn.execute(_IMAGES)}
    n, state, entry_updates = _run(stored, conn.execute(_LOG).fetchall(), beta=stored_beta(conn))
    diffs = _diffs(stored, state)
    if write:
        _write(conn, state, diffs, entry_updates)
    return n, diffs


def swap_priors(db: Database, priors: Iterable[tuple[float, float, int]], *, chunk: int = 200,
                beta: float | None = None, fitted_votes: int = 0) -> int:
    """Install new priors ``(prior_mu, prior_sigma, image_id)`` (and, when given, a new ``beta`` fitted on
    ``fitted_votes`` votes) and the ratings that follow, holding the write lock only briefly (see the module
    docstring).

    1. Images in the vote log: the replay from their new priors is computed from a snapshot *outside* the write
       lock; inside one transaction, matches appended since the snapshot (votes that came in meanwhile) are
       replayed on top (a few, cheap), then priors, ratings and match entries are written. Only when a match was
       undone meanwhile is the whole log replayed under the lock.
    2. Never-voted images (rating = prior): transactions of ``chunk`` rows, each row written only if the image is
       still unvoted (else it keeps its old prior and the ratings that follow from it).

    Returns:
        The number of images whose stored rating changed.
    """
    new = {int(i): (float(m), float(s)) for m, s, i in priors}
    # the snapshot is read beside the writer (WAL), not under the shared connection's lock
    version = tuple(db.snapshot_query(_LOG_VERSION)[0])  # (last match id, matches undone, matches)
    rows = [r for r in db.snapshot_query(_LOG) if r[0] <= version[0]]  # a vote between the reads comes in below
    stored: dict[int, Sequence[Any]] = {
        r[0]: r for r in db.snapshot_query(_IMAGES + " WHERE id IN (SELECT DISTINCT image_id FROM match_entries)")}
    seeded = {i: (*r[:5], *new.get(i, (r[5], r[6]))) for i, r in stored.items()}
    if beta is not None:
        R.model_for(beta)  # validates before any work
    use_beta = stored_beta(db) if beta is None else float(beta)
    _, state, entry_updates = _run(seeded, rows, beta=use_beta)
    with db.atomic() as conn:
        now = tuple(conn.execute(_LOG_VERSION).fetchone())
        if beta is not None:
            set_beta(conn, beta, fitted_votes)
        elif stored_beta(conn) != use_beta:  # another writer changed beta since the snapshot
            version = (-1, -1, -1)
        if version[0] < 0 or now[1] != version[1] or now[2] - version[2] != _appended(conn, version[0]):
            # an undo (or a match we cannot place, or a new beta) since the snapshot: replay the whole log under
            # the lock
            voted = {int(r[0]) for r in conn.execute("SELECT DISTINCT image_id FROM match_entries")}
            conn.executemany("UPDATE images SET prior_mu=?, prior_sigma=? WHERE id=?",
                             [(*new[i], i) for i in voted if i in new])
            changed = len(replay(conn, write=True)[1])
        else:
            if now != version:  # votes appended since the snapshot: go on from the snapshot's replay
                more = conn.execute(_LOG.replace("ORDER BY", "AND m.id > ? ORDER BY"), (version[0],)).fetchall()
                touched = {int(r[2]) for r in more}
                q = ",".join("?" * len(touched))
                for r in conn.execute(_IMAGES + f" WHERE id IN ({q})", tuple(touched)):
                    stored[r[0]] = r  # their current values, for the comparison below
                    if r[0] not in state:  # voted on for the first time meanwhile
                        seeded[r[0]] = (*r[:5], *new.get(r[0], (r[5], r[6])))
                        state[r[0]] = _start(seeded[r[0]])
                _, state, more_updates = _run(seeded, more, state, beta=use_beta)
                entry_updates += more_updates
            diffs = _diffs(stored, state)
            conn.executemany("UPDATE images SET prior_mu=?, prior_sigma=? WHERE id=?",
                             [(*new[i], i) for i in state if i in new])
            _write(conn, state, diffs, entry_updates)
            changed = len(diffs)
            voted = set(state)
    rest = [(m, s, m, s, i, m, s, m, s) for i, (m, s) in new.items() if i not in voted]
    for k in range(0, len(rest), chunk):
        # No fsync per chunk (synchronous=NORMAL just for it: WAL keeps the order, the next vote's commit syncs
        # it; a chunk lost in a power cut leaves old priors with their consistent ratings); votes keep FULL.
        with db.lock, db.relaxed_sync(), db.atomic() as conn:
            before = conn.total_changes
            conn.executemany(
                "UPDATE images SET prior_mu=?, prior_sigma=?, mu=?, sigma=? WHERE id=? AND comparison_count=0 "
                "AND (mu IS NOT ? OR sigma IS NOT ? OR prior_mu IS NOT ? OR prior_sigma IS NOT ?)",
                rest[k:k + chunk],
            )
            changed += conn.total_changes - before
        time.sleep(0.001)  # Python's locks are not fair: let a waiting vote in before the next chunk
    return changed


def _appended(conn: sqlite3.Connection, after_id: int) -> int:
    """How many matches have an id above ``after_id``."""
    return int(conn.execute("SELECT COUNT(*) FROM matches WHERE id > ?", (after_id,)).fetchone()[0])
