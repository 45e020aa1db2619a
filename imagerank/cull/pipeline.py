"""``cull(input_dir, ...)``: scan → extract (cached) → passes → buckets → artifacts, returning the IR table.

Works on a plain folder (no workspace: settings are the defaults plus the arguments; the cache is an optional
SQLite file) and inside a workspace (``workspace=``: its ``imagerank.toml`` ``[cull]`` and ``[core]`` settings,
and the cache at ``<workspace>/cache/cull.sqlite`` unless another is named).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .._util import __version__
from .._util.procs import imap_processes
from ..config import Settings, load_settings
from ..errors import InvalidArgumentError
from ..scan import IMAGE_SUFFIXES, WalkReport, walk_images
from .artifacts import export_file, manifest_line, summary, write_text_atomic
from .cache import CullCache
from .extract import EXTRACT_VERSION, ExtractJob, extract_one
from .ir import RAW_EXTENSIONS, reason, to_frame
from .passes import run_passes, weights_of
from .preview import exiftool_path
from .xmp import write_xmp

if TYPE_CHECKING:
    from .rerank import Reranker

__all__ = ["DEFAULT_CULL_EXTENSIONS", "EXPORT_MODES", "cull"]

#: Suffixes a cull reads by default: every image suffix imagerank knows, RAW included.
DEFAULT_CULL_EXTENSIONS: tuple[str, ...] = tuple(sorted(IMAGE_SUFFIXES | RAW_EXTENSIONS))
#: Ways to place files in the buckets.
EXPORT_MODES: tuple[str, ...] = ("hardlink", "symlink", "copy")


def _extensions(ext: Iterable[str] | None) -> tuple[str, ...]:
    if ext is None:
        return DEFAULT_CULL_EXTENSIONS
    out = []
    for item in ext:
        for e in str(item).split(","):  # "--ext .NEF,.JPG" as well as "--ext .NEF --ext .JPG"
            e = e.strip().lower()
            if not e or "/" in e or e == ".":
                raise InvalidArgumentError(f"extensions: expected suffixes like '.nef', got {item!r}")
            out.append(e if e.startswith(".") else "." + e)
    if not out:
        raise InvalidArgumentError("extensions: expected at least one suffix, got none")
    return tuple(out)


def _settings(workspace: str | os.PathLike[str] | None, settings: Settings | None, **cull: Any) -> Settings:
    base = settings if settings is not None else load_settings(workspace) if workspace is not None else Settings()
    changes = {k: v for k, v in cull.items() if v is not None}
    if not changes:
        return base
    return replace(base, cull=type(base.cull)(**{**{f: getattr(base.cull, f) for f in base.cull.__dataclass_fields__},
                                                  **changes}))


def cull(
    input_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    export: str = "hardlink",
    extensions: Iterable[str] | None = None,
    burst_seconds: float | None = None,
    dedupe_hamming: int | None = None,
    min_sharpness: float | None = None,
    max_clip: float | None = None,
    faces: bool | None = None,
    export_list: str | os.PathLike[str] | None = None,
    cache: str | os.PathLike[str] | None = None,
    xmp: bool = False,
    workspace: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
    use_exiftool: bool = True,
    workers: int | None = None,
    progress: bool = False,
    link: Callable[[str, Path], None] = os.link,
    rerank: Reranker | None = None,
) -> pd.DataFrame:
    """Cull the photo shoot in ``input_dir``: every file gets a bucket (best / good / maybe / trash) or a status
    saying why not, each decision with machine-readable reasons.

    Args:
        input_dir: the folder (walked recursively; hidden folders and ``out_dir`` are left out).
        out_dir: where the buckets, ``manifest.jsonl``, ``summary.json`` and ``export.txt`` go; None writes
            nothing (the IR table is still returned).
        export: ``hardlink`` (per-file fallback to a copy across devices), ``symlink`` or ``copy``.
        extensions: suffixes to read (default :data:`DEFAULT_CULL_EXTENSIONS`), case-insensitive.
        burst_seconds, dedupe_hamming, min_sharpness, max_clip, faces: override ``burst_gap_s``,
            ``cull_dedupe_hamming``, ``cull_min_sharpness``, ``cull_max_clip``, ``cull_faces`` for this run.
        export_list: where to write the list of kept paths (default ``out_dir/export.txt``).
        cache: the SQLite cache file (default: none, or ``<workspace>/cache/cull.sqlite`` in a workspace).
        xmp: write or merge XMP sidecars (rating and label by bucket) beside the input files.
        workspace: a workspace folder whose settings (and cache) to use. settings: explicit settings instead.
        use_exiftool: use ``exiftool`` when it is on ``PATH`` for RAW files (their metadata and maker-note
            bracket tags, previews); other files' EXIF is read by Pillow.
        workers: processes for the per-file pass (default: every core; small runs stay in this process).
        progress: show a progress bar. link: the hard-link call (tests simulate another device with it).
        rerank: a learned rerank (:class:`imagerank.cull.rerank.Reranker`, e.g. ``Reranker.from_workspace(col,
            input_dir)``) applied after the passes and before anything is written: the manifest's ``decided_by``,
            ``learned_score`` and ``learned_pick`` reasons say which part decided; ``summary.json`` and
            ``df.attrs["rerank"]`` describe the run.

    Returns:
        the IR table (:mod:`imagerank.cull.ir`: one row per file, sorted by path, the columns and dtypes of
        :data:`~imagerank.cull.ir.IR_COLUMNS`). ``df.attrs["cull"]`` holds run facts that are not in the manifest:
        ``extracted`` (files read this run), ``cached`` (from the cache), ``walk_errors``.

    Raises:
        InvalidArgumentError: ``input_dir`` is not a folder, ``out_dir`` is ``input_dir``, a bad ``export`` mode or
            extension.
        ConfigError: a bad override (the message names the setting). ImagerankError: a cache file that is not one;
            ``faces`` without OpenCV or its cascade files.
        StorageError: the output disk is full.
    """
    root = Path(os.path.abspath(Path(input_dir).expanduser()))
    if not root.is_dir():
        raise InvalidArgumentError(f"input_dir: expected a folder, got {os.fspath(input_dir)!r}")
    if export not in EXPORT_MODES:
        raise InvalidArgumentError(f"export: expected one of {', '.join(EXPORT_MODES)}, got {export!r}")
    exts = _extensions(extensions)
    s = _settings(workspace, settings, burst_gap_s=burst_seconds, cull_dedupe_hamming=dedupe_hamming,
                  cull_min_sharpness=min_sharpness, cull_max_clip=max_clip, cull_faces=faces)
    out = None if out_dir is None else Path(os.path.abspath(Path(out_dir).expanduser()))
    if out is not None and out == root:
        raise InvalidArgumentError(f"out_dir: expected a folder other than the input folder, got {str(out)!r}"
                                   " (the buckets go inside it; a sub-folder such as INPUT/culled is fine)")
    if cache is None and workspace is not None:
        cache = Path(workspace) / "cache" / "cull.sqlite"

    if s.cull.cull_faces:
        _check_face_detector()
    report = WalkReport()
    found = []
    for f in walk_images([str(root)], exts, recursive=True, report=report):
        if out is not None and (f.path == str(out) or f.path.startswith(str(out) + os.sep)):
            continue
        found.append(f)
    recs: list[dict[str, Any]] = []
    jobs: list[ExtractJob] = []
    tool = exiftool_path() if use_exiftool else None
    opts = f"{EXTRACT_VERSION}|faces={s.cull.cull_faces}|exiftool={tool is not None}|px={s.core.max_image_pixels}"
    for path, why in report.errors:
        if path.startswith(str(root) + os.sep):
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            recs.append({"path": rel, "ext": os.path.splitext(rel)[1].lower(), "status": "unreadable",
                         "reasons": [reason("unreadable", "scan", why)]})
    for f in found:
        rel = os.path.relpath(f.path, root).replace(os.sep, "/")
        if not f.valid_name:
            recs.append({"path": rel, "size": f.size, "mtime_ns": f.mtime_ns, "status": "unreadable",
                         "ext": os.path.splitext(rel)[1].lower(),
                         "reasons": [reason("unreadable", "scan", "the file name is not valid UTF-8")]})
            continue
        jobs.append(ExtractJob(abspath=f.path, path=rel, size=f.size, mtime_ns=f.mtime_ns,
                               max_pixels=s.core.max_image_pixels, faces=s.cull.cull_faces,
                               use_exiftool=tool is not None))
    store = CullCache(cache, str(root)) if cache is not None else None
    try:
        hits = store.get(((j.path, j.size, j.mtime_ns) for j in jobs), opts) if store is not None else {}
        todo = [j for j in jobs if j.path not in hits]
        fresh = list(imap_processes(extract_one, todo, workers=workers, progress=progress, desc="cull"))
        if store is not None:
            store.put((r for r in fresh if r.get("status") in ("ok", "metadata_only", "corrupt", "empty")), opts)
    finally:
        if store is not None:
            store.close()
    recs.extend(hits[j.path] for j in jobs if j.path in hits)
    recs.extend(fresh)
    recs.sort(key=lambda r: r["path"])
    run_passes(recs, s.cull)
    rerank_info = rerank.apply(recs, s.cull) if rerank is not None else None
    if out is not None:
        _write_outputs(recs, root, out, export, s, export_list, xmp, link, rerank_info)
    elif xmp:
        _write_sidecars(recs, root)
    df = to_frame(recs)
    df.attrs["cull"] = {"extracted": len(fresh), "cached": len(hits), "walk_errors": list(report.errors)}
    if rerank_info is not None:
        df.attrs["rerank"] = rerank_info
    return df


def _check_face_detector() -> None:
    """Raise ImagerankError now, not in every worker, when the face check cannot run."""
    from PIL import Image

    from ..errors import ImagerankError
    from .extract import faces_and_eyes

    try:
        faces_and_eyes(Image.new("L", (32, 32)))
    except ImportError as e:
        raise ImagerankError(f"faces: the face check needs OpenCV 4.x (pip install 'imagerank[cull]'): {e}") from e


def _write_sidecars(recs: list[dict[str, Any]], root: Path) -> None:
    from ..errors import ImagerankError

    for r in recs:
        if not r.get("bucket"):
            continue
        try:
            dest = write_xmp(root / r["path"], r["bucket"], raw=r.get("kind") == "raw")
            r["xmp_path"] = dest.relative_to(root).as_posix()
        except ImagerankError as e:
            r["reasons"].append(reason("xmp_failed", "xmp", str(e)[:300]))


def _write_outputs(recs: list[dict[str, Any]], root: Path, out: Path, mode: str, s: Settings,
                   export_list: str | os.PathLike[str] | None, xmp: bool, link: Callable[[str, Path], None],
                   rerank_info: dict[str, Any] | None = None) -> None:
    import json

    from ..errors import StorageError

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError(f"out_dir: cannot create {out}: {e.strerror or e}") from e
    for r in recs:
        b = r.get("bucket")
        if not b:
            continue
        src = str(root / r["path"])
        if not os.path.exists(src):
            r["export_method"] = "failed"
            r["reasons"].append(reason("export_failed", "export", "the file disappeared before its export"))
            continue
        r["export_path"], r["export_method"], why = export_file(src, out, b, r["path"], mode, link)
        if why is not None:
            r["reasons"].append(why)
    if xmp:
        _write_sidecars(recs, root)
    write_text_atomic(out / "manifest.jsonl", "".join(manifest_line(r) + "\n" for r in recs))
    cfg = {f: getattr(s.cull, f) for f in s.cull.__dataclass_fields__}
    doc = summary(recs, settings=cfg, weights=weights_of(s.cull), export=mode, version=__version__)
    doc["input"] = str(root)
    if rerank_info is not None:
        doc["rerank"] = rerank_info
    write_text_atomic(out / "summary.json", json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    kept = [str(root / r["path"]) for b in ("best", "good") for r in recs if r.get("bucket") == b]
    target = Path(export_list) if export_list is not None else out / "export.txt"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if e.errno != errno.EEXIST:
            raise StorageError(f"export list: cannot create {target.parent}: {e.strerror or e}") from e
    write_text_atomic(target, "".join(p + "\n" for p in kept))
