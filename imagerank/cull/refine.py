"""Refining a cull in a workspace: IR rows as catalog images, and the bursts a person refines.

- :func:`ir_image_ids`: the catalog image id of each IR row. A cull reads files under ``root`` and names them by
  their path relative to it (the IR's ``path``); the catalog names an image by the absolute path its scan found
  (``images.filepath``). The row's id is the image whose ``filepath`` is ``abspath(root) / path`` (then the real
  path, for a root reached through a symbolic link). ``add=True`` inserts the files the catalog does not list yet
  (``ImageTable.add_files``, status ``active``), so a cull of a folder outside the workspace's roots can be
  refined too.
- :func:`burst_groups`: the groups the burst panel shows and the learned rerank re-decides: the near-duplicate
  clusters of two or more readable frames (``cluster_size >= 2``; within a burst first, then across, see
  :mod:`imagerank.cull.passes`), where the cull kept one frame and trashed the others. Each group shows at most
  ``max_candidates`` frames: the best by technical score (the cull's pick always among them), in capture order.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..catalog import CatalogLike, as_catalog
from ..errors import InvalidArgumentError

__all__ = ["BurstGroup", "burst_groups", "ir_image_ids"]


def _check_ir(ir: pd.DataFrame, columns: Sequence[str]) -> None:
    if not isinstance(ir, pd.DataFrame):
        raise InvalidArgumentError(f"ir: expected the cull's IR DataFrame, got {type(ir).__name__}")
    missing = [c for c in columns if c not in ir.columns]
    if missing:
        raise InvalidArgumentError(f"ir: expected the IR columns {list(columns)}, missing {missing}")


def ir_image_ids(col: CatalogLike, ir: pd.DataFrame, root: str | os.PathLike[str], *, add: bool = False
                 ) -> pd.Series:
    """The catalog image id of every IR row (see the module docstring).

    Args:
        col: the workspace (a Collection or Catalog).
        ir: the IR table (needs ``path``; ``size``, ``mtime_ns`` and ``status`` with ``add``).
        root: the folder the cull read (its ``input_dir``).
        add: insert readable files (status ``ok`` or ``metadata_only``) the catalog does not list yet.

    Returns:
        Series of dtype ``Int64`` aligned with ``ir``'s index, named ``image_id``; ``<NA>`` where the catalog has
        no such file (and ``add`` is off or the file could not be read by the cull).

    Raises:
        InvalidArgumentError: ``ir`` is not an IR table.
    """
    _check_ir(ir, ["path"])
    cat = as_catalog(col)
    base = os.path.abspath(os.fspath(Path(root).expanduser()))
    df = cat.images.images_df()
    known = {str(p): int(i) for i, p in zip(df["id"], df["filepath"])}
    out: list[int | None] = []
    absent: list[tuple[int, str]] = []
    for k, rel in enumerate(ir["path"].astype(str)):
        full = os.path.join(base, *rel.split("/"))
        got = known.get(full)
        if got is None:
            got = known.get(os.path.realpath(full))
        out.append(got)
        if got is None:
            absent.append((k, full))
    if add and absent:
        status = ir["status"].astype(object).tolist() if "status" in ir.columns else [None] * len(ir)
        files = []
        for k, full in absent:
            if status[k] not in ("ok", "metadata_only"):
                continue
            try:
                st = os.stat(full)
            except OSError:
                continue
            files.append((k, full, int(st.st_size), int(st.st_mtime_ns)))
        if files:
            added = cat.images.add_files([(f, s, m) for _, f, s, m in files])
            for k, full, _, _ in files:
                out[k] = added.get(full)
    return pd.Series(pd.array(out, dtype="Int64"), index=ir.index, name="image_id")


@dataclass(frozen=True)
class BurstGroup:
    """One group of frames to refine.

    Attributes:
        cluster_id: the IR's ``cluster_id``. burst_id: the first candidate's ``burst_id`` (or None).
        rows: positions (``iloc``) of the candidates in the IR table, in capture order (then path).
        pick: the position of the cull's pick (``is_pick``), or None when none of the candidates is one.
        size: frames in the whole cluster (>= len(rows)).
    """

    cluster_id: int
    burst_id: int | None
    rows: tuple[int, ...]
    pick: int | None
    size: int


def burst_groups(ir: pd.DataFrame, *, max_candidates: int = 4) -> list[BurstGroup]:
    """The groups of :func:`ir_image_ids`'s module docstring, ordered by their first frame's capture time.

    Args:
        ir: the IR table (``path``, ``status``, ``cluster_id``, ``cluster_size``, ``score``, ``is_pick``,
            ``capture_time``, ``burst_id``).
        max_candidates: most frames shown per group, 2..4.

    Returns:
        A list of :class:`BurstGroup` (empty when the cull found no near-duplicates).

    Raises:
        InvalidArgumentError: ``ir`` is not an IR table, or ``max_candidates`` is outside 2..4.
    """
    _check_ir(ir, ["path", "status", "cluster_id", "cluster_size", "score", "is_pick", "capture_time", "burst_id"])
    if isinstance(max_candidates, bool) or not isinstance(max_candidates, (int, np.integer)) \
            or not 2 <= int(max_candidates) <= 4:
        raise InvalidArgumentError(f"max_candidates: expected 2..4 frames, got {max_candidates!r}")
    live = ir[(ir["status"] == "ok") & ir["cluster_id"].notna() & (ir["cluster_size"].fillna(0) >= 2)]
    groups: list[tuple[tuple[object, str], BurstGroup]] = []
    pos = {idx: k for k, idx in enumerate(ir.index)}
    for cid, g in live.groupby("cluster_id", sort=True):
        if len(g) < 2:
            continue
        score = g["score"].astype("Float64").fillna(-np.inf).astype(float)
        picked = g["is_pick"].fillna(False).astype(bool)
        order = sorted(g.index, key=lambda i: (not picked[i], -score[i], str(g.at[i, "path"])))
        chosen = order[: int(max_candidates)]
        t = g["capture_time"]
        chosen.sort(key=lambda i: (pd.Timestamp(t[i]) if pd.notna(t[i]) else pd.Timestamp.max, str(g.at[i, "path"])))
        pick = next((pos[i] for i in chosen if picked[i]), None)
        bid = g.at[chosen[0], "burst_id"]
        first = t[chosen[0]]
        key = (pd.Timestamp(first) if pd.notna(first) else pd.Timestamp.max, str(g.at[chosen[0], "path"]))
        groups.append((key, BurstGroup(int(cid), None if pd.isna(bid) else int(bid),
                                       tuple(pos[i] for i in chosen), pick, len(g))))
    groups.sort(key=lambda kg: kg[0])
    return [g for _, g in groups]
