"""What the training recipes share: the optimiser and fit settings, the Trainer configured the imagerank way, the
base of the LightningModules (one ``_step`` per split), and the versions written into model metadata.

The ranker (:mod:`.ranker`) and the crop proposer (:mod:`.crops`) each extend :class:`FitConfig` with their own
network settings (:class:`~imagerank.training.ranker.RankerConfig`, :class:`~imagerank.training.crops.CropConfig`),
so every setting is listed once and a notebook passes one object: ``train_ranker(col, "cheap",
RankerConfig(max_epochs=20))``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import lightning as L
import torch

from .._util import progress_enabled
from .._util.torch import resolve_accelerator
from ..errors import InvalidArgumentError

__all__ = ["AUTO_THREADS", "FitConfig", "OptimConfig", "SplitModule", "history_of", "make_trainer", "versions"]

#: ``num_threads`` value meaning "the recipe's own choice" (1 thread for small networks; see :class:`FitConfig`).
AUTO_THREADS = -1


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser settings: ``name`` ``adamw`` or ``sgd`` (momentum 0.9); learning rate ``lr``; decoupled weight
    decay ``weight_decay``.

    Raises:
        InvalidArgumentError: unknown name, or a negative learning rate / weight decay.
    """

    name: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 1e-4

    def __post_init__(self) -> None:
        if self.name not in ("adamw", "sgd"):
            raise InvalidArgumentError(f"optimizer name: expected 'adamw' or 'sgd', got {self.name!r}")
        if not self.lr > 0 or not self.weight_decay >= 0:
            raise InvalidArgumentError(f"optimizer: expected lr > 0 and weight_decay >= 0, got lr={self.lr!r}, "
                                       f"weight_decay={self.weight_decay!r}")

    def build(self, params: Any) -> torch.optim.Optimizer:
        """The optimiser over ``params`` (an iterable of tensors or parameter groups)."""
        if self.name == "sgd":
            return torch.optim.SGD(params, lr=self.lr, weight_decay=self.weight_decay, momentum=0.9)
        return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)


@dataclass(frozen=True)
class FitConfig:
    """Settings every training recipe shares (frozen; derive a variant with ``dataclasses.replace``).

    Attributes:
        max_epochs: passes over the training data (>= 1).
        seed: seeds the split, the network's initialisation and the batch order.
        batch_size: items per batch (>= 1).
        val_fraction: share of the data held out for validation, in [0, 1).
        optimizer: an :class:`OptimConfig`.
        accelerator: ``auto`` (the best device, :func:`imagerank._util.torch.best_device`), ``cpu``, ``cuda``,
            ``cuda:N``, ``gpu`` or ``mps``.
        fast_dev_run: Lightning's smoke run (True or a number of batches): nothing is saved.
        num_threads: torch CPU threads while fitting (:func:`imagerank._util.torch.cpu_threads`); None leaves
            torch's setting; :data:`AUTO_THREADS` (-1) lets the recipe choose (1 for small networks).

    Raises:
        InvalidArgumentError: a value out of range.
    """

    max_epochs: int = 30
    seed: int = 0
    batch_size: int = 256
    val_fraction: float = 0.2
    optimizer: OptimConfig = field(default_factory=OptimConfig)
    accelerator: str = "auto"
    fast_dev_run: bool | int = False
    num_threads: int | None = 1

    def __post_init__(self) -> None:
        if int(self.max_epochs) < 1:
            raise InvalidArgumentError(f"max_epochs: expected >= 1, got {self.max_epochs!r}")
        if int(self.batch_size) < 1:
            raise InvalidArgumentError(f"batch_size: expected >= 1, got {self.batch_size!r}")
        if not 0.0 <= float(self.val_fraction) < 1.0:
            raise InvalidArgumentError(f"val_fraction: expected a fraction in [0, 1), got {self.val_fraction!r}")
        if self.num_threads is not None and self.num_threads != AUTO_THREADS and self.num_threads < 1:
            raise InvalidArgumentError(f"num_threads: expected >= 1, None or -1 (auto), got {self.num_threads!r}")
        if not isinstance(self.optimizer, OptimConfig):
            raise InvalidArgumentError(f"optimizer: expected an OptimConfig, got {type(self.optimizer).__name__}")

    def threads(self) -> int | None:
        """The thread count to fit with: ``num_threads``, with :data:`AUTO_THREADS` meaning 1."""
        return 1 if self.num_threads == AUTO_THREADS else self.num_threads

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the optimiser as a dict)."""
        return asdict(self)


class SplitModule(L.LightningModule):
    """Base of imagerank's LightningModules: every split's step goes through ``_step(batch, split)`` (split
    ``train``, ``val`` or ``test``), and the optimiser (``self.optim_config``, an :class:`OptimConfig`) covers the
    parameters that require gradients (a frozen backbone is left out)."""

    optim_config: OptimConfig

    def _step(self, batch: dict[str, torch.Tensor], split: str) -> torch.Tensor:
        raise NotImplementedError

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optim_config.build([p for p in self.parameters() if p.requires_grad])


def make_trainer(
    config: FitConfig,
    *,
    n_train: int,
    callbacks: Sequence[Any] = (),
    progress: bool = True,
    logger: Any = False,
    has_val: bool = True,
) -> L.Trainer:
    """A Trainer configured the imagerank way: no Lightning checkpoints (the registry saves explicitly), no
    logger unless given (a CSVLogger into the workspace), a TQDM bar refreshing ~10 times per epoch.

    Args:
        config: epochs, accelerator and ``fast_dev_run`` come from it.
        n_train: training items (with ``config.batch_size``: batches per epoch, for the bar and log cadence).
        has_val: False skips validation (no held-out data).
    """
    from lightning.pytorch.callbacks import TQDMProgressBar

    n_batches = max(1, math.ceil(n_train / config.batch_size))
    progress = progress_enabled(progress, sys.stdout)  # Lightning's bar writes to stdout
    cbs = list(callbacks)
    if progress:
        cbs.append(TQDMProgressBar(refresh_rate=max(1, n_batches // 10)))
    device = resolve_accelerator(config.accelerator)
    accelerator, _, index = device.partition(":")
    return L.Trainer(
        max_epochs=config.max_epochs,
        accelerator=accelerator,
        devices=[int(index)] if index else 1,
        logger=logger,
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        callbacks=cbs,
        log_every_n_steps=max(1, min(50, n_batches)),
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if has_val else 0,
        fast_dev_run=config.fast_dev_run,
        deterministic=False,
    )


def history_of(callbacks: Sequence[Any]) -> list[dict[str, Any]]:
    """The training curve rows (epoch, step, train_loss, val_loss) a progress callback collected, or []."""
    for cb in callbacks:
        if hasattr(cb, "rows"):
            return list(cb.rows)
    return []


def versions() -> dict[str, str]:
    """Versions of imagerank, torch, lightning, open_clip and torchmetrics (for model metadata); ``absent`` for a
    distribution that is not installed."""
    import importlib.metadata as md

    out = {}
    for dist in ("imagerank", "torch", "lightning", "open_clip_torch", "torchmetrics"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "absent"
    return out
