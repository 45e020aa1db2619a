"""The thumbnail cache and the single-decode pass.

One decode per image (DESIGN §4): JPEGs are opened with ``Image.draft()`` so libjpeg decodes at 1/2, 1/4 or
1/8 scale straight to about the needed size, EXIF orientation is applied with ``ImageOps.exif_transpose``,
and odd modes (CMYK, 16-bit, palette + alpha, LA/RGBA, animated) are normalised to 8-bit RGB. The decoded image
feeds the thumbnail file and, when asked, the feature extractors (hashes, quality) registered in
:data:`EXTRACTORS`, so no file is decoded twice.

Thumbnails are JPEG files ``thumbs/<size>/<id % 256:02x>/<id>_<fingerprint>.jpg`` keyed by the file's
fingerprint (``<size>-<mtime_ns>``) and the thumbnail size, so a changed file gets a new thumbnail.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing as mp
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageFile, ImageOps

__all__ = [
    "EXTRACTORS",
    "DecodeJob",
    "DecodeResult",
    "decode_image",
    "fingerprint",
    "imap_processes",
    "reduce_like_thumbnail",
    "run_decode_jobs",
    "thumb_path",
]

# Truncated files must fail loudly (status corrupt), not decode half-grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False

# name -> fn(decoded RGB image, job) -> dict of values; filled by imagerank.features at import.
EXTRACTORS: dict[str, Callable[[Image.Image, DecodeJob], dict[str, Any]]] = {}


def fingerprint(size: int, mtime_ns: int) -> str:
    """The file fingerprint used to key thumbnails and sidecar rows: ``"<size>-<mtime_ns>"``."""
    return f"{int(size)}-{int(mtime_ns)}"


def thumb_path(thumbs_dir: str | os.PathLike[str], image_id: int, fp: str, size: int) -> Path:
    """Where the thumbnail of ``image_id`` at fingerprint ``fp`` and longest side ``size`` lives."""
    return Path(thumbs_dir) / str(size) / f"{image_id % 256:02x}" / f"{image_id}_{fp}.jpg"


@dataclass(frozen=True)
class DecodeJob:
    """One image to decode: its id, path, fingerprint, thumbnail destination and the extractors to run."""

    image_id: int
    path: str
    fingerprint: str
    thumb_dest: str | None
    thumb_size: int = 512
    max_pixels: int = 178_956_970
    extractors: tuple[str, ...] = ()
    feature_size: int = 512


@dataclass
class DecodeResult:
    """The outcome of one :class:`DecodeJob`.

    ``ok`` False means the file could not be decoded; ``reason`` says why (for the ``corrupt`` status).
    ``width``/``height`` are the original's displayed size (after EXIF orientation), pixels.
    ``features`` maps extractor name to its values; ``failures`` maps extractor name to an error message.
    """

    image_id: int
    ok: bool
    reason: str | None = None
    width: int | None = None
    height: int | None = None
    thumb_written: bool = False
    features: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


def _to_rgb(im: Image.Image) -> Image.Image:
    """8-bit RGB from any mode Pillow decodes: 16-bit scaled (not clipped), alpha composited on mid-grey."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        hi = im.getextrema()[1] if im.mode == "I" else 65535
        scale = 255.0 / max(float(hi or 1), 255.0)  # type: ignore[arg-type]
        im = im.point(lambda v: v * scale).convert("L") if im.mode == "I" else im.convert("I").point(
            lambda v: v * scale
        ).convert("L")
    elif im.mode == "F":
        im = im.convert("L")
    if im.mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
        im = Image.alpha_composite(bg, rgba)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return im


def reduce_like_thumbnail(im: Image.Image, size: int) -> Image.Image:
    """Reduce ``im`` in place to fit ``size`` x ``size`` pixels exactly as cached thumbnails are made (Pillow's
    ``thumbnail``, bilinear, ``reducing_gap=2``); returns it. Features computed from a thumbnail and from a fresh
    decode agree only while both go through this."""
    im.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return im


def decode_image(path: str, target: int, max_pixels: int = 178_956_970) -> tuple[Image.Image, int, int]:
    """Decode ``path`` once, at roughly ``target`` pixels on the longest side, upright and 8-bit RGB.

    Returns:
        (image, width, height): the reduced RGB image (longest side >= ``target`` where the original is that
        large) and the original's displayed width and height in pixels.

    Raises:
        OSError / ValueError / Image.DecompressionBombError / SyntaxError: the file is not a decodable image,
        is truncated, or has more than ``max_pixels`` pixels. Callers turn these into a ``corrupt`` status.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise Image.DecompressionBombError(
                    f"{w}x{h} = {w * h} pixels exceeds the limit of {max_pixels} (decompression-bomb guard)"
                )
            if getattr(im, "n_frames", 1) > 1:
                im.seek(0)
            orientation = im.getexif().get(0x0112, 1) if hasattr(im, "getexif") else 1
            if im.format == "JPEG":  # libjpeg scales by 1/2, 1/4, 1/8 while decoding: longest side >= target
                k = target / max(w, h)
                im.draft("RGB", (max(1, math.ceil(w * k)), max(1, math.ceil(h * k))))
            im.load()
            out = ImageOps.exif_transpose(im)
            if out is None:  # pragma: no cover - exif_transpose returns a copy unless in_place
                out = im.copy()
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    if out.width * out.height == 0:
        raise ValueError("image has zero width or height")
    return _to_rgb(out), int(w), int(h)


def process_job(job: DecodeJob) -> DecodeResult:
    """Decode one image and write its thumbnail and features. Never raises: failures are in the result.

    ``job.thumb_dest`` None decodes for the extractors only (the thumbnail is current). Extractors get the decode
    reduced to at most ``job.feature_size`` pixels on the longest side (bilinear, like the thumbnail).
    """
    target = max(job.thumb_size, job.feature_size if job.extractors else 0)
    try:
        rgb, width, height = decode_image(job.path, target, job.max_pixels)
    except Exception as e:  # every decoder error becomes a recorded status
        return DecodeResult(job.image_id, ok=False, reason=f"{type(e).__name__}: {e}"[:500])
    result = DecodeResult(job.image_id, ok=True, width=width, height=height)
    thumb: Image.Image | None = None
    if job.thumb_dest:
        try:
            # the decode is needed again only when the extractors want it at another size
            keep = job.extractors and job.feature_size != job.thumb_size
            thumb = reduce_like_thumbnail(rgb.copy() if keep else rgb, job.thumb_size)
            dest = Path(job.thumb_dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_suffix(".tmp")
            thumb.save(tmp, "JPEG", quality=85)
            os.replace(tmp, dest)
            result.thumb_written = True
        except OSError as e:
            result.failures["thumbnail"] = f"{type(e).__name__}: {e}"
    if job.extractors:
        # Extractors see the "feature image": the decode reduced to feature_size the same way as a thumbnail,
        # so values do not depend on whether (or at which size) a thumbnail was written in the same pass.
        if thumb is not None and job.thumb_size == job.feature_size:
            feat = thumb
        else:
            feat = reduce_like_thumbnail(rgb, job.feature_size)  # rgb is not used after this
    for name in job.extractors:
        fn = EXTRACTORS.get(name)
        if fn is None:
            result.failures[name] = f"no extractor named {name!r}"
            continue
        try:
            result.features[name] = fn(feat, job)
        except Exception as e:
            result.failures[name] = f"{type(e).__name__}: {e}"[:500]
    return result


def _init_worker() -> None:
    # Workers must see the same extractors as the parent.
    try:
        import imagerank.features  # noqa: F401
    except ImportError:  # pragma: no cover
        pass


def run_decode_jobs(
    jobs: Sequence[DecodeJob],
    *,
    workers: int | None = None,
    progress: bool = True,
    desc: str = "thumbnails",
    inline_below: int = 24,
) -> Iterable[DecodeResult]:
    """Run ``jobs`` in a process pool (``forkserver``; inline for small batches), yielding results as done.

    Args:
        workers: processes; default ``os.cpu_count()``.
        progress: show a ``tqdm.auto`` bar.
        inline_below: batches smaller than this run in this process (a pool costs ~0.5 s to start).
    """
    yield from imap_processes(process_job, jobs, workers=workers, progress=progress, desc=desc,
                              inline_below=inline_below, initializer=_init_worker)


def imap_processes(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    workers: int | None = None,
    progress: bool = True,
    desc: str = "",
    inline_below: int = 24,
    chunksize: int | None = None,
    initializer: Callable[[], None] | None = None,
) -> Iterator[Any]:
    """``fn`` over ``items`` in order, in a process pool (``forkserver`` where available, else ``spawn``) with a
    ``tqdm.auto`` bar; inline in this process when there are fewer than ``inline_below`` items or ``workers <= 1``
    (a pool costs about 0.5 s to start). ``fn`` and the items must pickle. The pool is shut down however the
    iteration ends. Default chunk size: about 8 chunks per worker, 1..64 items each."""
    from tqdm.auto import tqdm

    bar = tqdm(total=len(items), desc=desc, unit="img", disable=not progress or not items, leave=False)
    try:
        if len(items) < inline_below or (workers is not None and workers <= 1):
            if initializer is not None:
                initializer()
            for item in items:
                yield fn(item)
                bar.update(1)
            return
        n = workers or os.cpu_count() or 1
        ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
        chunk = chunksize or max(1, min(64, len(items) // (n * 8) or 1))
        with cf.ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=initializer) as ex:
            for res in ex.map(fn, items, chunksize=chunk):
                yield res
                bar.update(1)
    finally:
        bar.close()
