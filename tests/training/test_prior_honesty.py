"""Issue 17: the live prior stays honest when the votes carry no preference (a voter alternating left and right,
a coin flipper), so never-compared images do not outrank voted ones on their prior alone, and the leaderboard
marks the images ranked by the prior alone."""

from __future__ import annotations

import math

import numpy as np
import pytest

from imagerank import ratings as R
from imagerank.errors import InvalidArgumentError
from imagerank.ratings.priors import bt_prior, feature_weight, score_test, shrink_prior
from imagerank.training.features import feature_matrix
from imagerank.training.simulate import FeatureJudge, simulated_votes

N_IMAGES = 120
N_VOTES = 115  # as in the issue


def _voted(small_col, voter: str, seed: int = 1):
    """A 120-image collection (strategy active, cheap features cached) after 115 votes by ``voter``."""
    col = small_col(N_IMAGES)
    col.settings = col.settings.replace(prior_refit_every=0, strategy="active")
    feature_matrix(col, "cheap")
    col.start_session(seed=seed)
    rng = np.random.default_rng(seed)
    for k in range(N_VOTES):
        a, b = col.next_pairs(1)[0]
        if voter == "alternating":  # left, right, left ... whatever the images
            outcome = "left" if k % 2 == 0 else "right"
        else:  # a coin flip
            outcome = "left" if rng.random() < 0.5 else "right"
        col.vote(a, b, outcome)
    return col


@pytest.mark.parametrize("voter", ["alternating", "coin"])
def test_votes_without_a_preference_leave_about_the_default_prior(small_col, voter) -> None:
    col = _voted(small_col, voter)
    report = col.refit_prior(compute=False)
    # the issue: confidence 0.93 (alternating) / 0.45 (coin), every sigma 8.33 -> 0.34
    assert report.confidence < 0.3, report
    df = col.images_df()
    assert df["prior_sigma"].notna().all()
    assert df["prior_sigma"].min() > 0.7 * R.DEFAULT_SIGMA, df["prior_sigma"].min()
    # never-compared images do not outrank the voted ones (the issue: #2, #3, #7 of the top 10)
    board = col.images.leaderboard(prior_only=True)
    assert (board["comparison_count"] == 0).any()  # there are never-compared images to outrank
    top = board.head(10)
    assert (top["comparison_count"] > 0).all(), top
    assert not top["prior_only"].any()
    assert "confidence 0.0" in col.prior_status or "confidence 0.1" in col.prior_status or \
        "confidence 0.2" in col.prior_status
    assert report.weight < 0.5, report
    assert col.doctor().ok


def test_a_consistent_judge_keeps_its_prior(small_col) -> None:
    col = small_col(N_IMAGES)
    col.settings = col.settings.replace(prior_refit_every=0)
    simulated_votes(col, N_VOTES, FeatureJudge(noise=0.3), strategy="active", seed=3)
    report = col.refit_prior()
    assert report.weight > 0.9, report
    assert report.confidence > 0.5, report
    assert col.images_df()["prior_sigma"].max() < R.DEFAULT_SIGMA


def test_score_test_is_at_most_standard_normal_for_coin_flips() -> None:
    """Across 200 coin-flip voters the fitted prior gets weight > 0.5 in at most 5 % of the cases (the
    Schwarz threshold sqrt(log 57) = 2.0 SD of a statistic that is at most standard normal: about 2 %)."""
    weights, stats = [], []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((N_IMAGES, 16))
        a = rng.integers(N_IMAGES, size=N_VOTES)
        b = (a + 1 + rng.integers(N_IMAGES - 1, size=N_VOTES)) % N_IMAGES
        y = (rng.random(N_VOTES) < 0.5).astype(float)
        p = bt_prior(X, a, b, y)
        weights.append(p.weight)
        stats.append(p.confidence)
    assert np.mean(np.array(weights) > 0.5) <= 0.05
    assert np.median(stats) < 0.05


def test_score_test_feature_weight_and_shrinkage() -> None:
    z = np.array([2.0, 1.0, 0.0, -1.0])
    a = np.array([0, 1, 0, 2])
    b = np.array([3, 2, 1, 3])
    t, n = score_test([(z, a, b, np.array([1.0, 1.0, 1.0, 0.5]))])  # the draw is left out
    assert n == 3
    assert t == pytest.approx((3 + 1 + 1) / math.sqrt(9 + 1 + 1))
    assert score_test([(z, a, b, np.full(4, 0.5))]) == (0.0, 0)
    # even odds, Schwarz penalty: t^2 / 2 = log(m) / 2 is a weight of one half; backwards scores count as 0
    assert feature_weight(math.sqrt(math.log(100)), 100) == pytest.approx(0.5)
    assert feature_weight(-5.0, 100) == feature_weight(0.0, 100) == pytest.approx(1 / 11)
    assert feature_weight(10.0, 100) > 0.999
    # weight 0: the default prior; weight 1: the fitted one
    conf, scale = shrink_prior(3.0, 0.34, 0.0)
    assert (conf, scale) == (0.0, pytest.approx(R.DEFAULT_SIGMA))
    conf, scale = shrink_prior(3.0, 4.0, 1.0)
    assert (conf, scale) == (pytest.approx(0.6), pytest.approx(5.0))
    conf, scale = shrink_prior(3.0, 0.34, 0.5)
    assert scale * math.sqrt(1 - conf**2) > R.DEFAULT_SIGMA / math.sqrt(2) - 1e-9
    with pytest.raises(InvalidArgumentError, match="weight"):
        shrink_prior(1.0, 1.0, 1.5)


def test_leaderboard_marks_images_ranked_by_the_prior_alone(small_col) -> None:
    col = small_col(30)
    col.settings = col.settings.replace(prior_refit_every=0)
    simulated_votes(col, 25, FeatureJudge(noise=0.3), strategy="random", seed=0)
    plain = col.leaderboard()
    assert "prior_only" not in plain.columns  # the facade's columns are unchanged
    assert not col.images.leaderboard(prior_only=True)["prior_only"].any()  # no learned prior yet
    col.refit_prior()
    board = col.images.leaderboard(prior_only=True)
    assert list(board.columns) == [*plain.columns, "prior_only"]
    assert board["prior_only"].dtype == bool
    assert (board["prior_only"] == (board["comparison_count"] == 0)).all()
    assert board["prior_only"].any()
    assert board["image_id"].tolist() == col.leaderboard()["image_id"].tolist()


def test_cli_leaderboard_marks_prior_only_ranks(small_col, capsys) -> None:
    from imagerank.cli import main

    col = small_col(30)
    col.settings = col.settings.replace(prior_refit_every=0)
    simulated_votes(col, 25, FeatureJudge(noise=0.3), strategy="random", seed=0)
    col.refit_prior()
    board = col.images.leaderboard(prior_only=True)
    ws = str(col.root)
    col.close()
    assert main(["leaderboard", ws, "-n", "30"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = lines[1:31]
    marked = [r.split()[1] for r in rows if r.split()[0].endswith("*")]
    assert marked == [str(i) for i in board.loc[board["prior_only"], "image_id"]]
    assert lines[-1].startswith("* ranked by the learned prior alone")
    assert main(["leaderboard", ws, "--min-comparisons", "1"]) == 0
    out = capsys.readouterr().out
    assert "*" not in out
