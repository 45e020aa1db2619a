"""Crop metrics, the baselines a crop proposer must beat, a generated set with known ideal crops, and the
evaluation that puts them side by side.

Baselines (:func:`centre_crop_boxes`, :func:`saliency_boxes`): a centred box of the training crops' median size,
and the spectral-residual saliency map (Hou & Zhang 2007, "Saliency Detection: A Spectral Residual Approach",
CVPR; on luma and two opponent colour channels) thresholded at 3x its mean, whose largest connected region's
bounding box is widened by the same margin the ideal crops have. Metrics: mean IoU and boundary displacement error
(mean absolute offset of the four edges, in fractions of the image side). Numpy and scipy only (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidArgumentError

if TYPE_CHECKING:
    from .crops import CropModel

__all__ = [
    "CropEvaluation",
    "boundary_displacement",
    "box_iou_xywh",
    "centre_crop_boxes",
    "evaluate_crops",
    "make_crop_set",
    "saliency_boxes",
    "spectral_residual",
]

_MARGIN = 0.15  # ideal crops of the generated set: the subject's box widened by 15 % of its size on each side


def _xyxy(b: np.ndarray) -> np.ndarray:
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], axis=1)


def box_iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) IoU of matching rows of two (N, 4) arrays of ``x, y, w, h`` boxes."""
    A, B = _xyxy(a), _xyxy(b)
    iw = np.clip(np.minimum(A[:, 2], B[:, 2]) - np.maximum(A[:, 0], B[:, 0]), 0, None)
    ih = np.clip(np.minimum(A[:, 3], B[:, 3]) - np.maximum(A[:, 1], B[:, 1]), 0, None)
    inter = iw * ih
    union = (A[:, 2] - A[:, 0]) * (A[:, 3] - A[:, 1]) + (B[:, 2] - B[:, 0]) * (B[:, 3] - B[:, 1]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def boundary_displacement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) boundary displacement error: mean |offset| of the left, top, right and bottom edges, in fractions of
    the image width / height (0 = same box)."""
    return np.abs(_xyxy(a) - _xyxy(b)).mean(axis=1)


# ---------------------------------------------------------------------------------------------- baselines
def centre_crop_boxes(n: int, size_wh: tuple[float, float]) -> np.ndarray:
    """(n, 4) centred ``x, y, w, h`` boxes of normalised size ``size_wh`` (e.g. the training crops' median)."""
    w, h = (min(max(float(v), 1e-3), 1.0) for v in size_wh)
    return np.tile(np.array([(1 - w) / 2, (1 - h) / 2, w, h], dtype=np.float32), (n, 1))


def spectral_residual(gray: np.ndarray, *, side: int = 64, blur_sigma: float = 2.5) -> np.ndarray:
    """Spectral-residual saliency map (Hou & Zhang 2007) of a 2-D image, resized to ``side`` pixels on its longest
    side as in the paper; returns an (h, w) float32 map scaled to [0, 1].

    ``R(f) = log|F| - (h_3 * log|F|)`` (3x3 local mean of the log amplitude spectrum); saliency
    ``g * |F^-1[exp(R + i phase)]|^2``, ``g`` a Gaussian of ``blur_sigma`` pixels.
    """
    from PIL import Image
    from scipy.ndimage import gaussian_filter, uniform_filter

    g = np.asarray(gray, dtype=np.float32)
    H, W = g.shape
    scale = side / max(H, W)
    im = Image.fromarray(g).resize((max(8, round(W * scale)), max(8, round(H * scale))), Image.Resampling.BILINEAR)
    a = np.asarray(im, dtype=np.float64)
    spec = np.fft.fft2(a)
    log_amp = np.log(np.abs(spec) + 1e-9)
    phase = np.angle(spec)
    residual = log_amp - uniform_filter(log_amp, size=3, mode="wrap")
    sal = np.abs(np.fft.ifft2(np.exp(residual + 1j * phase))) ** 2
    sal = gaussian_filter(sal, blur_sigma)
    sal -= sal.min()
    mx = sal.max()
    return (sal / mx if mx > 0 else sal).astype(np.float32)


def saliency_boxes(images: np.ndarray, *, margin: float = _MARGIN, threshold: float = 3.0,
                   fallback_wh: tuple[float, float] = (0.6, 0.6)) -> np.ndarray:
    """(N, 4) ``x, y, w, h`` boxes from spectral-residual saliency (luma and the two opponent colour channels,
    each thresholded, union): the bounding box of the largest connected region of pixels above ``threshold`` x
    the map's mean (Hou & Zhang's object map), widened by ``margin`` of its size on each side and clipped to the
    image; a centred ``fallback_wh`` box when nothing passes the threshold.

    Args:
        images: (N, H, W, 3) uint8 (or float) images.
    """
    from scipy.ndimage import label

    out = np.zeros((len(images), 4), np.float32)
    fb = centre_crop_boxes(1, fallback_wh)[0]
    for k, im in enumerate(images):
        a = np.asarray(im, dtype=np.float32)
        if a.ndim == 3:
            # luma and two opponent colour channels, each through spectral residual and thresholded on its own;
            # the object map is their union, so colour contrast counts as well as brightness contrast (a stronger
            # baseline than grey-level SR alone, while a channel of pure noise rarely passes its threshold)
            r, g, b = a[..., 0], a[..., 1], a[..., 2]
            chans = [0.299 * r + 0.587 * g + 0.114 * b, r - g, 0.5 * (r + g) - b]
        else:
            chans = [a]
        maps = [spectral_residual(c) for c in chans if c.std() > 0.5]  # a flat channel has no spectrum to read
        mask = np.logical_or.reduce([m > threshold * m.mean() for m in maps]) if maps else np.zeros((1, 1), bool)
        if not mask.any():
            out[k] = fb
            continue
        labels, n = label(mask)  # keep the largest connected region: scattered texture responses drop out
        if n > 1:
            sizes = np.bincount(labels.ravel())[1:]
            mask = labels == 1 + int(np.argmax(sizes))
        h, w = mask.shape
        ys, xs = np.nonzero(mask)
        x1, x2 = xs.min() / w, (xs.max() + 1) / w
        y1, y2 = ys.min() / h, (ys.max() + 1) / h
        mx, my = margin * (x2 - x1), margin * (y2 - y1)
        x1, y1, x2, y2 = max(0.0, x1 - mx), max(0.0, y1 - my), min(1.0, x2 + mx), min(1.0, y2 + my)
        out[k] = (x1, y1, x2 - x1, y2 - y1)
    return out


# ---------------------------------------------------------------------------------------------- generated set
def make_crop_set(n: int, *, size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A generated set with known ideal crops: a salient subject on a textured background.

    Each image: a background of two random colour gratings plus smooth value noise; a subject (an ellipse of a
    saturated colour with a darker rim and shading, 20–50 % of the side) somewhere in the frame; and 1–3
    small bright specks elsewhere (the kind of high-contrast detail that fools a pure saliency rule). The ideal
    crop is the subject's bounding box widened by 15 % of its size on each side, clipped to the image.

    Returns:
        images (n, size, size, 3) uint8, boxes (n, 4) float32 normalised ``x, y, w, h``.
    """
    import colorsys

    rng = np.random.default_rng(seed)
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size
    images = np.zeros((n, size, size, 3), np.uint8)
    boxes = np.zeros((n, 4), np.float32)
    for k in range(n):
        img = np.zeros((size, size, 3))
        for _ in range(2):
            th, fr = rng.uniform(0, np.pi), rng.uniform(4, 12)
            wave = 0.5 + 0.5 * np.sin(2 * np.pi * fr * (xx * np.cos(th) + yy * np.sin(th)) + rng.uniform(0, 6.3))
            img += 0.5 * wave[..., None] * rng.uniform(0.2, 0.8, 3)
        cells = rng.random((5, 5, 3))
        noise = np.kron(cells, np.ones((size // 4 + 1, size // 4 + 1, 1)))[:size, :size]
        img = 0.55 * img + 0.35 * noise
        rx, ry = rng.uniform(0.10, 0.25), rng.uniform(0.10, 0.25)
        cx, cy = rng.uniform(rx + 0.02, 1 - rx - 0.02), rng.uniform(ry + 0.02, 1 - ry - 0.02)
        d = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
        col = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.7, 1.0), rng.uniform(0.6, 1.0)))
        shade = 1.0 - 0.35 * np.clip(d, 0, 1)
        inside = d <= 1.0
        img[inside] = (col[None, :] * shade[inside][:, None])
        rim = (d > 0.8) & (d <= 1.0)
        img[rim] *= 0.45
        for _ in range(rng.integers(1, 4)):
            while True:
                sx, sy = rng.uniform(0.05, 0.95, 2)
                if ((sx - cx) / (rx + 0.08)) ** 2 + ((sy - cy) / (ry + 0.08)) ** 2 > 1.0:
                    break
            r = rng.uniform(0.012, 0.03)
            img[(xx - sx) ** 2 + (yy - sy) ** 2 <= r * r] = rng.choice([0.0, 1.0])
        img += rng.normal(0, 0.02, img.shape)
        images[k] = (np.clip(img, 0, 1) * 255).astype(np.uint8)
        x1, x2 = cx - rx * (1 + 2 * _MARGIN), cx + rx * (1 + 2 * _MARGIN)
        y1, y2 = cy - ry * (1 + 2 * _MARGIN), cy + ry * (1 + 2 * _MARGIN)
        x1, y1, x2, y2 = max(0.0, x1), max(0.0, y1), min(1.0, x2), min(1.0, y2)
        boxes[k] = (x1, y1, x2 - x1, y2 - y1)
    return images, boxes


@dataclass
class CropEvaluation:
    """Mean IoU and boundary displacement error of the proposer and both baselines on the same images.

    Attributes:
        table: DataFrame, one row per method (``proposer``, ``centre``, ``saliency``): method, n, mean_iou (0–1),
            bde (boundary displacement error, fractions of the image side).
        boxes: method -> (N, 4) float32 normalised ``x, y, w, h`` boxes it proposed.
        targets: (N, 4) float32 ideal boxes; images: (N, S, S, 3) uint8 evaluated images (or None).
    """

    table: Any  # DataFrame: method, n, mean_iou, bde
    boxes: dict[str, np.ndarray]
    targets: np.ndarray
    images: np.ndarray | None = None

    def __str__(self) -> str:
        return self.table.to_string(index=False, float_format=lambda x: f"{x:.3f}")

    def _repr_html_(self) -> str:
        return self.table.to_html(index=False, float_format="%.3f")

    def row(self, method: str) -> dict[str, float]:
        """``{"mean_iou", "bde"}`` of one method (``proposer``, ``centre``, ``saliency``); IndexError if absent."""
        r = self.table[self.table["method"] == method].iloc[0]
        return {"mean_iou": float(r["mean_iou"]), "bde": float(r["bde"])}

    def plot_examples(self, images: np.ndarray | None = None, k: int = 8, *, ncols: int = 3,
                      tile: float = 3.2) -> Any:
        """A matplotlib figure of ``k`` images with the ideal crop (green), the proposer's (red), centre crop
        (grey, dashed) and saliency (blue); ``images`` (N, S, S, 3) uint8 default to the evaluated ones.
        ``ncols`` images per row, each ``tile`` inches wide (about 300 px in a notebook), boxes 2.5 pt wide.

        Raises:
            InvalidArgumentError: no images to show.
        """
        import matplotlib.pyplot as plt
        from matplotlib.patches import Rectangle

        images = self.images if images is None else images
        if images is None or len(images) == 0:
            raise InvalidArgumentError("plot_examples: no images to show")
        k = min(k, len(images))
        ncols = max(1, min(int(ncols), k))
        nrows = -(-k // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(tile * ncols, tile * nrows + 0.5), squeeze=False)
        colours = {"ideal": ("#2ca02c", "-"), "proposer": ("#d62728", "-"), "centre": ("#7f7f7f", "--"),
                   "saliency": ("#1f77b4", ":")}
        for ax in axes.ravel()[k:]:
            fig.delaxes(ax)  # one axes per image
        for j in range(k):
            ax = axes.ravel()[j]
            S = images[j].shape[0]
            ax.imshow(images[j])
            for name, boxes in [("ideal", self.targets), *self.boxes.items()]:
                c, ls = colours.get(name, ("k", "-"))
                x, y, w, h = boxes[j] * S
                ax.add_patch(Rectangle((x, y), w, h, fill=False, ec=c, ls=ls, lw=2.5, label=name))
            ax.axis("off")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=11, frameon=False)
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / (tile * nrows + 0.5)))
        return fig


def evaluate_crops(model: CropModel, images: np.ndarray, targets: np.ndarray, *,
                   prior_wh: tuple[float, float] | None = None) -> CropEvaluation:
    """Mean IoU and boundary displacement error of ``model`` vs the centre-crop and saliency baselines.

    Args:
        model: a :class:`~imagerank.training.crops.CropModel`.
        images: (N, S, S, 3) uint8 held-out images; targets: (N, 4) their ideal normalised ``x, y, w, h`` boxes.
        prior_wh: the centre crop's normalised (w, h) (default the model's training crops' median, from its
            metadata, else the targets' median).

    Returns:
        A :class:`CropEvaluation` (its ``table`` has one row per method).
    """
    import pandas as pd

    targets = np.asarray(targets, np.float32)
    wh = prior_wh or model.metadata.get("prior_wh") or np.median(targets[:, 2:], axis=0)
    size = (float(wh[0]), float(wh[1]))
    pred, _ = model.propose(images)
    boxes = {"proposer": pred, "centre": centre_crop_boxes(len(images), size), "saliency": saliency_boxes(images)}
    rows = [{"method": k, "n": len(targets), "mean_iou": float(box_iou_xywh(v, targets).mean()),
             "bde": float(boundary_displacement(v, targets).mean())} for k, v in boxes.items()]
    return CropEvaluation(pd.DataFrame(rows), boxes, targets, np.asarray(images))

