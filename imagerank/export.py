"""Exports: top-N and above-threshold folders with rank-prefixed names, and CSV.

Exports never overwrite an existing file and never touch the sources: a name that is taken gets ``-1``, ``-2``
... before its suffix; a source that has gone missing is reported in the result, not fatal. Every file is first
written under a temporary hidden name in the destination folder and then put in place under its final name
without replacing anything, so a full disk or an I/O error never leaves a half-written (or 0-byte) file under a
final name; the partial temporary file is removed.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from .errors import ExportError

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

__all__ = ["EXPORT_MODES", "MAX_NAME_BYTES", "ExportFailure", "ExportReport", "export_images", "safe_name",
           "write_csv"]

EXPORT_MODES = ("copy", "symlink", "hardlink")

MAX_NAME_BYTES = 200
"""Default cap of :func:`safe_name` in UTF-8 bytes: file systems allow 255 bytes per name, which leaves room
for the ``0001_`` rank prefix and a ``-12`` de-duplication suffix."""

_MAX_EXT_BYTES = 16  # a longer "extension" is part of the name, not an extension
_LINK_UNSUPPORTED = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}


class ExportFailure(NamedTuple):
    """One image an export could not write: its ``source`` path, the ``reason`` and its leaderboard ``rank``."""

    source: str
    reason: str
    rank: int


@dataclass
class ExportReport:
    """What an export wrote: ``written`` (source, destination) pairs, ``missing`` sources, ``failed``
    (:class:`ExportFailure`: source, reason, rank; every other rank was still attempted) and the folder."""

    out_dir: Path
    mode: str
    written: list[tuple[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    failed: list[ExportFailure] = field(default_factory=list)

    def __str__(self) -> str:
        s = f"exported {len(self.written)} images to {self.out_dir} ({self.mode})"
        if self.missing:
            s += f"; {len(self.missing)} sources missing"
        if self.failed:
            s += f"; {len(self.failed)} failed"
        return s


def _cap_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, never inside a multi-byte character."""
    return text.encode("utf-8", "ignore")[:max(limit, 0)].decode("utf-8", "ignore")


def safe_name(name: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """A file name that cannot leave its folder and fits a file system's name limit.

    Path separators, ``..``, leading dots and control characters are removed; the name is cut to ``max_bytes``
    UTF-8 bytes (never inside a multi-byte character) and keeps its extension (``.jpg``) in every case; an
    empty stem becomes ``image``.

    Args:
        name: the source file name (or a path: only its last part is used).
        max_bytes: the most UTF-8 bytes the result may have (default :data:`MAX_NAME_BYTES`, 200).

    Returns:
        The name, at most ``max_bytes`` bytes in UTF-8 (unless the extension alone is longer).
    """
    base = name.replace("\\", "/").split("/")[-1]
    base = "".join(c for c in base if c.isprintable() and c not in '<>:"|?*')
    stem, dot, ext = base.rpartition(".")
    if not dot or not ext or len(ext.encode("utf-8", "ignore")) > _MAX_EXT_BYTES or not ext.strip():
        stem, ext = base, ""
    else:
        ext = "." + ext
    stem = stem.lstrip(".")
    stem = _cap_bytes(stem, max_bytes - len(ext.encode("utf-8", "ignore"))) or "image"
    return stem + ext


def _free_path(folder: Path, name: str) -> Path:
    dest = folder / name
    stem, suffix = os.path.splitext(name)
    k = 1
    while dest.exists() or dest.is_symlink():
        dest = folder / f"{stem}-{k}{suffix}"
        k += 1
    return dest


def _temp_path(folder: Path, suffix: str) -> Path:
    """A fresh hidden name in ``folder`` for a file being written (short, whatever the final name)."""
    return folder / f".imagerank-{uuid.uuid4().hex[:12]}{_cap_bytes(suffix, _MAX_EXT_BYTES + 1)}.part"


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _place(tmp: Path, dest: Path) -> None:
    """Give the finished file ``tmp`` the name ``dest`` without replacing anything; ``tmp`` is gone afterwards.

    A hard link is atomic and fails when ``dest`` exists; where the file system has no hard links the file is
    renamed after a check (a race with another writer of the same name is then possible).

    Raises:
        FileExistsError: ``dest`` exists. OSError: the file system refused.
    """
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise
    except OSError as e:
        if e.errno not in _LINK_UNSUPPORTED:
            raise
        if os.path.lexists(dest):
            raise FileExistsError(errno.EEXIST, "File exists", str(dest)) from None
        os.rename(tmp, dest)
        return
    _unlink_quietly(tmp)


def _write_new(folder: Path, name: str, write: Callable[[Path], None]) -> Path:
    """Write a new file in ``folder`` called ``name`` (or ``name-1`` ... when taken) through a temporary file:
    ``write(tmp_path)`` fills it; the partial file is removed on any failure. Returns the final path."""
    tmp = _temp_path(folder, os.path.splitext(name)[1])
    try:
        write(tmp)
        while True:
            dest = _free_path(folder, name)
            try:
                _place(tmp, dest)
                return dest
            except FileExistsError:  # taken between the check and the link: the next free name
                continue
    finally:
        if os.path.lexists(tmp):
            _unlink_quietly(tmp)


def _link_new(folder: Path, name: str, make: Callable[[Path], None]) -> Path:
    """Create ``name`` (or ``name-1`` ...) in ``folder`` with ``make(dest)``, an atomic call that fails when
    ``dest`` exists (``os.symlink``, ``os.link``)."""
    while True:
        dest = _free_path(folder, name)
        try:
            make(dest)
            return dest
        except FileExistsError:
            continue


def _export_one(src: str, folder: Path, name: str, mode: str) -> Path:
    def copy(tmp: Path) -> None:
        shutil.copy2(src, tmp)

    if mode == "symlink":
        target = os.path.abspath(src)
        return _link_new(folder, name, lambda dest: os.symlink(target, dest))
    if mode == "hardlink":
        try:
            return _link_new(folder, name, lambda dest: os.link(src, dest))
        except OSError as e:
            if e.errno not in _LINK_UNSUPPORTED:
                raise
            # across file systems, or none: fall back to a copy
    return _write_new(folder, name, copy)


def _reason(e: OSError) -> str:
    return f"{type(e).__name__}: {e}"


def export_images(board: pd.DataFrame, out_dir: str | os.PathLike[str], *, mode: str = "copy") -> ExportReport:
    """Write the images of ``board`` (a leaderboard slice: rank, filepath, filename) into ``out_dir``.

    Every rank is attempted: an image that cannot be written (full disk, I/O error, a name the file system
    refuses) is listed in :attr:`ExportReport.failed` with its rank and reason, leaves no partial file, and the
    export goes on with the next rank.

    Args:
        board: rows in rank order with columns ``rank``, ``filepath``, ``filename``.
        out_dir: created if absent; existing files in it are never overwritten.
        mode: ``copy`` (default; written to a temporary name, then put in place), ``symlink`` (absolute link) or
            ``hardlink`` (falls back to copy across file systems).

    Returns:
        An :class:`ExportReport`; names are ``<rank:04d>_<filename>`` with the file name cut to
        :data:`MAX_NAME_BYTES` UTF-8 bytes (see :func:`safe_name`).

    Raises:
        ExportError: unknown mode, or ``out_dir`` cannot be created.
    """
    if mode not in EXPORT_MODES:
        raise ExportError(f"mode: expected one of {', '.join(EXPORT_MODES)}, got {mode!r}")
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot create export folder {folder}: {e}") from e
    report = ExportReport(folder, mode)
    for rank, src, filename in zip(board["rank"], board["filepath"], board["filename"]):
        src = str(src)
        try:
            if not os.path.isfile(src):
                report.missing.append(src)
                continue
            dest = _export_one(src, folder, f"{int(rank):04d}_{safe_name(str(filename))}", mode)
        except OSError as e:
            report.failed.append(ExportFailure(src, _reason(e), int(rank)))
            continue
        report.written.append((src, str(dest)))
    return report


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` as CSV at ``path`` (folders created); refuses to overwrite.

    The CSV is written to a temporary name beside ``path``, flushed to disk and only then given its name, so a
    failure (a full disk) leaves no file at ``path`` and no partial file, and the same call works again once
    the cause is gone.

    Args:
        df: the table; written without its index.
        path: the CSV file to create.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ExportError: ``path`` exists, or it cannot be written (the reason from the file system, e.g. "No space
            left on device").
    """
    p = Path(path)
    exists = f"{p} exists; choose another file name (exports never overwrite)"
    if os.path.lexists(p):
        raise ExportError(exists)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot create folder {p.parent} for {p.name}: {e}") from e
    tmp = _temp_path(p.parent, p.suffix)
    try:
        with open(tmp, "x", encoding="utf-8", newline="") as fh:
            df.to_csv(fh, index=False)
            fh.flush()
            os.fsync(fh.fileno())
        _place(tmp, p)
    except FileExistsError:
        raise ExportError(exists) from None
    except OSError as e:
        raise ExportError(f"cannot write {p}: {e.strerror or e}") from e
    finally:
        if os.path.lexists(tmp):
            _unlink_quietly(tmp)
    return p
