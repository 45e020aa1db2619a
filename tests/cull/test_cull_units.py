"""Units of the cull: the JPEG scan, sequence tags, the sharpest region, the face check, XMP names, the pool."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagerank.cull import cull
from imagerank.cull import extract as extract_mod
from imagerank.cull.metadata import exiftool_preview_bytes, sequence_of
from imagerank.cull.preview import find_preview, jpeg_streams, largest_jpeg
from imagerank.cull.xmp import sidecar_path, write_xmp
from imagerank.errors import ImagerankError

from .conftest import shot


def _jpeg(w: int, h: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def test_the_jpeg_scan_finds_every_complete_stream_and_takes_the_largest_that_decodes() -> None:
    small, big = _jpeg(96, 64, 1), _jpeg(320, 200, 2)
    broken = _jpeg(640, 480, 3)[:5000]  # a larger stream cut short: never chosen
    blob = b"\x00" * 100 + small + b"RAWDATA" * 50 + big + b"\xff\xd8\xff\x00junk" + broken + b"\x11" * 64
    streams = jpeg_streams(blob)
    assert [(w, h) for _, _, w, h in streams] == [(96, 64), (320, 200)]
    start, end, _, _ = streams[1]
    assert blob[start:end] == big
    data, what = largest_jpeg(blob)
    assert data == big
    assert "320x200" in what
    assert largest_jpeg(_jpeg(8, 8))[0] is None  # a stub under 64 px is no preview
    assert largest_jpeg(b"no jpeg here")[1] == "no JPEG stream in the file"
    p = find_preview("x.nef", blob, use_exiftool=False)
    assert p.source == "jpeg_scan"
    assert p.data == big
    assert p.tried[0].startswith("rawpy:")


def test_sequence_tags() -> None:
    assert sequence_of({"ExposureMode": 2}) == ("exposure_bracket", "ExposureMode=2")
    assert sequence_of({"ExposureMode": 0, "AEBBracketValue": 0, "BracketMode": "Off"}) == (None, None)
    assert sequence_of({"AEBBracketValue": "+2/3"})[0] == "exposure_bracket"
    assert sequence_of({"DriveMode": "Focus Bracketing"})[0] == "focus_stack"
    assert sequence_of({"FocusStackingMode": "On"})[0] == "focus_stack"
    assert sequence_of({"PanoramaDirection": "Left to Right"})[0] == "panorama"
    # settings recorded on every frame say nothing
    assert sequence_of({"BracketStep": "1/3 EV", "AutoBracketOrder": "0,-,+", "BracketSet": "AE"}) == (None, None)
    assert sequence_of({"ShootingMode": "Aperture-priority AE", "DriveMode": "Single-frame Shooting"}) == (None, None)
    assert exiftool_preview_bytes({"PreviewImage": "(Binary data 389456 bytes, use -b option to extract)",
                                   "ThumbnailImage": "(Binary data 16008 bytes, use -b option to extract)"}) == 389456
    assert exiftool_preview_bytes({"Make": "Canon"}) == 0


def test_sharpest_region_and_saliency() -> None:
    a = np.full((200, 200), 128, np.uint8)
    rng = np.random.default_rng(0)
    a[150:200, 0:50] = rng.integers(0, 255, (50, 50))  # detail in the bottom-left cell only
    r = extract_mod.sharpest_region(Image.fromarray(a))
    assert r["sharp_x"] < 0.05
    assert r["sharp_y"] > 0.7
    assert r["saliency"] > 0.9
    flat = extract_mod.sharpest_region(Image.fromarray(np.full((50, 50), 9, np.uint8)))
    assert flat["saliency"] == 0.0
    assert extract_mod.sharpest_region(Image.new("L", (2, 2)))["sharp_w"] == 1.0


def test_the_face_check_runs_from_the_wheel_and_says_when_it_cannot_tell(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("cv2")
    assert extract_mod.faces_and_eyes(Image.new("L", (256, 256), 128)) == (0, None)
    d = tmp_path / "shoot"
    shot(d / "a.jpg", 1, "2024:01:01 10:00:00")
    df = cull(d, None, faces=True, workers=1, use_exiftool=False)
    assert df["faces"].iloc[0] == 0
    assert df["eyes_closed"].isna().iloc[0]
    import cv2

    monkeypatch.setattr(cv2.data, "haarcascades", str(tmp_path) + "/", raising=False)
    monkeypatch.setattr(extract_mod, "_CASCADES", {})
    with pytest.raises(ImagerankError, match="cascade"):
        extract_mod.faces_and_eyes(Image.new("L", (64, 64)))
    with pytest.raises(ImagerankError, match="cascade"):  # said once, before any file is read
        cull(d, None, faces=True, workers=1, use_exiftool=False)


def test_the_face_check_without_opencv_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 raises ImportError
    monkeypatch.setattr(extract_mod, "_CASCADES", {})
    shot(tmp_path / "a.jpg", 1, "2024:01:01 10:00:00")
    with pytest.raises(ImagerankError, match=r"imagerank\[cull\]"):
        cull(tmp_path, None, faces=True, workers=1, use_exiftool=False)


def test_xmp_names_for_raw_and_other_files(tmp_path: Path) -> None:
    nef = tmp_path / "DSC_0001.NEF"
    nef.write_bytes(b"x")
    assert sidecar_path(nef, raw=True) == tmp_path / "DSC_0001.xmp"  # Adobe's name
    (tmp_path / "DSC_0001.NEF.xmp").write_text("<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF "
                                               "xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'/>"
                                               "</x:xmpmeta>")
    assert sidecar_path(nef, raw=True) == tmp_path / "DSC_0001.NEF.xmp"  # darktable's, already there
    dest = write_xmp(nef, "best", raw=True)
    assert dest == tmp_path / "DSC_0001.NEF.xmp"
    text = dest.read_text()
    assert 'xmp:Rating="5"' in text
    assert 'xmp:Label="Green"' in text
    assert sidecar_path(tmp_path / "a.jpg", raw=False) == tmp_path / "a.jpg.xmp"
    with pytest.raises(ImagerankError, match="bucket"):
        write_xmp(nef, "keeper", raw=True)


def test_the_process_pool_gives_the_same_manifest(tmp_path: Path) -> None:
    d = tmp_path / "shoot"
    for i in range(26):  # 24 files or more go to the process pool
        shot(d / f"IMG_{i:02d}.jpg", i % 9, f"2024:01:01 10:00:{i:02d}", f"{i * 3 % 100:02d}")
    one = cull(d, tmp_path / "one", workers=1, use_exiftool=False)
    two = cull(d, tmp_path / "two", workers=2, use_exiftool=False)
    assert len(one) == 26
    assert two.attrs["cull"]["extracted"] == 26
    assert one["cluster_size"].max() > 1
    assert (tmp_path / "one" / "manifest.jsonl").read_bytes() == (tmp_path / "two" / "manifest.jsonl").read_bytes()


def test_a_raw_and_jpeg_pair_is_one_shot(tmp_path: Path) -> None:
    d = tmp_path / "shoot"
    jpg = shot(d / "DSC_0001.JPG", 1, "2024:01:01 10:00:00")
    # the RAW file: a stripped header that embeds the camera's JPEG as its preview
    (d / "DSC_0001.NEF").write_bytes(b"\x00" * 512 + jpg.read_bytes() + b"\x00" * 64)
    shot(d / "DSC_0002.JPG", 1, "2024:01:01 10:00:01", shift=1)  # a near-duplicate frame of the burst
    df = cull(d, tmp_path / "out", workers=1, use_exiftool=False)
    r = {p: x for p, x in zip(df["path"], df.to_dict("records"))}
    nef, one = r["DSC_0001.NEF"], r["DSC_0001.JPG"]
    assert nef["status"] == "ok"
    assert nef["preview_source"] == "jpeg_scan"
    assert next(x for x in nef["reasons"] if x["code"] == "companion")["ref"] == "DSC_0001.JPG"
    assert nef["bucket"] == one["bucket"]
    assert nef["cluster_id"] == one["cluster_id"]
    assert nef["is_pick"] == one["is_pick"]
    assert "near_duplicate" not in {x["code"] for x in nef["reasons"]}
    assert one["burst_size"] == 2  # the two frames, not three files
    assert (tmp_path / "out" / nef["export_path"]).exists()


def test_hash_image_computes_only_the_kinds_asked() -> None:
    from imagerank.errors import InvalidArgumentError
    from imagerank.features.hashing import hash_image

    im = Image.open(io.BytesIO(_jpeg(300, 200, 5)))
    full = hash_image(im)
    part = hash_image(im, ("phash", "dhash"))
    assert part == {"phash": full["phash"], "dhash": full["dhash"]}
    with pytest.raises(InvalidArgumentError, match="kinds"):
        hash_image(im, ("ahash",))
