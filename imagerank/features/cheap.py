"""Cheap colour and quality statistics of one image (the ``cheap`` sidecar, feature set ``cheap-v1``).

25 float32 numbers per image (:data:`CHEAP_FEATURES`) computed by the single-decode pass from the feature image
reduced to 128 px on the longest side (~1 ms per image): the ranker's and the live prior's features when no CLIP
embeddings exist. The sidecar is keyed by image id and file fingerprint like every other one, so a changed file is
recomputed by the next pass; ``log_aspect`` and ``log_megapixels`` come from the original's size (written by the
spec's ``on_write`` hook from the decode's result). :func:`imagerank.training.features.feature_matrix` reads it
(``"cheap"``, ``"cheap-v1"``, ``"cheap-v1+quality"``) and computes what is missing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
from PIL import Image

from ..catalog import Catalog, CatalogLike, as_catalog
from ..errors import InvalidArgumentError
from .sidecar import Sidecar
from .spec import FeatureContext, FeatureSpec, keyed_schema

__all__ = [
    "ANALYSIS_SIDE",
    "CHEAP",
    "CHEAP_FEATURES",
    "CHEAP_SET",
    "cheap_extractor",
    "cheap_features",
    "cheap_from_thumbnails",
    "has_cheap_features",
]

#: The feature set's name (stored with every model trained on it).
CHEAP_SET = "cheap-v1"
#: Names of the cheap features, in column order (all float32; ranges in the docstring of :func:`cheap_features`).
CHEAP_FEATURES: tuple[str, ...] = (
    "r_mean", "g_mean", "b_mean", "r_std", "g_std", "b_std",
    "luma_mean", "luma_p05", "luma_p50", "luma_p95", "contrast",
    "sat_mean", "sat_std", "hue_cos", "hue_sin", "colourfulness",
    "clip_dark", "clip_bright", "log_laplacian_var", "edge_density", "log_noise",
    "centre_luma_diff", "centre_sat_diff", "log_aspect", "log_megapixels",
)
#: Longest side (pixels) the image is reduced to before the statistics.
ANALYSIS_SIDE = 128


def cheap_features(rgb: np.ndarray, width: int | None = None, height: int | None = None) -> np.ndarray:
    """The cheap feature vector of one image.

    Args:
        rgb: (H, W, 3) uint8 pixels (reduce it first: the statistics are resolution-light; 128 px in the pass).
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
        InvalidArgumentError: not an (H, W, 3) array with H, W >= 3 (a ValueError).
    """
    a = np.asarray(rgb)
    if a.ndim != 3 or a.shape[2] != 3 or a.shape[0] < 3 or a.shape[1] < 3:
        raise InvalidArgumentError(f"rgb: expected an (H, W, 3) array with H, W >= 3, got shape {a.shape}")
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


def cheap_extractor(rgb: Image.Image, job: Any) -> dict[str, Any]:
    """The ``cheap`` extractor of the single-decode pass: :func:`cheap_features` of the feature image reduced to
    :data:`ANALYSIS_SIDE` (aspect and megapixels of the feature image; the ``on_write`` hook puts the original's)."""
    im = rgb.convert("RGB") if rgb.mode != "RGB" else rgb.copy()  # the feature image is shared: never resize it
    im.thumbnail((ANALYSIS_SIDE, ANALYSIS_SIDE))
    vec = cheap_features(np.asarray(im), rgb.width, rgb.height)
    return dict(zip(CHEAP_FEATURES, vec.tolist()))


def _original_size(values: dict[str, Any], ctx: FeatureContext) -> dict[str, Any]:
    """``log_aspect`` and ``log_megapixels`` of the original (the decode's displayed size), when known."""
    if not ctx.width or not ctx.height:
        return {}
    w, h = float(ctx.width), float(ctx.height)
    return {"log_aspect": math.log(max(w, 1.0) / max(h, 1.0)), "log_megapixels": math.log(max(w * h, 1.0) / 1e6)}


def cheap_metadata(ctx: FeatureContext) -> dict[str, Any]:
    """The ``cheap`` part files' metadata: the feature set's name and where its pixels came from."""
    return {
        "feature_set": CHEAP_SET,
        "analysis_side": ANALYSIS_SIDE,
        "feature_size": ctx.feature_size,
        "source": "the pass's feature image reduced to analysis_side (rejected images: their cached thumbnail)",
    }


#: The ``cheap`` sidecar: :data:`CHEAP_FEATURES` as float32 columns.
CHEAP = FeatureSpec(
    name="cheap",
    extractor=cheap_extractor,
    schema=keyed_schema([pa.field(c, pa.float32()) for c in CHEAP_FEATURES]),
    metadata=cheap_metadata,
    on_write=_original_size,
    description="25 colour, exposure and sharpness statistics (the ranker's cheap-v1 feature set)",
)


def has_cheap_features(col: CatalogLike) -> bool:
    """True when the ``cheap`` sidecar has at least one part file (reads no image, no row)."""
    cat = as_catalog(col)
    return bool(Sidecar(cat.sidecars_dir, CHEAP.name).parts())


def cheap_from_thumbnails(
    cat: Catalog, ids: Iterable[int]
) -> tuple[int, list[tuple[int | None, str | None, str, str]]]:
    """Compute the ``cheap`` rows of images the decode pass does not visit (rejected ones) from their cached
    thumbnails, and append them to the sidecar. Never decodes an original.

    Args:
        ids: image ids; those without a current thumbnail file are failures.

    Returns:
        (rows written, failures as (image_id, filepath, "cheap", reason)); failures are also recorded in the catalog.
    """
    from ..media import fingerprint, thumb_path

    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return 0, []
    size = int(cat.settings.thumb_size)
    rows: list[dict[str, Any]] = []
    failures: list[tuple[int | None, str | None, str, str]] = []
    for chunk in range(0, len(wanted), 500):
        part = wanted[chunk:chunk + 500]
        found = cat.db.query(
            f"SELECT id, filepath, size, mtime_ns, width, height, thumb_fingerprint FROM images "
            f"WHERE id IN ({','.join('?' * len(part))})", tuple(part))
        for r in found:
            fp = fingerprint(r["size"] or 0, r["mtime_ns"] or 0)
            path = thumb_path(cat.thumbs_dir, int(r["id"]), fp, size)
            try:
                if r["thumb_fingerprint"] != fp or not path.exists():
                    raise FileNotFoundError("no current thumbnail (the image is not active: it is not decoded)")
                with Image.open(path) as im:
                    im.draft("RGB", (ANALYSIS_SIDE, ANALYSIS_SIDE))
                    values = cheap_extractor(im.convert("RGB"), None)
                ctx = FeatureContext(cat.settings, None, r["width"], r["height"])
                rows.append(CHEAP.row(int(r["id"]), fp, values, ctx))
            except Exception as e:
                failures.append((int(r["id"]), r["filepath"], CHEAP.name, f"{type(e).__name__}: {e}"[:500]))
    Sidecar(cat.sidecars_dir, CHEAP.name).write(rows, schema=CHEAP.schema,
                                                metadata=CHEAP.file_metadata(FeatureContext(cat.settings)))
    cat.images.record_failures(failures)
    return len(rows), failures
