"""A batch posterior over the whole vote log: expectation propagation on a Thurstone model, with its own beta.

OpenSkill (Weng & Lin 2011) is a *filter*: each vote is applied once, in order, and its sigma shrink factor
``gamma = sigma / c`` makes one vote shrink sigma by only about 5 %, whatever the judge's fitted beta. With a
consistent judge a decisive vote should settle an image much more than that. This module keeps a second,
derived posterior over the same votes: every image's skill ``s_i ~ N(prior_mu_i, prior_sigma_i^2)`` (the priors
the ratings start from) and every pairwise vote a Thurstone case V factor (Thurstone 1927)

- a win of a over b: ``P = Phi((s_a - s_b) / (sqrt(2) beta))``,
- a draw: ``P = Phi((eps - d) / (sqrt(2) beta)) - Phi((-eps - d) / (sqrt(2) beta))`` with ``d = s_a - s_b`` and
  the draw margin ``eps = sqrt(2) beta Phi^-1((1 + r) / 2)`` for the observed draw rate r (TrueSkill's
  relation between draw probability and margin, Herbrich, Minka & Graepel 2007, "TrueSkill: a Bayesian skill
  rating system", NIPS 19),

approximated by a fully factorised Gaussian with expectation propagation (Minka 2001, "Expectation propagation
for approximate Bayesian inference", UAI): each vote keeps a Gaussian *site* on each of its two images; a new
vote is one assumed-density-filtering step (exact moment matching of one probit factor, so a decisive vote of a
consistent judge shrinks the variance as much as the evidence says, about 30 % instead of 5 %), and
:meth:`EPPosterior.sweep` revisits every vote with the others' current sites (the batch refit, as in
"TrueSkill through time", Dangauthier, Herbrich, Minka & Graepel 2008, NIPS 20), so the result no longer
depends on the order of the votes. Site precisions are clipped at 0 (the usual safeguard of EP).

:func:`fit_beta_ep` fits beta by the prequential likelihood of this posterior (not of OpenSkill's filter, which
under-estimates a noisy judge's beta), so beta / skill SD tells a consistent judge from a noisy one.

The state is *derived*: the stored OpenSkill ratings stay the replay of the vote log (replay, undo and ``doctor``
are unchanged); this posterior is rebuilt from the log whenever the priors or beta change.

The app's use of it (:class:`imagerank.pairing.posterior_view.PosteriorView`) and the simulation's ``ep-adaptive``
strategy (``benchmarks/ranking_sim.py``) share the functions below, so the simulation measures what the app does:
:func:`build_posterior` (priors widened by :data:`EP_PRIOR_INFLATION`, beta by :func:`fit_beta_ep`, two EP passes),
:func:`decide_mode` (the consistent-judge mode while beta / skill SD < :data:`EP_SWITCH`), :func:`board_score` (the
leaderboard's key in that mode) and :func:`posterior_stability` (the top-k stability estimate in that mode).
N-way matches (best-of-N rounds) enter as the pairwise factors :func:`match_factors` implies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidArgumentError

__all__ = [
    "EP_BETA_RANGE",
    "EP_PRIOR_INFLATION",
    "EP_SCORE_K",
    "EP_STABILITY_SCALE",
    "EP_STABILITY_SLOPE",
    "EP_SWEEP_EVERY",
    "EP_SWITCH",
    "MODE_MIN_VOTES",
    "EPPosterior",
    "JudgeMode",
    "board_score",
    "build_posterior",
    "decide_mode",
    "draw_margin",
    "fit_beta_ep",
    "match_factors",
    "posterior_stability",
    "skill_scale",
]

_SQRT2 = math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)
_MIN_VAR = 1e-10
#: Range of the per-image performance SD :func:`fit_beta_ep` searches (OpenSkill units): openskill's 25/6 / 64 up to
#: four times 25/6 (a crowd's votes are noisier than openskill's default assumes).
EP_BETA_RANGE = (25.0 / 6.0 / 64.0, 4 * 25.0 / 6.0)
_MIN_FIT_VOTES = 20
_LOG_TOL = 0.04
#: The EP posterior's prior SDs are the live prior's times this: the live prior's confidence is fitted to OpenSkill's
#: under-reacting filter and over-claims under EP (1.25 / 1.5 / 2 gave 0.88 / 0.89 / 0.93 noiseless in
#: ``benchmarks/ranking_sim.py``, 3 seeds).
EP_PRIOR_INFLATION = 2.0
#: The consistent-judge mode holds while the EP-fitted beta / the prior's skill SD is under this (fitted ratios at
#: 3,000 votes in the simulation: noiseless 0.01, per-image noise 0.15 / 0.30 / 0.62 x SD 0.27 / 0.49 / 1.08,
#: crowd 2.8; 0.75 keeps the EP path for the first three, where it beats ``active``).
EP_SWITCH = 0.75
#: Two EP passes over the whole log every this many votes (and at every rebuild); one ADF step per vote between.
EP_SWEEP_EVERY = 50
#: The stability estimate in the consistent-judge mode samples skills with SD ``scale * sigma``, ``scale =
#: max(0.7, EP_STABILITY_SCALE - EP_STABILITY_SLOPE * ratio)`` (ratio: fitted judge noise / skill SD). Fitted in
#: ``benchmarks/ranking_sim.py`` (ep-adaptive, rho 0.75, 3 seeds): a noiseless judge (ratio ~0.01) is calibrated at
#: 1.0 (0.85 over-reported by 0.15 at 500 votes), a 0.15 x SD judge (ratio ~0.27) at 0.9 (1.0 under-reported by up
#: to 0.09). Reading the board's own top-k (mu - sigma), not OpenSkill's ordinal, removed the rest of last session's
#: 0.37 under-report.
EP_STABILITY_SCALE = 1.0
EP_STABILITY_SLOPE = 0.4


def _pdf(x: float) -> float:
    return _INV_SQRT2PI * math.exp(-0.5 * x * x)


def _cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / _SQRT2)


def _v_win(t: float) -> tuple[float, float]:
    """(lambda, w) of a probit win at standardised margin t: lambda = pdf/cdf, w = lambda (lambda + t)."""
    # below -30 the cdf underflows: the Mills-ratio asymptotics
    lam = _pdf(t) / max(_cdf(t), 1e-300) if t > -30.0 else -t / (1.0 - 1.0 / (t * t) + 3.0 / t**4)
    return lam, min(max(lam * (lam + t), 0.0), 1.0 - 1e-9)


def _v_draw(t: float, e: float) -> tuple[float, float]:
    """(v, w) of a draw factor ``|d| < eps`` at standardised mean t and margin e (Herbrich et al. 2007)."""
    ta = abs(t)
    den = _cdf(e - ta) - _cdf(-e - ta)
    if den < 1e-300:  # far outside the margin: the truncated normal sits at the nearer edge
        v = -(ta - e) if ta > e else 0.0
        w = 1.0 - 1e-9
    else:
        p1, p2 = _pdf(-e - ta), _pdf(e - ta)
        v = (p1 - p2) / den
        w = v * v + ((e - ta) * p2 - (-e - ta) * p1) / den
        w = min(max(w, 0.0), 1.0 - 1e-9)
    return (-v if t < 0 else v), w


def draw_margin(draw_rate: float, beta: float) -> float:
    """The draw margin eps for an observed share of draws: ``sqrt(2) beta Phi^-1((1 + r) / 2)`` (TrueSkill).

    Args:
        draw_rate: share of draws among the votes, 0 <= r < 1 (clipped to 0.95).
        beta: the judge's per-image performance SD (OpenSkill units, > 0).

    Returns:
        eps >= 0 in OpenSkill units (0 for no draws).

    Raises:
        InvalidArgumentError: beta is not positive or the rate is not in [0, 1].
    """
    if not beta > 0:
        raise InvalidArgumentError(f"beta: expected a positive performance SD, got {beta!r}")
    if not 0.0 <= draw_rate <= 1.0:
        raise InvalidArgumentError(f"draw_rate: expected a share in [0, 1], got {draw_rate!r}")
    from statistics import NormalDist

    r = min(float(draw_rate), 0.95)
    return 0.0 if r <= 0 else _SQRT2 * float(beta) * NormalDist().inv_cdf((1.0 + r) / 2.0)


class EPPosterior:
    """Gaussian posterior of every image's skill given the priors and the pairwise votes (EP, see the module).

    Args:
        prior_mu, prior_sigma: (N,) float prior means and SDs (OpenSkill units, sigma > 0).
        beta: the judge's per-image performance SD (OpenSkill units, > 0): the fitted beta.
        draw_rate: the judge's share of draws (sets the draw margin, :func:`draw_margin`).

    Attributes:
        mu, sigma: (N,) float64 posterior means and SDs, current after every :meth:`add` and :meth:`sweep`.

    Raises:
        InvalidArgumentError: shapes differ, a sigma is not positive, or beta is not positive.
    """

    def __init__(self, prior_mu: np.ndarray, prior_sigma: np.ndarray, beta: float, draw_rate: float = 0.0) -> None:
        pm = np.asarray(prior_mu, dtype=np.float64)
        ps = np.asarray(prior_sigma, dtype=np.float64)
        if pm.ndim != 1 or pm.shape != ps.shape:
            raise InvalidArgumentError(
                f"prior_mu, prior_sigma: expected two (N,) arrays, got {pm.shape} and {ps.shape}")
        if not bool(np.all(ps > 0)):
            raise InvalidArgumentError("prior_sigma: expected every SD > 0, got a zero, negative or NaN one")
        self.beta = float(beta)
        self.eps = draw_margin(draw_rate, self.beta)
        # natural parameters of the marginals: precision and precision * mean
        self._prec = 1.0 / (ps * ps)
        self._pm = pm * self._prec
        self._votes: list[tuple[int, int, float]] = []
        self._sites: list[list[float]] = []  # per vote: [prec_a, pm_a, prec_b, pm_b]

    def __len__(self) -> int:
        return len(self._votes)

    @property
    def mu(self) -> np.ndarray:
        """(N,) posterior means."""
        return self._pm / self._prec

    @property
    def sigma(self) -> np.ndarray:
        """(N,) posterior SDs."""
        return 1.0 / np.sqrt(self._prec)

    def add(self, a: int, b: int, outcome: float) -> float:
        """Fold in one vote (ADF: one moment-matching step). outcome: 1.0 a won, 0.0 b won, 0.5 a draw.

        Returns:
            The log-probability the posterior gave the vote before it was folded in (<= 0; 0 for a draw when no
            draw margin is set, since such a draw carries no information).

        Raises:
            InvalidArgumentError: a bad outcome or index, or a == b.
        """
        n = self._prec.shape[0]
        if outcome not in (0.0, 0.5, 1.0):
            raise InvalidArgumentError(f"outcome: expected 1.0 (a won), 0.0 (b won) or 0.5 (draw), got {outcome!r}")
        if not (0 <= a < n and 0 <= b < n) or a == b:
            raise InvalidArgumentError(f"a, b: expected two different indices in [0, {n}), got {a}, {b}")
        self._votes.append((int(a), int(b), float(outcome)))
        site = [0.0, 0.0, 0.0, 0.0]
        self._sites.append(site)
        return self._update(int(a), int(b), float(outcome), site)

    def extend(self, a: Sequence[int] | np.ndarray, b: Sequence[int] | np.ndarray,
               outcome: Sequence[float] | np.ndarray) -> None:
        """:meth:`add` for each vote in order."""
        for x, y, r in zip(a, b, outcome, strict=True):
            self.add(int(x), int(y), float(r))

    def copy(self) -> EPPosterior:
        """An independent copy (marginals, votes and sites): O(N + M); the app sweeps a copy beside the votes."""
        out = EPPosterior.__new__(EPPosterior)
        out.beta, out.eps = self.beta, self.eps
        out._prec, out._pm = self._prec.copy(), self._pm.copy()
        out._votes = list(self._votes)
        out._sites = [list(x) for x in self._sites]
        return out

    def sweep(self, passes: int = 2) -> None:
        """Revisit every vote ``passes`` times (EP), in log order; O(votes) per pass."""
        for _ in range(max(int(passes), 0)):
            for (a, b, r), site in zip(self._votes, self._sites, strict=True):
                self._update(a, b, r, site)

    def _update(self, a: int, b: int, r: float, site: list[float]) -> float:
        prec, pm = self._prec, self._pm
        ca = prec[a] - site[0]
        cb = prec[b] - site[2]
        if ca <= 0 or cb <= 0:
            return 0.0
        ma = (pm[a] - site[1]) / ca
        mb = (pm[b] - site[3]) / cb
        va, vb = 1.0 / ca, 1.0 / cb
        c2 = 2.0 * self.beta * self.beta + va + vb
        c = math.sqrt(c2)
        if r == 0.5:
            if self.eps <= 0:
                return 0.0
            t, e = (ma - mb) / c, self.eps / c
            logp = math.log(max(_cdf(e - abs(t)) - _cdf(-e - abs(t)), 1e-300))
            v, w = _v_draw(t, e)
            da, db = va / c * v, -vb / c * v
        else:
            s = 1.0 if r == 1.0 else -1.0
            t = s * (ma - mb) / c
            logp = math.log(max(_cdf(t), 1e-300)) if t > -30.0 else -0.5 * t * t - math.log(-t) - 0.9189385332
            lam, w = _v_win(t)
            da, db = s * va / c * lam, -s * vb / c * lam
        na = max(va * (1.0 - va / c2 * w), _MIN_VAR)
        nb = max(vb * (1.0 - vb / c2 * w), _MIN_VAR)
        sa = max(1.0 / na - ca, 0.0)
        sb = max(1.0 / nb - cb, 0.0)
        # site natural parameters: new marginal minus cavity (mean-precision from the moment-matched mean)
        site[0], site[1] = sa, (ma + da) * (ca + sa) - ma * ca
        site[2], site[3] = sb, (mb + db) * (cb + sb) - mb * cb
        prec[a], pm[a] = ca + sa, ma * ca + site[1]
        prec[b], pm[b] = cb + sb, mb * cb + site[3]
        return logp


def fit_beta_ep(prior_mu: np.ndarray, prior_sigma: np.ndarray, a: Sequence[int] | np.ndarray,
                b: Sequence[int] | np.ndarray, outcome: Sequence[float] | np.ndarray) -> float:
    """The judge's per-image performance SD under this posterior's own model, by prequential likelihood.

    Maximises the summed log-probability of each vote as :class:`EPPosterior` predicted it before folding it in
    (ADF in log order; the prequential principle, Dawid 1984, JRSS A 147) over ``log beta`` in
    :data:`EP_BETA_RANGE` (golden-section search, Kiefer 1953). Unlike
    :func:`imagerank.ratings.consistency.fit_beta`, which scores OpenSkill's under-reacting filter and so
    under-estimates a noisy judge's beta, this one scores the moment-matched posterior, so beta / skill SD
    comes out near the judge's real noise (a per-image noise of 0.15 / 0.30 / 0.62 x SD in the simulation).

    Args:
        prior_mu, prior_sigma: (N,) float prior means and SDs (OpenSkill units, sigma > 0).
        a, b, outcome: (M,) the votes in log order: indices into the priors and 1.0 / 0.0 / 0.5 (a won / b won / draw).

    Returns:
        beta in OpenSkill units; openskill's 25/6 with fewer than 20 decisive votes.

    Raises:
        InvalidArgumentError: as :class:`EPPosterior` and :meth:`EPPosterior.add`, or a, b, outcome differ in length.

    Cost: about 15 ADF passes over the log, O(M) plain Python each (about 10 ms per 1,000 votes).
    """
    aa, bb, yy = list(a), list(b), [float(x) for x in outcome]
    if not len(aa) == len(bb) == len(yy):
        raise InvalidArgumentError(f"a, b, outcome: expected one length, got {len(aa)}, {len(bb)}, {len(yy)}")
    if sum(1 for y in yy if y != 0.5) < _MIN_FIT_VOTES:
        return 25.0 / 6.0
    rate = sum(1 for y in yy if y == 0.5) / len(yy)

    def loglik(log_beta: float) -> float:
        ep = EPPosterior(prior_mu, prior_sigma, math.exp(log_beta), rate)
        return sum(ep.add(int(x), int(z), y) for x, z, y in zip(aa, bb, yy, strict=True))

    g = (math.sqrt(5.0) - 1.0) / 2.0
    lo, hi = math.log(EP_BETA_RANGE[0]), math.log(EP_BETA_RANGE[1])
    c, d = hi - g * (hi - lo), lo + g * (hi - lo)
    fc, fd = loglik(c), loglik(d)
    while hi - lo > _LOG_TOL:
        if fc >= fd:
            hi, d, fd = d, c, fc
            c = hi - g * (hi - lo)
            fc = loglik(c)
        else:
            lo, c, fc = c, d, fd
            d = lo + g * (hi - lo)
            fd = loglik(d)
    return math.exp(0.5 * (lo + hi))


# ---------------------------------------------------------------------------------------------- shared with the app
#: The automatic mode decides from this many decisive votes on (before, OpenSkill's ordinal ranks, as always did):
#: fewer cannot tell a consistent judge's beta from a noisy one's reliably (the simulation decides at 250).
MODE_MIN_VOTES = 100
#: The leaderboard's key in the consistent-judge mode is ``mu - EP_SCORE_K * sigma`` of the EP posterior.
EP_SCORE_K = 1.0


def match_factors(ranks: Sequence[int]) -> list[tuple[int, int, float]]:
    """The pairwise factors one match puts into the posterior, as ``(i, j, outcome)`` over entry positions.

    A pair gives one factor (1.0: i won, 0.5: a draw). An N-way ranking (a best-of-N round, ranks 0 best, ties
    share) gives the comparisons its ranking implies between the best and the rest: each image of the best rank
    beats each other image, and each image above the worst rank beats each image of the worst rank (a best-of-4
    with a worst chosen: 3 + 2 = 5 factors; without one the worst rank is the rest, so 3). Ties among the middle
    images say nothing and give no factor.

    Args:
        ranks: (N,) ints, N >= 2, one per entry (0 best).

    Returns:
        A list of ``(i, j, outcome)``; empty when every rank is equal and N > 2.

    Raises:
        InvalidArgumentError: fewer than 2 ranks.
    """
    r = [int(x) for x in ranks]
    if len(r) < 2:
        raise InvalidArgumentError(f"ranks: expected at least 2 entries, got {r}")
    if len(r) == 2:
        return [(0, 1, 1.0 if r[0] < r[1] else 0.0 if r[0] > r[1] else 0.5)]
    best, worst = min(r), max(r)
    if best == worst:
        return []
    out = [(i, j, 1.0) for i in range(len(r)) if r[i] == best for j in range(len(r)) if r[j] != best]
    out += [(i, j, 1.0) for i in range(len(r)) if best < r[i] < worst for j in range(len(r)) if r[j] == worst]
    return out


def build_posterior(prior_mu: np.ndarray, prior_sigma: np.ndarray, a: np.ndarray, b: np.ndarray,
                    outcome: np.ndarray, passes: int = 2) -> EPPosterior:
    """The EP posterior the app and the simulation use: priors widened by :data:`EP_PRIOR_INFLATION`, beta fitted
    by :func:`fit_beta_ep` under the same priors, the votes folded in by ADF, then ``passes`` EP passes.

    Args:
        prior_mu, prior_sigma: (N,) float prior means and SDs (the live prior's, OpenSkill units, sigma > 0).
        a, b, outcome: (M,) the pairwise factors in log order (:func:`match_factors`): indices and 1.0 / 0.0 / 0.5.
        passes: EP passes after the ADF pass.

    Returns:
        An :class:`EPPosterior` (its ``beta`` is the fitted one).

    Raises:
        InvalidArgumentError: as :class:`EPPosterior` and :func:`fit_beta_ep`.

    Cost: about 17 plain-Python passes over the M factors (some 30 ms per 1,000 votes).
    """
    ps = EP_PRIOR_INFLATION * np.asarray(prior_sigma, dtype=np.float64)
    y = np.asarray(outcome, dtype=np.float64)
    beta = fit_beta_ep(prior_mu, ps, a, b, y)
    rate = float(np.mean(y == 0.5)) if y.size else 0.0
    ep = EPPosterior(prior_mu, ps, beta, rate)
    ep.extend(a, b, y)
    ep.sweep(passes)
    return ep


@dataclass(frozen=True)
class JudgeMode:
    """Which rating model ranks the collection, and why.

    Attributes:
        consistent: True: the consistent-judge mode (the EP posterior is the leaderboard, ``active`` picks with
            :func:`imagerank.pairing.screen.screen_pairs`); False: OpenSkill's ordinal as before.
        ratio: the EP-fitted beta / the prior's skill SD (NaN before a fit).
        reason: one line for the user.
    """

    consistent: bool
    ratio: float
    reason: str

    def __str__(self) -> str:
        return self.reason


def decide_mode(beta: float, scale: float, votes: int, setting: str = "auto") -> JudgeMode:
    """The consistent-judge decision from the EP-fitted beta (see :data:`EP_SWITCH`).

    Args:
        beta: the EP-fitted performance SD (OpenSkill units, > 0).
        scale: the prior's skill SD (the live prior's fitted scale; openskill's 25/3 without one), > 0.
        votes: decisive votes the fit saw (under :data:`MODE_MIN_VOTES` the automatic mode stays off).
        setting: ``"auto"`` (decide), ``"on"`` or ``"off"`` (forced; ``Settings.posterior``).

    Returns:
        A :class:`JudgeMode`.

    Raises:
        InvalidArgumentError: an unknown setting, or beta / scale not positive.
    """
    if setting not in ("auto", "on", "off"):
        raise InvalidArgumentError(f"posterior: expected auto, on or off, got {setting!r}")
    if not (beta > 0 and scale > 0):
        raise InvalidArgumentError(f"beta, scale: expected two positive SDs, got {beta!r}, {scale!r}")
    ratio = float(beta) / float(scale)
    if setting == "on":
        return JudgeMode(True, ratio, f"consistent judge (forced on): ranking by the full posterior "
                                      f"(judge noise {ratio:.2f} x skill SD)")
    if setting == "off":
        return JudgeMode(False, ratio, "ranking by OpenSkill's ordinal (the posterior mode is forced off)")
    if votes < MODE_MIN_VOTES:
        return JudgeMode(False, ratio, f"ranking by OpenSkill's ordinal: {votes} decisive votes, the judge's "
                                       f"consistency decides from {MODE_MIN_VOTES}")
    if ratio < EP_SWITCH:
        return JudgeMode(True, ratio, f"consistent judge: ranking by the full posterior (judge noise {ratio:.2f} "
                                      f"x skill SD < {EP_SWITCH})")
    return JudgeMode(False, ratio, f"noisy judge: ranking by OpenSkill's ordinal (judge noise {ratio:.2f} x "
                                   f"skill SD >= {EP_SWITCH})")


def board_score(mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """The leaderboard's key in the consistent-judge mode: ``mu - EP_SCORE_K * sigma`` ((N,) float64)."""
    return np.asarray(mu, dtype=np.float64) - EP_SCORE_K * np.asarray(sigma, dtype=np.float64)


def posterior_stability(mu: np.ndarray, sigma: np.ndarray, k: int, samples: int = 200,
                        rng: np.random.Generator | int | None = None, scale: float | None = None,
                        ratio: float = 0.0) -> float:
    """Expected share of the consistent-mode top-k (by :func:`board_score`) that is also the top-k of a sample.

    As :func:`imagerank.ratings.stability.topk_stability`, on the EP posterior: skills drawn from
    ``N(mu, (scale * sigma)^2)`` (``scale`` from the judge's noise ratio, see :data:`EP_STABILITY_SCALE`,
    calibrated against the true precision@100 in the simulation), the current top-k being the leaderboard's.
    Images whose ``mu + 7 s`` is below the k-th largest ``mu - 7 s`` are not sampled (they reach a sampled top-k
    with probability < 1e-11 each).

    Args:
        mu, sigma: (N,) posterior means and SDs (sigma >= 0). k: >= 1 (1.0 when k >= N).
        samples: draws, >= 1. rng: a Generator, a seed or None. scale: > 0 (default from ``ratio``).
        ratio: the EP-fitted beta / skill SD (:attr:`JudgeMode.ratio`; NaN counts as 0).

    Returns:
        A float in [0, 1].

    Raises:
        InvalidArgumentError: shapes differ, NaN, a negative sigma, k or samples < 1, scale <= 0.
    """
    if scale is None:
        r = float(ratio) if math.isfinite(ratio) else 0.0
        scale = max(0.7, EP_STABILITY_SCALE - EP_STABILITY_SLOPE * r)
    m = np.asarray(mu, dtype=np.float64)
    s = np.asarray(sigma, dtype=np.float64)
    if m.ndim != 1 or s.shape != m.shape:
        raise InvalidArgumentError(f"mu, sigma: expected two (N,) arrays, got {m.shape} and {s.shape}")
    if np.isnan(m).any() or np.isnan(s).any() or (s < 0).any():
        raise InvalidArgumentError("mu, sigma: expected finite means and SDs >= 0")
    if int(k) < 1 or int(samples) < 1 or not scale > 0:
        raise InvalidArgumentError(f"k, samples, scale: expected >= 1, >= 1, > 0, got {k}, {samples}, {scale}")
    k, n = int(k), m.shape[0]
    if k >= n:
        return 1.0
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    current = np.argpartition(-board_score(m, s), k - 1)[:k]
    spread = float(scale) * s
    low = m - 7.0 * spread
    cand = np.union1d(np.flatnonzero(m + 7.0 * spread >= np.partition(low, n - k)[n - k]), current)
    if k >= cand.shape[0]:
        return 1.0
    inside = np.zeros(cand.shape[0], dtype=bool)
    inside[np.searchsorted(cand, current)] = True
    mc, sc = m[cand], spread[cand]
    total, done = 0.0, 0
    chunk = max(1, min(int(samples), 2_000_000 // cand.shape[0]))
    while done < samples:
        c = min(chunk, int(samples) - done)
        draws = gen.standard_normal((c, cand.shape[0])) * sc + mc
        total += float(inside[np.argpartition(-draws, k - 1, axis=1)[:, :k]].sum())
        done += c
    return total / (int(samples) * k)


def skill_scale(prior_mu: np.ndarray, prior_sigma: np.ndarray) -> float:
    """The skill SD the priors imply: ``sqrt(var(prior_mu) + mean(prior_sigma^2))`` (OpenSkill units).

    A live prior (:func:`imagerank.ratings.priors.prior_to_rating`) gives ``mu = 25 + r scale z`` and ``sigma^2 =
    scale^2 (1 - r^2)`` with z of SD 1, so this returns its fitted scale; default priors give openskill's 25/3.

    Raises:
        InvalidArgumentError: empty or mismatched arrays.
    """
    m = np.asarray(prior_mu, dtype=np.float64)
    s = np.asarray(prior_sigma, dtype=np.float64)
    if m.size == 0 or m.shape != s.shape:
        raise InvalidArgumentError(f"prior_mu, prior_sigma: expected two non-empty (N,) arrays, got {m.shape}, "
                                   f"{s.shape}")
    return float(math.sqrt(float(m.var()) + float(np.mean(s * s))))
