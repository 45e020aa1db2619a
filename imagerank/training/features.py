"""Feature vectors for the ranker: CLIP embeddings from the sidecars, or cheap colour and quality statistics.

:func:`feature_matrix` is the one entry point. Its ``source``:

- ``"embeddings:<model>__<pretrained>"``: the L2-normalised vectors of ``sidecars/embeddings/<model>__<pretrained>``
  written by :mod:`imagerank.features`.
- ``"cheap"``: :data:`CHEAP_FEATURES`, colour statistics and quality metrics of each image: the ``cheap`` sidecar
  (:mod:`imagerank.features.cheap`), computed by the single-decode pass like hashes and quality and keyed by image
  id and file fingerprint (missing and stale rows are computed here unless ``compute=False``). When the quality
  sidecar exists (``Collection.features_df("quality")``), its numeric columns are appended and the feature set is
  named ``cheap-v1+quality``. ``"cheap-v1"`` and ``"cheap-v1+quality"`` ask for one of the two exactly (a trained
  model asks for its own).
- ``"auto"``: the newest embedding set when one exists (else the one with the most images), else ``"cheap"``.

The feature set's name is stored with every trained model, so a checkpoint is never applied to vectors of another
kind (see :mod:`imagerank.training.registry`). Workspaces from before the ``cheap`` sidecar have a private cache
``sidecars/training/cheap-v1.parquet``: it is never read (the sidecar is computed once instead) and may be deleted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..catalog import Catalog, CatalogLike, as_catalog
from ..errors import FeatureError
from ..features.cheap import CHEAP, CHEAP_FEATURES, CHEAP_SET, cheap_features, cheap_from_thumbnails, has_cheap_features
from ..features.pipeline import compute_features
from ..features.sidecar import Sidecar, current_fingerprints, features_frame, read_current

if TYPE_CHECKING:
    import pandas as pd


__all__ = [
    "CHEAP_FEATURES",
    "CHEAP_SET",
    "FeatureMatrix",
    "auto_source",
    "cheap_features",
    "feature_matrix",
    "has_cheap_features",
    "list_feature_sets",
]


class FeatureMatrix(NamedTuple):
    """Feature vectors of a set of images; unpacks as ``ids, X, name``.

    Attributes:
        image_ids: (N,) int64 image ids, ascending.
        X: (N, D) float32 feature rows, one per id.
        name: the feature set (``"cheap-v1"``, ``"embeddings:ViT-B-32__openai"`` ...).
    """

    image_ids: np.ndarray
    X: np.ndarray
    name: str

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """(M,) int64 row index of each id in ``ids``; -1 where the id has no features."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(self.image_ids) == 0:
            return np.full(ids.shape, -1, dtype=np.int64)
        pos = np.searchsorted(self.image_ids, ids).clip(0, len(self.image_ids) - 1)
        return np.where(self.image_ids[pos] == ids, pos, -1).astype(np.int64)


# ---------------------------------------------------------------------------------------------- cheap features
def _compute_cheap(cat: Catalog, wanted: list[int], status: dict[int, str], progress: bool,
                   skip_failures: bool) -> None:
    """Bring the ``cheap`` rows of ``wanted`` up to date: active images in the single-decode pass, rejected ones
    (which the pass does not visit) from their cached thumbnail."""
    active = [i for i in wanted if status[i] == "active"]
    if active:
        compute_features(cat, hashes=False, quality=False, exif=False, features=(CHEAP.name,), ids=active,
                         skip_failures=skip_failures, progress=progress)
    rejected = [i for i in wanted if status[i] == "rejected"]
    if rejected:
        have = Sidecar(cat.sidecars_dir, CHEAP.name).fingerprints()
        cur = current_fingerprints(cat, statuses=("rejected",))
        _, failures = cheap_from_thumbnails(cat, [i for i in rejected if have.get(i) != cur.get(i)])
        if failures and not skip_failures:
            i, _, _, reason = failures[0]
            raise FeatureError(f"cheap features of image {i} failed: {reason}"
                               + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""))


def _cheap_matrix(cat: Catalog, ids: np.ndarray | None, progress: bool, skip_failures: bool,
                  with_quality: bool | None = None, compute: bool = True) -> FeatureMatrix:
    rows = cat.db.query("SELECT id, status FROM images WHERE status IN ('active', 'rejected') ORDER BY id")
    status = {int(r[0]): str(r[1]) for r in rows}
    wanted = sorted(status) if ids is None else sorted({int(i) for i in np.asarray(ids).tolist() if int(i) in status})
    if compute and wanted:
        _compute_cheap(cat, wanted, status, progress, skip_failures)
    table = read_current(cat, CHEAP.name, CHEAP_FEATURES)  # sorted by image_id
    tids = np.asarray(table.column("image_id").to_numpy(zero_copy_only=False), dtype=np.int64)
    keep = np.isin(tids, np.asarray(wanted, dtype=np.int64))
    have = tids[keep]
    if len(have):
        X = np.column_stack([np.asarray(table.column(c).to_numpy(zero_copy_only=False), dtype=np.float32)
                             for c in CHEAP_FEATURES])[keep]
    else:
        X = np.zeros((0, len(CHEAP_FEATURES)), np.float32)
    name = CHEAP_SET
    quality = _quality_sidecar(cat) if with_quality is not False else None
    if with_quality and quality is None:
        raise FeatureError(f"features {CHEAP_SET}+quality: no quality sidecar; run "
                           "Collection.compute_features(quality=True) or use features='cheap-v1'")
    if quality is not None and len(have):
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        qcols = [c for c in quality.columns if c not in ("image_id", "fingerprint")
                 and is_numeric_dtype(quality[c]) and not is_bool_dtype(quality[c])]
        if qcols:
            q = quality.drop_duplicates("image_id", keep="last").set_index("image_id")[qcols]
            present = np.isin(have, q.index.to_numpy())
            have = have[present]
            X = np.concatenate([X[present], q.loc[have].to_numpy(np.float32)], axis=1)
            X = np.nan_to_num(X, nan=0.0, posinf=0.0, neginf=0.0)
            name = f"{CHEAP_SET}+quality"
    return FeatureMatrix(have, X, name)


def _quality_sidecar(cat: Catalog) -> pd.DataFrame | None:
    """The quality sidecar as a DataFrame (``features_frame(cat, "quality")``), or None when absent or unreadable."""
    try:
        df = features_frame(cat, "quality")
    except FeatureError:
        return None
    if df is None or len(df) == 0 or "image_id" not in df.columns:
        return None
    return df


# ---------------------------------------------------------------------------------------------- embeddings
def list_feature_sets(col: CatalogLike) -> dict[str, int]:
    """Feature sets available in the workspace: name -> number of images (cheap features are always listed)."""
    cat = as_catalog(col)
    out: dict[str, int] = {}
    root = cat.sidecars_dir / "embeddings"
    if root.is_dir():
        for d in sorted(p for p in root.iterdir() if p.is_dir() or p.suffix == ".parquet"):
            name = d.name[: -len(".parquet")] if d.suffix == ".parquet" else d.name
            try:
                ids, _ = _read_embeddings(cat, name)
            except FeatureError:
                continue
            if len(ids):
                out[f"embeddings:{name}"] = len(ids)
    out[CHEAP_SET] = int(cat.db.query("SELECT COUNT(*) FROM images WHERE status='active'")[0][0])
    return out


def _read_embeddings(cat: Catalog, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids (N,) int64 ascending, X (N, D) float32) of the embedding sidecar ``name`` (``<model>__<pretrained>``).

    The current row of each image (:func:`imagerank.features.neighbors.embedding_matrix`, L2-normalised) for
    sidecars imagerank wrote; parquet files written by other tools (``image_id`` and one list-of-float column, no
    fingerprints) are read as they are (the last row of an id wins).
    """
    from ..features.neighbors import embedding_matrix

    df: pd.DataFrame | None = None
    try:
        return embedding_matrix(cat, name)
    except (FeatureError, KeyError):
        pass
    if df is None:
        root = cat.sidecars_dir / "embeddings"
        path = root / name if (root / name).exists() else root / f"{name}.parquet"
        if not path.exists():
            known = ", ".join(sorted(p.name for p in root.iterdir())) if root.is_dir() else "none"
            raise FeatureError(f"features: no embedding sidecar {name!r} in {root} (known: {known}); "
                               "compute it with Collection.compute_features(...)")
        import pyarrow.dataset as ds

        try:
            df = ds.dataset(str(path), format="parquet").to_table().to_pandas()
        except Exception as e:
            raise FeatureError(f"embedding sidecar {path} is unreadable: {e}") from e
    if "image_id" not in df.columns:
        raise FeatureError(f"embedding sidecar {name!r} has no image_id column (columns: {list(df.columns)})")
    vec_col = next((c for c in ("embedding", "vector", "embeddings") if c in df.columns), None)
    if vec_col is None:
        vec_col = next((c for c in df.columns if len(df) and isinstance(df[c].iloc[0], (list, np.ndarray))), None)
    if vec_col is None:
        raise FeatureError(f"embedding sidecar {name!r} has no vector column (columns: {list(df.columns)})")
    df = df.drop_duplicates("image_id", keep="last").sort_values("image_id")
    ids = df["image_id"].to_numpy(np.int64)
    X = np.stack([np.asarray(v, dtype=np.float32) for v in df[vec_col]]) if len(df) else np.zeros((0, 0), np.float32)
    return ids, X


def auto_source(cat: Catalog) -> str:
    """The newest embedding set (its parquet metadata ``written_at``), else the embedding folder with the most
    images (sidecars written by other tools), else ``"cheap"``."""
    from ..features.neighbors import embedding_sets

    sets = embedding_sets(cat)
    if sets:
        return "embeddings:" + max(sets, key=lambda k: str((sets[k] or {}).get("written_at", "")))
    counts = {k: v for k, v in list_feature_sets(cat).items() if k.startswith("embeddings:")}
    return max(counts, key=lambda k: counts[k]) if counts else "cheap"


def feature_matrix(
    col: CatalogLike,
    source: str = "auto",
    *,
    ids: Any = None,
    progress: bool = False,
    skip_failures: bool = True,
    compute: bool = True,
) -> FeatureMatrix:
    """Feature vectors of the collection's images (active and rejected ones, or ``ids``).

    Args:
        col: the collection.
        source: ``"auto"``, ``"cheap"`` or ``"embeddings:<model>__<pretrained>"`` (see the module docstring).
        ids: restrict to these image ids.
        progress: show a ``tqdm.auto`` bar while computing cheap features.
        skip_failures: record an image that cannot be decoded in ``failures`` (stage ``decode`` or ``cheap``) and
            leave it out; with False raise :class:`FeatureError` (after writing the rows of the others).
        compute: compute cheap features missing from the ``cheap`` sidecar (new or changed images) in the
            single-decode pass; False returns only the current rows and never decodes (the live prior's vote
            path; :func:`has_cheap_features` says whether any were computed).

    Returns:
        A :class:`FeatureMatrix` ``(image_ids (N,) int64, X (N, D) float32, name)``; images without features
        are absent from it.

    Raises:
        FeatureError: unknown source; the embedding sidecar is missing or unreadable; ``cheap-v1+quality``
            without a quality sidecar; failures with ``skip_failures=False``.
    """
    cat = as_catalog(col)
    if source == "auto":
        source = auto_source(cat)
    wanted = {"cheap": None, CHEAP_SET: False, f"{CHEAP_SET}+quality": True}
    if source in wanted:
        return _cheap_matrix(cat, None if ids is None else np.asarray(ids), progress, skip_failures, wanted[source],
                             compute)
    if source.startswith("embeddings:"):
        name = source.split(":", 1)[1]
        eids, X = _read_embeddings(cat, name)
        if ids is not None:
            keep = np.isin(eids, np.asarray(ids, dtype=np.int64))
            eids, X = eids[keep], X[keep]
        return FeatureMatrix(eids, X.astype(np.float32, copy=False), source)
    raise FeatureError(f"features: expected 'auto', 'cheap' or 'embeddings:<model>__<pretrained>', got {source!r}")
