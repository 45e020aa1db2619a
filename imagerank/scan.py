"""Discover image files under the workspace roots (stat only: no file is opened or read).

The walk follows symbolic links to folders but remembers every folder's (device, inode), so a symlink loop is
visited once. Folders that cannot be listed and non-UTF-8 file names are reported, never fatal. Paths are kept as
walked from the root (a symlinked sub-folder keeps the link's path); the workspace stores its roots resolved.

Nothing is skipped silently: hidden folders, macOS ``._`` resource files and image files whose suffix is not in
the workspace's extensions (``.tiff``, RAW files ...) are listed in :attr:`WalkReport.skipped` with the reason.
"""

from __future__ import annotations

import os
import stat as stat_mod
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

__all__ = ["IMAGE_SUFFIXES", "RAW_SUFFIXES", "FileStat", "WalkReport", "display_path", "walk_images"]

#: Camera RAW suffixes: reported when skipped (imagerank decodes no RAW file itself).
RAW_SUFFIXES: frozenset[str] = frozenset({
    ".3fr", ".arw", ".cr2", ".cr3", ".crw", ".dcr", ".dng", ".erf", ".iiq", ".k25", ".kdc", ".mef", ".mos", ".mrw",
    ".nef", ".nrw", ".orf", ".pef", ".raf", ".raw", ".rw2", ".rwl", ".sr2", ".srf", ".srw", ".x3f",
})
#: Suffixes of image files that are reported when the workspace's extensions leave them out.
IMAGE_SUFFIXES: frozenset[str] = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".tif", ".tiff", ".gif", ".bmp", ".heic", ".heif", ".avif",
    ".jxl", ".jp2", ".j2k", ".psd", ".ppm", ".pgm", ".pbm", ".tga", ".ico",
}) | RAW_SUFFIXES

SKIP_HIDDEN = "hidden folder (its name starts with '.'): not walked"
SKIP_APPLEDOUBLE = "macOS resource file ('._' name), not an image"


@dataclass(frozen=True)
class FileStat:
    """One discovered file: absolute path (str), size in bytes, modification time in ns."""

    path: str
    size: int
    mtime_ns: int
    valid_name: bool = True


@dataclass
class WalkReport:
    """What a walk met besides the files it yielded.

    Attributes:
        errors: (path, reason) of folders and files that could not be read.
        skipped: (path, reason) of what was left out on purpose: hidden folders, ``._`` files, image files whose
            suffix is not among the extensions.
        skipped_extensions: lower-case suffix -> number of image files skipped for it (``{".tiff": 7}``).
    """

    errors: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    skipped_extensions: Counter[str] = field(default_factory=Counter)


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
        report: collects unreadable folders, broken links and missing roots (``errors``), and hidden folders,
            ``._`` files and image files with other suffixes (``skipped``, ``skipped_extensions``).

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
                    if recursive and name.startswith("."):
                        report.skipped.append((display_path(entry.path), SKIP_HIDDEN))
                    elif recursive:
                        subdirs.append(entry.path)
                    continue
                lower = name.lower()
                if not lower.endswith(exts):
                    suffix = os.path.splitext(lower)[1]
                    if suffix in IMAGE_SUFFIXES and not name.startswith("._"):
                        report.skipped.append((display_path(entry.path), f"extension {suffix} is not in the "
                                               "workspace's extensions"))
                        report.skipped_extensions[suffix] += 1
                    continue
                if name.startswith("._"):
                    report.skipped.append((display_path(entry.path), SKIP_APPLEDOUBLE))
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
