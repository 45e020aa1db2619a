"""The active pairing strategy, the fast OpenSkill duel update and the ranker prior (pairing.active, ratings.priors)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagerank import ratings as R
from imagerank.config import Settings
from imagerank.errors import NoVotesError
from imagerank.pairing import PairContext, Pool, get_strategy, list_strategies, pair_key, select_pairs
from imagerank.pairing.active import active_pairs
from imagerank.ratings.priors import (
    MAX_CONFIDENCE,
    bt_prior,
    prequential_loglik,
    prior_to_rating,
    rate_duel,
)


def fresh_pool(n: int, prior: np.ndarray | None = None) -> Pool:
    return Pool.from_arrays(np.arange(1, n + 1), np.full(n, R.DEFAULT_MU), np.full(n, R.DEFAULT_SIGMA),
                            np.zeros(n, np.int64), prior)


# ------------------------------------------------------------------------------------------ registry
def test_active_is_registered_and_the_default():
    assert "active" in list_strategies()
    assert get_strategy("active") is active_pairs
    assert Settings().strategy == "active"
    assert {"random", "spec"} <= set(list_strategies())  # the baselines stay selectable


# ------------------------------------------------------------------------------------------ picks
def test_picks_are_valid_distinct_and_never_repeat():
    rng = np.random.default_rng(0)
    n = 60
    pool = Pool.from_arrays(np.arange(100, 100 + n), rng.normal(25, 5, n), rng.uniform(1, 8, n),
                            rng.integers(0, 5, n))
    ctx = PairContext(pool, np.random.default_rng(1), set(), topk=10, exploration=0.2)
    valid = set(pool.ids.tolist())
    for _ in range(40):
        raw = active_pairs(ctx, 4)
        flat = [x for p in raw for x in p]
        assert len(flat) == len(set(flat))  # each image at most once per batch, never against itself
        pairs = select_pairs(ctx, "active", 4)
        assert len(pairs) == 4
        for a, b in pairs:
            assert a != b
            assert a in valid
            assert b in valid
            key = pair_key(a, b)
            assert key not in ctx.seen
            ctx.seen.add(key)
    assert len(ctx.seen) == 160


def test_fresh_pool_all_unseen_gives_spread_out_pairs():
    pool = fresh_pool(1000)
    ctx = PairContext(pool, np.random.default_rng(3), set(), topk=100, exploration=0.1)
    pairs = select_pairs(ctx, "active", 50)
    assert len(pairs) == 50
    ids = [x for p in pairs for x in p]
    assert len(set(ids)) == 100  # ties broken at random: no image reused
    assert max(ids) - min(ids) > 500  # not just the first ids


def boundary_pool() -> tuple[Pool, set[int]]:
    """k = 10: ids 0-7 surely in, 8-13 compete for the last two places, 14-99 surely out."""
    n = 100
    mu = np.full(n, 10.0)
    sigma = np.full(n, 0.5)
    mu[:8], sigma[:8] = 45.0, 0.5
    mu[8:14], sigma[8:14] = np.linspace(29, 31, 6), 3.0
    return Pool.from_arrays(np.arange(n), mu, sigma, np.full(n, 10)), set(range(8, 14))


def test_prefers_the_boundary():
    pool, boundary = boundary_pool()
    ctx = PairContext(pool, np.random.default_rng(0), set(), topk=10, exploration=0.0)
    for _ in range(6):
        (a, b), = select_pairs(ctx, "active", 1)
        assert a in boundary
        assert b in boundary
        ctx.seen.add(pair_key(a, b))
    batch = active_pairs(PairContext(pool, np.random.default_rng(1), set(), topk=10, exploration=0.0), 3)
    assert all(i in boundary and j in boundary for i, j in batch)
    # the spec baseline, for contrast, spends most picks away from the boundary
    ctx = PairContext(pool, np.random.default_rng(0), set(), topk=10)
    spec = select_pairs(ctx, "spec", 50)
    assert sum(a in boundary and b in boundary for a, b in spec) < 25


def coverage_pool() -> Pool:
    """200 well-known images and 50 never-compared ones far below the top (no reason to pick them but coverage)."""
    n = 250
    rng = np.random.default_rng(4)
    mu = np.concatenate([rng.normal(30, 4, 200), np.full(50, 5.0)])
    sigma = np.concatenate([rng.uniform(1, 3, 200), np.full(50, 0.5)])
    count = np.concatenate([np.full(200, 8), np.zeros(50, np.int64)])
    return Pool.from_arrays(np.arange(n), mu, sigma, count)


@pytest.mark.parametrize("share", [0.0, 0.3, 1.0])
def test_exploration_share_is_honoured(share):
    pool = coverage_pool()
    ctx = PairContext(pool, np.random.default_rng(5), set(), topk=20, exploration=share)
    picks = [select_pairs(ctx, "active", 1)[0] for _ in range(300)]
    covered = np.mean([a >= 200 or b >= 200 for a, b in picks])
    if share == 0.0:
        assert covered == 0.0
    elif share == 1.0:
        assert covered == 1.0
    else:
        assert abs(covered - share) < 0.08  # binomial sd 0.026


def test_unseen_image_with_a_high_prior_is_a_candidate():
    n = 500
    z = np.random.default_rng(6).standard_normal(n)
    best = int(np.argmax(z))
    pool = fresh_pool(n, prior=z)
    ctx = PairContext(pool, np.random.default_rng(0), set(), topk=20, exploration=0.0)
    first = active_pairs(ctx, 20)
    picked = {x for p in first for x in p}
    assert best in picked
    # picks come from the high-prior end, not uniformly
    assert np.mean([z[x] for x in picked]) > 1.0
    # without a prior the same pool is a uniform tie: picks spread over the whole range
    ctx = PairContext(fresh_pool(n), np.random.default_rng(0), set(), topk=20, exploration=0.0)
    picked = {x for p in active_pairs(ctx, 20) for x in p}
    assert abs(np.mean([z[x] for x in picked])) < 0.6


def test_prior_with_missing_scores_and_tiny_pools():
    z = np.array([np.nan, 1.0, -1.0, np.nan, 0.5])
    ctx = PairContext(fresh_pool(5, prior=z), np.random.default_rng(0), set(), topk=100, exploration=0.5)
    pairs = select_pairs(ctx, "active", 10)
    assert len(pairs) == 10  # every pair of 5 images, then no more
    assert len({pair_key(a, b) for a, b in pairs}) == 10
    ctx.seen.update(pair_key(a, b) for a, b in pairs)
    assert select_pairs(ctx, "active", 1) == []
    assert active_pairs(PairContext(fresh_pool(1), np.random.default_rng(0)), 3) == []


# ------------------------------------------------------------------------------------------ ratings
finite_mu = st.floats(min_value=-20, max_value=70, allow_nan=False)
finite_sigma = st.floats(min_value=0.05, max_value=12, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(finite_mu, finite_sigma, finite_mu, finite_sigma, st.sampled_from([1.0, 0.0, 0.5]))
def test_rate_duel_equals_openskill(mu_a, sigma_a, mu_b, sigma_b, outcome):
    ranks = {1.0: [0, 1], 0.0: [1, 0], 0.5: [0, 0]}[outcome]
    (ma, sa), (mb, sb) = R.rate_ranking([(mu_a, sigma_a), (mu_b, sigma_b)], ranks)
    got = rate_duel(mu_a, sigma_a, mu_b, sigma_b, outcome)
    assert got == pytest.approx((ma, sa, mb, sb), abs=1e-9, rel=1e-12)


def test_rate_duel_rejects_bad_outcomes():
    with pytest.raises(ValueError, match="outcome"):
        rate_duel(25, 8, 25, 8, 2.0)


def test_prequential_loglik_matches_a_plain_replay():
    rng = np.random.default_rng(0)
    n, m = 40, 300
    z = rng.standard_normal(n)
    a = rng.integers(n, size=m)
    b = (a + 1 + rng.integers(n - 1, size=m)) % n
    y = rng.choice([0.0, 0.5, 1.0], size=m)
    mu = (25 + 3.0 * z).tolist()
    sg = [5.0] * n
    ll = 0.0
    for x, w, o in zip(a.tolist(), b.tolist(), y.tolist()):
        q = 1 / (1 + math.exp(-(mu[x] - mu[w]) / math.sqrt(sg[x] ** 2 + sg[w] ** 2 + 2 * R.BETA**2)))
        ll += math.log(q) if o == 1 else math.log(1 - q) if o == 0 else 0.5 * math.log(q * (1 - q))
        mu[x], sg[x], mu[w], sg[w] = rate_duel(mu[x], sg[x], mu[w], sg[w], o)
    assert prequential_loglik(z, a, b, y, 3.0, 5.0) == pytest.approx(ll, rel=1e-10)


# ------------------------------------------------------------------------------------------ prior
def test_prior_to_rating_is_gaussian_conditioning():
    z = np.array([-2.0, 0.0, 1.5, np.nan])
    mu, sigma = prior_to_rating(z, 0.0)
    assert np.allclose(mu, R.DEFAULT_MU)
    assert np.allclose(sigma, R.DEFAULT_SIGMA)
    mu, sigma = prior_to_rating(z, 0.6)
    assert mu[:3] == pytest.approx(R.DEFAULT_MU + 0.6 * R.DEFAULT_SIGMA * z[:3])
    assert sigma[:3] == pytest.approx(np.full(3, R.DEFAULT_SIGMA * 0.8))
    assert (mu[3], sigma[3]) == (R.DEFAULT_MU, R.DEFAULT_SIGMA)  # no score, default prior
    mu, sigma = prior_to_rating(z, 5.0, scale=4.0)  # clipped
    assert sigma[0] == pytest.approx(4.0 * math.sqrt(1 - MAX_CONFIDENCE**2))
    with pytest.raises(ValueError, match="scale"):
        prior_to_rating(z, 0.5, scale=0.0)


def synthetic_votes(rho: float, m: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                               np.ndarray]:
    rng = np.random.default_rng(seed)
    n = 600
    u = rng.standard_normal(n)
    X = rng.standard_normal((n, 8))
    X[:, 0] = rho * u + math.sqrt(1 - rho**2) * rng.standard_normal(n)
    a = rng.integers(n, size=m)
    b = (a + 1 + rng.integers(n - 1, size=m)) % n
    y = (u[a] + 0.6 * rng.standard_normal(m) > u[b] + 0.6 * rng.standard_normal(m)).astype(float)
    return X, a, b, y, u


def test_bt_prior_finds_real_signal_and_not_noise():
    X, a, b, y, u = synthetic_votes(0.8, 1500, 0)
    p = bt_prior(X, a, b, y)
    assert np.corrcoef(p.z, u)[0, 1] > 0.7
    assert p.confidence > 0.5
    assert p.z.mean() == pytest.approx(0.0, abs=1e-9)
    assert p.z.std() == pytest.approx(1.0)
    mu, sigma = p.ratings()
    assert np.corrcoef(mu, u)[0, 1] > 0.7
    assert np.all(sigma < R.DEFAULT_SIGMA)
    # a refit that keeps the calibration only refits the scores
    q = bt_prior(X, a[:1000], b[:1000], y[:1000], start=p, calibrate=False)
    assert (q.confidence, q.scale) == (p.confidence, p.scale)

    X, a, b, y, u = synthetic_votes(0.0, 1500, 1)
    assert bt_prior(X, a, b, y).confidence < 0.3  # over-fitted noise is not trusted


def test_bt_prior_few_or_no_votes():
    X, a, b, y, _ = synthetic_votes(0.8, 10, 2)
    p = bt_prior(X, a, b, y)
    assert p.confidence == 0.0
    assert p.scale == R.DEFAULT_SIGMA
    with pytest.raises(NoVotesError):
        bt_prior(X, a[:0], b[:0], y[:0])


# ------------------------------------------------------------------------------------------ collection
def test_collection_next_pairs_uses_active_on_a_fresh_catalog(tmp_path):
    from imagerank.collection import init

    col = init(tmp_path / "ws")
    with col.db.atomic() as conn:
        conn.executemany("INSERT INTO images (filepath, filename, mu, sigma) VALUES (?,?,?,?)",
                         [(f"/x/{i}.jpg", f"{i}.jpg", R.DEFAULT_MU, R.DEFAULT_SIGMA) for i in range(300)])
    assert col.session.strategy == "active"
    pairs = col.next_pairs(4)
    ids = set(col.pool().ids.tolist())
    assert len(pairs) == 4
    assert all(a in ids and b in ids and a != b for a, b in pairs)
    scores = {i: float(s) for i, s in zip(sorted(ids), np.linspace(-2, 2, len(ids)))}
    col.pairs.set_prior_scores(scores)
    assert col.pool().prior is not None
    pairs = col.next_pairs(4, avoid=pairs)
    assert len(pairs) == 4
    for strategy in ("random", "spec"):
        assert len(col.next_pairs(2, strategy=strategy)) == 2
    col.close()
