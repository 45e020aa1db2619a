"""The crop proposer: a box and a confidence from the spatial features of an image, with baselines to beat.

This module holds the fitted model (:class:`CropModel`), the training data from a collection
(:func:`crop_arrays`), the settings (:class:`CropConfig`) and the recipe (:func:`train_crop_proposer`,
:func:`evaluate_crop_model`). The network and its LightningModule are in :mod:`.crop_net`; metrics, baselines, the
generated set and :func:`evaluate_crops` in :mod:`.crop_metrics`; both are re-exported here, so
``from imagerank.training.crops import CropModel, build_crop_net, evaluate_crops`` keeps working.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from .._util.torch import cpu_threads, quiet_lightning, resolve_accelerator
from ..catalog import Catalog, CatalogLike, as_catalog
from ..errors import InvalidArgumentError, NoVotesError
from ..media import ThumbnailCache
from .crop_metrics import (
    CropEvaluation,
    boundary_displacement,
    box_iou_xywh,
    centre_crop_boxes,
    evaluate_crops,
    make_crop_set,
    saliency_boxes,
    spectral_residual,
)
from .crop_net import BoxHead, ClipPatchBackbone, ConvBackbone, CropNet, CropProposer, build_crop_net
from .data import load_crops
from .trainer import AUTO_THREADS, FitConfig, OptimConfig, history_of, make_trainer, versions

if TYPE_CHECKING:
    import pandas as pd

    from .jobs import TrainingJob

__all__ = [
    "BoxHead",
    "ClipPatchBackbone",
    "ConvBackbone",
    "CropConfig",
    "CropEvaluation",
    "CropModel",
    "CropNet",
    "CropProposer",
    "boundary_displacement",
    "box_iou_xywh",
    "build_crop_net",
    "centre_crop_boxes",
    "crop_arrays",
    "evaluate_crop_model",
    "evaluate_crops",
    "make_crop_set",
    "saliency_boxes",
    "spectral_residual",
    "train_crop_proposer",
]


@dataclass(frozen=True)
class CropConfig(FitConfig):
    """How a crop proposer is trained: the :class:`~imagerank.training.trainer.FitConfig` settings plus the input
    size and the backbone (frozen; derive a variant with ``dataclasses.replace``).

    Attributes:
        max_epochs: passes over the training images (default 20).
        seed: seeds the split, the initialisation, the flips and the batch order.
        batch_size: images per batch (default 32).
        val_fraction: share of images held out (default 0.2; none when there are fewer than 5 images).
        optimizer: default AdamW, lr 2e-3, weight decay 1e-4.
        accelerator, fast_dev_run: see :class:`~imagerank.training.trainer.FitConfig`.
        num_threads: torch CPU threads while training; default :data:`~imagerank.training.trainer.AUTO_THREADS`
            (1 for the small conv backbone, torch's own setting for CLIP); None leaves it unchanged.
        image_size: square input side in pixels (thumbnails are squashed to it; ignored with ``data=``, whose
            images give it).
        backbone: ``conv`` (trained from scratch, ``width`` channels) or ``clip`` (frozen open_clip patch tokens:
            ``clip_model``, ``clip_pretrained``; None gives random weights, for tests only).
        head_hidden: units of the box head's hidden layer.

    Raises:
        InvalidArgumentError: a value out of range or an unknown backbone.
    """

    max_epochs: int = 20
    batch_size: int = 32
    optimizer: OptimConfig = field(default_factory=lambda: OptimConfig(lr=2e-3, weight_decay=1e-4))
    num_threads: int | None = AUTO_THREADS
    image_size: int = 64
    backbone: str = "conv"
    width: int = 32
    clip_model: str = "ViT-B-32"
    clip_pretrained: str | None = None
    head_hidden: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.backbone not in ("conv", "clip"):
            raise InvalidArgumentError(f"backbone: expected 'conv' or 'clip', got {self.backbone!r}")
        if self.image_size < 8 or self.width < 2 or self.head_hidden < 1:
            raise InvalidArgumentError(f"image_size, width, head_hidden: expected >= 8, >= 2, >= 1, got "
                                       f"{self.image_size!r}, {self.width!r}, {self.head_hidden!r}")

    def threads(self) -> int | None:
        """``num_threads``, with :data:`~imagerank.training.trainer.AUTO_THREADS` meaning 1 for the conv backbone
        and torch's own setting (None) for CLIP."""
        if self.num_threads == AUTO_THREADS:
            return 1 if self.backbone == "conv" else None
        return self.num_threads

    def net_config(self, image_size: int) -> dict[str, Any]:
        """The network config (:func:`~imagerank.training.crop_net.build_crop_net`, saved in the model metadata)
        for square inputs of ``image_size`` pixels."""
        config: dict[str, Any] = {"backbone": self.backbone, "image_size": int(image_size),
                                  "head_hidden": self.head_hidden}
        if self.backbone == "conv":
            config["width"] = self.width
        else:
            config.update(model=self.clip_model, pretrained=self.clip_pretrained)
        return config


def crop_arrays(col: CatalogLike, *, size: int = 96, crops: pd.DataFrame | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The collection's crops as training arrays: thumbnails resized (squashed) to ``size`` x ``size``.

    Normalised boxes stay valid under the squash. Images whose thumbnail cannot be built are left out.

    Args:
        col: the collection or catalog.
        size: square side in pixels.
        crops: the crops to use (columns image_id, x, y, w, h); default :func:`~imagerank.training.data.load_crops`.

    Returns:
        image_ids (N,) int64, images (N, size, size, 3) uint8, boxes (N, 4) float32 ``x, y, w, h``.

    Raises:
        NoVotesError: the collection has no crops to learn from.
    """
    cat = as_catalog(col)
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


@dataclass
class CropModel:
    """A fitted crop proposer.

    Attributes:
        net: the :class:`CropNet` (eval mode).
        config: backbone config (see :func:`build_crop_net`) and ``image_size`` (square input side, pixels).
        metadata: data size, split, metrics, versions (the registry's JSON).
        history: training curve rows (epoch, step, train_loss, val_loss), when trained in this kernel.
        name: the model's name under ``models/`` (None: not saved).
    """

    net: CropNet
    config: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    name: str | None = None

    @property
    def image_size(self) -> int:
        """Square input side in pixels (default 96 for old metadata without it)."""
        return int(self.config.get("image_size", 96))

    def propose(self, images: np.ndarray, *, batch_size: int = 64, device: str | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """Boxes and confidences for square images.

        Args:
            images: (N, S, S, 3) uint8 (resized to ``image_size`` when S differs).
            batch_size: images per forward pass.
            device: torch device; None: the best available (:func:`imagerank._util.torch.resolve_accelerator`).

        Returns:
            boxes (N, 4) float32 normalised ``x, y, w, h`` inside the image; confidence (N,) float32 in [0, 1]
            (the IoU the model expects its box to have).
        """
        dev = torch.device(resolve_accelerator(device))
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
        """Proposed crops of catalog images (by image id; their thumbnails squashed to ``image_size``).

        Returns:
            DataFrame image_id (int), x, y, w, h (normalised float32), confidence (float32 in [0, 1]); images
            whose thumbnail cannot be read are left out.
        """
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
        """Save to ``<workspace>/models/<name>/`` (:func:`imagerank.training.registry.save_model`); returns its
        folder."""
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
    config: CropConfig | None = None,
    *,
    data: tuple[np.ndarray, np.ndarray] | None = None,
    background: bool = False,
    progress: bool = True,
    name: str | None = "crops",
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> CropModel | TrainingJob:
    """Train a crop proposer on the collection's crops (or on ``data = (images, boxes)``) and return it.

    ``train_crop_proposer(col, CropConfig(image_size=64, max_epochs=12), background=True)``.

    Args:
        col: the collection or catalog (crops from :func:`imagerank.training.data.load_crops`); the model is
            saved to ``models/<name>`` (unless ``name`` is None or ``config.fast_dev_run``).
        config: a :class:`CropConfig` (epochs, input size, backbone, optimiser, device, threads); default
            ``CropConfig()``.
        data: (N, S, S, 3) uint8 images and (N, 4) normalised ``x, y, w, h`` boxes instead of a collection.
        background: return a :class:`~imagerank.training.jobs.TrainingJob` running in a thread.
        progress: Lightning's TQDM progress bar (foreground only).
        name: the model's name.
        on_progress: called with ``{"epoch", "step", "train_loss", "val_loss"}`` as training goes.

    Returns:
        The fitted :class:`CropModel`, or a TrainingJob with ``background=True``.

    Raises:
        NoVotesError: fewer than 2 cropped images to learn from.
        InvalidArgumentError: neither ``col`` nor ``data``.
    """
    from .jobs import TrainingJob

    cat = as_catalog(col) if col is not None else None
    cfg = config or CropConfig()
    source: Catalog | tuple[np.ndarray, np.ndarray, np.ndarray]
    if data is not None:
        source = (np.arange(len(data[0])), np.asarray(data[0]), np.asarray(data[1], np.float32))
    elif cat is not None:
        source = cat
    else:
        raise InvalidArgumentError("train_crop_proposer: pass a collection or data=(images, boxes)")

    def run(callbacks: Sequence[Any]) -> CropModel:
        ids, images, boxes = crop_arrays(source, size=cfg.image_size) if isinstance(source, Catalog) else source
        model = _fit_crops(ids, images, boxes, cfg, callbacks=callbacks, progress=progress and not background)
        model.name = name
        if cat is not None and name and not cfg.fast_dev_run:
            model.save(cat, name)
        return model

    job = TrainingJob(run, name=f"training {name or 'crops'}", on_progress=on_progress)
    return job.start() if background else job.run_here()


def _fit_crops(ids: np.ndarray, images: np.ndarray, boxes: np.ndarray, cfg: CropConfig, *,
               callbacks: Sequence[Any], progress: bool) -> CropModel:
    """Fit on (N,) image ids, (N, S, S, 3) uint8 images and (N, 4) boxes; metadata with the held-out image ids
    and the validation metrics of the proposer and both baselines."""
    from .datamodule import CropDataModule

    t0 = time.perf_counter()
    if len(images) < 2:
        raise NoVotesError(f"a crop proposer needs at least 2 cropped images, got {len(images)}")
    dm = CropDataModule(images, boxes, val_fraction=cfg.val_fraction if len(images) >= 5 else 0.0, seed=cfg.seed,
                        batch_size=cfg.batch_size)
    dm.setup("fit")
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    config = cfg.net_config(int(images.shape[1]))
    module = CropProposer(build_crop_net(config), cfg.optimizer, config=config)
    with quiet_lightning(), cpu_threads(cfg.threads()):
        trainer = make_trainer(cfg, n_train=len(dm.train_set), callbacks=callbacks, progress=progress,
                               has_val=len(dm.val_set) > 0)
        trainer.fit(module, datamodule=dm)
    model = CropModel(module.net.cpu().eval(), config)
    prior_wh = (float(np.median(boxes[dm.train_idx, 2])), float(np.median(boxes[dm.train_idx, 3])))
    model.metadata = {"kind": "crop", "config": config, "prior_wh": list(prior_wh)}
    metrics: dict[str, float] = {}
    if len(dm.val_idx):
        ev = evaluate_crops(model, images[dm.val_idx], boxes[dm.val_idx], prior_wh=prior_wh)
        for method in ("proposer", "centre", "saliency"):
            r = ev.row(method)
            prefix = "val" if method == "proposer" else f"val_{method}"
            metrics[f"{prefix}_mean_iou"], metrics[f"{prefix}_bde"] = r["mean_iou"], r["bde"]
    model.metadata.update({
        "feature_set": f"pixels:{config['backbone']}", "feature_dim": int(images.shape[1]),
        "data": {"n_images": len(images), "n_train": len(dm.train_idx), "n_val": len(dm.val_idx)},
        "split": {"seed": cfg.seed, "val_fraction": dm.val_fraction,
                  "val_image_ids": [int(i) for i in ids[dm.val_idx]]},
        "metrics": metrics, "epochs": int(trainer.current_epoch), "max_epochs": cfg.max_epochs,
        "fit_config": cfg.to_dict(), "train_seconds": round(time.perf_counter() - t0, 3), "versions": versions(),
    })
    model.history = history_of(callbacks)
    return model
