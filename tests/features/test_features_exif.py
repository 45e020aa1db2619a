"""EXIF parsing: capture time with sub-seconds and offset, camera fields, malformed values, real camera files."""

from __future__ import annotations

import warnings
from datetime import datetime, timezone
from pathlib import Path

import pytest
from features_support import EXIF_SAMPLES, base_image
from PIL import ExifTags, Image, TiffImagePlugin

from imagerank.features.exif import EXIF_COLUMNS, parse_exif_datetime, parse_offset, read_exif


def _write(path: Path, ifd0: dict[int, object], sub: dict[int, object]) -> Path:
    ex = Image.Exif()
    for k, v in ifd0.items():
        ex[k] = v
    ifd = ex.get_ifd(ExifTags.IFD.Exif)
    for k, v in sub.items():
        ifd[k] = v
    base_image(0, 40, 30).save(path, exif=ex, quality=85)
    return path


def test_parse_datetime_forms() -> None:
    assert parse_exif_datetime("2024:06:01 09:00:05") == (datetime(2024, 6, 1, 9, 0, 5), None)
    assert parse_exif_datetime("2024:06:01 09:00:05", "25") == (datetime(2024, 6, 1, 9, 0, 5, 250000), None)
    assert parse_exif_datetime("2024-06-01T09:00:05.5+02:00") == (datetime(2024, 6, 1, 9, 0, 5, 500000), 120)
    assert parse_exif_datetime("2024:06:01 09:00:05\x00") == (datetime(2024, 6, 1, 9, 0, 5), None)
    assert parse_exif_datetime("0000:00:00 00:00:00") is None
    assert parse_exif_datetime("    :  :     :  :  ") is None
    with pytest.raises(ValueError, match="not a valid date-time"):
        parse_exif_datetime("2024:13:45 09:00:05")
    with pytest.raises(ValueError, match="not an EXIF date-time"):
        parse_exif_datetime("yesterday")
    with pytest.raises(ValueError, match="SubSecTime"):
        parse_exif_datetime("2024:06:01 09:00:05", "ab")


def test_parse_offset() -> None:
    assert parse_offset("+02:00") == 120
    assert parse_offset("-0530") == -330
    assert parse_offset("Z") == 0
    assert parse_offset(None) is None
    for bad in ("+25:00", "2 hours", "+02:75"):
        with pytest.raises(ValueError):
            parse_offset(bad)


def test_full_capture_time_and_camera(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "a.jpg",
        {0x010F: "ACME\x00", 0x0110: "Shooter 9", 0x0112: 6},
        {0x9003: "2024:06:01 09:00:05", 0x9291: "125", 0x9011: "+02:00", 0x8827: 400,
         0x829A: TiffImagePlugin.IFDRational(1, 250), 0x829D: TiffImagePlugin.IFDRational(28, 10),
         0x920A: TiffImagePlugin.IFDRational(50, 1), 0xA434: "50mm F1.8"},
    )
    r = read_exif(str(p))
    assert set(r) == set(EXIF_COLUMNS)
    assert r["has_exif"]
    assert r["exif_errors"] is None
    assert r["captured_at"] == datetime(2024, 6, 1, 9, 0, 5, 125000)
    assert r["utc_offset_min"] == 120
    assert r["captured_at_utc"] == datetime(2024, 6, 1, 7, 0, 5, 125000, tzinfo=timezone.utc)
    assert r["capture_time_source"] == "DateTimeOriginal"
    assert (r["make"], r["model"], r["lens_model"]) == ("ACME", "Shooter 9", "50mm F1.8")
    assert r["iso"] == 400
    assert r["exposure_time"] == pytest.approx(0.004)
    assert r["f_number"] == pytest.approx(2.8)
    assert r["focal_length"] == 50.0
    assert r["orientation"] == 6
    assert (r["datetime_original_raw"], r["subsec_original_raw"], r["offset_original_raw"]) == (
        "2024:06:01 09:00:05", "125", "+02:00")


def test_malformed_fields_are_reported_not_raised(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "bad.jpg",
        {0x0112: 42, 0x0132: "2020:01:01 00:00:00"},
        {0x9003: "2024:02:30 25:61:00", 0x9291: "xx", 0x9011: "+99:00", 0x829D: TiffImagePlugin.IFDRational(1, 0)},
    )
    r = read_exif(str(p))
    assert r["orientation"] is None
    errors = r["exif_errors"]
    assert "orientation" in errors
    assert "DateTimeOriginal" in errors
    assert "f_number" in errors
    # the next source of a capture time is used, and said so
    assert r["capture_time_source"] == "DateTime"
    assert r["captured_at"] == datetime(2020, 1, 1)


def test_future_capture_time_is_kept_and_flagged(tmp_path: Path) -> None:
    p = _write(tmp_path / "f.jpg", {}, {0x9003: "2099:01:01 00:00:00"})
    r = read_exif(str(p), now=datetime(2025, 1, 1, tzinfo=timezone.utc))
    assert r["captured_at"] == datetime(2099, 1, 1)
    assert r["captured_in_future"]
    assert "future" in r["exif_errors"]


def test_no_exif_and_not_an_image(tmp_path: Path) -> None:
    base_image(0).save(tmp_path / "plain.png")
    r = read_exif(str(tmp_path / "plain.png"))
    assert not r["has_exif"]
    assert r["captured_at"] is None
    assert r["exif_errors"] is None
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00garbage")
    r = read_exif(str(tmp_path / "junk.jpg"))
    assert not r["has_exif"]
    assert r["exif_errors"]
    with pytest.raises(OSError):
        read_exif(str(tmp_path / "missing.jpg"))


def _truncated_exif(path: Path, keep: int, ifd0: dict[int, object]) -> Path:
    """A JPEG whose EXIF block (``Exif\\0\\0`` + TIFF header + IFD0) is cut after ``keep`` bytes of the IFD."""
    ex = Image.Exif()
    for k, v in ifd0.items():
        ex[k] = v
    raw = ex.tobytes()  # b"Exif\0\0" + 8-byte TIFF header + IFD0
    base_image(0, 40, 30).save(path, exif=raw[:6 + 8 + keep], quality=85)
    return path


def test_malformed_exif_block_is_listed_not_printed(tmp_path: Path) -> None:
    # three short (inline) entries, the third cut off: Pillow says "Corrupt EXIF data" and keeps the first two
    p = _truncated_exif(tmp_path / "cut.jpg", 2 + 12 * 2 + 5, {0x0112: 6, 0x0128: 2, 0x0213: 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning that escaped read_exif would fail here
        r = read_exif(str(p))
    assert r["orientation"] == 6  # what could be read is kept
    assert "exif: Corrupt EXIF data" in r["exif_errors"]
    # a value stored past the end of the cut block: Pillow's "Truncated File Read"
    p = _truncated_exif(tmp_path / "short.jpg", 2 + 12 * 3 + 4, {0x010F: "SomeMaker", 0x0110: "Model X1"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = read_exif(str(p))
    assert r["exif_errors"] is not None
    assert r["exif_errors"].startswith("exif: ")


# ---------------------------------------------------------------------------------------------- real files
def _samples() -> Path:
    d = EXIF_SAMPLES / "jpg"
    if not d.is_dir():
        pytest.skip(f"real EXIF samples not present at {d}")
    return d


def test_every_real_sample_parses_without_raising() -> None:
    files = sorted(p for p in _samples().rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    assert len(files) > 50
    rows = [read_exif(str(p)) for p in files]
    assert all(set(r) == set(EXIF_COLUMNS) for r in rows)
    assert sum(r["captured_at"] is not None for r in rows) > 40


def test_real_edge_cases() -> None:
    d = _samples()
    fut = read_exif(str(d / "WWL_(Polaroid)_ION230.jpg"), now=datetime(2025, 1, 1, tzinfo=timezone.utc))
    assert fut["captured_in_future"]
    assert fut["captured_at"].year > 2025
    no, yes = read_exif(str(d / "hdr" / "iphone_hdr_NO.jpg")), read_exif(str(d / "hdr" / "iphone_hdr_YES.jpg"))
    assert no["captured_at"].replace(microsecond=0) == yes["captured_at"].replace(microsecond=0)
    assert 0 < (yes["captured_at"] - no["captured_at"]).total_seconds() < 1  # sub-seconds order the burst
    assert read_exif(str(d / "mobile" / "HMD_Nokia_8.3_5G.jpg"))["utc_offset_min"] == 180
    broken_pointer = read_exif(str(d / "tests" / "30-type_error.jpg"))
    assert "sub-IFD pointer" in broken_pointer["exif_errors"]
    assert read_exif(str(d / "corrupted.jpg"))["make"]
    for p in sorted((d / "invalid").glob("*.jpg")) + sorted((d / "tests").glob("*.jp*g")):
        read_exif(str(p))  # never raises
    assert [read_exif(str(d / "orientation" / f"landscape_{k}.jpg"))["orientation"] for k in range(1, 9)] == list(
        range(1, 9))


def test_real_broken_exif_never_prints_a_warning() -> None:
    d = _samples()
    files = [*sorted((d / "invalid").glob("*.jpg")), d / "corrupted.jpg"]
    for p in files:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # Pillow's warnings are listed in exif_errors, never printed
            r = read_exif(str(p))
        assert set(r) == set(EXIF_COLUMNS), p
        assert r["exif_errors"] is None or all(e.strip() for e in r["exif_errors"].split(";")), p
