"""The scan: discover files under the workspace's roots (stat only), bring the catalog in line, then run the
single-decode pass for new and changed files (thumbnails, and features when the caller hands in a pass)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..catalog.images import UpsertCounts
from ..scan import RAW_SUFFIXES, WalkReport, walk_images
from .thumbs import ThumbnailCache

if TYPE_CHECKING:
    from ..catalog import Catalog

__all__ = ["ScanReport", "scan_workspace"]


@dataclass
class ScanReport(UpsertCounts):
    """What a scan found: the catalog's upsert counts (added, changed, unchanged, missing, returned, retried,
    invalid_names), thumbnails built, images found corrupt, wall time in seconds, ``errors`` as (path, reason)
    pairs, ``skipped`` (path, reason) pairs of what the walk left out on purpose (hidden folders, ``._`` files,
    image files with other suffixes), ``skipped_extensions`` (suffix -> files) and ``hints`` (what to do about
    them). Every file met is counted in exactly one bucket, in ``errors`` or in ``skipped``.

    ``str(report)`` is the one-line summary; :meth:`describe` adds the errors, the skipped items and the hints."""

    thumbnails_built: int = 0
    corrupt: int = 0
    seconds: float = 0.0
    errors: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    skipped_extensions: dict[str, int] = field(default_factory=dict)
    hints: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"scan: {self.added} added, {self.changed} changed, {self.unchanged} unchanged, "
            f"{self.missing} missing, {self.returned} back, {self.corrupt} corrupt, "
            f"{self.invalid_names} bad names, {self.thumbnails_built} thumbnails, "
            f"{len(self.errors)} errors in {self.seconds:.2f} s"
            + (f", {self.retried} corrupt retried" if self.retried else "")
            + (f", {len(self.skipped)} skipped" if self.skipped else "")
        )

    def describe(self, limit: int = 20) -> str:
        """The summary line, then every error and skipped item with its reason (the first ``limit`` of each, then
        ``... N more``), then the hints; several lines of text."""
        lines = [str(self)]
        for title, items in (("errors", self.errors), ("skipped", self.skipped)):
            if items:
                lines.append(f"{title}:")
                lines += [f"  {path}: {why}" for path, why in items[:limit]]
                if len(items) > limit:
                    lines.append(f"  ... {len(items) - limit} more")
        lines += [f"hint: {h}" for h in self.hints]
        return "\n".join(lines)


def _extension_hints(catalog: Catalog, counts: dict[str, int]) -> list[str]:
    """What to do about image files skipped for their suffix: ``--ext`` for decodable ones, a note for RAW."""
    hints = []
    plain = {e: n for e, n in sorted(counts.items()) if e not in RAW_SUFFIXES}
    raw = {e: n for e, n in sorted(counts.items()) if e in RAW_SUFFIXES}
    if plain:
        what = ", ".join(f"{e} \u00d7{n}" for e, n in plain.items())
        exts = " ".join(f"--ext {e}" for e in (*catalog.settings.extensions, *plain))
        hints.append(
            f"{sum(plain.values())} files skipped for their extension ({what}): add them with "
            f"`imagerank init {catalog.root} {exts}` (--ext replaces the list) or `extensions` in imagerank.toml"
        )
    if raw:
        what = ", ".join(f"{e} \u00d7{n}" for e, n in raw.items())
        hints.append(f"{sum(raw.values())} RAW files skipped ({what}): imagerank does not decode RAW files; "
                     "rank their JPEG exports or previews instead")
    return hints


def scan_workspace(
    catalog: Catalog,
    *,
    thumbnails: bool = True,
    progress: bool = True,
    decode_pass: Callable[[], tuple[int, int]] | None = None,
) -> ScanReport:
    """Discover files under the roots, upsert them, mark vanished ones ``missing``, then build thumbnails.

    Stat only for discovery (no file reads); new and changed files are decoded once in a process pool to write
    their thumbnail; a file that cannot be decoded gets status ``corrupt`` with the decoder's reason (a file that
    was corrupt for an access or transient error, such as ``Permission denied``, is tried again). Missing files
    are never deleted from the catalog and become ``active`` again when they return. Full paths are the key: equal
    file names in two folders are two images.

    Args:
        thumbnails: run the decode pass after the upsert.
        decode_pass: the pass to run instead of the plain thumbnail pass (the feature pass hands in one that also
            runs its extractors on the same decode); returns (thumbnails written, images marked corrupt).

    Returns:
        A :class:`ScanReport`; every file met is counted in exactly one of its buckets, in ``errors`` or in
        ``skipped`` (with the reason, and ``hints`` where a setting would include it).
    """
    t0 = time.perf_counter()
    s = catalog.settings
    walk = WalkReport()
    found = {f.path: f for f in walk_images(s.roots, s.extensions, recursive=s.recursive, report=walk)}
    report = ScanReport(**vars(catalog.images.upsert(found)), errors=list(walk.errors), skipped=sorted(walk.skipped),
                        skipped_extensions=dict(walk.skipped_extensions))
    report.hints = _extension_hints(catalog, report.skipped_extensions)
    if thumbnails:
        run = decode_pass or (lambda: ThumbnailCache(catalog).build(progress=progress))
        report.thumbnails_built, report.corrupt = run()
    report.seconds = time.perf_counter() - t0
    return report
