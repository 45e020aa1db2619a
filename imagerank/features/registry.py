"""The registry of per-image feature extractors run in the single-decode pass (name -> function)."""

from __future__ import annotations

from ..media import Extractor
from .exif import exif_extractor
from .hashing import hashes_extractor
from .quality import quality_extractor

__all__ = ["DECODE_FEATURES", "EXTRACTORS", "extractors_for"]

#: Features computed from the pixels by the single-decode pass (EXIF reads only the header).
DECODE_FEATURES: tuple[str, ...] = ("hashes", "quality")

EXTRACTORS: dict[str, Extractor] = {
    "hashes": hashes_extractor,
    "quality": quality_extractor,
    "exif": exif_extractor,
}


def extractors_for(names: tuple[str, ...] | list[str]) -> dict[str, Extractor]:
    """name -> extractor for ``names`` (unknown names are left out: the pass records them as failures)."""
    return {n: EXTRACTORS[n] for n in names if n in EXTRACTORS}
