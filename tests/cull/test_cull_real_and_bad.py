"""The cull on real data (../shared/data: camera JPEGs with bursts, every RAW sample) and on bad input."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from imagerank.cull import cull
from imagerank.cull import extract as extract_mod
from imagerank.cull import preview as preview_mod

from .conftest import SHARED, shot

RAW = SHARED / "raw"
PHOTOS = SHARED / "photos" / "exif-samples"
needs_raw = pytest.mark.skipif(not RAW.is_dir(), reason="../shared/data/raw is absent")
needs_photos = pytest.mark.skipif(not PHOTOS.is_dir(), reason="../shared/data/photos is absent")

# what each sample must end with (README of ../shared/data/raw): a preview where one is embedded, else metadata only
_WITH_PREVIEW = {"Canon-R6-pruned.CR3": 1620, "nikon_z_9_high_efficiency_compressed_dx_cropped_max_overexposed.dng":
                 640, "exiv2-canon-powershot-s40.crw": 160, "FujiFilm.raf": 160}


def _codes(reasons: list[dict[str, object]]) -> set[object]:
    return {x["code"] for x in reasons}


@needs_raw
@pytest.mark.parametrize("exiftool", [False, True], ids=["no-exiftool", "exiftool"])
def test_every_raw_sample_ends_with_a_status(exiftool: bool) -> None:
    if exiftool and preview_mod.exiftool_path() is None:
        pytest.skip("exiftool is not on PATH")
    df = cull(RAW, None, workers=1, use_exiftool=exiftool)
    samples = sorted(p.name for p in RAW.rglob("*") if p.is_file() and p.suffix != ".md")
    assert sorted(p.split("/")[-1] for p in df["path"]) == samples
    for r in df.to_dict("records"):
        name = r["path"].split("/")[-1]
        assert r["status"] in ("ok", "metadata_only"), (name, r["status"], r["reasons"])
        assert r["bucket"] is not None
        if name in _WITH_PREVIEW:
            assert r["status"] == "ok", (name, r["reasons"])
            assert r["width"] == _WITH_PREVIEW[name], name
            assert r["preview_source"] in ("rawpy", "exiftool", "jpeg_scan")
        else:
            assert r["status"] == "metadata_only", name
            assert r["bucket"] == "maybe"
            why = next(x for x in r["reasons"] if x["code"] == "no_preview")
            assert "rawpy" in why["message"]
            assert "jpeg_scan" in why["message"]
    if exiftool:  # exiftool reads the capture time of every sample, CR3 / RAF / CRW / ARW included
        assert df["capture_time_source"].eq("DateTimeOriginal").all()
        r6 = df[df["path"].str.endswith("Canon-R6-pruned.CR3")].iloc[0]
        assert r6["camera_model"] == "Canon EOS R6"
        assert r6["capture_time"].microsecond == 920000
    else:  # Pillow reads the TIFF-based ones; the others fall back to the mtime and say so
        for r in df.to_dict("records"):
            if r["capture_time_source"] == "mtime":
                assert "time_from_mtime" in _codes(r["reasons"])
        assert (df["capture_time_source"] == "DateTimeOriginal").sum() >= 5
    z9 = df[df["path"].str.contains("nikon_z_9")].iloc[0]
    assert z9["capture_time_source"] == "DateTimeOriginal"
    assert z9["capture_time"].microsecond == 270000  # SubSecTimeOriginal
    assert z9["camera_model"] == "NIKON Z 9"


@needs_raw
def test_the_r6_preview_comes_from_the_jpeg_scan_without_exiftool() -> None:
    buf = (RAW / "exiv2" / "Canon-R6-pruned.CR3").read_bytes()
    p = preview_mod.find_preview("x.CR3", buf, use_exiftool=False)
    assert p.source == "jpeg_scan"
    assert p.data is not None
    assert len(p.data) == 389_450  # the PRVW stream, not the 160x120 THMB one
    streams = preview_mod.jpeg_streams(buf)
    assert (18288, 18288 + 16005, 160, 120) in streams


@needs_photos
def test_real_bursts_in_the_exif_samples() -> None:
    df = cull(PHOTOS, None, workers=1, use_exiftool=False)
    r = {p.split("/")[-1]: x for p, x in zip(df["path"], df.to_dict("records"))}
    no, yes = r["iphone_hdr_NO.jpg"], r["iphone_hdr_YES.jpg"]
    assert no["burst_id"] == yes["burst_id"]  # the iPhone 2-frame burst, same second
    assert no["burst_size"] == 2
    assert no["cluster_id"] == yes["cluster_id"]
    assert {no["is_pick"], yes["is_pick"]} == {True, False}
    gps = df[df["path"].str.contains("/gps/")]
    assert len(gps) == 9
    assert gps["body"].nunique() == 1  # the Nikon GPS series: one body
    assert gps["capture_time_source"].eq("DateTimeOriginal").all()
    assert df["bucket"].notna().all()
    assert (df["status"] == "ok").all()


def test_bad_input_each_ends_with_a_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "shoot"
    good = shot(d / "good.jpg", 1, "2024:01:01 10:00:00")
    (d / "empty.jpg").write_bytes(b"")
    (d / "truncated.jpg").write_bytes(good.read_bytes()[:600])
    (d / "garbage.jpg").write_bytes(b"this is not a JPEG at all" * 40)
    (d / "a_png.jpg").write_bytes(b"")  # replaced below: a PNG named .jpg decodes (wrong extension is fine)
    from PIL import Image

    Image.new("RGB", (64, 48), (200, 30, 30)).save(d / "a_png.jpg", "PNG")
    (d / "fake.nef").write_bytes(b"\x00" * 4096)
    locked = shot(d / "locked.jpg", 2, "2024:01:01 11:00:00")
    doomed = shot(d / "doomed.jpg", 3, "2024:01:01 12:00:00")
    os.chmod(locked, 0)
    odd = os.path.join(os.fsencode(d), b"caf\xe9.jpg")  # a Latin-1 name: not valid UTF-8
    with open(odd, "wb") as f:
        f.write(good.read_bytes())
    real = extract_mod.extract_one

    def delete_mid_run(job: extract_mod.ExtractJob) -> dict[str, object]:
        if job.path == "doomed.jpg":
            doomed.unlink()
        return real(job)

    monkeypatch.setattr("imagerank.cull.pipeline.extract_one", delete_mid_run)
    try:
        df = cull(d, tmp_path / "out", workers=1, use_exiftool=False)
    finally:
        os.chmod(locked, 0o644)
    s = dict(zip(df["path"], df["status"]))
    assert s["good.jpg"] == "ok"
    assert s["empty.jpg"] == "empty"
    assert s["truncated.jpg"] == "corrupt"
    assert s["garbage.jpg"] == "corrupt"
    assert s["a_png.jpg"] == "ok"
    assert s["fake.nef"] == "metadata_only"
    assert s["doomed.jpg"] == "missing"
    assert s["caf\\xe9.jpg"] == "unreadable"  # listed under its shown name, with the reason
    if os.geteuid() != 0:  # root reads any file
        assert s["locked.jpg"] == "unreadable"
    for r in df.to_dict("records"):
        assert r["reasons"], r["path"]
        if r["status"] in ("empty", "corrupt", "missing", "unreadable"):
            assert r["bucket"] is None
            assert r["status"] in _codes(r["reasons"])
    manifest = (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()
    assert len(manifest) == len(df)


def test_a_file_deleted_before_its_export_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "shoot"
    shot(d / "a.jpg", 1, "2024:01:01 10:00:00")
    b = shot(d / "b.jpg", 2, "2024:01:01 11:00:00")
    import imagerank.cull.pipeline as pipe

    real = pipe.run_passes

    def passes_then_delete(recs, cfg):
        real(recs, cfg)
        b.unlink()

    monkeypatch.setattr(pipe, "run_passes", passes_then_delete)
    df = cull(d, tmp_path / "out", workers=1, use_exiftool=False)
    row = df.set_index("path").loc["b.jpg"]
    assert row["export_method"] == "failed"
    assert "export_failed" in _codes(row["reasons"])


def test_inside_a_workspace_its_settings_and_cache_are_used(tmp_path: Path) -> None:
    import imagerank

    ws = tmp_path / "ws"
    d = tmp_path / "shoot"
    shot(d / "a.jpg", 1, "2024:01:01 10:00:00")
    shot(d / "b.jpg", 1, "2024:01:01 10:00:05", shift=1)
    imagerank.init(ws, str(d), burst_gap_s=10.0).close()
    df = cull(d, None, workspace=ws, workers=1, use_exiftool=False)
    assert df["burst_id"].nunique() == 1  # 5 s apart: one burst with the workspace's 10 s
    assert (ws / "cache" / "cull.sqlite").is_file()
    assert cull(d, None, workers=1, use_exiftool=False)["burst_id"].nunique() == 2
    with imagerank.open(ws) as col:  # the facade's verb: the workspace's folder, settings and cache
        again = col.cull(workers=1, use_exiftool=False)
    assert again["burst_id"].nunique() == 1
    assert again.attrs["cull"]["cached"] == 2
    shutil.rmtree(ws / "cache")


@needs_photos
@needs_raw
def test_done_when_the_whole_shared_data_folder_is_culled(tmp_path: Path) -> None:
    """The issue's check: photos and RAW together, every file in a bucket or with the reason why not."""
    import json

    from imagerank.cli import main

    assert main(["cull", str(SHARED), "--out-dir", str(tmp_path / "out"), "--no-progress", "--workers", "1"]) == 0
    lines = [json.loads(x) for x in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    files = [p for p in SHARED.rglob("*") if p.is_file() and p.suffix.lower() in
             {".jpg", ".jpeg", ".tif", ".tiff", ".png"} | {p.suffix.lower() for p in RAW.rglob("*.*")} - {".md"}]
    assert len(lines) == len(files)
    for r in lines:
        assert r["reasons"], r["path"]
        if r["bucket"] is None:
            assert r["status"] not in ("ok", "metadata_only"), r["path"]
        else:
            assert (tmp_path / "out" / r["export_path"]).exists(), r["path"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["files"] == len(lines)
