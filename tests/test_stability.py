"""topk_stability: the posterior estimate of how much of today's top-k is really top-k."""

from __future__ import annotations

import numpy as np
import pytest

from imagerank.ratings.stability import SIGMA_INFLATION, default_k, topk_stability


def naive(mu, sigma, k, samples, rng):
    """Straight from the definition: sort every draw, no pruning, no chunking."""
    current = set(np.argsort(-(mu - 3 * sigma), kind="stable")[:k].tolist())
    total = 0
    for _ in range(samples):
        x = rng.normal(mu, SIGMA_INFLATION * sigma)  # the calibrated width (imagerank.ratings.stability docstring)
        total += len(current & set(np.argsort(-x)[:k].tolist()))
    return total / (samples * k)


def test_settled_and_trivial_cases():
    mu = np.arange(100, dtype=float)
    assert topk_stability(mu, np.full(100, 1e-6), 10, rng=0) == 1.0
    assert topk_stability(mu, np.full(100, 5.0), 100, rng=0) == 1.0  # k >= N: everything is top
    assert topk_stability(mu[:3], np.ones(3), 5) == 1.0


def test_all_equal_is_a_random_pick():
    n, k = 2000, 50
    value = topk_stability(np.full(n, 25.0), np.full(n, 25 / 3), k, samples=400, rng=1)
    assert value == pytest.approx(k / n, abs=0.01)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_the_definition(seed):
    rng = np.random.default_rng(seed)
    n, k = 300, 20
    mu = rng.normal(25, 4, n)
    sigma = rng.uniform(0.5, 4, n)
    fast = topk_stability(mu, sigma, k, samples=2000, rng=seed)
    slow = naive(mu, sigma, k, 2000, np.random.default_rng(seed + 100))
    assert fast == pytest.approx(slow, abs=0.02)
    assert 0.0 < fast < 1.0


def test_pruning_keeps_the_answer():
    # Most images are far below the top: they are left out of the sampling, the answer does not move.
    rng = np.random.default_rng(5)
    mu = np.concatenate([rng.normal(40, 2, 60), rng.normal(0, 1, 20_000)])
    sigma = np.concatenate([rng.uniform(0.5, 2, 60), np.full(20_000, 1.0)])
    fast = topk_stability(mu, sigma, 30, samples=1000, rng=3)
    slow = naive(mu[:60], sigma[:60], 30, 1000, np.random.default_rng(9))
    assert fast == pytest.approx(slow, abs=0.02)


def test_more_certainty_means_more_stability():
    rng = np.random.default_rng(0)
    mu = rng.normal(25, 5, 500)
    values = [topk_stability(mu, np.full(500, s), 25, samples=300, rng=0) for s in (8.0, 3.0, 1.0, 0.1)]
    assert values == sorted(values)
    assert values[-1] > 0.9


def test_seeded_and_generator_rng_reproducible():
    mu = np.linspace(0, 10, 200)
    sigma = np.full(200, 2.0)
    assert topk_stability(mu, sigma, 10, rng=42) == topk_stability(mu, sigma, 10, rng=42)
    a = topk_stability(mu, sigma, 10, rng=np.random.default_rng(7))
    assert a == topk_stability(mu, sigma, 10, rng=np.random.default_rng(7))


@pytest.mark.parametrize(
    ("mu", "sigma", "k", "samples", "match"),
    [
        (np.zeros(3), np.ones(4), 1, 10, "shapes"),
        (np.zeros((2, 2)), np.ones((2, 2)), 1, 10, "1-D"),
        (np.array([0.0, np.nan]), np.ones(2), 1, 10, "NaN"),
        (np.zeros(3), np.array([1.0, -1.0, 1.0]), 1, 10, ">= 0"),
        (np.zeros(3), np.ones(3), 0, 10, "k"),
        (np.zeros(3), np.ones(3), 1, 0, "samples"),
    ],
)
def test_bad_input_is_named(mu, sigma, k, samples, match):
    with pytest.raises(ValueError, match=match):
        topk_stability(mu, sigma, k, samples=samples)


def test_default_k():
    assert default_k(0) == 0
    assert default_k(3) == 1
    assert default_k(60, 100) == 15
    assert default_k(100_000, 100) == 100


def test_the_widening_follows_the_judges_noise():
    from imagerank.ratings.stability import SIGMA_INFLATION, sigma_inflation

    assert sigma_inflation(None) == SIGMA_INFLATION
    vals = [sigma_inflation(x) for x in (0.0, 0.2, 0.55, 1.47, 3.0)]
    assert vals == sorted(vals, reverse=True)  # a consistent judge's posteriors are widened most
    assert vals[0] == pytest.approx(1.3)
    assert vals[3] == pytest.approx(1.02, abs=0.01)  # the AVA crowd
    with pytest.raises(ValueError, match="judge_noise"):
        sigma_inflation(-0.1)
    with pytest.raises(ValueError, match="judge_noise"):
        sigma_inflation(float("nan"))
    # wider draws: a less settled top-k for the consistent judge than for the crowd on the same posterior
    mu = np.linspace(0, 30, 400)
    sigma = np.full(400, 2.0)
    calm = topk_stability(mu, sigma, 20, samples=300, rng=0, judge_noise=0.0)
    crowd = topk_stability(mu, sigma, 20, samples=300, rng=0, judge_noise=1.47)
    assert calm < crowd


def test_without_a_prior_in_use_the_widening_is_the_generic_one():
    """The judge-dependent widening holds while a taste prior is in use; a prior that is off (even one that carries
    the judge noise it was tested with) or none at all gives SIGMA_INFLATION (ranking_sim at rho = 0: a noiseless
    judge's off prior widened by 1.28 and the estimate under-reported by 0.14)."""
    from types import SimpleNamespace

    from imagerank.ratings.priors import BTPrior
    from imagerank.ratings.stability import SIGMA_INFLATION, sigma_inflation, widening_noise

    z = np.zeros(3)
    off = BTPrior(z=z, confidence=0.0, scale=25 / 3, w=z, off_reason="taste prior off: it does not predict your votes",
                  judge_noise=0.02)
    on = BTPrior(z=z, confidence=0.5, scale=8.0, w=z, judge_noise=0.3)
    assert widening_noise(None) is None
    assert widening_noise(off) is None
    assert widening_noise(on) == pytest.approx(0.3)
    assert widening_noise(BTPrior(z=z, confidence=0.5, scale=8.0, w=z)) is None  # on, but no noise fitted
    # a live prior's report reads the same way (off_reason, judge_noise)
    assert widening_noise(SimpleNamespace(off_reason=None, judge_noise=1.47)) == pytest.approx(1.47)
    assert sigma_inflation(widening_noise(off)) == SIGMA_INFLATION
    mu = np.linspace(0, 30, 400)
    sigma = np.full(400, 2.0)
    assert topk_stability(mu, sigma, 20, rng=0, judge_noise=widening_noise(off)) == topk_stability(mu, sigma, 20,
                                                                                                   rng=0)
    assert topk_stability(mu, sigma, 20, rng=0, judge_noise=widening_noise(off)) > topk_stability(
        mu, sigma, 20, rng=0, judge_noise=off.judge_noise)
