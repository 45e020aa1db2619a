"""Candidates: the images of the generation tree, one column per pipeline step.

A candidate is an ``images`` row with ``step_id`` set (its column), ``parent_id`` (the candidate it was made from;
NULL in the base step), ``child_count`` (how many children it has, rejected ones included) and ``status``
``active`` or ``rejected``. Candidates are ordinary catalog images: they get thumbnails, votes and ratings like
any other image, and the compare panel's :class:`~imagerank.pairing.PairQueue` can pair them.

Invariants, kept inside one ``BEGIN IMMEDIATE`` transaction by :func:`add_candidate` (so they hold with two
runners, in two processes, on one workspace):

- ``child_count`` of a parent equals the number of images whose ``parent_id`` is that parent;
- a parent never has more than N children (``Settings.generation.max_children``, or the ``max_children`` given):
  the insert that would make N+1 raises :class:`ChildLimitError` and stores nothing;
- a child is one column to the right of its parent (the next step by order), and its parent is active: a rejected
  candidate is never a parent again (:func:`reject` also cancels the queued jobs that would have used it).

Reads, all as pandas DataFrames with the columns of :data:`CANDIDATE_COLUMNS` (``id``, ``filepath``, ``filename``,
``step_id``, ``step``, ``step_order``, ``parent_id`` (Int64, <NA> in the base column), ``child_count``,
``pending_jobs`` (jobs queued or in flight with this parent), ``status``, ``status_reason``, ``mu``, ``sigma``,
``prior_mu``, ``prior_sigma``, ``comparison_count``, ``width``, ``height``, ``thumb_fingerprint``, ``added_at``,
``is_final`` (in the last step)), ordered by step order then id::

    from imagerank.generation import tree
    tree.candidates_df(cat)            # every candidate; status="active" for the active ones
    tree.column(cat, "face")           # one step's candidates
    tree.columns_df(cat)               # one row per step: step_id, step, step_order, candidates, active,
                                       #   rejected, pending_jobs, is_final
    tree.children(cat, 12)             # the children of candidate 12
    tree.siblings(cat, 12)             # the other children of 12's parent (the other base candidates for a base)
    tree.ancestry(cat, 12)             # the path from the base candidate down to 12 (12 last), depth 0..
    tree.reject(cat, 12, "hands")      # status rejected; returns the queued jobs cancelled
    tree.restore(cat, 12)              # active again (the undo of reject)

Writes that make candidates (:func:`add_candidate`) are the runner's; a panel only rejects and restores.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import ratings as R
from .._util import utcnow
from ..catalog import Catalog, CatalogLike, as_catalog
from ..errors import ImagerankError, InvalidArgumentError, NotFoundError
from .steps import PipelineStep, get_step, list_steps, require_schema

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CANDIDATE_COLUMNS",
    "OPEN_JOB_STATUSES",
    "ChildLimitError",
    "add_candidate",
    "ancestry",
    "candidates_df",
    "children",
    "column",
    "columns_df",
    "get_candidate",
    "output_dir",
    "reject",
    "restore",
    "siblings",
]

#: Job statuses that hold a reservation on their parent (they will make a child unless they fail).
OPEN_JOB_STATUSES = ("queued", "submitted", "running")
_OPEN = "('queued', 'submitted', 'running')"

CANDIDATE_COLUMNS = ["id", "filepath", "filename", "step_id", "step", "step_order", "parent_id", "child_count",
                     "pending_jobs", "status", "status_reason", "mu", "sigma", "prior_mu", "prior_sigma",
                     "comparison_count", "width", "height", "thumb_fingerprint", "added_at", "is_final"]

_SELECT = f"""
    SELECT i.id, i.filepath, i.filename, i.step_id, s.name AS step, s.step_order, i.parent_id,
           COALESCE(i.child_count, 0) AS child_count,
           (SELECT COUNT(*) FROM generation_jobs j WHERE j.parent_id = i.id AND j.status IN {_OPEN}) AS pending_jobs,
           i.status, i.status_reason, i.mu, i.sigma, i.prior_mu, i.prior_sigma, i.comparison_count, i.width,
           i.height, i.thumb_fingerprint, i.added_at,
           (s.step_order = (SELECT MAX(step_order) FROM pipeline_steps WHERE output_node IS NOT NULL)) AS is_final
    FROM images i JOIN pipeline_steps s ON s.id = i.step_id
"""


class ChildLimitError(ImagerankError):
    """A candidate has N children already (``max_children``); the child was not stored."""


def output_dir(col: CatalogLike, step: PipelineStep | str | int) -> Path:
    """The folder of one step's outputs: ``<workspace>/generated/<step name>`` (created when missing)."""
    cat = as_catalog(col)
    s = step if isinstance(step, PipelineStep) else get_step(cat, step)
    path = cat.root / "generated" / s.name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _frame(cat: Catalog, where: str = "", params: tuple[Any, ...] = (), order: str = "s.step_order, i.id"
           ) -> pd.DataFrame:
    require_schema(cat)
    df = cat.db.read_frame(f"{_SELECT} {where} ORDER BY {order}", params)
    df["parent_id"] = df["parent_id"].astype("Int64")
    df["is_final"] = df["is_final"].astype(bool)
    for name in ("child_count", "pending_jobs", "comparison_count", "step_order"):
        df[name] = df[name].astype("int64")
    return df[CANDIDATE_COLUMNS]


def candidates_df(col: CatalogLike, status: str | None = None) -> pd.DataFrame:
    """Every candidate (see the module docstring for the columns), or only those with ``status``.

    Raises:
        InvalidArgumentError: ``status`` not active/rejected/missing/corrupt.
    """
    if status is not None and status not in ("active", "rejected", "missing", "corrupt"):
        raise InvalidArgumentError(f"status: expected active, rejected, missing or corrupt, got {status!r}")
    cat = as_catalog(col)
    return _frame(cat, "WHERE i.status = ?", (status,)) if status else _frame(cat)


def column(col: CatalogLike, step: PipelineStep | str | int, status: str | None = None) -> pd.DataFrame:
    """One step's candidates (optionally one status).

    Raises:
        NotFoundError: no such step.
    """
    cat = as_catalog(col)
    s = get_step(cat, step)
    if status is not None:
        return _frame(cat, "WHERE i.step_id = ? AND i.status = ?", (s.id, status))
    return _frame(cat, "WHERE i.step_id = ?", (s.id,))


def columns_df(col: CatalogLike) -> pd.DataFrame:
    """One row per step by order: ``step_id``, ``step``, ``step_order`` (int), ``candidates``, ``active``,
    ``rejected``, ``pending_jobs`` (int: jobs queued or in flight that will land in this column), ``is_final``
    (bool)."""
    import pandas as pd

    cat = as_catalog(col)
    steps = list_steps(cat)
    counts = {int(r[0]): (int(r[1]), int(r[2] or 0), int(r[3] or 0)) for r in cat.db.query(
        "SELECT step_id, COUNT(*), SUM(status='active'), SUM(status='rejected') FROM images "
        "WHERE step_id IS NOT NULL GROUP BY step_id")}
    pending = {int(r[0]): int(r[1]) for r in cat.db.query(
        f"SELECT step_id, COUNT(*) FROM generation_jobs WHERE status IN {_OPEN} GROUP BY step_id")}
    last = steps[-1].order if steps else None
    rows = [{"step_id": s.id, "step": s.name, "step_order": s.order, "candidates": counts.get(s.id, (0, 0, 0))[0],
             "active": counts.get(s.id, (0, 0, 0))[1], "rejected": counts.get(s.id, (0, 0, 0))[2],
             "pending_jobs": pending.get(s.id, 0), "is_final": s.order == last} for s in steps]
    return pd.DataFrame(rows, columns=["step_id", "step", "step_order", "candidates", "active", "rejected",
                                       "pending_jobs", "is_final"])


def get_candidate(col: CatalogLike, image_id: int) -> dict[str, Any]:
    """One candidate as a dict (the columns above).

    Raises:
        NotFoundError: no image ``image_id``, or it is not a candidate (no step).
    """
    cat = as_catalog(col)
    df = _frame(cat, "WHERE i.id = ?", (int(image_id),))
    if df.empty:
        if cat.db.query("SELECT 1 FROM images WHERE id=?", (int(image_id),)):
            raise NotFoundError(f"image {image_id} is not a candidate of the generation tree (it has no step)")
        raise NotFoundError(f"image {image_id} does not exist")
    return df.iloc[0].to_dict()


def children(col: CatalogLike, image_id: int) -> pd.DataFrame:
    """The children of candidate ``image_id`` (every status), by id.

    Raises:
        NotFoundError: not a candidate.
    """
    cat = as_catalog(col)
    get_candidate(cat, image_id)
    return _frame(cat, "WHERE i.parent_id = ?", (int(image_id),))


def siblings(col: CatalogLike, image_id: int) -> pd.DataFrame:
    """The other candidates with the same parent as ``image_id`` (for a base candidate: the other base candidates),
    every status, by id; ``image_id`` itself is not in it.

    Raises:
        NotFoundError: not a candidate.
    """
    import pandas as pd

    cat = as_catalog(col)
    me = get_candidate(cat, image_id)
    if pd.isna(me["parent_id"]):
        return _frame(cat, "WHERE i.parent_id IS NULL AND i.step_id = ? AND i.id != ?",
                      (int(me["step_id"]), int(image_id)))
    return _frame(cat, "WHERE i.parent_id = ? AND i.id != ?", (int(me["parent_id"]), int(image_id)))


def ancestry(col: CatalogLike, image_id: int) -> pd.DataFrame:
    """The path from the base candidate down to ``image_id`` (itself last), with a ``depth`` column (int, 0 for
    the base candidate).

    Raises:
        NotFoundError: not a candidate.
    """
    cat = as_catalog(col)
    get_candidate(cat, image_id)
    rows = cat.db.query(
        "WITH RECURSIVE up(id, parent_id, k) AS (SELECT id, parent_id, 0 FROM images WHERE id = ? "
        "UNION ALL SELECT i.id, i.parent_id, up.k + 1 FROM images i JOIN up ON i.id = up.parent_id) "
        "SELECT id, k FROM up", (int(image_id),))
    ids = [int(r[0]) for r in sorted(rows, key=lambda r: -int(r[1]))]
    df = _frame(cat, f"WHERE i.id IN ({','.join('?' * len(ids))})", tuple(ids))
    df = df.set_index("id").loc[ids].reset_index()
    df.insert(1, "depth", range(len(ids)))
    return df


def add_candidate(
    col: CatalogLike,
    *,
    step: PipelineStep | str | int,
    path: str | os.PathLike[str],
    parent_id: int | None = None,
    max_children: int | None = None,
    job_id: int | None = None,
) -> int:
    """Store a generated image as a candidate, in one transaction with its parent's ``child_count`` (and, with
    ``job_id``, the job marked ``done`` with this image), so the count is always true and never exceeds N.

    Args:
        col: the workspace. step: the step that made it. path: the image file (it must exist; stored absolute).
        parent_id: the candidate it was made from (None: a base candidate; required for the other steps).
        max_children: N (default ``Settings.generation.max_children``).
        job_id: the ``generation_jobs`` row that made it (set to ``done``, ``image_id`` = the new id).

    Returns:
        The new image id.

    Raises:
        ChildLimitError: the parent has N children already (nothing stored).
        InvalidArgumentError: the file does not exist or is in the catalog already; a parent for the base step or
            none for another; a parent that is not active (rejected: never a parent again) or not in the step
            before ``step``; ``max_children`` < 1.
        NotFoundError: no such step, parent or job.
    """
    cat = as_catalog(col)
    s = get_step(cat, step)
    n = cat.settings.generation.max_children if max_children is None else max_children
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidArgumentError(f"max_children: expected an integer >= 1, got {max_children!r}")
    p = Path(path).resolve()
    try:
        st = p.stat()
    except OSError as e:
        raise InvalidArgumentError(f"path: the candidate's file {p} cannot be read: {e.strerror or e}") from e
    steps = list_steps(cat)
    before = [x for x in steps if x.order < s.order]
    if s.is_base or not before:
        if parent_id is not None:
            raise InvalidArgumentError(f"parent_id: step {s.name!r} is the base step; its candidates have no parent, "
                                       f"got {parent_id!r}")
    elif parent_id is None:
        raise InvalidArgumentError(f"parent_id: step {s.name!r} makes children of {before[-1].name!r} candidates; "
                                   "expected a parent id, got None")
    now = utcnow()
    with cat.db.atomic() as conn:
        if parent_id is not None:
            row = conn.execute("SELECT status, step_id, COALESCE(child_count, 0) FROM images WHERE id=?",
                               (int(parent_id),)).fetchone()
            if row is None:
                raise NotFoundError(f"parent_id: image {parent_id} does not exist")
            if row[1] != before[-1].id:
                raise InvalidArgumentError(
                    f"parent_id: image {parent_id} is not a {before[-1].name!r} candidate (the step before "
                    f"{s.name!r}); its step id is {row[1]!r}")
            if row[0] != "active":
                raise InvalidArgumentError(f"parent_id: candidate {parent_id} is {row[0]}, not active; a rejected "
                                           "candidate is never a parent again")
            cur = conn.execute("UPDATE images SET child_count = COALESCE(child_count, 0) + 1 "
                               "WHERE id=? AND COALESCE(child_count, 0) < ?", (int(parent_id), n))
            if cur.rowcount != 1:
                raise ChildLimitError(f"candidate {parent_id} has {row[2]} children already (max_children N={n}); "
                                      f"the {s.name!r} child {p.name} was not stored")
        if conn.execute("SELECT 1 FROM images WHERE filepath=?", (str(p),)).fetchone():
            raise InvalidArgumentError(f"path: {p} is in the catalog already")
        cur = conn.execute(
            "INSERT INTO images (filepath, filename, mu, sigma, size, mtime_ns, added_at, step_id, parent_id, "
            "child_count) VALUES (?,?,?,?,?,?,?,?,?,0)",
            (str(p), p.name, R.DEFAULT_MU, R.DEFAULT_SIGMA, st.st_size, st.st_mtime_ns, now, s.id, parent_id))
        image_id = int(cur.lastrowid or 0)
        if job_id is not None:
            cur = conn.execute("UPDATE generation_jobs SET status='done', image_id=?, finished_at=?, error=NULL "
                               "WHERE id=?", (image_id, now, int(job_id)))
            if cur.rowcount != 1:
                raise NotFoundError(f"job_id: generation job {job_id} does not exist")
    return image_id


def reject(col: CatalogLike, image_id: int, reason: str | None = None) -> int:
    """Reject (kill) a candidate: status ``rejected`` (it stays in the catalog with its votes, never a parent
    again) and its queued jobs cancelled (jobs already on a server finish, and their child is refused).

    Returns:
        The number of queued jobs cancelled.

    Raises:
        NotFoundError: not a candidate.
    """
    cat = as_catalog(col)
    get_candidate(cat, image_id)
    with cat.db.atomic() as conn:
        conn.execute("UPDATE images SET status='rejected', status_reason=? WHERE id=?",
                     (reason or "rejected in the generation tree", int(image_id)))
        cur = conn.execute("UPDATE generation_jobs SET status='cancelled', finished_at=?, error=? "
                           "WHERE parent_id=? AND status='queued'",
                           (utcnow(), f"parent {int(image_id)} was rejected", int(image_id)))
        return int(cur.rowcount)


def restore(col: CatalogLike, image_id: int) -> None:
    """Make a rejected candidate active again (the undo of :func:`reject`; cancelled jobs stay cancelled).

    Raises:
        NotFoundError: not a candidate. InvalidArgumentError: it is missing or corrupt (not rejected or active).
    """
    cat = as_catalog(col)
    me = get_candidate(cat, image_id)
    if me["status"] not in ("rejected", "active"):
        raise InvalidArgumentError(f"image_id: candidate {image_id} is {me['status']}; only a rejected candidate "
                                   "can be restored")
    cat.db.execute("UPDATE images SET status='active', status_reason=NULL WHERE id=? AND status='rejected'",
                   (int(image_id),))
