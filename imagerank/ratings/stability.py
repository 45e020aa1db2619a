"""Ranking stability from the posterior: how much of today's top-k would survive if we knew the true skills.

The ratings are Gaussian posteriors ``N(mu_i, sigma_i^2)`` per image (OpenSkill, DESIGN §5). "Stable" is not
"correct": churn between votes can be low while the top-k is still mostly guesswork. The figure shown to the
user is therefore an estimate from the posterior itself: draw plausible skill vectors, take the top-k of each,
and measure how much of the current top-k (by ordinal ``mu - 3*sigma``) they share.

Calibration: OpenSkill's posteriors are approximate (Weng & Lin's moment matching keeps no correlations and its
Plackett-Luce update is not the exact Bayesian one), and taken literally they overstate how settled the top of
the leaderboard is. Draws therefore use ``SIGMA_INFLATION * sigma``. The factor was fitted in
``benchmarks/ranking_sim.py`` (5,000 images; Thurstone judge calibrated on a real comparison matrix; learned
prior at feature correlations 0 / 0.5 / 0.75 / 0.9; random, spec and active pairing; 500-3,000 votes): with
1.15 the estimate's error against the true precision@100, averaged over seeds, is at most 0.09 for the
``active`` strategy at every checkpoint (1.0 gave 0.17, 1.25 gave 0.08 but overshot the other way for noisier
judges); see the README's performance section for the table. Since issue 14 the factor follows the judge's
fitted noise (:func:`sigma_inflation`: 1.3 for a consistent judge down to about 1.0 for a crowd) while a taste prior
is in use, and is 1.15 while there is none (none fitted yet, or switched off): :func:`widening_noise`.

Why only with a prior: the judge-dependent factor was fitted with the prior on, and without one the factor that
calibrates the estimate does not depend on the judge. In ``benchmarks/ranking_sim.py`` (``active``, 5,000 images,
features without signal, rho = 0, so the prior is off; seeds 0-2; 500-3,000 votes) the factor that zeroes the mean
error was 0.99-1.09 for the noiseless judge, 1.01-1.14 for the fitted Thurstone judge and 1.04-1.22 for the crowd,
against 1.31-1.36 for the noiseless judge with informative features (rho = 0.75). The off prior's fitted noise
(0.02-0.08 for a noiseless judge) had widened by 1.28 and the estimate under-reported by 0.14 (0.34 against a true
0.48 at 3,000 votes); with 1.15 it is 0.42 (error 0.05).
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidArgumentError
from . import openskill as R

__all__ = ["SIGMA_INFLATION", "default_k", "sigma_inflation", "topk_stability", "widening_noise"]


def default_k(n: int, topk: int = 100) -> int:
    """The k shown to the user for ``n`` active images: ``Settings.topk`` capped at a quarter of the collection
    (a top-100 of 120 images would be trivially stable), at least 1; 0 when ``n`` is 0."""
    return min(int(topk), max(1, int(n) // 4)) if n > 0 else 0

# Images whose mu + PRUNE_Z*sigma lies below the k-th largest mu - PRUNE_Z*sigma can enter a sampled top-k
# only with probability < (k + 1) * 1.3e-12 each (one-sided Gaussian tail at 7 sd), so they are left out of
# the sampling; the result changes by less than 1e-5 even for 100,000 images.
PRUNE_Z = 7.0
#: Posterior SDs are widened by this factor before sampling when the judge's noise is unknown (module docstring).
SIGMA_INFLATION = 1.15


def sigma_inflation(judge_noise: float | None) -> float:
    """The factor posterior SDs are widened by for a judge of this consistency.

    OpenSkill shrinks sigma by about the same share per vote whatever the judge, while a consistent judge's votes
    (a small fitted beta) move the means further: its sigmas understate how far the means can still be off, and one
    global factor made the estimate over-report for consistent judges and under-report for a crowd. The factor
    therefore follows the judge's noise (per-image performance SD over the skills' SD, fitted with the live prior:
    :attr:`imagerank.ratings.priors.BTPrior.
    judge_noise`): ``1.3 - 0.1 log2(1 + noise / 0.25)``, i.e. 1.3 for a noiseless judge, 1.22 / 1.13 at a noise
    of 0.2 / 0.55 (the fitted Thurstone judge), 1.02 for the AVA crowd (1.47). Fitted in
    ``benchmarks/ranking_sim.py`` on seed 2 (noiseless, 0.15 and 0.62 x SD Thurstone, crowd; rho 0.5 and 0.75;
    500-3,000 votes; the factor that zeroes the mean error per judge), checked on seeds 0-1 (README, "Ranking
    simulation"). None (no fitted noise yet, or the prior is off: pass :func:`widening_noise` of the prior):
    :data:`SIGMA_INFLATION`.

    Raises:
        InvalidArgumentError: a negative or non-finite noise.
    """
    if judge_noise is None:
        return SIGMA_INFLATION
    x = float(judge_noise)
    if not (x >= 0.0 and np.isfinite(x)):
        raise InvalidArgumentError(f"judge_noise: expected a finite value >= 0, got {judge_noise!r}")
    return 1.3 - 0.1 * float(np.log2(1.0 + x / 0.25))


def widening_noise(prior: object | None) -> float | None:
    """The judge noise that sets the stability estimate's widening (:func:`sigma_inflation`): the prior's fitted
    ``judge_noise`` while the prior is in use, None (the factor :data:`SIGMA_INFLATION`) when there is no prior or
    it is switched off, even when the off prior carries a fitted noise (see the module docstring: without a prior
    the calibrating factor does not depend on the judge).

    Args:
        prior: a :class:`~imagerank.ratings.priors.BTPrior`, a live prior's report
            (:class:`~imagerank.training.prior.LivePriorReport`), anything with ``off_reason`` (None while in use)
            and ``judge_noise`` attributes, or None.

    Returns:
        The judge's noise over the skills' SD (>= 0), or None.
    """
    if prior is None or getattr(prior, "off_reason", None) is not None:
        return None
    noise = getattr(prior, "judge_noise", None)
    return None if noise is None else float(noise)


# Normal draws per chunk (memory: 8 bytes each, so 2M draws = 16 MB).
_CHUNK_DRAWS = 2_000_000


def topk_stability(
    mu: np.ndarray,
    sigma: np.ndarray,
    k: int,
    samples: int = 200,
    rng: np.random.Generator | int | None = None,
    judge_noise: float | None = None,
) -> float:
    """Expected share of the current top-k (by ordinal) that is also in the top-k of a posterior sample.

    For ``s = 1..samples`` a skill vector ``x_s ~ N(mu, diag((f * sigma)^2))`` (``f = sigma_inflation(judge_noise)``)
    is drawn; the
    result is the mean over ``s`` of ``|topk(x_s) ∩ topk(mu - 3 sigma)| / k``. Read it as an estimate of the
    *precision@k* of the current leaderboard: the expected fraction of the images shown as top-k that truly
    belong there (calibrated in simulation, see the module docstring). 1.0 means the top-k is settled; about
    ``k / N`` means it is no better than a random pick (e.g. before any vote, when every image has the same
    prior).

    Args:
        mu: (N,) posterior means (OpenSkill units, float64 or anything castable).
        sigma: (N,) posterior standard deviations, >= 0, same shape as ``mu``.
        k: size of the top set, >= 1. When ``k >= N`` the answer is 1.0 (everything is in the top).
        samples: number of posterior draws, >= 1. The Monte Carlo standard error is at most ``0.5 / sqrt(samples)``
            and in practice far smaller (overlaps of successive draws are strongly correlated).
        rng: a ``numpy.random.Generator``, a seed, or None (fresh entropy).
        judge_noise: the judge's fitted noise / skill SD (``BTPrior.judge_noise``), which sets the widening
            (:func:`sigma_inflation`); None: :data:`SIGMA_INFLATION`.

    Returns:
        A float in [0, 1].

    Raises:
        InvalidArgumentError: shapes differ, ``mu``/``sigma`` are not 1-D or contain NaN, ``sigma`` is negative,
            ``k`` < 1 or ``samples`` < 1.

    Cost: O(samples · N) time via ``np.argpartition``, drawn in chunks of about 2M values (16 MB). Images that
    cannot plausibly reach the top-k (``mu + 7 sigma`` below the k-th largest ``mu - 7 sigma``) are not sampled.
    """
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1 or sigma.shape != mu.shape:
        raise InvalidArgumentError(
            f"mu and sigma: expected two 1-D arrays of one length, got shapes {mu.shape} and {sigma.shape}"
        )
    if np.isnan(mu).any() or np.isnan(sigma).any():
        raise InvalidArgumentError("mu and sigma: expected finite values, got NaN")
    if (sigma < 0).any():
        raise InvalidArgumentError(f"sigma: expected values >= 0, got minimum {sigma.min()}")
    if int(k) < 1:
        raise InvalidArgumentError(f"k: expected >= 1, got {k}")
    if int(samples) < 1:
        raise InvalidArgumentError(f"samples: expected >= 1, got {samples}")
    k, samples = int(k), int(samples)
    n = mu.shape[0]
    if k >= n:
        return 1.0
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    # Current top-k by ordinal (ties broken by index, like the leaderboard's ORDER BY ordinal DESC, id ASC).
    ordinal = R.ordinal(mu, sigma)
    current = np.argpartition(-ordinal, k - 1)[:k]

    # Candidates: images that can plausibly be in a sampled top-k; every current top-k image is one of them.
    spread = sigma_inflation(judge_noise) * sigma
    low = mu - PRUNE_Z * spread
    threshold = np.partition(low, n - k)[n - k]
    cand = np.flatnonzero(mu + PRUNE_Z * spread >= threshold)
    cand = np.union1d(cand, current)
    m = cand.shape[0]
    if k >= m:  # only k images can be on top: every draw returns them
        return 1.0
    mu_c, sigma_c = mu[cand], spread[cand]
    in_current = np.zeros(m, dtype=bool)
    in_current[np.searchsorted(cand, current)] = True

    total = 0.0
    chunk = max(1, min(samples, _CHUNK_DRAWS // m))
    done = 0
    while done < samples:
        c = min(chunk, samples - done)
        draws = gen.standard_normal((c, m))
        draws *= sigma_c
        draws += mu_c
        top = np.argpartition(-draws, k - 1, axis=1)[:, :k]
        total += float(in_current[top].sum())
        done += c
    return total / (samples * k)
