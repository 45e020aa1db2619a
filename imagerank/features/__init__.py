"""Per-image features in parquet sidecars: perceptual hashes, quality metrics, EXIF, cheap statistics, embeddings.

Every per-image feature is one module with its extractor and a :class:`~.spec.FeatureSpec` (name, extractor run in
the single-decode pass, parquet schema, metadata, write/read hooks), listed in :mod:`.registry`: ``hashes``
(:mod:`.hashing`), ``quality`` (:mod:`.quality`), ``exif`` (:mod:`.exif`, read from headers) and ``cheap``
(:mod:`.cheap`, the ranker's ``cheap-v1`` statistics). The pass hands the extractors to
:class:`imagerank.media.ThumbnailCache`. Importing this package imports nothing heavy; torch, open_clip and
Lightning are imported by :mod:`.embeddings` when embeddings are computed.

Writing: ``Collection.compute_features(hashes=True, quality=True, exif=True, embeddings="ViT-B-32:openai",
features=("cheap",), run=EmbeddingRun(devices=2, strategy="ddp"))`` or ``imagerank features WORKSPACE
--embeddings ViT-B-32:openai`` (see :func:`.pipeline.compute_features`).

Reading (the API other modules use):

- ``Collection.features_df("hashes" | "quality" | "exif" | "cheap" | "embeddings/<model>__<pretrained>")``: a
  pandas DataFrame, one row per image (the newest row whose file fingerprint matches the catalog), sorted by
  ``image_id``, with columns ``image_id`` (int64), ``fingerprint`` (str), ``computed_at`` and the sidecar's own
  columns (the spec's schema; its ``on_read`` hook applied: quality flags re-derived from the current Settings).
- ``Collection.embeddings(name=None)``: ``(image_ids (N,) int64 ascending, X (N, D) float32 L2-normalised)``;
  ``name`` is ``"<model>__<pretrained>"`` (or ``"embeddings/..."`` / ``"embeddings:..."``), default the only or
  the newest embedding sidecar. ``Collection.embedding_sets()`` lists them with their metadata.
- ``imagerank.features.sidecar.Sidecar(col.sidecars_dir, name).read()`` / ``.metadata()``: the raw
  ``pyarrow`` table and the file metadata (model, pretrained tag, image size, normalisation ...).
- Near-duplicates and maps: :mod:`.neighbors` (``Collection.near_duplicates``, ``exact_duplicates``,
  ``similar``, ``feature_map``).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "EmbeddingRun",
    "FeatureContext",
    "FeatureReport",
    "FeatureSpec",
    "Sidecar",
    "compute_features",
    "get_feature",
    "list_features",
    "read_current",
]

_LAZY = {
    "EmbeddingRun": ".pipeline",
    "FeatureReport": ".pipeline",
    "compute_features": ".pipeline",
    "FeatureContext": ".spec",
    "FeatureSpec": ".spec",
    "get_feature": ".registry",
    "list_features": ".registry",
    "Sidecar": ".sidecar",
    "read_current": ".sidecar",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'imagerank.features' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
