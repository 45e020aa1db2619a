"""Rating priors from a learned scorer, and the fast 1-vs-1 OpenSkill update they are fitted with.

- :func:`prior_to_rating` and :func:`bt_prior`: turn a ranker's scores into per-image OpenSkill priors
  ``(prior_mu, prior_sigma)`` by Gaussian conditioning, with the ranker's confidence and the skills' spread
  estimated from held-out votes by empirical Bayes, then averaged with the default prior by the probability that
  the features predict the votes at all (:func:`score_test`, :func:`feature_weight`, :func:`shrink_prior`), so
  votes that carry no preference leave about the default prior. The live prior
  (:class:`imagerank.training.prior.LivePrior`) and the ranking simulation use them; ``apply_prior`` (a trained
  Lightning ranker) keeps its own, simpler mapping.
- :func:`fit_linear_bt` / :class:`LinearBT`: a ridge-regularised linear Bradley-Terry scorer fitted by L-BFGS in
  milliseconds (Bradley & Terry 1952), the live prior's ranker.
- :func:`rate_duel`: the OpenSkill Plackett-Luce update of one 1-vs-1 match written with ``math`` only (equal to
  ``openskill`` 6.2.0 to rounding, pinned by a golden test), 20x faster than building rating objects; the ranking
  simulation and bulk replays use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from ..errors import InvalidArgumentError
from . import openskill as R
from .honesty import HONEST_FOLDS, estimate_r, image_folds
from .linear_bt import LinearBT, fit_linear_bt

__all__ = [
    "DEFAULT_PRIOR_CONFIDENCE",
    "LR_CRITICAL",
    "MAX_CONFIDENCE",
    "MIN_PRIOR_VOTES",
    "OFF_WEIGHT",
    "BTPrior",
    "LinearBT",
    "bt_prior",
    "duel_loglik",
    "feature_weight",
    "fit_linear_bt",
    "out_of_fold_scores",
    "prequential_loglik",
    "prior_to_rating",
    "rate_duel",
    "score_test",
    "shrink_prior",
]

#: Confidence (correlation of ranker score and true skill, 0..1) assumed for ``Pool.prior`` when only scores
#: are given (``Collection.set_prior_scores``), not a calibrated :class:`BTPrior`.
DEFAULT_PRIOR_CONFIDENCE = 0.5
#: Highest confidence :func:`bt_prior` reports: a prior never pins an image down completely.
MAX_CONFIDENCE = 0.95
#: Below this probability that the features predict the votes (:func:`feature_weight`) the prior is switched off
#: (the default prior, no scores for the pairing strategies): more likely than not, it would only add noise.
OFF_WEIGHT = 0.5
#: Fewer held-out-calibrated outcomes than this give no prior (``off_reason`` says so).
MIN_PRIOR_VOTES = 20
#: The prior is also off when twice the held-out log-likelihood gain of its r over r = 0 is below this: the 5 %
#: point of the likelihood-ratio test of a parameter on its boundary, a 50:50 mixture of chi^2_0 and chi^2_1
#: (Self & Liang 1987).
LR_CRITICAL = 2.71

_KAPPA = 0.0001  # openskill's default kappa (lower bound of the sigma shrink factor)


# ---------------------------------------------------------------------------------------------- ratings
def rate_duel(
    mu_a: float, sigma_a: float, mu_b: float, sigma_b: float, outcome: float, beta: float = R.BETA
) -> tuple[float, float, float, float]:
    """OpenSkill Plackett-Luce update of one 1-vs-1 match, without rating objects.

    Weng & Lin (2011), Algorithm 4, with openskill 6.2.0's defaults: additive dynamics ``tau = 25/300`` applied
    to both sigmas first, ``beta = 25/6``, ``kappa = 1e-4``, ``gamma = sigma / c``. Equal to
    ``imagerank.ratings.rate_ranking`` to floating-point rounding (``tests/test_active.py`` checks 1e-9).

    Args:
        mu_a, sigma_a, mu_b, sigma_b: the two ratings (OpenSkill units, sigma > 0).
        outcome: 1.0 a won, 0.0 b won, 0.5 a draw.
        beta: the judge's performance SD (OpenSkill units, > 0; default 25/6, else the fitted one).

    Returns:
        ``(mu_a', sigma_a', mu_b', sigma_b')``.

    Raises:
        InvalidArgumentError: ``outcome`` is not 0, 0.5 or 1.
    """
    tau2 = R.MODEL.tau * R.MODEL.tau
    beta2 = beta * beta
    sa = math.sqrt(sigma_a * sigma_a + tau2)
    sb = math.sqrt(sigma_b * sigma_b + tau2)
    va, vb = sa * sa, sb * sb
    c = math.sqrt(va + beta2 + vb + beta2)
    ea = math.exp(mu_a / c)
    eb = math.exp(mu_b / c)
    total = ea + eb
    pa = ea / total
    pb = eb / total
    if outcome == 1.0:
        om_a, de_a = 1 - pa, pa * (1 - pa)
        om_b, de_b = -pb, pb * (1 - pb)
    elif outcome == 0.0:
        om_b, de_b = 1 - pb, pb * (1 - pb)
        om_a, de_a = -pa, pa * (1 - pa)
    elif outcome == 0.5:
        om_a = (1 - pa) / 2 - pa / 2
        om_b = (1 - pb) / 2 - pb / 2
        de_a = pa * (1 - pa) / 2 + pa * (1 - pa) / 2
        de_b = pb * (1 - pb) / 2 + pb * (1 - pb) / 2
    else:
        raise InvalidArgumentError(f"outcome: expected 1.0 (a won), 0.0 (b won) or 0.5 (draw), got {outcome!r}")
    om_a *= va / c
    om_b *= vb / c
    de_a *= va / c**2 * (sa / c)
    de_b *= vb / c**2 * (sb / c)
    return (
        mu_a + om_a,
        sa * math.sqrt(max(1 - de_a, _KAPPA)),
        mu_b + om_b,
        sb * math.sqrt(max(1 - de_b, _KAPPA)),
    )


# ---------------------------------------------------------------------------------------------- prior
def prior_to_rating(
    z: np.ndarray | float, confidence: float, scale: float = R.DEFAULT_SIGMA
) -> tuple[np.ndarray, np.ndarray]:
    """Map standardised ranker scores to OpenSkill priors by Gaussian conditioning.

    If skills are ``N(DEFAULT_MU, scale^2)`` across the collection and a ranker's score ``z`` (mean 0, SD 1 over
    the collection) has correlation ``r = confidence`` with skill, then given its score an image's skill is
    ``N(DEFAULT_MU + r * scale * z, scale^2 * (1 - r^2))``. With ``confidence = 0`` and the default ``scale``
    (OpenSkill's sigma, 25/3) this is OpenSkill's default prior (25, 8.33). A NaN score (an image without
    features) gets ``(DEFAULT_MU, scale)``.

    Args:
        z: (N,) float standardised scores (or a scalar), higher is better.
        confidence: correlation of score and skill, clipped to ``[0, MAX_CONFIDENCE]``.
        scale: SD of skills across the collection, OpenSkill units (> 0); :func:`bt_prior` estimates it.

    Returns:
        ``(prior_mu, prior_sigma)``: two (N,) float64 arrays in OpenSkill units.

    Raises:
        InvalidArgumentError: ``scale`` is not positive.
    """
    if not scale > 0:
        raise InvalidArgumentError(f"scale: expected a positive skill SD in OpenSkill units, got {scale!r}")
    r = float(np.clip(confidence if np.isfinite(confidence) else 0.0, 0.0, MAX_CONFIDENCE))
    zz = np.asarray(z, dtype=np.float64)
    ok = np.isfinite(zz)
    mu = np.where(ok, R.DEFAULT_MU + r * scale * np.where(ok, zz, 0.0), R.DEFAULT_MU)
    sigma = np.where(ok, scale * math.sqrt(1.0 - r * r), scale)
    return np.asarray(mu, dtype=np.float64), np.asarray(sigma, dtype=np.float64)


@dataclass(frozen=True)
class BTPrior:
    """A ranker turned into a prior.

    Attributes:
        z: (N,) float64 standardised scores (mean 0, SD 1), higher is better.
        confidence: correlation of ``z`` with skill the prior uses, 0..MAX_CONFIDENCE (averaged with the default
            prior by :func:`shrink_prior`).
        scale: SD of skills across the collection the prior uses, OpenSkill units (averaged likewise).
        w: (D,) the full fit's weights (a warm start for the next refit).
        weight: probability that the features predict the votes (:func:`feature_weight`), 0..1; 0 without a
            calibration.
        fit_confidence, fit_scale: the empirical-Bayes estimates before the averaging (None: as ``confidence`` and
            ``scale``); the next calibration searches around them.
        off_reason: None when the prior is in use; else why it was switched off (a line a panel header can show:
            too few votes, or the features do not predict the held-out votes); then ``confidence`` is 0 and
            ``scale`` OpenSkill's default sigma, so :meth:`ratings` is exactly the default prior, and ``z`` should
            not be handed to the pairing strategies.
        r: the honest figure shown to the user ("taste prior r"): the estimated correlation of ``z`` with the
            judge's utility across the collection, out of sample (:func:`imagerank.ratings.honesty.estimate_r` on
            image-level cross-fitted scores, times ``weight``); 0 when the prior is off. ``confidence`` is the
            working value of OpenSkill's filter (fitted to its evidence, which under-reacts) and is not this.
        judge_noise: the judge's per-image noise over the skills' SD fitted with ``r`` (None without a fit).
    """

    z: np.ndarray
    confidence: float
    scale: float
    w: np.ndarray
    weight: float = 0.0
    fit_confidence: float | None = None
    fit_scale: float | None = None
    off_reason: str | None = None
    r: float = 0.0
    judge_noise: float | None = None

    def ratings(self) -> tuple[np.ndarray, np.ndarray]:
        """``prior_to_rating(self.z, self.confidence, self.scale)``: (N,) prior mu and (N,) prior sigma."""
        return prior_to_rating(self.z, self.confidence, self.scale)


def score_test(folds: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> tuple[float, int]:
    """Do held-out scores order the votes better than chance? ``(t, n)``: a statistic that is at most standard
    normal when the votes carry no preference, and the decisive outcomes per fold it was computed on.

    Each fold is ``(z, a, b, y)``: scores not fitted on its outcomes, and the outcomes. With ``d = z[a] - z[b]``
    and ``s = 2 y - 1`` (+1 when ``a`` won, -1 when ``b`` won; draws left out), a fold's statistic is
    ``sum(d s) / sqrt(sum(d^2))``. When the votes carry no preference (a coin-flip voter; one alternating left and
    right, whose sides are drawn at random) each ``s`` is a fair sign independent of ``d``, and the statistic is
    standard normal whatever the pairs were (a sign-flip test, Fisher 1935); when they follow the scores, it grows
    as ``sqrt(n)``. ``t`` is the mean of the folds' statistics: the folds of a cross-fit are strongly correlated
    (each one's scores are fitted on the other's outcomes), and a mean of standard normals has a variance of at
    most 1 whatever their correlation, so ``t`` is conservative.

    Returns:
        ``(t, n)``: ``n`` the mean number of decisive outcomes per fold; ``(0.0, 0)`` without one.
    """
    stats: list[float] = []
    counts: list[int] = []
    for z, a, b, y in folds:
        yy = np.asarray(y, dtype=np.float64)
        keep = yy != 0.5
        zz = np.asarray(z, dtype=np.float64)
        d = zz[np.asarray(a)[keep]] - zz[np.asarray(b)[keep]]
        den = float((d * d).sum())
        stats.append(float((d * (2.0 * yy[keep] - 1.0)).sum()) / math.sqrt(den) if den > 0 else 0.0)
        counts.append(int(keep.sum()))
    if not stats or not sum(counts):
        return 0.0, 0
    return float(np.mean(stats)), round(float(np.mean(counts)))


def feature_weight(t: float, m: int) -> float:
    """Posterior probability that the features predict the votes at all, from the score test.

    ``t`` is :func:`score_test`'s statistic on ``m`` held-out decisive outcomes (per fold). One parameter (the
    slope) more than "the features say nothing", so by the Schwarz (1978) approximation of the Bayes factor
    (Kass & Raftery 1995, section 4.1.3: ``log B ~ t^2 / 2 - log(m) / 2``) with even prior odds the probability is
    ``1 / (1 + sqrt(m) exp(-t^2 / 2))``; a negative ``t`` (the scores order the votes backwards) counts as 0.
    Votes that carry no preference give ``t`` at most standard normal: the weight is about ``1 / (1 + sqrt(m))``
    (0.12 for 115 votes, m = 57) and passes 0.5 in at most 2 % of the cases (``sqrt(log 57)`` = 2.0 SD), 0.6 % at
    1,000 votes; a consistent judge's ``t^2`` grows linearly with the votes and the weight goes to 1.

    Args:
        t: the score-test statistic; m: the outcomes it was computed on (>= 0).

    Returns:
        A weight in [0, 1).
    """
    x = 0.5 * max(float(t), 0.0) ** 2 - 0.5 * math.log(max(int(m), 1))
    return 1.0 / (1.0 + math.exp(-x)) if x > -700 else 0.0


def shrink_prior(slope: float, spread: float, weight: float) -> tuple[float, float]:
    """A fitted prior averaged with the default prior: ``(confidence, scale)`` for :func:`prior_to_rating`.

    Bayesian model averaging (Hoeting, Madigan, Raftery & Volinsky 1999) of "the features predict the votes"
    (the fitted ``N(25 + slope z, spread^2)``, probability ``weight``) and "they do not" (OpenSkill's default
    ``N(25, (25/3)^2)``), moment-matched as in credibility weighting (Buhlmann 1967): ``slope' = weight * slope``
    and ``spread'^2 = weight * spread^2 + (1 - weight) * (25/3)^2`` (the mixture's own between-component term is
    left out: it would widen a strong prior's tails for nothing). Why: the held-out evidence of a hundred votes that
    carry no preference (a voter alternating left and right, or flipping a coin) is maximised by the smallest
    spread (every image alike) and, by chance, some slope; that prior pinned every never-compared image at
    sigma 0.34 above the images the user had voted on (issue 17). Averaged, such a prior is within about 10 %
    of the default, while a consistent judge's prior (weight near 1) is the fitted one.

    Args:
        slope: fitted prior mean per unit of z (>= 0); spread: fitted prior SD (> 0); OpenSkill units.
        weight: probability of the fitted prior, in [0, 1] (:func:`feature_weight`).

    Returns:
        ``(confidence, scale)``: ``slope' / hypot(slope', spread')`` (at most :data:`MAX_CONFIDENCE`) and
        ``hypot(slope', spread')``.

    Raises:
        InvalidArgumentError: ``weight`` outside [0, 1].
    """
    if not 0.0 <= weight <= 1.0:
        raise InvalidArgumentError(f"weight: expected a probability in [0, 1], got {weight!r}")
    s = weight * slope
    p = math.sqrt(weight * spread * spread + (1.0 - weight) * R.DEFAULT_SIGMA**2)
    scale = math.hypot(s, p)
    return float(min(s / scale, MAX_CONFIDENCE)), float(scale)


def prequential_loglik(
    z: np.ndarray, a: np.ndarray, b: np.ndarray, y: np.ndarray, slope: float, spread: float, beta: float = R.BETA
) -> float:
    """Log-likelihood of the outcomes, each predicted before it is rated, ratings started from a prior.

    Ratings start at ``mu = DEFAULT_MU + slope * z``, ``sigma = spread`` and are updated duel by duel as
    :func:`rate_duel` does; outcome t is scored by the Plackett-Luce win probability the update itself assumes,
    ``q = 1 / (1 + exp(-(mu_a - mu_b) / c))`` with ``c = sqrt(sigma_a^2 + sigma_b^2 + 2 beta^2)``, from the
    ratings after the first t - 1 duels; a draw scores ``sqrt(q (1 - q))``. Summed, this is the marginal
    likelihood of the votes under the prior as far as OpenSkill's filter is concerned (Dawid 1984, prequential
    analysis), the evidence an empirical-Bayes choice of the prior maximises. ``slope = r * scale`` and
    ``spread = scale * sqrt(1 - r^2)`` in :func:`prior_to_rating`'s terms.

    Args:
        z: (N,) standardised scores; a, b: (M,) int indices in vote order; y: (M,) outcomes for a (1, 0, 0.5).
        slope: prior mean per unit of z (>= 0); spread: prior SD (> 0); OpenSkill units.
        beta: the judge's performance SD (OpenSkill units, > 0).

    Returns:
        The log-likelihood (<= 0). Cost O(M) in plain Python, about 1.5 us per vote.
    """
    mu = (R.DEFAULT_MU + slope * np.asarray(z, dtype=np.float64)).tolist()
    var = [float(spread) ** 2] * len(mu)
    return duel_loglik(mu, var, a, b, y, beta)


def duel_loglik(mu: list[float], var: list[float], a: np.ndarray | Sequence[int], b: np.ndarray | Sequence[int],
                y: np.ndarray | Sequence[float], beta: float = R.BETA) -> float:
    """:func:`prequential_loglik` from given start ratings: ``mu`` and ``var`` (N,) lists of prior means and
    variances (OpenSkill units; both are updated in place, so pass copies), duels ``a``, ``b``, ``y`` in vote order.
    Returns the summed log predictive probability of the outcomes (<= 0)."""
    tau2 = R.MODEL.tau * R.MODEL.tau
    two_beta2 = 2.0 * float(beta) ** 2
    exp, sqrt, log = math.exp, math.sqrt, math.log
    ll = 0.0
    # rate_duel inlined (variances kept instead of SDs): this loop is the cost of bt_prior and of the beta fit
    for x, w, o in zip(np.asarray(a).tolist(), np.asarray(b).tolist(), np.asarray(y, dtype=np.float64).tolist()):
        vx, vw = var[x], var[w]
        mx, mw = mu[x], mu[w]
        q = 1.0 / (1.0 + exp(max(min((mw - mx) / sqrt(two_beta2 + vx + vw), 700.0), -700.0)))
        q = min(max(q, 1e-12), 1.0 - 1e-12)
        ll += log(q) if o == 1.0 else log(1.0 - q) if o == 0.0 else 0.5 * log(q * (1.0 - q))
        vx += tau2
        vw += tau2
        c = sqrt(vx + vw + two_beta2)
        px = 1.0 / (1.0 + exp(max(min((mw - mx) / c, 700.0), -700.0)))
        pw = 1.0 - px
        if o == 1.0:
            om_x, om_w = pw, -pw
        elif o == 0.0:
            om_x, om_w = -px, px
        else:
            om_x, om_w = 0.5 - px, 0.5 - pw
        pq = px * pw
        mu[x] = mx + om_x * vx / c
        mu[w] = mw + om_w * vw / c
        c3 = c * c * c
        var[x] = vx * max(1.0 - pq * vx * sqrt(vx) / c3, _KAPPA)
        var[w] = vw * max(1.0 - pq * vw * sqrt(vw) / c3, _KAPPA)
    return ll


def _golden_max(
    f: Callable[[float], float], lo: float, hi: float, tol: float, ends: tuple[float, ...] = ()
) -> float:
    """Argmax of a unimodal f on [lo, hi] by golden-section search (Kiefer 1953); ``ends`` are candidates too."""
    g = (math.sqrt(5.0) - 1.0) / 2.0
    cache: dict[float, float] = {}

    def val(x: float) -> float:
        if x not in cache:
            cache[x] = f(x)
        return cache[x]

    a, b = lo, hi
    c, d = b - g * (b - a), a + g * (b - a)
    while b - a > tol:
        if val(c) >= val(d):
            b, d = d, c
            c = b - g * (b - a)
        else:
            a, c = c, d
            d = a + g * (b - a)
    best = 0.5 * (a + b)
    for x in ends:
        if val(x) > val(best):
            best = x
    return best


#: Search box of the prior's slope and spread (OpenSkill units): slope up to 1.5x the default sigma; spread at most
#: the default sigma. The filter's evidence keeps rising with the spread when most images have one duel or none
#: (OpenSkill under-reacts to a first result), so the default prior width is the cap: a prior is never vaguer
#: than no prior.
_SLOPE_MAX = 1.5 * R.DEFAULT_SIGMA
_SPREAD_RANGE = (0.25, R.DEFAULT_SIGMA)
_TOL = 0.25  # OpenSkill units; the evidence is flat at this scale


def bt_prior(
    X: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    y: np.ndarray,
    *,
    l2: float = 1.0,
    w0: np.ndarray | None = None,
    start: BTPrior | None = None,
    calibrate: bool = True,
    rng: np.random.Generator | int | None = 0,
    beta: float = R.BETA,
) -> BTPrior:
    """Fit the linear Bradley-Terry ranker on the votes so far and calibrate it as an OpenSkill prior.

    Scores: :func:`imagerank.training.bt.fit_linear_bt` on all outcomes, standardised over the N images.
    Calibration (empirical Bayes, cross-fitted): the outcomes are split into two random halves; each half is
    scored by a fit on the *other* half, and the prior ``mu = 25 + slope * z``, ``sigma = spread`` is the one
    maximising the summed :func:`prequential_loglik` of the two halves (coordinate-wise golden-section search).
    Held-out scoring keeps an over-fitted ranker (few votes, no real signal) from claiming confidence; scoring
    by likelihood keeps it honest under adaptive pairing, where a plain held-out slope of the Bradley-Terry fit
    is biased towards 0 (pairs are chosen by ratings that already contain the features' residual); fitting the
    spread as well adapts the prior to how consistent the judge is (a noisy judge spreads skills less in
    OpenSkill units). The fitted prior is then averaged with the default prior by the probability that the
    features predict the votes at all (:func:`score_test` on the same held-out halves, :func:`feature_weight`,
    :func:`shrink_prior`), so that votes carrying no preference (a voter alternating left and
    right, or flipping a coin) leave about the default prior instead of a narrow one; below :data:`OFF_WEIGHT` the
    prior is switched off altogether (``off_reason``: the default prior, no scores for pairing). Returned as
    ``confidence = slope' / hypot(slope', spread')``, ``scale = hypot(slope', spread')`` of the averaged prior (the
    fitted ones in ``fit_confidence`` / ``fit_scale``).

    The figure shown to the user, ``r`` (the header's "taste prior r"), is estimated apart from that working value:
    each image is scored by a fit on the votes that never involved it (:func:`out_of_fold_scores`; a vote-level
    split lets the ranker memorise heavily voted images),
    and ``r`` maximises the likelihood of the votes under a Thurstone posterior with the judge's own noise fitted
    jointly (:func:`imagerank.ratings.honesty.estimate_r`, a disattenuation), times the evidence weight. A prior
    whose held-out r fails a likelihood-ratio test (:data:`LR_CRITICAL`) is switched off like one without evidence
    (``off_reason`` says which).

    Args:
        X: (N, D) float features of every image (rows indexed by ``a`` and ``b``).
        a, b: (M,) int row indices of the two sides of each outcome, in vote order.
        y: (M,) float outcome for ``a``: 1 win, 0 loss, 0.5 draw.
        l2: ridge penalty of the fits.
        w0: warm start of the full fit's weights.
        start: the previous prior; its slope and spread narrow the search (a refit moves them little).
        calibrate: False keeps ``start``'s slope and spread and only refits the scores (one warm L-BFGS fit,
            milliseconds); e.g. recalibrate only when the number of votes has doubled.
        rng: seed or generator of the split.
        beta: the judge's performance SD the ratings use (OpenSkill units; the collection's fitted one).

    Returns:
        A :class:`BTPrior`; ``BTPrior.ratings()`` gives the OpenSkill priors. Fewer than 20 outcomes give the
        default prior (confidence 0, scale 25/3) and an ``off_reason``.

    Raises:
        NoVotesError: no outcomes.
        InvalidArgumentError: shapes disagree.

    Cost: three L-BFGS fits of D weights on M outcomes plus about 10 prequential replays of the M votes (about
    40 the first time, without ``start``): about 0.1 s for D = 16, M = 3,000.
    """

    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    y = np.asarray(y, dtype=np.float64)
    full = fit_linear_bt(X, a, b, y, l2=l2, w0=w0 if w0 is not None else (start.w if start is not None else None))
    z = _standardise(full.score(X))
    m = a.shape[0]
    if start is not None and not calibrate:
        return BTPrior(z=z, confidence=start.confidence, scale=start.scale, w=full.w, weight=start.weight,
                       fit_confidence=start.fit_confidence, fit_scale=start.fit_scale, off_reason=start.off_reason,
                       r=start.r, judge_noise=start.judge_noise)
    if m < MIN_PRIOR_VOTES:
        return BTPrior(z=z, confidence=0.0, scale=R.DEFAULT_SIGMA, w=full.w,
                       off_reason=f"taste prior off: {m} votes so far, it starts at {MIN_PRIOR_VOTES}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    half = gen.permutation(m) % 2 == 0
    folds = []
    for part in (half, ~half):
        fit = fit_linear_bt(X, a[~part], b[~part], y[~part], l2=l2, w0=full.w)
        folds.append((_standardise(fit.score(X)), a[part], b[part], y[part]))

    def evidence(slope: float, spread: float) -> float:
        return sum(prequential_loglik(zf, af, bf, yf, slope, spread, beta) for zf, af, bf, yf in folds)

    if start is None:
        slope, spread = 0.5 * R.DEFAULT_SIGMA, 0.75 * R.DEFAULT_SIGMA
        lo_s, hi_s, lo_p, hi_p, rounds = 0.0, _SLOPE_MAX, _SPREAD_RANGE[0], _SPREAD_RANGE[1], 2
    else:
        fc = start.confidence if start.fit_confidence is None else start.fit_confidence
        fs = start.scale if start.fit_scale is None else start.fit_scale
        slope, spread = fc * fs, fs * math.sqrt(1.0 - fc**2)
        lo_s, hi_s = max(0.0, slope - 1.0), min(_SLOPE_MAX, slope + 1.0)
        lo_p, hi_p = max(_SPREAD_RANGE[0], spread - 1.0), min(_SPREAD_RANGE[1], spread + 1.0)
        rounds = 1
    for _ in range(rounds):
        slope = _golden_max(partial(_swap, evidence, spread), lo_s, hi_s, _TOL, ends=(0.0,) if lo_s == 0 else ())
        spread = _golden_max(partial(evidence, slope), lo_p, hi_p, _TOL)
    fit_scale = math.hypot(slope, spread)
    fit_conf = float(min(slope / fit_scale, MAX_CONFIDENCE))
    # the on/off test on the vote halves: its null (votes without preference) is exact there, since each half's
    # scores depend only on the other half's outcomes (image folds interlock: a coin-flipper passed 6 % of the time)
    t, held_out = score_test(folds)
    weight = feature_weight(t, held_out)

    def off(reason: str, noise: float | None = None) -> BTPrior:
        return BTPrior(z=z, confidence=0.0, scale=R.DEFAULT_SIGMA, w=full.w, weight=weight, fit_confidence=fit_conf,
                       fit_scale=float(fit_scale), off_reason=reason, judge_noise=noise)

    if weight < OFF_WEIGHT:
        return off(f"taste prior off: the features do not predict your votes (held-out score test t = {t:.1f} on "
                   f"{held_out} votes, evidence {weight:.2f} < {OFF_WEIGHT})")
    # the honest part: each image scored by a fit that never saw its votes (a vote split lets the ranker memorise
    # heavily voted images), r by the held-out Thurstone likelihood with the judge's own noise
    # (imagerank.ratings.honesty); a prior whose r is not supported by a likelihood-ratio test is off too
    z_out = out_of_fold_scores(X, a, b, y, l2=l2, rng=gen)
    r_hat, noise, gain = estimate_r(z_out, a, b, y)
    if 2.0 * gain < LR_CRITICAL:
        return off(f"taste prior off: it does not predict your votes on images it was not fitted on (held-out r "
                   f"{r_hat:.2f}, likelihood ratio {2.0 * gain:.1f} < {LR_CRITICAL})", noise)
    confidence, scale = shrink_prior(slope, spread, weight)
    return BTPrior(z=z, confidence=confidence, scale=scale, w=full.w, weight=weight, fit_confidence=fit_conf,
                   fit_scale=float(fit_scale), r=float(weight * r_hat), judge_noise=noise)


def out_of_fold_scores(X: np.ndarray, a: np.ndarray, b: np.ndarray, y: np.ndarray, *, l2: float = 1.0,
                       w0: np.ndarray | None = None, folds: int = HONEST_FOLDS,
                       rng: np.random.Generator | int | None = 0) -> np.ndarray:
    """(N,) standardised scores, each image's from a linear Bradley-Terry fit on the votes that never involved it.

    The images are split into ``folds`` random groups (:func:`imagerank.ratings.honesty.image_folds`); for each group
    :func:`fit_linear_bt` is fitted on the votes between images of the other groups and scores that group (each fit
    standardised over all N images). Cross-fitting by image, not by vote: a vote-level split leaves a heavily voted
    image on both sides, and the ranker "predicts" its held-out votes by memorising it.

    Args:
        X: (N, D) features; a, b: (M,) int indices; y: (M,) outcomes for a (1, 0, 0.5); l2: ridge penalty;
        w0: warm start (D,); folds: groups (>= 2); rng: seed or generator of the groups.

    Returns:
        (N,) float64; a group whose fit had no votes gets 0 (no information).
    """
    n = X.shape[0]
    groups = image_folds(n, folds, rng)
    out = np.zeros(n, dtype=np.float64)
    for k in range(folds):
        keep = (groups[a] != k) & (groups[b] != k)
        mine = groups == k
        if keep.any() and mine.any():
            fit = fit_linear_bt(X, a[keep], b[keep], y[keep], l2=l2, w0=w0)
            out[mine] = _standardise(fit.score(X))[mine]
    return out


def _swap(f: Callable[[float, float], float], second: float, first: float) -> float:
    return f(first, second)


def _standardise(s: np.ndarray) -> np.ndarray:
    sd = float(s.std())
    return (s - s.mean()) / sd if sd > 0 else np.zeros_like(s)
