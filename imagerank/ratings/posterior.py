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
are unchanged); this posterior is rebuilt from the log whenever the priors or beta change. Used by the
simulation's ``ep-screen`` / ``ep-adaptive`` experiments (``benchmarks/ranking_sim.py``); not yet by the app, whose
leaderboard is OpenSkill's ordinal (README, "Ranking simulation").
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import InvalidArgumentError

__all__ = ["EP_BETA_RANGE", "EPPosterior", "draw_margin", "fit_beta_ep"]

_SQRT2 = math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)
_MIN_VAR = 1e-10
#: Range of the per-image performance SD :func:`fit_beta_ep` searches (OpenSkill units): openskill's 25/6 / 64 up to
#: four times 25/6 (a crowd's votes are noisier than openskill's default assumes).
EP_BETA_RANGE = (25.0 / 6.0 / 64.0, 4 * 25.0 / 6.0)
_MIN_FIT_VOTES = 20
_LOG_TOL = 0.04


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
