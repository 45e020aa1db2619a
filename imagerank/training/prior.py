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

if TYPE_CHECKING:
    from ..collection import Collection

__all__ = ["PriorReport", "apply_prior", "clear_prior", "prior_from_scores"]

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
    with col.db.atomic() as conn:
        conn.executemany("UPDATE images SET prior_mu=?, prior_sigma=? WHERE id=?", upd)
        # images never compared carry their prior as their rating; the replay writes only what differs
    changed = col.replay()
    col.set_prior_scores({int(i): float(v) for i, v in zip(ids, z)})
    return PriorReport(len(upd), len(ids), float(ranker.confidence), scale, changed)


def clear_prior(col: Collection) -> int:
    """Remove every learned prior (back to mu 25, sigma 25/3), replay the log and clear the pairing prior.

    Returns:
        The number of images whose stored rating changed.
    """
    col.db.execute("UPDATE images SET prior_mu=NULL, prior_sigma=NULL WHERE prior_mu IS NOT NULL "
                   "OR prior_sigma IS NOT NULL")
    changed = col.replay()
    col.set_prior_scores(None)
    return changed
