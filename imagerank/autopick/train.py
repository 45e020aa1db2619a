"""Training the aesthetic head on the user's own judgements, with the training package's recipe (a Lightning
module on :class:`~imagerank.training.trainer.SplitModule`, :func:`~imagerank.training.trainer.make_trainer`,
:class:`~imagerank.training.trainer.FitConfig`), evaluated by Spearman correlation on held-out labels and saved in
the model registry (``models/<name>/``, kind ``aesthetic``).

Data: good/bad labels of auto-pick candidates (their stored CLIP embeddings), good/bad labels of collection images
and pairwise votes (with the collection's CLIP embedding sidecar of the same model, when computed). One loss for
both: binary cross-entropy on a logit, ``rating - 5`` for a label (good = 1: a good image should rate above the
middle of the 0-10 scale) and ``rating_a - rating_b`` for a vote (Bradley-Terry; Bradley & Terry 1952).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..catalog import CatalogLike, as_catalog
from ..errors import CheckpointError, NoVotesError
from ..training.trainer import FitConfig, SplitModule, make_trainer, versions
from .scorer import AestheticHead, HeadConfig
from .store import PickStore

__all__ = ["HeadFitConfig", "TrainedHead", "load_trained_head", "spearman", "train_head"]


@dataclass(frozen=True)
class HeadFitConfig(FitConfig):
    """:class:`~imagerank.training.trainer.FitConfig` for the head: default 60 epochs, batches of 64, a quarter of
    the labels held out (stratified by label; the Spearman figure is computed on them), AdamW lr 3e-3."""

    max_epochs: int = 60
    batch_size: int = 64
    val_fraction: float = 0.25
    accelerator: str = "cpu"


def spearman(score: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation of scores with labels (ties get average ranks; scipy.stats.spearmanr); NaN with
    fewer than 2 items or a constant input."""
    from scipy.stats import spearmanr

    if len(score) < 2 or np.ptp(score) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(score, y).statistic)


class _HeadModule(SplitModule):
    def __init__(self, head: AestheticHead, config: HeadFitConfig) -> None:
        super().__init__()
        self.head = head
        self.optim_config = config.optimizer

    def _step(self, batch: dict[str, torch.Tensor], split: str) -> torch.Tensor:
        ra = self.head(batch["a"])
        rb = self.head(batch["b"])
        pair = batch["pair"] > 0.5
        logit = torch.where(pair, ra - rb, ra - 5.0)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, batch["y"])
        self.log(f"{split}/loss", loss, on_epoch=True, on_step=False, prog_bar=split == "val",
                 batch_size=int(batch["y"].shape[0]))
        return loss


class _Items(torch.utils.data.Dataset):
    def __init__(self, a: np.ndarray, b: np.ndarray, y: np.ndarray, pair: np.ndarray) -> None:
        self.a, self.b = torch.from_numpy(a), torch.from_numpy(b)
        self.y, self.pair = torch.from_numpy(y), torch.from_numpy(pair)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"a": self.a[i], "b": self.b[i], "y": self.y[i], "pair": self.pair[i]}


@dataclass
class TrainedHead:
    """A head fitted on the user's judgements: ``net`` (the :class:`AestheticHead`), ``metadata`` (clip model,
    head config, data sizes, metrics ``val_spearman`` and ``val_spearman_before``, versions), ``name``."""

    net: AestheticHead
    metadata: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    name: str | None = None


def _collection_data(cat: Any, clip: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Labels and votes of collection images with embeddings of ``clip`` (empty arrays when not computed)."""
    from ..errors import FeatureError
    from ..training.features import feature_matrix

    try:
        fm = feature_matrix(cat, f"embeddings:{clip}", progress=False)
    except (FeatureError, NoVotesError):
        return (np.zeros((0, 0), np.float32),) * 2 + (np.zeros(0, np.float32),) * 2
    rows = {int(i): k for k, i in enumerate(fm.image_ids)}
    X = np.asarray(fm.X, np.float32)
    la, lb, ly, lp = [], [], [], []
    for image_id, label in cat.db.query("SELECT image_id, label FROM labels WHERE label IN ('good','bad')"):
        if int(image_id) in rows:
            la.append(X[rows[int(image_id)]])
            lb.append(np.zeros(X.shape[1], np.float32))
            ly.append(1.0 if label == "good" else 0.0)
            lp.append(0.0)
    for w, lo in cat.db.query("SELECT winner_id, loser_id FROM comparisons WHERE was_draw=0"):
        if int(w) in rows and int(lo) in rows:
            la.append(X[rows[int(w)]])
            lb.append(X[rows[int(lo)]])
            ly.append(1.0)
            lp.append(1.0)
    if not la:
        return (np.zeros((0, 0), np.float32),) * 2 + (np.zeros(0, np.float32),) * 2
    return (np.stack(la), np.stack(lb), np.asarray(ly, np.float32), np.asarray(lp, np.float32))


def train_head(
    col: CatalogLike,
    head: AestheticHead,
    clip: str,
    config: HeadFitConfig | None = None,
    *,
    name: str | None = "aesthetic",
    progress: bool = False,
) -> TrainedHead:
    """Fine-tune a copy of ``head`` on the labels and votes of ``col`` and save it as ``models/<name>/``.

    Args:
        col: the collection or catalog.
        head: the starting head (a published LAION head, or a fresh ``AestheticHead(HeadConfig("mlp", D))``);
            it is copied, never changed.
        clip: the CLIP model the embeddings come from, ``<model>__<tag>`` (``ClipAestheticScorer.name``).
        config: a :class:`HeadFitConfig`.
        name: the registry name; None: not saved.

    Returns:
        The :class:`TrainedHead`; ``metadata["metrics"]`` holds ``val_spearman`` (trained head, held-out labels)
        and ``val_spearman_before`` (the starting head on the same labels), both of the raw (unclamped) ratings.

    Raises:
        NoVotesError: fewer than 4 labels with embeddings of ``clip``, or only one kind of label.
    """
    import copy

    import lightning as L

    from .._util.torch import cpu_threads, quiet_lightning
    from ..training.registry import save_model

    cat = as_catalog(col)
    cfg = config or HeadFitConfig()
    Xc, yc, _ = PickStore(cat).labelled_embeddings(clip)
    a_col, b_col, y_col, p_col = _collection_data(cat, clip)
    if len(Xc) and Xc.shape[1] != head.config.in_dim:
        raise CheckpointError(f"head expects {head.config.in_dim}-dim embeddings; {clip} gives {Xc.shape[1]}")
    n_lab = len(yc) + int((p_col == 0).sum())
    if n_lab < 4 or len(set(yc.tolist()) | set(y_col[p_col == 0].tolist())) < 2:
        raise NoVotesError(f"training the aesthetic head needs at least 4 good/bad labels of both kinds with "
                           f"{clip} embeddings; found {n_lab} (label candidates in the label panel)")
    D = head.config.in_dim
    A = np.concatenate([Xc, a_col]) if len(a_col) else Xc
    B = np.concatenate([np.zeros_like(Xc), b_col]) if len(a_col) else np.zeros_like(Xc)
    Y = np.concatenate([yc, y_col]) if len(a_col) else yc
    P = np.concatenate([np.zeros(len(yc), np.float32), p_col]) if len(a_col) else np.zeros(len(yc), np.float32)
    rng = np.random.default_rng(cfg.seed)
    val = np.zeros(len(Y), bool)
    for cls in (0.0, 1.0):  # stratified hold-out of labels (votes always train)
        idx = np.flatnonzero((P == 0) & (cls == Y))
        rng.shuffle(idx)
        val[idx[: round(len(idx) * cfg.val_fraction)]] = True
    tr = ~val
    start = copy.deepcopy(head).float()
    before = spearman(start.raw(A[val]), Y[val]) if val.any() else float("nan")
    t0 = time.perf_counter()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    net = copy.deepcopy(start)
    module = _HeadModule(net, cfg)
    loader = torch.utils.data.DataLoader(_Items(A[tr], B[tr], Y[tr], P[tr]), batch_size=cfg.batch_size,
                                         shuffle=True)
    vloader = torch.utils.data.DataLoader(_Items(A[val], B[val], Y[val], P[val]), batch_size=cfg.batch_size)
    with quiet_lightning(), cpu_threads(cfg.threads()):
        trainer = make_trainer(cfg, n_train=int(tr.sum()), progress=progress, has_val=bool(val.any()))
        trainer.fit(module, loader, vloader if val.any() else None)
    net = module.head.cpu().eval()
    after = spearman(net.raw(A[val]), Y[val]) if val.any() else float("nan")
    train_rho = spearman(net.raw(A[tr & (P == 0)]), Y[tr & (P == 0)])
    out = TrainedHead(net, {
        "kind": "aesthetic", "clip": clip, "head": net.config.to_dict(), "feature_dim": D,
        "fit_config": cfg.to_dict(),
        "data": {"n_candidate_labels": len(yc), "n_collection_labels": int((p_col == 0).sum()),
                 "n_votes": int((p_col == 1).sum()), "n_train": int(tr.sum()), "n_val": int(val.sum())},
        "metrics": {"val_spearman": after, "val_spearman_before": before, "train_spearman": train_rho},
        "epochs": int(trainer.current_epoch), "train_seconds": round(time.perf_counter() - t0, 3),
        "versions": versions(),
    })
    if name and not cfg.fast_dev_run:
        save_model(cat, name, out)
    return out


def load_trained_head(col: CatalogLike, name: str = "aesthetic") -> tuple[AestheticHead, dict[str, Any]]:
    """A head saved by :func:`train_head`: (head in eval mode on the CPU, its metadata; ``meta["clip"]`` names
    the CLIP model to embed with).

    Raises:
        NotFoundError: no such model. CheckpointError: not an aesthetic head, or unreadable / mismatched weights.
    """
    from safetensors.torch import load_file

    from ..training.registry import WEIGHTS, model_dir, read_meta

    cat = as_catalog(col)
    meta = read_meta(cat, name)
    if meta.get("kind") != "aesthetic":
        raise CheckpointError(f"model {name!r} is a {meta.get('kind')!r} model, not an aesthetic head")
    path = model_dir(cat, name) / WEIGHTS
    try:
        state = load_file(str(path))
        head = AestheticHead(HeadConfig(**meta["head"]))
        head.load_state_dict(state, strict=True)
    except CheckpointError:
        raise
    except Exception as e:  # safetensors / torch raise many types
        raise CheckpointError(f"model {name!r}: {path} unreadable or not a fitting head ({type(e).__name__}: "
                              f"{str(e)[:200]})") from e
    return head.eval(), meta
