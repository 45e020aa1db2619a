"""imagerank.plots: figures built without pyplot, correct on the numbers they show, sensible without votes."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from matplotlib.figure import Figure

from imagerank import plots

ALL = [plots.mu_sigma_scatter, plots.comparisons_histogram, plots.topk_overlap_over_time,
       plots.left_right_win_rate, plots.decision_time_histogram]


@pytest.fixture
def voted(make_collection):
    col = make_collection(40)
    rng = np.random.default_rng(1)
    n = 0
    while n < 120:
        for a, b in col.next_pairs(40):
            col.vote(a, b, "left" if a > b else "right", decision_ms=float(rng.lognormal(7, 0.4)))
            n += 1
    return col


@pytest.mark.parametrize("fn", ALL)
def test_figures_without_votes_say_so(make_collection, fn):
    col = make_collection(6)
    fig = fn(col)
    assert isinstance(fig, Figure)
    fig.canvas.draw()  # renders without error


@pytest.mark.parametrize("fn", ALL)
def test_figures_with_votes_render_and_leave_no_pyplot_state(voted, fn, tmp_path):
    had_pyplot = "matplotlib.pyplot" in sys.modules
    fig = fn(voted)
    assert isinstance(fig, Figure)
    fig.savefig(tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 5000
    if not had_pyplot:
        assert "matplotlib.pyplot" not in sys.modules
    else:
        import matplotlib.pyplot as plt

        assert plt.get_fignums() == []


def test_scatter_marks_the_top_k(voted):
    fig = plots.mu_sigma_scatter(voted, k=7)
    ax = fig.axes[0]
    ringed = ax.collections[1].get_offsets()
    top = voted.leaderboard(7)
    assert sorted(map(tuple, np.asarray(ringed).round(6))) == sorted(zip(top["mu"].round(6), top["sigma"].round(6)))


def test_histogram_counts_every_active_image(voted):
    fig = plots.comparisons_histogram(voted)
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert sum(heights) == 40


def test_overlap_series_replays_the_log(voted):
    df = plots.topk_overlap_series(voted, k=10, checkpoints=6)
    assert df["matches"].iloc[0] == 0
    assert df["matches"].iloc[-1] == 120
    assert df["overlap_final"].iloc[-1] == 1.0  # the replayed end state is the stored one
    assert df["overlap_final"].between(0, 1).all()
    assert df["stability"].between(0, 1).all()
    assert np.isnan(df["overlap_previous"].iloc[0])
    assert df["overlap_previous"].iloc[1:].between(0, 1).all()
    # Undone matches are not replayed.
    voted.undo()
    assert plots.topk_overlap_series(voted, k=10, checkpoints=6)["matches"].iloc[-1] == 119


def test_side_bias_counts_and_interval(voted):
    b = plots.side_bias(voted)
    df = voted.matches_df()
    wins = df[(df["kind"] == "win") & (df["rank"] == 0)]
    assert b["left"] == int((wins["position"] == 0).sum())
    assert b["left"] + b["right"] == 120
    assert b["low"] < b["rate"] < b["high"]
    assert b["low"] >= 0
    assert b["high"] <= 1


def test_decision_times_shown_once_per_match(voted):
    fig = plots.decision_time_histogram(voted)
    assert sum(p.get_height() for p in fig.axes[0].patches) == 120
    assert "120 timed" in fig.axes[0].get_title()
