"""The collection's EP posterior: a derived view of the vote log that ranks a consistent judge's images.

OpenSkill's stored ratings stay the exact replay of the log (replay, undo and ``doctor`` are unchanged). Beside
them :class:`PosteriorView` keeps the expectation-propagation posterior of :mod:`imagerank.ratings.posterior`
over the active images, built from the images' stored priors (the live prior's) and the kept rated matches (N-way
rankings as the pairwise factors of :func:`~imagerank.ratings.posterior.match_factors`):

- a rebuild (:func:`~imagerank.ratings.posterior.build_posterior`: beta fitted under EP, two EP passes) runs on a
  background thread after a prior refit, an undo, a replay or a batch, and every
  :data:`~imagerank.ratings.posterior.EP_SWEEP_EVERY` votes (two EP passes over a copy, no catalog read; a full
  rebuild with beta refitted every :data:`BETA_REFIT_EVERY` decisive votes), never inside a vote;
- each vote between rebuilds is one ADF step (microseconds) on the current posterior;
- the mode (:func:`~imagerank.ratings.posterior.decide_mode`: consistent judge while the EP-fitted beta / skill
  SD < ``EP_SWITCH``, or forced by ``Settings.posterior``) is re-decided at every rebuild.

In the consistent-judge mode the facade ranks the leaderboard, exports, the panels' top-k strip and the stability
estimate by this posterior and ``active`` picks with :func:`~imagerank.pairing.screen.screen_pairs`; otherwise
everything reads OpenSkill's ordinal as before. This is what ``benchmarks/ranking_sim.py --strategies
ep-adaptive`` simulates (the same functions).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .. import ratings as R
from ..ratings.posterior import (
    EP_PRIOR_INFLATION,
    EP_SWEEP_EVERY,
    EPPosterior,
    JudgeMode,
    board_score,
    build_posterior,
    decide_mode,
    match_factors,
    posterior_stability,
    skill_scale,
)
from .pool import PairContext
from .screen import screen_pairs

if TYPE_CHECKING:
    from ..catalog import Catalog, VoteEvent

__all__ = ["BETA_REFIT_EVERY", "PosteriorView"]

log = logging.getLogger(__name__)
#: Between prior refits (which refit it anyway) the EP beta is refitted, with a full rebuild, after this many more
#: decisive votes, or a quarter more when that is larger: at most one rebuild that reads the catalog per 100 votes.
BETA_REFIT_EVERY = 100


def _beta_due(decisive: int, fitted_on: int) -> bool:
    return decisive >= fitted_on + max(BETA_REFIT_EVERY, fitted_on // 4)

_ACTIVE = ("SELECT id, COALESCE(prior_mu, ?), COALESCE(prior_sigma, ?) FROM images WHERE status='active' "
           "ORDER BY id")
_MATCHES = ("SELECT m.id, e.image_id, e.rank FROM matches m JOIN match_entries e ON e.match_id=m.id "
            "WHERE m.undone=0 AND m.rated=1 ORDER BY m.id, e.rowid")


class _State:
    """One built posterior: the active ids it covers (ascending), the EP object, the skill scale, the votes."""

    def __init__(self, ids: np.ndarray, ep: EPPosterior, scale: float, decisive: int, beta_votes: int,
                 index: dict[int, int] | None = None) -> None:
        self.ids = ids
        self.ep = ep
        self.scale = scale
        self.decisive = decisive
        self.beta_votes = beta_votes  # decisive factors beta was fitted on
        self.index = index if index is not None else dict(zip(ids.tolist(), range(len(ids))))


class PosteriorView:
    """The EP posterior of one workspace, kept current off the vote's commit path (see the module docstring).

    Args:
        catalog: the workspace; its ``settings.posterior`` (``auto`` / ``on`` / ``off``) is read at each use.

    Thread safety: rebuilds run on one background thread and swap their result in under a lock; a vote's ADF
    step takes the same lock for microseconds.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._state: _State | None = None
        self._lock = threading.Lock()
        self._thread_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._running = False
        self._again: bool | None = None  # None: no rebuild asked meanwhile; else whether it refits beta
        self._stale = True
        self._since = 0  # votes folded in by ADF since the last rebuild
        self._pending: list[tuple[int, list[int], list[int]]] | None = None  # votes during a rebuild
        self._seen_version = -1  # the catalog's data_version when the last rebuild read it
        self.error: str | None = None
        self.unsubscribe = catalog.votes.subscribe(self._on_event)

    # ------------------------------------------------------------------ what the facade reads
    @property
    def mode(self) -> JudgeMode:
        """The current :class:`~imagerank.ratings.posterior.JudgeMode` (rebuilt first when stale; waits)."""
        self.ensure()
        return self._mode(self._state)

    def _mode(self, st: _State | None) -> JudgeMode:
        setting = self.catalog.settings.posterior
        if st is None:
            reason = f"no posterior ({self.error})" if self.error else "no posterior yet"
            return JudgeMode(False, float("nan"), f"ranking by OpenSkill's ordinal: {reason}")
        return decide_mode(st.ep.beta, st.scale, st.decisive, setting)

    def peek(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, JudgeMode] | None:
        """``(ids, mu, sigma, mode)`` as they are now, without waiting or rebuilding (the vote path's read); None
        when no posterior is built. A stale view starts a background rebuild."""
        if not self._stale and self.catalog.db.data_version() != self._seen_version:
            self._stale = True  # another process voted (or rescanned): its votes are not in this posterior
        if self._stale:
            self.rebuild_in_background(fit_beta=True)
        with self._lock:
            st = self._state
            if st is None:
                return None
            return st.ids, st.ep.mu, st.ep.sigma, self._mode(st)  # fresh arrays (computed properties)

    def consistent(self) -> bool:
        """Whether the consistent-judge mode is on now (no wait; False before a posterior is built)."""
        p = self.peek()
        return p is not None and p[3].consistent

    def ensure(self) -> None:
        """Rebuild now in this thread when stale (a script, a leaderboard); wait for a rebuild in flight."""
        self.wait()
        if self._stale or self.catalog.db.data_version() != self._seen_version:
            self.rebuild(fit_beta=True)

    def board(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(mu, sigma, score)`` of the posterior for image ``ids`` (NaN for ids it does not cover), rebuilt first
        when stale; None when no posterior could be built. ``score`` is :func:`~imagerank.ratings.posterior.
        board_score`."""
        self.ensure()
        st = self._state
        if st is not None and any(int(i) not in st.index for i in ids):  # a scan added or revived images
            self.rebuild(fit_beta=True)
        with self._lock:
            st = self._state
            if st is None:
                return None
            mu_all, sig_all = st.ep.mu, st.ep.sigma
        pos = np.array([st.index.get(int(i), -1) for i in ids], dtype=np.int64)
        ok = pos >= 0
        mu = np.full(pos.shape, np.nan)
        sigma = np.full(pos.shape, np.nan)
        mu[ok], sigma[ok] = mu_all[pos[ok]], sig_all[pos[ok]]
        return mu, sigma, board_score(mu, sigma)

    def stability(self, k: int, samples: int = 200, rng: np.random.Generator | int | None = None) -> float | None:
        """The consistent mode's top-k stability (:func:`~imagerank.ratings.posterior.posterior_stability`) on the
        current posterior without waiting; None before one is built."""
        p = self.peek()
        if p is None:
            return None
        return posterior_stability(p[1], p[2], k, samples=samples, rng=rng, ratio=p[3].ratio)

    def strategy(self, pool_ids: np.ndarray) -> Callable[[PairContext, int], list[tuple[int, int]]] | None:
        """The consistent mode's pick for a pool with ``pool_ids`` (``screen_pairs`` on this posterior), or None
        when the mode is off, no posterior is built, or it covers other images than the pool (a rebuild starts)."""
        if self.catalog.settings.posterior == "off":
            return None
        p = self.peek()
        if p is None or not p[3].consistent:
            return None
        ids, mu, sigma, _ = p
        if ids.shape != pool_ids.shape or not np.array_equal(ids, pool_ids):
            self._stale = True
            self.rebuild_in_background(fit_beta=True)
            return None
        with self._lock:
            beta = self._state.ep.beta if self._state is not None else R.BETA

        def pick(ctx: PairContext, n: int) -> list[tuple[int, int]]:
            return screen_pairs(ctx, n, mu, sigma, beta)

        return pick

    # ------------------------------------------------------------------ building
    def rebuild(self, fit_beta: bool = True) -> None:
        """Build the posterior from the catalog now (a snapshot read), with beta refitted or (``fit_beta=False``,
        the periodic passes) kept. Votes that arrive meanwhile are folded in afterwards."""
        db = self.catalog.db
        self._seen_version = db.data_version()  # before the read: another process's later commit rebuilds again
        with self._lock:
            self._pending = []
            old = self._state
        try:
            rows = db.snapshot_query(_ACTIVE, (R.DEFAULT_MU, R.DEFAULT_SIGMA))
            if len(rows) < 2:
                self._swap(None, "fewer than 2 active images", set())
                return
            arr = np.array(rows, dtype=np.float64)
            ids = arr[:, 0].astype(np.int64)
            index = dict(zip(ids.tolist(), range(len(ids))))
            a: list[int] = []
            b: list[int] = []
            y: list[float] = []
            read: set[int] = set()  # match ids in the snapshot: a vote both read and pending is folded once
            for mid, group in itertools.groupby(db.snapshot_query(_MATCHES), key=lambda r: r[0]):
                read.add(int(mid))
                g = list(group)
                pos = [index.get(int(e[1]), -1) for e in g]
                if len(g) < 2 or min(pos) < 0:
                    continue
                for i, j, r in match_factors([int(e[2]) for e in g]):
                    a.append(pos[i])
                    b.append(pos[j])
                    y.append(r)
            pm, ps = arr[:, 1], arr[:, 2]
            scale = skill_scale(pm, ps)
            decisive = sum(1 for r in y if r != 0.5)
            # beta is refitted when asked (priors changed, an undo) and as the votes grow (_beta_due)
            if fit_beta or old is None or _beta_due(decisive, old.beta_votes):
                ep = build_posterior(pm, ps, np.asarray(a, np.int64), np.asarray(b, np.int64), np.asarray(y))
                beta_votes = decisive
            else:
                beta_votes = old.beta_votes
                ep = EPPosterior(pm, EP_PRIOR_INFLATION * ps, old.ep.beta,
                                 sum(1 for r in y if r == 0.5) / max(len(y), 1))
                ep.extend(a, b, y)
                ep.sweep(2)
            self._swap(_State(ids, ep, scale, decisive, beta_votes, index), None, read)
        except Exception as exc:
            with self._lock:
                self._pending = None
            self.error = f"{type(exc).__name__}: {exc}"
            raise

    def sweep(self) -> None:
        """The periodic EP passes without reading the catalog: two passes over a copy of the current posterior
        (votes keep folding into the original meanwhile and are folded into the copy before it is swapped in);
        a full :meth:`rebuild` with beta refitted instead when it is due (:data:`BETA_REFIT_EVERY`)."""
        with self._lock:
            st = self._state
            if st is None or self._stale or _beta_due(st.decisive, st.beta_votes):
                st = None
            else:
                self._pending = []
                ep = st.ep.copy()
        if st is None:
            self.rebuild(fit_beta=True)
            return
        ep.sweep(2)
        done = _State(st.ids, ep, st.scale, st.decisive, st.beta_votes, st.index)
        with self._lock:
            pending, self._pending = self._pending or [], None
            if self._state is not st or self._stale:  # a rebuild or an undo came in between: keep theirs
                return
            for _, image_ids, ranks in pending:
                self._fold(done, image_ids, ranks)
            done.decisive = st.decisive  # the original counted the pending votes already
            self._state = done
            self._since = len(pending)

    def _swap(self, state: _State | None, error: str | None, read: set[int]) -> None:
        with self._lock:
            pending = [p for p in self._pending or [] if p[0] not in read]
            self._pending = None
            if state is not None:
                for _, image_ids, ranks in pending:
                    self._fold(state, image_ids, ranks)
            self._state = state
            self._since = len(pending)
            self._stale = False
            self.error = error

    def rebuild_in_background(self, fit_beta: bool = True) -> bool:
        """Start :meth:`rebuild` on the background thread; False when one is running (it runs once more after)."""
        with self._thread_lock:
            if self._running:
                self._again = bool(self._again) or fit_beta
                return False
            self._running = True
            self._thread = threading.Thread(target=self._background, args=(fit_beta,), daemon=True,
                                            name="imagerank-posterior")
            self._thread.start()
            return True

    def _background(self, fit_beta: bool) -> None:
        try:
            while True:
                try:
                    if fit_beta:
                        self.rebuild(fit_beta=True)
                    else:
                        self.sweep()
                except Exception:  # the votes are stored; the view falls back to OpenSkill's ordinal
                    log.exception("posterior rebuild failed")
                with self._thread_lock:
                    again, self._again = self._again, None
                    if again is None:
                        self._running = False
                        return
                fit_beta = again
        finally:
            self.catalog.db.release_reader()

    def wait(self, timeout: float | None = 60.0) -> None:
        """Block until a rebuild in flight has finished."""
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    def close(self) -> None:
        """Stop listening to the vote log and wait for a rebuild in flight."""
        self.unsubscribe()
        self.wait()

    # ------------------------------------------------------------------ votes
    def _fold(self, st: _State, image_ids: list[int], ranks: list[int]) -> bool:
        pos = [st.index.get(int(i), -1) for i in image_ids]
        if len(pos) < 2 or min(pos) < 0:
            return False
        for i, j, r in match_factors(ranks):
            st.ep.add(pos[i], pos[j], r)
            if r != 0.5:
                st.decisive += 1
        return True

    def _on_event(self, event: VoteEvent) -> None:
        if event.kind == "vote":
            m = event.match
            if m is None or not m.rated:
                return
            with self._lock:
                if self._pending is not None:
                    self._pending.append((m.id, list(m.image_ids), list(m.ranks)))
                st = self._state
                if self._stale or st is None:
                    return
                if not self._fold(st, m.image_ids, m.ranks):
                    self._stale = True  # an image it does not cover: rebuild on the next read
                    return
                self._since += 1
                due = self._since >= EP_SWEEP_EVERY
            if due:
                self.rebuild_in_background(fit_beta=False)
            return
        if event.kind == "undo" and event.match is not None and not event.match.rated:
            return  # a skip undone changes no rating
        # undo, replay (new priors, a prior swap, a rescan's statuses), batch: rebuilt with beta refitted
        self._stale = True
        self.rebuild_in_background(fit_beta=True)
