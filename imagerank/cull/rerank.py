"""The learned rerank: re-decide each near-duplicate cluster's pick with the technical score and a learned score.

Within every cluster of two or more scored frames (the groups of :func:`imagerank.cull.refine.burst_groups`), each
frame gets ``combined = w_tech * score + w_learned * learned_score``: ``score`` is the cull's technical score
(:mod:`imagerank.cull.passes`, a sum of weighted parts), ``learned_score`` the utility a ranker trained on a
person's burst picks gives the frame (log-odds scale: a difference of 1 means the person picks the first of two
frames with probability 0.73; :func:`imagerank.training.burst.train_burst_reranker`). The weights are explicit
(:class:`RerankWeights`) and printed with the result; only differences within a cluster matter, so neither
part's offset does.

What the rerank writes (the IR columns of :mod:`imagerank.cull.ir`):

- ``learned_score`` of every scored frame the scorer knows (null otherwise);
- ``decided_by``: ``tech`` where the combined score keeps the cull's pick (or a frame of the cluster has no
  learned score: the cluster is left as the cull decided), ``learned`` on every frame of a cluster whose pick the
  learned part changed;
- in a changed cluster: ``is_pick`` moves to the frame with the highest combined score (ties: earlier capture,
  then path, as the cull breaks them); the new pick takes the old pick's bucket (``best`` or ``good``; ``good``
  when the old pick was trashed or left for review), unless the cull's own checks put it in ``trash`` (under
  ``cull_min_sharpness``: ``blurry``; over ``cull_max_clip``: ``clipped``) or ``maybe`` (``eyes_closed``); the
  old pick goes to ``trash`` as a ``near_duplicate`` of the new one; the other frames' ``near_duplicate`` reasons
  point at the new pick. Each frame of the cluster gets a ``learned_pick`` reason whose message gives both parts
  and both weights, ``value`` the new pick's combined score and ``threshold`` the old pick's.

:class:`Reranker` is the callable the cull pipeline takes: ``reranker.apply(records, settings.cull)`` on the
pipeline's records, ``reranker(ir)`` on a returned IR table. :meth:`Reranker.from_workspace` builds one from a
model in the workspace's registry.
"""

from __future__ import annotations

import copy
import math
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..config import CullSettings
from ..errors import InvalidArgumentError
from ..features.hashing import hamming
from .ir import reason, to_frame
from .refine import ir_image_ids

if TYPE_CHECKING:
    from ..catalog import CatalogLike

__all__ = ["DEFAULT_RERANKER", "RerankWeights", "Reranker", "WorkspaceScorer", "records_of", "rerank"]

#: The registry name :func:`imagerank.training.burst.train_burst_reranker` saves under by default.
DEFAULT_RERANKER = "burst-reranker"
_SELECT_CODES = frozenset({"burst_pick", "top_score", "kept", "blurry", "clipped", "eyes_closed", "learned_pick"})

Scorer = Callable[[pd.DataFrame], pd.Series]


@dataclass(frozen=True)
class RerankWeights:
    """The weights of the two parts: ``combined = tech * score + learned * learned_score``.

    Attributes:
        tech: weight (>= 0) of the technical score. Default 1.0.
        learned: weight (>= 0) of the learned utility. Default 1.0.

    Raises:
        InvalidArgumentError: a weight that is negative or not finite, or both 0.
    """

    tech: float = 1.0
    learned: float = 1.0

    def __post_init__(self) -> None:
        for name in ("tech", "learned"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise InvalidArgumentError(f"rerank weight {name}: expected a finite number >= 0, got {v!r}")
        if self.tech == 0 and self.learned == 0:
            raise InvalidArgumentError("rerank weights: expected at least one weight > 0, got tech=0 and learned=0")

    def to_dict(self) -> dict[str, float]:
        """``{"tech": w_tech, "learned": w_learned}`` (JSON-ready)."""
        return {"tech": float(self.tech), "learned": float(self.learned)}


class WorkspaceScorer:
    """Learned scores of IR rows from a ranker over the workspace's features.

    Each row is mapped to its catalog image (:func:`imagerank.cull.refine.ir_image_ids`), its features read in the
    ranker's feature set (:meth:`imagerank.training.ranker.Ranker.features_of`: cheap features are computed for
    images that lack them; embeddings only exist where an embedding pass ran) and scored.

    Args:
        col: the workspace (Collection or Catalog).
        ranker: a fitted :class:`~imagerank.training.ranker.Ranker`.
        root: the folder the cull read.
        add: add files the catalog does not list yet (see :func:`ir_image_ids`).
    """

    def __init__(self, col: CatalogLike, ranker: Any, root: str | os.PathLike[str], *, add: bool = False) -> None:
        from ..catalog import as_catalog

        self.catalog = as_catalog(col)
        self.ranker = ranker
        self.root = root
        self.add = bool(add)
        self.name = f"{getattr(ranker, 'name', None) or 'ranker'} ({ranker.feature_set})"

    def __call__(self, ir: pd.DataFrame) -> pd.Series:
        """(len(ir),) ``Float64`` utilities aligned with ``ir``'s index; ``<NA>`` for rows without an image or
        features."""
        ids = ir_image_ids(self.catalog, ir, self.root, add=self.add)
        out = pd.Series(pd.array([None] * len(ir), dtype="Float64"), index=ir.index, name="learned_score")
        have = ids.dropna().astype("int64")
        if len(have) == 0:
            return out
        fm = self.ranker.features_of(self.catalog, np.unique(have.to_numpy()))
        s = pd.Series(self.ranker.score(fm.X).astype(np.float64), index=fm.image_ids)
        vals = s.reindex(have.to_numpy()).to_numpy()
        out.loc[have.index] = pd.array(vals, dtype="Float64")
        return out


def _num(v: Any) -> float | None:
    if v is None or v is pd.NA:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _when(r: dict[str, Any]) -> pd.Timestamp:
    t = r.get("capture_time")
    if t is None or t is pd.NA or (isinstance(t, float) and math.isnan(t)):
        return pd.Timestamp.max
    ts = pd.Timestamp(t)
    return pd.Timestamp.max if pd.isna(ts) else ts.tz_localize(None) if ts.tzinfo else ts


def records_of(ir: pd.DataFrame) -> list[dict[str, Any]]:
    """The IR table as a list of record dicts (nulls as None, reasons deep-copied), the form the pipeline's
    passes work on; :func:`imagerank.cull.ir.to_frame` turns them back.

    Raises:
        InvalidArgumentError: ``ir`` is not a DataFrame with a ``path`` column.
    """
    if not isinstance(ir, pd.DataFrame) or "path" not in ir.columns:
        raise InvalidArgumentError(f"ir: expected the cull's IR DataFrame, got {type(ir).__name__}")
    out = []
    for rec in ir.to_dict("records"):
        r: dict[str, Any] = {}
        for k, v in rec.items():
            if k == "reasons":
                r[k] = copy.deepcopy(list(v)) if isinstance(v, (list, tuple, np.ndarray)) else []
            elif v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
                r[k] = None
            elif isinstance(v, np.generic):
                r[k] = v.item()
            else:
                r[k] = v
        out.append(r)
    return out


class Reranker:
    """A learned scorer and the weights that combine it with the technical score (see the module docstring).

    Args:
        scorer: ``scorer(ir) -> Series`` of learned utilities aligned with ``ir``'s index (``<NA>`` / NaN where
            unknown), e.g. a :class:`WorkspaceScorer`.
        weights: a :class:`RerankWeights` (default ``tech=1, learned=1``).
        name: what to call the scorer in reasons and summaries (default: the scorer's ``name`` attribute).

    Raises:
        InvalidArgumentError: ``scorer`` is not callable, or ``weights`` is not a RerankWeights.
    """

    def __init__(self, scorer: Scorer, weights: RerankWeights | None = None, *, name: str | None = None) -> None:
        if not callable(scorer):
            raise InvalidArgumentError(f"scorer: expected a callable ir -> Series, got {type(scorer).__name__}")
        w = RerankWeights() if weights is None else weights
        if not isinstance(w, RerankWeights):
            raise InvalidArgumentError(f"weights: expected a RerankWeights, got {type(weights).__name__}")
        self.scorer = scorer
        self.weights = w
        self.name = name or str(getattr(scorer, "name", "learned scorer"))
        self.last: dict[str, Any] = {}

    @classmethod
    def from_workspace(cls, col: CatalogLike, root: str | os.PathLike[str], *, model: str = DEFAULT_RERANKER,
                       weights: RerankWeights | None = None, add: bool = False) -> Reranker:
        """A reranker scoring with model ``model`` of the workspace's registry (``models/<model>/``).

        Raises:
            NotFoundError: no such model. CheckpointError: it cannot be loaded.
        """
        from ..training.registry import load_model

        ranker = load_model(col, model, device="cpu")
        return cls(WorkspaceScorer(col, ranker, root, add=add), weights)

    def describe(self) -> dict[str, Any]:
        """JSON-ready: the scorer's name, the weights and the counts of the last run (``clusters``, ``changed``,
        ``unscored`` clusters left to the technical score)."""
        return {"scorer": self.name, "weights": self.weights.to_dict(), **self.last}

    # ------------------------------------------------------------------ records (the pipeline's hook)
    def apply(self, recs: Sequence[dict[str, Any]], cfg: CullSettings | None = None) -> dict[str, Any]:
        """Rerank the pipeline's records in place (after :func:`imagerank.cull.passes.run_passes`).

        Args:
            recs: the IR records (dicts keyed by IR column).
            cfg: the ``[cull]`` settings whose thresholds the new picks are checked against (default: defaults).

        Returns:
            :meth:`describe` of this run.

        Raises:
            InvalidArgumentError: the scorer returned something other than one number per row.
        """
        cfg = cfg if cfg is not None else CullSettings()
        if not recs:
            self.last = {"clusters": 0, "changed": 0, "unscored": 0}
            return self.describe()
        frame = to_frame(recs)
        got = self.scorer(frame)
        values = np.asarray(pd.Series(got).astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
                            if isinstance(got, pd.Series) else got, dtype=np.float64)
        if values.shape != (len(frame),):
            raise InvalidArgumentError(f"scorer: expected {len(frame)} learned scores (one per IR row), got shape "
                                       f"{values.shape}")
        learned = dict(zip(frame["path"].astype(str), values.tolist()))
        scored = [r for r in recs if r.get("status") == "ok" and _num(r.get("score")) is not None]
        for r in scored:
            v = learned.get(str(r["path"]))
            r["learned_score"] = None if v is None or math.isnan(v) else float(v)
        clusters: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for r in scored:
            if r.get("cluster_id") is not None:
                clusters[int(r["cluster_id"])].append(r)
        n = changed = unscored = 0
        for group in clusters.values():
            if len(group) < 2:
                continue
            n += 1
            if any(r.get("learned_score") is None for r in group):
                unscored += 1
                continue
            changed += self._decide(group, cfg)
        self.last = {"clusters": n, "changed": changed, "unscored": unscored}
        return self.describe()

    def _combined(self, r: dict[str, Any]) -> float:
        return self.weights.tech * float(r["score"]) + self.weights.learned * float(r["learned_score"])

    def _decide(self, group: list[dict[str, Any]], cfg: CullSettings) -> int:
        old = next((r for r in group if r.get("is_pick") is True), None)
        new = sorted(group, key=lambda r: (-self._combined(r), _when(r), r["path"]))[0]
        if old is None or new is old:
            for r in group:
                r["decided_by"] = "tech"
            return 0
        w = self.weights
        c_new, c_old = self._combined(new), self._combined(old)
        why = (f"learned score {new['learned_score']:+.3f} vs {old['learned_score']:+.3f} (weight {w.learned:g}) "
               f"and tech score {new['score']:.3f} vs {old['score']:.3f} (weight {w.tech:g}): combined "
               f"{c_new:.3f} > {c_old:.3f}, so {new['path']} replaces the cull's pick {old['path']}")
        old_bucket = old.get("bucket")
        for r in group:
            r["decided_by"] = "learned"
            r["reasons"] = [x for x in (r.get("reasons") or []) if not (
                x["code"] == "near_duplicate" or (r is old and x["code"] in _SELECT_CODES))]
        new["is_pick"], old["is_pick"] = True, False
        new["reasons"].append(reason("burst_pick", "rerank", f"highest combined score of {len(group)} "
                                     "near-duplicates", value=c_new))
        for r in group:
            r["reasons"].append(reason("learned_pick", "rerank", why, value=c_new, threshold=c_old,
                                       ref=new["path"] if r is not new else old["path"]))
            if r is new:
                continue
            r["bucket"] = "trash"
            d = int(hamming(int(r["dhash"]), int(new["dhash"]))) if r.get("dhash") is not None \
                and new.get("dhash") is not None else None
            r["reasons"].append(reason("near_duplicate", "rerank",
                                       f"dHash {d} bits from {new['path']}, which the learned rerank picked "
                                       f"(combined {c_new:.3f} > {self._combined(r):.3f})", value=d,
                                       threshold=cfg.cull_dedupe_hamming, ref=new["path"]))
        lap = _num(new.get("laplacian_var"))
        clip = (_num(new.get("clip_shadows")) or 0.0) + (_num(new.get("clip_highlights")) or 0.0)
        if cfg.cull_min_sharpness > 0 and lap is not None and lap < cfg.cull_min_sharpness:
            new["bucket"] = "trash"
            new["reasons"].append(reason("blurry", "rerank", "sharpness under cull_min_sharpness", value=lap,
                                         threshold=cfg.cull_min_sharpness))
        elif clip > cfg.cull_max_clip:
            new["bucket"] = "trash"
            new["reasons"].append(reason("clipped", "rerank", "clipped fraction over cull_max_clip", value=clip,
                                         threshold=cfg.cull_max_clip))
        elif new.get("eyes_closed") is True:
            new["bucket"] = "maybe"
            new["reasons"].append(reason("eyes_closed", "rerank", "a face with no open eye"))
        elif old_bucket == "best":
            new["bucket"] = "best"
            new["reasons"].append(reason("top_score", "rerank", "takes the best-bucket place of the pick it "
                                         "replaced", value=c_new, ref=old["path"]))
        else:
            new["bucket"] = "good"
            new["reasons"].append(reason("kept", "rerank", "kept: the learned pick of its cluster", value=c_new,
                                         ref=old["path"]))
        return 1

    # ------------------------------------------------------------------ DataFrames
    def __call__(self, ir: pd.DataFrame, cfg: CullSettings | None = None) -> pd.DataFrame:
        """A reranked copy of the IR table ``ir`` (the input is not changed); ``attrs["rerank"]`` holds
        :meth:`describe` and ``attrs["cull"]`` is kept."""
        recs = records_of(ir)
        info = self.apply(recs, cfg)
        out = to_frame(recs)
        out.attrs = {**copy.deepcopy(ir.attrs), "rerank": info}
        return out


def rerank(ir: pd.DataFrame, scorer: Scorer | Reranker, *, weights: RerankWeights | None = None,
           settings: CullSettings | None = None) -> pd.DataFrame:
    """Rerank the IR table ``ir`` (see the module docstring): ``rerank(ir, Reranker.from_workspace(col, root))``.

    Args:
        ir: the cull's IR table (:func:`imagerank.cull.cull`).
        scorer: a :class:`Reranker`, or a callable ``ir -> Series`` of learned utilities (then ``weights`` apply).
        weights: the :class:`RerankWeights` for a plain scorer (a Reranker keeps its own).
        settings: the ``[cull]`` settings of the run (thresholds for the new picks; default: defaults).

    Returns:
        A new IR table with ``learned_score``, ``decided_by``, ``is_pick``, ``bucket`` and ``reasons`` updated;
        ``attrs["rerank"]`` says which scorer and weights ran and how many clusters changed.

    Raises:
        InvalidArgumentError: ``ir`` is not an IR table, a bad scorer or weights, or ``weights`` given with a
            Reranker.
    """
    if isinstance(scorer, Reranker):
        if weights is not None:
            raise InvalidArgumentError("weights: a Reranker carries its own weights; got weights as well")
        return scorer(ir, settings)
    return Reranker(scorer, weights)(ir, settings)
