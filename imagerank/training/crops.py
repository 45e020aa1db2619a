"""The crop proposer: a box and a confidence from the spatial features of an image, with baselines to beat.

Network (:class:`CropNet`): a backbone giving a feature map (B, C, h, w) — a small conv net
(:class:`ConvBackbone`, trained from scratch) or the patch tokens of an open_clip ViT (:class:`ClipPatchBackbone`,
frozen) — and a :class:`BoxHead`: a 1x1 conv scores every location, the softmax of those scores is an attention map
whose expectation over the grid is the box centre (a soft-argmax, so the centre is grounded in where the subject
is); the attention-pooled and the mean features give width, height and a confidence logit.

Loss (IoU-aware, as DETR): ``l1_weight * L1(box) + giou_weight * GIoU loss`` (Rezatofighi et al. 2019,
``torchvision.ops.generalized_box_iou_loss``), plus a BCE that teaches the confidence to predict the IoU the box
will have (so "confidence" reads as expected IoU, 0–1).

Baselines (:func:`centre_crop_boxes`, :func:`saliency_boxes`): a centred box of the training crops' median size,
and the spectral-residual saliency map (Hou & Zhang 2007, "Saliency Detection: A Spectral Residual Approach",
CVPR; on luma and two opponent colour channels) thresholded at 3x its mean, whose largest connected region's
bounding box is widened by the same margin the ideal crops have. Metrics:
mean IoU and boundary displacement error (mean absolute offset of the four edges, in fractions of the image side).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric

from ..catalog import Catalog, CatalogLike, as_catalog
from ..errors import InvalidArgumentError, NoVotesError
from ..media import ThumbnailCache
from .ranker import OptimConfig, cpu_threads, make_trainer, pick_device, quiet_lightning, versions

if TYPE_CHECKING:
    import pandas as pd

    from .jobs import TrainingJob

__all__ = [
    "BoxHead",
    "ClipPatchBackbone",
    "ConvBackbone",
    "CropEvaluation",
    "CropModel",
    "CropNet",
    "CropProposer",
    "boundary_displacement",
    "box_iou_xywh",
    "centre_crop_boxes",
    "crop_arrays",
    "evaluate_crop_model",
    "evaluate_crops",
    "make_crop_set",
    "saliency_boxes",
    "spectral_residual",
    "train_crop_proposer",
]

_MARGIN = 0.15  # ideal crops of the generated set: the subject's box widened by 15 % of its size on each side
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


# ---------------------------------------------------------------------------------------------- networks
class ConvBackbone(nn.Module):
    """A small conv net: (B, 3, S, S) in [0, 1] -> (B, 2*width, S/8, S/8) feature map (stride 8, BN + ReLU)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width

        def block(i: int, o: int, s: int, d: int = 1) -> list[nn.Module]:
            return [nn.Conv2d(i, o, 3, s, padding=d, dilation=d, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

        self.body = nn.Sequential(*block(3, w // 2, 2), *block(w // 2, w, 2), *block(w, 2 * w, 2),
                                  *block(2 * w, 2 * w, 1, 2), *block(2 * w, 2 * w, 1, 1))
        self.out_channels = 2 * w
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body((x - self.mean) / self.std)


class ClipPatchBackbone(nn.Module):
    """The patch tokens of an open_clip vision transformer as a feature map (frozen).

    (B, 3, S, S) in [0, 1] is resized to the model's input size, normalised with its mean/std and run to the last
    block; the patch tokens (after the final LayerNorm) come back as (B, width, G, G), G = input / patch size.

    Args:
        model_name: an open_clip ViT name (``ViT-B-32`` ...).
        pretrained: an open_clip pretrained tag or a local weights file; None for random weights (tests).
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, model_name: str = "ViT-B-32", pretrained: str | None = None) -> None:
        super().__init__()
        import open_clip

        model = open_clip.create_model(model_name, pretrained=pretrained)
        self.visual = model.visual
        self.visual.requires_grad_(False)
        self.visual.eval()
        size = self.visual.image_size
        self.input_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.out_channels = int(self.visual.transformer.width)
        mean = getattr(self.visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN
        std = getattr(self.visual, "image_std", None) or open_clip.OPENAI_DATASET_STD
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> ClipPatchBackbone:
        super().train(mode)
        self.visual.eval()  # frozen: keep dropout / norm statistics fixed
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        x = (x - self.mean) / self.std
        with torch.no_grad():
            out = self.visual.forward_intermediates(x, indices=1, intermediates_only=True,
                                                   normalize_intermediates=True, output_fmt="NCHW")
        return out["image_intermediates"][-1].float()


class BoxHead(nn.Module):
    """Box + confidence from a feature map: soft-argmax centre, pooled features -> width, height, confidence.

    Input (B, C, h, w); output (boxes (B, 4) normalised ``x1, y1, x2, y2``, confidence logits (B,)).
    """

    def __init__(self, in_channels: int, hidden: int = 64) -> None:
        super().__init__()
        self.score = nn.Conv2d(in_channels, 1, 1)
        self.mlp = nn.Sequential(nn.Linear(2 * in_channels + 2, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 3))

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, _, h, w = f.shape
        att = torch.softmax(self.score(f).flatten(1), dim=1)  # (B, h*w)
        gy, gx = torch.meshgrid((torch.arange(h, device=f.device, dtype=f.dtype) + 0.5) / h,
                                (torch.arange(w, device=f.device, dtype=f.dtype) + 0.5) / w, indexing="ij")
        cx = (att * gx.flatten()).sum(1)
        cy = (att * gy.flatten()).sum(1)
        flat = f.flatten(2)
        pooled = (flat * att[:, None, :]).sum(-1)
        out = self.mlp(torch.cat([pooled, flat.mean(-1), cx[:, None], cy[:, None]], dim=1))
        bw, bh = torch.sigmoid(out[:, 0]), torch.sigmoid(out[:, 1])
        boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=1)
        return boxes, out[:, 2]


class CropNet(nn.Module):
    """Backbone + :class:`BoxHead`: (B, 3, S, S) in [0, 1] -> (boxes (B, 4) x1y1x2y2, confidence logits (B,))."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.backbone(x))


def build_crop_net(config: dict[str, Any]) -> CropNet:
    """The network for a backbone config: ``{"backbone": "conv", "width": 32}`` or
    ``{"backbone": "clip", "model": "ViT-B-32", "pretrained": None}``, plus ``head_hidden``.

    Raises:
        ValueError: unknown backbone.
    """
    kind = config.get("backbone", "conv")
    if kind == "conv":
        bb: nn.Module = ConvBackbone(int(config.get("width", 32)))
    elif kind == "clip":
        bb = ClipPatchBackbone(config.get("model", "ViT-B-32"), config.get("pretrained"))
    else:
        raise ValueError(f"backbone: expected 'conv' or 'clip', got {kind!r}")
    return CropNet(bb, BoxHead(int(bb.out_channels), int(config.get("head_hidden", 64))))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- metrics
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


def crop_arrays(col: CatalogLike, *, size: int = 96, crops: pd.DataFrame | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The collection's crops as training arrays: thumbnails resized (squashed) to ``size`` x ``size``.

    Normalised boxes stay valid under the squash. Images whose thumbnail cannot be built are left out.

    Returns:
        image_ids (N,) int64, images (N, size, size, 3) uint8, boxes (N, 4) float32 ``x, y, w, h``.

    Raises:
        NoVotesError: the collection has no crops to learn from.
    """
    cat = as_catalog(col)
    from .data import load_crops

    df = load_crops(cat) if crops is None else crops
    if len(df) == 0:
        raise NoVotesError("no crops yet: draw some with CropPanel (notebooks/04_crops.ipynb) or import a crop log "
                           "(`imagerank import-crops WS CSV`)")
    ids, ims, bxs = [], [], []
    for r in df.itertuples():
        arr = _thumb_square(cat, int(r.image_id), size)
        if arr is None:
            continue
        ids.append(int(r.image_id))
        ims.append(arr)
        bxs.append((r.x, r.y, r.w, r.h))
    if not ids:
        raise NoVotesError(f"none of the {len(df)} cropped images has a readable thumbnail")
    return np.asarray(ids, np.int64), np.stack(ims), np.asarray(bxs, np.float32)


def _thumb_square(cat: Catalog, image_id: int, size: int) -> np.ndarray | None:
    import io

    from PIL import Image

    data = ThumbnailCache(cat).read_bytes(image_id)
    if data is None:
        return None
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------- Lightning
class CropProposer(L.LightningModule):
    """LightningModule of the crop proposer; handed its :class:`CropNet` and optimiser configuration.

    Logged per split (train / val): ``{split}/loss`` and ``{split}/iou`` (mean IoU of the predicted boxes).
    Batches: dicts ``image`` (B, 3, S, S) float in [0, 1], ``box`` (B, 4) normalised ``x1, y1, x2, y2``.
    """

    def __init__(self, net: CropNet, optimizer: OptimConfig | dict[str, Any] | None = None, *,
                 l1_weight: float = 5.0, giou_weight: float = 2.0, conf_weight: float = 1.0,
                 config: dict[str, Any] | None = None) -> None:
        super().__init__()
        opt = optimizer if isinstance(optimizer, OptimConfig) else OptimConfig(**(optimizer or {}))
        self.save_hyperparameters({"optimizer": asdict(opt), "l1_weight": l1_weight, "giou_weight": giou_weight,
                                   "conf_weight": conf_weight, "config": config or {}})
        self.net = net
        self.optim_config = opt
        self.weights = (float(l1_weight), float(giou_weight), float(conf_weight))
        self.train_loss, self.val_loss = MeanMetric(), MeanMetric()
        self.train_iou, self.val_iou = MeanMetric(), MeanMetric()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(x)

    def model_step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, per-item IoU) of one batch."""
        from torchvision.ops import box_iou, generalized_box_iou_loss

        pred, conf = self(batch["image"])
        tgt = batch["box"]
        l1 = F.l1_loss(pred, tgt)
        giou = generalized_box_iou_loss(pred, tgt, reduction="mean")
        iou = box_iou(pred.detach().clamp(0, 1), tgt).diagonal()
        conf_loss = F.binary_cross_entropy_with_logits(conf, iou)
        w_l1, w_giou, w_conf = self.weights
        return w_l1 * l1 + w_giou * giou + w_conf * conf_loss, iou

    def _step(self, batch: dict[str, torch.Tensor], split: str) -> torch.Tensor:
        loss, iou = self.model_step(batch)
        bs = int(batch["image"].shape[0])
        getattr(self, f"{split}_loss").update(loss.detach(), weight=bs)
        getattr(self, f"{split}_iou").update(iou.mean(), weight=bs)
        self.log(f"{split}/loss", getattr(self, f"{split}_loss"), on_step=split == "train", on_epoch=True,
                 prog_bar=True, batch_size=bs)
        self.log(f"{split}/iou", getattr(self, f"{split}_iou"), on_step=False, on_epoch=True, prog_bar=True,
                 batch_size=bs)
        return loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optim_config.build([p for p in self.parameters() if p.requires_grad])


@dataclass
class CropModel:
    """A fitted crop proposer.

    Attributes:
        net: the :class:`CropNet` (eval mode).
        config: backbone config (see :func:`build_crop_net`) and ``image_size`` (square input side, pixels).
        metadata: data size, split, metrics, versions (the registry's JSON).
    """

    net: CropNet
    config: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    name: str | None = None

    @property
    def image_size(self) -> int:
        return int(self.config.get("image_size", 96))

    def propose(self, images: np.ndarray, *, batch_size: int = 64, device: str | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """Boxes and confidences for square images.

        Args:
            images: (N, S, S, 3) uint8 (resized to ``image_size`` when S differs).

        Returns:
            boxes (N, 4) float32 normalised ``x, y, w, h`` inside the image; confidence (N,) float32 in [0, 1]
            (the IoU the model expects its box to have).
        """
        dev = pick_device(device)
        net = self.net.to(dev).eval()
        boxes, confs = [], []
        with torch.inference_mode():
            for k in range(0, len(images), batch_size):
                x = torch.as_tensor(np.ascontiguousarray(images[k: k + batch_size])).permute(0, 3, 1, 2).float()
                x = x.to(dev) / 255.0
                if x.shape[-1] != self.image_size:
                    x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                                      align_corners=False)
                b, c = net(x)
                b = b.clamp(0, 1)
                boxes.append(torch.stack([b[:, 0], b[:, 1], (b[:, 2] - b[:, 0]).clamp(min=1e-3),
                                          (b[:, 3] - b[:, 1]).clamp(min=1e-3)], 1).cpu().numpy())
                confs.append(torch.sigmoid(c).cpu().numpy())
        if not boxes:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        out = np.concatenate(boxes).astype(np.float32)
        out[:, 2] = np.minimum(out[:, 2], 1 - out[:, 0])
        out[:, 3] = np.minimum(out[:, 3], 1 - out[:, 1])
        return out, np.concatenate(confs).astype(np.float32)

    def propose_images(self, col: CatalogLike, ids: Sequence[int]) -> pd.DataFrame:
        """Proposed crops of catalog images: DataFrame image_id, x, y, w, h, confidence (unreadable images left
        out)."""
        cat = as_catalog(col)
        import pandas as pd

        got: list[tuple[int, np.ndarray]] = []
        for i in ids:
            a = _thumb_square(cat, int(i), self.image_size)
            if a is not None:
                got.append((int(i), a))
        if not got:
            return pd.DataFrame(columns=["image_id", "x", "y", "w", "h", "confidence"])
        boxes, conf = self.propose(np.stack([a for _, a in got]))
        df = pd.DataFrame(boxes, columns=["x", "y", "w", "h"])
        df.insert(0, "image_id", [i for i, _ in got])
        df["confidence"] = conf
        return df

    def save(self, col: CatalogLike, name: str | None = None) -> Any:
        cat = as_catalog(col)
        from .registry import save_model

        return save_model(cat, name or self.name or "crops", self)

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], meta: dict[str, Any], *, device: Any = None) -> CropModel:
        """Rebuild from a state dict and the registry metadata (raises what ``load_state_dict`` raises)."""
        net = build_crop_net(meta["config"])
        net.load_state_dict(state, strict=True)
        return cls(net.to(device or "cpu").eval(), dict(meta["config"]), meta, meta.get("history", []))

    def __repr__(self) -> str:
        m = self.metadata.get("metrics", {})
        iou = m.get("val_mean_iou")
        return (f"CropModel({self.config.get('backbone')}, image_size={self.image_size}"
                + (f", val_mean_iou={iou:.3f})" if isinstance(iou, float) else ")"))


@dataclass
class CropEvaluation:
    """Mean IoU and boundary displacement error of the proposer and both baselines on the same images."""

    table: Any  # DataFrame: method, n, mean_iou, bde
    boxes: dict[str, np.ndarray]
    targets: np.ndarray
    images: np.ndarray | None = None

    def __str__(self) -> str:
        return self.table.to_string(index=False, float_format=lambda x: f"{x:.3f}")

    def _repr_html_(self) -> str:
        return self.table.to_html(index=False, float_format="%.3f")

    def row(self, method: str) -> dict[str, float]:
        r = self.table[self.table["method"] == method].iloc[0]
        return {"mean_iou": float(r["mean_iou"]), "bde": float(r["bde"])}

    def plot_examples(self, images: np.ndarray | None = None, k: int = 8) -> Any:
        """A matplotlib figure of ``k`` images with the ideal crop (green), the proposer's (red), centre crop
        (grey, dashed) and saliency (blue); ``images`` default to the evaluated ones."""
        import matplotlib.pyplot as plt
        from matplotlib.patches import Rectangle

        images = self.images if images is None else images
        if images is None or len(images) == 0:
            raise ValueError("plot_examples: no images to show")
        k = min(k, len(images))
        fig, axes = plt.subplots(1, k, figsize=(1.6 * k, 1.9), squeeze=False)
        colours = {"ideal": ("#2ca02c", "-"), "proposer": ("#d62728", "-"), "centre": ("#7f7f7f", "--"),
                   "saliency": ("#1f77b4", ":")}
        for j in range(k):
            ax = axes[0, j]
            S = images[j].shape[0]
            ax.imshow(images[j])
            for name, boxes in [("ideal", self.targets), *self.boxes.items()]:
                c, ls = colours.get(name, ("k", "-"))
                x, y, w, h = boxes[j] * S
                ax.add_patch(Rectangle((x, y), w, h, fill=False, ec=c, ls=ls, lw=1.4))
            ax.axis("off")
        axes[0, 0].set_title("green ideal · red proposer · grey centre · blue saliency", fontsize=7, loc="left")
        fig.tight_layout()
        return fig


def evaluate_crops(model: CropModel, images: np.ndarray, targets: np.ndarray, *,
                   prior_wh: tuple[float, float] | None = None) -> CropEvaluation:
    """Mean IoU and boundary displacement error of ``model`` vs the centre-crop and saliency baselines.

    Args:
        images: (N, S, S, 3) uint8 held-out images; targets: (N, 4) their ideal ``x, y, w, h`` boxes.
        prior_wh: the centre crop's size (default the model's training crops' median, from its metadata, else
            the targets' median).
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


def evaluate_crop_model(col: CatalogLike, model: CropModel) -> CropEvaluation:
    """:func:`evaluate_crops` on the collection's crops of the images ``model`` held out in training.

    Raises:
        NoVotesError: the model's metadata names no held-out images, or none of them still has a crop.
    """
    cat = as_catalog(col)
    val = set(int(i) for i in model.metadata.get("split", {}).get("val_image_ids", []))
    if not val:
        raise NoVotesError("this crop model held out no images (trained on too few crops?); nothing to evaluate")
    ids, images, boxes = crop_arrays(cat, size=model.image_size)
    keep = np.isin(ids, np.fromiter(val, dtype=np.int64))
    if not keep.any():
        raise NoVotesError("none of the model's held-out images has a crop any more")
    return evaluate_crops(model, images[keep], boxes[keep])


def train_crop_proposer(
    col: CatalogLike | None = None,
    *,
    data: tuple[np.ndarray, np.ndarray] | None = None,
    image_size: int = 64,
    backbone: str = "conv",
    width: int = 32,
    clip_model: str = "ViT-B-32",
    clip_pretrained: str | None = None,
    max_epochs: int = 20,
    seed: int = 0,
    batch_size: int = 32,
    val_fraction: float = 0.2,
    optimizer: OptimConfig | None = None,
    background: bool = False,
    progress: bool = True,
    name: str | None = "crops",
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    accelerator: str = "auto",
    fast_dev_run: bool | int = False,
    num_threads: int | None = -1,
) -> CropModel | TrainingJob:
    """Train a crop proposer on the collection's crops (or on ``data = (images, boxes)``) and return it.

    Args:
        col: the collection (crops from :func:`imagerank.training.data.load_crops`); saved to ``models/<name>``.
        data: (N, S, S, 3) uint8 images and (N, 4) ``x, y, w, h`` boxes instead of a collection.
        image_size: square input side in pixels (thumbnails are squashed to it).
        backbone: ``conv`` (trained from scratch) or ``clip`` (frozen open_clip patch tokens: ``clip_model``,
            ``clip_pretrained`` — None gives random weights, for tests only).
        background: return a :class:`~imagerank.training.jobs.TrainingJob` running in a thread.
        num_threads: torch CPU threads while training (see :func:`imagerank.training.ranker.cpu_threads`);
            default 1 for the small conv backbone, torch's own setting for CLIP; None leaves it unchanged.

    Raises:
        NoVotesError: no crops to learn from. ValueError: neither ``col`` nor ``data``.
    """
    cat = as_catalog(col) if col is not None else None
    from .datamodule import CropDataModule
    from .jobs import TrainingJob

    if cat is None and data is None:
        raise InvalidArgumentError("train_crop_proposer: pass a collection or data=(images, boxes)")

    def run(callbacks: Sequence[Any]) -> CropModel:
        t0 = time.perf_counter()
        if data is not None:
            ids = np.arange(len(data[0]))
            images, boxes = np.asarray(data[0]), np.asarray(data[1], np.float32)
        else:
            assert cat is not None
            ids, images, boxes = crop_arrays(cat, size=image_size)
        if len(images) < 2:
            raise NoVotesError(f"a crop proposer needs at least 2 cropped images, got {len(images)}")
        dm = CropDataModule(images, boxes, val_fraction=val_fraction if len(images) >= 5 else 0.0, seed=seed,
                            batch_size=batch_size)
        dm.setup("fit")
        L.seed_everything(seed, workers=True, verbose=False)
        config: dict[str, Any] = {"backbone": backbone, "image_size": int(images.shape[1]), "head_hidden": 64}
        if backbone == "conv":
            config["width"] = width
        else:
            config.update(model=clip_model, pretrained=clip_pretrained)
        net = build_crop_net(config)
        module = CropProposer(net, optimizer or OptimConfig(lr=2e-3, weight_decay=1e-4), config=config)
        n_batches = max(1, math.ceil(len(dm.train_set) / batch_size))
        threads = (1 if backbone == "conv" else None) if num_threads == -1 else num_threads
        with quiet_lightning(), cpu_threads(threads):
            trainer = make_trainer(max_epochs, callbacks=callbacks, progress=progress and not background,
                                   n_batches=n_batches, accelerator=accelerator, fast_dev_run=fast_dev_run,
                                   has_val=len(dm.val_set) > 0)
            trainer.fit(module, datamodule=dm)
        model = CropModel(module.net.cpu().eval(), config, name=name)
        prior_wh = [float(v) for v in np.median(boxes[dm.train_idx, 2:], axis=0)]
        model.metadata = {"kind": "crop", "config": config, "prior_wh": prior_wh}
        metrics: dict[str, float] = {}
        if len(dm.val_idx):
            ev = evaluate_crops(model, images[dm.val_idx], boxes[dm.val_idx], prior_wh=tuple(prior_wh))  # type: ignore[arg-type]
            for method in ("proposer", "centre", "saliency"):
                r = ev.row(method)
                prefix = "val" if method == "proposer" else f"val_{method}"
                metrics[f"{prefix}_mean_iou"], metrics[f"{prefix}_bde"] = r["mean_iou"], r["bde"]
        model.metadata.update({
            "feature_set": f"pixels:{config['backbone']}", "feature_dim": int(images.shape[1]),
            "data": {"n_images": len(images), "n_train": len(dm.train_idx), "n_val": len(dm.val_idx)},
            "split": {"seed": seed, "val_fraction": dm.val_fraction,
                      "val_image_ids": [int(i) for i in ids[dm.val_idx]]},
            "metrics": metrics, "epochs": int(trainer.current_epoch), "max_epochs": max_epochs,
            "train_seconds": round(time.perf_counter() - t0, 3), "versions": versions(),
        })
        for cb in callbacks:
            if hasattr(cb, "rows"):
                model.history = list(cb.rows)
        if cat is not None and name and not fast_dev_run:
            model.save(cat, name)
        return model

    job = TrainingJob(run, name=f"training {name or 'crops'}", on_progress=on_progress)
    return job.start() if background else job.run_here()
