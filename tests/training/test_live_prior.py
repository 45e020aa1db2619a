"""The live prior: the linear Bradley-Terry ranker refitted from the votes every ``prior_refit_every`` votes and
turned into every image's OpenSkill prior (what ``benchmarks/ranking_sim.py`` measures)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import imagerank
from imagerank.errors import ConfigError, FeatureError, NoVotesError
from imagerank.features.pipeline import EmbeddingRun
from imagerank.features.sidecar import Sidecar
from imagerank.training.data import load_votes, vote_pairs
from imagerank.training.features import feature_matrix
from imagerank.training.prior import LIVE_COMPONENTS, live_design
from imagerank.training.simulate import FeatureJudge, simulated_votes


def test_refit_needs_votes_and_features(small_col) -> None:
    col = small_col(40)
    with pytest.raises(NoVotesError, match="no kept votes"):
        col.refit_prior()
    a, b = col.next_pairs(1)[0]
    col.vote(a, b, "draw")
    with pytest.raises(NoVotesError, match="only 1 pairwise draws"):
        col.refit_prior()
    col.vote(a, b, "left")
    # the vote path never computes features: without embeddings or a cheap-feature cache it says what to run
    with pytest.raises(FeatureError, match="imagerank features"):
        col.refit_prior(compute=False)
    with pytest.raises(FeatureError, match="features"):
        col.refit_prior("embeddings:nope__none")


def test_refit_learns_the_judges_taste_and_keeps_the_log_consistent(small_col) -> None:
    col = small_col(120)
    col.settings = col.settings.replace(prior_refit_every=0)
    judge = FeatureJudge(noise=0.3)
    truth = simulated_votes(col, 400, judge, strategy="random", seed=3).utilities
    report = col.refit_prior()  # computes the cheap features once (cached afterwards)
    assert report.features == "cheap-v1"
    assert report.calibrated
    assert report.n_images == 120
    assert report.n_pairs == 400
    assert 0.3 < report.confidence <= 0.95
    df = col.images_df().set_index("id")
    assert df["prior_mu"].notna().all()
    assert df["prior_sigma"].notna().all()
    # the prior alone ranks the images by the judge's taste
    rho = stats.spearmanr(df.loc[truth.index, "prior_mu"], truth).statistic
    assert rho > 0.6, rho
    assert col.doctor().ok  # ratings == replay of the log from the new priors
    pool = col.pool()
    assert pool.prior is not None
    assert np.isfinite(pool.prior).all()
    assert "live prior from 400 votes" in col.prior_status
    # a warm refit keeps the calibration until the votes double; undo and clear keep the log consistent
    simulated_votes(col, 50, judge, strategy="active", seed=4)
    assert not col.refit_prior().calibrated
    col.undo(any_session=True)
    assert col.doctor().ok
    assert col.clear_prior() > 0
    assert col.images_df()["prior_mu"].isna().all()
    assert col.doctor().ok
    assert col.pool().prior is None


def test_votes_refit_the_prior_automatically_and_never_fail_for_it(small_col) -> None:
    col = small_col(60)
    col.settings = col.settings.replace(prior_refit_every=25)
    for _ in range(30):
        a, b = col.next_pairs(1)[0]
        col.vote(a, b, "left" if a < b else "right")
    # 25 votes went by, but no features are cached: the votes are kept and the status says why there is no prior
    assert col.stats()["comparisons"] == 30
    assert col.prior_status.startswith("no learned prior")
    assert "imagerank features" in col.prior_status
    assert col.images_df()["prior_mu"].isna().all()
    first = col.refit_prior()  # computes and caches the cheap features
    # "lower id wins" carries no signal the features can see: the honest prior may be switched off (no pairing
    # scores, off_reason set) or on; either way the 25th vote must refit it
    before = col.pool().prior
    assert (before is None) == (first.off_reason is not None)
    judge = FeatureJudge(noise=0.3)
    simulated_votes(col, 25, judge, strategy="active", seed=2)
    assert "live prior from 55 votes" in col.prior_status  # the ranker was refitted on the 25th vote
    after = col.pool().prior
    assert (after is None) == (col.prior.report.off_reason is not None)
    if before is not None and after is not None:
        assert not np.allclose(before, after)
    assert col.doctor().ok
    # off switch
    col.settings = col.settings.replace(prior_refit_every=0)
    simulated_votes(col, 30, judge, strategy="active", seed=5)
    assert "live prior from 55 votes" in col.prior_status


def test_vote_pairs_in_vote_order(small_col) -> None:
    col = small_col(8)
    ids = col.pool().ids.astype(int).tolist()
    col.vote(ids[0], ids[1], "right")  # 1 beat 0
    col.vote(ids[2], ids[3], "skip")  # left out
    col.record_match([ids[4], ids[5], ids[6]], [1, 0, 1])  # 5 first, 4 and 6 tied
    col.vote(ids[0], ids[7], "draw")
    m = col.vote(ids[1], ids[2], "left")
    col.undo(m.id)  # undone: left out
    table = vote_pairs(col)
    a, b, y = table.a, table.b, table.y
    got = list(zip(a.tolist(), b.tolist(), y.tolist()))
    assert got[0] == (ids[1], ids[0], 1.0)
    assert sorted(got[1:4]) == sorted([(ids[5], ids[4], 1.0), (ids[4], ids[6], 0.5), (ids[5], ids[6], 1.0)])
    assert got[4] == (ids[0], ids[7], 0.5)
    assert len(got) == 5
    slow = load_votes(col).pairs()  # the data-frame path gives the same table
    for field in ("a", "b", "y", "match_id"):
        assert getattr(table, field).tolist() == getattr(slow, field).tolist()


def test_live_design_standardises_and_reduces() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 100)) * 5 + 3
    X[:, 7] = 1.0  # constant column
    Z = live_design(X)
    assert Z.shape == (300, LIVE_COMPONENTS)
    assert np.allclose(Z.mean(0), 0, atol=1e-9)
    small = live_design(X[:, :10])
    assert small.shape == (300, 10)
    assert np.allclose(small[:, 7], 0.0)


def test_settings_reject_bad_values(tmp_path) -> None:
    with pytest.raises(ConfigError, match="prior_refit_every"):
        imagerank.init(tmp_path / "a", prior_refit_every=-1)
    with pytest.raises(ConfigError, match="prior_features"):
        imagerank.init(tmp_path / "b", prior_features="pixels")


def test_cli_prior(small_col, capsys) -> None:
    from imagerank.cli import main

    col = small_col(30)
    ws = str(col.root)
    assert main(["prior", ws]) == 2
    assert "no kept votes" in capsys.readouterr().err
    simulated_votes(col, 40, FeatureJudge(noise=0.3), strategy="random", seed=0)
    col.close()
    assert main(["prior", ws, "--features", "cheap"]) == 0
    assert "live prior from 40 votes on cheap-v1" in capsys.readouterr().out
    assert main(["prior", ws, "--clear"]) == 0
    assert "learned priors removed" in capsys.readouterr().out
    assert main(["prior", ws, "--features", "pixels"]) == 2
    assert "features" in capsys.readouterr().err


def test_panel_votes_refit_the_prior_and_the_header_says_so(small_col) -> None:
    from imagerank.widgets import ComparePanel

    col = small_col(40)
    col.settings = col.settings.replace(prior_refit_every=10)
    feature_matrix(col, "cheap")  # cache the cheap features, as `imagerank prior` or the features pass would
    panel = ComparePanel(col, queue_depth=4)
    panel.handle_message({"type": "ready"})
    assert panel.header["prior_confidence"] is None
    for _ in range(10):
        p = panel.pairs[0]
        outcome = "left" if p["left"]["id"] < p["right"]["id"] else "right"
        panel.handle_message({"type": "vote", "pid": p["pid"], "left": p["left"]["id"], "right": p["right"]["id"],
                              "outcome": outcome, "ms": 500.0})
        assert panel.status.get("level") != "error", panel.status
    col.prior.wait()  # the 10th vote started a refit off the vote path; the header follows when it lands
    assert panel.header["prior"].startswith("live prior from 10 votes")
    # at 10 votes the prior is switched off (it starts at 20): no r in the header, the reason instead
    assert panel.header["prior_confidence"] is None
    assert "taste prior off: 10 votes so far" in panel.header["prior"]
    assert col.doctor().ok


def test_auto_features_prefer_clip_embeddings(small_col) -> None:
    col = small_col(30)
    col.settings = col.settings.replace(prior_refit_every=0)
    simulated_votes(col, 40, FeatureJudge(noise=0.3), strategy="random", seed=0)
    assert col.refit_prior().features == "cheap-v1"  # no embeddings yet
    col.compute_features(hashes=False, quality=False, exif=False, embeddings="imagerank-tiny:none", progress=False,
                         run=EmbeddingRun(num_workers=0))
    report = col.refit_prior(compute=False)  # the new embedding set replaces the cached cheap features
    assert report.features == "embeddings:imagerank-tiny__none"
    assert report.n_images == 30
    assert report.n_pairs == 40
    assert col.doctor().ok


def test_an_import_refits_once_at_the_end(small_col, tmp_path, monkeypatch) -> None:
    import csv

    from imagerank.training.imports import import_selection_log

    col = small_col(30)
    col.settings = col.settings.replace(prior_refit_every=20)
    feature_matrix(col, "cheap")
    paths = sorted(col.images_df()["filepath"])
    log = tmp_path / "choices.csv"
    with open(log, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["candidates", "chosen"])
        for k in range(50):
            a, b = paths[k % 30], paths[(k * 7 + 3) % 30]
            if a != b:
                w.writerow([f"{a}|{b}", min(a, b)])
    fits = []
    real = col.prior.refit
    monkeypatch.setattr(col.prior, "refit", lambda *a, **kw: fits.append(1) or real(*a, **kw))
    report = import_selection_log(col, log)
    assert report.imported >= 45
    assert len(fits) == 1  # not one per 20 imported rows
    assert col.prior_status.startswith(f"live prior from {report.imported} votes")
    assert col.doctor().ok
    # fewer new votes than prior_refit_every: no refit at the end of a small import
    with col.deferred_prior():
        a, b = col.next_pairs(1)[0]
        col.vote(a, b, "left")
    assert len(fits) == 1


def test_priors_and_ratings_change_together_or_not_at_all(small_col, monkeypatch) -> None:
    col = small_col(20)
    col.settings = col.settings.replace(prior_refit_every=0)
    simulated_votes(col, 30, FeatureJudge(noise=0.3), strategy="random", seed=0)
    before = col.images_df().set_index("id")[["mu", "sigma", "prior_mu"]]

    def crash(conn, *, write):  # the replay fails half-way (disk full, a bug ...)
        raise OSError("disk full")

    monkeypatch.setattr(col.votes, "_replay", crash)
    with pytest.raises(OSError, match="disk full"):
        col.refit_prior()
    monkeypatch.undo()
    after = col.images_df().set_index("id")[["mu", "sigma", "prior_mu"]]
    assert after.equals(before)  # the prior update was rolled back with the failed replay
    assert col.doctor().ok


def test_the_vote_path_never_computes_features_for_new_images(small_col) -> None:
    from imagerank.training.simulate import write_preference_images

    col = small_col(30)
    col.settings = col.settings.replace(prior_refit_every=0)
    simulated_votes(col, 40, FeatureJudge(noise=0.3), strategy="random", seed=0)
    assert col.refit_prior().n_images == 30  # builds the cheap-feature cache
    write_preference_images(col.root / "more", 5, seed=9)
    col.settings = col.settings.replace(roots=(*col.settings.roots, str(col.root / "more")))
    col.scan(progress=False)
    assert len(col.pool()) == 35
    cache = Sidecar(col.sidecars_dir, "cheap").path  # the cheap sidecar's folder: a new part file changes its mtime
    stamp = cache.stat().st_mtime_ns
    assert col.refit_prior(compute=False).n_images == 30  # the 5 new images wait for an explicit refit
    assert cache.stat().st_mtime_ns == stamp
    assert col.refit_prior().n_images == 35


def test_a_new_process_says_a_learned_prior_is_stored(small_col) -> None:
    """Issue 17: in a new process (no refit yet) the status says a prior from an earlier session is stored and
    when the next refit comes, instead of "no learned prior yet"."""
    col = small_col(30)
    assert col.prior_status == "no learned prior yet"
    col.settings = col.settings.replace(prior_refit_every=0)
    simulated_votes(col, 40, FeatureJudge(noise=0.3), strategy="random", seed=0)
    col.refit_prior()
    root = col.root
    col.close()
    col = imagerank.open(root)
    try:
        status = col.prior_status
        assert status.startswith("learned prior stored (from an earlier session) on 30 images"), status
        every = col.settings.prior_refit_every
        assert f"refits after {every} more votes" in status
        a, b = col.next_pairs(1)[0]
        col.vote(a, b, "left")
        assert f"refits after {every - 1} more votes" in col.prior_status
        assert col.prior.peek()[0].startswith("learned prior stored")
        col.settings = col.settings.replace(prior_refit_every=0)
        assert col.prior_status.endswith("live refits are off (prior_refit_every = 0)")
        col.clear_prior()
        assert col.prior_status == "no learned prior (cleared)"
    finally:
        col.close()


def test_refit_in_background_returns_at_once_and_computes_the_features_off_the_caller(small_col, monkeypatch) -> None:
    """A notebook cell (01_vote) starts the refit and returns while the cheap features are still being computed on
    the background thread; the panel's listener hears when the prior lands, and ``status`` waits for it."""
    import threading

    import imagerank.training.prior as prior_mod

    col = small_col(60)
    col.settings = col.settings.replace(prior_refit_every=0)
    simulated_votes(col, 120, FeatureJudge(noise=0.3), strategy="random", seed=5)
    assert col.images_df()["prior_mu"].isna().all()
    release, entered = threading.Event(), threading.Event()
    real = prior_mod.feature_matrix

    def slow_features(*args, **kwargs):
        entered.set()
        assert release.wait(30)  # held until the caller has returned: the call did not wait for the features
        return real(*args, **kwargs)

    monkeypatch.setattr(prior_mod, "feature_matrix", slow_features)
    heard: list[str] = []
    col.prior.on_refit(lambda: heard.append(col.prior.peek()[0]))
    assert col.prior.refit_in_background() is True
    assert entered.wait(30)
    assert col.prior.refitting
    assert "refitting now" in col.prior.peek()[0]
    assert col.prior.refit_in_background() is False  # one refit at a time; it runs once more afterwards
    release.set()
    assert "live prior from 120 votes" in col.prior_status  # waits for the refit in flight
    col.prior.wait()
    assert heard
    assert "live prior from 120 votes" in heard[-1]
    assert col.images_df()["prior_mu"].notna().all()
    assert col.doctor().ok
