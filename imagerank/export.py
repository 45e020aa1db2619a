"""Exports: top-N and above-threshold folders with rank-prefixed names, and CSV.

Exports never overwrite an existing file and never touch the sources: a name that is taken gets ``-1``, ``-2``
... before its suffix; a source that has gone missing is reported in the result, not fatal.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ExportError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EXPORT_MODES", "ExportReport", "export_images", "safe_name", "write_csv"]

EXPORT_MODES = ("copy", "symlink", "hardlink")


@dataclass
class ExportReport:
    """What an export wrote: ``written`` (source, destination) pairs, ``missing`` sources, ``failed`` (source,
    reason) and the folder."""

    out_dir: Path
    mode: str
    written: list[tuple[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        s = f"exported {len(self.written)} images to {self.out_dir} ({self.mode})"
        if self.missing:
            s += f"; {len(self.missing)} sources missing"
        if self.failed:
            s += f"; {len(self.failed)} failed"
        return s


def safe_name(name: str) -> str:
    """A file name that cannot leave its folder: path separators, ``..`` and control characters removed."""
    base = name.replace("\\", "/").split("/")[-1]
    base = "".join(c for c in base if c.isprintable() and c not in '<>:"|?*')
    base = base.lstrip(".") or "image"
    return base[:200]


def _free_path(folder: Path, name: str) -> Path:
    dest = folder / name
    stem, suffix = os.path.splitext(name)
    k = 1
    while dest.exists() or dest.is_symlink():
        dest = folder / f"{stem}-{k}{suffix}"
        k += 1
    return dest


def export_images(board: pd.DataFrame, out_dir: str | os.PathLike[str], *, mode: str = "copy") -> ExportReport:
    """Write the images of ``board`` (a leaderboard slice: rank, filepath, filename) into ``out_dir``.

    Args:
        board: rows in rank order with columns ``rank``, ``filepath``, ``filename``.
        out_dir: created if absent; existing files in it are never overwritten.
        mode: ``copy`` (default), ``symlink`` (absolute link) or ``hardlink`` (falls back to copy across
            file systems).

    Returns:
        An :class:`ExportReport`; names are ``<rank:04d>_<filename>``.

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
        if not os.path.isfile(src):
            report.missing.append(str(src))
            continue
        dest = _free_path(folder, f"{int(rank):04d}_{safe_name(str(filename))}")
        try:
            if mode == "copy":
                shutil.copy2(src, dest)
            elif mode == "symlink":
                os.symlink(os.path.abspath(src), dest)
            else:
                try:
                    os.link(src, dest)
                except OSError:
                    shutil.copy2(src, dest)
            report.written.append((str(src), str(dest)))
        except OSError as e:
            report.failed.append((str(src), f"{type(e).__name__}: {e}"))
    return report


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` as CSV at ``path`` (folders created); refuses to overwrite.

    Raises:
        ExportError: ``path`` exists.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(p, "x", encoding="utf-8", newline="") as fh:
            df.to_csv(fh, index=False)
    except FileExistsError:
        raise ExportError(f"{p} exists; choose another file name (exports never overwrite)") from None
    return p
