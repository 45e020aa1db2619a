"""The feature pass on a collection: one decode, incremental runs, stale rows, failures, Collection readers."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from features_support import base_image, write_collection
from PIL import Image

import imagerank
from imagerank.errors import FeatureError
from imagerank.features import registry
from imagerank.features.sidecar import Sidecar
from imagerank.media import thumbs as thumbnails


@pytest.fixture
def col(tmp_path: Path) -> Iterator[imagerank.Collection]:
    images = tmp_path / "images"
    write_collection(images, n_base=6, n_variants=2)
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (30, 40), dtype=np.uint8), "L").save(images / "grey.png")
    base_image(7).convert("RGBA").save(images / "alpha.png")
    base_image(8).resize((3, 2)).save(images / "tiny.jpg")
    c = imagerank.init(tmp_path / "ws", images)
    c.scan(progress=False, thumbnails=False)
    yield c
    c.close()


def _failures(c: imagerank.Collection) -> list[tuple]:
    return [tuple(r) for r in c.db.query("SELECT image_id, stage, reason FROM failures ORDER BY id")]


def test_one_decode_feeds_thumbnail_hashes_and_quality(col: imagerank.Collection,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = thumbnails.decode_image

    def counting(path: str, *a: object, **k: object) -> object:
        calls.append(path)
        return real(path, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(thumbnails, "decode_image", counting)
    rep = col.compute_features(exif=False, progress=False)
    assert len(calls) == len(set(calls)) == 11
    assert rep.computed == {"hashes": 11, "quality": 11}
    assert all(col.thumbs.path(i) is not None for i in col.features_df("hashes")["image_id"])


def test_features_tables_and_incremental_runs(col: imagerank.Collection) -> None:
    rep = col.compute_features(progress=False)
    assert rep.computed == {"hashes": 11, "quality": 11, "exif": 11}
    assert not rep.failures
    for name in ("hashes", "quality", "exif"):
        df = col.features_df(name)
        assert len(df) == 11
        assert df["image_id"].is_monotonic_increasing
    q = col.features_df("quality")
    tiny = int(col.db.query("SELECT id FROM images WHERE filename='tiny.jpg'")[0][0])
    assert q.set_index("image_id")["laplacian_var"].isna().to_dict() == {i: i == tiny for i in q["image_id"]}
    assert {"too_blurry", "too_dark", "too_bright", "clipped_highlights"} <= set(q.columns)
    again = col.compute_features(progress=False)
    assert again.computed == {"hashes": 0, "quality": 0, "exif": 0}
    assert again.current == {"hashes": 11, "quality": 11, "exif": 11}


def test_changed_file_is_recomputed(col: imagerank.Collection, tmp_path: Path) -> None:
    col.compute_features(progress=False)
    target = tmp_path / "images" / "base_03.jpg"
    image_id = int(col.db.query("SELECT id FROM images WHERE filename='base_03.jpg'")[0][0])
    old = col.features_df("hashes").set_index("image_id").loc[image_id]
    base_image(99).save(target, quality=90)
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    col.scan(progress=False, thumbnails=False)
    stale = col.features_df("hashes")
    assert image_id not in set(stale["image_id"])  # the stale row is not served
    rep = col.compute_features(progress=False)
    assert rep.computed == {"hashes": 1, "quality": 1, "exif": 1}
    new = col.features_df("hashes").set_index("image_id").loc[image_id]
    assert new["fingerprint"] != old["fingerprint"]
    assert new["digest"] != old["digest"]
    assert new["phash"] != old["phash"]
    assert Sidecar(col.sidecars_dir, "hashes").read(latest=False).num_rows == 12


def test_current_thumbnails_are_not_rewritten(col: imagerank.Collection) -> None:
    col.build_thumbnails(progress=False)
    before = {p: p.stat().st_mtime_ns for p in col.catalog.thumbs_dir.rglob("*.jpg")}
    rep = col.compute_features(exif=False, force=True, progress=False)
    assert rep.computed["hashes"] == 11
    assert {p: p.stat().st_mtime_ns for p in col.catalog.thumbs_dir.rglob("*.jpg")} == before


def test_scan_with_extractors_writes_sidecars(tmp_path: Path) -> None:
    write_collection(tmp_path / "images", n_base=4, n_variants=0)
    c = imagerank.init(tmp_path / "ws", tmp_path / "images")
    c.scan(progress=False, extractors=["hashes", "quality"])
    assert len(c.features_df("hashes")) == 4
    assert len(c.features_df("quality")) == 4
    assert c.compute_features(exif=False, progress=False).computed == {"hashes": 0, "quality": 0}
    c.close()


def test_failures_are_recorded_and_skip_failures_false_raises(col: imagerank.Collection, tmp_path: Path) -> None:
    (tmp_path / "images" / "base_01.jpg").write_bytes(b"\xff\xd8\xff garbage")  # after the scan: a decode failure
    (tmp_path / "images" / "base_02.jpg").unlink()  # deleted after the scan
    with pytest.raises(FeatureError, match="failed"):
        col.compute_features(progress=False, skip_failures=False)
    stages = {(r[0], r[1]) for r in _failures(col)}
    ids = {r[1]: int(r[0]) for r in col.db.query("SELECT id, filename FROM images")}
    assert (ids["base_01.jpg"], "decode") in stages
    assert (ids["base_02.jpg"], "decode") in stages
    assert len(col.features_df("hashes")) == 9  # the others were written
    status = dict(col.db.query("SELECT filename, status FROM images"))
    assert status["base_01.jpg"] == "corrupt"
    rep = col.compute_features(progress=False)  # corrupt images are not active any more: nothing new fails
    assert not [f for f in rep.failures if f[2] == "decode"]


def test_exif_pass_records_unreadable_files(col: imagerank.Collection, tmp_path: Path) -> None:
    (tmp_path / "images" / "base_02.jpg").unlink()
    rep = col.compute_features(hashes=False, quality=False, progress=False)
    assert rep.computed == {"exif": 10}
    assert [(f[2], "No such file" in f[3]) for f in rep.failures] == [("exif", True)]
    assert [r[1] for r in _failures(col)] == ["exif"]


def test_extractor_failure_is_recorded_and_others_kept(col: imagerank.Collection,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(rgb: Image.Image, job: thumbnails.DecodeJob) -> dict:
        raise RuntimeError("quality exploded")

    monkeypatch.setitem(registry.FEATURES, "quality", dataclasses.replace(registry.get_feature("quality"),
                                                                          extractor=broken))
    rep = col.compute_features(exif=False, progress=False)
    assert rep.computed == {"hashes": 11, "quality": 0}
    assert len(rep.failures) == 11
    assert {f[2] for f in rep.failures} == {"quality"}
    assert all("quality exploded" in r[2] for r in _failures(col))


def test_unknown_sidecar_and_empty_reads(col: imagerank.Collection) -> None:
    assert len(col.features_df("quality")) == 0
    with pytest.raises(FeatureError):
        col.features_df("../../etc")
    with pytest.raises(FeatureError, match="no embeddings"):
        col.embeddings()
    with pytest.raises(FeatureError, match="no hashes"):
        col.near_duplicates()
