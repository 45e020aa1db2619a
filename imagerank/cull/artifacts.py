"""What a cull leaves on disk: the buckets, ``manifest.jsonl``, ``summary.json``, ``export.txt``.

Buckets are folders ``OUT/<bucket>/<path>`` (the file's path under the input folder, so equal names in different
folders never meet). Files are placed by hard link (falling back, per file, to a copy when the link is impossible —
another device or a file system without links — recorded as ``copy_fallback`` with a ``copied_across_devices``
reason), symbolic link or copy (through a temporary name, then linked into place so nothing is replaced). Nothing
is ever overwritten or deleted: a destination that already holds this file (same inode, same link target, or same
bytes) is kept as it is and recorded by what it is, so a re-run writes the same manifest; a destination holding
something else makes the file go to ``<stem>-1<ext>`` (then ``-2`` ...).

``manifest.jsonl``: one JSON object per file (the IR columns in order, times as ISO-8601, NaN as null), sorted by
path. ``summary.json``: counts, thresholds, weights, settings and the version, sorted keys, no clock time.
``export.txt``: the absolute paths of the ``best`` then ``good`` files, one per line (the list format of earlier
culls: a plain list of paths).
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import StorageError
from .ir import BUCKETS, IR_COLUMNS, reason

__all__ = ["export_file", "manifest_line", "summary", "write_text_atomic"]

_COPIED = "a hard link was impossible here (another device or file system): copied"
_CROSS = (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS)


def _same_bytes(a: str, b: str) -> bool:
    try:
        if os.path.getsize(a) != os.path.getsize(b):
            return False
        with open(a, "rb") as fa, open(b, "rb") as fb:
            while True:
                x, y = fa.read(1 << 20), fb.read(1 << 20)
                if x != y:
                    return False
                if not x:
                    return True
    except OSError:
        return False


def _existing(src: str, dest: Path, mode: str) -> str | None:
    """How ``dest`` already holds ``src`` (``hardlink``, ``symlink``, ``copy``/``copy_fallback``), or None."""
    if dest.is_symlink():
        return "symlink" if mode == "symlink" and os.readlink(dest) == src else None
    try:
        if os.path.samefile(src, dest):
            return "hardlink"
    except OSError:
        return None
    if mode != "symlink" and _same_bytes(src, str(dest)):
        return "copy_fallback" if mode == "hardlink" else "copy"
    return None


def _copy_new(src: str, dest: Path) -> None:
    """Copy ``src`` to ``dest`` through a temporary file; FileExistsError when ``dest`` appeared meanwhile."""
    tmp = dest.with_name(f".{uuid.uuid4().hex[:12]}.imagerank-part")
    try:
        shutil.copy2(src, tmp)
        os.link(tmp, dest)  # atomic, never replaces
    except OSError as e:
        if isinstance(e, FileExistsError) or e.errno not in _CROSS:
            raise
        if os.path.lexists(dest):
            raise FileExistsError(errno.EEXIST, "File exists", str(dest)) from None
        os.rename(tmp, dest)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def export_file(src: str, out_dir: Path, bucket: str, rel: str, mode: str,
                link: Callable[[str, Path], None] = os.link) -> tuple[str, str, dict[str, Any] | None]:
    """Place ``src`` at ``out_dir/bucket/rel`` by ``mode`` (``hardlink``, ``symlink``, ``copy``).

    Args:
        link: the hard-link call (``os.link``; tests hand in one that raises ``EXDEV``).

    Returns:
        (path relative to ``out_dir``, method, a reason record or None). Never raises for one file: a failure is
        method ``failed`` with an ``export_failed`` reason.
    """
    base = out_dir / bucket / rel
    stem, ext = os.path.splitext(base.name)
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
        for k in range(10_000):
            dest = base if k == 0 else base.with_name(f"{stem}-{k}{ext}")
            if os.path.lexists(dest):
                have = _existing(src, dest, mode)
                if have is None:
                    continue
                why = None if have != "copy_fallback" else reason("copied_across_devices", "export", _COPIED)
                return str(dest.relative_to(out_dir).as_posix()), have, why
            try:
                if mode == "symlink":
                    os.symlink(src, dest)
                    return dest.relative_to(out_dir).as_posix(), "symlink", None
                if mode == "hardlink":
                    try:
                        link(src, dest)
                        return dest.relative_to(out_dir).as_posix(), "hardlink", None
                    except FileExistsError:
                        raise
                    except OSError as e:
                        if e.errno not in _CROSS:
                            raise
                        _copy_new(src, dest)
                        return dest.relative_to(out_dir).as_posix(), "copy_fallback", reason(
                            "copied_across_devices", "export", _COPIED)
                _copy_new(src, dest)
                return dest.relative_to(out_dir).as_posix(), "copy", None
            except FileExistsError:
                continue
        raise OSError(errno.EEXIST, "no free name after 10000 tries", str(base))
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageError(f"cull export: the disk is full writing {base} ({e.strerror})") from e
        return base.relative_to(out_dir).as_posix(), "failed", reason(
            "export_failed", "export", f"cannot place the file: {e.strerror or e}")


def _jsonable(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float):
        return None if math.isnan(v) or math.isinf(v) else v
    if isinstance(v, bool | int | str):
        return v
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return str(v)


def manifest_line(rec: dict[str, Any]) -> str:
    """One manifest line: the IR columns of ``rec`` in schema order as JSON (no trailing newline)."""
    return json.dumps({n: _jsonable(rec.get(n)) for n, _ in IR_COLUMNS}, ensure_ascii=False,
                      allow_nan=False, separators=(",", ":"))


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename.

    Raises:
        StorageError: the disk is full or the folder cannot be written.
    """
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        raise StorageError(f"cull: cannot write {path}: {e.strerror or e}") from e
    finally:
        if tmp.exists():
            tmp.unlink()


def summary(recs: Sequence[dict[str, Any]], *, settings: dict[str, Any], weights: dict[str, float],
            export: str | None, version: str) -> dict[str, Any]:
    """The content of ``summary.json``: counts (files, buckets, statuses, preview sources, bursts, clusters),
    thresholds, weights, the ``[cull]`` settings, the export mode and the imagerank version (no clock time, so a
    re-run writes the same file)."""
    buckets = Counter(r.get("bucket") or "none" for r in recs)
    bursts = {r["burst_id"] for r in recs if r.get("burst_id") is not None}
    multi = {r["burst_id"] for r in recs if (r.get("burst_size") or 0) > 1}
    clusters = {r["cluster_id"] for r in recs if (r.get("cluster_size") or 0) > 1}
    return {
        "version": version,
        "ir_schema": 1,
        "files": len(recs),
        "buckets": {b: buckets.get(b, 0) for b in (*BUCKETS, "none")},
        "statuses": dict(sorted(Counter(str(r.get("status")) for r in recs).items())),
        "preview_sources": dict(sorted(Counter(str(r.get("preview_source")) for r in recs).items())),
        "reasons": dict(sorted(Counter(x["code"] for r in recs for x in r.get("reasons") or []).items())),
        "bursts": len(bursts),
        "bursts_of_two_or_more": len(multi),
        "near_duplicate_clusters": len(clusters),
        "exact_duplicates": sum(1 for r in recs if r.get("exact_duplicate_of")),
        "thresholds": {k: settings[k] for k in ("burst_gap_s", "cull_dedupe_hamming", "cull_min_sharpness",
                                                  "cull_max_clip", "cull_best_fraction")},
        "weights": weights,
        "settings": settings,
        "export": export,
    }
