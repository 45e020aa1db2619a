"""The taste prior's reported r is honest: near its realised correlation with the judge's utility, about 0 for
features without signal, and a prior that does not help is switched off with a reason (issue 14)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from imagerank.errors import InvalidArgumentError
from imagerank.ratings.honesty import ep_prequential_loglik, estimate_r, image_folds
from imagerank.ratings.posterior import EPPosterior
from imagerank.ratings.priors import OFF_WEIGHT, bt_prior, fit_linear_bt, out_of_fold_scores


def _world(n: int, rho: float, seed: int, dim: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(n,) utilities and (n, dim) features whose best linear predictor has correlation rho with them."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(n)
    f = rho * u + math.sqrt(1.0 - rho * rho) * rng.standard_normal(n)
    X = rng.standard_normal((n, dim))
    X[:, 0] = f
    return u, X


def _votes(u: np.ndarray, m: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """m random pairs judged by a Thurstone judge with per-image noise ``noise`` (x SD of u; 0 = noiseless)."""
    rng = np.random.default_rng(seed + 1)
    n = u.shape[0]
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    d = u[a] - u[b] + noise * (rng.standard_normal(m) - rng.standard_normal(m))
    return a, b, (d > 0).astype(np.float64)


@pytest.mark.parametrize(("noise", "rho"), [(0.0, 0.6), (0.0, 0.85), (1.0, 0.6)],
                         ids=["consistent-0.6", "consistent-0.85", "noisy-0.6"])
def test_reported_r_is_near_the_realised_correlation(noise: float, rho: float) -> None:
    errs = []
    for seed in range(2):
        u, X = _world(800, rho, seed)
        a, b, y = _votes(u, 1200, noise, seed)
        bp = bt_prior(X, a, b, y, rng=seed)
        assert bp.off_reason is None
        realised = float(np.corrcoef(bp.z, u)[0, 1])
        errs.append(bp.r - realised)
        assert 0.0 < bp.r <= 0.99
        assert bp.judge_noise is not None
    # the filter's working confidence over-claimed for the consistent judge (0.7-0.9 at rho 0.6); r must not
    assert abs(float(np.mean(errs))) < 0.06, errs
    assert max(abs(e) for e in errs) < 0.1, errs


def test_the_fitted_judge_noise_tells_a_consistent_judge_from_a_noisy_one() -> None:
    u, X = _world(800, 0.6, 3)
    calm = bt_prior(X, *_votes(u, 1200, 0.0, 3), rng=0)
    noisy = bt_prior(X, *_votes(u, 1200, 1.0, 3), rng=0)
    assert calm.judge_noise is not None
    assert noisy.judge_noise is not None
    assert calm.judge_noise < 0.2 < 0.5 < noisy.judge_noise < 2.0


def test_pure_noise_features_give_r_zero_and_the_prior_is_switched_off_with_a_reason() -> None:
    for seed in range(3):
        u, X = _world(800, 0.0, seed)
        a, b, y = _votes(u, 1500, 0.0, seed)  # a consistent judge: the votes carry a preference, the features not
        bp = bt_prior(X, a, b, y, rng=seed)
        assert bp.r == 0.0
        assert bp.off_reason is not None
        assert bp.off_reason.startswith("taste prior off: ")
        assert bp.confidence == 0.0  # exactly the default prior
        mu, sigma = bp.ratings()
        assert np.allclose(mu, 25.0)
        assert np.allclose(sigma, 25.0 / 3.0)


def test_votes_without_preference_switch_the_prior_off() -> None:
    _u, X = _world(500, 0.9, 0)
    rng = np.random.default_rng(5)
    a = rng.integers(0, 500, 600)
    b = (a + rng.integers(1, 500, 600)) % 500
    y = (rng.random(600) < 0.5).astype(np.float64)  # a coin-flipping voter
    bp = bt_prior(X, a, b, y, rng=0)
    assert bp.weight < OFF_WEIGHT
    assert bp.r == 0.0
    assert bp.off_reason is not None
    assert "do not predict your votes" in bp.off_reason


def test_few_votes_give_no_prior_and_say_so() -> None:
    u, X = _world(100, 0.9, 0)
    a, b, y = _votes(u, 12, 0.0, 0)
    bp = bt_prior(X, a, b, y)
    assert bp.r == 0.0
    assert bp.off_reason is not None
    assert "12 votes so far" in bp.off_reason


def test_out_of_fold_scores_never_see_the_images_own_votes() -> None:
    """A ranker that memorises heavily voted images must not predict their held-out votes: with pure-noise
    features and 40 images in every vote, vote-level cross-fitting leaks (r ~ 0.3), image-level does not."""
    for seed in range(2):
        rng = np.random.default_rng(seed)
        n = 400
        X = rng.standard_normal((n, 16))
        u = rng.standard_normal(n)
        stars = np.argsort(-u)[:40]
        a = rng.choice(stars, 2000)
        b = rng.integers(0, n, 2000)
        b = np.where(b == a, (b + 1) % n, b)
        y = (u[a] > u[b]).astype(np.float64)
        z = out_of_fold_scores(X, a, b, y, rng=0)
        assert z.shape == (n,)
        assert estimate_r(z, a, b, y)[0] < 0.1
        half = rng.permutation(2000) % 2 == 0  # the old vote-level split, for contrast
        zv = fit_linear_bt(X, a[~half], b[~half], y[~half]).score(X)
        assert estimate_r((zv - zv.mean()) / zv.std(), a[half], b[half], y[half])[0] > 0.2


def test_ep_prequential_loglik_equals_the_ep_posteriors_own_predictions() -> None:
    rng = np.random.default_rng(1)
    n = 50
    mean = rng.standard_normal(n)
    a = rng.integers(0, n, 200)
    b = (a + rng.integers(1, n, 200)) % n
    y = rng.choice([0.0, 0.5, 1.0], 200, p=[0.45, 0.1, 0.45])
    ep = EPPosterior(mean, np.full(n, 0.8), 0.4, 0.1)
    want = sum(ep.add(int(x), int(w), float(o)) for x, w, o in zip(a, b, y, strict=True))
    assert ep_prequential_loglik(mean, 0.8, a, b, y, 0.4, 0.1) == pytest.approx(want, rel=1e-12)


def test_bad_input_is_refused() -> None:
    with pytest.raises(InvalidArgumentError):
        image_folds(10, 1)
    with pytest.raises(InvalidArgumentError):
        estimate_r(np.zeros(5), np.array([0, 1]), np.array([1]), np.array([1.0]))
