"""The feature registry: a new per-image feature is one spec; EmbeddingRun validation; the cheap sidecar."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from features_support import write_collection
from PIL import Image

import imagerank
from imagerank.errors import InvalidArgumentError
from imagerank.features import registry
from imagerank.features.pipeline import EmbeddingRun
from imagerank.features.sidecar import Sidecar
from imagerank.features.spec import FeatureContext, FeatureSpec, keyed_schema


# ---------------------------------------------------------------------------------------------- a test-only feature
def mean_red_extractor(rgb: Image.Image, job: Any) -> dict[str, Any]:
    """Mean of the red channel of the feature image, 0–1 (module level: the pass may pickle it)."""
    return {"mean_red": float(np.asarray(rgb)[..., 0].mean()) / 255.0}


def _red_flag(values: dict[str, Any], ctx: FeatureContext) -> dict[str, Any]:
    return {"reddish": values["mean_red"] > 0.5, "width_px": ctx.width}


def _red_flag_on_read(df: Any, settings: Any) -> Any:
    df["reddish_now"] = df["mean_red"] > 0.0
    return df


MEAN_RED = FeatureSpec(
    name="mean_red",
    extractor=mean_red_extractor,
    schema=keyed_schema([pa.field("mean_red", pa.float64()), pa.field("reddish", pa.bool_()),
                         pa.field("width_px", pa.int32())]),
    metadata=lambda ctx: {"range": "0-1", "feature_size": ctx.feature_size},
    on_write=_red_flag,
    on_read=_red_flag_on_read,
)


@pytest.fixture
def col(tmp_path: Path) -> Iterator[imagerank.Collection]:
    write_collection(tmp_path / "images", n_base=5, n_variants=1)
    c = imagerank.init(tmp_path / "ws", tmp_path / "images")
    c.scan(progress=False)
    yield c
    c.close()


def test_the_registry_lists_every_feature_without_side_effects() -> None:
    names = [s.name for s in registry.list_features()]
    assert names == ["hashes", "quality", "exif", "cheap"]
    assert registry.get_feature("quality").on_read is not None
    assert registry.get_feature("cheap").columns[:3] == ("r_mean", "g_mean", "b_mean")
    assert set(registry.extractors_for(["hashes", "cheap", "nope"])) == {"hashes", "cheap"}
    with pytest.raises(InvalidArgumentError, match="registered: hashes, quality, exif, cheap"):
        registry.get_feature("nope")
    with pytest.raises(ValueError, match="lower-case"):
        FeatureSpec(name="Bad Name", schema=keyed_schema([]))
    with pytest.raises(InvalidArgumentError, match="key column"):
        FeatureSpec(name="keyless", schema=pa.schema([pa.field("x", pa.float64())]))


def test_a_new_feature_is_one_spec(col: imagerank.Collection, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.FEATURES, "mean_red", MEAN_RED)
    rep = col.compute_features(hashes=False, quality=False, exif=False, features=("mean_red",), progress=False)
    assert rep.computed == {"mean_red": 6}
    assert not rep.failures
    df = col.features_df("mean_red")
    assert len(df) == 6
    assert df["mean_red"].between(0, 1).all()
    assert (df["reddish"] == (df["mean_red"] > 0.5)).all()  # the write hook ran
    assert (df["width_px"] == 160).all()  # ... with the original's size
    assert df["reddish_now"].all()  # the read hook ran
    md = Sidecar(col.sidecars_dir, "mean_red").metadata()
    assert md["range"] == "0-1"
    assert md["feature_size"] == 512
    again = col.compute_features(hashes=False, quality=False, exif=False, features=("mean_red",), progress=False)
    assert again.computed == {"mean_red": 0}
    assert again.current == {"mean_red": 6}
    # the scan's decode carries registered features too
    write_collection(col.root.parent / "images", n_base=7, n_variants=0)
    col.scan(progress=False, extractors=("mean_red",))
    assert len(col.features_df("mean_red")) == 8


def test_an_unregistered_spec_can_be_passed_as_is(col: imagerank.Collection) -> None:
    spec = FeatureSpec(name="blue_mean", schema=keyed_schema([pa.field("mean_red", pa.float64())]),
                       extractor=mean_red_extractor)
    rep = col.compute_features(hashes=False, quality=False, exif=False, features=(spec,), progress=False)
    assert rep.computed == {"blue_mean": 6}
    assert len(col.features_df("blue_mean")) == 6
    with pytest.raises(InvalidArgumentError, match="unknown feature 'nope'"):
        col.compute_features(features=("nope",), progress=False)
    headless = FeatureSpec(name="headless", schema=keyed_schema([]))
    with pytest.raises(InvalidArgumentError, match="no extractor"):
        col.compute_features(features=(headless,), progress=False)


def test_a_broken_write_hook_fails_that_feature_only(col: imagerank.Collection,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(values: dict[str, Any], ctx: FeatureContext) -> dict[str, Any]:
        raise RuntimeError("hook exploded")

    import dataclasses

    monkeypatch.setitem(registry.FEATURES, "mean_red", dataclasses.replace(MEAN_RED, on_write=explode))
    rep = col.compute_features(exif=False, features=("mean_red",), progress=False)
    assert rep.computed == {"hashes": 6, "quality": 6, "mean_red": 0}
    assert {f[2] for f in rep.failures} == {"mean_red"}
    stages = {r[0] for r in col.db.query("SELECT stage FROM failures")}
    assert stages == {"mean_red"}


def test_cheap_sidecar_from_the_decode_pass(col: imagerank.Collection) -> None:
    from imagerank.features.cheap import CHEAP_FEATURES, has_cheap_features

    assert not has_cheap_features(col)
    rep = col.compute_features(hashes=False, quality=False, exif=False, features=("cheap",), progress=False)
    assert rep.computed == {"cheap": 6}
    assert has_cheap_features(col)
    df = col.features_df("cheap")
    assert df[list(CHEAP_FEATURES)].notna().all().all()
    assert df["log_megapixels"].iloc[0] == pytest.approx(math.log(160 * 120 / 1e6), abs=1e-5)
    assert df["log_aspect"].iloc[0] == pytest.approx(math.log(160 / 120), abs=1e-5)


def test_embedding_run_defaults_and_validation() -> None:
    run = EmbeddingRun()
    assert (run.devices, run.strategy, run.accelerator, run.batch_size, run.num_workers, run.precision) == (
        1, "auto", "auto", 64, None, "32-true")
    assert EmbeddingRun(devices="0,1", strategy="ddp").devices == "0,1"
    for bad in ({"devices": 0}, {"batch_size": 0}, {"num_workers": -1}, {"precision": ""}, {"devices": True}):
        with pytest.raises(InvalidArgumentError):
            EmbeddingRun(**bad)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        run.devices = 2  # type: ignore[misc]
