"""Training: datasets from the vote log, the pairwise ranker, the crop proposer, metrics and the model registry.

Torch and Lightning are imported by the sub-modules that need them, not here: the names below load on first use.

- :func:`train_ranker` (settings in one :class:`RankerConfig`), :func:`evaluate_ranker` (vs OpenSkill),
  ``Collection.apply_prior`` — the ranker: ``train_ranker(col, "cheap", RankerConfig(max_epochs=20))``;
- :func:`train_crop_proposer` (settings in one :class:`CropConfig`), :func:`evaluate_crop_model`,
  :func:`evaluate_crops` — the crop proposer; :class:`OptimConfig` — the optimiser of both;
- :func:`feature_matrix` — embeddings or cheap features; :func:`load_votes`, :func:`load_crops` — training data;
- :func:`import_selection_log`, :func:`import_crop_log` — logs users already have;
- :func:`save_model`, :func:`load_model`, :func:`list_models` — ``<workspace>/models/``;
- :func:`suggest_winners`, :func:`suggest_crops`, :func:`decide` — AI-assisted review (``widgets.ReviewPanel``);
- :func:`simulated_votes` — a DEMO ONLY scripted judge (the crop demo workspace: ``imagerank.demo``).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "CropConfig",
    "OptimConfig",
    "RankerConfig",
    "decide",
    "evaluate_crop_model",
    "evaluate_crops",
    "evaluate_ranker",
    "feature_matrix",
    "import_crop_log",
    "import_selection_log",
    "list_models",
    "load_crops",
    "load_model",
    "load_votes",
    "save_model",
    "simulated_votes",
    "suggest_crops",
    "suggest_winners",
    "train_crop_proposer",
    "train_ranker",
]

_LAZY = {
    "CropConfig": ".crops",
    "OptimConfig": ".trainer",
    "RankerConfig": ".ranker",
    "decide": ".suggest",
    "evaluate_crop_model": ".crops",
    "evaluate_crops": ".crops",
    "evaluate_ranker": ".evaluate",
    "feature_matrix": ".features",
    "import_crop_log": ".imports",
    "import_selection_log": ".imports",
    "list_models": ".registry",
    "load_crops": ".data",
    "load_model": ".registry",
    "load_votes": ".data",
    "save_model": ".registry",
    "simulated_votes": ".simulate",
    "suggest_crops": ".suggest",
    "suggest_winners": ".suggest",
    "train_crop_proposer": ".crops",
    "train_ranker": ".ranker",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
