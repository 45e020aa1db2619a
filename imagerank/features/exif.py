"""EXIF with Pillow: capture time (DateTimeOriginal + SubSecTimeOriginal + OffsetTimeOriginal), camera and lens.

Only the file's header is read (``Image.open`` is lazy; no pixels are decoded). Malformed EXIF never fails the
image: every field is parsed on its own, and what could not be parsed is written, one ``field: reason`` per
problem, into the ``exif_errors`` column while the other fields are kept. Pillow's warnings while it reads the
EXIF block (``Corrupt EXIF data``, ``Truncated File Read``, ``Tag data larger than file`` ...) are listed there too
(as ``exif: <warning>``), not printed. Pillow's pixel limit does not apply: no pixel is decoded, so the EXIF of
a 100-megapixel photo is read like any other.

Capture time. EXIF stores the camera's wall-clock time without a zone (``"YYYY:MM:DD HH:MM:SS"``), optionally
with sub-seconds (``SubSecTimeOriginal``, the digits after the decimal point) and, since EXIF 2.31, an offset
from UTC (``OffsetTimeOriginal``, ``"+HH:MM"``). A parquet column has one timestamp type, so the sidecar has:

- ``captured_at``: naive timestamp (microseconds), the wall-clock time as the camera recorded it;
- ``utc_offset_min``: the offset in minutes when recorded, else null;
- ``captured_at_utc``: timezone-aware UTC timestamp, only when the offset is known;
- ``capture_time_source``: which tag gave the time: ``DateTimeOriginal``, else ``DateTimeDigitized``, else
  IFD0 ``DateTime`` (the last file change, a weak stand-in), else null;
- ``captured_in_future``: the time is more than a day after the moment of reading (a camera clock set wrong);
  the value is kept, not dropped;
- the raw strings ``datetime_original_raw``, ``subsec_original_raw``, ``offset_original_raw``.

Camera: ``make``, ``model``, ``lens_make``, ``lens_model`` (strings, stripped of NULs), ``iso`` (int),
``exposure_time`` (seconds), ``f_number``, ``focal_length`` (mm), ``focal_length_35mm`` (mm), ``orientation``
(1–8, null when absent or out of range; the pixels were already turned upright by the decode pass).
"""

from __future__ import annotations

import math
import re
import warnings
from datetime import datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
from PIL import Image, UnidentifiedImageError

from ..errors import InvalidArgumentError
from ..media.decode import pillow_limit_lifted
from .spec import FeatureContext, FeatureSpec, keyed_schema

__all__ = ["EXIF", "EXIF_COLUMNS", "exif_extractor", "parse_exif_datetime", "parse_offset", "read_exif"]

EXIF_IFD = 0x8769
# (column, tag id, where): where "exif" = the Exif sub-IFD (old files put some tags in IFD0; both are tried)
_TAGS: dict[str, int] = {
    "make": 0x010F,
    "model": 0x0110,
    "orientation": 0x0112,
    "datetime": 0x0132,
    "exposure_time": 0x829A,
    "f_number": 0x829D,
    "iso": 0x8827,
    "datetime_original": 0x9003,
    "datetime_digitized": 0x9004,
    "offset_time": 0x9010,
    "offset_original": 0x9011,
    "offset_digitized": 0x9012,
    "focal_length": 0x920A,
    "subsec_time": 0x9290,
    "subsec_original": 0x9291,
    "subsec_digitized": 0x9292,
    "focal_length_35mm": 0xA405,
    "lens_make": 0xA433,
    "lens_model": 0xA434,
}

EXIF_COLUMNS: tuple[str, ...] = (
    "has_exif", "captured_at", "utc_offset_min", "captured_at_utc", "capture_time_source", "captured_in_future",
    "datetime_original_raw", "subsec_original_raw", "offset_original_raw", "make", "model", "lens_make",
    "lens_model", "iso", "exposure_time", "f_number", "focal_length", "focal_length_35mm", "orientation",
    "exif_errors",
)

_DT = re.compile(
    r"^\s*(\d{4})[:\-/.](\d{1,2})[:\-/.](\d{1,2})[ T]+(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?"
    r"(?:[.,](\d+))?\s*(Z|[+-]\d{2}:?\d{2})?\s*$"
)
_OFFSET = re.compile(r"^\s*([+-])(\d{2}):?(\d{2})\s*$")


def _text(value: Any) -> str | None:
    """A tag value as stripped text (bytes decoded as UTF-8, else Latin-1); None when empty."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            value = raw.decode("latin-1")
    if isinstance(value, (tuple, list)):
        value = " ".join(str(v) for v in value)
    s = str(value).replace("\x00", " ").strip()
    return s or None


def parse_offset(value: Any) -> int | None:
    """Minutes east of UTC from an EXIF offset (``"+02:00"``, ``"-0530"``, ``"Z"``).

    Raises:
        InvalidArgumentError (a ValueError): not an offset, or outside -14:00..+14:00.
    """
    s = _text(value)
    if s is None:
        return None
    if s in ("Z", "+00:00", "00:00"):
        return 0
    m = _OFFSET.match(s)
    if not m:
        raise InvalidArgumentError(f"not a UTC offset: {s!r}")
    minutes = int(m.group(2)) * 60 + int(m.group(3))
    if int(m.group(3)) >= 60 or minutes > 14 * 60:
        raise InvalidArgumentError(f"UTC offset out of range: {s!r}")
    return -minutes if m.group(1) == "-" else minutes


def parse_exif_datetime(value: Any, subsec: Any = None) -> tuple[datetime, int | None] | None:
    """Parse an EXIF date-time string plus its sub-second digits.

    Args:
        value: ``"YYYY:MM:DD HH:MM:SS"`` (``-``, ``/`` or ``.`` date separators, an optional fraction and
            offset are accepted too).
        subsec: the SubSecTime tag: decimal digits after the point (``"05"`` = 0.05 s).

    Returns:
        (naive datetime, offset minutes or None), or None when the value is empty or all blanks/zeros
        (``"0000:00:00 00:00:00"``, the EXIF way of saying "unknown").

    Raises:
        InvalidArgumentError (a ValueError): present but not a valid date-time (the message quotes the value).
    """
    s = _text(value)
    if s is None or set(s) <= set("0: -") or set(s) <= set(" :"):
        return None
    m = _DT.match(s)
    if not m:
        raise InvalidArgumentError(f"not an EXIF date-time: {s!r}")
    y, mo, d, hh, mm = (int(m.group(i)) for i in range(1, 6))
    ss = int(m.group(6) or 0)
    try:
        dt = datetime(y, mo, d, hh, mm, min(ss, 59))
    except ValueError as e:
        raise InvalidArgumentError(f"not a valid date-time: {s!r} ({e})") from e
    frac = m.group(7)
    sub = _text(subsec)
    if sub is not None:
        digits = re.sub(r"\D", "", sub)
        if not digits:
            raise InvalidArgumentError(f"SubSecTime is not digits: {sub!r}")
        frac = digits
    if frac:
        dt = dt.replace(microsecond=int((frac + "000000")[:6]))
    offset = parse_offset(m.group(8)) if m.group(8) else None
    return dt, offset


def _number(value: Any) -> float | None:
    """A finite float from an EXIF number (IFDRational, int, (num, den) pair, first of a tuple); None if not."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        if len(value) == 2 and all(isinstance(v, int) for v in value) and value[1] not in (0,):
            value = value[0] / value[1]
        elif value:
            value = value[0]
        else:
            return None
    if isinstance(value, (bytes, bytearray, str)):
        s = _text(value)
        if s is None:
            return None
        value = s.split()[0]
    f = float(value)
    if not math.isfinite(f):
        raise InvalidArgumentError(f"not a finite number: {value!r}")
    return f


def _empty(errors: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(EXIF_COLUMNS)
    row["has_exif"] = False
    row["captured_in_future"] = False
    row["exif_errors"] = "; ".join(errors) if errors else None
    return row


_QUIET = (DeprecationWarning, PendingDeprecationWarning, ResourceWarning)


def _warned(caught: list[warnings.WarningMessage]) -> list[str]:
    """``exif: <message>`` for each distinct warning Pillow gave while reading (deprecations excluded)."""
    out: list[str] = []
    for w in caught:
        if issubclass(w.category, _QUIET):
            continue
        text = f"exif: {' '.join(str(w.message).split())}"[:200]
        if text not in out:
            out.append(text)
    return out


def read_exif(path: str, *, now: datetime | None = None) -> dict[str, Any]:
    """The EXIF row of one file (keys :data:`EXIF_COLUMNS`); malformed EXIF is reported, never raised.

    Args:
        path: the image file.
        now: the moment "future" is judged against (default: now, UTC).

    Raises:
        OSError: only when the file itself cannot be opened or read (missing, permission); an unidentifiable
            or truncated file gives a row with ``exif_errors`` instead.
    """
    with warnings.catch_warnings(record=True) as caught, pillow_limit_lifted():
        warnings.simplefilter("always")
        row = _read_exif(path, now)
    found = _warned(caught)
    if found:
        row["exif_errors"] = "; ".join([*found, *([row["exif_errors"]] if row["exif_errors"] else [])])
    return row


def _read_exif(path: str, now: datetime | None) -> dict[str, Any]:
    """:func:`read_exif` without the warning capture."""
    errors: list[str] = []
    with open(path, "rb") as f:
        try:
            im = Image.open(f)
        except (UnidentifiedImageError, SyntaxError, ValueError, EOFError) as e:
            return _empty([f"file: not an image Pillow can open ({type(e).__name__}: {e})"[:300]])
        except OSError as e:
            return _empty([f"file: {type(e).__name__}: {e}"[:300]])
        with im:
            try:
                ifd0 = im.getexif()
            except Exception as e:  # Pillow raises many types on broken EXIF blocks
                return _empty([f"exif: unreadable EXIF block ({type(e).__name__}: {e})"[:300]])
            try:
                pointer = ifd0.get(EXIF_IFD)
                sub = ifd0.get_ifd(EXIF_IFD)
                if pointer is not None and not isinstance(pointer, int):
                    errors.append(f"exif: the Exif sub-IFD pointer is not an offset ({type(pointer).__name__})")
            except Exception as e:
                sub = {}
                errors.append(f"exif: unreadable Exif sub-IFD ({type(e).__name__}: {e})"[:300])
    row = _empty([])
    row["has_exif"] = bool(len(ifd0) or len(sub))

    def tag(name: str) -> Any:
        tid = _TAGS[name]
        try:
            v = sub.get(tid)
            return ifd0.get(tid) if v is None else v
        except Exception as e:  # a lazily parsed value that breaks on access
            errors.append(f"{name}: {type(e).__name__}: {e}"[:200])
            return None

    for col in ("make", "model", "lens_make", "lens_model"):
        try:
            row[col] = _text(tag(col))
        except Exception as e:
            errors.append(f"{col}: {type(e).__name__}: {e}"[:200])
    for col in ("exposure_time", "f_number", "focal_length", "focal_length_35mm", "iso"):
        raw = tag(col)
        try:
            v = _number(raw)
            if v is not None and v < 0:
                raise InvalidArgumentError(f"negative value {v}")
            if col == "iso" and v is not None:
                row[col] = round(v)
            else:
                row[col] = None if v is None or (v == 0 and col != "focal_length_35mm") else v
        except (TypeError, ValueError, ZeroDivisionError, OverflowError) as e:
            errors.append(f"{col}: cannot parse {raw!r} ({e})"[:200])
    raw_orient = tag("orientation")
    try:
        o = _number(raw_orient)
        if o is not None:
            if int(o) != o or not 1 <= int(o) <= 8:
                raise InvalidArgumentError(f"expected 1..8, got {raw_orient!r}")
            row["orientation"] = int(o)
    except (TypeError, ValueError, OverflowError) as e:
        errors.append(f"orientation: {e}"[:200])

    row["datetime_original_raw"] = _text(tag("datetime_original"))
    row["subsec_original_raw"] = _text(tag("subsec_original"))
    row["offset_original_raw"] = _text(tag("offset_original"))
    for source, dt_tag, sub_tag, off_tag in (
        ("DateTimeOriginal", "datetime_original", "subsec_original", "offset_original"),
        ("DateTimeDigitized", "datetime_digitized", "subsec_digitized", "offset_digitized"),
        ("DateTime", "datetime", "subsec_time", "offset_time"),
    ):
        raw_dt = tag(dt_tag)
        if _text(raw_dt) is None:
            continue
        try:
            parsed = parse_exif_datetime(raw_dt, None)
            if parsed is None:
                errors.append(f"{source}: no date recorded ({_text(raw_dt)!r})")
                continue
            dt, offset = parsed
            try:
                parsed_sub = parse_exif_datetime(raw_dt, tag(sub_tag))
                if parsed_sub is not None:
                    dt = parsed_sub[0]
            except ValueError as e:
                errors.append(f"{sub_tag}: {e}"[:200])
            try:
                off = parse_offset(tag(off_tag))
                offset = off if off is not None else offset
            except ValueError as e:
                errors.append(f"{off_tag}: {e}"[:200])
        except ValueError as e:
            errors.append(f"{source}: {e}"[:200])
            continue
        row["captured_at"] = dt
        row["capture_time_source"] = source
        row["utc_offset_min"] = offset
        if offset is not None:
            row["captured_at_utc"] = (dt - timedelta(minutes=offset)).replace(tzinfo=timezone.utc)
        ref = now or datetime.now(timezone.utc)
        ref_local = ref.astimezone(timezone.utc).replace(tzinfo=None) + timedelta(minutes=offset or 0)
        if dt > ref_local + timedelta(days=1):
            row["captured_in_future"] = True
            errors.append(f"{source}: {dt.isoformat()} is in the future (camera clock set wrong?)")
        break
    row["exif_errors"] = "; ".join(errors) if errors else None
    return row


def exif_extractor(rgb: Image.Image, job: Any) -> dict[str, Any]:
    """The ``exif`` extractor of the single-decode pass: reads the header of ``job.path`` (pixels unused)."""
    return read_exif(job.path)


def exif_metadata(ctx: FeatureContext) -> dict[str, Any]:
    """The ``exif`` part files' metadata: the reader."""
    import PIL

    return {"reader": f"Pillow {PIL.__version__}"}


#: The ``exif`` sidecar (:data:`EXIF_COLUMNS`). The feature pass reads file headers without decoding
#: (:func:`imagerank.features.pipeline.run_exif`); the extractor lets a scan's decode read them on the same pass.
EXIF = FeatureSpec(
    name="exif",
    extractor=exif_extractor,
    schema=keyed_schema([
        pa.field("has_exif", pa.bool_()),
        pa.field("captured_at", pa.timestamp("us")),
        pa.field("utc_offset_min", pa.int32()),
        pa.field("captured_at_utc", pa.timestamp("us", tz="UTC")),
        pa.field("capture_time_source", pa.string()),
        pa.field("captured_in_future", pa.bool_()),
        pa.field("datetime_original_raw", pa.string()),
        pa.field("subsec_original_raw", pa.string()),
        pa.field("offset_original_raw", pa.string()),
        pa.field("make", pa.string()),
        pa.field("model", pa.string()),
        pa.field("lens_make", pa.string()),
        pa.field("lens_model", pa.string()),
        pa.field("iso", pa.int32()),
        pa.field("exposure_time", pa.float64()),
        pa.field("f_number", pa.float64()),
        pa.field("focal_length", pa.float64()),
        pa.field("focal_length_35mm", pa.float64()),
        pa.field("orientation", pa.int8()),
        pa.field("exif_errors", pa.string()),
    ]),
    metadata=exif_metadata,
    description="capture time (DateTimeOriginal + SubSec + offset), camera, lens, exposure, orientation",
)
