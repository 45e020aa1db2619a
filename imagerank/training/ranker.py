"""The pairwise ranker: a network scoring one image from its feature vector, trained on the vote log.

Model: utility ``s(x)`` from a linear layer or a small MLP over standardised features; pairwise judgements use the
Bradley-Terry loss, N-way rankings the Plackett-Luce loss (both from :mod:`imagerank.training.bt`). The
:class:`RankerModule` (LightningModule) is handed its network and optimiser configuration; :func:`train_ranker` is
the one-call front door that returns a fitted :class:`Ranker` (or a :class:`~imagerank.training.jobs.TrainingJob`
running in a background thread). Every setting of a fit lives in one :class:`RankerConfig`:
``train_ranker(col, "cheap", RankerConfig(max_epochs=20), background=True)``.
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
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import BinaryAccuracy

from .._util.torch import cpu_threads, quiet_lightning, resolve_accelerator
from ..catalog import CatalogLike, as_catalog
from ..errors import CheckpointError, InvalidArgumentError
from .bt import bradley_terry_loss, plackett_luce_ranks_loss
from .data import Split, VoteData, load_votes
from .datamodule import PreferenceDataModule
from .features import FeatureMatrix, feature_matrix
from .trainer import FitConfig, OptimConfig, SplitModule, history_of, make_trainer, versions

if TYPE_CHECKING:
    import pandas as pd

    from .jobs import TrainingJob

__all__ = [
    "NetConfig",
    "OptimConfig",
    "Ranker",
    "RankerConfig",
    "RankerModule",
    "Standardize",
    "build_ranker_net",
    "fit_ranker",
    "train_ranker",
]


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


@dataclass(frozen=True)
class RankerConfig(FitConfig):
    """How a ranker is fitted: the :class:`~imagerank.training.trainer.FitConfig` settings plus the network and the
    held-out images; the one settings object :func:`train_ranker` and :func:`fit_ranker` take (frozen; derive a
    variant with ``dataclasses.replace(cfg, max_epochs=5)``).

    Attributes:
        max_epochs: passes over the training judgements (default 30).
        seed: seeds the split, the network's initialisation and the batch order.
        batch_size: judgements per batch (default 256).
        val_fraction: share of judgements (by match) held out for validation, in [0, 1).
        cold_fraction: share of judged images held out completely (every match touching one leaves training: the
            cold-start test), in [0, 1); see :func:`imagerank.training.data.split_votes`.
        optimizer: default AdamW, lr 3e-3, weight decay 1e-4.
        accelerator, fast_dev_run: see :class:`~imagerank.training.trainer.FitConfig`.
        num_threads: torch CPU threads while fitting (default 1, fastest for these small networks).
        network: ``linear`` or ``mlp``; hidden (units), depth (hidden layers), dropout (probability): the MLP's
            (see :class:`NetConfig`).

    Raises:
        InvalidArgumentError: a value out of range or an unknown network.
    """

    network: str = "mlp"
    hidden: int = 64
    depth: int = 1
    dropout: float = 0.1
    cold_fraction: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.network not in ("linear", "mlp"):
            raise InvalidArgumentError(f"network: expected 'linear' or 'mlp', got {self.network!r}")
        if self.hidden < 1 or self.depth < 1:
            raise InvalidArgumentError(f"hidden, depth: expected >= 1, got {self.hidden!r}, {self.depth!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise InvalidArgumentError(f"dropout: expected a probability in [0, 1), got {self.dropout!r}")
        if not 0.0 <= self.cold_fraction < 1.0:
            raise InvalidArgumentError(f"cold_fraction: expected a fraction in [0, 1), got {self.cold_fraction!r}")

    def net_config(self, in_dim: int) -> NetConfig:
        """The :class:`NetConfig` of this network over ``in_dim`` features."""
        return NetConfig(int(in_dim), self.network, self.hidden, self.depth, self.dropout)


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
        InvalidArgumentError: unknown kind, or in_dim < 1.
    """
    if cfg.in_dim < 1:
        raise InvalidArgumentError(f"in_dim: expected >= 1 feature, got {cfg.in_dim}")
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
        raise InvalidArgumentError(f"kind: expected 'linear' or 'mlp', got {cfg.kind!r}")
    return nn.Sequential(*layers)


class RankerModule(SplitModule):
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

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "test")


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
            batch_size: rows per forward pass.
            device: torch device (``cpu``, ``cuda``, ``mps`` ...); None: the best available
                (:func:`imagerank._util.torch.resolve_accelerator`).

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
        dev = torch.device(resolve_accelerator(device))
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




def _quick_metrics(ranker: Ranker, fm: FeatureMatrix, votes: VoteData, split: Split) -> dict[str, float]:
    """Pairwise accuracy and log-loss of ``ranker`` on the train / val / cold parts of ``split`` (rows of
    ``votes``; :func:`imagerank.training.evaluate.pair_metrics`)."""
    from .evaluate import pair_metrics

    scores = ranker.score(fm.X)
    out: dict[str, float] = {}
    for part in ("train", "val", "cold"):
        pairs = votes.pairs(getattr(split, part))
        d = scores[fm.rows(pairs.a)] - scores[fm.rows(pairs.b)]
        m = pair_metrics(1.0 / (1.0 + np.exp(-d.astype(np.float64))), pairs.y)
        out[f"{part}_accuracy"] = m.accuracy
        out[f"{part}_log_loss"] = m.log_loss
        out[f"{part}_pairs"] = m.n_pairs
    return out


def fit_ranker(
    fm: FeatureMatrix,
    votes: VoteData,
    config: RankerConfig | None = None,
    *,
    callbacks: Sequence[Any] = (),
    progress: bool = True,
    logger: Any = False,
) -> Ranker:
    """Fit a ranker on ready features and judgements (the core of :func:`train_ranker`, no collection needed).

    Args:
        fm: (N, D) feature vectors (:class:`~imagerank.training.features.FeatureMatrix`).
        votes: the judgements (:class:`~imagerank.training.data.VoteData`).
        config: a :class:`RankerConfig` (default ``RankerConfig()``).
        callbacks: Lightning callbacks (a :class:`~imagerank.training.jobs.TrainingJob`'s progress callback).
        progress: Lightning's TQDM progress bar.
        logger: a Lightning logger, or False.

    Returns:
        The fitted :class:`Ranker` (on the CPU) with its metadata (config, split, metrics, data size, versions).

    Raises:
        NoVotesError: no judgement with features, or no decided match in the training part.
    """
    cfg = config or RankerConfig()
    t0 = time.perf_counter()
    dm = PreferenceDataModule(fm, votes, val_fraction=cfg.val_fraction, cold_fraction=cfg.cold_fraction,
                              seed=cfg.seed, batch_size=cfg.batch_size)
    split = dm.prepare_split()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    net_cfg = cfg.net_config(fm.X.shape[1])
    net = build_ranker_net(net_cfg)
    net[0].fit(fm.X)  # type: ignore[operator]
    module = RankerModule(net, cfg.optimizer, feature_set=fm.name)
    with quiet_lightning(), cpu_threads(cfg.threads()):
        trainer = make_trainer(cfg, n_train=len(dm.train_set), callbacks=callbacks, progress=progress, logger=logger,
                               has_val=len(dm.val_set) > 0)
        trainer.fit(module, datamodule=dm)
    fit_seconds = time.perf_counter() - t0
    ranker = Ranker(module.net.cpu().eval(), net_cfg, fm.name)
    with cpu_threads(cfg.threads()):
        metrics = _quick_metrics(ranker, fm, dm.votes, split)
    ranker.metadata = {
        "kind": "ranker",
        "feature_set": fm.name,
        "feature_dim": net_cfg.in_dim,
        "net": net_cfg.to_dict(),
        "optimizer": asdict(module.optim_config),
        "fit_config": cfg.to_dict(),
        "data": {
            "n_images_with_features": len(fm.image_ids), "n_judgements": len(dm.votes),
            "n_train": len(split.train), "n_val": len(split.val), "n_cold": len(split.cold),
            "n_skips_excluded": votes.n_skips, "n_undone_excluded": votes.n_undone, "n_draws": votes.n_draws,
            "n_without_features": dm.n_without_features,
        },
        "split": {**split.to_dict(), "train_match_ids": np.unique(split.train_match_ids).tolist()},
        "metrics": metrics,
        "epochs": int(trainer.current_epoch),
        "max_epochs": cfg.max_epochs,
        "seed": cfg.seed,
        "device": str(trainer.strategy.root_device),
        "train_seconds": round(fit_seconds, 3),
        "versions": versions(),
    }
    ranker.history = history_of(callbacks)
    return ranker


def train_ranker(
    col: CatalogLike,
    features: str | FeatureMatrix = "auto",
    config: RankerConfig | None = None,
    *,
    background: bool = False,
    progress: bool = True,
    name: str | None = "ranker",
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    csv_log: bool = False,
) -> Ranker | TrainingJob:
    """Train a ranker on the collection's votes and return it (saved under ``models/<name>/`` unless name None).

    ``train_ranker(col, "cheap", RankerConfig(max_epochs=20), background=True)``.

    Args:
        col: the collection or catalog (votes from its match log; see :func:`imagerank.training.data.load_votes`).
        features: ``"auto"``, ``"cheap"``, ``"embeddings:<model>__<pretrained>"`` or a ready FeatureMatrix.
        config: a :class:`RankerConfig` (epochs, seed, network, optimiser, split, device, threads); default
            ``RankerConfig()``. With ``fast_dev_run`` nothing is saved.
        background: run in a thread and return a :class:`~imagerank.training.jobs.TrainingJob` at once
            (``job.wait()`` returns the Ranker; ``job.live_plot()`` shows the loss curve). The progress bar is
            off in the background (the live plot replaces it).
        progress: Lightning's TQDM progress bar (foreground only).
        name: the model's name under ``models/``; None: not saved.
        on_progress: called with ``{"epoch", "step", "train_loss", "val_loss"}`` as training goes.
        csv_log: write Lightning's CSVLogger into ``<workspace>/models/logs``.

    Returns:
        The fitted :class:`Ranker`, or a TrainingJob with ``background=True``.

    Raises:
        NoVotesError: no votes, only draws, or no decided match in the training part.
        FeatureError: the feature set is unavailable.
    """
    cat = as_catalog(col)
    cfg = config or RankerConfig()
    from .jobs import TrainingJob

    def run(callbacks: Sequence[Any]) -> Ranker:
        fm = features if isinstance(features, FeatureMatrix) else feature_matrix(cat, features, progress=progress
                                                                                 and not background)
        votes = load_votes(cat)
        logger: Any = False
        if csv_log:
            from lightning.pytorch.loggers import CSVLogger

            logger = CSVLogger(str(cat.models_dir / "logs"), name=name or "ranker")
        ranker = fit_ranker(fm, votes, cfg, callbacks=callbacks, progress=progress and not background, logger=logger)
        ranker.name = name
        if name and not cfg.fast_dev_run:
            ranker.save(cat, name)
        return ranker

    job = TrainingJob(run, name=f"training {name or 'ranker'}", on_progress=on_progress)
    if background:
        return job.start()
    return job.run_here()
