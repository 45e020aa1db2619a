"""How consistent is this judge? The performance SD ``beta`` of the rating model, fitted to the vote log.

OpenSkill's Plackett-Luce model (Weng & Lin 2011) explains a judgement by each image's skill plus a performance
draw of SD ``beta`` (25/6 by default, the same for every judge). A person ranking their own photos is far more
consistent than a crowd: with the default beta one vote moves a rating little and its sigma shrinks slowly, so
the pairing strategy re-checks images that one vote would settle. Here beta is fitted per collection:

- :func:`fit_beta` maximises the *prequential* log-likelihood of the votes (each vote scored by the probability
  the model gave it before it was applied, starting from the images' priors; Dawid 1984, "Present position and
  potential developments: some personal views. Statistical theory. The prequential approach", JRSS A 147)
  plus a log-normal prior on beta (centre 25/6, SD :data:`LOG_BETA_PRIOR_SD` in log units) that keeps the fit
  near the default on few votes. The search is golden-section over ``log beta`` in
  :data:`~imagerank.ratings.openskill.BETA_RANGE`. It is the evidence of the judge's noise level as far as
  OpenSkill's filter is concerned (the same criterion :func:`imagerank.ratings.priors.bt_prior` uses for the
  prior), so the fitted beta is the one under which the ratings predicted the user's own next vote best.
- :func:`self_agreement`: the probability that the judge, shown one of the pairs they judged again, gives the
  same answer: the mean of ``p^2 + (1 - p)^2`` with ``p = Phi((mu_a - mu_b) / (sqrt(2) beta))`` (Thurstone's
  reading of beta as the per-image performance SD; Thurstone 1927, case V). The panels show it as "you agree
  with yourself N % of the time".

The fitted beta is stored with the vote log (``rating_model`` table) and the ratings are *defined* as the
replay of the log with it, so replay, undo and ``doctor`` stay exact (:mod:`imagerank.catalog.replay`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import InvalidArgumentError
from . import openskill as R
from .priors import _KAPPA, _golden_max, duel_loglik

__all__ = ["LOG_BETA_PRIOR_SD", "MIN_FIT_VOTES", "fit_beta", "match_loglik", "self_agreement"]

#: SD of the log-normal prior on beta, in natural-log units: a factor of e^0.75 = 2.1 either way is one SD (1.5 let
#: beta fall so fast on the first few hundred votes that the top-k stability estimate overshot by 0.15 in the
#: small simulation of tests/test_ranking_sim.py; 0.75 keeps it within 0.1).
LOG_BETA_PRIOR_SD = 0.75
#: Fewer decisive votes than this keep the default beta (the prior alone would say 25/6 anyway).
MIN_FIT_VOTES = 20
_TOL = 0.04  # log units: 4 % of beta; the evidence is flat at this scale


def match_loglik(mu: list[float], var: list[float], matches: Sequence[tuple[Sequence[int], Sequence[int]]],
                 beta: float = R.BETA) -> float:
    """Prequential log-likelihood of N-way matches (OpenSkill Plackett-Luce, one image per team).

    Each match ``(indices, ranks)`` (ranks 0 best, ties share) is scored before it is applied by its
    Plackett-Luce probability ``prod_i (exp(mu_i / c) / sum_{q: rank_q >= rank_i} exp(mu_q / c))^(1 / A_i)``
    (``A_i`` images share image i's rank; a pairwise draw scores ``sqrt(q (1 - q))``), then applied with
    Weng & Lin's Algorithm 4 as openskill 6.2.0 does (tau, kappa, gamma = sigma / c). Pairs take the fast path of
    :func:`imagerank.ratings.priors.duel_loglik` (same numbers).

    Args:
        mu, var: (N,) lists of start means and variances (OpenSkill units); updated in place (pass copies).
        matches: in vote order, each a pair of equal-length sequences of indices into ``mu`` and ranks.
        beta: the performance SD (OpenSkill units, > 0).

    Returns:
        The summed log-probability (<= 0).
    """
    tau2 = R.MODEL.tau * R.MODEL.tau
    b2 = float(beta) ** 2
    ll = 0.0
    for idx, ranks in matches:
        n = len(idx)
        if n == 2:
            y = 1.0 if ranks[0] < ranks[1] else 0.0 if ranks[0] > ranks[1] else 0.5
            ll += duel_loglik(mu, var, [idx[0]], [idx[1]], [y], beta)
            continue
        m = [mu[i] for i in idx]
        v0 = [var[i] for i in idx]
        c0 = math.sqrt(sum(v0) + n * b2)
        top = max(m)
        e0 = [math.exp((x - top) / c0) for x in m]
        share = [sum(1 for r in ranks if r == ri) for ri in ranks]
        for i in range(n):
            den = sum(e0[q] for q in range(n) if ranks[q] >= ranks[i])
            ll += math.log(max(e0[i] / den, 1e-300)) / share[i]
        v = [x + tau2 for x in v0]
        c = math.sqrt(sum(v) + n * b2)
        e = [math.exp((x - top) / c) for x in m]
        sum_q = [sum(e[i] for i in range(n) if ranks[i] >= ranks[q]) for q in range(n)]
        for i in range(n):
            omega = delta = 0.0
            for q in range(n):
                if ranks[q] <= ranks[i]:
                    t = e[i] / sum_q[q]
                    delta += t * (1.0 - t) / share[q]
                    omega += ((1.0 - t) if q == i else -t) / share[q]
            omega *= v[i] / c
            delta *= v[i] / (c * c) * (math.sqrt(v[i]) / c)
            mu[idx[i]] = m[i] + omega
            var[idx[i]] = v[i] * max(1.0 - delta, _KAPPA)
    return ll


def fit_beta(
    prior_mu: np.ndarray,
    prior_sigma: np.ndarray,
    matches: Sequence[tuple[Sequence[int], Sequence[int]]],
    *,
    prior_sd: float = LOG_BETA_PRIOR_SD,
) -> float:
    """The judge's performance SD: maximum a posteriori beta of the votes (see the module docstring).

    Args:
        prior_mu, prior_sigma: (N,) float start ratings of the images (their priors), OpenSkill units.
        matches: the kept rated matches in vote order, each ``(indices into prior_mu, ranks)`` (ranks 0 best).
        prior_sd: SD of the log-normal prior on beta around 25/6 (log units, > 0).

    Returns:
        beta in :data:`~imagerank.ratings.openskill.BETA_RANGE` (OpenSkill units); the default 25/6 with fewer
        than :data:`MIN_FIT_VOTES` matches that are not draws.

    Raises:
        InvalidArgumentError: ``prior_mu`` and ``prior_sigma`` differ in shape, a sigma is not positive, an index
            is out of range, a match has fewer than 2 images or ranks of another length, or ``prior_sd`` <= 0.

    Cost: about 12 prequential replays of the log, O(M) plain Python each (about 20 ms per 1,000 pairs).
    """
    mu0 = np.asarray(prior_mu, dtype=np.float64)
    s0 = np.asarray(prior_sigma, dtype=np.float64)
    if mu0.ndim != 1 or s0.shape != mu0.shape:
        raise InvalidArgumentError(f"prior_mu, prior_sigma: expected two 1-D arrays of one length, got shapes "
                                   f"{mu0.shape} and {s0.shape}")
    if not (np.isfinite(mu0).all() and np.isfinite(s0).all() and (s0 > 0).all()):
        raise InvalidArgumentError("prior_mu, prior_sigma: expected finite means and positive SDs")
    if not prior_sd > 0:
        raise InvalidArgumentError(f"prior_sd: expected a positive SD in log units, got {prior_sd!r}")
    n = mu0.shape[0]
    decisive = 0
    for idx, ranks in matches:
        if len(idx) < 2 or len(ranks) != len(idx):
            raise InvalidArgumentError(f"matches: expected (indices, ranks) of one length >= 2, got {idx!r}, "
                                       f"{ranks!r}")
        if min(idx) < 0 or max(idx) >= n:
            raise InvalidArgumentError(f"matches: index out of range 0..{n - 1} in {list(idx)!r}")
        decisive += len(set(ranks)) > 1
    if decisive < MIN_FIT_VOTES:
        return R.BETA
    mu_list, var_list = mu0.tolist(), (s0 * s0).tolist()
    pairs = all(len(idx) == 2 for idx, _ in matches)
    if pairs:
        a = [int(m[0][0]) for m in matches]
        b = [int(m[0][1]) for m in matches]
        y = [1.0 if r[0] < r[1] else 0.0 if r[0] > r[1] else 0.5 for _, r in matches]
    centre = math.log(R.BETA)

    def posterior(log_beta: float) -> float:
        beta = math.exp(log_beta)
        ll = (duel_loglik(list(mu_list), list(var_list), a, b, y, beta) if pairs
              else match_loglik(list(mu_list), list(var_list), matches, beta))
        return ll - 0.5 * ((log_beta - centre) / prior_sd) ** 2

    lo, hi = math.log(R.BETA_RANGE[0]), math.log(R.BETA_RANGE[1])
    return float(math.exp(_golden_max(posterior, lo, hi, _TOL, ends=(lo,))))


def self_agreement(mu_a: np.ndarray, mu_b: np.ndarray, beta: float) -> float:
    """The probability that the judge repeats their answer on the same pairs: mean of ``p^2 + (1 - p)^2``,
    ``p = Phi((mu_a - mu_b) / (sqrt(2) beta))`` (see the module docstring).

    Args:
        mu_a, mu_b: (M,) posterior means of the two images of each judged pair (OpenSkill units).
        beta: the fitted performance SD (> 0).

    Returns:
        A float in [0.5, 1]; NaN when there is no pair.

    Raises:
        InvalidArgumentError: shapes differ or ``beta`` is not positive.
    """
    from scipy.special import ndtr

    xa = np.asarray(mu_a, dtype=np.float64)
    xb = np.asarray(mu_b, dtype=np.float64)
    if xa.shape != xb.shape:
        raise InvalidArgumentError(f"mu_a, mu_b: expected equal shapes, got {xa.shape} and {xb.shape}")
    if not (isinstance(beta, (int, float)) and beta > 0):
        raise InvalidArgumentError(f"beta: expected a positive performance SD, got {beta!r}")
    if xa.size == 0:
        return float("nan")
    p = ndtr((xa - xb) / (math.sqrt(2.0) * float(beta)))
    return float(np.mean(p * p + (1.0 - p) * (1.0 - p)))
