"""Culling a photo shoot (floor 4): scan -> IR -> passes (bursts, near-duplicates, best-of-burst) -> buckets.

:func:`cull` is the library call (``imagerank cull`` the command); :mod:`.ir` the IR table's schema; :mod:`.passes`
the passes and the score; :mod:`.preview` RAW previews; :mod:`.extract` the per-file pass; :mod:`.artifacts`,
:mod:`.xmp` and :mod:`.cache` what it writes. See docs/architecture.md; this room never imports the widgets,
generation or autopick.
"""

from .ir import BUCKETS, IR_COLUMNS, IR_SCHEMA, REASON_CODES, empty_ir, to_frame
from .pipeline import DEFAULT_CULL_EXTENSIONS, EXPORT_MODES, cull

__all__ = ["BUCKETS", "DEFAULT_CULL_EXTENSIONS", "EXPORT_MODES", "IR_COLUMNS", "IR_SCHEMA", "REASON_CODES", "cull",
           "empty_ir", "to_frame"]
