"""Feature vectors for the ranker: CLIP embeddings from the sidecars, or cheap colour and quality statistics.

:func:`feature_matrix` is the one entry point. Its ``source``:

- ``"embeddings:<model>__<pretrained>"``: the L2-normalised vectors of ``sidecars/embeddings/<model>__<pretrained>``
  written by :mod:`imagerank.features` (read through its reader when that module is present, else straight from
  the parquet files).
- ``"cheap"``: :data:`CHEAP_FEATURES`, colour statistics and quality metrics computed from each image's thumbnail
  (one decode of a cached JPEG, no original is read), cached in ``sidecars/training/cheap-v1.parquet`` keyed by
  image id and file fingerprint. When the quality sidecar exists (``Collection.features_df("quality")``), its
  numeric columns are appended and the feature set is named ``cheap-v1+quality``. ``"cheap-v1"`` and
  ``"cheap-v1+quality"`` ask for one of the two exactly (a trained model asks for its own).
- ``"auto"``: the newest embedding set when one exists (else the one with the most images), else ``"cheap"``.

The feature set's name is stored with every trained model, so a checkpoint is never applied to vectors of another
kind (see :mod:`imagerank.training.registry`).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..catalog import Catalog, CatalogLike, as_catalog
from ..errors import FeatureError
from ..features.sidecar import features_frame
from ..media import ThumbnailCache

if TYPE_CHECKING:
    import pandas as pd


__all__ = ["CHEAP_FEATURES", "CHEAP_SET", "FeatureMatrix", "cheap_features", "feature_matrix", "list_feature_sets"]

CHEAP_SET = "cheap-v1"
#: Names of the cheap features, in column order (all float32; ranges in the comments of :func:`cheap_features`).
CHEAP_FEATURES: tuple[str, ...] = (
    "r_mean", "g_mean", "b_mean", "r_std", "g_std", "b_std",
    "luma_mean", "luma_p05", "luma_p50", "luma_p95", "contrast",
    "sat_mean", "sat_std", "hue_cos", "hue_sin", "colourfulness",
    "clip_dark", "clip_bright", "log_laplacian_var", "edge_density", "log_noise",
    "centre_luma_diff", "centre_sat_diff", "log_aspect", "log_megapixels",
)
_ANALYSIS_SIDE = 128  # thumbnails are reduced to this longest side before the statistics


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
def cheap_features(rgb: np.ndarray, width: int | None = None, height: int | None = None) -> np.ndarray:
    """The cheap feature vector of one image.

    Args:
        rgb: (H, W, 3) uint8 pixels (a thumbnail; reduce it first, statistics are resolution-light).
        width, height: the original's size in pixels (for aspect and megapixels; the array's size when None).

    Returns:
        (25,) float32 in :data:`CHEAP_FEATURES` order: channel means and SDs (0–1); luma (Rec. 601) mean,
        5/50/95th percentiles and RMS contrast (0–1); HSV saturation mean and SD; saturation-weighted mean
        hue as cos/sin; colourfulness (Hasler & Süsstrunk 2003, 0–1 scale); fractions of pixels with luma
        <= 2/255 and >= 253/255; log(1 + variance of the 4-neighbour Laplacian of luma in 0–255 units) as
        sharpness; fraction of pixels with gradient magnitude > 0.1; log of a noise proxy (median absolute
        Laplacian, Immerkær-style); centre-third minus border luma and saturation; log(width/height);
        log(megapixels).

    Raises:
        ValueError: not an (H, W, 3) array with H, W >= 3.
    """
    a = np.asarray(rgb)
    if a.ndim != 3 or a.shape[2] != 3 or a.shape[0] < 3 or a.shape[1] < 3:
        raise ValueError(f"rgb: expected an (H, W, 3) array with H, W >= 3, got shape {a.shape}")
    f = a.astype(np.float32) / 255.0
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    mx, mn = f.max(-1), f.min(-1)
    sat = np.where(mx > 1e-6, (mx - mn) / np.maximum(mx, 1e-6), 0.0)
    # hue in radians (HSV hexcone), weighted by saturation so grey pixels do not vote
    delta = np.maximum(mx - mn, 1e-6)
    hue = np.where(mx == r, ((g - b) / delta) % 6, np.where(mx == g, (b - r) / delta + 2, (r - g) / delta + 4))
    hue = hue * (np.pi / 3)
    wsum = float(sat.sum()) + 1e-6
    hue_cos = float((np.cos(hue) * sat).sum() / wsum)
    hue_sin = float((np.sin(hue) * sat).sum() / wsum)
    rg, yb = r - g, 0.5 * (r + g) - b
    colourfulness = float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
    l255 = luma * 255.0
    lap = (-4 * l255[1:-1, 1:-1] + l255[:-2, 1:-1] + l255[2:, 1:-1] + l255[1:-1, :-2] + l255[1:-1, 2:])
    gx = np.diff(luma, axis=1)[:-1, :]
    gy = np.diff(luma, axis=0)[:, :-1]
    grad = np.hypot(gx, gy)
    H, W = luma.shape
    cy0, cy1, cx0, cx1 = H // 3, H - H // 3, W // 3, W - W // 3
    centre = np.zeros_like(luma, dtype=bool)
    centre[cy0:cy1, cx0:cx1] = True
    border = ~centre
    w = float(width or W)
    h = float(height or H)
    p05, p50, p95 = np.percentile(luma, [5, 50, 95])
    vec = [
        r.mean(), g.mean(), b.mean(), r.std(), g.std(), b.std(),
        luma.mean(), p05, p50, p95, luma.std(),
        sat.mean(), sat.std(), hue_cos, hue_sin, colourfulness,
        (l255 <= 2).mean(), (l255 >= 253).mean(), np.log1p(lap.var()), (grad > 0.1).mean(),
        np.log1p(np.median(np.abs(lap))),
        luma[centre].mean() - luma[border].mean(), sat[centre].mean() - sat[border].mean(),
        np.log(max(w, 1.0) / max(h, 1.0)), np.log(max(w * h, 1.0) / 1e6),
    ]
    return np.asarray(vec, dtype=np.float32)


def _decode_thumb(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (_ANALYSIS_SIDE, _ANALYSIS_SIDE))
        im = im.convert("RGB")
        im.thumbnail((_ANALYSIS_SIDE, _ANALYSIS_SIDE))
        return np.asarray(im)


def cheap_cache_path(cat: Catalog) -> Path:
    return cat.sidecars_dir / "training" / f"{CHEAP_SET}.parquet"


def _cheap_matrix(cat: Catalog, ids: np.ndarray | None, progress: bool, skip_failures: bool,
                  with_quality: bool | None = None, compute: bool = True) -> FeatureMatrix:
    import pandas as pd
    from tqdm.auto import tqdm

    from ..media import fingerprint

    rows = cat.db.query(
        "SELECT id, size, mtime_ns, width, height, status FROM images WHERE status IN ('active', 'rejected') "
        "ORDER BY id"
    )
    meta = {int(r[0]): (fingerprint(r[1] or 0, r[2] or 0), r[3], r[4]) for r in rows}
    wanted = sorted(meta) if ids is None else sorted(int(i) for i in np.asarray(ids).tolist() if int(i) in meta)
    path = cheap_cache_path(cat)
    cached: dict[int, tuple[str, np.ndarray]] = {}
    if path.exists():
        try:
            df = pd.read_parquet(path)
            vals = df[list(CHEAP_FEATURES)].to_numpy(np.float32)
            for i, fp, v in zip(df["image_id"].to_numpy(), df["fingerprint"].to_numpy(), vals):
                cached[int(i)] = (str(fp), v)
        except Exception:  # an unreadable cache is rebuilt, never trusted
            cached = {}
    todo = [i for i in wanted if i not in cached or cached[i][0] != meta[i][0]] if compute else []
    failures = []
    new = 0
    for i in tqdm(todo, desc="cheap features", unit="img", disable=not progress or not todo, leave=False):
        data = ThumbnailCache(cat).read_bytes(i)
        try:
            if data is None:
                raise FeatureError(f"image {i}: no thumbnail could be built (file missing or undecodable)")
            vec = cheap_features(_decode_thumb(data), meta[i][1], meta[i][2])
        except Exception as e:
            if not skip_failures:
                raise FeatureError(f"cheap features of image {i} failed: {e}") from e
            failures.append((i, None, "cheap_features", f"{type(e).__name__}: {e}"[:500]))
            continue
        cached[i] = (meta[i][0], vec)
        new += 1
    cat.images.record_failures(failures)
    if new:
        keep = sorted(cached)
        out = pd.DataFrame(np.stack([cached[i][1] for i in keep]), columns=list(CHEAP_FEATURES))
        out.insert(0, "fingerprint", [cached[i][0] for i in keep])
        out.insert(0, "image_id", np.asarray(keep, dtype=np.int64))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        out.to_parquet(tmp, index=False)
        tmp.replace(path)
    have = np.asarray([i for i in wanted if i in cached and cached[i][0] == meta[i][0]], dtype=np.int64)
    X = np.stack([cached[int(i)][1] for i in have]).astype(np.float32) if len(have) else np.zeros(
        (0, len(CHEAP_FEATURES)), np.float32)
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

    Uses ``imagerank.features`` readers when they exist; otherwise reads the parquet files directly (one row per
    image: ``image_id`` and one list-of-float column; the last row of an id wins).
    """

    df: pd.DataFrame | None = None
    reader = getattr(cat, "embeddings", None) or getattr(cat, "embeddings_df", None)
    if callable(reader):
        try:
            got = reader(name)
        except Exception:
            got = None
        if isinstance(got, tuple) and len(got) >= 2:
            ids, X = np.asarray(got[0], dtype=np.int64), np.asarray(got[1], dtype=np.float32)
            order = np.argsort(ids, kind="stable")
            return ids[order], X[order]
        if got is not None and hasattr(got, "columns"):
            df = got
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
    """The newest embedding set (``Collection.embedding_sets`` metadata ``written_at``), else the embedding folder
    with the most images, else ``"cheap"``."""
    lister = getattr(cat, "embedding_sets", None)
    if callable(lister):
        try:
            sets = lister()
        except Exception:
            sets = None
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
        skip_failures: record an image whose thumbnail cannot be decoded in ``failures`` (stage
            ``cheap_features``) and leave it out; with False raise :class:`FeatureError`.
        compute: compute cheap features missing from the cache (new or changed images); False returns only the
            cached ones and never decodes (the live prior's vote path).

    Returns:
        A :class:`FeatureMatrix` ``(image_ids (N,) int64, X (N, D) float32, name)``; images without features
        are absent from it.

    Raises:
        FeatureError: unknown source, or the embedding sidecar is missing or unreadable.
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
