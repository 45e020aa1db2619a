"""Pixels for a RAW file: its embedded preview JPEG, found three ways, best first.

1. ``rawpy`` (LibRaw, MIT/LGPL-licensed wrapper, the ``[cull]`` extra): ``RawPy.extract_thumb()`` returns the
   preview the camera embedded (a JPEG, or a bitmap for some bodies).
2. ``exiftool`` when it is on ``PATH`` (Phil Harvey's ExifTool, run as a program, never linked; one
   ``-stay_open`` process per worker): the largest of the ``JpgFromRaw``, ``PreviewImage``, ``OtherImage`` and
   ``ThumbnailImage`` tags (``-b`` binary output).
3. A scan of the file's bytes for JPEG streams: every Start-Of-Image marker (``FF D8 FF``) is followed segment by
   segment (lengths of the marker segments, then the entropy-coded data up to the End-Of-Image marker
   ``FF D9``, skipping stuffed ``FF 00`` bytes and restart markers; ITU-T T.81 Annex B), the stream's size is read
   from its Start-Of-Frame segment, and the largest stream that Pillow decodes is taken.

A preview smaller than :data:`MIN_PREVIEW_SIDE` pixels on its longest side (stripped files carry 8x8 stubs) is not
usable; a file with no usable preview is culled on its metadata only (status ``metadata_only``, reason
``no_preview`` naming what each source said).
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from .exiftool import exiftool_path, exiftool_session

__all__ = ["MIN_PREVIEW_SIDE", "Preview", "exiftool_path", "find_preview", "jpeg_streams", "largest_jpeg"]

#: Longest side (pixels) under which an embedded preview is not usable for judging a frame.
MIN_PREVIEW_SIDE = 64
_MAX_STREAMS = 64
_EXIFTOOL_TAGS = ("JpgFromRaw", "PreviewImage", "OtherImage", "ThumbnailImage")
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclass
class Preview:
    """The outcome of :func:`find_preview`.

    Attributes:
        data: the preview's encoded bytes (JPEG) or None; ``image``: a decoded bitmap preview (rawpy) or None.
        source: ``rawpy``, ``exiftool`` or ``jpeg_scan`` (None when nothing usable was found).
        tried: ``"source: what happened"`` for every source tried, in order (for the ``no_preview`` reason).
    """

    data: bytes | None = None
    image: Image.Image | None = None
    source: str | None = None
    tried: list[str] = field(default_factory=list)


def _jpeg_end(buf: bytes, start: int) -> tuple[int, int, int] | None:
    """(end offset, width, height) of the JPEG stream starting at ``start`` (``FF D8``), or None when it is not a
    complete stream (T.81 Annex B marker syntax)."""
    n, pos, w, h = len(buf), start + 2, 0, 0
    while pos + 4 <= n:
        if buf[pos] != 0xFF:
            return None
        marker = buf[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            return (pos + 2, w, h) if w and h else None
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        length = (buf[pos + 2] << 8) | buf[pos + 3]
        if length < 2:
            return None
        if marker in _SOF and pos + 9 <= n:
            h = (buf[pos + 5] << 8) | buf[pos + 6]
            w = (buf[pos + 7] << 8) | buf[pos + 8]
        pos += 2 + length
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next real marker
            while True:
                pos = buf.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= n:
                    return None
                nxt = buf[pos + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                    pos += 1 if nxt == 0xFF else 2
                    continue
                break
    return None


def jpeg_streams(buf: bytes) -> list[tuple[int, int, int, int]]:
    """Every complete JPEG stream in ``buf`` as (start, end, width, height), at most 64, in file order.

    A stream nested inside another (an EXIF thumbnail inside a preview) is listed too."""
    out: list[tuple[int, int, int, int]] = []
    pos = 0
    while len(out) < _MAX_STREAMS:
        pos = buf.find(b"\xff\xd8\xff", pos)
        if pos < 0:
            break
        found = _jpeg_end(buf, pos)
        if found is not None:
            out.append((pos, found[0], found[1], found[2]))
        pos += 3
    return out


def _decodes(data: bytes) -> tuple[int, int] | None:
    """(width, height) of the JPEG ``data`` when Pillow decodes it (at 1/8 scale: a check, not the real decode)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            size = im.size
            im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
            im.load()
            return size
    except Exception:  # any decoder failure means "not a usable JPEG"
        return None


def largest_jpeg(buf: bytes, min_side: int = MIN_PREVIEW_SIDE) -> tuple[bytes | None, str]:
    """The largest embedded JPEG of ``buf`` (by pixel count) that Pillow decodes and whose longest side is at least
    ``min_side``; returns (bytes or None, what was found, for the reasons)."""
    streams = sorted(jpeg_streams(buf), key=lambda s: (-(s[2] * s[3]), s[0]))
    if not streams:
        return None, "no JPEG stream in the file"
    small = 0
    for start, end, w, h in streams:
        if max(w, h) < min_side:
            small += 1
            continue
        data = buf[start:end]
        if _decodes(data) is not None:
            return data, f"{w}x{h} JPEG at byte {start}"
    if small == len(streams):
        return None, f"{len(streams)} JPEG stream(s), all under {min_side} px"
    return None, f"{len(streams)} JPEG stream(s), none decodes"


def _rawpy(buf: bytes, min_side: int, p: Preview) -> bool:
    try:
        import rawpy
    except ImportError:
        p.tried.append("rawpy: not installed (pip install 'imagerank[cull]')")
        return False
    try:
        with rawpy.imread(io.BytesIO(buf)) as raw:
            thumb = raw.extract_thumb()
    except Exception as e:  # LibRaw's own error types, and I/O errors on a damaged file
        p.tried.append(f"rawpy: {type(e).__name__}: {_text(e)}")
        return False
    if thumb.format == rawpy.ThumbFormat.JPEG:
        size = _decodes(bytes(thumb.data))
        if size is None:
            p.tried.append("rawpy: the embedded JPEG does not decode")
            return False
        if max(size) < min_side:
            p.tried.append(f"rawpy: {size[0]}x{size[1]} preview, under {min_side} px")
            return False
        p.data, p.source = bytes(thumb.data), "rawpy"
        return True
    im = Image.fromarray(np.asarray(thumb.data))
    if max(im.size) < min_side:
        p.tried.append(f"rawpy: {im.width}x{im.height} bitmap, under {min_side} px")
        return False
    p.image, p.source = im.convert("RGB"), "rawpy"
    return True


def _text(e: BaseException) -> str:
    msg = e.args[0] if e.args else str(e)
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    return " ".join(str(msg).split())[:160]




def _exiftool(path: str, tool: str, min_side: int, p: Preview) -> bool:
    try:
        raw = exiftool_session(tool).ask(["-j", "-b", *(f"-{t}" for t in _EXIFTOOL_TAGS), os.path.abspath(path)])
        found = json.loads(raw.decode("utf-8", "replace") or "[{}]")[0]
    except (OSError, TimeoutError, subprocess.SubprocessError, ValueError, IndexError) as e:
        p.tried.append(f"exiftool: {type(e).__name__}: {e}"[:200])
        return False
    best: tuple[int, bytes] | None = None
    for tag in _EXIFTOOL_TAGS:
        value = found.get(tag)
        if not isinstance(value, str) or not value.startswith("base64:"):
            continue
        data = base64.b64decode(value[7:])
        size = _decodes(data)
        if size is not None and max(size) >= min_side and (best is None or size[0] * size[1] > best[0]):
            best = (size[0] * size[1], data)
    if best is None:
        p.tried.append("exiftool: no usable preview tag")
        return False
    p.data, p.source = best[1], "exiftool"
    return True


def find_preview(path: str, buf: bytes, *, min_side: int = MIN_PREVIEW_SIDE, use_exiftool: bool = True,
                 exiftool_bytes: int | None = None) -> Preview:
    """The embedded preview of the RAW file ``path`` whose bytes are ``buf``: rawpy, then exiftool (when on
    ``PATH`` and ``use_exiftool``), then the JPEG scan; see the module docstring.

    Args:
        exiftool_bytes: the largest preview exiftool's metadata batch listed for this file
            (:func:`imagerank.cull.metadata.exiftool_preview_bytes`): 0 skips the exiftool call (it would find
            nothing; a process start costs ~0.1 s), None (not known) makes it.

    Returns:
        a :class:`Preview`; ``source`` None when no source gave a usable one (``tried`` says why). Never raises for a
        bad file.
    """
    p = Preview()
    if _rawpy(buf, min_side, p):
        return p
    tool = exiftool_path() if use_exiftool else None
    if tool is not None and exiftool_bytes == 0:
        p.tried.append("exiftool: lists no preview")
    elif tool is not None and _exiftool(path, tool, min_side, p):
        return p
    data, what = largest_jpeg(buf, min_side)
    if data is not None:
        p.data, p.source = data, "jpeg_scan"
        return p
    p.tried.append(f"jpeg_scan: {what}")
    return p
