"""The scan: discover files under the workspace's roots (stat only), bring the catalog in line, then run the
single-decode pass for new and changed files (thumbnails, and features when the caller hands in a pass)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..catalog.images import UpsertCounts
from ..scan import WalkReport, walk_images
from .thumbs import ThumbnailCache

if TYPE_CHECKING:
    from ..catalog import Catalog

__all__ = ["ScanReport", "scan_workspace"]


@dataclass
class ScanReport(UpsertCounts):
    """What a scan found: the catalog's upsert counts (added, changed, unchanged, missing, returned, invalid_names),
    thumbnails built, images found corrupt, wall time in seconds and ``errors`` as (path, reason) pairs. Every
    file met is counted in exactly one bucket or in ``errors``."""

    thumbnails_built: int = 0
    corrupt: int = 0
    seconds: float = 0.0
    errors: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"scan: {self.added} added, {self.changed} changed, {self.unchanged} unchanged, "
            f"{self.missing} missing, {self.returned} back, {self.corrupt} corrupt, "
            f"{self.invalid_names} bad names, {self.thumbnails_built} thumbnails, "
            f"{len(self.errors)} errors in {self.seconds:.2f} s"
        )


def scan_workspace(
    catalog: Catalog,
    *,
    thumbnails: bool = True,
    progress: bool = True,
    decode_pass: Callable[[], tuple[int, int]] | None = None,
) -> ScanReport:
    """Discover files under the roots, upsert them, mark vanished ones ``missing``, then build thumbnails.

    Stat only for discovery (no file reads); new and changed files are decoded once in a process pool to write
    their thumbnail; a file that cannot be decoded gets status ``corrupt`` with the decoder's reason. Missing files
    are never deleted from the catalog and become ``active`` again when they return. Full paths are the key: equal
    file names in two folders are two images.

    Args:
        thumbnails: run the decode pass after the upsert.
        decode_pass: the pass to run instead of the plain thumbnail pass (the feature pass hands in one that also
            runs its extractors on the same decode); returns (thumbnails written, images marked corrupt).

    Returns:
        A :class:`ScanReport`; every file met is counted in exactly one of its buckets or in ``errors``.
    """
    t0 = time.perf_counter()
    s = catalog.settings
    walk = WalkReport()
    found = {f.path: f for f in walk_images(s.roots, s.extensions, recursive=s.recursive, report=walk)}
    report = ScanReport(**vars(catalog.images.upsert(found)), errors=list(walk.errors))
    if thumbnails:
        run = decode_pass or (lambda: ThumbnailCache(catalog).build(progress=progress))
        report.thumbnails_built, report.corrupt = run()
    report.seconds = time.perf_counter() - t0
    return report
