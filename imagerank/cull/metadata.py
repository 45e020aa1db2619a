"""Capture time, body, lens, exposure and sequence (bracket, focus stack, panorama) of one file, for the IR.

The EXIF reader of the feature sidecars (:func:`imagerank.features.exif.read_exif`: DateTimeOriginal +
SubSecTimeOriginal + OffsetTimeOriginal, camera, lens, exposure) gives the common fields; this module adds what a
cull needs on top: exposure compensation (``ExposureBiasValue``), ``ExposureMode`` (2 = auto bracket), the body's
serial (``BodySerialNumber``), and — when ``exiftool`` is on ``PATH`` — the maker-note tags that say a frame is part
of an exposure bracket, a focus stack or a panorama, asked of this worker's ``-stay_open`` exiftool
(:func:`exiftool_tags`). Files Pillow cannot read (CR3, RAF, CRW ...) take their fields from exiftool when it is
there. Without any capture time the file's mtime (UTC) is used and ``capture_time_source`` says ``mtime``.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from PIL import Image

from ..features.exif import parse_exif_datetime, parse_offset, read_exif
from ..media.decode import pillow_limit_lifted
from .exiftool import exiftool_session

__all__ = ["EXIFTOOL_TAGS", "PendingTags", "exiftool_preview_bytes", "exiftool_tags", "file_metadata", "sequence_of"]

_EXPOSURE_BIAS, _EXPOSURE_MODE, _BODY_SERIAL, _EXIF_IFD = 0x9204, 0xA402, 0xA431, 0x8769
_MODES = {0: "auto", 1: "manual", 2: "auto_bracket"}

#: Tags asked of exiftool (``#`` = the number, not the printed value); wildcards catch the makers' sequence tags.
EXIFTOOL_TAGS: tuple[str, ...] = (
    "DateTimeOriginal", "SubSecTimeOriginal", "OffsetTimeOriginal", "CreateDate", "Make", "Model", "SerialNumber",
    "InternalSerialNumber", "LensModel", "ISO#", "ExposureTime#", "FNumber#", "FocalLength#",
    "ExposureCompensation#", "ExposureMode#", "*Bracket*", "*Panorama*", "*FocusStack*", "*FocusShift*",
    "ShootingMode", "ReleaseMode", "DriveMode", "SceneMode",
    "JpgFromRaw", "PreviewImage", "OtherImage", "ThumbnailImage",  # without -b: "(Binary data N bytes ...)"
)
_PREVIEW_TAGS = ("JpgFromRaw", "PreviewImage", "OtherImage", "ThumbnailImage")
_BINARY = re.compile(r"Binary data (\d+) bytes")
_OFF = re.compile(r"^\s*(off|none|n/?a|no|no bracket|0|0 ?ev|\+?0(\.0+)?|normal|single(-frame)?( shooting)?)?\s*$",
                  re.I)
# bracket *settings* (step, order, program ...) say how a bracket would be shot, not that this frame is in one
_SETTING = re.compile(r"(step|increment|order|program|set$|setting$|modem$|^wb|flash)", re.I)


class PendingTags:
    """exiftool's :data:`EXIFTOOL_TAGS` of one file, asked of this process's ``-stay_open`` session at construction
    and read by :meth:`result`, so exiftool reads the file while the caller decodes it."""

    def __init__(self, tool: str, path: str) -> None:
        self.session = exiftool_session(tool)
        self.value: dict[str, Any] | None = None
        self.done = False
        try:
            self.session.send(["-j", "-fast", *(f"-{t}" for t in EXIFTOOL_TAGS), os.path.abspath(path)])
            self.sent = True
        except OSError:
            self.session.close()
            self.sent = False

    def result(self) -> dict[str, Any] | None:
        """{tag name: value} (numbers for the ``#`` tags, printed text for the others), or None when exiftool could
        not answer (the caller falls back to Pillow). Never raises for a bad file or a failing tool."""
        if self.done:
            return self.value
        self.done = True
        if not self.sent:
            return None
        try:
            rows = json.loads(self.session.receive().decode("utf-8", "replace") or "[]")
        except (OSError, TimeoutError, ValueError):
            return None
        if rows and isinstance(rows, list) and isinstance(rows[0], dict):
            self.value = dict(rows[0])
            self.value.pop("SourceFile", None)
        return self.value


def exiftool_tags(tool: str, path: str) -> dict[str, Any] | None:
    """exiftool's :data:`EXIFTOOL_TAGS` of one file (:class:`PendingTags` asked and read at once)."""
    return PendingTags(tool, path).result()


def exiftool_preview_bytes(tags: Mapping[str, Any]) -> int:
    """The size in bytes of the largest embedded preview exiftool's batch listed for a file (0: none)."""
    sizes = [int(m.group(1)) for t in _PREVIEW_TAGS if (m := _BINARY.search(str(tags.get(t) or "")))]
    return max(sizes, default=0)


def sequence_of(tags: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """What the tags say the frame belongs to: (``exposure_bracket`` | ``focus_stack`` | ``panorama`` | None,
    the deciding ``Tag=value`` list or None).

    Rules (a tag whose value reads "off", "none", 0 or "normal" says nothing): a tag named ``*Panorama*`` or a value
    naming a panorama → panorama; a tag named ``*Focus*`` with ``Bracket``/``Stack``/``Shift``, or a value naming focus
    bracketing or stacking → focus stack; ``ExposureMode`` 2 (EXIF "Auto bracket"), a tag named ``*Bracket*`` (AEB,
    ``BracketMode``), or a value naming AE / exposure bracketing → exposure bracket. Tags that describe a bracket
    *setting* (``BracketStep``, ``AutoBracketOrder``, ``BracketSet``, white-balance and flash brackets) are
    ignored: they are recorded on every frame, bracketed or not.
    """
    found: dict[str, list[str]] = {"panorama": [], "focus_stack": [], "exposure_bracket": []}
    for name, value in sorted(tags.items()):
        text = str(value)
        if value is None or _OFF.match(text) or (name != "ExposureMode" and _SETTING.search(name)):
            continue
        low, vlow = name.lower(), text.lower()
        item = f"{name}={text}"[:80]
        if name == "ExposureMode":
            if text.strip() in ("2", "Auto bracket"):
                found["exposure_bracket"].append(item)
            continue
        if "panorama" in low or "panorama" in vlow:
            found["panorama"].append(item)
        elif ("focus" in low and any(k in low for k in ("bracket", "stack", "shift"))) or any(
                k in vlow for k in ("focus bracket", "focus stack", "focus shift")):
            found["focus_stack"].append(item)
        elif ("bracket" in low or "bracket" in vlow) and (
                name in ("ShootingMode", "ReleaseMode", "DriveMode", "SceneMode") or "bracket" in low):
            found["exposure_bracket"].append(item)
    for kind in ("panorama", "focus_stack", "exposure_bracket"):
        if found[kind]:
            return kind, ", ".join(found[kind])
    return None, None


def _pillow_extras(path: str) -> dict[str, Any]:
    """ExposureBiasValue, ExposureMode and BodySerialNumber from the file's EXIF (header only; {} when none)."""
    try:
        with warnings.catch_warnings(), pillow_limit_lifted():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                sub = im.getexif().get_ifd(_EXIF_IFD)
                return {"bias": sub.get(_EXPOSURE_BIAS), "mode": sub.get(_EXPOSURE_MODE),
                        "serial": sub.get(_BODY_SERIAL)}
    except Exception:  # no EXIF, or not something Pillow reads: the caller has other sources
        return {}


def _num(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f and abs(f) != float("inf") else None


def _str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    s = str(value).replace("\x00", " ").strip()
    return s or None


def file_metadata(path: str, mtime_ns: int, exiftool: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The IR's capture-time, camera and exposure columns of one file, plus ``exif_errors`` (str or None).

    Args:
        path: the file. mtime_ns: its modification time (the capture time of last resort).
        exiftool: the file's tags from :func:`exiftool_tags`, when exiftool ran.

    Never raises for a bad file: what cannot be read is left null and named in ``exif_errors``.
    """
    try:
        ex = read_exif(path)
    except OSError as e:
        ex = {"has_exif": False, "exif_errors": f"file: {e.strerror or e}"}
    extras = _pillow_extras(path) if ex.get("has_exif") else {}
    et = dict(exiftool or {})
    out: dict[str, Any] = {
        "camera_make": ex.get("make") or _str(et.get("Make")),
        "camera_model": ex.get("model") or _str(et.get("Model")),
        "camera_serial": _str(extras.get("serial")) or _str(et.get("SerialNumber"))
        or _str(et.get("InternalSerialNumber")),
        "lens_model": ex.get("lens_model") or _str(et.get("LensModel")),
        "iso": ex.get("iso") if ex.get("iso") is not None else (
            None if _num(et.get("ISO")) is None else round(_num(et.get("ISO")) or 0)),
        "exposure_time_s": ex.get("exposure_time") or _num(et.get("ExposureTime")),
        "f_number": ex.get("f_number") or _num(et.get("FNumber")),
        "focal_length_mm": ex.get("focal_length") or _num(et.get("FocalLength")),
        "exposure_compensation_ev": _num(extras.get("bias")) if extras.get("bias") is not None
        else _num(et.get("ExposureCompensation")),
    }
    mode = extras.get("mode") if extras.get("mode") is not None else et.get("ExposureMode")
    mode_n = _num(mode)
    out["exposure_mode"] = _MODES.get(int(mode_n)) if mode_n is not None and mode_n == int(mode_n) else None
    seq_tags = {k: v for k, v in et.items() if k not in ("Make", "Model", "ISO", "FNumber", *_PREVIEW_TAGS)}
    if mode_n is not None:
        seq_tags["ExposureMode"] = int(mode_n) if mode_n == int(mode_n) else mode_n
    out["sequence_kind"], out["sequence_info"] = sequence_of(seq_tags)
    errors = ex.get("exif_errors")
    time = ex.get("captured_at")
    if time is not None:
        out.update(capture_time=time, capture_time_source=ex.get("capture_time_source"),
                   utc_offset_min=ex.get("utc_offset_min"), capture_time_utc=ex.get("captured_at_utc"),
                   subsec=time.microsecond != 0 or ex.get("subsec_original_raw") is not None)
    else:
        parsed = _exiftool_time(et)
        if parsed is not None:
            dt, off = parsed
            out.update(capture_time=dt, capture_time_source="DateTimeOriginal", utc_offset_min=off,
                       capture_time_utc=None if off is None else (dt - timedelta(minutes=off)).replace(
                           tzinfo=timezone.utc), subsec=et.get("SubSecTimeOriginal") is not None)
        else:
            utc = datetime.fromtimestamp(mtime_ns / 1e9, tz=timezone.utc)
            out.update(capture_time=utc.replace(tzinfo=None), capture_time_source="mtime", utc_offset_min=0,
                       capture_time_utc=utc, subsec=True)
    if et and not ex.get("has_exif"):
        errors = None  # Pillow could not read this format; exiftool could, so nothing is missing
    out["exif_errors"] = errors
    body = [out["camera_make"], out["camera_model"], out["camera_serial"]]
    out["body"] = None if not any(body) else "|".join(b or "" for b in body)
    return out


def _exiftool_time(et: Mapping[str, Any]) -> tuple[datetime, int | None] | None:
    for tag in ("DateTimeOriginal", "CreateDate"):
        raw = et.get(tag)
        if raw is None:
            continue
        try:
            parsed = parse_exif_datetime(raw, et.get("SubSecTimeOriginal") if tag == "DateTimeOriginal" else None)
            if parsed is None:
                continue
            dt, off = parsed
            if tag == "DateTimeOriginal" and et.get("OffsetTimeOriginal") is not None:
                off = parse_offset(et.get("OffsetTimeOriginal"))
            return dt, off
        except ValueError:
            continue
    return None
