"""The thumbnail cache and the single-decode pass.

One decode per image (DESIGN §4, :func:`imagerank.media.decode.decode_image`) feeds the thumbnail file and, when the
caller asks, feature extractors (hashes, quality ...) handed in as a name -> function mapping, so no file is decoded
twice and this module knows no feature. Extractor functions must be module-level (they are pickled to the worker
processes).

Thumbnails are JPEG files ``thumbs/<size>/<id % 256:02x>/<id>_<fingerprint>.jpg`` keyed by the file's fingerprint
(``<size>-<mtime_ns>``) and the thumbnail size, so a changed file gets a new thumbnail. :class:`ThumbnailCache` is
the catalog-aware front: which images need one, the pass itself (statuses and failures written back), and the path
or bytes of one image's thumbnail.

Besides the configured size (``Settings.thumb_size``, 512 px, made by the scan) the cache holds a second, larger
size (:data:`LARGE_THUMB_SIZE`, 1024 px) made lazily, one image at a time, for panels drawn on high-density
displays (:meth:`ThumbnailCache.read_bytes` with ``size=``). Only the configured size is tracked in the catalog
(``thumb_fingerprint``); a larger file is current when its name carries the file's current fingerprint.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from .._util.procs import imap_processes
from ..errors import InvalidArgumentError
from .decode import decode_image, fingerprint, reduce_like_thumbnail

if TYPE_CHECKING:
    from ..catalog import Catalog

__all__ = [
    "LARGE_THUMB_SIZE",
    "DecodeJob",
    "DecodeResult",
    "Extractor",
    "ThumbnailCache",
    "process_job",
    "run_decode_jobs",
    "thumb_path",
]

#: Longest side of the second, larger thumbnail size, pixels: a compare-panel slot of up to ~1,000 device pixels.
LARGE_THUMB_SIZE = 1024

#: ``fn(feature image (8-bit RGB PIL image), job) -> {column: value}``; a module-level function (it is pickled).
Extractor = Callable[[Image.Image, "DecodeJob"], dict[str, Any]]


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


def process_job(job: DecodeJob, extractors: Mapping[str, Extractor] | None = None) -> DecodeResult:
    """Decode one image and write its thumbnail and features. Never raises: failures are in the result.

    ``extractors`` maps each name in ``job.extractors`` to its function; a name without one is a recorded failure.

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
        fn = (extractors or {}).get(name)
        if fn is None:
            result.failures[name] = f"no extractor named {name!r}"
            continue
        try:
            result.features[name] = fn(feat, job)
        except Exception as e:
            result.failures[name] = f"{type(e).__name__}: {e}"[:500]
    return result


def run_decode_jobs(
    jobs: Sequence[DecodeJob],
    *,
    workers: int | None = None,
    progress: bool = True,
    desc: str = "thumbnails",
    inline_below: int = 24,
    extractors: Mapping[str, Extractor] | None = None,
) -> Iterable[DecodeResult]:
    """Run ``jobs`` in a process pool (``forkserver``; inline for small batches), yielding results as done.

    Args:
        extractors: name -> module-level function for the names in the jobs' ``extractors``.
        workers: processes; default ``os.cpu_count()``.
        progress: show a ``tqdm.auto`` bar.
        inline_below: batches smaller than this run in this process (a pool costs ~0.5 s to start).
    """
    fn = functools.partial(process_job, extractors=dict(extractors or {}))
    yield from imap_processes(fn, jobs, workers=workers, progress=progress, desc=desc, inline_below=inline_below)



class ThumbnailCache:
    """The thumbnail files of one catalog: which images need one, the single-decode pass, one image's path or bytes.

    Args:
        catalog: the workspace's :class:`~imagerank.catalog.Catalog` (its ``thumbs_dir`` and ``settings.thumb_size``).
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    @property
    def size(self) -> int:
        """Longest side of the cached thumbnails, pixels (``Settings.thumb_size``)."""
        return int(self.catalog.settings.thumb_size)

    def jobs(
        self, ids: Iterable[int] | None, extractors: Sequence[str] = (), *, force: bool = False,
        keep_current: bool = False,
    ) -> list[DecodeJob]:
        """Decode jobs for active images whose thumbnail is missing or stale (every active one with ``force``).

        ``keep_current``: decode images whose thumbnail is current for the extractors only (no thumbnail written).
        """
        cat = self.catalog
        where = "status = 'active'" + ("" if force else " AND (thumb_fingerprint IS NULL OR thumb_fingerprint != "
                                       "CAST(size AS TEXT) || '-' || CAST(mtime_ns AS TEXT))")
        wanted = None if ids is None else {int(i) for i in ids}
        params: tuple[int, ...] = ()
        if wanted is not None and len(wanted) <= 500:  # a few ids (a panel's on-demand thumbnail): no full scan
            where += f" AND id IN ({','.join('?' * len(wanted))})"
            params = tuple(wanted)
        rows = cat.db.query(f"SELECT id, filepath, size, mtime_ns, thumb_fingerprint FROM images WHERE {where}", params)
        size = self.size
        out = []
        for r in rows:
            if wanted is not None and r["id"] not in wanted:
                continue
            fp = fingerprint(r["size"] or 0, r["mtime_ns"] or 0)
            path = thumb_path(cat.thumbs_dir, r["id"], fp, size)
            dest = None if keep_current and r["thumb_fingerprint"] == fp and path.exists() else path
            out.append(DecodeJob(image_id=r["id"], path=r["filepath"], fingerprint=fp,
                                 thumb_dest=None if dest is None else str(dest), thumb_size=size,
                                 max_pixels=cat.settings.max_image_pixels, extractors=tuple(extractors)))
        return out

    def build(
        self,
        ids: Iterable[int] | None = None,
        *,
        progress: bool = True,
        force: bool = False,
        extractors: Mapping[str, Extractor] | None = None,
        on_result: Callable[[DecodeResult, DecodeJob], None] | None = None,
        keep_current: bool = False,
    ) -> tuple[int, int]:
        """Write thumbnails for active images whose thumbnail is missing or stale (one decode each).

        Args:
            ids: restrict to these image ids (default: all that need one).
            force: rebuild even when the thumbnail is current.
            extractors: name -> function run on the same decode; their values reach ``on_result``.
            on_result: called with each :class:`DecodeResult` and its :class:`DecodeJob`.
            keep_current: with ``force``, decode images whose thumbnail is current for the extractors only.

        Returns:
            (thumbnails written, images marked corrupt). Width, height and the thumbnail's fingerprint are written to
            the catalog; an undecodable file gets status ``corrupt`` with the decoder's reason, and every failure
            (decode, thumbnail, extractor) is recorded in the ``failures`` table.
        """
        cat = self.catalog
        extractors = dict(extractors or {})
        jobs = self.jobs(ids, tuple(extractors), force=force, keep_current=keep_current)
        written = corrupt = 0
        sizes: list[tuple[Any, ...]] = []
        bad: list[tuple[Any, ...]] = []
        fails: list[tuple[int | None, str | None, str, str]] = []

        def flush() -> None:
            if sizes or bad or fails:
                cat.images.record_decodes(sizes, bad, fails)
            sizes.clear()
            bad.clear()
            fails.clear()

        by_id = {j.image_id: j for j in jobs}
        for res in run_decode_jobs(jobs, progress=progress, extractors=extractors):
            job = by_id[res.image_id]
            if res.ok:
                if res.thumb_written:
                    written += 1
                    sizes.append((res.width, res.height, job.fingerprint, res.image_id))
                for stage, reason in res.failures.items():
                    fails.append((res.image_id, job.path, stage, reason))
            else:
                corrupt += 1
                bad.append((res.reason, res.image_id))
                fails.append((res.image_id, job.path, "decode", res.reason or "decode failed"))
            if on_result is not None:
                on_result(res, job)
            if len(sizes) + len(bad) >= 256:
                flush()
        flush()
        return written, corrupt

    def path(self, image_id: int) -> Path | None:
        """Path of the current thumbnail of ``image_id``, or None when none is built (or the image is gone)."""
        rows = self.catalog.db.query("SELECT thumb_fingerprint FROM images WHERE id=?", (int(image_id),))
        if not rows or rows[0][0] is None:
            return None
        p = thumb_path(self.catalog.thumbs_dir, int(image_id), rows[0][0], self.size)
        return p if p.exists() else None

    def read_bytes(self, image_id: int, size: int | None = None) -> bytes | None:
        """JPEG bytes of the thumbnail (building it on demand), or None when the image cannot be decoded.

        Args:
            size: longest side in pixels; None (or ``Settings.thumb_size``) is the configured size. Another size
                (e.g. :data:`LARGE_THUMB_SIZE`) is made on demand from the original (one decode, in this thread,
                ~10-100 ms) and kept in the cache; it is never larger than the original and never changes the
                image's status (a failure returns None and the configured size still works).

        Raises:
            InvalidArgumentError: ``size`` below 16 pixels.
        """
        if size is not None and int(size) != self.size:
            return self._read_other_size(int(image_id), int(size))
        p = self.path(image_id)
        if p is None:  # never built, stale, or deleted from the cache: rebuild this one
            self.build([image_id], progress=False, force=True)
            p = self.path(image_id)
        if p is None:
            return None
        try:
            return p.read_bytes()
        except OSError:
            return None

    def _read_other_size(self, image_id: int, size: int) -> bytes | None:
        if size < 16:
            raise InvalidArgumentError(f"size: expected a thumbnail size >= 16 pixels, got {size}")
        rows = self.catalog.db.query("SELECT filepath, size, mtime_ns, status FROM images WHERE id=?", (image_id,))
        if not rows or rows[0]["status"] != "active":
            return None
        r = rows[0]
        fp = fingerprint(r["size"] or 0, r["mtime_ns"] or 0)
        dest = thumb_path(self.catalog.thumbs_dir, image_id, fp, size)
        if not dest.exists():
            job = DecodeJob(image_id=image_id, path=r["filepath"], fingerprint=fp, thumb_dest=str(dest),
                            thumb_size=size, max_pixels=self.catalog.settings.max_image_pixels)
            if not process_job(job).thumb_written:
                return None
        try:
            return dest.read_bytes()
        except OSError:
            return None
