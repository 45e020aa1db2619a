"""Plots of the feature sidecars (matplotlib, built without ``pyplot``: each function returns a Figure).

Thumbnails come from the collection's thumbnail cache (built on demand); an image whose thumbnail cannot be
made shows as a grey tile with its id, never an error. Empty inputs give a figure that says so.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from ..catalog import Catalog, CatalogLike, as_catalog
from ..features.neighbors import feature_map
from ..features.sidecar import features_frame
from ..media import ThumbnailCache

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes


__all__ = [
    "duplicate_groups_grid",
    "feature_map_plot",
    "quality_distributions",
    "quality_extremes",
    "thumbnail_grid",
]

_QUALITY_PANELS: tuple[tuple[str, str, str | None, bool], ...] = (
    # column, label, Settings threshold (or None), log x-axis
    ("laplacian_var", "variance of the Laplacian (blur; log)", "blur_threshold", True),
    ("luma_mean", "mean luma (0–255)", None, False),
    ("clip_highlights", "fraction of clipped highlights", "clip_fraction_threshold", False),
    ("clip_shadows", "fraction of clipped shadows", None, False),
    ("noise_sigma", "noise estimate σ (luma units)", None, False),
    ("luma_std", "luma standard deviation (contrast)", None, False),
)


def _thumb(cat: Catalog, image_id: int, size: int = 256) -> np.ndarray:
    """(H, W, 3) uint8 thumbnail of ``image_id`` (a grey tile when it cannot be had)."""
    from PIL import Image

    data = ThumbnailCache(cat).read_bytes(int(image_id))
    if data is None:
        return np.full((size, size, 3), 200, np.uint8)
    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("RGB")
        im.thumbnail((size, size))
        return np.asarray(im)


def _empty(text: str) -> Figure:
    fig = Figure(figsize=(6, 1.5), layout="constrained")
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, text, ha="center", va="center")
    ax.set_axis_off()
    return fig


def thumbnail_grid(
    col: CatalogLike,
    image_ids: Sequence[int],
    *,
    titles: Sequence[str] | None = None,
    ncols: int = 6,
    tile: float = 1.8,
    suptitle: str | None = None,
) -> Figure:
    """A grid of thumbnails, one per id, with an optional title each.

    Args:
        image_ids: ids to show, in order.
        titles: one label per image (default: the file name).
        ncols: columns; rows follow.
        tile: inches per tile.
    """
    cat = as_catalog(col)
    ids = [int(i) for i in image_ids]
    if not ids:
        return _empty("no images")
    ncols = max(1, min(ncols, len(ids)))
    nrows = math.ceil(len(ids) / ncols)
    fig = Figure(figsize=(tile * ncols, tile * nrows + (0.4 if suptitle else 0)), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    names = cat.images.names(ids) if titles is None else {}
    for k, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if k < len(ids):
            ax.imshow(_thumb(cat, ids[k]))
            ax.set_title(titles[k] if titles is not None else _short(names.get(ids[k], f"#{ids[k]}")), fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def _short(name: str, keep: int = 22) -> str:
    """A file name cut in the middle to ``keep`` characters (the extension and the end stay readable)."""
    return name if len(name) <= keep else f"{name[:keep // 2 - 1]}…{name[-(keep - keep // 2):]}"


def quality_distributions(col: CatalogLike, df: pd.DataFrame | None = None) -> Figure:
    """Histograms of the quality metrics with the Settings thresholds as dashed lines.

    Args:
        df: ``col.features_df("quality")`` (read when None).
    """
    cat = as_catalog(col)
    df = features_frame(cat, "quality") if df is None else df
    if df is None or len(df) == 0:
        return _empty("no quality features yet: run col.compute_features(quality=True)")
    fig = Figure(figsize=(10, 5.5), layout="constrained")  # drawn at its size in a notebook: labels stay legible
    axes = fig.subplots(2, 3).ravel()
    s = cat.settings
    for ax, (column, label, threshold, log) in zip(axes, _QUALITY_PANELS):
        v = df[column].to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        if log:
            v = np.log10(np.maximum(v, 1e-3))
        ax.hist(v, bins=30, color="#4c72b0")
        ax.set_xlabel(label)
        ax.set_ylabel("images")
        if threshold is not None:
            t = float(getattr(s, threshold))
            ax.axvline(math.log10(t) if log else t, color="#c44e52", ls="--", label=f"{threshold} = {t:g}")
            ax.legend(fontsize=10)
        if column == "luma_mean":
            for t, name in ((s.dark_threshold, "dark_threshold"), (s.bright_threshold, "bright_threshold")):
                ax.axvline(t, color="#c44e52", ls="--")
                ax.text(t, ax.get_ylim()[1] * 0.95, f" {name}", fontsize=10, color="#c44e52", va="top",
                        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
    flags = ", ".join(f"{f}: {int(df[f].sum())}" for f in ("too_blurry", "too_dark", "too_bright",
                                                           "clipped_highlights"))
    fig.suptitle(f"quality of {len(df)} images — flagged {flags}")
    return fig


def quality_extremes(col: CatalogLike, metric: str = "laplacian_var", n: int = 6,
                     df: pd.DataFrame | None = None) -> Figure:
    """The ``n`` images with the lowest and the ``n`` with the highest ``metric``, in two rows."""
    cat = as_catalog(col)
    df = features_frame(cat, "quality") if df is None else df
    if df is None or len(df) == 0 or metric not in df.columns:
        return _empty(f"no quality metric {metric!r} yet: run col.compute_features(quality=True)")
    d = df[np.isfinite(df[metric].to_numpy(dtype=float))].sort_values(metric, kind="stable")
    n = max(1, min(n, len(d) // 2 or 1))
    low, high = d.head(n), d.tail(n).iloc[::-1]
    ids = [int(i) for i in (*low["image_id"], *high["image_id"])]
    names = cat.images.names(ids)
    values = [*low[metric], *high[metric]]
    titles = [f"{_short(names.get(i, f'#{i}'))}\n{v:.3g}" for i, v in zip(ids, values)]
    return thumbnail_grid(cat, ids, titles=titles, ncols=n,
                          suptitle=f"{metric}: lowest (top row) and highest (bottom row)")


def duplicate_groups_grid(col: CatalogLike, groups: Sequence[Sequence[int]], *, max_groups: int = 8,
                          max_per_group: int = 6, what: str = "near-duplicate") -> Figure:
    """One row of thumbnails per group (the first ``max_groups`` groups, ``max_per_group`` images each)."""
    cat = as_catalog(col)
    groups = [list(g) for g in groups][:max_groups]
    if not groups:
        return _empty(f"no {what} groups")
    width = min(max_per_group, max(len(g) for g in groups))
    fig = Figure(figsize=(1.8 * width, 1.9 * len(groups) + 0.4), layout="constrained")
    axes = fig.subplots(len(groups), width, squeeze=False)
    names = cat.images.names([int(i) for g in groups for i in g[:width]])
    for r, g in enumerate(groups):
        for c in range(width):
            ax = axes[r, c]
            ax.set_axis_off()
            if c < len(g):
                ax.imshow(_thumb(cat, g[c]))
                extra = f" (+{len(g) - width})" if c == width - 1 and len(g) > width else ""
                ax.set_title(f"{r + 1}: {_short(names.get(int(g[c]), f'#{g[c]}'))}{extra}", fontsize=8)
    fig.suptitle(f"{len(groups)} {what} group(s)")
    return fig


def feature_map_plot(col: CatalogLike, coords: pd.DataFrame | None = None, *, cells: int = 10,
                     zoom: float = 0.14, points: bool = True) -> Figure:
    """The 2-D map with one thumbnail per occupied cell of a ``cells`` x ``cells`` grid (the image nearest
    the cell centre), over a scatter of all images.

    Args:
        coords: ``col.feature_map()`` (computed when None).
        zoom: thumbnail scale on the figure (256-px thumbnails x zoom).
    """
    cat = as_catalog(col)
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    coords = feature_map(cat) if coords is None else coords
    if coords is None or len(coords) == 0:
        return _empty("nothing to map yet: run col.compute_features()")
    fig = Figure(figsize=(10, 8), layout="constrained")
    ax: Axes = fig.add_subplot()
    x, y = coords["x"].to_numpy(float), coords["y"].to_numpy(float)
    if points:
        ax.scatter(x, y, s=6, c="#999999", zorder=1)
    span_x, span_y = (np.ptp(x) or 1.0), (np.ptp(y) or 1.0)
    gx = np.minimum(((x - x.min()) / span_x * cells).astype(int), cells - 1)
    gy = np.minimum(((y - y.min()) / span_y * cells).astype(int), cells - 1)
    chosen: dict[tuple[int, int], tuple[int, float]] = {}
    x0, y0 = x.min(), y.min()
    for k in range(len(x)):
        cx = x0 + (gx[k] + 0.5) * span_x / cells
        cy = y0 + (gy[k] + 0.5) * span_y / cells
        key = (int(gx[k]), int(gy[k]))
        d = (x[k] - cx) ** 2 + (y[k] - cy) ** 2
        if key not in chosen or d < chosen[key][1]:
            chosen[key] = (k, float(d))
    for k, _ in chosen.values():
        img = OffsetImage(_thumb(cat, int(coords["image_id"].iloc[k]), 128), zoom=zoom * 2)
        ax.add_artist(AnnotationBbox(img, (x[k], y[k]), frameon=False, zorder=2))
    ratio = coords.attrs.get("explained_variance_ratio", [float("nan")] * 2)
    ax.set_xlabel(f"PC 1 ({ratio[0]:.0%} of variance)")
    ax.set_ylabel(f"PC 2 ({ratio[1]:.0%} of variance)")
    ax.set_title(f"map of {len(coords)} images by {coords.attrs.get('method', 'pca').upper()} of "
                 f"{coords.attrs.get('source', 'features')}")
    ax.margins(0.08)
    return fig
