"""Auto-pick (floor 4): the best image per subject from Wikimedia Commons or a local folder, scored by an
aesthetic head on CLIP embeddings, with subjects that have no suitable image flagged for a person.

``auto_pick(col, subjects, CommonsSource(contact=...), ClipAestheticScorer("ViT-L-14:openai", "head.pth"))``;
see README "Auto-pick" and docs/architecture.md. This room never imports the widgets, generation or cull.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .commons import STANDARD_WIDTHS, CommonsSource
    from .http import RateBudget, SourceError
    from .pick import PickConfig, PickReport, auto_pick, read_subjects
    from .scorer import AestheticHead, ClipAestheticScorer, HeadConfig, PyiqaScorer, load_head
    from .sources import Candidate, FolderSource
    from .store import PickStore, Subject
    from .train import HeadFitConfig, load_trained_head, train_head

# Lazy, so that reading the tables (plots, the label panel) loads neither torch nor httpx.
_LAZY = {
    "STANDARD_WIDTHS": ".commons", "CommonsSource": ".commons", "RateBudget": ".http", "SourceError": ".http",
    "PickConfig": ".pick", "PickReport": ".pick", "auto_pick": ".pick", "read_subjects": ".pick",
    "AestheticHead": ".scorer", "ClipAestheticScorer": ".scorer", "HeadConfig": ".scorer", "PyiqaScorer": ".scorer",
    "load_head": ".scorer", "Candidate": ".sources", "FolderSource": ".sources", "PickStore": ".store",
    "Subject": ".store", "HeadFitConfig": ".train", "load_trained_head": ".train", "train_head": ".train",
}

__all__ = [
    "STANDARD_WIDTHS",
    "AestheticHead",
    "Candidate",
    "ClipAestheticScorer",
    "CommonsSource",
    "FolderSource",
    "HeadConfig",
    "HeadFitConfig",
    "PickConfig",
    "PickReport",
    "PickStore",
    "PyiqaScorer",
    "RateBudget",
    "SourceError",
    "Subject",
    "auto_pick",
    "load_head",
    "load_trained_head",
    "read_subjects",
    "train_head",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
