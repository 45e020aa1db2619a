"""The pairwise ranker: a network scoring one image from its feature vector, trained on the vote log.

Model: utility ``s(x)`` from a linear layer or a small MLP over standardised features; pairwise judgements use the
Bradley-Terry loss, N-way rankings the Plackett-Luce loss (both from :mod:`imagerank.training.bt`). The
:class:`RankerModule` (LightningModule) is handed its network and optimiser configuration; :func:`train_ranker` is
the one-call front door that returns a fitted :class:`Ranker` (or a :class:`~imagerank.training.jobs.TrainingJob`
running in a background thread).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import lightning as L
import numpy as np
import torch
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import BinaryAccuracy

from ..catalog import CatalogLike, as_catalog
from ..errors import CheckpointError
from .bt import bradley_terry_loss, plackett_luce_ranks_loss
from .data import VoteData, load_votes
from .datamodule import PreferenceDataModule
from .features import FeatureMatrix, feature_matrix

if TYPE_CHECKING:
    import pandas as pd

    from .jobs import TrainingJob

__all__ = [
    "NetConfig",
    "OptimConfig",
    "Ranker",
    "RankerModule",
    "Standardize",
    "build_ranker_net",
    "fit_ranker",
    "train_ranker",
]


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser settings: ``name`` ``adamw`` or ``sgd``; learning rate; decoupled weight decay."""

    name: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 1e-4

    def build(self, params: Any) -> torch.optim.Optimizer:
        """The optimiser over ``params``.

        Raises:
            ValueError: unknown optimiser name.
        """
        if self.name == "adamw":
            return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        if self.name == "sgd":
            return torch.optim.SGD(params, lr=self.lr, weight_decay=self.weight_decay, momentum=0.9)
        raise ValueError(f"optimizer name: expected 'adamw' or 'sgd', got {self.name!r}")


@dataclass(frozen=True)
class NetConfig:
    """The ranker network: ``kind`` ``linear`` or ``mlp`` (``depth`` hidden layers of ``hidden`` units, GELU,
    dropout) over ``in_dim`` standardised features, one output (the utility)."""

    in_dim: int
    kind: str = "mlp"
    hidden: int = 64
    depth: int = 1
    dropout: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Standardize(nn.Module):
    """``(x - mean) / std`` with ``mean``, ``std`` (D,) float32 buffers (saved with the weights)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, X: np.ndarray) -> Standardize:
        """Set mean and std from (N, D) features; constant columns get std 1."""
        mean = X.mean(0)
        std = X.std(0)
        std[std < 1e-6] = 1.0
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def build_ranker_net(cfg: NetConfig) -> nn.Sequential:
    """The network for ``cfg``: Standardize, then linear or MLP layers, then a (…, 1) utility.

    Raises:
        ValueError: unknown kind, or in_dim < 1.
    """
    if cfg.in_dim < 1:
        raise ValueError(f"in_dim: expected >= 1 feature, got {cfg.in_dim}")
    layers: list[nn.Module] = [Standardize(cfg.in_dim)]
    if cfg.kind == "linear":
        layers.append(nn.Linear(cfg.in_dim, 1))
    elif cfg.kind == "mlp":
        d = cfg.in_dim
        for _ in range(max(1, cfg.depth)):
            layers += [nn.Linear(d, cfg.hidden), nn.GELU(), nn.Dropout(cfg.dropout)]
            d = cfg.hidden
        layers.append(nn.Linear(d, 1))
    else:
        raise ValueError(f"kind: expected 'linear' or 'mlp', got {cfg.kind!r}")
    return nn.Sequential(*layers)


class RankerModule(L.LightningModule):
    """LightningModule of the ranker: Bradley-Terry loss on pairs, Plackett-Luce loss on N-way rankings.

    Args:
        net: maps (…, D) features to (…, 1) utilities (e.g. :func:`build_ranker_net`).
        optimizer: an :class:`OptimConfig` (or a dict of its fields).
        feature_set: the name of the features it is trained on (kept in the hyperparameters).

    Batches are dicts from :class:`~imagerank.training.datamodule.MatchDataset`. Logged per split (train / val /
    test): ``{split}/loss`` (mean NLL per judgement) and ``{split}/acc`` (pairwise accuracy on decided pairs).
    """

    def __init__(self, net: nn.Module, optimizer: OptimConfig | dict[str, Any] | None = None,
                 feature_set: str = "") -> None:
        super().__init__()
        opt = optimizer if isinstance(optimizer, OptimConfig) else OptimConfig(**(optimizer or {}))
        self.save_hyperparameters({"optimizer": asdict(opt), "feature_set": feature_set})
        self.net = net
        self.optim_config = opt
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        self.train_acc, self.val_acc, self.test_acc = BinaryAccuracy(), BinaryAccuracy(), BinaryAccuracy()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(…, D) features -> (…) utilities."""
        return self.net(x).squeeze(-1)

    def model_step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Loss of one batch, plus P(first side wins) and the 0/1 outcome of its decided pairs (for accuracy)."""
        s = self(batch["x"])  # (B, K)
        rank, mask = batch["rank"], batch["mask"]
        n = mask.sum(1)
        pair = n == 2
        total = s.new_zeros(())
        p_dec = s.new_zeros(0)
        y_dec = s.new_zeros(0)
        if pair.any():
            sa, sb, r = s[pair, 0], s[pair, 1], rank[pair]
            y = (r[:, 0] < r[:, 1]).float() + 0.5 * (r[:, 0] == r[:, 1]).float()
            total = total + bradley_terry_loss(sa, sb, y) * pair.sum()
            dec = y != 0.5
            p_dec = torch.sigmoid(sa[dec] - sb[dec])
            y_dec = y[dec]
        if (~pair).any():
            many = ~pair
            total = total + plackett_luce_ranks_loss(s[many], rank[many], mask[many]) * many.sum()
        return total / s.shape[0], p_dec, y_dec

    def _step(self, batch: dict[str, torch.Tensor], split: str) -> torch.Tensor:
        loss, p, y = self.model_step(batch)
        loss_metric, acc_metric = getattr(self, f"{split}_loss"), getattr(self, f"{split}_acc")
        bs = int(batch["x"].shape[0])
        loss_metric.update(loss.detach(), weight=bs)
        self.log(f"{split}/loss", loss_metric, on_step=split == "train", on_epoch=True, prog_bar=True,
                 batch_size=bs)
        if y.numel():
            acc_metric.update(p.detach(), y.long())
            self.log(f"{split}/acc", acc_metric, on_step=False, on_epoch=True, prog_bar=split != "train",
                     batch_size=bs)
        return loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optim_config.build(self.parameters())


def pick_device(device: str | None = None) -> torch.device:
    """``device`` or the best available: ``cuda``, then Apple ``mps``, then ``cpu``."""
    if device:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass
class Ranker:
    """A fitted ranker: scores images from feature vectors of its feature set.

    Attributes:
        net: the network (eval mode), (…, D) -> (…, 1).
        net_config: how to rebuild it (:class:`NetConfig`).
        feature_set: name of the features it was trained on; scoring other features raises CheckpointError.
        metadata: data size, split, metrics, versions (what the registry writes as JSON).
        history: training curve rows (epoch, step, train_loss, val_loss), when trained in this kernel.
    """

    net: nn.Module
    net_config: NetConfig
    feature_set: str
    metadata: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    name: str | None = None

    @property
    def feature_dim(self) -> int:
        return int(self.net_config.in_dim)

    @property
    def confidence(self) -> float:
        """Validated confidence in [0, 1]: ``2 * accuracy - 1`` on held-out pairs (0 = chance, 1 = always right).

        Without held-out pairs, half the training accuracy's excess over chance (a training figure flatters).
        """
        m = self.metadata.get("metrics", {})
        acc = m.get("val_accuracy")
        if acc is not None and not math.isnan(acc):
            return float(min(max(2 * acc - 1, 0.0), 1.0))
        acc = m.get("train_accuracy")
        if acc is not None and not math.isnan(acc):
            return float(min(max(2 * acc - 1, 0.0), 1.0)) * 0.5
        return 0.0

    def score(self, X: np.ndarray, *, batch_size: int = 16384, device: str | None = None) -> np.ndarray:
        """Utilities of feature rows.

        Args:
            X: (N, D) float features of this ranker's feature set.

        Returns:
            (N,) float32 utilities on the log-odds scale: P(a beats b) = sigmoid(s_a - s_b).

        Raises:
            CheckpointError: D differs from the ranker's feature dimension.
        """
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.feature_dim:
            raise CheckpointError(
                f"features: this ranker expects (N, {self.feature_dim}) rows of {self.feature_set!r}, got shape "
                f"{X.shape}"
            )
        dev = pick_device(device)
        net = self.net.to(dev).eval()
        out = []
        with torch.inference_mode():
            for k in range(0, len(X), batch_size):
                out.append(net(torch.from_numpy(X[k: k + batch_size]).to(dev)).squeeze(-1).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def features_of(self, col: CatalogLike, ids: Any = None) -> FeatureMatrix:
        """The feature matrix of ``col`` in this ranker's feature set.

        Raises:
            CheckpointError: the collection's features are another set or dimension.
        """
        cat = as_catalog(col)
        fm = feature_matrix(cat, self.feature_set, ids=ids)
        if fm.name != self.feature_set or (len(fm.X) and fm.X.shape[1] != self.feature_dim):
            raise CheckpointError(
                f"this ranker was trained on {self.feature_set!r} ({self.feature_dim} dims); the collection gives "
                f"{fm.name!r} ({fm.X.shape[1] if fm.X.ndim == 2 else '?'} dims); retrain with features={fm.name!r}"
            )
        return fm

    def score_images(self, col: CatalogLike, ids: Any = None) -> pd.Series:
        """Utilities of the collection's images (those with features), as a Series indexed by image id."""
        cat = as_catalog(col)
        import pandas as pd

        fm = self.features_of(cat, ids)
        return pd.Series(self.score(fm.X), index=pd.Index(fm.image_ids, name="image_id"), name="score")

    def predict_win(self, col: CatalogLike, a: Sequence[int], b: Sequence[int]) -> np.ndarray:
        """(P,) float64 P(a[i] beats b[i]) = sigmoid(s_a - s_b); NaN where an image has no features."""
        cat = as_catalog(col)
        s = self.score_images(cat, np.unique(np.concatenate([np.asarray(a), np.asarray(b)])))
        sa = s.reindex(np.asarray(a)).to_numpy(np.float64)
        sb = s.reindex(np.asarray(b)).to_numpy(np.float64)
        return 1.0 / (1.0 + np.exp(-(sa - sb)))

    def save(self, col: CatalogLike, name: str | None = None) -> Any:
        """Save to ``<workspace>/models/<name>/`` (see :func:`imagerank.training.registry.save_model`)."""
        cat = as_catalog(col)
        from .registry import save_model

        return save_model(cat, name or self.name or "ranker", self)

    def __repr__(self) -> str:
        m = self.metadata.get("metrics", {})
        acc = m.get("val_accuracy")
        acc_s = f", val_accuracy={acc:.3f}" if acc is not None and not math.isnan(acc) else ""
        return (f"Ranker({self.net_config.kind}, features={self.feature_set!r}, dim={self.feature_dim}, "
                f"matches={self.metadata.get('data', {}).get('n_train', '?')}{acc_s})")


def _quick_metrics(ranker: Ranker, fm: FeatureMatrix, dm: PreferenceDataModule) -> dict[str, float]:
    """Pairwise accuracy and log-loss of ``ranker`` on the train / val / cold parts of the split
    (:func:`imagerank.training.evaluate.pair_metrics`)."""
    from .evaluate import pair_metrics

    assert dm.split is not None
    scores = ranker.score(fm.X)
    out: dict[str, float] = {}
    for part in ("train", "val", "cold"):
        pairs = dm.votes.pairs(getattr(dm.split, part))
        d = scores[fm.rows(pairs.a)] - scores[fm.rows(pairs.b)]
        m = pair_metrics(1.0 / (1.0 + np.exp(-d.astype(np.float64))), pairs.y)
        out[f"{part}_accuracy"] = m.accuracy
        out[f"{part}_log_loss"] = m.log_loss
        out[f"{part}_pairs"] = m.n_pairs
    return out


def versions() -> dict[str, str]:
    """Versions of imagerank, torch, lightning and open_clip (for model metadata)."""
    import importlib.metadata as md

    out = {}
    for dist in ("imagerank", "torch", "lightning", "open_clip_torch", "torchmetrics"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "absent"
    return out


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Run with ``torch.set_num_threads(n)`` (process-wide), restoring the previous count after; None: unchanged.

    Small networks train fastest on one thread: their ops are too short to split, and on a busy machine a second
    intra-op thread waiting for a core slows every op down (measured: a 512-64-1 MLP epoch took 15x longer with
    2 threads than with 1 while another process used one of the two cores).
    """
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's informational chatter (GPU/TPU lines, tips, "few workers" hints) while training;
    real warnings and errors still show."""
    names = ("lightning.pytorch", "lightning.fabric", "lightning_utilities")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for msg in (".*does not have many workers.*", ".*LeafSpec.*", ".*litlogger.*", ".*Total length of.*",
                        ".*The number of training batches.*", ".*module\\(s\\) in eval mode.*"):
                warnings.filterwarnings("ignore", message=msg)
            yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def make_trainer(
    max_epochs: int,
    *,
    callbacks: Sequence[Any] = (),
    progress: bool = True,
    n_batches: int = 1,
    accelerator: str = "auto",
    logger: Any = False,
    fast_dev_run: bool | int = False,
    has_val: bool = True,
) -> L.Trainer:
    """A Trainer configured the imagerank way: no Lightning checkpoints (the registry saves explicitly), no
    logger unless given (a CSVLogger into the workspace), a TQDM bar refreshing ~10 times per epoch."""
    from lightning.pytorch.callbacks import TQDMProgressBar

    cbs = list(callbacks)
    if progress:
        cbs.append(TQDMProgressBar(refresh_rate=max(1, n_batches // 10)))
    return L.Trainer(
        max_epochs=max_epochs,
        accelerator=accelerator,
        devices=1,
        logger=logger,
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        callbacks=cbs,
        log_every_n_steps=max(1, min(50, n_batches)),
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if has_val else 0,
        fast_dev_run=fast_dev_run,
        deterministic=False,
    )


def fit_ranker(
    fm: FeatureMatrix,
    votes: VoteData,
    *,
    max_epochs: int = 30,
    seed: int = 0,
    network: str = "mlp",
    hidden: int = 64,
    depth: int = 1,
    dropout: float = 0.1,
    optimizer: OptimConfig | None = None,
    batch_size: int = 256,
    val_fraction: float = 0.2,
    cold_fraction: float = 0.1,
    callbacks: Sequence[Any] = (),
    progress: bool = True,
    accelerator: str = "auto",
    fast_dev_run: bool | int = False,
    logger: Any = False,
    num_threads: int | None = 1,
) -> Ranker:
    """Fit a ranker on ready features and judgements (the core of :func:`train_ranker`, no collection needed).

    Args: as :func:`train_ranker`; ``fm`` (:class:`~imagerank.training.features.FeatureMatrix`) and ``votes``
    (:class:`~imagerank.training.data.VoteData`) are the data; ``logger`` a Lightning logger or False;
    ``num_threads`` CPU threads for torch while fitting (see :func:`cpu_threads`; None leaves torch's setting).

    Returns:
        The fitted :class:`Ranker` (on the CPU) with its metadata (split, metrics, data size, versions).

    Raises:
        NoVotesError: no judgement with features, or no decided match in the training part.
    """
    t0 = time.perf_counter()
    dm = PreferenceDataModule(fm, votes, val_fraction=val_fraction, cold_fraction=cold_fraction, seed=seed,
                              batch_size=batch_size)
    dm.setup("fit")
    assert dm.split is not None
    L.seed_everything(seed, workers=True, verbose=False)
    cfg = NetConfig(int(fm.X.shape[1]), network, hidden, depth, dropout)
    net = build_ranker_net(cfg)
    net[0].fit(fm.X)  # type: ignore[operator]
    module = RankerModule(net, optimizer or OptimConfig(), feature_set=fm.name)
    n_batches = max(1, math.ceil(len(dm.train_set) / batch_size))
    with quiet_lightning(), cpu_threads(num_threads):
        trainer = make_trainer(max_epochs, callbacks=callbacks, progress=progress, n_batches=n_batches,
                               accelerator=accelerator, logger=logger, fast_dev_run=fast_dev_run,
                               has_val=len(dm.val_set) > 0)
        trainer.fit(module, datamodule=dm)
    fit_seconds = time.perf_counter() - t0
    ranker = Ranker(module.net.cpu().eval(), cfg, fm.name)
    with cpu_threads(num_threads):
        metrics = _quick_metrics(ranker, fm, dm)
    ranker.metadata = {
        "kind": "ranker",
        "feature_set": fm.name,
        "feature_dim": cfg.in_dim,
        "net": cfg.to_dict(),
        "optimizer": asdict(module.optim_config),
        "data": {
            "n_images_with_features": len(fm.image_ids), "n_judgements": len(dm.votes),
            "n_train": len(dm.split.train), "n_val": len(dm.split.val), "n_cold": len(dm.split.cold),
            "n_skips_excluded": votes.n_skips, "n_undone_excluded": votes.n_undone, "n_draws": votes.n_draws,
            "n_without_features": dm.n_without_features,
        },
        "split": {**dm.split.to_dict(), "train_match_ids": np.unique(dm.split.train_match_ids).tolist()},
        "metrics": metrics,
        "epochs": int(trainer.current_epoch),
        "max_epochs": max_epochs,
        "seed": seed,
        "device": str(trainer.strategy.root_device),
        "train_seconds": round(fit_seconds, 3),
        "versions": versions(),
    }
    for cb in callbacks:
        if hasattr(cb, "rows"):
            ranker.history = list(cb.rows)
    return ranker


def train_ranker(
    col: CatalogLike,
    features: str | FeatureMatrix = "auto",
    *,
    max_epochs: int = 30,
    seed: int = 0,
    network: str = "mlp",
    hidden: int = 64,
    depth: int = 1,
    dropout: float = 0.1,
    optimizer: OptimConfig | None = None,
    batch_size: int = 256,
    val_fraction: float = 0.2,
    cold_fraction: float = 0.1,
    background: bool = False,
    progress: bool = True,
    name: str | None = "ranker",
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    accelerator: str = "auto",
    fast_dev_run: bool | int = False,
    csv_log: bool = False,
    num_threads: int | None = 1,
) -> Ranker | TrainingJob:
    """Train a ranker on the collection's votes and return it (saved under ``models/<name>/`` unless name None).

    Args:
        col: the collection (votes from its match log; see :func:`imagerank.training.data.load_votes`).
        features: ``"auto"``, ``"cheap"``, ``"embeddings:<model>__<pretrained>"`` or a ready FeatureMatrix.
        max_epochs: passes over the training judgements.
        seed: seeds the split, the network's initialisation and the batch order.
        network, hidden, depth, dropout: the :class:`NetConfig` (``linear`` or ``mlp``).
        optimizer: default AdamW lr 3e-3, weight decay 1e-4.
        val_fraction, cold_fraction: held-out judgements and held-out images (cold start), see ``split_votes``.
        background: run in a thread and return a :class:`~imagerank.training.jobs.TrainingJob` at once
            (``job.wait()`` returns the Ranker; ``job.live_plot()`` shows the loss curve). The progress bar is
            off in the background (the live plot replaces it).
        progress: Lightning's TQDM progress bar (foreground only).
        on_progress: called with ``{"epoch", "step", "train_loss", "val_loss"}`` as training goes.
        csv_log: write Lightning's CSVLogger into ``<workspace>/models/logs``.
        num_threads: torch CPU threads while fitting (default 1, fastest for these small networks; see
            :func:`cpu_threads`).

    Returns:
        The fitted :class:`Ranker`, or a TrainingJob with ``background=True``.

    Raises:
        NoVotesError: no votes, only draws, or no decided match in the training part.
        FeatureError: the feature set is unavailable.
    """
    cat = as_catalog(col)
    from .jobs import TrainingJob

    def run(callbacks: Sequence[Any]) -> Ranker:
        fm = features if isinstance(features, FeatureMatrix) else feature_matrix(cat, features, progress=progress
                                                                                 and not background)
        votes = load_votes(cat)
        logger: Any = False
        if csv_log:
            from lightning.pytorch.loggers import CSVLogger

            logger = CSVLogger(str(cat.models_dir / "logs"), name=name or "ranker")
        ranker = fit_ranker(fm, votes, max_epochs=max_epochs, seed=seed, network=network, hidden=hidden, depth=depth,
                            dropout=dropout, optimizer=optimizer, batch_size=batch_size, val_fraction=val_fraction,
                            cold_fraction=cold_fraction, callbacks=callbacks, progress=progress and not background,
                            accelerator=accelerator, fast_dev_run=fast_dev_run, logger=logger,
                            num_threads=num_threads)
        ranker.name = name
        if name and not fast_dev_run:
            ranker.save(cat, name)
        return ranker

    job = TrainingJob(run, name=f"training {name or 'ranker'}", on_progress=on_progress)
    if background:
        return job.start()
    return job.run_here()
