"""Why was this image picked (or not)? Machine-readable reasons for one image and a deterministic sentence.

:func:`explain_image` reads the image's row of :func:`~.run.selection_frame` (the cull IR joined with the catalog)
and returns the facts: the bucket and the rule that decided it (the cull's reason record), the sharpness and its
percentile within its burst, clipping, duplicates, the rating with its uncertainty, and the learned score with its
weight. :func:`sentence` builds one sentence from those facts alone (the same facts always give the same text).
:func:`polish_sentence` may ask an LLM to rephrase it; the facts are never sent to or changed by it, and a reply
that drops or invents a number is refused (the deterministic sentence stays).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ...catalog import CatalogLike, as_catalog
from ...errors import NotFoundError

__all__ = ["DECIDING_CODES", "explain_image", "explain_record", "polish_sentence", "sentence"]

#: Reason codes that decide a bucket, strongest first: the first one an image carries is "the rule that decided"
#: (a ``companion`` — the RAW or JPEG of a RAW+JPEG pair — takes its leader's bucket, so that decides it).
DECIDING_CODES: tuple[str, ...] = ("companion", "exact_duplicate", "near_duplicate", "blurry", "clipped",
                                   "eyes_closed", "unjudged", "top_score", "kept")


def _f(v: Any) -> float | None:
    if v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def _percentile_in_burst(df: pd.DataFrame, row: pd.Series) -> float | None:
    """Share (0–100) of the other frames of the image's burst that are less sharp (ties count half)."""
    lap, bid = _f(row["laplacian_var"]), row["burst_id"]
    if lap is None or bid is None or (row["burst_size"] or 1) <= 1:
        return None
    others = [_f(v) for v, i in zip(df.loc[df["burst_id"] == bid, "laplacian_var"],
                                    df.loc[df["burst_id"] == bid, "image_id"]) if i != row["image_id"]]
    vals = np.array([v for v in others if v is not None])
    if len(vals) == 0:
        return None
    return float(100.0 * ((vals < lap).sum() + 0.5 * (vals == lap).sum()) / len(vals))


def explain_image(col: CatalogLike, image_id: int, *, frame: pd.DataFrame | None = None,
                  polish: Callable[[str], str] | None = None) -> dict[str, Any]:
    """The machine-readable reasons for one image.

    Args:
        col: a Collection or Catalog. image_id: a catalog image id. frame: a :func:`~.run.selection_frame`
            already computed (so many explanations share one cull). polish: a rephrasing call (e.g.
            :meth:`~.llm.LLMParser.polish`); adds ``polished`` (the rephrased sentence, or the sentence when the
            reply was refused) and ``polish_accepted`` (:func:`polish_sentence`). The facts never change.

    Returns:
        dict (JSON-serialisable) with ``image_id``, ``path``, ``status`` (the cull status, or None without a cull
        record), ``bucket``, ``decided_by`` (``{"code", "stage", "message", "value", "threshold", "ref"}`` of the
        deciding reason, or None), ``reasons`` (every IR reason record), ``sharpness`` (``laplacian_var``,
        ``percentile_in_burst`` 0–100 or None, ``burst_id``, ``burst_size``, ``burst_role``), ``clipping``
        (``shadows``, ``highlights``, ``total`` fractions, ``limit`` = ``cull_max_clip``), ``duplicates``
        (``exact_duplicate_of``, ``cluster_id``, ``cluster_size``, ``role``, ``pick`` = the path that was kept),
        ``rating`` (``mu``, ``sigma`` = the uncertainty, ``ordinal`` = ``mu - 3 sigma``, ``comparisons``),
        ``learned`` (``score`` = the cull reranker's learned score, ``prior_mu``, ``prior_sigma``, ``weight`` =
        ``sigma² / prior_sigma²``, the prior's share of the rating's precision under Gaussian updating, 0–1, or
        None without a prior), ``score`` (the cull's technical score), ``camera`` and ``lens`` (EXIF text, or
        None) and ``sentence`` (:func:`sentence`).

    Raises:
        NotFoundError: no active image with that id.
    """
    from .run import selection_frame

    cat = as_catalog(col)
    df = frame if frame is not None else selection_frame(cat)
    hit = df[df["image_id"] == int(image_id)]
    if hit.empty:
        raise NotFoundError(f"image {image_id}: expected an active image of this workspace, got none with that id")
    facts = _facts(df, hit.iloc[0], cat.settings.cull.cull_max_clip)
    if polish is not None:
        facts["polished"], facts["polish_accepted"] = polish_sentence(facts["sentence"], polish)
    return facts


def explain_record(ir: pd.DataFrame, path: str, *, max_clip: float | None = None) -> dict[str, Any]:
    """The reasons for one file of a cull without a workspace: ``ir`` is the table :func:`imagerank.cull.cull`
    returned (or ``manifest.jsonl`` read with ``pandas.read_json(..., lines=True)``), ``path`` its ``path`` column.

    Returns:
        the dict of :func:`explain_image` with ``image_id`` None and the ``rating`` / ``learned`` prior fields None
        (there is no catalog); ``clipping.limit`` is ``max_clip`` (default: the ``[cull]`` default).

    Raises:
        NotFoundError: no row with that path. InvalidArgumentError: ``ir`` lacks an IR column.
    """
    from ...config import CullSettings
    from ..ir import IR_COLUMNS
    from .run import ir_selection_frame

    missing = [n for n, _ in IR_COLUMNS if n not in ir.columns]
    if missing:
        from ...errors import InvalidArgumentError

        raise InvalidArgumentError(f"ir: expected the cull's IR columns, got a table without {missing[:5]}")
    df = ir_selection_frame(ir)
    hit = df[df["relpath"] == str(path)]
    if hit.empty:
        raise NotFoundError(f"path: expected a file of this cull, got {path!r}")
    return _facts(df, hit.iloc[0], CullSettings().cull_max_clip if max_clip is None else float(max_clip))


def _facts(df: pd.DataFrame, row: pd.Series, max_clip: float) -> dict[str, Any]:
    reasons = [dict(r) for r in (row["reasons"] or [])]
    decided = next((r for code in DECIDING_CODES for r in reasons if r.get("code") == code), None)
    pick = None
    if row["cluster_id"] is not None and (row["cluster_size"] or 1) > 1:
        mates = df[(df["cluster_id"] == row["cluster_id"]) & (df["is_pick"] == True)]  # noqa: E712
        pick = str(mates["relpath"].iloc[0]) if len(mates) else None
    sigma, prior_sigma = _f(row["sigma"]), _f(row["prior_sigma"])
    weight = None
    if sigma is not None and prior_sigma and prior_sigma > 0:
        weight = min(1.0, (sigma / prior_sigma) ** 2)
    facts: dict[str, Any] = {
        "image_id": None if row["image_id"] is None else int(row["image_id"]),
        "path": str(row["relpath"]),
        "status": row["status"],
        "bucket": row["bucket"],
        "decided_by": decided,
        "reasons": reasons,
        "sharpness": {"laplacian_var": _f(row["laplacian_var"]), "percentile_in_burst": _percentile_in_burst(df, row),
                      "burst_id": None if row["burst_id"] is None else int(row["burst_id"]),
                      "burst_size": None if row["burst_size"] is None else int(row["burst_size"]),
                      "burst_role": row["burst_role"]},
        "clipping": {"shadows": _f(row["clip_shadows"]), "highlights": _f(row["clip_highlights"]),
                     "total": _f(row["clip"]), "limit": max_clip},
        "duplicates": {"exact_duplicate_of": row["exact_duplicate_of"],
                       "cluster_id": None if row["cluster_id"] is None else int(row["cluster_id"]),
                       "cluster_size": None if row["cluster_size"] is None else int(row["cluster_size"]),
                       "role": row["duplicate_role"], "pick": pick},
        "rating": {"mu": _f(row["mu"]), "sigma": sigma, "ordinal": _f(row["ordinal"]),
                   "comparisons": None if row["comparison_count"] is None else int(row["comparison_count"])},
        "learned": {"score": _f(row["learned_score"]), "prior_mu": _f(row["prior_mu"]), "prior_sigma": prior_sigma,
                    "weight": weight},
        "score": _f(row["score"]),
        "camera": " ".join(str(x) for x in (row["camera_make"], row["camera_model"]) if x) or None,
        "lens": row["lens_model"],
    }
    facts["sentence"] = sentence(facts)
    return facts


def _n(x: float | None, digits: int = 1) -> str:
    return "unknown" if x is None else f"{x:.{digits}f}"


def sentence(facts: dict[str, Any]) -> str:
    """One sentence built only from ``facts`` (the dict of :func:`explain_image`); deterministic. The file name
    and the camera appear quoted (``repr``), so text inside them reads as a name, not as words of the sentence."""
    parts = [f"{facts['path']!r}" + (f" (camera {facts['camera']!r})" if facts.get("camera") else "")]
    if facts.get("bucket") is None:
        parts.append(f"has no bucket (status {facts.get('status') or 'not culled'})")
    else:
        d = facts.get("decided_by")
        parts.append(f"is in {facts['bucket']}" + (f" because of rule {d['code']} ({d['message']})" if d else ""))
    sh = facts["sharpness"]
    if sh["laplacian_var"] is not None:
        s = f"sharpness {_n(sh['laplacian_var'])}"
        if sh["percentile_in_burst"] is not None:
            s += f", sharper than {_n(sh['percentile_in_burst'], 0)}% of its burst of {sh['burst_size']}"
        parts.append(s)
    cl = facts["clipping"]
    if cl["total"] is not None:
        parts.append(f"clipped {_n(100 * cl['total'])}% (limit {_n(100 * cl['limit'])}%)")
    du = facts["duplicates"]
    if du["exact_duplicate_of"]:
        parts.append(f"a byte-identical copy of {du['exact_duplicate_of']!r}")
    elif du["role"] == "duplicate" and du["pick"]:
        parts.append(f"a near-duplicate of {du['pick']!r}, which was kept")
    elif du["role"] == "pick":
        parts.append(f"kept over {du['cluster_size'] - 1} near-duplicates")
    ra = facts["rating"]
    if ra["mu"] is not None:
        parts.append(f"rating {_n(ra['mu'], 2)} ± {_n(ra['sigma'], 2)} (ordinal {_n(ra['ordinal'], 2)}, "
                     f"{ra['comparisons']} comparisons)")
    le = facts["learned"]
    if le["score"] is not None:
        parts.append(f"learned score {_n(le['score'], 3)}")
    if le["prior_mu"] is not None and le["weight"] is not None:
        parts.append(f"learned prior {_n(le['prior_mu'], 2)} weighing {_n(100 * le['weight'], 0)}% of the rating")
    return parts[0] + " " + "; ".join(parts[1:]) + "."


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def polish_sentence(text: str, polish: Any) -> tuple[str, bool]:
    """Ask ``polish`` (a callable ``str -> str``, e.g. :meth:`~.llm.LLMParser.polish`) to rephrase ``text``.

    Returns:
        (the polished sentence, True) when the reply keeps every number of ``text`` and adds none; else
        (``text``, False). Never changes the facts.
    """
    try:
        out = str(polish(text)).strip()
    except Exception:
        return text, False
    if not out or len(out) > 4 * len(text) + 200:
        return text, False
    if sorted(_NUMBER.findall(out)) != sorted(_NUMBER.findall(text)):
        return text, False
    return out, True
