"""What a per-image feature is: :class:`FeatureSpec` (extractor, parquet schema, metadata, row hooks).

A new feature is one module: its extractor (a module-level function run on the single-decode pass's feature image)
and a ``FeatureSpec`` next to it, listed in :data:`imagerank.features.registry.FEATURES`. Everything else (which
images are stale, writing part files, reading them back, the pass's failure records) is generic::

    MEAN_RED = FeatureSpec(
        name="mean_red",
        extractor=mean_red_extractor,              # (feature image, DecodeJob) -> {"mean_red": 0.42}
        schema=keyed_schema([pa.field("mean_red", pa.float64())]),
        metadata=lambda ctx: {"range": "0-1"},     # optional: facts stored in the parquet file metadata
    )

This module imports pyarrow only (no feature module, no sidecar code), so every feature module can import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..errors import InvalidArgumentError

if TYPE_CHECKING:
    import pandas as pd

    from ..config import Settings
    from ..media import Extractor

__all__ = ["KEY_FIELDS", "FeatureContext", "FeatureSpec", "keyed_schema"]

#: The key columns of every sidecar row: ``image_id`` (int64), the file ``fingerprint`` (``"<size>-<mtime_ns>"``)
#: when the row was computed, and ``computed_at`` (UTC, ms).
KEY_FIELDS: tuple[pa.Field, ...] = (
    pa.field("image_id", pa.int64(), nullable=False),
    pa.field("fingerprint", pa.string(), nullable=False),
    pa.field("computed_at", pa.timestamp("ms", tz="UTC")),
)


def keyed_schema(fields: Iterable[pa.Field]) -> pa.Schema:
    """A sidecar schema: :data:`KEY_FIELDS` followed by ``fields`` (the feature's own columns)."""
    return pa.schema([*KEY_FIELDS, *fields])


@dataclass(frozen=True)
class FeatureContext:
    """What a spec's hooks may use when rows are written.

    Attributes:
        settings: the workspace's current :class:`~imagerank.config.Settings` (thresholds ...).
        feature_size: longest side (pixels) of the feature image the extractor saw; None outside the decode pass.
        width, height: the original's displayed size in pixels (after EXIF orientation) of the row being written;
            None in :attr:`FeatureSpec.metadata` calls and when unknown.
    """

    settings: Settings
    feature_size: int | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class FeatureSpec:
    """One per-image feature stored in the sidecar ``sidecars/<name>/``.

    Attributes:
        name: the sidecar name, lower case (``[a-z][a-z0-9_]*``), e.g. ``hashes``, ``quality``, ``cheap``.
        schema: the parquet schema of its rows, key columns first (build it with :func:`keyed_schema`).
        extractor: ``fn(feature image, DecodeJob) -> {column: value}`` run in the single-decode pass on the
            decode reduced to ``DecodeJob.feature_size`` (8-bit RGB PIL image); a module-level function (it is
            pickled to worker processes). None for features that are not computed from pixels (EXIF headers,
            model outputs written by their own pass).
        metadata: ``fn(FeatureContext) -> dict`` of JSON-able facts stored in each part file's metadata (the
            convention, library versions, thresholds ...); None stores only the generic facts.
        on_write: ``fn(values, FeatureContext) -> {column: value}`` run in the parent process on each row before
            it is written (values derived from the Settings or the original's size); its columns are merged into
            the row. None: the extractor's values are written as they are.
        on_read: ``fn(DataFrame, Settings) -> DataFrame`` applied by
            :func:`imagerank.features.sidecar.features_frame` (columns re-derived from the current Settings,
            e.g. the quality flags); may change the frame in place.
        description: one line for listings.

    Raises:
        InvalidArgumentError: a name that is not a valid plain sidecar name, or a schema without the key columns.
    """

    name: str
    schema: pa.Schema
    extractor: Extractor | None = None
    metadata: Callable[[FeatureContext], dict[str, Any]] | None = None
    on_write: Callable[[dict[str, Any], FeatureContext], dict[str, Any]] | None = None
    on_read: Callable[[pd.DataFrame, Settings], pd.DataFrame] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        import re

        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name or ""):
            raise InvalidArgumentError(f"feature name: expected lower-case [a-z][a-z0-9_]*, got {self.name!r}")
        missing = [f.name for f in KEY_FIELDS if f.name not in self.schema.names]
        if missing:
            raise InvalidArgumentError(f"feature {self.name!r}: schema lacks the key column(s) {missing}; "
                                       "build it with keyed_schema([...])")

    @property
    def columns(self) -> tuple[str, ...]:
        """The feature's own columns (the schema without the key columns), in order."""
        keys = {f.name for f in KEY_FIELDS}
        return tuple(n for n in self.schema.names if n not in keys)

    def file_metadata(self, ctx: FeatureContext) -> dict[str, Any]:
        """The JSON-able facts for a part file's metadata (``{}`` without a :attr:`metadata` function)."""
        return dict(self.metadata(ctx)) if self.metadata is not None else {}

    def row(self, image_id: int, fingerprint: str, values: dict[str, Any], ctx: FeatureContext) -> dict[str, Any]:
        """One sidecar row: the keys, the extractor's ``values`` and the :attr:`on_write` columns.

        Raises:
            Exception: whatever :attr:`on_write` raises (the pass records it as a failure of this feature).
        """
        row = {"image_id": int(image_id), "fingerprint": fingerprint, **values}
        if self.on_write is not None:
            row.update(self.on_write(values, ctx))
        return row
