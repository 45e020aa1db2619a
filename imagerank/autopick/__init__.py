"""Auto-pick (floor 4): the best image per subject from Wikimedia Commons or a local folder, scored by an
aesthetic head on CLIP embeddings, with subjects that have no suitable image flagged for a person.

``auto_pick(col, subjects, CommonsSource(contact=...), ClipAestheticScorer("ViT-L-14:openai", "head.pth"))``;
see README "Auto-pick" and docs/architecture.md. This room never imports the widgets, generation or cull.
"""

from .commons import STANDARD_WIDTHS, CommonsSource
from .http import RateBudget, SourceError
from .pick import PickConfig, PickReport, auto_pick, read_subjects
from .scorer import AestheticHead, ClipAestheticScorer, HeadConfig, PyiqaScorer, load_head
from .sources import Candidate, FolderSource
from .store import PickStore, Subject
from .train import HeadFitConfig, load_trained_head, train_head

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
