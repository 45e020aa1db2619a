"""OpenSkill Plackett-Luce: pinned defaults, golden values for win / draw / 3-way, vectorised predictions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from openskill.models import PlackettLuce

from imagerank import ratings as R

# Golden values computed with openskill 6.2.0 PlackettLuce() defaults; a change means the model changed.
GOLDEN = [
    # (ratings, ranks, expected [(mu, sigma), ...])
    ([(25.0, 25 / 3), (25.0, 25 / 3)], [0, 1],
     [(27.635389493140497, 8.06590141354368), (22.364610506859503, 8.06590141354368)]),
    ([(25.0, 25 / 3), (25.0, 25 / 3)], [0, 0],
     [(25.0, 8.06590141354368), (25.0, 8.06590141354368)]),
    ([(25.0, 25 / 3)] * 3, [0, 1, 2],
     [(27.869048680749426, 8.205243377397993), (25.717262170187357, 8.058224222802378),
      (21.413689149063217, 8.058224222802378)]),
    ([(30.0, 4.0), (22.0, 6.0), (25.0, 3.0)], [1, 0, 1],
     [(29.108272532102127, 3.9487510246270574), (24.624452199851287, 5.905905200603521),
      (24.845273283036125, 2.9860822131003943)]),
    ([(28.0, 5.0), (21.0, 7.5)], [1, 0],
     [(26.474452132491482, 4.94396481437127), (24.431953144872676, 7.209336602434645)]),
]


def test_model_defaults_are_pinned() -> None:
    assert R.MODEL.mu == 25.0
    assert R.MODEL.sigma == pytest.approx(25 / 3, rel=1e-15)
    assert R.MODEL.beta == pytest.approx(25 / 6, rel=1e-15)
    assert R.MODEL.tau == pytest.approx(25 / 300, rel=1e-15)
    assert (25.0, R.MODEL.sigma, R.MODEL.beta) == (R.DEFAULT_MU, R.DEFAULT_SIGMA, R.BETA)
    from importlib.metadata import version

    assert version("openskill") == "6.2.0"


@pytest.mark.parametrize(("ratings", "ranks", "expected"), GOLDEN)
def test_golden_values(ratings: list[tuple[float, float]], ranks: list[int],
                       expected: list[tuple[float, float]]) -> None:
    got = R.rate_ranking(ratings, ranks)
    for (mu, sigma), (emu, esigma) in zip(got, expected):
        assert mu == pytest.approx(emu, abs=1e-12)
        assert sigma == pytest.approx(esigma, abs=1e-12)
    # and exactly what the library itself returns
    m = PlackettLuce()
    lib = m.rate([[m.rating(mu=a, sigma=b)] for a, b in ratings], ranks=[float(r) for r in ranks])
    assert got == [(t[0].mu, t[0].sigma) for t in lib]


def test_win_draw_properties() -> None:
    (w_mu, w_s), (l_mu, l_s) = R.rate_ranking([(25.0, 25 / 3), (25.0, 25 / 3)], [0, 1])
    assert w_mu > 25 > l_mu
    assert w_mu - 25 == pytest.approx(25 - l_mu)
    assert w_s < 25 / 3
    assert l_s < 25 / 3
    # a draw between unequal players pulls them together
    (a_mu, _), (b_mu, _) = R.rate_ranking([(30.0, 5.0), (20.0, 5.0)], [0, 0])
    assert a_mu < 30
    assert b_mu > 20
    # the ranks are relative: [5, 9] is the same as [0, 1]
    assert R.rate_ranking([(25.0, 8.0), (24.0, 7.0)], [5, 9]) == R.rate_ranking([(25.0, 8.0), (24.0, 7.0)], [0, 1])


def test_rate_ranking_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        R.rate_ranking([(25.0, 8.0)], [0])
    with pytest.raises(ValueError, match="ranks: expected 3"):
        R.rate_ranking([(25.0, 8.0)] * 3, [0, 1])


def test_ordinal() -> None:
    assert R.ordinal(25.0, 25 / 3) == pytest.approx(0.0)
    np.testing.assert_allclose(R.ordinal(np.array([30.0, 20.0]), np.array([1.0, 2.0])), [27.0, 14.0])
    m = PlackettLuce()
    assert R.ordinal(27.0, 3.0) == pytest.approx(m.rating(mu=27.0, sigma=3.0).ordinal())


def test_predict_win_pairs_equals_the_library() -> None:
    rng = np.random.default_rng(0)
    mu_a, mu_b = rng.uniform(10, 40, 50), rng.uniform(10, 40, 50)
    s_a, s_b = rng.uniform(0.5, 25 / 3, 50), rng.uniform(0.5, 25 / 3, 50)
    got = R.predict_win_pairs(mu_a, s_a, mu_b, s_b)
    m = PlackettLuce()
    for k in range(50):
        lib = m.predict_win([[m.rating(mu=mu_a[k], sigma=s_a[k])], [m.rating(mu=mu_b[k], sigma=s_b[k])]])
        assert got[k] == pytest.approx(lib[0], abs=1e-12)
        assert 1 - got[k] == pytest.approx(lib[1], abs=1e-12)
    assert got.dtype == np.float64
    assert got.shape == (50,)


def test_predict_win_matrix() -> None:
    mu = np.array([20.0, 25.0, 30.0, 25.0])
    sigma = np.array([2.0, 8.0, 3.0, 8.0])
    P = R.predict_win_matrix(mu, sigma)
    assert P.shape == (4, 4)
    np.testing.assert_allclose(np.diag(P), 0.5)
    np.testing.assert_allclose(P + P.T, 1.0)
    assert P[2, 0] > 0.5 > P[0, 2]
    assert P[1, 3] == pytest.approx(0.5)


def test_expected_sigma_after() -> None:
    assert R.expected_sigma_after(3.0) == pytest.approx(math.hypot(3.0, 25 / 300))
