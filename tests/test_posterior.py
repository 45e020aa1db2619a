"""The batch posterior over the vote log (imagerank.ratings.posterior, EP on a Thurstone model) and the boundary
screen that chooses pairs on it (imagerank.pairing.screen)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from imagerank.errors import InvalidArgumentError
from imagerank.pairing import PairContext, Pool
from imagerank.pairing.screen import screen_pairs
from imagerank.ratings.posterior import EPPosterior, draw_margin, fit_beta_ep
from imagerank.ratings.priors import rate_duel


def _fresh(n: int, beta: float = 25 / 6, draw_rate: float = 0.0) -> EPPosterior:
    return EPPosterior(np.full(n, 25.0), np.full(n, 25 / 3), beta, draw_rate)


def test_one_win_is_the_trueskill_update():
    # TrueSkill 1-vs-1 from (25, 25/3) with beta 25/6 and no dynamics: winner 29.205 / 7.194, loser 20.795 / 7.194
    ep = _fresh(2)
    ep.add(0, 1, 1.0)
    assert ep.mu == pytest.approx([29.2052, 20.7948], abs=1e-3)
    assert ep.sigma == pytest.approx([7.1945, 7.1945], abs=1e-3)


def test_a_consistent_judge_settles_faster_than_openskill():
    # a small beta (consistent judge): one decisive vote shrinks sigma by ~17 % (OpenSkill's filter: ~4.5 %)
    ep = _fresh(2, beta=0.4)
    ep.add(0, 1, 1.0)
    _, os_sigma, _, _ = rate_duel(25.0, 25 / 3, 25.0, 25 / 3, 1.0, 0.4)
    assert float(ep.sigma[0]) < 0.85 * 25 / 3 < 0.9 * os_sigma


def test_sweeps_make_the_result_independent_of_vote_order():
    rng = np.random.default_rng(0)
    votes = [(int(a), int(b), float(rng.integers(2))) for a, b in rng.integers(0, 6, size=(40, 2)) if a != b]
    fwd, back = _fresh(6), _fresh(6)
    for a, b, r in votes:
        fwd.add(a, b, r)
    for a, b, r in reversed(votes):
        back.add(a, b, r)
    before = float(np.abs(fwd.mu - back.mu).max())
    fwd.sweep(30)
    back.sweep(30)
    assert float(np.abs(fwd.mu - back.mu).max()) < min(0.05, before)
    assert len(fwd) == len(votes)


def test_draws_pull_together_only_with_a_margin():
    ep = EPPosterior(np.array([30.0, 20.0]), np.full(2, 25 / 3), 25 / 6, draw_rate=0.2)
    ep.add(0, 1, 0.5)
    assert 20.0 < float(ep.mu[1]) < float(ep.mu[0]) < 30.0
    none = EPPosterior(np.array([30.0, 20.0]), np.full(2, 25 / 3), 25 / 6)
    none.add(0, 1, 0.5)  # no draws observed: margin 0, the draw carries no information
    assert none.mu == pytest.approx([30.0, 20.0])
    assert draw_margin(0.0, 1.0) == 0.0
    assert draw_margin(0.5, 1.0) == pytest.approx(math.sqrt(2) * 0.6744897, rel=1e-5)


def test_extreme_margins_stay_finite():
    ep = EPPosterior(np.array([0.0, 200.0]), np.full(2, 1.0), 0.01)
    ep.add(0, 1, 1.0)  # a vote the prior calls impossible
    ep.sweep(3)
    assert np.all(np.isfinite(ep.mu))
    assert np.all(ep.sigma > 0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: EPPosterior(np.zeros(3), np.ones(2), 1.0), "two \\(N,\\) arrays"),
        (lambda: EPPosterior(np.zeros(2), np.array([1.0, 0.0]), 1.0), "every SD > 0"),
        (lambda: EPPosterior(np.zeros(2), np.ones(2), 0.0), "positive performance SD"),
        (lambda: EPPosterior(np.zeros(2), np.ones(2), 1.0, draw_rate=1.5), "share in \\[0, 1\\]"),
        (lambda: _fresh(2).add(0, 1, 0.7), "outcome"),
        (lambda: _fresh(2).add(0, 0, 1.0), "two different indices"),
        (lambda: _fresh(2).add(0, 5, 1.0), "two different indices"),
    ],
)
def test_bad_inputs_raise(call, match):
    with pytest.raises(InvalidArgumentError, match=match):
        call()


# ---------------------------------------------------------------------------------------------- screen_pairs
def _ctx(n: int, seed: int = 0, exploration: float = 0.0) -> PairContext:
    pool = Pool.from_arrays(np.arange(100, 100 + n), np.full(n, 25.0), np.full(n, 25 / 3), np.zeros(n, np.int64))
    return PairContext(pool, np.random.default_rng(seed), set(), topk=10, exploration=exploration)


def test_screen_pairs_duel_the_boundary():
    n = 200
    ctx = _ctx(n)
    mu = np.linspace(60.0, 0.0, n)  # index 9 / 10 straddle the top-10 boundary
    sigma = np.full(n, 0.5)
    sigma[40] = 30.0  # far below on its mean, but wide: its mass at the boundary is the largest
    pairs = screen_pairs(ctx, 4, mu, sigma, beta=0.5)
    assert len(pairs) == 4
    assert pairs[0][0] == 40
    flat = [i for p in pairs for i in p]
    assert len(set(flat)) == len(flat)  # no image twice in a batch
    assert all(abs(mu[j] - 0.5 * (mu[9] + mu[10])) < 10.0 for _, j in pairs)  # opponents sit at the boundary
    # a pair already judged is not proposed again
    x, y = 100 + pairs[0][0], 100 + pairs[0][1]
    ctx.seen.add((min(x, y), max(x, y)))
    again = screen_pairs(ctx, 1, mu, sigma, beta=0.5)
    assert again
    assert again[0] != pairs[0]


def test_screen_pairs_coverage_and_edges():
    ctx = _ctx(50, exploration=1.0)
    ctx.pool.count[:] = 3
    ctx.pool.count[7] = 0  # the least compared image
    pairs = screen_pairs(ctx, 1, np.linspace(30, 20, 50), np.full(50, 1.0), beta=1.0)
    assert pairs[0][0] == 7
    assert screen_pairs(_ctx(1), 3, np.zeros(1), np.ones(1), 1.0) == []
    assert screen_pairs(_ctx(5), 0, np.zeros(5), np.ones(5), 1.0) == []


@pytest.mark.parametrize(
    ("mu", "sigma", "match"),
    [(np.zeros(4), np.ones(5), "two \\(5,\\) arrays"), (np.zeros(5), np.array([1, 1, 0, 1, 1.0]), "posterior SD > 0")],
)
def test_screen_pairs_bad_inputs(mu, sigma, match):
    with pytest.raises(InvalidArgumentError, match=match):
        screen_pairs(_ctx(5), 1, mu, sigma, 1.0)


# ---------------------------------------------------------------------------------------------- fit_beta_ep
def _votes(noise: float, n: int = 60, m: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    skill = rng.normal(25.0, 25 / 3, n)
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    perf = skill[a] - skill[b] + noise * (rng.standard_normal(m) - rng.standard_normal(m))
    return a, b, (perf > 0).astype(np.float64)


def test_fit_beta_ep_recovers_the_judges_noise():
    prior_mu, prior_sigma = np.full(60, 25.0), np.full(60, 25 / 3)
    fitted = [fit_beta_ep(prior_mu, prior_sigma, *_votes(noise)) for noise in (0.0, 2.0, 8.0)]
    assert fitted[0] < 1.0 < fitted[1] < fitted[2]
    assert 1.0 < fitted[1] < 4.0  # true per-image SD 2
    assert 4.0 < fitted[2] < 16.0  # true 8


def test_fit_beta_ep_few_votes_and_bad_input():
    a, b, y = _votes(1.0, m=10)
    assert fit_beta_ep(np.full(60, 25.0), np.full(60, 25 / 3), a, b, y) == pytest.approx(25 / 6)
    with pytest.raises(InvalidArgumentError, match="one length"):
        fit_beta_ep(np.zeros(3), np.ones(3), [0, 1], [1], [1.0, 0.0])


def test_add_returns_the_predictive_log_probability():
    ep = _fresh(2)
    assert ep.add(0, 1, 1.0) == pytest.approx(math.log(0.5))
    assert ep.add(0, 1, 1.0) > math.log(0.5)  # the same result again is now more likely
