"""The cull on generated shoots: bursts, clusters, picks, buckets, reasons, determinism, cache, export, XMP, CLI."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from imagerank.cli import main
from imagerank.cull import IR_COLUMNS, cull
from imagerank.errors import ImagerankError, InvalidArgumentError

from .conftest import shot


def _by_path(df):
    return {p.split("/")[-1]: r for p, r in zip(df["path"], df.to_dict("records"))}


def _codes(r) -> set[str]:
    return {x["code"] for x in r["reasons"]}


def test_bursts_clusters_picks_and_buckets(shoot: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shot(shoot / "DCIM" / "Z_0001.JPG", 8, "2024:06:01 11:00:00", blur=True)
    df = cull(shoot, out, workers=1, use_exiftool=False)
    assert list(df.columns) == [n for n, _ in IR_COLUMNS]
    r = _by_path(df)
    # one burst for A_0001..3 (sub-second gaps, one body); the other body's frame at the same time is not in it
    assert r["A_0001.JPG"]["burst_id"] == r["A_0002.JPG"]["burst_id"] == r["A_0003.JPG"]["burst_id"]
    assert r["A_0001.JPG"]["burst_size"] == 3
    assert r["B_0001.JPG"]["burst_id"] != r["A_0001.JPG"]["burst_id"]
    assert r["A_0004.JPG"]["burst_id"] != r["A_0001.JPG"]["burst_id"]
    assert r["A_0001.JPG"]["capture_time"].microsecond == 100000
    assert r["A_0001.JPG"]["capture_time_source"] == "DateTimeOriginal"
    # the two sharp frames are near-duplicates: one pick, the other trash with the pick as ref
    a1, a2 = r["A_0001.JPG"], r["A_0002.JPG"]
    assert a1["cluster_id"] == a2["cluster_id"]
    pick, other = (a1, a2) if a1["is_pick"] else (a2, a1)
    assert pick["score"] >= other["score"]
    assert other["bucket"] == "trash"
    near = next(x for x in other["reasons"] if x["code"] == "near_duplicate")
    assert near["ref"] == pick["path"]
    assert near["threshold"] == 6
    assert "burst_pick" in _codes(pick)
    assert pick["bucket"] in ("best", "good")
    # the blurred frame of the burst is a near-duplicate with a lower score
    soft = r["A_0003.JPG"]
    assert soft["bucket"] == "trash"
    assert soft["score_sharpness"] < pick["score_sharpness"]
    # a blurred frame alone: trashed as blurry, with the measured value and the threshold
    blurry = r["Z_0001.JPG"]
    assert blurry["bucket"] == "trash"
    why = next(x for x in blurry["reasons"] if x["code"] == "blurry")
    assert why["value"] < why["threshold"] == 15.0
    # the exact copy: trash, pointing at the first path
    assert r["copy_of_A_0004.JPG"]["exact_duplicate_of"] == "DCIM/A_0004.JPG"
    assert r["copy_of_A_0004.JPG"]["bucket"] == "trash"
    # every file has a bucket and a reason; the score is the sum of its parts
    assert df["bucket"].notna().all()
    assert all(len(x) for x in df["reasons"])
    parts = [c for c in df.columns if c.startswith("score_")]
    ok = df[df["score"].notna()]
    assert (ok[parts].sum(axis=1) - ok["score"]).abs().max() < 1e-9
    # the artifacts
    summary = json.loads((out / "summary.json").read_text())
    assert summary["weights"]["sharpness"] == 1.0
    assert summary["thresholds"]["cull_dedupe_hamming"] == 6
    assert sum(summary["buckets"].values()) == len(df)
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(x)["path"] for x in lines] == list(df["path"])
    kept = (out / "export.txt").read_text().splitlines()
    assert kept == [str(shoot / p) for b in ("best", "good") for p in df.loc[df["bucket"] == b, "path"]]
    for _, row in df.iterrows():
        dest = out / row["export_path"]
        assert dest.exists()
        assert os.path.samefile(dest, shoot / row["path"])  # hard links
        assert row["export_method"] == "hardlink"


def test_same_input_gives_a_byte_identical_manifest_and_the_cache_redoes_only_changed_files(
        shoot: Path, tmp_path: Path) -> None:
    out, cache = tmp_path / "out", tmp_path / "c.sqlite"
    first = cull(shoot, out, cache=cache, workers=1, use_exiftool=False)
    m1 = (out / "manifest.jsonl").read_bytes()
    s1 = (out / "summary.json").read_bytes()
    again = cull(shoot, out, cache=cache, workers=1, use_exiftool=False)
    assert (out / "manifest.jsonl").read_bytes() == m1
    assert (out / "summary.json").read_bytes() == s1
    assert again.attrs["cull"] == {"extracted": 0, "cached": len(first), "walk_errors": []}
    # without the cache: the same manifest, everything read again
    cold = cull(shoot, out, workers=1, use_exiftool=False)
    assert cold.attrs["cull"]["extracted"] == len(first)
    assert (out / "manifest.jsonl").read_bytes() == m1
    # one file changes: only it is read again; a new file is read
    shot(shoot / "DCIM" / "A_0004.JPG", 5, "2024:06:01 10:00:10", "00")
    shot(shoot / "DCIM" / "C_0001.JPG", 7, "2024:06:01 11:00:00", "00")
    inc = cull(shoot, out, cache=cache, workers=1, use_exiftool=False)
    assert inc.attrs["cull"]["extracted"] == 2
    assert inc.attrs["cull"]["cached"] == len(first) - 1
    r = _by_path(inc)
    assert r["copy_of_A_0004.JPG"]["exact_duplicate_of"] is None  # no longer a copy
    # never overwritten: the old export of A_0004 is still the old file; the new one got another name
    assert r["A_0004.JPG"]["export_path"] != _by_path(first)["A_0004.JPG"]["export_path"] or (
        os.path.samefile(out / r["A_0004.JPG"]["export_path"], shoot / "DCIM" / "A_0004.JPG"))


def test_brackets_are_never_near_duplicates(tmp_path: Path) -> None:
    d = tmp_path / "shoot"
    for i, (ev, sub) in enumerate(((-1.0, "10"), (0.0, "30"), (1.0, "50"))):
        shot(d / f"BKT_{i}.JPG", 4, "2024:06:01 12:00:00", sub, bias=ev, mode=2)
    df = cull(d, None, workers=1, use_exiftool=False)
    assert set(df["sequence_kind"]) == {"exposure_bracket"}
    assert df["cluster_id"].nunique() == 3  # same scene, never clustered
    assert df["burst_id"].nunique() == 1
    assert sorted(df["exposure_compensation_ev"]) == [-1.0, 0.0, 1.0]
    assert (df["exposure_mode"] == "auto_bracket").all()
    assert all("sequence_member" in _codes(r) for r in df.to_dict("records"))
    assert "near_duplicate" not in {c for r in df.to_dict("records") for c in _codes(r)}
    # the same frames without the EXIF bracket mode are near-duplicates
    for i, sub in enumerate(("10", "30", "50")):
        shot(d / f"BKT_{i}.JPG", 4, "2024:06:01 12:00:00", sub)
    plain = cull(d, None, workers=1, use_exiftool=False)
    assert plain["cluster_id"].nunique() == 1


def test_hardlink_across_devices_falls_back_to_copy_per_file(shoot: Path, tmp_path: Path) -> None:
    calls: list[str] = []

    def exdev(src: str, dest: Path) -> None:
        calls.append(src)
        if src.endswith("A_0004.JPG"):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        os.link(src, dest)

    out = tmp_path / "out"
    df = cull(shoot, out, workers=1, use_exiftool=False, link=exdev)
    r = _by_path(df)
    a4 = r["A_0004.JPG"]
    assert a4["export_method"] == "copy_fallback"
    assert "copied_across_devices" in _codes(a4)
    assert not os.path.samefile(out / a4["export_path"], shoot / a4["path"])
    assert (out / a4["export_path"]).read_bytes() == (shoot / a4["path"]).read_bytes()
    assert r["A_0001.JPG"]["export_method"] == "hardlink"
    # a re-run finds the copy in place: same method, same manifest, nothing written twice
    m1 = (out / "manifest.jsonl").read_bytes()
    cull(shoot, out, workers=1, use_exiftool=False, link=exdev)
    assert (out / "manifest.jsonl").read_bytes() == m1
    assert not list((out / r["A_0004.JPG"]["export_path"]).parent.glob("A_0004-*"))


@pytest.mark.parametrize("mode", ["symlink", "copy"])
def test_symlink_and_copy_exports_never_overwrite(shoot: Path, tmp_path: Path, mode: str) -> None:
    out = tmp_path / "out"
    df = cull(shoot, out, export=mode, workers=1, use_exiftool=False)
    row = df[df["bucket"] == "best"].iloc[0]
    dest = out / row["export_path"]
    assert dest.is_symlink() == (mode == "symlink")
    assert row["export_method"] == mode
    # a stranger's file where the next run wants to put one: kept, the file goes beside it
    stranger = dest.read_bytes()[:10]
    dest.unlink()
    dest.write_bytes(stranger)
    again = cull(shoot, out, export=mode, workers=1, use_exiftool=False)
    moved = again.set_index("path").loc[row["path"], "export_path"]
    assert moved != row["export_path"]
    assert dest.read_bytes() == stranger


def test_xmp_sidecars_are_written_and_merged(shoot: Path, tmp_path: Path) -> None:
    d = shoot / "DCIM"
    existing = d / "A_0004.JPG.xmp"
    existing.write_text(
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="3"><dc:subject><rdf:Bag><rdf:li>keep me</rdf:li>'
        "</rdf:Bag></dc:subject></rdf:Description></rdf:RDF></x:xmpmeta>", encoding="utf-8")
    (d / "B_0001.JPG.xmp").write_text("<not xml", encoding="utf-8")
    df = cull(shoot, tmp_path / "out", xmp=True, workers=1, use_exiftool=False)
    r = _by_path(df)
    merged = existing.read_text(encoding="utf-8")
    assert "keep me" in merged
    assert "dc:subject" in merged
    rating = {"best": "5", "good": "4", "maybe": "2", "trash": "1"}[r["A_0004.JPG"]["bucket"]]
    assert f'xmp:Rating="{rating}"' in merged
    assert 'xmp:Rating="3"' not in merged
    fresh = (d / "A_0003.JPG.xmp").read_text(encoding="utf-8")
    assert 'xmp:Rating="1"' in fresh
    assert 'xmp:Label="Red"' in fresh
    assert (d / "B_0001.JPG.xmp").read_text(encoding="utf-8") == "<not xml"
    assert "xmp_failed" in _codes(r["B_0001.JPG"])
    before = fresh
    cull(shoot, tmp_path / "out", xmp=True, workers=1, use_exiftool=False)
    assert (d / "A_0003.JPG.xmp").read_text(encoding="utf-8") == before


def test_cli_cull_and_its_errors(shoot: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    rc = main(["cull", str(shoot), "--out-dir", str(out), "--no-progress", "--workers", "1", "--burst-seconds",
               "0.1", "--dedupe-hamming", "4", "--out", str(tmp_path / "list.txt")])
    assert rc == 0
    text = capsys.readouterr().out
    assert "culled 6 files" in text
    assert json.loads((out / "summary.json").read_text())["thresholds"]["burst_gap_s"] == 0.1
    assert (tmp_path / "list.txt").read_text().strip()
    assert main(["cull", str(tmp_path / "nope"), "--out-dir", str(out)]) == 2
    assert "expected a folder" in capsys.readouterr().err
    with pytest.raises(InvalidArgumentError, match="out_dir"):
        cull(shoot, shoot)
    inside = cull(shoot, shoot / "culled", workers=1, use_exiftool=False)  # OUT inside INPUT: never walked
    again = cull(shoot, shoot / "culled", workers=1, use_exiftool=False)
    assert list(inside["path"]) == list(again["path"])
    assert not any(p.startswith("culled/") for p in again["path"])
    with pytest.raises(InvalidArgumentError, match="export"):
        cull(shoot, out, export="move")
    with pytest.raises(InvalidArgumentError, match="extensions"):
        cull(shoot, out, extensions=[])
    with pytest.raises(InvalidArgumentError, match="extensions"):
        cull(shoot, out, extensions=[".jpg,"])
    assert main(["cull", str(shoot), "--out-dir", str(tmp_path / "o2"), "--ext", ".png,.tif", "--no-progress"]) == 0
    assert "culled 0 files" in capsys.readouterr().out
    bad_cache = tmp_path / "cache.sqlite"
    bad_cache.write_text("not a database")
    with pytest.raises(ImagerankError, match="cull cache"):
        cull(shoot, out, cache=bad_cache, workers=1)
