"""Technical quality metrics of one image: blur, exposure, clipping and noise, plus threshold flags.

All metrics are computed on the pass's *feature image* (the decoded image reduced to ``DecodeJob.feature_size``,
512 px on the longest side by default), so they do not depend on the original's resolution or the thumbnail
size. Luma is Rec. 601 (Pillow's ``convert("L")``: ``0.299 R + 0.587 G + 0.114 B``), 0–255.

Metrics (the ``quality`` sidecar's columns):

- ``laplacian_var``: variance of the 4-neighbour Laplacian of luma (Pech-Pacheco et al. 2000, "Diatom
  autofocusing in brightfield microscopy"; OpenCV's ``Laplacian(ksize=1).var()``). Low = blurry. NaN when the
  image is smaller than 3x3.
- ``clip_shadows`` / ``clip_highlights``: fraction (0–1) of pixels with luma <= 5 / >= 250 (within JPEG noise
  of pure black / white).
- ``luma_mean``, ``luma_std``, ``luma_p05``, ``luma_p50``, ``luma_p95``: luma statistics (0–255), percentiles
  from the 256-bin histogram (the lowest value whose cumulative share reaches p).
- ``noise_sigma``: Immerkær's fast noise estimate (Immerkær 1996, "Fast Noise Variance Estimation", CVIU 64(2)):
  ``sqrt(pi/2) / (6 (W-2)(H-2)) * sum |I * N|`` with ``N = [[1,-2,1],[-2,4,-2],[1,-2,1]]``, in luma units.
  Strong texture and edges raise it too: a proxy, comparable between images of one kind.

Flags (booleans) against :class:`~imagerank.config.Settings`: ``too_blurry`` (``laplacian_var <
blur_threshold``), ``too_dark`` (``luma_mean < dark_threshold``), ``too_bright`` (``luma_mean >
bright_threshold``), ``clipped_highlights`` (``clip_highlights > clip_fraction_threshold``). They are stored at
compute time and re-derived from the current settings when read (:func:`apply_flags`), so changing a threshold
needs no recomputation.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from PIL import Image

from .spec import FeatureContext, FeatureSpec, keyed_schema

if TYPE_CHECKING:
    import pandas as pd

    from ..config import Settings
    from ..media import DecodeJob

__all__ = [
    "FLAG_COLUMNS", "METRIC_COLUMNS", "QUALITY", "apply_flags", "quality_extractor", "quality_flags",
    "quality_metrics",
]

METRIC_COLUMNS: tuple[str, ...] = (
    "laplacian_var", "clip_shadows", "clip_highlights", "luma_mean", "luma_std", "luma_p05", "luma_p50", "luma_p95",
    "noise_sigma",
)
FLAG_COLUMNS: tuple[str, ...] = ("too_blurry", "too_dark", "too_bright", "clipped_highlights")
SHADOW_LEVEL = 5
HIGHLIGHT_LEVEL = 250
_IMMERKAER = math.sqrt(math.pi / 2.0) / 6.0


def _percentile(cdf: np.ndarray, p: float) -> float:
    return float(np.searchsorted(cdf, p * cdf[-1], side="left"))


def quality_metrics(im: Image.Image) -> dict[str, float]:
    """The quality metrics of ``im`` (any mode; reduce it first: cost is linear in pixels, ~3 ms at 512x384).

    Returns:
        :data:`METRIC_COLUMNS` -> float (see the module docstring for units and ranges).
    """
    grey = im if im.mode == "L" else im.convert("L")
    hist = np.asarray(grey.histogram()[:256], dtype=np.float64)
    n = float(hist.sum()) or 1.0
    levels = np.arange(256, dtype=np.float64)
    mean = float((hist * levels).sum() / n)
    var = float((hist * (levels - mean) ** 2).sum() / n)
    cdf = np.cumsum(hist)
    out = {
        "clip_shadows": float(hist[: SHADOW_LEVEL + 1].sum() / n),
        "clip_highlights": float(hist[HIGHLIGHT_LEVEL:].sum() / n),
        "luma_mean": mean,
        "luma_std": math.sqrt(max(var, 0.0)),
        "luma_p05": _percentile(cdf, 0.05),
        "luma_p50": _percentile(cdf, 0.50),
        "luma_p95": _percentile(cdf, 0.95),
    }
    a = np.asarray(grey, dtype=np.int16)  # exact integer arithmetic: |values| <= 4080 fit in int16
    if a.shape[0] < 3 or a.shape[1] < 3:
        out["laplacian_var"] = float("nan")
        out["noise_sigma"] = float("nan")
        return out
    c4 = a[1:-1, 1:-1] * 4
    cross = a[:-2, 1:-1] + a[2:, 1:-1]
    cross += a[1:-1, :-2]
    cross += a[1:-1, 2:]
    lap = (cross - c4).astype(np.float32).ravel()
    n = lap.size
    mean = float(lap.sum(dtype=np.float64)) / n
    out["laplacian_var"] = max(float(np.dot(lap, lap)) / n - mean * mean, 0.0)
    conv = a[:-2, :-2] + a[:-2, 2:]  # the Immerkaer mask at every interior pixel: diagonals - 2 cross + 4 centre
    conv += a[2:, :-2]
    conv += a[2:, 2:]
    conv -= cross * 2
    conv += c4
    np.abs(conv, out=conv)
    out["noise_sigma"] = float(_IMMERKAER * conv.sum(dtype=np.int64) / n)
    return {k: out[k] for k in METRIC_COLUMNS}


def quality_flags(metrics: dict[str, float], settings: Settings) -> dict[str, bool]:
    """The four flags of one image's metrics against ``settings``' thresholds (NaN metrics flag nothing)."""
    lap = metrics.get("laplacian_var", float("nan"))
    mean = metrics.get("luma_mean", float("nan"))
    clip = metrics.get("clip_highlights", float("nan"))
    return {
        "too_blurry": bool(lap < settings.blur_threshold),
        "too_dark": bool(mean < settings.dark_threshold),
        "too_bright": bool(mean > settings.bright_threshold),
        "clipped_highlights": bool(clip > settings.clip_fraction_threshold),
    }


def apply_flags(df: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Set the flag columns of a quality table from its metrics and ``settings`` (in place; returns ``df``)."""
    if len(df.columns) and "laplacian_var" in df.columns:
        df["too_blurry"] = (df["laplacian_var"] < settings.blur_threshold).fillna(False).astype(bool)
        df["too_dark"] = (df["luma_mean"] < settings.dark_threshold).fillna(False).astype(bool)
        df["too_bright"] = (df["luma_mean"] > settings.bright_threshold).fillna(False).astype(bool)
        df["clipped_highlights"] = (df["clip_highlights"] > settings.clip_fraction_threshold).fillna(False).astype(bool)
    return df


def quality_extractor(rgb: Image.Image, job: DecodeJob) -> dict[str, Any]:
    """The ``quality`` extractor of the single-decode pass (metrics only; flags are set when rows are written)."""
    return dict(quality_metrics(rgb))


def quality_metadata(ctx: FeatureContext) -> dict[str, Any]:
    """The ``quality`` part files' metadata: luma convention, clipping levels and the flags' thresholds."""
    s = ctx.settings
    return {
        "luma": "Rec. 601 (Pillow convert('L'))",
        "feature_size": ctx.feature_size,
        "shadow_level": SHADOW_LEVEL,
        "highlight_level": HIGHLIGHT_LEVEL,
        "thresholds": {
            "blur_threshold": s.blur_threshold,
            "dark_threshold": s.dark_threshold,
            "bright_threshold": s.bright_threshold,
            "clip_fraction_threshold": s.clip_fraction_threshold,
        },
    }


def _flags_on_write(values: dict[str, Any], ctx: FeatureContext) -> dict[str, Any]:
    return dict(quality_flags(values, ctx.settings))


#: The ``quality`` sidecar: :data:`METRIC_COLUMNS` (float64) and :data:`FLAG_COLUMNS` (bool; set when written and
#: re-derived from the current Settings when read).
QUALITY = FeatureSpec(
    name="quality",
    extractor=quality_extractor,
    schema=keyed_schema([*(pa.field(c, pa.float64()) for c in METRIC_COLUMNS),
                         *(pa.field(c, pa.bool_()) for c in FLAG_COLUMNS)]),
    metadata=quality_metadata,
    on_write=_flags_on_write,
    on_read=apply_flags,
    description="blur, exposure, clipping and noise metrics with threshold flags",
)
