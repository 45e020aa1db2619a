"""OpenSkill Plackett-Luce ratings: apply a match, undo, replay, and vectorised predictions.

The model is ``openskill.models.PlackettLuce`` with its defaults (mu 25, sigma 25/3, beta 25/6, tau 25/300;
Weng & Lin 2011, "A Bayesian Approximation Method for Online Ranking", JMLR 12, Algorithm 4), pinned to
openskill 6.2.0. Every image is a one-player team. The leaderboard key is the ordinal ``mu - 3*sigma``, a
conservative skill estimate (99.7% one-sided lower bound under the Gaussian posterior).

Replaying the kept (not undone, rated) matches in id order from each image's prior reproduces the stored ratings
bit for bit: that is the definition of the stored ratings, and ``imagerank doctor`` checks it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
from openskill.models import PlackettLuce

from ..errors import InvalidArgumentError

__all__ = [
    "BETA",
    "DEFAULT_MU",
    "DEFAULT_SIGMA",
    "MODEL",
    "model_for",
    "ordinal",
    "predict_win_matrix",
    "predict_win_pairs",
    "rate_ranking",
]

MODEL = PlackettLuce()
DEFAULT_MU: float = MODEL.mu
DEFAULT_SIGMA: float = MODEL.sigma
BETA: float = float(MODEL.beta)
#: The range of a fitted beta (:mod:`imagerank.ratings.consistency`), OpenSkill units: 1/64 of the default up to the
#: default. A judge noisier than openskill assumes keeps 25/6: in ``benchmarks/ranking_sim.py`` a larger fitted beta
#: (crowd judge, 4.3 to 6.6) lowered precision@100 (0.43 against 0.51 at 3,000 votes) by slowing every update.
BETA_RANGE: tuple[float, float] = (BETA / 64.0, BETA)


@functools.lru_cache(maxsize=64)
def model_for(beta: float = BETA) -> PlackettLuce:
    """The OpenSkill Plackett-Luce model with performance SD ``beta`` (OpenSkill units, > 0) and every other
    parameter at its default; ``model_for(BETA)`` is :data:`MODEL` itself (bit-identical updates).

    Raises:
        InvalidArgumentError: ``beta`` is not a positive finite number.
    """
    if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta > 0):
        raise InvalidArgumentError(f"beta: expected a positive finite performance SD in OpenSkill units, got {beta!r}")
    return MODEL if float(beta) == BETA else PlackettLuce(beta=float(beta))


@dataclass(frozen=True)
class Rated:
    """One image's rating before and after a match (floats, OpenSkill units: mu ~ 25, sigma 0..8.33)."""

    image_id: int
    rank: int
    mu_before: float
    sigma_before: float
    mu_after: float
    sigma_after: float


def rate_ranking(
    ratings: Sequence[tuple[float, float]], ranks: Sequence[int], beta: float = BETA
) -> list[tuple[float, float]]:
    """Rate one match with OpenSkill Plackett-Luce.

    Args:
        ratings: (mu, sigma) of each participant, length N >= 2.
        ranks: rank of each participant, lower is better; equal ranks are a draw between them
            (a pairwise draw is ``[0, 0]``).
        beta: the judge's performance SD (OpenSkill units; default openskill's 25/6, else the collection's fitted
            one, :mod:`imagerank.ratings.consistency`).

    Returns:
        New (mu, sigma) per participant, same order.

    Raises:
        InvalidArgumentError: fewer than two participants, ``ranks`` of another length, or a ``beta`` that is not
            positive.
    """
    if len(ratings) < 2:
        raise InvalidArgumentError(f"a match needs at least 2 images, got {len(ratings)}")
    if len(ranks) != len(ratings):
        raise InvalidArgumentError(f"ranks: expected {len(ratings)} values, got {len(ranks)}")
    model = model_for(beta)
    teams = [[model.rating(mu=float(mu), sigma=float(sigma))] for mu, sigma in ratings]
    out = model.rate(teams, ranks=[float(r) for r in ranks])
    return [(float(t[0].mu), float(t[0].sigma)) for t in out]


@overload
def ordinal(mu: float, sigma: float, z: float = 3.0) -> float: ...
@overload
def ordinal(mu: np.ndarray, sigma: np.ndarray, z: float = 3.0) -> np.ndarray: ...
def ordinal(mu: Any, sigma: Any, z: float = 3.0) -> Any:
    """The leaderboard key ``mu - z*sigma`` (OpenSkill's ``ordinal`` with alpha=1, target=0)."""
    return mu - z * sigma


def _phi(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return np.asarray(ndtr(x))


def predict_win_pairs(
    mu_a: np.ndarray, sigma_a: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray, beta: float = BETA
) -> np.ndarray:
    """P(a beats b) for many pairs at once; equals ``PlackettLuce.predict_win`` for 1-vs-1 teams.

    ``Phi((mu_a - mu_b) / sqrt(2 beta^2 + sigma_a^2 + sigma_b^2))``, vectorised. Inputs broadcast; float64 out.
    """
    denom = np.sqrt(2 * float(beta) ** 2 + np.square(sigma_a) + np.square(sigma_b))
    return _phi((np.asarray(mu_a, dtype=np.float64) - mu_b) / denom)


def predict_win_matrix(mu: np.ndarray, sigma: np.ndarray, beta: float = BETA) -> np.ndarray:
    """(N, N) float64 matrix of P(row beats column) for N images. O(N^2) memory: for small N only."""
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    return predict_win_pairs(mu[:, None], sigma[:, None], mu[None, :], sigma[None, :], beta)


def expected_sigma_after(sigma: float) -> float:
    """Sigma after OpenSkill's additive dynamics (tau) are applied, before the update: sqrt(sigma^2 + tau^2)."""
    return math.sqrt(sigma**2 + float(MODEL.tau) ** 2)
