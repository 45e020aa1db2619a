"""Evaluating a ranker against OpenSkill's own prediction on held-out judgements.

:func:`evaluate_ranker` rebuilds the ranker's split from its metadata (the validation match ids and the cold
images it was trained without), then scores three sets of pairwise outcomes:

- ``val``: held-out matches among images seen in training;
- ``cold``: matches whose images were all held out of training (cold start: the ranker never saw them, OpenSkill
  has only its default rating for them);
- ``half-cold``: matches between a held-out image and a seen one.

For each, the ranker's ``sigmoid(s_a - s_b)`` and OpenSkill's ``predict_win`` are compared by accuracy (on decided
pairs; a prediction of exactly 0.5 counts as half right), log-loss, Brier score, expected calibration error and a
calibration curve. To be fair, OpenSkill's ratings are *replayed from the training matches only*, in log order from
the default prior (mu 25, sigma 25/3), so neither model has seen a held-out judgement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import ratings as R
from ..catalog import CatalogLike, as_catalog
from ..errors import NoVotesError
from .data import PairTable, VoteData, load_votes

if TYPE_CHECKING:
    import pandas as pd

    from .ranker import Ranker

__all__ = ["PairMetrics", "RankerEvaluation", "evaluate_ranker", "openskill_replay", "pair_metrics"]


@dataclass
class PairMetrics:
    """Scores of probabilistic predictions on pairwise outcomes.

    Attributes:
        n_pairs: pairs scored (decided ones; draws are left out of every figure).
        accuracy: share predicted right (p > 0.5 for the winner), 0.5 credit for p == 0.5.
        log_loss: mean -ln p(winner), nats (ln 2 = 0.693 is a coin).
        brier: mean (1 - p(winner))^2 (0.25 is a coin).
        ece: expected calibration error over the bins, weighted by counts (0 = calibrated).
        calibration: DataFrame bin_lo, bin_hi, mean_pred, observed, count (both orientations of every pair, so
            the curve is symmetric about 0.5).
    """

    n_pairs: int
    accuracy: float
    log_loss: float
    brier: float
    ece: float
    calibration: Any = None


def pair_metrics(p: np.ndarray, y: np.ndarray, *, bins: int = 10) -> PairMetrics:
    """Metrics of P(a beats b) = ``p`` against outcomes ``y`` (1 a won, 0 b won, 0.5 draw: left out).

    Args:
        p: (P,) float probabilities; NaN rows (no prediction) are left out.
        y: (P,) float outcomes.
        bins: equal-width probability bins of the calibration curve.
    """
    import pandas as pd

    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    keep = (y != 0.5) & np.isfinite(p)
    p, y = p[keep], y[keep]
    empty = pd.DataFrame(columns=["bin_lo", "bin_hi", "mean_pred", "observed", "count"])
    if len(p) == 0:
        nan = float("nan")
        return PairMetrics(0, nan, nan, nan, nan, empty)
    pw = np.where(y == 1, p, 1 - p)  # probability given to the actual winner
    acc = float(np.mean(np.where(pw == 0.5, 0.5, pw > 0.5)))
    ll = float(-np.mean(np.log(np.clip(pw, 1e-7, 1.0))))
    brier = float(np.mean((1 - pw) ** 2))
    pp = np.concatenate([p, 1 - p])
    yy = np.concatenate([y, 1 - y])
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(pp, edges[1:-1]), 0, bins - 1)
    rows = []
    ece = 0.0
    for k in range(bins):
        m = which == k
        if not m.any():
            continue
        mp, ob = float(pp[m].mean()), float(yy[m].mean())
        rows.append((edges[k], edges[k + 1], mp, ob, int(m.sum())))
        ece += m.sum() / len(pp) * abs(mp - ob)
    cal = pd.DataFrame(rows, columns=["bin_lo", "bin_hi", "mean_pred", "observed", "count"]) if rows else empty
    return PairMetrics(len(p), acc, ll, brier, float(ece), cal)


def openskill_replay(votes: VoteData, rows: np.ndarray) -> dict[int, tuple[float, float]]:
    """OpenSkill ratings after replaying only the judgements at ``rows`` (in match-id order) from the default
    prior; returns image id -> (mu, sigma) for the images they touch. O(len(rows)) OpenSkill updates."""
    state: dict[int, tuple[float, float]] = {}
    order = np.asarray(rows, dtype=np.int64)
    order = order[np.argsort(votes.match_ids[order], kind="stable")]
    default = (R.DEFAULT_MU, R.DEFAULT_SIGMA)
    for r in order.tolist():
        ids = votes.entries[r].tolist()
        before = [state.get(i, default) for i in ids]
        after = R.rate_ranking(before, votes.ranks[r].tolist())
        for i, a in zip(ids, after):
            state[i] = a
    return state


@dataclass
class RankerEvaluation:
    """Held-out comparison of a ranker with OpenSkill.

    Attributes:
        metrics: {(model, set): PairMetrics} for model in ``ranker``/``openskill`` and set in
            ``val``/``cold``/``half-cold``.
        n_train_matches: judgements the ranker (and the OpenSkill replay) learned from.
    """

    metrics: dict[tuple[str, str], PairMetrics]
    n_train_matches: int
    feature_set: str
    notes: list[str] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """One row per (model, set): n_pairs, accuracy, log_loss, brier, ece."""
        import pandas as pd

        rows = [{"model": m, "set": s, "n_pairs": v.n_pairs, "accuracy": v.accuracy, "log_loss": v.log_loss,
                 "brier": v.brier, "ece": v.ece} for (m, s), v in self.metrics.items()]
        return pd.DataFrame(rows)

    def __str__(self) -> str:
        head = f"ranker ({self.feature_set}) vs OpenSkill, both from {self.n_train_matches} training judgements"
        body = self.to_frame().to_string(index=False, float_format=lambda x: f"{x:.3f}")
        return "\n".join([head, body, *self.notes])

    def _repr_html_(self) -> str:
        return f"<p>{str(self).splitlines()[0]}</p>" + self.to_frame().to_html(index=False, float_format="%.3f")

    def plot_calibration(self, sets: tuple[str, ...] = ("val", "cold"), ax: Any = None) -> Any:
        """Reliability diagram (predicted vs observed win rate) of both models on ``sets``; returns the Figure.

        Uses ``matplotlib.pyplot`` when no ``ax`` is given (so it shows inline in a notebook).
        """
        if ax is None:
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(4.8, 4.4))
        else:
            fig = ax.figure
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfectly calibrated")
        styles = {"ranker": "o-", "openskill": "s--"}
        for (model, s), m in self.metrics.items():
            if s not in sets or m.calibration is None or len(m.calibration) == 0:
                continue
            c = m.calibration
            ax.plot(c["mean_pred"], c["observed"], styles.get(model, "o-"), ms=4,
                    label=f"{model} · {s} (acc {m.accuracy:.2f}, ECE {m.ece:.3f}, n={m.n_pairs})")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("predicted P(first image wins)")
        ax.set_ylabel("observed win rate")
        ax.set_title("calibration on held-out pairs")
        ax.legend(fontsize=7, loc="upper left")
        return fig


def evaluate_ranker(col: CatalogLike, ranker: Ranker, *, votes: VoteData | None = None,
                    bins: int = 10) -> RankerEvaluation:
    """Compare ``ranker`` with OpenSkill on the judgements held out when it was trained.

    Args:
        col: the collection the ranker was trained on.
        ranker: a trained (or loaded) :class:`~imagerank.training.ranker.Ranker`; its metadata names the split.
        votes: the judgements (default: :func:`load_votes` of ``col``).
        bins: calibration bins.

    Raises:
        NoVotesError: no votes, or the ranker's metadata lacks its split (it was not trained by imagerank).
        CheckpointError: the collection's features are not the ranker's feature set.
    """
    cat = as_catalog(col)
    split = ranker.metadata.get("split")
    if not split or "train_match_ids" not in split:
        raise NoVotesError("this ranker's metadata has no split (train_match_ids); it cannot be evaluated fairly")
    votes = votes or load_votes(cat)
    train_ids = set(int(i) for i in split["train_match_ids"])
    val_ids = set(int(i) for i in split.get("val_match_ids", []))
    cold = set(int(i) for i in split.get("cold_images", []))
    mids = votes.match_ids.tolist()
    train_rows = np.array([k for k, m in enumerate(mids) if m in train_ids], dtype=np.int64)
    val_rows = np.array([k for k, m in enumerate(mids) if m in val_ids], dtype=np.int64)
    n_cold = np.array([sum(int(i) in cold for i in e) for e in votes.entries])
    sizes = np.array([len(e) for e in votes.entries])
    cold_rows = np.flatnonzero((n_cold == sizes) & (sizes > 0))
    half_rows = np.flatnonzero((n_cold > 0) & (n_cold < sizes))
    notes = []
    if not len(train_rows):
        raise NoVotesError("none of the ranker's training matches is in the log any more (undone?)")
    ratings = openskill_replay(votes, train_rows)
    sets = {"val": votes.pairs(val_rows), "cold": votes.pairs(cold_rows), "half-cold": votes.pairs(half_rows)}
    all_ids = np.unique(np.concatenate([np.concatenate([t.a, t.b]) for t in sets.values()] + [np.zeros(0, int)]))
    scores = ranker.score_images(cat, all_ids) if len(all_ids) else None
    metrics: dict[tuple[str, str], PairMetrics] = {}
    for name, t in sets.items():
        metrics[("ranker", name)] = pair_metrics(_ranker_p(scores, t), t.y, bins=bins)
    for name, t in sets.items():
        metrics[("openskill", name)] = pair_metrics(_openskill_p(ratings, t), t.y, bins=bins)
    if not len(cold_rows):
        notes.append("no cold pairs: train with cold_fraction > 0 (and enough votes) to measure cold start")
    return RankerEvaluation(metrics, len(train_rows), ranker.feature_set, notes)


def _ranker_p(scores: Any, t: PairTable) -> np.ndarray:
    if scores is None or not len(t):
        return np.zeros(len(t))
    sa = scores.reindex(t.a).to_numpy(np.float64)
    sb = scores.reindex(t.b).to_numpy(np.float64)
    return 1.0 / (1.0 + np.exp(-(sa - sb)))


def _openskill_p(ratings: dict[int, tuple[float, float]], t: PairTable) -> np.ndarray:
    default = (R.DEFAULT_MU, R.DEFAULT_SIGMA)
    ra = np.array([ratings.get(int(i), default) for i in t.a], dtype=np.float64).reshape(-1, 2)
    rb = np.array([ratings.get(int(i), default) for i in t.b], dtype=np.float64).reshape(-1, 2)
    return R.predict_win_pairs(ra[:, 0], ra[:, 1], rb[:, 0], rb[:, 1])
