"""Ranker scores as prior ratings: images with few comparisons start from what the ranker predicts.

The mapping (documented in the README and pinned by a test):

- ``z``: the ranker's utility of each active image with features, standardised over those images
  (``(s - mean) / sd``), clipped to [-3, 3];
- ``c``: the ranker's validated confidence, ``2 * accuracy - 1`` on its held-out pairs, in [0, 1]
  (:attr:`imagerank.training.ranker.Ranker.confidence`);
- ``prior_mu = 25 + scale * c * z`` with ``scale`` = OpenSkill's beta (25/6) by default: a perfectly validated
  ranker moves an image one "performance SD" per SD of its score; a ranker at chance moves nothing;
- ``prior_sigma = 25/3 * (1 - 0.3 * c)``: the more the ranker has been right on held-out votes, the less
  uncertain the prior (never below 70 % of the default, so votes still move the rating quickly).

Only active images with at most ``max_comparisons`` comparisons get a new prior; the others keep theirs (their
votes dominate anyway). The vote log is then replayed from the priors, so ``imagerank doctor`` stays green, and
the standardised scores are handed to the pairing strategies.

:class:`LivePrior` is the one owner of the learned prior of a workspace: the facade makes one, subscribed to the
vote log; it refits every ``Settings.prior_refit_every`` rated votes on a background thread (never inside a vote)
and swaps the priors in one transaction, applies a trained ranker's scores, or clears them. In a new process its
status says whether a learned prior is stored from an earlier session (one ``COUNT`` at construction).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import ratings as R
from .._util.pca import pca, standardise_columns
from ..catalog import Catalog, CatalogLike, VoteEvent, as_catalog
from ..errors import FeatureError, ImagerankError, InvalidArgumentError, NoVotesError
from ..ratings.priors import BTPrior, bt_prior
from .data import vote_pairs
from .features import FeatureMatrix, auto_source, feature_matrix, has_cheap_features

__all__ = [
    "LIVE_COMPONENTS",
    "LivePrior",
    "LivePriorReport",
    "LivePriorState",
    "PriorReport",
    "clear_prior",
    "live_design",
    "prior_from_scores",
]

log = logging.getLogger(__name__)
ScoresSink = Callable[[dict[int, float] | None], None]

SIGMA_SHRINK = 0.3


@dataclass
class PriorReport:
    """What :func:`apply_prior` did: images given a prior, images scored, confidence and scale used, ratings the
    replay changed."""

    n_updated: int
    n_scored: int
    confidence: float
    scale: float
    n_ratings_changed: int

    def __str__(self) -> str:
        return (f"prior from ranker (confidence {self.confidence:.2f}, scale {self.scale:.2f}): {self.n_updated} of "
                f"{self.n_scored} scored images got prior ratings; replay changed {self.n_ratings_changed} ratings")


def prior_from_scores(scores: np.ndarray, confidence: float, scale: float = R.BETA) -> tuple[np.ndarray, np.ndarray,
                                                                                              np.ndarray]:
    """The mapping above.

    Args:
        scores: (N,) ranker utilities.
        confidence: c in [0, 1] (clipped).
        scale: OpenSkill mu units per SD of score at full confidence.

    Returns:
        (z, prior_mu, prior_sigma), each (N,) float64.
    """
    s = np.asarray(scores, dtype=np.float64)
    c = float(min(max(confidence, 0.0), 1.0))
    sd = s.std() if len(s) > 1 else 0.0
    z = np.zeros_like(s) if sd <= 1e-12 else np.clip((s - s.mean()) / sd, -3.0, 3.0)
    mu = R.DEFAULT_MU + scale * c * z
    sigma = np.full_like(s, R.DEFAULT_SIGMA * (1.0 - SIGMA_SHRINK * c))
    return z, mu, sigma


def clear_prior(col: CatalogLike) -> int:
    """Remove every learned prior (back to mu 25, sigma 25/3) and replay the log. With a ``Collection``, its live
    prior forgets its state and the pairing prior is cleared too (``LivePrior.clear``).

    Returns:
        The number of images whose stored rating changed.
    """
    prior = getattr(col, "prior", None)
    if isinstance(prior, LivePrior):
        return prior.clear()
    return as_catalog(col).votes.set_priors(None)


# ---------------------------------------------------------------------------------------------- live prior
#: The live prior fits on at most this many principal components of the standardised features: with a few
#: hundred to a few thousand votes a 512-d linear ranker over-fits and its L-BFGS fit takes seconds; with 32
#: components a warm refit takes about 0.16 s at 5,000 images (``benchmarks/bench_pairing.py``).
LIVE_COMPONENTS = 32


@dataclass
class LivePriorReport:
    """What :func:`refit_prior` did.

    Attributes:
        features: the feature set the ranker was fitted on (``"embeddings:ViT-B-32__openai"``, ``"cheap-v1"`` ...).
        n_images: images with features (each got a prior rating).
        n_pairs: pairwise outcomes fitted (votes whose two images both have features; rankings give several).
        confidence: estimated correlation of the ranker's score with skill, 0..0.95.
        scale: estimated SD of skills, OpenSkill units.
        calibrated: whether confidence and scale were re-estimated (else kept from the previous fit).
        n_ratings_changed: stored ratings the replay changed.
        seconds: wall time of the refit.
        weight: probability that the features predict the votes at all (held-out score test,
            :func:`imagerank.ratings.priors.feature_weight`); the fitted prior is averaged with the default prior by
            it, so votes that carry no preference leave about the default prior.
        beta: the judge's performance SD fitted to the votes and stored with the log (OpenSkill units).
        off_reason: None while the prior is in use; else why it is off (too few votes, or the features do not
            predict the held-out votes): every image then has the default prior and pairing gets no scores.
        r: what the panel header shows ("taste prior r"): the estimated correlation of the prior's scores with
            the judge's utility, out of sample (:attr:`imagerank.ratings.priors.BTPrior.r`); 0 while off.
            ``confidence`` is the OpenSkill filter's working value and over-states it for consistent judges.
        judge_noise: the judge's per-image noise over the skills' SD fitted with ``r`` (None without one); the
            stability estimate widens the posterior by it (:func:`imagerank.ratings.stability.sigma_inflation`).
    """

    features: str
    n_images: int
    n_pairs: int
    confidence: float
    scale: float
    calibrated: bool
    n_ratings_changed: int
    seconds: float
    weight: float = 1.0
    beta: float = R.BETA
    off_reason: str | None = None
    r: float = 0.0
    judge_noise: float | None = None

    def __str__(self) -> str:
        return (f"live prior from {self.n_pairs} votes on {self.features} (taste prior r {self.r:.2f} held out, "
                f"filter confidence {self.confidence:.2f}, "
                f"scale {self.scale:.2f}, evidence weight {self.weight:.2f}, judge noise beta {self.beta:.2f}"
                f"{', recalibrated' if self.calibrated else ''}): {self.n_images} images, "
                f"{self.n_ratings_changed} ratings changed by the replay, {self.seconds:.2f} s"
                + (f"; {self.off_reason}" if self.off_reason else ""))


@dataclass
class LivePriorState:
    """What a collection keeps between refits in one process: the features as asked (``"auto"`` ...), their
    design matrix (:func:`live_design` of the feature set they resolved to) and the last fit."""

    features: str
    design: FeatureMatrix
    prior: BTPrior | None = None
    calibrated_at: int = 0


def live_design(X: np.ndarray) -> np.ndarray:
    """(N, D) features -> (N, min(D, LIVE_COMPONENTS)) float64: columns standardised (constant ones become 0),
    then projected on their leading principal components (:func:`imagerank._util.pca.pca`)."""
    Z = standardise_columns(X)
    return pca(Z, LIVE_COMPONENTS)[0] if Z.shape[1] > LIVE_COMPONENTS else Z


class LivePrior:
    """The learned prior of one workspace, refitted from the votes as they come in.

    Subscribed to the catalog's vote log: every ``Settings.prior_refit_every`` rated votes (0 turns it off) a
    refit is started on a background thread, so a vote never waits for a fit; at the end of a batch
    (``VoteLog.batch``: an import, a simulation) the refit runs at once in the caller's thread. A failed refit never
    fails a vote: it is logged and shown in :attr:`status`. Applying a trained ranker (:meth:`apply_ranker`) stops
    the live refits in this process.

    Args:
        catalog: the workspace.
        on_scores: called with image id -> standardised score after each fit (None when cleared); the facade
            hands them to the pairing pool.
        pool_size: the number of active images (to tell when the cached feature matrix no longer covers them);
            default a ``COUNT(*)`` on the catalog.
    """

    def __init__(self, catalog: Catalog, *, on_scores: ScoresSink | None = None,
                 pool_size: Callable[[], int] | None = None) -> None:
        self.catalog = catalog
        self._on_scores = on_scores or (lambda _scores: None)
        self._pool_size = pool_size or catalog.images.count_active
        self.state: LivePriorState | None = None
        #: ``"live"``, ``"ranker"`` (:meth:`apply_ranker`) or None: where the prior of this process came from.
        self.origin: str | None = None
        self.votes_since = 0
        #: images with a stored learned prior when this object was made (an earlier session's refit or ranker)
        self.stored_priors = int(catalog.db.query("SELECT COUNT(*) FROM images WHERE prior_mu IS NOT NULL")[0][0])
        self._status: str | None = None  # None: nothing happened in this process yet (see _current_status)
        self._report: Any = None
        self._lock = threading.RLock()  # one fit at a time
        self._thread_lock = threading.Lock()  # the background thread's bookkeeping; never held during a fit
        self._thread: threading.Thread | None = None
        self._running = False
        self._again = False
        self._listeners: list[Callable[[], None]] = []
        self.unsubscribe = catalog.votes.subscribe(self._on_event)

    # ------------------------------------------------------------------ what the user sees
    @property
    def status(self) -> str:
        """One line on the learned prior: the last refit's report, or why there is none (after a refit in flight)."""
        self.wait()
        return self._current_status()

    def _current_status(self) -> str:
        if self._status is not None:
            return self._status
        every = self.catalog.settings.prior_refit_every
        if not self.stored_priors:
            return "no learned prior yet"
        head = f"learned prior stored (from an earlier session) on {self.stored_priors} images; "
        if every <= 0:
            return head + "live refits are off (prior_refit_every = 0)"
        return head + f"refits after {max(every - self.votes_since, 1)} more votes"

    @property
    def report(self) -> Any:
        """The last :class:`LivePriorReport` or :class:`PriorReport` of this process, None before one (after a
        refit in flight)."""
        self.wait()
        return self._report

    @property
    def refitting(self) -> bool:
        """Whether a background refit is running now."""
        return self._running

    def on_refit(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` (on the refit's thread) after each background refit, successful or not, so a panel
        can show the new status; returns a function that unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def peek(self) -> tuple[str, Any]:
        """``(status, report)`` as they are now, without waiting for a refit in flight (a panel's header after a
        vote must not wait); the status says when a refit is running."""
        status = self._current_status() + (" (refitting now)" if self.refitting else "")
        return status, self._report

    def wait(self, timeout: float | None = 60.0) -> None:
        """Block until a background refit in flight has finished (at most ``timeout`` seconds)."""
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    def close(self) -> None:
        """Stop listening to the vote log and wait for a refit in flight."""
        self.unsubscribe()
        self.wait()

    # ------------------------------------------------------------------ triggers
    def _on_event(self, event: VoteEvent) -> None:
        if event.kind not in ("vote", "batch") or (not event.rated and event.kind == "vote"):
            return
        self.votes_since += event.rated
        every = self.catalog.settings.prior_refit_every
        if every <= 0 or self.origin == "ranker" or self.votes_since < every:
            return
        self.votes_since = 0
        if event.kind == "batch":
            self._refit_quietly()
            return
        self._start_background(compute=False)

    def refit_in_background(self) -> bool:
        """Start a refit on the background thread and return at once (a notebook cell must not wait for it): cheap
        features missing from the cache are computed there, the prior is swapped in as after every
        ``prior_refit_every`` votes, and :meth:`on_refit` listeners (the compare panel's header) hear when it lands;
        :attr:`status` waits for it, :meth:`peek` does not.

        Returns:
            True when a refit was started; False when one was running already (it runs once more afterwards).
        """
        return self._start_background(compute=True)

    def _start_background(self, compute: bool) -> bool:
        with self._thread_lock:  # never the fit lock: a vote must not wait for a fit
            if self._running:
                self._again = True
                return False
            self._running = True
            self._thread = threading.Thread(target=self._background, args=(compute,), name="imagerank-live-prior",
                                            daemon=True)
            self._thread.start()
            return True

    def _background(self, compute: bool = False) -> None:
        try:
            self._refit_chain(compute)
        finally:
            self.catalog.db.release_reader()  # this thread's snapshot reader

    def _refit_chain(self, compute: bool = False) -> None:
        while True:
            self._refit_quietly(compute)
            compute = False
            with self._thread_lock:
                again, self._again = self._again, False
                if not again:
                    self._running = False
            for listener in list(self._listeners):  # after every refit, so a panel shows each one as it lands
                try:
                    listener()
                except Exception:  # a panel that failed to redraw must not break the next refit
                    log.exception("live prior listener %r failed", listener)
            if not again:
                return

    def _refit_quietly(self, compute: bool = False) -> None:
        try:
            self.refit(compute=compute, swap=True, progress=False)
        except ImagerankError as exc:
            self._status = f"no learned prior: {exc}"
        except Exception as exc:  # the vote is stored; a bug in the fit must not lose the session
            log.exception("live prior refit failed")
            self._status = f"live prior refit failed: {type(exc).__name__}: {exc}"

    # ------------------------------------------------------------------ the three ways a prior changes
    def refit(self, features: str | None = None, *, compute: bool = True, swap: bool = False,
              progress: bool | None = None) -> LivePriorReport:
        """Fit the linear Bradley-Terry ranker on the votes so far and make it every image's OpenSkill prior.

        The live prior of the ``active`` strategy (the one ``benchmarks/ranking_sim.py`` measures): the features
        (columns standardised, then their first :data:`LIVE_COMPONENTS` principal components) and every kept vote
        (N-way rankings as their pairs) go to :func:`imagerank.ratings.priors.bt_prior`, which fits the ranker and
        calibrates it by empirical Bayes on held-out votes; every image with features gets ``images.prior_mu /
        prior_sigma`` from :func:`imagerank.ratings.priors.prior_to_rating`, the vote log is replayed from the
        priors in the same transaction (``imagerank doctor`` stays green) and the standardised scores go to the
        pairing strategies. The fitted prior is averaged with the default prior by the probability that the
        features predict the votes at all (a held-out sign-flip score test, :func:`imagerank.ratings.priors.
        feature_weight`): votes that carry no preference (alternating left/right, coin flips) leave about the
        default prior, so never-compared images do not outrank voted ones on their prior alone. Confidence and
        scale are re-estimated on the first fit in a process and whenever the
        votes have doubled since; the judge's performance SD beta is refitted to the votes first
        (:meth:`VoteLog.fit_beta`, also without features) and stored with the priors in the same swap; in
        between only the ranker's weights are refitted (warm start, milliseconds).
        Images without features keep their prior.

        Args:
            features: ``"auto"`` (newest CLIP embeddings, else cheap features), ``"cheap"`` or
                ``"embeddings:<model>__<pretrained>"``; default ``Settings.prior_features``.
            compute: compute cheap features that are not cached yet (a tqdm bar); False raises instead (the vote
                path never decodes thousands of thumbnails).
            swap: install the priors with :meth:`VoteLog.swap_priors` (short transactions: votes from other threads
                never wait long; the background refits use it) instead of one transaction (:meth:`VoteLog.set_priors`).
            progress: show the feature computation's bar (default: when ``compute``; background refits show none).

        Returns:
            A :class:`LivePriorReport`.

        Raises:
            NoVotesError: no kept decisive vote, or none between two images with features.
            FeatureError: no features (or, with ``compute=False``, none cached).
        """
        features = features or self.catalog.settings.prior_features
        with self._lock:
            report = self._refit(features, compute, swap, compute if progress is None else progress)
            self.origin = "live"
            self.votes_since = 0
            self._status = str(report)
            self._report = report
        return report

    def _refit(self, features: str, compute: bool, swap: bool, progress: bool = False) -> LivePriorReport:
        cat = self.catalog
        t0 = time.perf_counter()
        pairs = vote_pairs(cat)  # first: no votes, no feature pass
        if not (pairs.y == 1.0).any():
            found = f"only {len(pairs)} pairwise draws" if len(pairs) else "no kept votes"
            raise NoVotesError(f"no decisive votes yet ({found}): the live prior needs votes that say which image "
                               f"is better")
        # the judge's consistency first: it needs no features, and the prior is calibrated under it
        beta, fitted = cat.votes.fit_beta()
        state = self.state
        try:
            source = auto_source(cat) if features == "auto" else features
            if state is None or not self._state_current(state, features, source):
                state = LivePriorState(features, self._design(source, compute, progress))
        except FeatureError:
            if abs(beta / cat.votes.beta - 1.0) > 0.02:
                cat.votes.set_beta(beta, fitted_votes=fitted)
            raise
        ids = state.design.image_ids
        pos_a = state.design.rows(pairs.a)
        pos_b = state.design.rows(pairs.b)
        keep = (pos_a >= 0) & (pos_b >= 0)
        if not keep.any():
            raise NoVotesError(f"none of the {len(pairs.a)} voted pairs has features for both images: compute "
                               f"features for the voted images (`imagerank features`) first")
        m = int(keep.sum())
        calibrate = state.prior is None or m >= 2 * state.calibrated_at
        bp = bt_prior(state.design.X, pos_a[keep], pos_b[keep], pairs.y[keep], start=state.prior,
                      calibrate=calibrate, rng=0, beta=beta)
        if calibrate:
            state.calibrated_at = m
        state.prior = bp
        mu, sigma = bp.ratings()  # switched off (off_reason): exactly the default prior
        priors = [(float(a), float(b), int(i)) for i, a, b in zip(ids, mu, sigma)]
        changed = (cat.votes.swap_priors(priors, beta=beta, fitted_votes=fitted) if swap
                   else cat.votes.set_priors(priors, beta=beta, fitted_votes=fitted))
        # a prior switched off gives the pairing strategies no scores either
        self._on_scores(None if bp.off_reason else {int(i): float(v) for i, v in zip(ids, bp.z)})
        self.state = state
        return LivePriorReport(state.design.name, len(ids), m, float(bp.confidence), float(bp.scale),
                               bool(calibrate), changed, time.perf_counter() - t0, float(bp.weight), float(beta),
                               bp.off_reason, float(bp.r), bp.judge_noise)

    def _design(self, source: str, compute: bool, progress: bool = False) -> FeatureMatrix:
        if not compute and source.startswith("cheap") and not has_cheap_features(self.catalog):
            raise FeatureError("no features for a live prior yet: run `imagerank features` (CLIP embeddings) or "
                               "`imagerank prior` once (cheap colour and quality features)")
        fm = feature_matrix(self.catalog, source, progress=progress, compute=compute)
        if len(fm.image_ids) == 0:
            raise FeatureError(f"feature set {fm.name!r} has no vectors: run `imagerank features` first")
        return FeatureMatrix(fm.image_ids, live_design(fm.X), fm.name)

    def _state_current(self, state: LivePriorState, features: str, source: str) -> bool:
        """The cached feature matrix still serves: same request, same resolved feature set ``source`` (a newer
        embedding set replaces it), and it covers at least 99 % of the active images (else new ones are read in)."""
        name = state.design.name
        same_set = source == name or (source.startswith("cheap") and name.startswith("cheap"))
        return state.features == features and same_set and len(state.design.image_ids) >= 0.99 * self._pool_size()

    def apply_ranker(self, ranker: Any, *, max_comparisons: int = 3, scale: float | None = None) -> PriorReport:
        """Set ``images.prior_mu`` / ``prior_sigma`` from a trained ``ranker`` for images with few comparisons
        (the mapping in this module's docstring), replay the log, give the pairing strategies the standardised
        scores, and stop the live refits in this process.

        Args:
            ranker: a :class:`~imagerank.training.ranker.Ranker` (its feature set must be available).
            max_comparisons: images with at most this many comparisons get a prior.
            scale: mu units per score SD at full confidence (default OpenSkill's beta, 25/6).

        Raises:
            CheckpointError: the workspace's features are not the ranker's feature set.
            InvalidArgumentError: ``max_comparisons`` < 0.
        """
        if max_comparisons < 0:
            raise InvalidArgumentError(f"max_comparisons: expected >= 0, got {max_comparisons}")
        scale = R.BETA if scale is None else float(scale)
        cat = self.catalog
        with self._lock:
            active = {int(r[0]): int(r[1]) for r in cat.db.query("SELECT id, comparison_count FROM images "
                                                                  "WHERE status='active'")}
            scores = ranker.score_images(cat, np.asarray(sorted(active), dtype=np.int64))
            ids = scores.index.to_numpy(np.int64)
            z, mu, sigma = prior_from_scores(scores.to_numpy(np.float64), ranker.confidence, scale)
            upd = [(float(m), float(s), int(i)) for i, m, s in zip(ids, mu, sigma)
                   if active.get(int(i), 1 << 30) <= max_comparisons]
            changed = cat.votes.set_priors(upd)  # never-compared images carry their prior as their rating
            self._on_scores({int(i): float(v) for i, v in zip(ids, z)})
            report = PriorReport(len(upd), len(ids), float(ranker.confidence), scale, changed)
            self.origin = "ranker"
            self._status = str(report)
            self._report = report
        return report

    def clear(self) -> int:
        """Remove every learned prior (ranker or live), replay the log; returns the ratings that changed."""
        with self._lock:
            changed = self.catalog.votes.set_priors(None)
            self._on_scores(None)
            self.state = None
            self.origin = None
            self.votes_since = 0
            self._status = "no learned prior (cleared)"
            self._report = None
        return changed
