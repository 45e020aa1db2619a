"""Running a plan: the selection frame (catalog ⋈ cull IR), a dry-run preview, execution on confirmation, storage.

:func:`selection_frame` joins the workspace's active images (id, path, rating, comparisons, labels) with the cull IR
of its image folders (:func:`imagerank.cull.cull` with the workspace's settings and extraction cache, nothing
written beside the images). :func:`preview` applies the plan's selection steps to it and says what every step
would do (counts before and after, a sample of files): it writes nothing to the catalog, the image folders or the
export roots. :func:`execute` does the same, then the actions (label, voting session, export) and stores the plan,
its selection and its results in the catalog (tables ``plans`` and ``plan_images``; the voting session it started
is ``plans.session_id``, and :func:`session_pairs` draws that session's pairs from the selection only).
"""

from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..._util import utcnow
from ...catalog import CatalogLike, as_catalog
from ...catalog.workspace import Catalog
from ...errors import NotFoundError
from .schema import Cull, Export, Label, Limit, Plan, PlanError, Select, Sort, Vote, describe_step

__all__ = ["SORT_COLUMNS", "PlanPreview", "StepCount", "allowed_export_roots", "check_plan", "execute",
           "ir_selection_frame", "preview", "resolve_destination", "selection_frame", "session_pairs"]

#: Sort key -> the selection-frame column it orders by.
SORT_COLUMNS: dict[str, str] = {"score": "score", "sharpness": "laplacian_var", "ordinal": "ordinal",
                                "capture_time": "capture_time", "noise": "noise_sigma", "clipping": "clip",
                                "path": "relpath"}


@dataclass(frozen=True)
class StepCount:
    """One step of a preview: its index, the line of :func:`~.schema.describe_step`, the selection size before
    and after it, and for an action what it would do (``would``)."""

    index: int
    step: str
    before: int
    after: int
    would: str | None = None


@dataclass
class PlanPreview:
    """What a plan does, before (dry run) or after it ran.

    Attributes:
        plan: the plan. steps: one :class:`StepCount` per step. selection: the final selection (rows of the
        selection frame, in order). sample: up to ``plan_sample`` paths of it (relative to their image folder).
        destination: the resolved export folder, if the plan exports. plan_id: the stored plan's id (None for a
        dry run). result: what ran (``labelled``, ``session_id``, ``exported``, ``export_failed``,
        ``export_missing``, ``xmp_written``); empty for a dry run. parser: the parser that made the plan.
    """

    plan: Plan
    steps: list[StepCount]
    selection: pd.DataFrame
    sample: list[str]
    destination: Path | None = None
    plan_id: int | None = None
    result: dict[str, Any] = field(default_factory=dict)
    parser: str = "rules"

    def __str__(self) -> str:
        lines = [f"plan (v{self.plan.version}), {len(self.steps)} steps:"]
        for s in self.steps:
            lines.append(f"  {s.index + 1}. {s.step}: {s.before} -> {s.after}" + (f" ({s.would})" if s.would else ""))
        lines.append(f"  selection: {len(self.selection)} files" + (f", e.g. {', '.join(self.sample)}"
                                                                     if self.sample else ""))
        if self.plan_id is not None:
            lines.append(f"  ran as plan {self.plan_id}: {json.dumps(self.result, sort_keys=True)}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- export roots
def allowed_export_roots(cat: Catalog) -> list[Path]:
    """The folders an export may write under: the workspace's ``exports/`` and every ``plan_export_roots`` entry
    (``~`` expanded; real paths, symbolic links resolved)."""
    roots = [cat.exports_dir, *(Path(os.path.expanduser(r)) for r in cat.settings.cull.plan_export_roots)]
    return [Path(os.path.realpath(r)) for r in roots]


def resolve_destination(dest: str, cat: Catalog) -> Path:
    """The real folder an export ``dest`` names: ``~`` expanded, a relative path under the workspace's
    ``exports/``, symbolic links resolved.

    Raises:
        PlanError: the folder is not inside an allowed export root (:func:`allowed_export_roots`), or is inside an
            image folder; the message names both.
    """
    p = Path(os.path.expanduser(dest))
    if not p.is_absolute():
        p = cat.exports_dir / p
    real = Path(os.path.realpath(p))
    roots = allowed_export_roots(cat)
    if not any(real == r or r in real.parents for r in roots):
        raise PlanError(f"export destination: expected a folder inside {', '.join(map(str, roots))} (add more with "
                        f"the plan_export_roots setting), got {dest!r} -> {real}")
    for img in cat.settings.core.roots:
        ir = Path(os.path.realpath(os.path.expanduser(img)))
        if real == ir or ir in real.parents:
            raise PlanError(f"export destination: expected a folder outside the image folders, got {dest!r} "
                            f"inside {ir}")
    return real


def check_plan(plan: Plan, col: CatalogLike) -> Path | None:
    """Check what the schema cannot: the export destination against the workspace. Returns the resolved
    destination (None without an export step).

    Raises:
        PlanError: see :func:`resolve_destination`.
    """
    cat = as_catalog(col)
    dest = None
    for s in plan.steps:
        if isinstance(s, Export):
            dest = resolve_destination(s.destination, cat)
    return dest


# ---------------------------------------------------------------------------------------------- the frame
_IR_KEEP = ("capture_time", "camera_make", "camera_model", "lens_model", "laplacian_var", "noise_sigma",
            "clip_shadows", "clip_highlights", "eyes_closed", "faces", "burst_id", "burst_size", "cluster_id",
            "cluster_size", "is_pick", "exact_duplicate_of", "score", "learned_score", "decided_by", "bucket",
            "reasons", "status", "kind")


def selection_frame(col: CatalogLike, cull: Cull | None = None) -> pd.DataFrame:
    """One row per active image: catalog facts joined with the cull IR of the workspace's image folders.

    Args:
        col: a Collection or Catalog. cull: per-plan cull settings (None: the workspace's ``[cull]``).

    Returns:
        DataFrame in image-id order with ``image_id``, ``filepath``, ``filename``, ``root`` (its image folder or
        None), ``relpath`` (``/``-separated, under ``root``; else the file name), ``mu``, ``sigma``, ``ordinal``
        (``mu - 3 sigma``), ``comparison_count``, ``prior_mu``, ``prior_sigma``, ``labels`` (list of str), the IR
        columns ``capture_time`` ... ``reasons`` (null where the cull has no record), ``clip`` (shadows +
        highlights), ``burst_role`` and ``duplicate_role`` (:data:`~.schema.BURST_ROLES`,
        :data:`~.schema.DUPLICATE_ROLES`; None without a cull record). Image ids are catalog ids.
    """
    from .. import cull as run_cull

    cat = as_catalog(col)
    df = cat.db.read_frame("SELECT id AS image_id, filepath, filename, mu, sigma, comparison_count, prior_mu, "
                           "prior_sigma FROM images WHERE status='active' ORDER BY id")
    df["ordinal"] = df["mu"] - 3.0 * df["sigma"]
    labels: dict[int, list[str]] = {}
    for iid, lab in cat.db.query("SELECT image_id, label FROM labels ORDER BY id"):
        labels.setdefault(int(iid), [])
        if lab not in labels[int(iid)]:
            labels[int(iid)].append(str(lab))
    df["labels"] = [labels.get(int(i), []) for i in df["image_id"]]
    over: dict[str, Any] = {}
    if cull is not None:
        over = {"burst_seconds": cull.burst_seconds, "dedupe_hamming": cull.dedupe_hamming,
                "min_sharpness": cull.min_sharpness, "max_clip": cull.max_clip}
    ir_rows: dict[str, dict[str, Any]] = {}
    roots: dict[str, tuple[str, str]] = {}
    cache = None if cat.read_only else cat.root / "cache" / "cull.sqlite"  # read-only: nothing written there
    for root in cat.settings.core.roots:
        base = os.path.abspath(os.path.expanduser(root))
        if not os.path.isdir(base):
            continue
        ir = run_cull(base, None, extensions=cat.settings.core.extensions, settings=cat.settings,
                      cache=cache, progress=False, **over)
        for rec in ir.to_dict("records"):
            full = os.path.join(base, *str(rec["path"]).split("/"))
            ir_rows.setdefault(full, rec)
            roots.setdefault(full, (base, str(rec["path"])))
    recs = [ir_rows.get(os.path.abspath(str(p)), {}) for p in df["filepath"]]
    df["root"] = [roots.get(os.path.abspath(str(p)), (None, ""))[0] for p in df["filepath"]]
    df["relpath"] = [roots.get(os.path.abspath(str(p)), (None, str(n)))[1] for p, n in
                     zip(df["filepath"], df["filename"])]
    return _with_ir(df, recs)


def _with_ir(df: pd.DataFrame, recs: list[dict[str, Any]]) -> pd.DataFrame:
    """``df`` with the IR columns of ``recs`` (one per row, ``{}`` for none) and the derived ``clip``,
    ``burst_role``, ``duplicate_role``."""
    def col(values: list[Any]) -> pd.Series:
        return pd.Series(values, index=df.index, dtype=object)  # object: a missing value stays None, never NaN

    recs = [{k: _clean(v) for k, v in r.items()} for r in recs]
    for c in _IR_KEEP:
        df[c] = col([r.get(c) for r in recs])
    df["clip"] = col([None if a is None and b is None else (a or 0.0) + (b or 0.0)
                      for a, b in zip(df["clip_shadows"], df["clip_highlights"])])
    df["burst_role"] = col([_burst_role(r) for r in recs])
    df["duplicate_role"] = col([_dup_role(r) for r in recs])
    return df


def ir_selection_frame(ir: pd.DataFrame) -> pd.DataFrame:
    """The columns of :func:`selection_frame` from a cull's IR table alone (no workspace): ``relpath`` is the IR
    ``path``, ``image_id``, ``root`` and the rating / label columns are None (``labels`` empty). Rows keep the IR's
    order."""
    recs = [{k: _clean(v) for k, v in r.items()} for r in ir.to_dict("records")]
    df = pd.DataFrame({"image_id": [None] * len(recs), "filepath": [r.get("path") for r in recs],
                       "filename": [str(r.get("path", "")).rsplit("/", 1)[-1] for r in recs],
                       "root": [None] * len(recs), "relpath": [str(r.get("path")) for r in recs]}, dtype=object)
    for c in ("mu", "sigma", "ordinal", "comparison_count", "prior_mu", "prior_sigma"):
        df[c] = pd.Series([None] * len(recs), dtype=object)
    df["labels"] = [[] for _ in recs]
    return _with_ir(df, recs)


def _clean(v: Any) -> Any:
    if v is None or v is pd.NaT:
        return None
    if isinstance(v, float) and np.isnan(v):
        return None
    try:
        if pd.isna(v) is True:
            return None
    except (TypeError, ValueError):
        pass
    return v


def _burst_role(r: dict[str, Any]) -> str | None:
    size = _clean(r.get("burst_size"))
    if size is None:
        return None
    if int(size) <= 1:
        return "single"
    return "pick" if _clean(r.get("is_pick")) is True else "other"


def _dup_role(r: dict[str, Any]) -> str | None:
    if _clean(r.get("exact_duplicate_of")) is not None:
        return "duplicate"
    size = _clean(r.get("cluster_size"))
    if size is None:
        return None
    if int(size) <= 1:
        return "unique"
    return "pick" if _clean(r.get("is_pick")) is True else "duplicate"


# ---------------------------------------------------------------------------------------------- the steps
def _mask(df: pd.DataFrame, s: Select) -> np.ndarray:
    m = np.ones(len(df), dtype=bool)

    def num(col: str) -> np.ndarray:
        return pd.to_numeric(df[col].astype(object).where(df[col].notna(), np.nan), errors="coerce").to_numpy(float)

    times = pd.to_datetime(df["capture_time"].astype(object).where(df["capture_time"].notna(), None))
    if s.time_from is not None:
        m &= (times >= pd.Timestamp(s.time_from)).fillna(False).to_numpy(bool)
    if s.time_to is not None:
        m &= (times < pd.Timestamp(s.time_to)).fillna(False).to_numpy(bool)
    if s.hour_from is not None or s.hour_to is not None:
        h = times.dt.hour.to_numpy(float)
        h_lo, h_hi = s.hour_from or 0, 24 if s.hour_to is None else s.hour_to
        m &= (h >= h_lo) & (h < h_hi)
    if s.weekdays is not None:
        m &= times.dt.weekday.isin(s.weekdays).to_numpy(bool)
    for col, text in (("camera", s.camera), ("lens", s.lens)):
        if text is not None:
            hay = ([f"{a or ''} {b or ''}" for a, b in zip(df["camera_make"], df["camera_model"])] if col == "camera"
                   else [str(x or "") for x in df["lens_model"]])
            m &= np.array([text.lower() in h.lower() for h in hay], dtype=bool)
    bounds: list[tuple[str, float | None, float | None]] = [
        ("laplacian_var", s.min_sharpness, s.max_sharpness), ("clip", None, s.max_clip),
        ("noise_sigma", None, s.max_noise), ("ordinal", s.min_ordinal, s.max_ordinal),
        ("comparison_count", s.min_comparisons, s.max_comparisons)]
    for col, lo, hi in bounds:
        v = num(col)
        if lo is not None:
            m &= v >= lo  # NaN compares False: a file without the value never matches
        if hi is not None:
            m &= (v < hi) if col == "laplacian_var" else (v <= hi)
    if s.eyes_closed is not None:
        m &= np.array([x is s.eyes_closed for x in df["eyes_closed"]], dtype=bool)
    for col, allowed in (("bucket", s.bucket), ("burst_role", s.burst_role), ("duplicate_role", s.duplicate_role)):
        if allowed is not None:
            m &= df[col].isin(list(allowed)).to_numpy(bool)
    if s.labels is not None:
        m &= np.array([bool(set(x) & set(s.labels)) for x in df["labels"]], dtype=bool)
    if s.folder is not None:
        m &= np.array([fnmatch.fnmatchcase(str(p), s.folder) for p in df["relpath"]], dtype=bool)
    return m


def _group(df: pd.DataFrame, per: str) -> pd.Series:
    if per in ("burst", "cluster"):
        col = df[f"{per}_id"]
        return pd.Series([f"{per}{int(v)}" if v is not None else f"alone{i}" for v, i in zip(col, df["image_id"])],
                         index=df.index)
    if per == "folder":
        return df["relpath"].map(lambda p: str(p).rsplit("/", 1)[0] if "/" in str(p) else "")
    if per == "day":
        return df["capture_time"].map(lambda t: "none" if t is None else str(pd.Timestamp(t).date()))
    return pd.Series([f"{a or ''}|{b or ''}" for a, b in zip(df["camera_make"], df["camera_model"])], index=df.index)


def apply_step(df: pd.DataFrame, s: Any) -> pd.DataFrame:
    """The selection after one selection step (``select``, ``sort``, ``limit``); actions return it unchanged."""
    if isinstance(s, Select):
        m = _mask(df, s)
        return df[m if s.mode == "keep" else ~m]
    if isinstance(s, Sort):
        col = SORT_COLUMNS[s.by]
        key = df[col].astype(object).where(df[col].notna(), None)
        if s.by == "capture_time":
            key = pd.to_datetime(key)
        elif s.by != "path":
            key = pd.to_numeric(key, errors="coerce")
        order = key.sort_values(ascending=not s.descending, na_position="last", kind="stable").index
        return df.loc[order]
    if isinstance(s, Limit):
        if s.per is None:
            return df.head(s.n)
        return df[df.groupby(_group(df, s.per), sort=False).cumcount().to_numpy() < s.n]
    return df


def _run_steps(plan: Plan, col: CatalogLike) -> tuple[pd.DataFrame, list[StepCount], Path | None]:
    cat = as_catalog(col)
    dest = check_plan(plan, cat)
    first = plan.steps[0]
    df = selection_frame(cat, first if isinstance(first, Cull) else None)
    counts = []
    for i, s in enumerate(plan.steps):
        before = len(df)
        df = apply_step(df, s)
        would = None
        if isinstance(s, Label):
            would = f"label {len(df)} images {s.label}"
        elif isinstance(s, Vote):
            would = f"start a voting session over {len(df)} images"
        elif isinstance(s, Export):
            would = f"{s.mode} {len(df)} files to {dest}" + (" with XMP sidecars" if s.xmp else "")
        counts.append(StepCount(i, describe_step(s), before, len(df), would))
    return df, counts, dest


def preview(plan: Plan, col: CatalogLike, *, parser: str = "rules") -> PlanPreview:
    """The dry run: what each step would select and do. Writes nothing to the catalog, the image folders or the
    export roots (the cull's extraction cache under ``<workspace>/cache/`` may be filled).

    Raises:
        PlanError: the export destination is outside the allowed roots.
    """
    cat = as_catalog(col)
    df, counts, dest = _run_steps(plan, cat)
    return PlanPreview(plan, counts, df, list(df["relpath"].head(cat.settings.cull.plan_sample)), dest,
                       parser=parser)


def execute(plan: Plan, col: CatalogLike, *, parser: str = "rules") -> PlanPreview:
    """Run ``plan``: the selection steps, then its actions, storing the plan, its selection and its results.

    A label step adds one ``labels`` row per selected image (source ``plan``); a vote step starts a voting session
    (current for ``col``, note ``plan:<id>``) whose pairs :func:`session_pairs` draws from the selection; an
    export step places the files (names ``<position:04d>_<filename>``, :func:`imagerank.export.export_images`)
    and, with ``xmp``, writes an XMP sidecar (rating and label of the cull bucket) beside each exported file.

    Returns:
        the :class:`PlanPreview` with ``plan_id`` and ``result`` filled.

    Raises:
        PlanError: the export destination is outside the allowed roots (nothing ran, nothing stored).
        ImagerankError: an action failed (any other error too): the plan is stored with status ``failed``, the
            error and what ran before it (``result_json``), and the error is raised.
    """
    from ...export import export_images
    from ..xmp import write_xmp

    cat = as_catalog(col)
    df, counts, dest = _run_steps(plan, cat)
    cur = cat.db.execute("INSERT INTO plans (intent, plan_json, parser, status, created_at) VALUES (?,?,?,?,?)",
                         (plan.intent, plan.model_dump_json(), parser, "running", utcnow()))
    plan_id = int(cur.lastrowid or 0)
    result: dict[str, Any] = {"selected": len(df), "steps": [[c.before, c.after] for c in counts]}
    session_id = None
    try:
        with cat.db.atomic() as conn:
            conn.executemany("INSERT INTO plan_images (plan_id, image_id, position) VALUES (?,?,?)",
                             [(plan_id, int(i), k) for k, i in enumerate(df["image_id"])])
        for s in plan.steps:
            if isinstance(s, Label):
                with cat.db.atomic() as conn:
                    conn.executemany("INSERT INTO labels (image_id, label, source, note) VALUES (?,?,?,?)",
                                     [(int(i), s.label, "plan", f"plan {plan_id}") for i in df["image_id"]])
                result["labelled"] = result.get("labelled", 0) + len(df)
            elif isinstance(s, Vote):
                session = cat.votes.start_session(strategy=s.strategy)
                session_id = session.id
                cat.db.execute("UPDATE sessions SET note=? WHERE id=?", (f"plan:{plan_id}", session_id))
                cat.db.execute("UPDATE plans SET session_id=? WHERE id=?", (session_id, plan_id))
                result["session_id"] = session_id
            elif isinstance(s, Export) and dest is not None:
                board = pd.DataFrame({"rank": np.arange(1, len(df) + 1), "filepath": df["filepath"].to_numpy(),
                                      "filename": df["filename"].to_numpy()})
                rep = export_images(board, dest, mode=s.mode)
                result.update(exported=len(rep.written), export_failed=len(rep.failed),
                              export_missing=len(rep.missing), destination=str(dest))
                if s.xmp:
                    buckets = dict(zip(df["filepath"].astype(str), df["bucket"]))
                    kinds = dict(zip(df["filepath"].astype(str), df["kind"]))
                    n = 0
                    for src, out in rep.written:
                        if buckets.get(src):
                            write_xmp(out, str(buckets[src]), raw=kinds.get(src) == "raw")
                            n += 1
                    result["xmp_written"] = n
    except Exception as e:  # any failure: the plan is recorded as failed with what ran, then the error goes on
        cat.db.execute("UPDATE plans SET status='failed', error=?, result_json=?, finished_at=? WHERE id=?",
                       (f"{type(e).__name__}: {e}"[:2000], json.dumps(result, sort_keys=True), utcnow(), plan_id))
        raise
    cat.db.execute("UPDATE plans SET status='done', result_json=?, finished_at=? WHERE id=?",
                   (json.dumps(result, sort_keys=True), utcnow(), plan_id))
    return PlanPreview(plan, counts, df, list(df["relpath"].head(cat.settings.cull.plan_sample)), dest, plan_id,
                       result, parser)


def session_pairs(col: CatalogLike, n: int = 1, *, session_id: int | None = None) -> list[tuple[int, int]]:
    """Up to ``n`` new (left, right) pairs for a plan's voting session, drawn from the plan's selection only
    (the active images among them), with the session's strategy, seeded generator and no-repeat memory.

    Args:
        session_id: the session (default: the current one, which must have been started by a plan).

    Raises:
        NotFoundError: the session was not started by a plan.
    """
    from ...pairing import Pool, select_pairs
    from ...pairing.pool import PairContext

    cat = as_catalog(col)
    session = cat.votes.session if session_id is None else cat.votes.resume_session(session_id)
    rows = cat.db.query("SELECT id FROM plans WHERE session_id=? ORDER BY id DESC LIMIT 1", (session.id,))
    if not rows:
        raise NotFoundError(f"session {session.id} was not started by a plan (no plan stores it)")
    pool_rows = cat.db.query(
        "SELECT i.id, i.mu, i.sigma, i.comparison_count FROM plan_images p JOIN images i ON i.id = p.image_id "
        "WHERE p.plan_id=? AND i.status='active' ORDER BY i.id", (int(rows[0][0]),))
    pool = Pool.from_arrays([r[0] for r in pool_rows], [r[1] for r in pool_rows], [r[2] for r in pool_rows],
                            [r[3] for r in pool_rows])
    ctx = PairContext(pool, session.rng, session.seen, topk=cat.settings.topk)
    return select_pairs(ctx, session.strategy, n)
