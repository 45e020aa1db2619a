"""The per-file pass of the cull: read, digest, metadata, preview, one decode, features — in a worker process.

Each file is decoded once (:func:`imagerank.media.decode.decode_image`: JPEG draft scaling, EXIF orientation, the
pixel limit) — the file itself, or for a RAW file its embedded preview (:mod:`imagerank.cull.preview`) — and
reduced to the 512-px *feature image* exactly as the feature sidecars are (:func:`~imagerank.media.decode.
reduce_like_thumbnail`), on which run the quality metrics (:func:`imagerank.features.quality.quality_metrics`), the
hashes (:func:`imagerank.features.hashing.hash_image`), the sharpest region (:func:`sharpest_region`) and,
optionally, the face / closed-eyes check (:func:`faces_and_eyes`). The result is a JSON-ready dict of IR columns
(times as ISO-8601 text), so it can be cached (:mod:`imagerank.cull.cache`) and shipped between processes.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from PIL import Image

from ..features.hashing import DIGEST_BITS, file_digest, hash_image
from ..features.quality import quality_metrics
from ..media.decode import decode_image, reduce_like_thumbnail
from .exiftool import exiftool_path
from .ir import RAW_EXTENSIONS, reason
from .metadata import PendingTags, exiftool_preview_bytes, file_metadata
from .preview import find_preview

__all__ = ["EXTRACT_VERSION", "FEATURE_SIZE", "ExtractJob", "extract_one", "faces_and_eyes", "sharpest_region"]

#: Changes whenever the extracted values would change: cached records of another version are recomputed.
EXTRACT_VERSION = "cull-extract-4"
#: Longest side (pixels) of the feature image, as the feature sidecars use.
FEATURE_SIZE = 512
_GRID = 4
_MIN_FACE = 40


@dataclass(frozen=True)
class ExtractJob:
    """One file for :func:`extract_one`: absolute ``abspath``, IR ``path`` (relative), ``size`` (bytes) and
    ``mtime_ns`` from the scan, the pixel limit, whether to run the face check, and whether to ask exiftool
    (when it is on ``PATH``) for metadata and previews."""

    abspath: str
    path: str
    size: int
    mtime_ns: int
    max_pixels: int = 178_956_970
    faces: bool = False
    use_exiftool: bool = True


def sharpest_region(grey: Image.Image, grid: int = _GRID) -> dict[str, float]:
    """The sharpest cell of a ``grid`` x ``grid`` split of ``grey`` and a saliency proxy.

    The energy of a cell is the mean squared 4-neighbour Laplacian of its luma (the sharpness measure of
    :mod:`imagerank.features.quality`, per cell). A subject in focus against a soft background concentrates the
    energy in few cells: ``saliency = 1 - mean(cell energies) / max(cell energy)`` (0 = uniform detail or none,
    towards 1 = one sharp cell), a boring stand-in for a saliency map (cf. Itti, Koch & Niebur 1998, centre-surround
    contrast).

    Returns:
        ``saliency`` (0–1) and ``sharp_x``, ``sharp_y``, ``sharp_w``, ``sharp_h``: the cell as fractions (0–1) of the
        image's width and height. An image smaller than 3x3 gives saliency 0 and the whole frame.
    """
    a = np.asarray(grey if grey.mode == "L" else grey.convert("L"), dtype=np.float32)
    h, w = a.shape
    if h < 3 or w < 3:
        return {"saliency": 0.0, "sharp_x": 0.0, "sharp_y": 0.0, "sharp_w": 1.0, "sharp_h": 1.0}
    lap = a[:-2, 1:-1] + a[2:, 1:-1] + a[1:-1, :-2] + a[1:-1, 2:] - 4 * a[1:-1, 1:-1]
    e = lap * lap
    ys = np.linspace(0, e.shape[0], grid + 1).astype(int)
    xs = np.linspace(0, e.shape[1], grid + 1).astype(int)
    cells = np.array([[float(e[ys[i]:ys[i + 1], xs[j]:xs[j + 1]].mean()) if ys[i + 1] > ys[i] and xs[j + 1] > xs[j]
                       else 0.0 for j in range(grid)] for i in range(grid)])
    top = float(cells.max())
    i, j = np.unravel_index(int(np.argmax(cells)), cells.shape)
    return {
        "saliency": 0.0 if top <= 0 else float(1.0 - cells.mean() / top),
        "sharp_x": float(xs[j] + 1) / w, "sharp_y": float(ys[i] + 1) / h,
        "sharp_w": float(xs[j + 1] - xs[j]) / w, "sharp_h": float(ys[i + 1] - ys[i]) / h,
    }


_CASCADES: dict[str, Any] = {}


def _cascade(name: str) -> Any:
    """An OpenCV Haar cascade shipped in the ``opencv-python-headless`` 4.x wheel (``cv2.data.haarcascades``)."""
    if name not in _CASCADES:
        import cv2

        path = os.path.join(cv2.data.haarcascades, name)  # type: ignore[attr-defined]
        c = cv2.CascadeClassifier(path)
        if c.empty():
            from ..errors import ImagerankError

            raise ImagerankError(f"face check: expected OpenCV's cascade file {name} in the opencv-python-headless "
                                 f"4.x wheel, found none at {path} (5.x wheels no longer ship them)")
        _CASCADES[name] = c
    return _CASCADES[name]


def faces_and_eyes(grey: Image.Image) -> tuple[int, bool | None]:
    """Faces and open eyes in ``grey`` with OpenCV's Haar cascades (Viola & Jones 2001, "Rapid object detection
    using a boosted cascade of simple features"; ``haarcascade_frontalface_default.xml`` and ``haarcascade_eye.xml``,
    which detects open eyes).

    Returns:
        (faces found, eyes closed): eyes closed is True when at least one face is at least 40 px wide and none of
        those faces shows an open eye, False when one does, None when no face is large enough to tell.

    Raises:
        ImportError: OpenCV is not installed (the ``[cull]`` extra). ImagerankError: its cascade files are missing.
    """
    import cv2

    a = cv2.equalizeHist(np.asarray(grey if grey.mode == "L" else grey.convert("L"), dtype=np.uint8))
    faces = _cascade("haarcascade_frontalface_default.xml").detectMultiScale(a, 1.1, 5, minSize=(24, 24))
    judged = opened = 0
    for x, y, w, h in list(faces):
        if w < _MIN_FACE:
            continue
        judged += 1
        roi = a[y:y + h * 6 // 10, x:x + w]
        eyes = _cascade("haarcascade_eye.xml").detectMultiScale(roi, 1.1, 4, minSize=(max(6, w // 10),) * 2)
        opened += len(eyes) > 0
    return len(faces), (None if judged == 0 else opened == 0)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _pixels(job: ExtractJob, rec: dict[str, Any], buf: bytes,
            pending: PendingTags | None) -> tuple[Image.Image, int, int] | None:
    """The decoded preview (image, full width, full height), or None with the status and reason set on ``rec``."""
    reasons: list[dict[str, Any]] = rec["reasons"]
    try:
        if rec["kind"] == "raw":
            tags = pending.result() if pending is not None else None
            pv = find_preview(job.abspath, buf, use_exiftool=pending is not None,
                              exiftool_bytes=None if tags is None else exiftool_preview_bytes(tags))
            if pv.source is None:
                rec["status"] = "metadata_only"
                reasons.append(reason("no_preview", "preview", "no usable embedded preview: " + "; ".join(pv.tried)))
                return None
            rec["preview_source"] = pv.source
            if pv.source != "rawpy":
                reasons.append(reason("preview_fallback", "preview", f"preview from {pv.source}; "
                                      + "; ".join(pv.tried)))
            if pv.image is not None:
                return pv.image, pv.image.width, pv.image.height
            return decode_image(io.BytesIO(pv.data or b""), FEATURE_SIZE, job.max_pixels)  # type: ignore[arg-type]
        rec["preview_source"] = "decode"
        return decode_image(job.abspath, FEATURE_SIZE, job.max_pixels)
    except FileNotFoundError:
        rec["status"] = "missing"
        rec["preview_source"] = None
        reasons.append(reason("missing", "preview", "the file was deleted while it was read"))
    except Exception as e:  # Pillow raises many types for damaged data; each is a corrupt file, not a crash
        rec["status"] = "corrupt"
        rec["preview_source"] = None
        reasons.append(reason("corrupt", "preview", f"{type(e).__name__}: {e}"[:300]))
    return None


def extract_one(job: ExtractJob) -> dict[str, Any]:
    """The IR columns one file gets before the passes (file, metadata, digest, preview, features, status, reasons).

    Never raises for a bad file: a file deleted since the scan gets status ``missing``, one that cannot be read
    ``unreadable``, a zero-byte file ``empty``, one whose pixels no decoder reads ``corrupt``, a RAW file without a
    usable preview ``metadata_only``; each with a reason record.
    """
    ext = os.path.splitext(job.path)[1].lower()
    rec: dict[str, Any] = {"path": job.path, "size": job.size, "mtime_ns": job.mtime_ns, "ext": ext,
                           "kind": "raw" if ext in RAW_EXTENSIONS else "image", "reasons": []}
    reasons: list[dict[str, Any]] = rec["reasons"]
    try:
        st = os.stat(job.abspath)
        rec["size"], rec["mtime_ns"] = st.st_size, st.st_mtime_ns
        if st.st_size == 0:
            rec["status"] = "empty"
            reasons.append(reason("empty", "scan", "the file has zero bytes"))
            return rec
        if rec["kind"] == "raw":
            with open(job.abspath, "rb") as f:
                buf = f.read()
            rec["digest"] = hashlib.blake2b(buf, digest_size=DIGEST_BITS // 8).hexdigest()
        else:
            buf = b""
            rec["digest"] = file_digest(job.abspath)
    except FileNotFoundError:
        rec["status"] = "missing"
        reasons.append(reason("missing", "scan", "the file was deleted after the scan"))
        return rec
    except OSError as e:
        rec["status"] = "missing" if e.errno == errno.ENOENT else "unreadable"
        reasons.append(reason(rec["status"], "scan", f"cannot read the file: {e.strerror or e}"))
        return rec
    tool = exiftool_path() if job.use_exiftool else None
    pending = PendingTags(tool, job.abspath) if tool is not None else None
    try:  # exiftool reads the file while the preview is decoded
        pixels = _pixels(job, rec, buf, pending)
    finally:
        tags = pending.result() if pending is not None else None
    meta = file_metadata(job.abspath, rec["mtime_ns"], tags)
    errors = meta.pop("exif_errors", None)
    if errors:
        reasons.append(reason("exif_problem", "metadata", str(errors)[:300]))
    if meta["capture_time_source"] == "mtime":
        reasons.append(reason("time_from_mtime", "metadata", "no EXIF capture time; the file's mtime (UTC) is used"))
    rec.update(meta)
    rec["capture_time"] = _iso(meta["capture_time"])
    rec["capture_time_utc"] = _iso(meta["capture_time_utc"])
    if pixels is None:
        return rec
    rgb, w, h = pixels
    rec["width"], rec["height"] = int(w), int(h)
    feat = reduce_like_thumbnail(rgb, FEATURE_SIZE)
    grey = feat.convert("L")
    q = quality_metrics(grey)
    for k in ("laplacian_var", "noise_sigma", "clip_shadows", "clip_highlights", "luma_mean"):
        v = q[k]
        rec[k] = None if v != v else float(v)
    hashes = hash_image(grey, ("phash", "dhash"))
    rec["dhash"], rec["phash"] = hashes["dhash"], hashes["phash"]
    rec.update(sharpest_region(grey))
    if job.faces:
        rec["faces"], rec["eyes_closed"] = faces_and_eyes(grey)
    rec["status"] = "ok"
    return rec
