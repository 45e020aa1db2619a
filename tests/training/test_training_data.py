"""Training data: votes from the match log (draws, skips, undone, rankings), seeded splits, DataModules, crops,
cheap features, and the Plackett-Luce loss with ties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import imagerank
from imagerank.errors import CropError, NoVotesError
from imagerank.training.bt import plackett_luce_loss, plackett_luce_ranks_loss
from imagerank.training.data import add_crop, crop_of, load_crops, load_votes, split_votes, validate_box
from imagerank.training.features import CHEAP_FEATURES, cheap_features, feature_matrix


def _ids(col: imagerank.Collection) -> list[int]:
    return [int(i) for i in col.images_df()["id"]]


def test_no_votes_gives_a_clear_message(small_col) -> None:
    col = small_col(6)
    with pytest.raises(NoVotesError, match="no votes yet") as e:
        load_votes(col)
    assert "vote in notebooks/01_vote.ipynb" in str(e.value)
    assert "import-selections" in str(e.value)
    from imagerank.training.ranker import RankerConfig, train_ranker

    with pytest.raises(NoVotesError, match="no votes yet"):
        train_ranker(col, "cheap", RankerConfig(max_epochs=1), progress=False, name=None)


def test_only_skips_count_as_no_votes(small_col) -> None:
    col = small_col(4)
    a, b, c, _ = _ids(col)
    col.vote(a, b, "skip")
    col.vote(b, c, "skip")
    with pytest.raises(NoVotesError, match="2 skips"):
        load_votes(col)


def test_all_draws_is_refused_with_reason(small_col) -> None:
    col = small_col(5)
    ids = _ids(col)
    for k in range(4):
        col.vote(ids[k], ids[k + 1], "draw")
    col.record_match(ids[:3], [0, 0, 0])  # an N-way all-tied "ranking"
    with pytest.raises(NoVotesError, match="draws") as e:
        load_votes(col)
    assert "5 kept judgements" in str(e.value) or "judgements are draws" in str(e.value)
    votes = load_votes(col, require_decisive=False)
    assert votes.n_draws == 4
    assert votes.n_tied_rankings == 1
    assert len(votes) == 4 + 3  # the 3-way tie became 3 pairwise draws
    assert (votes.pairs().y == 0.5).all()


def test_one_image_only(small_col) -> None:
    col = small_col(1)
    (only,) = _ids(col)
    fm = feature_matrix(col, "cheap")
    assert fm.X.shape == (1, len(CHEAP_FEATURES))
    assert fm.image_ids.tolist() == [only]
    with pytest.raises(ValueError, match="at least 2 images"):
        col.record_match([only])
    with pytest.raises(NoVotesError, match="1 active images"):
        load_votes(col)


def test_votes_skip_undo_draw_and_rankings(small_col) -> None:
    col = small_col(6)
    a, b, c, d, e, f = _ids(col)
    col.vote(a, b, "left")                      # win
    col.vote(c, d, "draw")                      # draw, kept with y = 0.5
    col.vote(e, f, "skip")                      # excluded, counted
    m = col.vote(a, c, "right")                 # undone below: excluded, counted
    col.undo(m.id)
    col.record_match([d, e, f], [1, 0, 1])      # best of 3: e, then d and f tied
    votes = load_votes(col)
    assert (votes.n_skips, votes.n_undone, votes.n_draws) == (1, 1, 1)
    assert len(votes) == 3
    assert votes.decisive().tolist() == [True, False, True]
    pairs = votes.pairs()
    got = {(int(x), int(y), float(z)) for x, y, z in zip(pairs.a, pairs.b, pairs.y)}
    assert (a, b, 1.0) in got
    assert (c, d, 0.5) in got
    assert (e, d, 1.0) in got
    assert (e, f, 1.0) in got
    assert (d, f, 0.5) in got
    assert "1 skips" in votes.summary()


def test_split_is_by_match_seeded_and_keeps_cold_images_out(pref_col) -> None:
    from imagerank.training.simulate import simulated_votes

    simulated_votes(pref_col, 300, seed=3)
    pref_col.record_match(_ids(pref_col)[:4], [0, 1, 1, 2])
    votes = load_votes(pref_col)
    s1 = split_votes(votes, val_fraction=0.25, cold_fraction=0.1, seed=7)
    s2 = split_votes(votes, val_fraction=0.25, cold_fraction=0.1, seed=7)
    s3 = split_votes(votes, val_fraction=0.25, cold_fraction=0.1, seed=8)
    assert np.array_equal(s1.train, s2.train)
    assert np.array_equal(s1.val, s2.val)
    assert not np.array_equal(s1.val, s3.val)
    parts = [set(s1.train), set(s1.val), set(s1.cold), set(s1.mixed)]
    assert sum(len(p) for p in parts) == len(votes)
    assert len(set().union(*parts)) == len(votes)
    cold = set(s1.cold_images.tolist())
    assert len(cold) == 12
    trained = {int(i) for r in s1.train for i in votes.entries[r]}
    assert not trained & cold
    assert set(votes.match_ids[s1.train]).isdisjoint(set(votes.match_ids[s1.val]))
    assert abs(len(s1.val) - 0.25 * (len(s1.train) + len(s1.val))) <= 1
    with pytest.raises(ValueError, match="val_fraction"):
        split_votes(votes, val_fraction=1.0)


def test_datamodule_setup_twice_is_stable(pref_col) -> None:
    from imagerank.training.datamodule import PreferenceDataModule
    from imagerank.training.simulate import simulated_votes

    simulated_votes(pref_col, 200, seed=1)
    ids = _ids(pref_col)
    pref_col.record_match(ids[:5], [0, 1, 2, 3, 4])
    fm = feature_matrix(pref_col, "cheap")
    dm = PreferenceDataModule(fm, load_votes(pref_col), val_fraction=0.2, cold_fraction=0.1, seed=5, batch_size=64)
    dm.setup("fit")
    first = (dm.split.train.copy(), dm.split.val.copy(), dm.train_set)
    dm.setup("fit")
    dm.setup("validate")
    assert np.array_equal(first[0], dm.split.train)
    assert np.array_equal(first[1], dm.split.val)
    assert dm.train_set is first[2]
    batch = next(iter(dm.train_dataloader()))
    B, K, D = batch["x"].shape
    assert len(CHEAP_FEATURES) == D
    assert B <= 64
    assert K in (2, 5)
    assert batch["mask"].dtype == torch.bool
    assert batch["rank"].shape == (B, K)
    # the same seed gives the same first batch
    dm2 = PreferenceDataModule(fm, load_votes(pref_col), val_fraction=0.2, cold_fraction=0.1, seed=5, batch_size=64)
    dm2.setup()
    assert torch.equal(next(iter(dm2.train_dataloader()))["x"], batch["x"])


def test_plackett_luce_with_ties() -> None:
    g = torch.Generator().manual_seed(0)
    s = torch.randn(6, 4, generator=g)
    mask = torch.ones(6, 4, dtype=torch.bool)
    order = torch.arange(4).repeat(6, 1)
    assert torch.allclose(plackett_luce_ranks_loss(s, order, mask), plackett_luce_loss(s, mask))
    perm = torch.tensor([2, 0, 3, 1])
    assert torch.allclose(plackett_luce_ranks_loss(s[:, perm], order[:, perm], mask), plackett_luce_loss(s, mask))
    choice = torch.tensor([[0, 1, 1, 1]] * 6)
    want = -(s[:, 0] - torch.logsumexp(s, -1)).mean()
    assert torch.allclose(plackett_luce_ranks_loss(s, choice, mask), want)
    assert plackett_luce_ranks_loss(s, torch.zeros_like(choice), mask).item() == 0.0
    short = mask.clone()
    short[:, 3] = False
    assert torch.allclose(plackett_luce_ranks_loss(s, order, short), plackett_luce_loss(s, short))


def test_crop_validation_and_storage(small_col) -> None:
    col = small_col(2)
    a, _ = _ids(col)
    with pytest.raises(CropError, match="outside"):
        add_crop(col, a, (0.6, 0.1, 0.5, 0.5))
    with pytest.raises(CropError, match="zero area"):
        add_crop(col, a, (0.2, 0.2, 0.0, 0.3))
    with pytest.raises(CropError, match="finite"):
        validate_box(0.1, math.nan, 0.2, 0.2)
    with pytest.raises(CropError, match="outside"):
        validate_box(-0.1, 0.0, 0.5, 0.5)
    with pytest.raises(CropError, match="units"):
        add_crop(col, a, (1, 1, 2, 2), units="inches")
    cid = add_crop(col, a, (16, 12, 32, 24), units="pixels", aspect="4:3")  # images are 64 x 48
    assert crop_of(col, a) == pytest.approx((0.25, 0.25, 0.5, 0.5))
    df = load_crops(col)
    assert df["crop_id"].tolist() == [cid]
    assert df["source"].tolist() == ["user"]
    add_crop(col, a, (0.0, 0.0, 1.0, 1.0 + 1e-9), source="model", accepted=False)  # tiny overshoot is clipped
    assert len(load_crops(col)) == 1  # a model crop nobody accepted is not training data
    assert validate_box(0, 0, 1, 1 + 1e-9) == (0.0, 0.0, 1.0, 1.0)


def test_crop_and_suggestion_tables_in_the_catalog(small_col) -> None:
    from imagerank.errors import InvalidArgumentError, NotFoundError

    col = small_col(2)
    cat = col.catalog
    a, b = _ids(col)
    with pytest.raises(NotFoundError):
        cat.crops.add(10_000, (0.1, 0.1, 0.5, 0.5))
    first = cat.crops.add(a, (0.1, 0.1, 0.5, 0.5))
    cat.crops.add(a, (0.2, 0.2, 0.5, 0.5), source="model", accepted=False)
    assert cat.crops.latest(a) == pytest.approx((0.1, 0.1, 0.5, 0.5))  # a rejected crop is not the image's crop
    assert cat.crops.latest(b) is None
    assert cat.crops.count() == 2
    assert len(cat.crops.crops_df()) == 2
    assert cat.crops.crops_df(trainable=True, latest=True)["crop_id"].tolist() == [first]
    sid = cat.suggestions.add("winner", "ranker", {"image_ids": [a, b], "winner": a}, 0.7)
    with pytest.raises(InvalidArgumentError, match="kind"):
        cat.suggestions.add("mood", "ranker", {})
    assert cat.suggestions.decision_of(sid) is None
    cat.suggestions.decide(sid, "edit", decided_payload={"winner": b})
    with pytest.raises(InvalidArgumentError, match="already decided"):
        cat.suggestions.decide(sid, "approve")
    with pytest.raises(NotFoundError):
        cat.suggestions.decide(sid + 1, "approve")
    log = cat.suggestions.suggestions_df()
    assert log["decision"].tolist() == ["edit"]
    assert log["decided_at"].notna().all()


def test_cheap_features_and_cache(pref_col, monkeypatch) -> None:
    rgb = (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)
    v = cheap_features(rgb, 500, 400)
    assert v.shape == (len(CHEAP_FEATURES),)
    assert v.dtype == np.float32
    assert np.isfinite(v).all()
    assert v[CHEAP_FEATURES.index("log_aspect")] == pytest.approx(math.log(500 / 400))
    with pytest.raises(ValueError, match="H, W, 3"):
        cheap_features(rgb[..., 0])
    fm = feature_matrix(pref_col, "cheap")
    assert fm.name == "cheap-v1"
    assert fm.X.shape == (120, len(CHEAP_FEATURES))
    assert np.isfinite(fm.X).all()
    assert (fm.X.std(0) > 0).sum() >= 20
    import imagerank.features.cheap as F

    monkeypatch.setattr(F, "cheap_features", lambda *a, **k: (_ for _ in ()).throw(AssertionError("recomputed")))
    again = feature_matrix(pref_col, "cheap")  # served from the cheap sidecar (sidecars/cheap/part-*.parquet)
    assert np.array_equal(again.X, fm.X)
    assert fm.rows(np.array([fm.image_ids[3], 10**6])).tolist() == [3, -1]
    with pytest.raises(imagerank.errors.FeatureError, match="expected 'auto'"):
        feature_matrix(pref_col, "sift")


def test_cheap_features_take_the_quality_sidecar_when_present(small_col) -> None:
    col = small_col(6)
    if not hasattr(col, "compute_features"):
        pytest.skip("imagerank.features (quality sidecar) not available")
    with pytest.raises(imagerank.errors.FeatureError, match="no quality sidecar"):
        feature_matrix(col, "cheap-v1+quality")
    col.compute_features(hashes=False, exif=False, quality=True, progress=False)
    both = feature_matrix(col, "cheap")
    assert both.name == "cheap-v1+quality"
    assert both.X.shape[0] == 6
    assert both.X.shape[1] > len(CHEAP_FEATURES)
    assert np.isfinite(both.X).all()
    plain = feature_matrix(col, "cheap-v1")  # a model trained on cheap-v1 still gets exactly its features
    assert plain.name == "cheap-v1"
    assert plain.X.shape == (6, len(CHEAP_FEATURES))


def test_cheap_features_are_a_sidecar_with_stale_rows_recomputed(small_col) -> None:
    from imagerank.features.cheap import has_cheap_features
    from imagerank.features.sidecar import Sidecar

    col = small_col(8)
    ids = _ids(col)
    old = col.sidecars_dir / "training" / "cheap-v1.parquet"  # the cache of older versions: never read
    old.parent.mkdir(parents=True)
    old.write_bytes(b"not parquet")
    assert not has_cheap_features(col)
    assert len(feature_matrix(col, "cheap-v1", compute=False).image_ids) == 0  # compute=False never decodes
    col.images.set_status(ids[0], "rejected", "test")  # rejected images are not decoded: their thumbnail serves
    fm = feature_matrix(col, "cheap-v1")
    assert fm.image_ids.tolist() == ids
    assert has_cheap_features(col)
    df = col.features_df("cheap")
    assert df["image_id"].tolist() == ids
    assert list(df.columns[3:]) == list(CHEAP_FEATURES)
    w, h = col.images.get(ids[1])["width"], col.images.get(ids[1])["height"]
    assert df["log_megapixels"].iloc[1] == pytest.approx(math.log(w * h / 1e6), abs=1e-5)  # the original's size
    assert Sidecar(col.sidecars_dir, "cheap").metadata()["feature_set"] == "cheap-v1"
    # a changed file makes its row stale: only that image is recomputed
    path = col.images.get(ids[2])["filepath"]
    from PIL import Image

    Image.new("RGB", (64, 48), (200, 30, 30)).save(path)
    col.scan(progress=False)
    parts = len(Sidecar(col.sidecars_dir, "cheap").parts())
    assert len(feature_matrix(col, "cheap-v1", compute=False).image_ids) == 7
    again = feature_matrix(col, "cheap-v1")
    assert again.image_ids.tolist() == ids
    assert len(Sidecar(col.sidecars_dir, "cheap").parts()) == parts + 1
    assert again.X[2, CHEAP_FEATURES.index("r_mean")] > 0.7
    np.testing.assert_array_equal(np.delete(again.X, 2, axis=0), np.delete(fm.X, 2, axis=0))
