"""Panels for JupyterLab, Notebook 7 and Voilà.

- :class:`ComparePanel`: keyboard-first A-vs-B voting (anywidget; ``compare.js`` / ``compare.css`` beside it).
- :class:`LeaderboardView`: the ranked table with thumbnails, sorting, paging and export controls (ipywidgets).
- :class:`CropPanel`: the crop editor (``jupyter_bbox_widget`` with one box, aspect presets, keyboard).
- :class:`ReviewPanel`: AI-assisted review of suggested winners and crops (A approve, E edit, X reject).
- :class:`TriagePanel`: triage of the generation tree (←/→ vote, K kill and walk left, U undo; anywidget).
- :class:`GenerationBoard`: the generation tree live: one column per step, the job queue, the servers.
- :class:`BurstPanel`: refine a cull's best-of-burst picks (1–4 mark keepers, Enter records; anywidget).
- :class:`PlanPanel`: type an intent, see the plan with counts per step, run it (ipywidgets).
- :class:`LabelPanel`: auto-pick candidates beside the subject's current image, G good / B bad / S skip.

Imports are lazy so that ``import imagerank.widgets`` costs nothing until a panel is used, and the package root
never imports ipywidgets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .board import GenerationBoard
    from .burst import BurstPanel
    from .compare import ComparePanel
    from .crop import CropPanel
    from .label import LabelPanel
    from .leaderboard import LeaderboardView
    from .plan import PlanPanel
    from .review import ReviewPanel
    from .triage import TriagePanel

__all__ = ["BurstPanel", "ComparePanel", "CropPanel", "GenerationBoard", "LabelPanel", "LeaderboardView",
           "PlanPanel", "ReviewPanel", "TriagePanel"]

_LAZY = {"BurstPanel": ".burst", "ComparePanel": ".compare", "LeaderboardView": ".leaderboard", "CropPanel": ".crop",
         "ReviewPanel": ".review", "TriagePanel": ".triage", "GenerationBoard": ".board", "PlanPanel": ".plan",
         "LabelPanel": ".label"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name], __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
