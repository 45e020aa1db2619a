"""Foundation helpers shared by every layer: timestamps, when to draw progress bars, the process pool,
torch/Lightning helpers, PCA.

Nothing here imports another imagerank package except :mod:`imagerank.errors`; torch and Lightning are imported by
:mod:`._torch` only, and only when it is used.
"""

from __future__ import annotations

from datetime import datetime, timezone

from .progress import progress_enabled

__all__ = ["__version__", "progress_enabled", "stamp", "utcnow"]

#: The imagerank version (re-exported as ``imagerank.__version__``).
__version__ = "0.1.0"


def utcnow() -> str:
    """Current UTC time as ISO 8601 with milliseconds and a ``Z`` (the catalog's timestamp format)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def stamp() -> str:
    """Local time as ``YYYYmmdd-HHMMSS``, for default export folder and file names."""
    return datetime.now().strftime("%Y%m%d-%H%M%S")
