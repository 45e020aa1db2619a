"""Plots of a cull (matplotlib Figures): the files of one bucket as a thumbnail grid with their reasons."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pandas as pd

from ..catalog import CatalogLike, as_catalog
from ..cull.ir import BUCKETS
from ..cull.refine import ir_image_ids
from ..errors import InvalidArgumentError
from .features import _empty, thumbnail_grid

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["bucket_grid", "reason_label"]

#: Reason codes not worth a caption (every kept file has one of them, or they restate the status).
_QUIET = frozenset({"kept", "time_from_mtime"})


def reason_label(reasons: object, limit: int = 2) -> str:
    """The first ``limit`` reason codes of one IR row (``kept`` and ``time_from_mtime`` left out), ``, ``-joined;
    a ``near_duplicate`` names the file it lost to."""
    out = []
    for r in reasons if isinstance(reasons, (list, tuple)) else []:
        code = r.get("code") if isinstance(r, dict) else None
        if not code or code in _QUIET:
            continue
        ref = r.get("ref")
        out.append(f"{code} of {os.path.basename(str(ref))}" if code in ("near_duplicate", "exact_duplicate") and ref
                   else str(code))
    return ", ".join(list(dict.fromkeys(out))[:limit])


def bucket_grid(col: CatalogLike, ir: pd.DataFrame, root: str | os.PathLike[str], bucket: str = "best", *,
                max_images: int = 12, ncols: int = 4) -> Figure:
    """The files of ``bucket`` (best score first) as workspace thumbnails titled with name, score and reasons;
    files the workspace does not list are counted in the title, not drawn.

    Args:
        col: the workspace whose thumbnail cache draws the tiles (files it does not list show as grey tiles).
        ir: the cull's IR table of the folder ``root``. bucket: one of ``best``, ``good``, ``maybe``, ``trash``.
        max_images: most tiles (>= 1). ncols: columns.

    Raises:
        InvalidArgumentError: an unknown bucket, ``max_images`` < 1, or ``ir`` is not an IR table.
    """
    if bucket not in BUCKETS:
        raise InvalidArgumentError(f"bucket: expected one of {', '.join(BUCKETS)}, got {bucket!r}")
    if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1:
        raise InvalidArgumentError(f"max_images: expected an integer >= 1, got {max_images!r}")
    cat = as_catalog(col)
    ids = ir_image_ids(cat, ir, root)
    rows = ir.assign(image_id=ids)[ir["bucket"] == bucket]
    n = len(rows)
    if n == 0:
        return _empty(f"no files in {bucket}")
    outside = int(rows["image_id"].isna().sum())
    rows = rows[rows["image_id"].notna()]
    if len(rows) == 0:
        return _empty(f"{n} file(s) in {bucket}, none listed in the workspace (scan its folders first)")
    rows = rows.sort_values(["score", "path"], ascending=[False, True], na_position="last").head(max_images)
    titles = []
    for _, r in rows.iterrows():
        score = "–" if pd.isna(r["score"]) else f"{float(r['score']):.2f}"
        by = " (learned)" if r.get("decided_by") == "learned" else ""
        titles.append(f"{os.path.basename(str(r['path']))}{by}  {score}\n{reason_label(r['reasons'], 1)}")
    shown = f"{len(rows)} of {n}" if n > len(rows) else f"{n}"
    note = f" ({outside} not in the workspace)" if outside else ""
    return thumbnail_grid(cat, [int(i) for i in rows["image_id"]], titles=titles, ncols=ncols, tile=3.0,
                          suptitle=f"{bucket}: {shown} file{'s' if n != 1 else ''}{note}")
