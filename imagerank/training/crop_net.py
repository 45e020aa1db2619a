"""The crop proposer's network and LightningModule.

Network (:class:`CropNet`): a backbone giving a feature map (B, C, h, w) — a small conv net
(:class:`ConvBackbone`, trained from scratch) or the patch tokens of an open_clip ViT (:class:`ClipPatchBackbone`,
frozen) — and a :class:`BoxHead`: a 1x1 conv scores every location, the softmax of those scores is an attention map
whose expectation over the grid is the box centre (a soft-argmax, so the centre is grounded in where the subject
is); the attention-pooled and the mean features give width, height and a confidence logit.

Loss (:class:`CropProposer`, IoU-aware, as DETR): ``l1_weight * L1(box) + giou_weight * GIoU loss`` (Rezatofighi
et al. 2019, ``torchvision.ops.generalized_box_iou_loss``), plus a BCE that teaches the confidence to predict the
IoU the box will have (so "confidence" reads as expected IoU, 0–1).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric

from ..errors import InvalidArgumentError
from .trainer import OptimConfig, SplitModule

__all__ = ["BoxHead", "ClipPatchBackbone", "ConvBackbone", "CropNet", "CropProposer", "build_crop_net"]

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


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
        InvalidArgumentError: unknown backbone.
    """
    kind = config.get("backbone", "conv")
    if kind == "conv":
        bb: nn.Module = ConvBackbone(int(config.get("width", 32)))
    elif kind == "clip":
        bb = ClipPatchBackbone(config.get("model", "ViT-B-32"), config.get("pretrained"))
    else:
        raise InvalidArgumentError(f"backbone: expected 'conv' or 'clip', got {kind!r}")
    return CropNet(bb, BoxHead(int(bb.out_channels), int(config.get("head_hidden", 64))))  # type: ignore[arg-type]


class CropProposer(SplitModule):
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

