"""imagerank: pick the few best images out of thousands.

The front door is :func:`open` (an existing workspace) or :func:`init` (a new one), both returning a
:class:`Collection`. Panels live in ``imagerank.widgets``, features in ``imagerank.features``, training in
``imagerank.training``; importing this package does not import torch, open_clip or ipywidgets.
"""

from __future__ import annotations

from ._util import __version__
from .collection import Collection, Match, ScanReport, Session, init
from .collection import open_collection as open
from .config import Settings, load_settings
from .errors import ImagerankError
from .pairing import list_strategies

__all__ = [
    "Collection",
    "ImagerankError",
    "Match",
    "ScanReport",
    "Session",
    "Settings",
    "__version__",
    "init",
    "list_strategies",
    "load_settings",
    "open",
]

