"""Best-of-N rounds against pairs: precision@100 per minute of the user's time.

The world, judges, live prior and fitted beta are those of ``benchmarks/ranking_sim.py``; only the rounds differ.
A round shows N images chosen by :func:`imagerank.pairing.select_group` (``active``: its boundary duels, two per
round of four); the judge picks the best (noiseless: the highest utility; Thurstone: the highest perceived
utility ``u + eps``, with 2 % of rounds skipped; crowd: the highest of one AVA vote per image, ties broken at
random). The round is one N-way Plackett-Luce match (best rank 0, the rest tied at 1), as
``Collection.vote_best`` stores it; the live prior sees its N - 1 "best beat x" pairs.

Time per round follows the Hick-Hyman law, ``T(N) = a + b log2(N + 1)`` (Hick 1952, "On the rate of gain of
information", QJEP 4; Hyman 1953, "Stimulus information as a determinant of reaction time", JEP 45: choice time
grows with the log of the number of equally likely alternatives, +1 for "none yet"). The constants are
assumptions, not measurements: ``a`` = 1.0 s (look at the screen, press a key) and ``b`` = 1.0 s/bit (Hyman's
lamps took 0.13-0.2 s/bit; judging photographs is slower, and b is scaled so that a pair takes about 2.6 s,
T(2) = 2.58 s, T(3) = 3.00 s, T(4) = 3.32 s). Change them with ``--hick-a`` / ``--hick-b``. Every mode gets the same
user time: the pair budgets B (votes) become ``B * T(2) / T(N)`` rounds.

Strategies (``--strategies``): ``active`` on the OpenSkill ratings throughout (leaderboard: ordinal), and the
app's consistent-judge mode (:mod:`imagerank.pairing.posterior_view`) as ``benchmarks/ranking_sim.py
--strategies ep-adaptive`` runs it for pairs: the EP posterior of the log (each round as its pairwise factors,
:func:`~imagerank.ratings.posterior.match_factors`; rebuilt with beta refitted at every refit, two EP passes every
``EP_SWEEP_EVERY`` rounds, one ADF step per round between), the mode re-decided at every refit
(:func:`~imagerank.ratings.posterior.decide_mode`), and in that mode the leaderboard ``board_score`` and the
stability ``posterior_stability``. ``ep-adaptive`` grows the groups from the boundary screen on that posterior
(:func:`~imagerank.pairing.screen.screen_pairs`, what ``Collection.next_group`` and the panel's ``RoundQueue`` do);
``ep-board`` keeps ``active``'s groups on the OpenSkill ratings under the EP leaderboard (the app before its rounds
followed the posterior), an ablation.

Run:
    python benchmarks/best_of_n_sim.py --judges noiseless,thurstone --rhos 0.75 --seeds 5
    python benchmarks/best_of_n_sim.py --judges noiseless --strategies ep-board,ep-adaptive --seeds 3
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ranking_sim as S

from imagerank import ratings as R
from imagerank.pairing import PairContext, Pool, Strategy, pair_keys, select_group, select_pairs
from imagerank.pairing.screen import screen_pairs
from imagerank.ratings.consistency import fit_beta
from imagerank.ratings.posterior import (
    EP_SWEEP_EVERY,
    EPPosterior,
    board_score,
    build_posterior,
    decide_mode,
    match_factors,
    posterior_stability,
    skill_scale,
)
from imagerank.ratings.priors import bt_prior, rate_duel
from imagerank.ratings.stability import topk_stability

HICK_A = 1.0  # s
HICK_B = 1.0  # s per bit
STRATEGIES = ("active", "ep-board", "ep-adaptive")


def round_seconds(n: int, a: float = HICK_A, b: float = HICK_B) -> float:
    """Hick-Hyman decision time of one round of ``n`` images, seconds: ``a + b * log2(n + 1)``."""
    return a + b * math.log2(n + 1)


def judge_best(judge: S.Judge, group: list[int]) -> int | None:
    """Index into ``group`` of the image the judge picks as best, or None (a skipped round)."""
    u = judge.world.u[group]
    rng = judge.rng
    if judge.kind == "noiseless":
        return int(np.argmax(u))
    if judge.kind == "thurstone":
        if rng.random() < S.SKIP_RATE:
            return None
        return int(np.argmax(u + judge.noise * rng.standard_normal(len(group))))
    cdf = judge.world.hist_cdf
    if cdf is None:
        raise ValueError("judge 'crowd' needs the AVA vote histograms (ava_labels_test.json)")
    votes = np.array([int(np.searchsorted(cdf[i], rng.random() * cdf[i, -1], side="right")) for i in group])
    top = np.flatnonzero(votes == votes.max())
    return int(top[rng.integers(top.shape[0])])


def _apply(mu: np.ndarray, sigma: np.ndarray, idx: list[int], ranks: list[int], beta: float) -> None:
    if len(idx) == 2:
        x, y = idx
        out = 1.0 if ranks[0] < ranks[1] else 0.0 if ranks[0] > ranks[1] else 0.5
        mu[x], sigma[x], mu[y], sigma[y] = rate_duel(mu[x], sigma[x], mu[y], sigma[y], out, beta)
        return
    new = R.rate_ranking([(mu[i], sigma[i]) for i in idx], ranks, beta)
    for i, (m, s) in zip(idx, new):
        mu[i], sigma[i] = m, s


def _factors(matches: list[tuple[list[int], list[int]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The posterior's pairwise factors of ``matches`` as (a, b, outcome) arrays of image indices."""
    rows = [(g[i], g[j], r) for g, rk in matches for i, j, r in match_factors(rk)]
    arr = np.array(rows, dtype=np.float64).reshape(-1, 3)
    return arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2]


def run_groups(size: int, judge_kind: str, rho: float, seed: int, cfg: S.SimConfig,
               ava: tuple[np.ndarray, np.ndarray] | None, a: float = HICK_A, b: float = HICK_B,
               strategy: str = "active") -> list[tuple[float, float, float]]:
    """One session of best-of-``size`` rounds with ``strategy`` (one of :data:`STRATEGIES`, see the module
    docstring); ``(minutes, precision@k, stability)`` at each of ``cfg.budgets`` converted to equal user time."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy: expected one of {STRATEGIES}, got {strategy!r}")
    rng = np.random.default_rng([seed, 7])
    world = S.make_world(cfg.n, rho, cfg.k, rng, ava)
    judge = S.Judge(judge_kind, world, cfg.ratio, np.random.default_rng([seed, 11]))
    n = cfg.n
    pool = Pool.from_arrays(np.arange(n), np.full(n, R.DEFAULT_MU), np.full(n, R.DEFAULT_SIGMA),
                            np.zeros(n, dtype=np.int64))
    mu, sigma, count = pool.mu, pool.sigma, pool.count
    prior_mu, prior_sigma = np.full(n, R.DEFAULT_MU), np.full(n, R.DEFAULT_SIGMA)
    ctx = PairContext(pool, np.random.default_rng([seed, 13]), set(), topk=cfg.k, exploration=cfg.exploration)
    t_round = round_seconds(size, a, b)
    rounds_at = {max(1, round(B * round_seconds(2, a, b) / t_round)): B for B in cfg.budgets}
    last_round = max(rounds_at)
    matches: list[tuple[list[int], list[int]]] = []
    beta, last_prior, calibrated_at, next_refit = R.BETA, None, 0, cfg.refit_every
    with_ep = strategy != "active"
    ep = EPPosterior(prior_mu, prior_sigma, R.BETA) if with_ep else None
    mode = decide_mode(R.BETA, R.DEFAULT_SIGMA, 0, "auto")

    def screen(ctx: PairContext, k: int) -> list[tuple[int, int]]:
        if ep is None or not mode.consistent:
            return select_pairs(ctx, "active", k)  # pool indices are the ids here
        return screen_pairs(ctx, k, ep.mu, ep.sigma, ep.beta)

    pick: str | Strategy = screen if strategy == "ep-adaptive" else "active"
    out = []
    for r in range(1, last_round + 1):
        group = select_group(ctx, pick, size)
        if len(group) < 2:
            break
        ctx.seen.update(pair_keys(group))
        best = judge_best(judge, group)
        if best is not None:
            ranks = [0 if k == best else 1 for k in range(len(group))]
            _apply(mu, sigma, group, ranks, beta)
            count[group] += 1
            matches.append((group, ranks))
            if ep is not None:
                for i, j, res in match_factors(ranks):
                    ep.add(group[i], group[j], res)
                if len(matches) % EP_SWEEP_EVERY == 0:
                    ep.sweep(2)
        if matches and r * (size - 1) >= next_refit:  # refit after as many implied pairs as the pair runs
            next_refit += cfg.refit_every
            beta = fit_beta(prior_mu, prior_sigma, matches)
            win = [g[rk.index(0)] for g, rk in matches for j in range(len(g)) if rk[j] != 0]
            lose = [g[j] for g, rk in matches for j in range(len(g)) if rk[j] != 0]
            calibrate = len(win) >= 2 * calibrated_at
            bp = bt_prior(world.X, np.array(win), np.array(lose), np.ones(len(win)), start=last_prior,
                          calibrate=calibrate, rng=seed, beta=beta)
            calibrated_at = len(win) if calibrate else calibrated_at
            last_prior = bp
            prior_mu, prior_sigma = bp.ratings()
            pool.prior = None if bp.off_reason else bp.z
            mu[:], sigma[:] = prior_mu, prior_sigma
            for g, rk in matches:
                _apply(mu, sigma, g, rk, beta)
            if ep is not None:  # derived state, built and judged by the app's functions (PosteriorView)
                fa, fb, fy = _factors(matches)
                ep = build_posterior(prior_mu, prior_sigma, fa, fb, fy)
                mode = decide_mode(ep.beta, skill_scale(prior_mu, prior_sigma), int(np.sum(fy != 0.5)), "auto")
        if r in rounds_at:
            if ep is not None and mode.consistent:  # the app's consistent-judge leaderboard and stability
                top = np.argsort(-board_score(ep.mu, ep.sigma), kind="stable")[: cfg.k]
                stab = posterior_stability(ep.mu, ep.sigma, cfg.k, samples=cfg.stability_samples, rng=seed,
                                           ratio=mode.ratio)
            else:
                top = S.leaderboard_top(mu, sigma, cfg.k)
                stab = topk_stability(mu, sigma, cfg.k, samples=cfg.stability_samples, rng=seed)
            out.append((r * t_round / 60.0, float(world.top[top].mean()), stab))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--judges", default="noiseless,thurstone")
    ap.add_argument("--rhos", default="0.75")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--sizes", default="2,3,4", help="images per round to compare (2 = pairs)")
    ap.add_argument("--strategies", default="active",
                    help=f"comma-separated subset of {','.join(STRATEGIES)} (see the module docstring)")
    ap.add_argument("--budgets", default="1000,3000", help="pair votes whose user time every mode gets")
    ap.add_argument("--hick-a", type=float, default=HICK_A)
    ap.add_argument("--hick-b", type=float, default=HICK_B)
    args = ap.parse_args(argv)
    if args.seeds < 1:
        ap.error(f"--seeds: expected at least 1, got {args.seeds}")
    sizes = [int(x) for x in args.sizes.split(",")]
    strategies = args.strategies.split(",")
    if any(x not in STRATEGIES for x in strategies):
        ap.error(f"--strategies: expected a subset of {','.join(STRATEGIES)}, got {args.strategies}")
    if any(s not in (2, 3, 4) for s in sizes):
        ap.error(f"--sizes: expected 2, 3 or 4, got {args.sizes}")
    cfg = S.SimConfig(budgets=tuple(int(x) for x in args.budgets.split(",")), ratio=S.thurstone_ratio())
    ava = S.load_ava()
    t0 = time.perf_counter()
    print(f"N={cfg.n}, k={cfg.k}, seeds={args.seeds}, Hick-Hyman T(N) = {args.hick_a} s + {args.hick_b} s/bit * "
          f"log2(N + 1): " + ", ".join(f"T({s}) = {round_seconds(s, args.hick_a, args.hick_b):.2f} s" for s in sizes))
    print()
    t2 = round_seconds(2, args.hick_a, args.hick_b)
    head = " | ".join(f"p@{cfg.k} at {B * t2 / 60:.0f} min" for B in cfg.budgets)
    print(f"| judge | ρ | strategy | round | {head} | p@{cfg.k} per minute (last) | max calib. err |")
    print("|" + "---|" * (len(cfg.budgets) + 6))
    for judge in args.judges.split(","):
        for rho in (float(x) for x in args.rhos.split(",")):
            for strategy, size in ((st, sz) for st in strategies for sz in sizes):
                runs = [run_groups(size, judge, rho, s, cfg, ava, args.hick_a, args.hick_b, strategy)
                        for s in range(args.seeds)]
                cells = []
                err = 0.0
                for c in range(len(runs[0])):
                    p = float(np.mean([r[c][1] for r in runs]))
                    st = float(np.mean([r[c][2] for r in runs]))
                    err = max(err, abs(p - st))
                    cells.append(f"{p:.2f}")
                minutes = runs[0][-1][0]
                name = "pairs" if size == 2 else f"best-of-{size}"
                per_min = float(np.mean([r[-1][1] for r in runs])) / minutes
                print(f"| {judge} | {rho:g} | {strategy} | {name} | {' | '.join(cells)} | {per_min:.4f} | {err:.2f} |")
    print(f"\nwall {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
