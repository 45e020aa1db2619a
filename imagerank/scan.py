"""Discover image files under the workspace roots (stat only: no file is opened or read).

The walk follows symbolic links to folders but remembers every folder's (device, inode), so a symlink loop is
visited once. Folders that cannot be listed and non-UTF-8 file names are reported, never fatal.
"""

from __future__ import annotations

import os
import stat as stat_mod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

__all__ = ["FileStat", "WalkReport", "display_path", "walk_images"]


@dataclass(frozen=True)
class FileStat:
    """One discovered file: absolute path (str), size in bytes, modification time in ns."""

    path: str
    size: int
    mtime_ns: int
    valid_name: bool = True


@dataclass
class WalkReport:
    """Problems met while walking: (path, reason) pairs."""

    errors: list[tuple[str, str]] = field(default_factory=list)


def display_path(path: str) -> str:
    """``path`` as valid UTF-8 text: undecodable bytes (surrogate escapes) become ``\\xNN``."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")


def walk_images(
    roots: Iterable[str], extensions: Iterable[str], *, recursive: bool = True, report: WalkReport | None = None
) -> Iterator[FileStat]:
    """Yield every file under ``roots`` whose lower-cased suffix is in ``extensions``.

    Args:
        roots: folders to walk (absolute or relative; yielded paths are absolute).
        extensions: suffixes with the dot, lower case (``.jpg``).
        recursive: descend into sub-folders.
        report: collects unreadable folders, broken links and missing roots.

    Files with names that are not valid UTF-8 are yielded with ``valid_name=False`` and a
    :func:`display_path` so the caller can record them.
    """
    exts = tuple(e.lower() for e in extensions)
    report = report if report is not None else WalkReport()
    seen_dirs: set[tuple[int, int]] = set()
    stack: list[str] = []
    for root in roots:
        root_abs = os.path.abspath(os.fspath(root))
        try:
            st = os.stat(root_abs)
        except OSError as e:
            report.errors.append((root_abs, f"root not readable: {e.strerror or e}"))
            continue
        if not stat_mod.S_ISDIR(st.st_mode):
            report.errors.append((root_abs, "root is not a folder"))
            continue
        stack.append(root_abs)
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
        except OSError as e:
            report.errors.append((display_path(folder), f"folder not readable: {e.strerror or e}"))
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            continue
        seen_dirs.add(key)
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as e:
            report.errors.append((display_path(folder), f"folder not readable: {e.strerror or e}"))
            continue
        subdirs = []
        for entry in entries:
            name = entry.name
            try:
                if entry.is_dir():  # follows symlinks; loops are cut by seen_dirs
                    if recursive and not name.startswith("."):
                        subdirs.append(entry.path)
                    continue
                if not name.lower().endswith(exts) or name.startswith("._"):
                    continue
                est = entry.stat()  # follows symlinks
            except OSError as e:
                report.errors.append((display_path(entry.path), f"cannot stat: {e.strerror or e}"))
                continue
            if not stat_mod.S_ISREG(est.st_mode):
                continue
            shown = display_path(entry.path)
            yield FileStat(shown, est.st_size, est.st_mtime_ns, shown == entry.path)
        stack.extend(sorted(subdirs, reverse=True))
