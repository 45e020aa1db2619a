"""The burst reranker's training recipe: a ranker fitted on a person's burst picks (N-way matches in the catalog).

The burst panel (:class:`imagerank.widgets.BurstPanel`) records each choice as one N-way match with source
``burst``: the keeper(s) rank 0, the other frames shown rank 1. :func:`train_burst_reranker` loads those matches
(:func:`imagerank.training.data.load_votes` with ``sources``), reads the frames' features
(:func:`imagerank.training.features.feature_matrix`) and fits a ranker with the shared recipe
(:func:`imagerank.training.ranker.fit_ranker`: a "best of N" choice is the Plackett-Luce choice likelihood
``s_keeper - logsumexp(s)``, Luce 1959), then saves it in the registry (``models/<name>/``) where
:meth:`imagerank.cull.rerank.Reranker.from_workspace` finds it.

Features (``features="auto"``): cheap features first — colour, exposure and sharpness statistics (the ``cheap``
sidecar, plus the ``quality`` sidecar when present) learn from a few dozen picks; CLIP embeddings when the
workspace has an embedding sidecar covering every judged frame and there are at least ``min_embedding_picks``
picks (a 512-dimensional linear model needs more choices than 25 statistics do). The default network is linear,
so the fitted weights say what the person prefers (:func:`preference_weights`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..catalog import CatalogLike, as_catalog
from ..errors import InvalidArgumentError, NoVotesError

if TYPE_CHECKING:
    import pandas as pd

    from .ranker import Ranker, RankerConfig

__all__ = ["BURST_SOURCE", "burst_feature_source", "burst_reranker_config", "preference_weights",
           "train_burst_reranker"]

#: The match source the burst panel records with.
BURST_SOURCE = "burst"


def burst_reranker_config(**changes: Any) -> RankerConfig:
    """The default :class:`~imagerank.training.ranker.RankerConfig` of the reranker: a linear network, 60 epochs
    (a few dozen judgements make one batch per epoch; about 1 s on one core), validation 20 % by match, no cold
    images, AdamW lr 0.05 with decoupled weight decay 2.0 (picks a person makes consistently separate the frames
    perfectly, and an unpenalised fit grows without bound: the decay keeps utilities within about ±6 on the demo
    shoot, where the technical score's weight still counts); ``changes`` override fields."""
    from .ranker import RankerConfig
    from .trainer import OptimConfig

    cfg = RankerConfig(network="linear", max_epochs=60, val_fraction=0.2, cold_fraction=0.0, batch_size=64,
                       optimizer=OptimConfig(lr=0.05, weight_decay=2.0))
    return replace(cfg, **changes) if changes else cfg


def burst_feature_source(col: CatalogLike, image_ids: Sequence[int] | np.ndarray, n_picks: int, *,
                         min_embedding_picks: int = 200) -> str:
    """The feature set ``features="auto"`` trains on (see the module docstring): an embedding set that covers
    every id in ``image_ids`` when ``n_picks >= min_embedding_picks``, else ``"cheap"``."""
    from .features import auto_source, feature_matrix

    cat = as_catalog(col)
    if n_picks < min_embedding_picks:
        return "cheap"
    source = auto_source(cat)
    if not source.startswith("embeddings:"):
        return "cheap"
    fm = feature_matrix(cat, source, ids=np.asarray(image_ids, dtype=np.int64))
    return source if len(fm.image_ids) == len(np.unique(np.asarray(image_ids))) else "cheap"


def train_burst_reranker(
    col: CatalogLike,
    *,
    features: str = "auto",
    config: RankerConfig | None = None,
    sources: Sequence[str] = (BURST_SOURCE,),
    name: str | None = "burst-reranker",
    min_embedding_picks: int = 200,
    progress: bool = False,
) -> Ranker:
    """Fit the burst reranker on the workspace's burst picks and save it as ``models/<name>/``.

    Args:
        col: the workspace (Collection or Catalog).
        features: ``"auto"`` (see the module docstring), ``"cheap"``, ``"cheap-v1"``, ``"cheap-v1+quality"`` or
            ``"embeddings:<model>__<pretrained>"``.
        config: a :class:`~imagerank.training.ranker.RankerConfig` (default :func:`burst_reranker_config`).
        sources: the match sources to learn from (default ``("burst",)``, the burst panel's; a demo adds
            ``"simulated"``).
        name: the registry name; None: not saved.
        min_embedding_picks: picks needed before ``"auto"`` uses embeddings.
        progress: Lightning's progress bar.

    Returns:
        The fitted :class:`~imagerank.training.ranker.Ranker`; ``metadata["burst"]`` holds the sources, the number
        of picks and the feature choice.

    Raises:
        NoVotesError: no burst picks (N-way matches of ``sources`` with a keeper) yet; the message says how to
            make some.
        InvalidArgumentError: ``sources`` empty.
        FeatureError: the feature set is unavailable.
    """
    from .data import load_votes
    from .features import feature_matrix
    from .ranker import fit_ranker

    cat = as_catalog(col)
    srcs = [str(s) for s in sources]
    if not srcs:
        raise InvalidArgumentError("sources: expected at least one match source (such as 'burst'), got none")
    try:
        votes = load_votes(cat, sources=srcs)
    except NoVotesError as e:
        raise NoVotesError(f"no burst picks to learn from (sources {srcs}): pick keepers in the burst panel "
                           f"(imagerank.widgets.BurstPanel) first; {e}") from e
    n_picks = int(votes.decisive().sum())
    ids = votes.image_ids
    source = features
    if features == "auto":
        source = burst_feature_source(cat, ids, n_picks, min_embedding_picks=min_embedding_picks)
    fm = feature_matrix(cat, source, ids=ids, progress=progress)
    ranker = fit_ranker(fm, votes, config or burst_reranker_config(), progress=progress)
    ranker.metadata["burst"] = {"sources": srcs, "n_picks": n_picks, "features_asked": features,
                                "feature_set": fm.name}
    ranker.name = name
    if name:
        ranker.save(cat, name)
    return ranker


def preference_weights(ranker: Ranker) -> pd.Series:
    """The weights of a linear reranker per feature, on standardised features (utility per standard deviation),
    largest magnitude first: what the person's picks say they prefer.

    Raises:
        InvalidArgumentError: the ranker is not linear, or its feature set has no per-feature names (embeddings
            are listed as ``dim_<k>``).
    """
    import pandas as pd

    from .features import CHEAP_FEATURES

    if ranker.net_config.kind != "linear":
        raise InvalidArgumentError(f"ranker: expected a linear reranker, got a {ranker.net_config.kind!r} network")
    from torch import nn

    linear = next(m for m in ranker.net.modules() if isinstance(m, nn.Linear))
    w = linear.weight.detach().cpu().numpy().ravel().astype(np.float64)
    if ranker.feature_set.startswith("cheap"):
        names = list(CHEAP_FEATURES) + [f"quality_{k}" for k in range(len(w) - len(CHEAP_FEATURES))]
    else:
        names = [f"dim_{k}" for k in range(len(w))]
    s = pd.Series(w, index=names[: len(w)], name="weight")
    return s.reindex(s.abs().sort_values(ascending=False).index)
