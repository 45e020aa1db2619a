"""Parquet sidecars: per-image feature tables beside the catalog, keyed by image id and file fingerprint.

Layout: ``<workspace>/sidecars/<name>/part-<time_ns>-<pid>-<tag>.parquet`` where ``name`` is a registered
feature (``hashes``, ``quality``, ``exif``, ``cheap`` ...: :mod:`.registry`, whose specs give the schemas) or
``embeddings/<model>__<pretrained>``. Every row has ``image_id`` (int64),
``fingerprint`` (the file's ``"<size>-<mtime_ns>"`` when it was computed, see
:func:`imagerank.media.fingerprint`) and ``computed_at`` (UTC timestamp). An incremental run writes a new
part file (atomically: a hidden temporary file renamed into place); nothing is rewritten in place. File-level
metadata (key ``imagerank`` in the parquet schema metadata, JSON) says what the table is: sidecar name, schema
version, imagerank version, and per kind the hash convention, quality thresholds, or the embedding model,
pretrained tag, image size and normalisation.

Reading. :meth:`Sidecar.read` sees all parts as one table (``pyarrow.dataset``, schemas unified) and keeps the
latest row per ``image_id`` (parts are ordered by their time-stamped names, rows by position). With a catalog
(:func:`read_current`), rows whose fingerprint differs from the image's current one are stale and dropped; the
feature pass recomputes exactly those. Outside imagerank the parts are plain parquet::

    pd.read_parquet("ws/sidecars/quality")                          # every row ever written
    pl.read_parquet("ws/sidecars/quality/*.parquet")
    duckdb.sql("SELECT * FROM 'ws/sidecars/quality/*.parquet'")

(plain readers see superseded rows too: keep the last ``computed_at`` per ``image_id``, or call
``Collection.features_df(name)`` which does it, or :meth:`Sidecar.compact`).
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
import warnings
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..catalog import CatalogLike, as_catalog
from ..errors import FeatureError
from .spec import KEY_FIELDS

__all__ = [
    "KEY_COLUMNS",
    "META_KEY",
    "SCHEMA_VERSION",
    "Sidecar",
    "current_fingerprints",
    "embedding_schema",
    "features_frame",
    "known_schema",
    "list_sidecars",
    "normalise_name",
    "read_current",
]

META_KEY = b"imagerank"
SCHEMA_VERSION = 1
KEY_COLUMNS: tuple[str, ...] = ("image_id", "fingerprint", "computed_at")
_KEY_FIELDS = list(KEY_FIELDS)


def known_schema(name: str) -> pa.Schema | None:
    """The schema of the registered feature ``name`` (:mod:`.registry`), or None for other sidecars."""
    from .registry import FEATURES

    spec = FEATURES.get(name)
    return None if spec is None else spec.schema


_NAME = re.compile(r"^(hashes|quality|exif|embeddings/[A-Za-z0-9._+-]+__[A-Za-z0-9._+-]+|[a-z][a-z0-9_]*)$")


def embedding_schema(dim: int) -> pa.Schema:
    """Schema of an embedding sidecar: keys, ``embedding`` fixed_size_list<float32>[dim], ``source``."""
    return pa.schema(
        [*_KEY_FIELDS, pa.field("embedding", pa.list_(pa.float32(), int(dim))), pa.field("source", pa.string())]
    )


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Sidecar:
    """One sidecar table ``<sidecars>/<name>/`` made of parquet part files.

    Args:
        root: the workspace's ``sidecars/`` folder.
        name: ``hashes``, ``quality``, ``exif``, ``embeddings/<model>__<pretrained>`` or another lower-case name.

    Raises:
        FeatureError: ``name`` is not a valid sidecar name (it could escape ``root``).
    """

    def __init__(self, root: str | os.PathLike[str], name: str) -> None:
        name = normalise_name(name)
        self.root = Path(root)
        self.name = name
        self.path = self.root / name

    def __repr__(self) -> str:
        return f"Sidecar({self.name!r}, parts={len(self.parts())})"

    # ------------------------------------------------------------------ write
    def parts(self) -> list[Path]:
        """The part files, oldest first (their names start with a nanosecond time stamp)."""
        if not self.path.is_dir():
            return []
        return sorted(p for p in self.path.glob("part-*.parquet") if p.is_file())

    def new_part_path(self, tag: str = "") -> Path:
        """A fresh part file name, ordered after every existing part."""
        stamp = time.time_ns()
        last = self.parts()
        if last:
            m = re.match(r"part-(\d+)-", last[-1].name)
            if m and int(m.group(1)) >= stamp:
                stamp = int(m.group(1)) + 1
        suffix = f"-{tag}" if tag else ""
        return self.path / f"part-{stamp:020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}.parquet"

    def write(
        self,
        rows: Sequence[Mapping[str, Any]] | pa.Table,
        *,
        schema: pa.Schema | None = None,
        metadata: Mapping[str, Any] | None = None,
        tag: str = "",
    ) -> Path | None:
        """Append ``rows`` as a new part file (atomic rename); returns its path, or None when ``rows`` is empty.

        Args:
            rows: dicts with at least ``image_id`` and ``fingerprint`` (``computed_at`` defaults to now), or a
                table in ``schema``.
            schema: the table schema (default: the registered feature's, :func:`known_schema`).
            metadata: JSON-able facts stored under the ``imagerank`` key of the file metadata.

        Raises:
            FeatureError: rows do not fit the schema, or the folder cannot be written.
        """
        import pyarrow.parquet as pq

        if schema is None:
            schema = known_schema(self.name)
            if schema is None and isinstance(rows, pa.Table):
                schema = rows.schema
            if schema is None:
                raise FeatureError(f"sidecar {self.name!r}: no schema known; pass schema=")
        if isinstance(rows, pa.Table):
            table = rows
        else:
            if not rows:
                return None
            now = _now()
            filled = [r if r.get("computed_at") is not None else {**r, "computed_at": now} for r in rows]
            try:
                table = pa.Table.from_pylist(filled, schema=schema)
            except (pa.ArrowException, TypeError, ValueError, OverflowError) as e:
                raise FeatureError(f"sidecar {self.name!r}: rows do not fit its schema: {e}") from e
        if table.num_rows == 0:
            return None
        meta = {
            "sidecar": self.name,
            "schema_version": SCHEMA_VERSION,
            "imagerank_version": _version(),
            "written_at": _now().isoformat(),
            "rows": table.num_rows,
            **(metadata or {}),
        }
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: json.dumps(meta).encode()})
        dest = self.new_part_path(tag)
        tmp = dest.with_name("." + dest.name + ".tmp")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, tmp, compression="zstd")
            os.replace(tmp, dest)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise FeatureError(f"cannot write sidecar part {dest}: {e}") from e
        return dest

    # ------------------------------------------------------------------ read
    def metadata(self) -> dict[str, Any]:
        """The ``imagerank`` metadata of the newest readable part ({} when there is none)."""
        import pyarrow.parquet as pq

        for p in reversed(self.parts()):
            try:
                md = pq.read_schema(p).metadata or {}
            except Exception:
                continue
            if META_KEY in md:
                try:
                    return dict(json.loads(md[META_KEY]))
                except ValueError:
                    return {}
        return {}

    def read(self, columns: Sequence[str] | None = None, *, latest: bool = True) -> pa.Table:
        """All parts as one table (``pyarrow.dataset`` with unified schemas).

        Args:
            columns: columns to read (the key columns are always included). Default: all.
            latest: keep only the newest row per ``image_id`` (default); False gives every row ever written.

        Returns:
            A ``pyarrow.Table`` sorted by ``image_id`` when ``latest`` (else in write order); empty (with the
            known schema, or just the key columns) when the sidecar has no parts. Unreadable part files are
            skipped with a warning (their images are recomputed by the next feature pass).
        """
        import pyarrow.dataset as ds
        import pyarrow.parquet as pq

        files: list[str] = []
        schemas: list[pa.Schema] = []
        for p in self.parts():
            try:
                schemas.append(pq.read_schema(p))
                files.append(str(p))
            except Exception as e:
                warnings.warn(f"skipping unreadable sidecar part {p}: {e}", RuntimeWarning, stacklevel=2)
        base = known_schema(self.name) or pa.schema(_KEY_FIELDS)
        if not files:
            cols = list(base.names) if columns is None else _with_keys(columns, base.names)
            return base.empty_table().select([c for c in cols if c in base.names])
        try:
            schema = pa.unify_schemas([s.remove_metadata() for s in schemas], promote_options="permissive")
        except pa.ArrowException as e:
            raise FeatureError(f"sidecar {self.name!r}: part schemas cannot be unified: {e}") from e
        cols = list(schema.names) if columns is None else _with_keys(columns, schema.names)
        missing = [c for c in cols if c not in schema.names]
        if missing:
            raise FeatureError(f"sidecar {self.name!r} has no column(s) {missing}; columns: {schema.names}")
        dataset = ds.dataset(files, schema=schema, format="parquet")
        tables, order = [], []
        for i, frag in enumerate(dataset.get_fragments()):
            try:
                t = frag.to_table(schema=schema, columns=cols)
            except Exception as e:
                warnings.warn(f"skipping unreadable sidecar part {frag.path}: {e}", RuntimeWarning, stacklevel=2)
                continue
            tables.append(t)
            order.append(np.full(t.num_rows, i, dtype=np.int64))
        if not tables:
            return schema.empty_table().select(cols)
        table = pa.concat_tables(tables)
        if not latest or table.num_rows == 0:
            return table
        ids = table.column("image_id").to_numpy()
        part = np.concatenate(order)
        row = np.arange(len(ids))
        idx = np.lexsort((row, part, ids))
        sorted_ids = ids[idx]
        keep = np.ones(len(idx), dtype=bool)
        keep[:-1] = sorted_ids[:-1] != sorted_ids[1:]
        return table.take(pa.array(idx[keep]))

    def fingerprints(self) -> dict[int, str]:
        """image_id -> fingerprint of its newest row."""
        t = self.read(["image_id", "fingerprint"])
        return dict(zip(t.column("image_id").to_pylist(), t.column("fingerprint").to_pylist()))

    def compact(self) -> int:
        """Rewrite the newest row per image into one part and delete the parts read; returns parts removed.

        Safe while another process appends: only the parts listed at the start are deleted.
        """
        before = self.parts()
        if len(before) <= 1:
            return 0
        table = self.read()
        meta = self.metadata()
        meta.pop("rows", None)
        meta.pop("written_at", None)
        meta["compacted_from"] = len(before)
        written = self.write(table, schema=table.schema, metadata=meta, tag="compact")
        if written is None:
            return 0
        for p in before:
            p.unlink(missing_ok=True)
        return len(before)


def _with_keys(columns: Iterable[str], available: Sequence[str]) -> list[str]:
    cols = [c for c in KEY_COLUMNS if c in available]
    return cols + [c for c in columns if c not in cols]


def _version() -> str:
    from .._util import __version__

    return __version__


def normalise_name(name: str) -> str:
    """``embeddings:<m>__<p>`` -> ``embeddings/<m>__<p>``; validates the name.

    Raises:
        FeatureError: the name is not one of the sidecar name forms (see :class:`Sidecar`).
    """
    if name.startswith("embeddings:"):
        name = "embeddings/" + name.split(":", 1)[1]
    name = name.strip().strip("/")
    if not _NAME.match(name) or ".." in name:
        raise FeatureError(
            f"sidecar name: expected hashes, quality, exif or embeddings/<model>__<pretrained>, got {name!r}"
        )
    return name


def list_sidecars(root: str | os.PathLike[str]) -> list[str]:
    """Names of the sidecars with at least one part under ``root`` (``sidecars/``), sorted."""
    base = Path(root)
    out: list[str] = []
    if not base.is_dir():
        return out
    for d in sorted(base.rglob("part-*.parquet")):
        rel = d.parent.relative_to(base).as_posix()
        if rel not in out:
            try:
                out.append(normalise_name(rel))
            except FeatureError:
                continue
    return sorted(set(out))


def current_fingerprints(col: CatalogLike, *, statuses: Sequence[str] | None = None) -> dict[int, str]:
    """image_id -> the file's current fingerprint from the catalog (all images, or those in ``statuses``)."""
    cat = as_catalog(col)
    sql = "SELECT id, size, mtime_ns FROM images"
    params: tuple[Any, ...] = ()
    if statuses:
        sql += f" WHERE status IN ({','.join('?' * len(statuses))})"
        params = tuple(statuses)
    from ..media import fingerprint

    return {int(r[0]): fingerprint(r[1] or 0, r[2] or 0) for r in cat.db.snapshot_query(sql, params)}


def read_current(col: CatalogLike, name: str, columns: Sequence[str] | None = None) -> pa.Table:
    """The sidecar ``name`` of ``col``: newest row per image whose fingerprint matches the catalog's.

    Rows of images no longer in the catalog, and stale rows (the file changed since), are left out.
    """
    cat = as_catalog(col)
    table = Sidecar(cat.sidecars_dir, name).read(columns)
    if table.num_rows == 0:
        return table
    cur = current_fingerprints(cat)
    ids = table.column("image_id").to_pylist()
    fps = table.column("fingerprint").to_pylist()
    mask = np.fromiter((cur.get(i) == f for i, f in zip(ids, fps)), dtype=bool, count=len(ids))
    return table.filter(pa.array(mask))


def features_frame(col: CatalogLike, name: str, *, current: bool = True) -> Any:
    """Sidecar ``name`` as a pandas DataFrame, one row per image, sorted by ``image_id``.

    Args:
        name: ``hashes``, ``quality``, ``exif``, ``embeddings/<model>__<pretrained>`` (also ``embeddings:...``),
            or just ``embeddings`` for the newest embedding set.
        current: keep only rows whose fingerprint matches the catalog (default); False gives the newest row per
            image whatever its fingerprint.

    Returns:
        ``image_id`` (int64), ``fingerprint``, ``computed_at`` and the sidecar's columns, passed through the
        registered feature's ``on_read`` hook (the quality flags are re-derived from the collection's current
        Settings); an embedding's ``embedding`` column holds (D,)
        float32 arrays. Empty (with the columns) when nothing was computed.

    Raises:
        FeatureError: bad name, or ``embeddings`` when none exist.
    """
    cat = as_catalog(col)
    if name in ("embeddings", "embeddings/"):
        from .neighbors import _embedding_name

        name = _embedding_name(cat, None)
    name = normalise_name(name)
    table = read_current(cat, name) if current else Sidecar(cat.sidecars_dir, name).read()
    df = table.to_pandas()
    from .registry import FEATURES

    spec = FEATURES.get(name)
    if spec is not None and spec.on_read is not None and len(df.columns):
        df = spec.on_read(df, cat.settings)
    return df.sort_values("image_id", kind="stable").reset_index(drop=True) if "image_id" in df.columns else df
