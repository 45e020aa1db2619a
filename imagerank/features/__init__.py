"""Per-image features in parquet sidecars: perceptual hashes, quality metrics, EXIF, CLIP embeddings.

The extractors of the single-decode pass are registered in :mod:`.registry`: ``hashes`` (:mod:`.hashing`),
``quality`` (:mod:`.quality`) and ``exif`` (:mod:`.exif`, header only); the pass hands them to
:class:`imagerank.media.ThumbnailCache`. This package imports numpy and Pillow only; torch, open_clip and
Lightning are imported by :mod:`.embeddings` when embeddings are computed.

Writing: ``Collection.compute_features(hashes=True, quality=True, exif=True, embeddings="ViT-B-32:openai")``
or ``imagerank features WORKSPACE --embeddings ViT-B-32:openai`` (see :func:`.pipeline.compute_features`).

Reading (the API other modules use):

- ``Collection.features_df("hashes" | "quality" | "exif" | "embeddings/<model>__<pretrained>")``: a pandas
  DataFrame, one row per image (the newest row whose file fingerprint matches the catalog), sorted by
  ``image_id``, with columns ``image_id`` (int64), ``fingerprint`` (str), ``computed_at`` and the sidecar's own
  columns (see :data:`.sidecar.SCHEMAS`; quality flags re-derived from the current Settings).
- ``Collection.embeddings(name=None)``: ``(image_ids (N,) int64 ascending, X (N, D) float32 L2-normalised)``;
  ``name`` is ``"<model>__<pretrained>"`` (or ``"embeddings/..."`` / ``"embeddings:..."``), default the only or
  the newest embedding sidecar. ``Collection.embedding_sets()`` lists them with their metadata.
- ``imagerank.features.sidecar.Sidecar(col.sidecars_dir, name).read()`` / ``.metadata()``: the raw
  ``pyarrow`` table and the file metadata (model, pretrained tag, image size, normalisation ...).
- Near-duplicates and maps: :mod:`.neighbors` (``Collection.near_duplicates``, ``exact_duplicates``,
  ``similar``, ``feature_map``).
"""

from __future__ import annotations

from typing import Any

from .registry import DECODE_FEATURES, EXTRACTORS

__all__ = ["DECODE_FEATURES", "EXTRACTORS", "FeatureReport", "Sidecar", "compute_features", "read_current"]


def __getattr__(name: str) -> Any:
    if name in ("FeatureReport", "compute_features"):
        from . import pipeline

        return getattr(pipeline, name)
    if name in ("Sidecar", "read_current"):
        from . import sidecar

        return getattr(sidecar, name)
    raise AttributeError(f"module 'imagerank.features' has no attribute {name!r}")
