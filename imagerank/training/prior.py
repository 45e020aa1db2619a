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
the standardised scores are handed to the pairing strategies (``Collection.set_prior_scores``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import ratings as R
from .features import FeatureMatrix

if TYPE_CHECKING:
    from ..collection import Collection

__all__ = ["LivePriorReport", "PriorReport", "apply_prior", "clear_prior", "prior_from_scores", "refit_prior"]

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


def apply_prior(col: Collection, ranker: Any, *, max_comparisons: int = 3, scale: float | None = None) -> PriorReport:
    """Set ``images.prior_mu`` / ``prior_sigma`` from ``ranker`` for images with few comparisons, replay the log,
    and give the pairing strategies the standardised scores.

    Args:
        col: the collection.
        ranker: a :class:`~imagerank.training.ranker.Ranker` (its feature set must be available in ``col``).
        max_comparisons: images with at most this many comparisons get a prior.
        scale: mu units per score SD at full confidence (default OpenSkill's beta, 25/6).

    Raises:
        CheckpointError: the collection's features are not the ranker's feature set.
        ValueError: ``max_comparisons`` < 0.
    """
    if max_comparisons < 0:
        raise ValueError(f"max_comparisons: expected >= 0, got {max_comparisons}")
    scale = R.BETA if scale is None else float(scale)
    active = {int(r[0]): int(r[1]) for r in col.db.query("SELECT id, comparison_count FROM images "
                                                          "WHERE status='active'")}
    scores = ranker.score_images(col, np.asarray(sorted(active), dtype=np.int64))
    ids = scores.index.to_numpy(np.int64)
    z, mu, sigma = prior_from_scores(scores.to_numpy(np.float64), ranker.confidence, scale)
    upd = [(float(m), float(s), int(i)) for i, m, s in zip(ids, mu, sigma) if active.get(int(i), 1 << 30)
           <= max_comparisons]
    changed = col.set_priors(upd)  # never-compared images carry their prior as their rating after the replay
    col.set_prior_scores({int(i): float(v) for i, v in zip(ids, z)})
    return PriorReport(len(upd), len(ids), float(ranker.confidence), scale, changed)


def clear_prior(col: Collection) -> int:
    """Remove every learned prior (back to mu 25, sigma 25/3), replay the log and clear the pairing prior.

    Returns:
        The number of images whose stored rating changed.
    """
    changed = col.set_priors(None)
    col.set_prior_scores(None)
    col._live_prior = None
    return changed


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
    """

    features: str
    n_images: int
    n_pairs: int
    confidence: float
    scale: float
    calibrated: bool
    n_ratings_changed: int
    seconds: float

    def __str__(self) -> str:
        return (f"live prior from {self.n_pairs} votes on {self.features} (confidence {self.confidence:.2f}, "
                f"scale {self.scale:.2f}{', recalibrated' if self.calibrated else ''}): {self.n_images} images, "
                f"{self.n_ratings_changed} ratings changed by the replay, {self.seconds:.2f} s")


@dataclass
class LivePriorState:
    """What a collection keeps between refits in one process: the features as asked (``"auto"`` ...), their
    design matrix (:func:`live_design` of the feature set they resolved to) and the last fit."""

    features: str
    design: FeatureMatrix
    prior: Any = None  # imagerank.active.BTPrior
    calibrated_at: int = 0


def _live_features(col: Collection, source: str, compute: bool) -> FeatureMatrix:
    from ..errors import FeatureError
    from .features import _cache_path, feature_matrix

    if not compute and source.startswith("cheap") and not _cache_path(col).exists():
        raise FeatureError("no features for a live prior yet: run `imagerank features` (CLIP embeddings) or "
                           "`imagerank prior` once (cheap colour and quality features)")
    fm = feature_matrix(col, source, progress=compute, compute=compute)
    if len(fm.image_ids) == 0:
        raise FeatureError(f"feature set {fm.name!r} has no vectors: run `imagerank features` first")
    return FeatureMatrix(fm.image_ids, live_design(fm.X), fm.name)


def _state_current(col: Collection, state: LivePriorState, features: str, source: str) -> bool:
    """The cached feature matrix still serves: same request, same resolved feature set ``source`` (a newer
    embedding set replaces it), and it covers at least 99 % of the active images (else new images are read in)."""
    name = state.design.name
    same_set = source == name or (source.startswith("cheap") and name.startswith("cheap"))
    return state.features == features and same_set and len(state.design.image_ids) >= 0.99 * len(col.pool())


def live_design(X: np.ndarray) -> np.ndarray:
    """(N, D) features -> (N, min(D, LIVE_COMPONENTS)) float64: columns standardised (constant ones become 0),
    then projected on their leading principal components (``eigh`` of the D x D scatter matrix)."""
    X = np.asarray(X, dtype=np.float64)
    sd = X.std(axis=0)
    X = np.where(sd > 1e-12, (X - X.mean(axis=0)) / np.where(sd > 1e-12, sd, 1.0), 0.0)
    if X.shape[1] > LIVE_COMPONENTS:
        _, vecs = np.linalg.eigh(X.T @ X)
        X = X @ vecs[:, ::-1][:, :LIVE_COMPONENTS]
    return X


def refit_prior(col: Collection, *, features: str = "auto", compute: bool = True) -> LivePriorReport:
    """Fit the linear Bradley-Terry ranker on the votes so far and make it every image's OpenSkill prior.

    The live prior of the ``active`` strategy (the one ``benchmarks/ranking_sim.py`` measures): the features
    (columns standardised, then their first :data:`LIVE_COMPONENTS` principal components) and every kept vote (N-way
    rankings as their pairs) go to :func:`imagerank.active.bt_prior`, which fits the ranker and calibrates it by
    empirical Bayes on held-out votes; every image with features gets ``images.prior_mu / prior_sigma`` from
    :func:`imagerank.active.prior_to_rating`, the vote log is replayed from the priors (``imagerank doctor`` stays
    green) and the standardised scores go to the pairing strategies. Confidence and scale are re-estimated on the
    first fit in a process and whenever the votes have doubled since; in between only the ranker's weights are
    refitted (warm start, milliseconds). Images without features keep their prior. ``Collection`` calls this every
    ``Settings.prior_refit_every`` votes; :func:`clear_prior` undoes it.

    Args:
        col: the collection.
        features: ``"auto"`` (newest CLIP embeddings, else cheap features), ``"cheap"`` or
            ``"embeddings:<model>__<pretrained>"`` (see :func:`imagerank.training.features.feature_matrix`).
        compute: compute cheap features that are not cached yet (a tqdm bar); False raises instead (the vote
            path never decodes thousands of thumbnails).

    Returns:
        A :class:`LivePriorReport`.

    Raises:
        NoVotesError: no kept decisive vote, or none between two images with features.
        FeatureError: no features (or, with ``compute=False``, none cached).
    """
    import time

    from ..active import bt_prior
    from ..errors import NoVotesError
    from .data import vote_pairs
    from .features import _auto_source

    t0 = time.perf_counter()
    pairs = vote_pairs(col)  # first: no votes, no feature pass
    if not (pairs.y == 1.0).any():
        found = f"only {len(pairs)} pairwise draws" if len(pairs) else "no kept votes"
        raise NoVotesError(f"no decisive votes yet ({found}): the live prior needs votes that say which image is "
                           f"better")
    a_ids, b_ids, y = pairs.a, pairs.b, pairs.y
    state: LivePriorState | None = getattr(col, "_live_prior", None)
    source = _auto_source(col) if features == "auto" else features
    if state is None or not _state_current(col, state, features, source):
        state = LivePriorState(features, _live_features(col, source, compute))
    ids = state.design.image_ids
    pos_a = state.design.rows(a_ids)
    pos_b = state.design.rows(b_ids)
    keep = (pos_a >= 0) & (pos_b >= 0)
    if not keep.any():
        raise NoVotesError(f"none of the {len(a_ids)} voted pairs has features for both images: compute features "
                           f"for the voted images (`imagerank features`) first")
    m = int(keep.sum())
    calibrate = state.prior is None or m >= 2 * state.calibrated_at
    bp = bt_prior(state.design.X, pos_a[keep], pos_b[keep], y[keep], start=state.prior, calibrate=calibrate, rng=0)
    if calibrate:
        state.calibrated_at = m
    state.prior = bp
    mu, sigma = bp.ratings()
    changed = col.set_priors([(float(a), float(b), int(i)) for i, a, b in zip(ids, mu, sigma)])
    col.set_prior_scores({int(i): float(v) for i, v in zip(ids, bp.z)})
    col._live_prior = state
    return LivePriorReport(state.design.name, len(ids), m, float(bp.confidence), float(bp.scale),
                           bool(calibrate), changed, time.perf_counter() - t0)
