"""The ranker: fast_dev_run smoke tests on CPU, recovery of a known preference (Spearman >= 0.9 after 2,000 votes),
evaluation against OpenSkill, the learned prior, background training, and the model registry's checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from training_support import clone

import imagerank
from imagerank.errors import CheckpointError, FeatureError, NotFoundError
from imagerank.training.evaluate import evaluate_ranker, pair_metrics
from imagerank.training.prior import clear_prior, prior_from_scores
from imagerank.training.ranker import Ranker, RankerConfig, train_ranker
from imagerank.training.registry import list_models, load_model, save_model
from imagerank.training.simulate import FeatureJudge, simulated_votes


@pytest.fixture(scope="module")
def trained(pref_ws: Path, tmp_path_factory: pytest.TempPathFactory):
    """2,000 simulated votes on 120 images, a ranker trained on cheap features and saved as ``ranker``."""
    root = tmp_path_factory.mktemp("trained")
    col = clone(pref_ws, root / "ws")
    col.settings = col.settings.replace(prior_refit_every=0)  # plain OpenSkill ratings: no live prior
    report = simulated_votes(col, 2000, FeatureJudge(noise=0.6), seed=11)
    ranker = train_ranker(col, "cheap", RankerConfig(max_epochs=25, seed=0), progress=False, name="ranker")
    col.close()
    return root / "ws", report, ranker


def test_fast_dev_run_smoke_linear_and_mlp(pref_col) -> None:
    simulated_votes(pref_col, 60, seed=2)
    for network in ("linear", "mlp"):
        r = train_ranker(pref_col, "cheap", RankerConfig(network=network, fast_dev_run=True), progress=False,
                         name="smoke")
        assert isinstance(r, Ranker)
        assert r.net_config.kind == network
        s = r.score_images(pref_col)
        assert len(s) == 120
        assert np.isfinite(s.to_numpy()).all()
    assert not (pref_col.models_dir / "smoke").exists()  # fast_dev_run never saves


def test_recovers_the_judges_preference_after_2000_votes(trained) -> None:
    ws, report, ranker = trained
    col = imagerank.open(ws)
    assert report.n_votes == 2000
    assert col.stats()["comparisons"] == 2000
    scores = ranker.score_images(col)
    truth = report.utilities.reindex(scores.index)
    rho = spearmanr(scores.to_numpy(), truth.to_numpy()).statistic
    assert rho >= 0.9, f"Spearman {rho:.3f} < 0.9"
    m = ranker.metadata["metrics"]
    assert m["val_accuracy"] > 0.75
    assert m["val_pairs"] > 200
    col.close()


def test_evaluation_against_openskill_is_fair_and_shows_cold_start(trained) -> None:
    ws, _, ranker = trained
    col = imagerank.open(ws)
    ev = evaluate_ranker(col, ranker)
    df = ev.to_frame().set_index(["model", "set"])
    assert set(df.index) == {(m, s) for m in ("ranker", "openskill") for s in ("val", "cold", "half-cold")}
    assert df.loc[("ranker", "val"), "n_pairs"] == df.loc[("openskill", "val"), "n_pairs"] > 200
    # OpenSkill never saw a cold image: it can only say 0.5 (half credit); the ranker generalises from features
    assert df.loc[("openskill", "cold"), "accuracy"] == pytest.approx(0.5)
    assert df.loc[("openskill", "cold"), "log_loss"] == pytest.approx(np.log(2))
    assert df.loc[("ranker", "cold"), "n_pairs"] >= 10
    assert df.loc[("ranker", "cold"), "accuracy"] > 0.65
    assert df.loc[("ranker", "val"), "log_loss"] < np.log(2)
    cal = ev.metrics[("ranker", "val")].calibration
    assert cal["count"].sum() == 2 * df.loc[("ranker", "val"), "n_pairs"]
    fig = ev.plot_calibration()
    assert len(fig.axes[0].lines) >= 3
    assert "OpenSkill" in str(ev)
    col.close()


def test_pair_metrics_by_hand() -> None:
    m = pair_metrics(np.array([0.9, 0.2, 0.5, 0.7]), np.array([1.0, 1.0, 0.0, 0.5]), bins=2)
    assert m.n_pairs == 3  # the draw is left out
    assert m.accuracy == pytest.approx((1 + 0 + 0.5) / 3)
    assert m.log_loss == pytest.approx(-(np.log(0.9) + np.log(0.2) + np.log(0.5)) / 3)
    assert pair_metrics(np.array([]), np.array([])).n_pairs == 0


def test_apply_prior_mapping_keeps_doctor_green(trained, tmp_path: Path) -> None:
    ws, _, ranker = trained
    col = clone(ws, tmp_path / "ws")
    fresh = imagerank.init(tmp_path / "fresh", [p for p in col.settings.roots], strategy="random")
    fresh.scan(progress=False)
    # images with no comparisons in a collection: every one gets a prior
    rep = fresh.apply_prior(ranker, max_comparisons=0)
    assert rep.n_updated == rep.n_scored == 120
    df = fresh.images_df().set_index("id")
    z, mu, _ = prior_from_scores(ranker.score_images(fresh).to_numpy(), ranker.confidence)
    assert np.allclose(df["prior_mu"].to_numpy(), mu)
    assert np.allclose(df["mu"].to_numpy(), mu)
    c = ranker.confidence
    assert 0.4 < c <= 1.0
    assert np.allclose(df["sigma"], 25 / 3 * (1 - 0.3 * c))
    assert np.allclose(mu, 25 + (25 / 6) * c * z)
    assert np.abs(z).max() <= 3
    assert fresh.pool().prior is not None
    assert np.allclose(np.sort(fresh.pool().prior), np.sort(z))
    assert fresh.doctor().ok
    # a voted collection: only images with few comparisons change; the log replays to match
    counts = col.images_df().set_index("id")["comparison_count"]
    k = int(np.percentile(counts, 30))
    rep = col.apply_prior(ranker, max_comparisons=k)
    got = col.images_df().set_index("id")
    assert rep.n_updated == int((counts <= k).sum()) > 0
    assert got.loc[counts[counts > k].index, "prior_mu"].isna().all()
    assert got.loc[counts[counts <= k].index, "prior_mu"].notna().all()
    assert col.doctor().ok
    assert clear_prior(col) > 0
    assert col.doctor().ok
    assert col.images_df()["prior_mu"].isna().all()
    with pytest.raises(ValueError, match="max_comparisons"):
        col.apply_prior(ranker, max_comparisons=-1)
    col.close()
    fresh.close()


def test_registry_round_trip_and_metadata(trained) -> None:
    ws, _, ranker = trained
    col = imagerank.open(ws)
    loaded = load_model(col, "ranker")
    assert isinstance(loaded, Ranker)
    assert loaded.feature_set == "cheap-v1"
    assert np.allclose(loaded.score_images(col).to_numpy(), ranker.score_images(col).to_numpy(), atol=1e-6)
    meta = json.loads((col.models_dir / "ranker" / "meta.json").read_text())
    for key in ("feature_set", "feature_dim", "data", "split", "metrics", "versions", "net"):
        assert key in meta
    assert meta["split"]["seed"] == 0
    assert meta["data"]["n_train"] > 1000
    assert {"imagerank", "torch", "lightning", "open_clip_torch"} <= set(meta["versions"])
    assert list_models(col)["name"].tolist() == ["ranker"]
    with pytest.raises(NotFoundError, match="no model 'nope'"):
        load_model(col, "nope")
    with pytest.raises(ValueError, match="plain model name"):
        load_model(col, "../escape")
    col.close()


def test_checkpoint_from_a_different_feature_set(trained, tmp_path: Path) -> None:
    ws, _, _ = trained
    col = clone(ws, tmp_path / "ws")
    with pytest.raises(CheckpointError, match="trained on feature set 'cheap-v1'"):
        load_model(col, "ranker", features="embeddings:ViT-B-32__openai")
    # an embedding sidecar appears: a ranker trained on it refuses cheap features and vice versa
    rng = np.random.default_rng(0)
    ids = col.images_df()["id"].to_numpy()
    emb = rng.normal(size=(len(ids), 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    d = col.sidecars_dir / "embeddings" / "tiny__none"
    d.mkdir(parents=True)
    pd.DataFrame({"image_id": ids, "embedding": list(emb)}).to_parquet(d / "part-0.parquet")
    r = train_ranker(col, "auto", RankerConfig(fast_dev_run=True), progress=False, name=None)
    assert r.feature_set == "embeddings:tiny__none"
    assert r.feature_dim == 16
    save_model(col, "emb", r)
    with pytest.raises(CheckpointError, match="not 'cheap-v1'"):
        load_model(col, "emb", features="cheap-v1")
    with pytest.raises(CheckpointError, match=r"expects \(N, 16\)"):
        r.score(np.zeros((3, 25), np.float32))
    with pytest.raises(FeatureError, match="no embedding sidecar 'other__x'"):
        train_ranker(col, "embeddings:other__x", RankerConfig(fast_dev_run=True), progress=False, name=None)
    col.close()


def test_corrupt_checkpoints_are_refused(trained, tmp_path: Path) -> None:
    ws, _, _ = trained
    col = clone(ws, tmp_path / "ws")
    src = col.models_dir / "ranker"
    for name, damage in [
        ("garbage", lambda p: (p / "model.safetensors").write_bytes(b"\x00not a checkpoint" * 10)),
        ("truncated", lambda p: (p / "model.safetensors").write_bytes((p / "model.safetensors").read_bytes()[:300])),
        ("badjson", lambda p: (p / "meta.json").write_text("{ not json")),
        ("wrongdim", lambda p: (p / "meta.json").write_text(json.dumps(
            {**json.loads((p / "meta.json").read_text()), "net": {"in_dim": 7, "kind": "mlp", "hidden": 64,
                                                                   "depth": 1, "dropout": 0.1}}))),
    ]:
        shutil.copytree(src, col.models_dir / name)
        damage(col.models_dir / name)
        with pytest.raises(CheckpointError):
            load_model(col, name)
    col.close()


def test_background_job_with_live_curve(pref_col) -> None:
    simulated_votes(pref_col, 300, seed=4)
    rows = []
    job = train_ranker(pref_col, "cheap", RankerConfig(max_epochs=3), background=True, name="bg",
                       on_progress=rows.append)
    widget = job.live_plot()
    ranker = job.wait(timeout=120)
    assert job.status == "done"
    assert isinstance(ranker, Ranker)
    assert rows
    assert any(r["val_loss"] is not None for r in rows)
    assert ranker.history
    assert widget.children[1].value[:4] == b"\x89PNG"
    assert "done" in job.status_line()
    assert (pref_col.models_dir / "bg" / "model.safetensors").exists()
    # a failing job re-raises its error from wait()
    empty = imagerank.init(pref_col.root.parent / "empty", strategy="random")
    failing = train_ranker(empty, "cheap", background=True, name=None)
    with pytest.raises(imagerank.errors.NoVotesError):
        failing.wait(timeout=60)
    assert failing.status == "failed"
    empty.close()
