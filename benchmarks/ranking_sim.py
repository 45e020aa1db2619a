"""Ranking simulation: how fast does each pairing strategy find the true top-k?

N simulated images get true utilities drawn from the real AVA score distribution (mean score of each image's
vote histogram, ``../shared/data/preferences/ava_labels_test.json``; a normal distribution with AVA's mean and SD
when the file is absent). A simulated judge answers each pair:

- ``noiseless``: the higher utility wins.
- ``thurstone``: Thurstone case V, each image perceived as ``u + eps``, ``eps ~ N(0, (ratio * sd(u))^2)``, with
  ``ratio`` fitted to the real 48x48 comparison matrix ``pcm_48stimuli.csv`` (0.62; 0.6 when absent); a
  perceived difference under ``DRAW_BAND * ratio * sd(u)`` is a draw and ``SKIP_RATE`` of the pairs are skipped
  (a skip costs a vote of the budget but changes no rating, like ``Settings.skip_as_draw = False``).
- ``crowd``: one real AVA vote (1..10) drawn from each image's histogram per comparison; equal votes are a draw.

Ratings are OpenSkill Plackett-Luce (:func:`imagerank.ratings.priors.rate_duel`, equal to openskill). Every
``refit_every`` votes the ranker (:func:`imagerank.ratings.priors.bt_prior`, the project's linear Bradley-Terry fit) is
refitted from the votes so far on 16-d features whose predictable part has correlation rho with the utility; its
calibrated scores become every image's OpenSkill prior (:func:`imagerank.ratings.priors.prior_to_rating`) and all votes
are replayed from them, as ``Collection.apply_prior`` does. The same ratings serve every strategy; only the
pairs differ. Pairs come from :func:`imagerank.pairing.select_pairs` (no pair twice, as in a session).

Metrics at each budget B: precision@k of the leaderboard (top-k by ordinal ``mu - 3 sigma``) against the true
top-k, Kendall tau and Spearman rho of the leaderboard against the utilities (all N images), top-k churn since
the previous checkpoint, the mean cost of one pick (ms), and the stability estimate
(:func:`imagerank.ratings.stability.topk_stability`) with its error against the true precision@k. The coverage bound
2B/N (comparison slots per image) is printed beside them.

Two references cheat and bound what pairing can reach with a judge: ``gatekeeper`` is the issue's "gatekeeper
that knows the true #k" (:func:`run_gatekeeper`, an idealised Bayesian screen with the true boundary and an
oracle prior) and ``oracle`` pairs uniformly among the true top-300 (same ratings and prior as the strategies).
``ep-adaptive`` is what the app does (:mod:`imagerank.pairing.posterior_view`), through the same functions of
:mod:`imagerank.ratings.posterior`: at every refit the expectation-propagation posterior of the vote log is rebuilt
(:func:`~imagerank.ratings.posterior.build_posterior`: the live prior's SDs times ``EP_PRIOR_INFLATION``, its own
fitted beta, two EP passes; two more every ``EP_SWEEP_EVERY`` votes, one ADF step per vote between) and the mode is
decided (:func:`~imagerank.ratings.posterior.decide_mode`: consistent judge while the EP-fitted beta / the priors'
skill SD is under ``EP_SWITCH``); in that mode pairs come from :func:`imagerank.pairing.screen.screen_pairs`, the
leaderboard is :func:`~imagerank.ratings.posterior.board_score` (posterior mean - 1 SD) and the stability column is
:func:`~imagerank.ratings.posterior.posterior_stability`; otherwise ``active`` on the OpenSkill ratings, as always.
``ep-screen`` forces the EP path for every judge (``Settings.posterior = "on"``).

Run (default grid: thurstone x every rho, crowd at rho 0.75; random, spec, active, gatekeeper; 5 seeds; about
a minute on 2 cores):
    python benchmarks/ranking_sim.py
Every judge x every rho (noiseless too), and a noise sweep (per-image noise / SD of the utilities):
    python benchmarks/ranking_sim.py --full --compact
    python benchmarks/ranking_sim.py --judges thurstone --rhos 0.75 --ratio 0.3 --compact
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from scipy import stats

from imagerank import ratings as R
from imagerank.pairing import PairContext, Pool, Strategy, select_pairs
from imagerank.pairing.screen import screen_pairs
from imagerank.ratings.consistency import fit_beta
from imagerank.ratings.posterior import (
    EP_SWEEP_EVERY,
    EPPosterior,
    board_score,
    build_posterior,
    decide_mode,
    posterior_stability,
    skill_scale,
)
from imagerank.ratings.priors import bt_prior, rate_duel
from imagerank.ratings.stability import topk_stability, widening_noise

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "preferences"
AVA_PATH = DATA / "ava_labels_test.json"
PCM_PATH = DATA / "pcm_48stimuli.csv"
# AVA test split: mean 5.377, SD of image means 0.734 (RANKING_DATA_SOURCES.md); used when the file is absent.
AVA_FALLBACK = (5.377, 0.734)
DEFAULT_RATIO = 0.6
DRAW_BAND = 0.1  # perceived differences under 0.1 * noise SD are draws (about 6% of close pairs)
SKIP_RATE = 0.02
JUDGES = ("noiseless", "thurstone", "crowd")


# ------------------------------------------------------------------------------------------ data
def load_ava(path: Path = AVA_PATH) -> tuple[np.ndarray, np.ndarray] | None:
    """(M,) mean scores and (M, 10) vote histograms of the AVA test split, or None when the file is absent."""
    if not path.exists():
        return None
    rows = json.loads(path.read_text(encoding="utf-8"))
    hist = np.array([r["label"] for r in rows], dtype=np.float64)
    means = hist @ np.arange(1, 11) / hist.sum(1)
    return means, hist


def thurstone_ratio(path: Path = PCM_PATH) -> float:
    """Per-item Thurstone noise / SD of the utilities, fitted to a real pairwise-count matrix.

    Thurstone case V by maximum likelihood: ``P(i beats j) = Phi((s_i - s_j) / sqrt(2))`` (unit per-item noise),
    ``M[i, j]`` wins of i over j. The ratio is ``1 / sd(s)``. Returns DEFAULT_RATIO when the file is absent.
    """
    if not path.exists():
        return DEFAULT_RATIO
    from scipy.optimize import minimize
    from scipy.special import log_ndtr

    M = np.loadtxt(path, delimiter=",")
    n = M.shape[0]
    r2 = math.sqrt(2.0)

    def f(s: np.ndarray) -> tuple[float, np.ndarray]:
        d = (s[:, None] - s[None, :]) / r2
        lp = log_ndtr(d)
        ratio = np.exp(stats.norm.logpdf(d) - lp) / r2
        G = M * ratio
        return float(-(M * lp).sum()), -(G.sum(1) - G.sum(0))

    res = minimize(f, np.zeros(n), jac=True, method="L-BFGS-B")
    s = res.x - res.x.mean()
    return float(1.0 / s.std())


@dataclass
class World:
    """One simulated collection: utilities, the judge's data, features."""

    u: np.ndarray  # (N,) true utilities (AVA score units)
    hist_cdf: np.ndarray | None  # (N, 10) cumulative vote distribution (crowd judge)
    X: np.ndarray  # (N, 16) features
    top: np.ndarray  # (N,) bool, in the true top-k


def make_world(n: int, rho: float, k: int, rng: np.random.Generator, ava: tuple[np.ndarray, np.ndarray] | None,
               dim: int = 16) -> World:
    """Draw N images: utilities from AVA (or the normal fallback), features with predictable share rho.

    Features: 16-d Gaussian; along one random unit direction w the projection is replaced by
    ``rho * z(u) + sqrt(1 - rho^2) * e`` (z(u) standardised utility, e independent noise), so the best linear
    predictor from the features has correlation rho with the utility.
    """
    if ava is not None:
        idx = rng.choice(ava[0].shape[0], size=n, replace=False)
        u = ava[0][idx]
        hist = ava[1][idx]
        cdf = np.cumsum(hist / hist.sum(1, keepdims=True), axis=1)
    else:
        u = rng.normal(AVA_FALLBACK[0], AVA_FALLBACK[1], size=n)
        cdf = None
    u = u + 1e-9 * rng.random(n)  # break exact ties of AVA means; the true top-k is then unique
    zu = (u - u.mean()) / u.std()
    f = rho * zu + math.sqrt(max(1.0 - rho * rho, 0.0)) * rng.standard_normal(n)
    G = rng.standard_normal((n, dim))
    w = rng.standard_normal(dim)
    w /= np.linalg.norm(w)
    X = G - np.outer(G @ w, w) + np.outer(f, w)
    top = np.zeros(n, dtype=bool)
    top[np.argpartition(-u, k - 1)[:k]] = True
    return World(u, cdf, X, top)


class Judge:
    """Answers a pair: 1.0 (a better), 0.0 (b better), 0.5 (draw) or None (skipped)."""

    def __init__(self, kind: str, world: World, ratio: float, rng: np.random.Generator):
        if kind not in JUDGES:
            raise ValueError(f"judge: expected one of {JUDGES}, got {kind!r}")
        if kind == "crowd" and world.hist_cdf is None:
            raise ValueError("judge 'crowd' needs the AVA vote histograms (ava_labels_test.json)")
        self.kind, self.world, self.rng = kind, world, rng
        self.noise = ratio * float(world.u.std())

    def __call__(self, a: int, b: int) -> float | None:
        u = self.world.u
        if self.kind == "noiseless":
            return 1.0 if u[a] > u[b] else 0.0
        if self.kind == "thurstone":
            if self.rng.random() < SKIP_RATE:
                return None
            d = u[a] - u[b] + self.noise * (self.rng.standard_normal() - self.rng.standard_normal())
            if abs(d) < DRAW_BAND * self.noise:
                return 0.5
            return 1.0 if d > 0 else 0.0
        cdf = self.world.hist_cdf
        assert cdf is not None
        va = int(np.searchsorted(cdf[a], self.rng.random() * cdf[a, -1], side="right"))
        vb = int(np.searchsorted(cdf[b], self.rng.random() * cdf[b, -1], side="right"))
        return 0.5 if va == vb else (1.0 if va > vb else 0.0)


# ------------------------------------------------------------------------------------------ one run
ORACLE_M = 300


def oracle_strategy(u: np.ndarray, m: int = ORACLE_M) -> Strategy:
    """A reference that cheats: uniform pairs among the *true* top-m images (it knows the utilities).

    It shows how far the same votes and ratings can go when the candidate set is known in advance, i.e. the
    part of the gap to a perfect top-k that no pairing rule can close with this judge and budget.
    """
    cand = np.argpartition(-u, m - 1)[:m]

    def pairs(ctx: PairContext, n: int) -> list[tuple[int, int]]:
        out = []
        for _ in range(n):
            i, j = ctx.rng.choice(cand, size=2, replace=False)
            out.append((int(i), int(j)))
        return out

    return pairs


@dataclass
class Checkpoint:
    budget: int
    precision: float
    precision_mu: float
    kendall: float
    spearman: float
    churn: float
    pick_ms: float
    stability: float
    prior_confidence: float
    prior_corr: float


@dataclass
class SimConfig:
    n: int = 5000
    k: int = 100
    budgets: tuple[int, ...] = (500, 1000, 2000, 3000)
    refit_every: int = 250
    exploration: float = 0.1
    batch: int = 1
    stability_samples: int = 200
    prior: bool = True
    fit_beta: bool = True
    ratio: float = DEFAULT_RATIO
    extra: dict[str, float] = field(default_factory=dict)


def leaderboard_top(mu: np.ndarray, sigma: np.ndarray, k: int) -> np.ndarray:
    """(k,) indices of the leaderboard's top-k: ordinal ``mu - 3 sigma`` descending, ties by index."""
    order = np.lexsort((np.arange(mu.shape[0]), -(mu - 3.0 * sigma)))
    return order[:k]


def _ranks(outcome: float) -> tuple[int, int]:
    """Ranks of (a, b) for an outcome for a: 1 win, 0 loss, 0.5 draw."""
    return (0, 1) if outcome == 1.0 else (1, 0) if outcome == 0.0 else (0, 0)


def run_one(strategy: str, judge_kind: str, rho: float, seed: int, cfg: SimConfig,
            ava: tuple[np.ndarray, np.ndarray] | None) -> list[Checkpoint]:
    """Simulate one session of max(budgets) votes and return the metrics at each budget."""
    rng = np.random.default_rng([seed, 7])
    world = make_world(cfg.n, rho, cfg.k, rng, ava)
    judge = Judge(judge_kind, world, cfg.ratio, np.random.default_rng([seed, 11]))
    n = cfg.n
    pool = Pool.from_arrays(np.arange(n), np.full(n, R.DEFAULT_MU), np.full(n, R.DEFAULT_SIGMA),
                            np.zeros(n, dtype=np.int64))
    mu, sigma, count = pool.mu, pool.sigma, pool.count
    prior_mu = np.full(n, R.DEFAULT_MU)
    prior_sigma = np.full(n, R.DEFAULT_SIGMA)
    ctx = PairContext(pool, np.random.default_rng([seed, 13]), set(), topk=cfg.k, exploration=cfg.exploration)
    pick: str | Strategy = oracle_strategy(world.u, ORACLE_M) if strategy == "oracle" else strategy
    with_ep = strategy in ("ep-screen", "ep-adaptive")
    ep = EPPosterior(prior_mu, prior_sigma, R.BETA) if with_ep else None
    use_ep = with_ep  # ep-adaptive: re-decided at every refit from the EP-fitted beta
    mode = decide_mode(R.BETA, R.DEFAULT_SIGMA, 0, "on" if with_ep else "off")
    if with_ep:  # a batch posterior chooses the pairs *and* is the leaderboard
        def pick(ctx: PairContext, k: int) -> list[tuple[int, int]]:
            if ep is None or not use_ep:
                return select_pairs(ctx, "active", k)  # pool indices are the ids here
            return screen_pairs(ctx, k, ep.mu, ep.sigma, ep.beta)
    duels: list[tuple[int, int, float]] = []
    beta = R.BETA
    last_prior = None
    calibrated_at = 0
    confidence = 0.0
    pick_time = 0.0
    picks = 0
    votes = 0
    prev_top: set[int] | None = None
    out: list[Checkpoint] = []
    budgets = sorted(cfg.budgets)
    next_refit = cfg.refit_every
    queue: list[tuple[int, int]] = []
    while votes < budgets[-1]:
        if not queue:
            t0 = time.perf_counter()
            queue = select_pairs(ctx, pick, cfg.batch)
            pick_time += time.perf_counter() - t0
            picks += 1
            if not queue:
                break
        a, b = queue.pop(0)
        ctx.seen.add((a, b) if a < b else (b, a))
        res = judge(a, b)
        votes += 1
        if res is not None:
            mu[a], sigma[a], mu[b], sigma[b] = rate_duel(mu[a], sigma[a], mu[b], sigma[b], res, beta)
            count[a] += 1
            count[b] += 1
            duels.append((a, b, res))
            if ep is not None:
                ep.add(a, b, res)
                if len(duels) % EP_SWEEP_EVERY == 0:
                    ep.sweep(2)
        if (cfg.prior or cfg.fit_beta) and votes >= next_refit and duels:
            next_refit += cfg.refit_every
            arr = np.array(duels)
            if cfg.fit_beta:  # the judge's consistency, from the priors in place (LivePrior.refit does the same)
                beta = fit_beta(prior_mu, prior_sigma, [((int(x), int(y)), _ranks(r)) for x, y, r in duels])
            if cfg.prior:
                calibrate = len(duels) >= 2 * calibrated_at  # recalibrate when the votes have doubled
                bp = bt_prior(world.X, arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2],
                              start=last_prior, calibrate=calibrate, rng=seed, beta=beta)
                if calibrate:
                    calibrated_at = len(duels)
                last_prior = bp
                confidence = bp.r  # what the panel header shows ("taste prior r"), 0 while off
                prior_mu, prior_sigma = bp.ratings()
                pool.prior = None if bp.off_reason else bp.z  # a prior switched off gives pairing no scores
            mu[:] = prior_mu
            sigma[:] = prior_sigma
            for x, y, r in duels:  # replay from the new priors (Collection.apply_prior does the same)
                mu[x], sigma[x], mu[y], sigma[y] = rate_duel(mu[x], sigma[x], mu[y], sigma[y], r, beta)
            if ep is not None:  # derived state, built and judged by the app's own functions (PosteriorView)
                ep = build_posterior(prior_mu, prior_sigma, arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64),
                                     arr[:, 2])
                decisive = sum(1 for d in duels if d[2] != 0.5)
                mode = decide_mode(ep.beta, skill_scale(prior_mu, prior_sigma), decisive,
                                   "on" if strategy == "ep-screen" else "auto")
                use_ep = mode.consistent
            queue = []  # queued pairs were chosen under the old prior
        if votes in budgets:
            on_ep = ep is not None and use_ep
            board_mu, board_sigma = (ep.mu, ep.sigma) if on_ep and ep is not None else (mu, sigma)
            if on_ep:  # the app's consistent-judge leaderboard and stability estimate
                top = np.argsort(-board_score(board_mu, board_sigma), kind="stable")[: cfg.k]
                stab = posterior_stability(board_mu, board_sigma, cfg.k, samples=cfg.stability_samples, rng=seed,
                                           ratio=mode.ratio)
            else:
                top = leaderboard_top(mu, sigma, cfg.k)
                stab = topk_stability(mu, sigma, cfg.k, samples=cfg.stability_samples, rng=seed,
                                      judge_noise=widening_noise(last_prior))
            top_set = set(top.tolist())
            prec = float(world.top[top].mean())
            top_mu = np.argpartition(-board_mu, cfg.k - 1)[: cfg.k]
            ordinal = board_mu - 3.0 * board_sigma
            out.append(Checkpoint(
                budget=votes,
                precision=prec,
                precision_mu=float(world.top[top_mu].mean()),
                kendall=float(stats.kendalltau(ordinal, world.u).statistic),
                spearman=float(stats.spearmanr(ordinal, world.u).statistic),
                churn=float("nan") if prev_top is None else 1.0 - len(top_set & prev_top) / cfg.k,
                pick_ms=1000.0 * pick_time / max(picks, 1),
                stability=stab,
                prior_confidence=confidence,
                prior_corr=float(np.corrcoef(pool.prior, world.u)[0, 1]) if pool.prior is not None else 0.0,
            ))
            prev_top = top_set
    return out


def run_gatekeeper(judge_kind: str, rho: float, seed: int, cfg: SimConfig,
                   ava: tuple[np.ndarray, np.ndarray] | None) -> list[Checkpoint]:
    """The issue's reference: "a gatekeeper that knows the true #k", as an idealised Bayesian screen.

    It cheats three times: every duel pits a candidate against the true #k image (the same pair may repeat),
    the boundary value t (midway between the true #k and #k+1, standardised) is known, and the prior is the
    best linear predictor of the standardised utility from the features fitted on the *true* utilities, with
    its exact correlation r: ``z_i ~ N(r f_i, 1 - r^2)``. Each outcome is a probit observation
    ``P(i beats #k) = Phi((z_i - t) / s)`` with ``s`` the judge's noise on a difference (``sqrt(2) * ratio``;
    ``1e-6`` for the noiseless judge, whose duels are exact in/out tests), folded into the Gaussian posterior
    by moment matching (assumed-density filtering, exact for one probit factor; Minka 2001, "Expectation
    propagation for approximate Bayesian inference", UAI). Draws and skips spend the vote and leave the
    posterior unchanged. Each vote screens the image maximising ``pdf((m - t) / sqrt(v)) * v / sqrt(v + s^2)``
    (open membership weighted by how far one duel moves it; better than plain uncertainty sampling or a cap per
    image in the same model). The top-k is the k images with the highest ``P(z > t)``, the #k among them.
    ``stability`` is the mean of ``P(z > t)`` over that top-k. The crowd judge is not supported.
    """
    if judge_kind == "crowd":
        raise ValueError("gatekeeper: the crowd judge has no per-comparison noise to model; use noiseless or thurstone")
    rng = np.random.default_rng([seed, 7])
    world = make_world(cfg.n, rho, cfg.k, rng, ava)
    judge = Judge(judge_kind, world, cfg.ratio, np.random.default_rng([seed, 11]))
    u = world.u
    z = (u - u.mean()) / u.std()
    order = np.argsort(-u)
    keeper = int(order[cfg.k - 1])
    t = 0.5 * (z[order[cfg.k - 1]] + z[order[cfg.k]])
    A = np.column_stack([world.X, np.ones(cfg.n)])
    f = A @ np.linalg.lstsq(A, z, rcond=None)[0]
    r = float(np.corrcoef(f, z)[0, 1]) if cfg.prior and f.std() > 0 else 0.0
    m = r * (f - f.mean()) / f.std() if r > 0 else np.zeros(cfg.n)
    v = np.full(cfg.n, 1.0 - r * r)
    s = max(math.sqrt(2.0) * cfg.ratio, 1e-6) if judge_kind == "thurstone" else 1e-6
    count = np.zeros(cfg.n, dtype=np.int64)
    out: list[Checkpoint] = []
    prev_top: set[int] | None = None
    pick_time = 0.0
    budgets = sorted(cfg.budgets)
    for vote in range(1, budgets[-1] + 1):
        t0 = time.perf_counter()
        sv = np.sqrt(v)
        score = stats.norm.pdf((m - t) / sv) * v / np.sqrt(v + s * s)
        score[keeper] = -1.0
        i = int(np.argmax(score))
        pick_time += time.perf_counter() - t0
        res = judge(i, keeper)
        count[i] += 1
        if res in (0.0, 1.0):
            sign = 1.0 if res == 1.0 else -1.0
            c = math.sqrt(s * s + v[i])
            x = sign * (m[i] - t) / c
            lam = math.exp(stats.norm.logpdf(x) - stats.norm.logcdf(x))
            m[i] += sign * v[i] / c * lam
            v[i] = max(v[i] * (1.0 - v[i] / (c * c) * lam * (lam + x)), 1e-12)
        if vote in budgets:
            p_in = stats.norm.cdf((m - t) / np.sqrt(v))
            p_in[keeper] = 2.0
            top = np.argpartition(-p_in, cfg.k - 1)[: cfg.k]
            top_set = set(top.tolist())
            p_in[keeper] = 1.0
            out.append(Checkpoint(
                budget=vote,
                precision=float(world.top[top].mean()),
                precision_mu=float(world.top[np.argpartition(-m, cfg.k - 1)[: cfg.k]].mean()),
                kendall=float(stats.kendalltau(m, u).statistic),
                spearman=float(stats.spearmanr(m, u).statistic),
                churn=float("nan") if prev_top is None else 1.0 - len(top_set & prev_top) / cfg.k,
                pick_ms=1000.0 * pick_time / vote,
                stability=float(p_in[top].mean()),
                prior_confidence=r,
                prior_corr=r,
            ))
            prev_top = top_set
    return out


# ------------------------------------------------------------------------------------------ grid
def run_grid(strategies: list[str], judges: list[str], rhos: list[float], seeds: list[int], cfg: SimConfig,
             progress: bool = True) -> dict[tuple[str, float, str], list[list[Checkpoint]]]:
    """Every (judge, rho, strategy) over the seeds; returns the checkpoints of each run."""
    ava = load_ava()
    results: dict[tuple[str, float, str], list[list[Checkpoint]]] = {}
    for judge in judges:
        if judge == "crowd" and ava is None:
            print("crowd judge skipped: ava_labels_test.json is absent", file=sys.stderr)
            continue
        for rho in rhos:
            for strategy in strategies:
                t0 = time.perf_counter()
                if strategy == "gatekeeper" and judge == "crowd":
                    continue
                one = run_gatekeeper if strategy == "gatekeeper" else partial(run_one, strategy)
                runs = [one(judge, rho, s, cfg, ava) for s in seeds]
                results[(judge, rho, strategy)] = runs
                if progress:
                    print(f"  {judge} rho={rho} {strategy}: {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return results


def summarise(results: dict[tuple[str, float, str], list[list[Checkpoint]]], cfg: SimConfig) -> list[dict]:
    """Mean over seeds per (judge, rho, strategy, budget).

    Calibration error: ``|mean(stability) - mean(precision)|`` over the seeds, and the worst single seed.
    """
    rows = []
    for (judge, rho, strategy), runs in results.items():
        for c in range(len(runs[0])):
            cps = [r[c] for r in runs if len(r) > c]
            rows.append({
                "judge": judge, "rho": rho, "strategy": strategy, "B": cps[0].budget,
                "cover": 2 * cps[0].budget / cfg.n,
                "p@k": float(np.mean([x.precision for x in cps])),
                "p@k_sd": float(np.std([x.precision for x in cps])),
                "p@k_mu": float(np.mean([x.precision_mu for x in cps])),
                "tau": float(np.mean([x.kendall for x in cps])),
                "spearman": float(np.mean([x.spearman for x in cps])),
                "churn": float(np.mean([x.churn for x in cps])),
                "pick_ms": float(np.mean([x.pick_ms for x in cps])),
                "stability": float(np.mean([x.stability for x in cps])),
                "cal_err": abs(float(np.mean([x.stability - x.precision for x in cps]))),
                "cal_err_max": float(np.max([abs(x.stability - x.precision) for x in cps])),
                "conf": float(np.mean([x.prior_confidence for x in cps])),
                "prior_corr": float(np.mean([x.prior_corr for x in cps])),
            })
    return rows


def markdown(rows: list[dict], k: int) -> str:
    head = (f"| judge | ρ | strategy | B | 2B/N | precision@{k} | Kendall τ | Spearman | churn@{k} | pick ms "
            f"| stability est. | calib. err (mean / worst seed) |")
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        churn = "–" if math.isnan(r["churn"]) else f"{r['churn']:.2f}"
        lines.append(
            f"| {r['judge']} | {r['rho']:g} | {r['strategy']} | {r['B']:,} | {r['cover']:.1f} "
            f"| {r['p@k']:.2f} ± {r['p@k_sd']:.2f} | {r['tau']:.2f} | {r['spearman']:.2f} | {churn} "
            f"| {r['pick_ms']:.2f} | {r['stability']:.2f} | {r['cal_err']:.2f} / {r['cal_err_max']:.2f} |"
        )
    return "\n".join(lines)


def compact(rows: list[dict], k: int, n: int) -> str:
    """One line per (judge, rho, strategy): precision@k at every budget, the rest at the last budget."""
    groups: dict[tuple[str, float, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["judge"], r["rho"], r["strategy"]), []).append(r)
    budgets = [r["B"] for r in next(iter(groups.values()))]
    last = f"{budgets[-1]:,}"
    head = ("| judge | ρ | strategy | " + " | ".join(f"p@{k}, B={b:,} (2B/N={2 * b / n:.1f})" for b in budgets)
            + f" | Kendall τ @{last} | Spearman @{last} | churn @{last} | pick ms | max calib. err (mean of seeds) |")
    lines = [head, "|" + "---|" * (len(budgets) + 8)]
    for (judge, rho, strategy), rs in groups.items():
        cells = " | ".join(f"{r['p@k']:.2f}" for r in rs)
        end = rs[-1]
        lines.append(f"| {judge} | {rho:g} | {strategy} | {cells} | {end['tau']:.2f} | {end['spearman']:.2f} "
                     f"| {end['churn']:.2f} | {end['pick_ms']:.2f} | {max(r['cal_err'] for r in rs):.2f} |")
    return "\n".join(lines)


def honesty(rows: list[dict]) -> str:
    """One line per (judge, rho, strategy, budget): the prior's reported r (``BTPrior.r``, the header's "taste prior
    r") against its realised correlation with the utility, and the stability estimate against the true
    precision@k (means over the seeds; worst seed in brackets)."""
    lines = ["| judge | ρ | strategy | B | reported r | realised r | r error | stability est. | true p@k "
             "| stability error (worst seed) |", "|" + "---|" * 10]
    for r in rows:
        lines.append(f"| {r['judge']} | {r['rho']:g} | {r['strategy']} | {r['B']:,} | {r['conf']:.2f} "
                     f"| {r['prior_corr']:.2f} | {r['conf'] - r['prior_corr']:+.2f} | {r['stability']:.2f} "
                     f"| {r['p@k']:.2f} | {r['stability'] - r['p@k']:+.2f} ({r['cal_err_max']:.2f}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=5000, help="images (default 5000)")
    ap.add_argument("--k", type=int, default=100, help="top-k (default 100)")
    ap.add_argument("--seeds", type=int, default=5, help="seeds averaged (default 5)")
    ap.add_argument("--budgets", default="500,1000,2000,3000", help="checkpoints, comma-separated")
    ap.add_argument("--strategies", default="random,spec,active,gatekeeper",
                    help="comma-separated; 'gatekeeper' (the issue's reference, knows the true #k) and 'oracle' "
                         "(pairs among the true top-300) cheat; 'ep-screen' (screen_pairs on an EP batch posterior, "
                         "which is also its leaderboard) and 'ep-adaptive' (it for consistent judges, else active) are "
                         "experiments")
    ap.add_argument("--judges", default=None, help="comma-separated subset of noiseless,thurstone,crowd")
    ap.add_argument("--rhos", default=None, help="comma-separated feature correlations")
    ap.add_argument("--ratio", type=float, default=None,
                    help="Thurstone per-image noise / SD of the utilities (default: fitted to pcm_48stimuli.csv)")
    ap.add_argument("--exploration", type=float, default=0.1)
    ap.add_argument("--batch", type=int, default=1, help="pairs per pick (the panel queues a few)")
    ap.add_argument("--no-prior", action="store_true", help="never fit the ranker prior")
    ap.add_argument("--fixed-beta", action="store_true", help="keep OpenSkill's default beta (no consistency fit)")
    ap.add_argument("--full", action="store_true", help="every judge x every rho")
    ap.add_argument("--compact", action="store_true", help="only the one-line-per-setting summary table")
    ap.add_argument("--honesty", action="store_true",
                    help="also the prior's reported vs realised r and the stability error at every budget")
    args = ap.parse_args(argv)

    ratio = thurstone_ratio() if args.ratio is None else args.ratio
    if not ratio >= 0:
        ap.error(f"--ratio: expected a noise ratio >= 0, got {args.ratio}")
    cfg = SimConfig(n=args.n, k=args.k, budgets=tuple(int(b) for b in args.budgets.split(",")),
                    exploration=args.exploration, batch=args.batch, prior=not args.no_prior, ratio=ratio,
                    fit_beta=not args.fixed_beta)
    strategies = args.strategies.split(",")
    if args.seeds < 1:
        ap.error(f"--seeds: expected at least 1, got {args.seeds}")
    seeds = list(range(args.seeds))
    t0 = time.perf_counter()
    if args.judges or args.rhos or args.full:
        judges = args.judges.split(",") if args.judges else list(JUDGES)
        rhos = [float(r) for r in args.rhos.split(",")] if args.rhos else [0.0, 0.5, 0.75, 0.9]
        results = run_grid(strategies, judges, rhos, seeds, cfg)
    else:  # default grid: thurstone over every rho, crowd at rho = 0.75 (noiseless: --judges noiseless or --full)
        results = run_grid(strategies, ["thurstone"], [0.0, 0.5, 0.75, 0.9], seeds, cfg)
        results.update(run_grid(strategies, ["crowd"], [0.75], seeds, cfg))
    wall = time.perf_counter() - t0
    rows = summarise(results, cfg)
    source = "fitted to pcm_48stimuli.csv" if args.ratio is None else "--ratio"
    print(f"N={cfg.n}, k={cfg.k}, seeds={seeds}, Thurstone noise ratio = {ratio:.3f} ({source}), "
          f"draw band {DRAW_BAND}, skips {SKIP_RATE:.0%}, prior refit every {cfg.refit_every} votes, "
          f"exploration {cfg.exploration}, wall {wall:.0f}s")
    print()
    print(compact(rows, cfg.k, cfg.n))
    if args.honesty:
        print()
        print(honesty(rows))
    if not args.compact:
        print()
        print(markdown(rows, cfg.k))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
