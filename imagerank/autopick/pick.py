"""``auto_pick``: one good image per subject, or a flag with the reason.

Per subject: ask the source for at most ``candidates`` files (by the subject's name only); drop those whose licence
the user excludes; fetch each remaining candidate's thumbnail into memory (never to disk) and decode it behind the
decompression-bomb guard; score the thumbnails (aesthetic 0-10); with a CLIP scorer, demote candidates whose CLIP
text-image similarity to the subject's name is well below the best candidate's (off-subject); take the best. When
its score reaches ``threshold`` the winner is downloaded at full size, shrunk to fit ``max_size`` (800x600 by
default, aspect kept, never enlarged), saved under ``<workspace>/autopick/images/`` and added to the catalog, with
its source URL, licence, author and attribution line in ``autopick_subjects``. Otherwise the subject is flagged
with the reason (no candidates, all failed or excluded, best score under the threshold), and gets its category's
fallback image when one is configured. A source or download failure marks the subject ``error`` with the reason and
never stops the batch. Subjects go in batches of ``batch_size`` (50), each reported as a result dict.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .._util import progress_enabled
from ..catalog import CatalogLike, as_catalog
from ..errors import ImagerankError, InvalidArgumentError
from .scorer import ClipAestheticScorer, PyiqaScorer
from .sources import Source, decode_bytes, folder_name
from .store import RESOLVED, PickStore, Subject

__all__ = ["PickConfig", "PickReport", "auto_pick", "read_subjects"]

Scorer = ClipAestheticScorer | PyiqaScorer


@dataclass(frozen=True)
class PickConfig:
    """How :func:`auto_pick` chooses.

    Attributes:
        threshold: the lowest acceptable score, 0-10 (default 5.0); a subject whose best candidate scores less is
            flagged.
        candidates: candidates asked per subject, 1-50 (default 10).
        batch_size: subjects per batch, >= 1 (default 50).
        max_size: (width, height) the stored winner fits in, pixels (default 800x600; only shrinks).
        thumb_pixels: longest side the thumbnails are decoded at for scoring (default 512).
        excluded_licences: licences never picked, compared case-insensitively as prefixes of the licence name
            (``"CC BY-NC"`` excludes ``CC BY-NC-SA 4.0``); ``"unknown"`` excludes candidates without a licence.
        fallbacks: category -> image file given to flagged subjects of that category.
        demote_off_subject: with a CLIP scorer, lower the score of candidates whose similarity to the subject's name
            is more than ``similarity_margin`` (cosine) below the best candidate's, by ``demotion`` points.
        jpeg_quality: quality of the stored winner, 1-100 (default 90).

    Raises:
        InvalidArgumentError: a value out of range.
    """

    threshold: float = 5.0
    candidates: int = 10
    batch_size: int = 50
    max_size: tuple[int, int] = (800, 600)
    thumb_pixels: int = 512
    excluded_licences: tuple[str, ...] = ()
    fallbacks: Mapping[str, str] = field(default_factory=dict)
    demote_off_subject: bool = True
    similarity_margin: float = 0.05
    demotion: float = 5.0
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.threshold) <= 10.0:
            raise InvalidArgumentError(f"threshold: expected a score in [0, 10], got {self.threshold!r}")
        if not 1 <= int(self.candidates) <= 50:
            raise InvalidArgumentError(f"candidates: expected 1..50, got {self.candidates!r}")
        if int(self.batch_size) < 1 or int(self.thumb_pixels) < 16:
            raise InvalidArgumentError(f"batch_size >= 1 and thumb_pixels >= 16 expected, got {self.batch_size!r}, "
                                       f"{self.thumb_pixels!r}")
        if len(self.max_size) != 2 or min(self.max_size) < 1:
            raise InvalidArgumentError(f"max_size: expected (width, height) >= 1 pixel, got {self.max_size!r}")
        if not 1 <= int(self.jpeg_quality) <= 100 or self.similarity_margin < 0 or self.demotion < 0:
            raise InvalidArgumentError("jpeg_quality 1..100, similarity_margin >= 0 and demotion >= 0 expected, got "
                                       f"{self.jpeg_quality!r}, {self.similarity_margin!r}, {self.demotion!r}")
        for cat, path in self.fallbacks.items():
            if not Path(path).is_file():
                raise InvalidArgumentError(f"fallbacks[{cat!r}]: expected an image file, got {path!r}")


@dataclass
class PickReport:
    """What :func:`auto_pick` did: ``batches`` (one result dict per batch: ``status`` ``ok``/``partial``/
    ``failed``, ``processed_count``, ``updated_count``, ``picked``, ``flagged``, ``errors``, ``skipped``) and
    ``subjects`` (name -> ``{"status", "reason", "score", "image_id"}`` for the subjects processed or skipped)."""

    batches: list[dict[str, Any]] = field(default_factory=list)
    subjects: dict[str, dict[str, Any]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Subjects of this run by outcome: picked, flagged, error, skipped."""
        out = {"picked": 0, "flagged": 0, "error": 0, "skipped": 0}
        for r in self.subjects.values():
            out[r["status"]] = out.get(r["status"], 0) + 1
        return out


def read_subjects(path: str | os.PathLike[str]) -> tuple[list[Subject], list[str]]:
    """Subjects from a CSV file with a header naming ``name`` (or ``subject``) and optionally ``category``.

    Returns:
        (subjects in file order without duplicates, problems: one line per row left out, e.g. an empty name).

    Raises:
        InvalidArgumentError: the file cannot be read or has no ``name``/``subject`` column.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidArgumentError(f"subjects CSV {path}: cannot read ({e})") from e
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip().lower() for f in (reader.fieldnames or [])]
    key = "name" if "name" in fields else "subject" if "subject" in fields else None
    if key is None:
        raise InvalidArgumentError(f"subjects CSV {path}: expected a header with a 'name' (or 'subject') column, "
                                   f"got {reader.fieldnames!r}")
    out: list[Subject] = []
    seen: set[str] = set()
    problems: list[str] = []
    for line, row in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if isinstance(v, str)}
        name = row.get(key, "")
        if not name:
            problems.append(f"line {line}: empty {key}; row left out")
        elif name in seen:
            problems.append(f"line {line}: {name!r} repeated; first row kept")
        else:
            seen.add(name)
            out.append(Subject(name, row.get("category") or None))
    return out, problems


def _excluded(licence: str | None, excluded: Sequence[str]) -> str | None:
    low = (licence or "").strip().lower()
    for ex in excluded:
        e = ex.strip().lower()
        if (e == "unknown" and not low) or (e and e != "unknown" and low.startswith(e)):
            return f"licence {licence or 'unknown'!r} is excluded ({ex})"
    return None


def _preview(im: Image.Image) -> bytes:
    p = im.copy()
    p.thumbnail((256, 256), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    p.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def _score(scorer: Scorer, images: list[Image.Image], subject: str, cfg: PickConfig) -> dict[str, Any]:
    if isinstance(scorer, PyiqaScorer):
        return {"aesthetic": scorer.score(images), "similarity": None, "embeddings": None, "model": scorer.name}
    X = scorer.embed(images)
    sim = scorer.similarity(X, subject) if cfg.demote_off_subject else None
    return {"aesthetic": scorer.aesthetic(X), "similarity": sim, "embeddings": X, "model": scorer.name}


class _Picker:
    def __init__(self, col: CatalogLike, source: Source, scorer: Scorer, cfg: PickConfig) -> None:
        self.cat = as_catalog(col)
        self.store = PickStore(self.cat)
        self.source, self.scorer, self.cfg = source, scorer, cfg
        self.max_pixels = int(self.cat.settings.max_image_pixels)
        self.out_dir = self.cat.root / "autopick" / "images"

    def _save(self, im: Image.Image, subject: str, tag: str) -> int:
        im = im.copy()
        im.thumbnail(self.cfg.max_size, Image.Resampling.LANCZOS)  # only shrinks; aspect kept
        self.out_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(f"{subject}\0{tag}".encode()).hexdigest()[:10]
        path = self.out_dir / f"{folder_name(subject)[:80]}-{digest}.jpg"
        tmp = path.with_name(path.name + ".part")
        im.save(tmp, "JPEG", quality=int(self.cfg.jpeg_quality))
        os.replace(tmp, path)
        st = path.stat()
        return self.cat.images.add_files([(str(path), st.st_size, st.st_mtime_ns)])[str(path)]

    def one(self, subj: Subject, sid: int) -> dict[str, Any]:
        cfg = self.cfg
        try:
            cands = self.source.candidates(subj.name, cfg.candidates)
        except ImagerankError as e:
            self.store.finish(sid, "error", reason=f"{self.source.name}: {e}")
            return {"status": "error", "reason": str(e)}
        if not cands:
            return self._flag(subj, sid, f"no candidates found at {self.source.name} for {subj.name!r}", [])
        rows: list[dict[str, Any]] = []
        images: list[Image.Image] = []
        live: list[int] = []
        for c in cands:
            row: dict[str, Any] = c.record()
            rows.append(row)
            why = _excluded(c.licence, cfg.excluded_licences)
            if why:
                row.update(status="excluded", reason=why)
                continue
            try:
                im = decode_bytes(self.source.thumbnail(c), max_pixels=self.max_pixels,
                                  what=f"thumbnail of {c.title}", target=cfg.thumb_pixels)
            except ImagerankError as e:
                row.update(status="failed", reason=str(e))
                continue
            im.thumbnail((cfg.thumb_pixels, cfg.thumb_pixels), Image.Resampling.BILINEAR)
            row["preview"] = _preview(im)
            images.append(im)
            live.append(len(rows) - 1)
        if not live:
            why = "; ".join(f"{r['title']}: {r['reason']}" for r in rows)[:900]
            return self._flag(subj, sid, f"no usable candidate ({len(rows)} found): {why}", rows)
        s = _score(self.scorer, images, subj.name, cfg)
        score = np.asarray(s["aesthetic"], np.float64).copy()
        sim = s["similarity"]
        if sim is not None:
            off = sim < float(np.max(sim)) - cfg.similarity_margin
            score[off] = np.maximum(score[off] - cfg.demotion, 0.0)
        for k, i in enumerate(live):
            rows[i].update(status="scored", aesthetic=float(s["aesthetic"][k]), score=float(score[k]),
                           similarity=None if sim is None else float(sim[k]), embedding_model=s["model"],
                           embedding=None if s["embeddings"] is None else s["embeddings"][k].astype(
                               np.float32).tobytes())
            if sim is not None and off[k]:
                rows[i]["reason"] = (f"off-subject: CLIP similarity {sim[k]:.3f} < best {float(np.max(sim)):.3f} - "
                                     f"{cfg.similarity_margin}; demoted by {cfg.demotion}")
        order = [live[k] for k in np.argsort(-score, kind="stable")]
        best = rows[order[0]]
        if best["score"] < cfg.threshold:
            return self._flag(subj, sid, f"best score {best['score']:.2f} < threshold {cfg.threshold:.2f} "
                                         f"({best['title']})", rows)
        errors = []
        for i in order:
            r = rows[i]
            if r["score"] < cfg.threshold:
                break
            c = cands[i]
            try:
                full = decode_bytes(self.source.original(c), max_pixels=self.max_pixels, what=f"original of {c.title}")
                image_id = self._save(full, subj.name, c.source_url)
            except ImagerankError as e:
                r["reason"] = f"winner not stored: {e}"
                errors.append(f"{c.title}: {e}")
                continue
            r["status"] = "picked"
            self.store.finish(sid, "picked", candidates=rows, pick={
                **{k: r.get(k) for k in ("position", "source", "source_url", "page_url", "licence", "licence_url",
                                         "author", "attribution")}, "image_id": image_id, "score": r["score"]})
            return {"status": "picked", "reason": None, "score": r["score"], "image_id": image_id}
        reason = "every candidate above the threshold failed to download: " + "; ".join(errors)[:900]
        self.store.finish(sid, "error", reason=reason, candidates=rows)
        return {"status": "error", "reason": reason}

    def _flag(self, subj: Subject, sid: int, reason: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        fb = self.cfg.fallbacks.get(subj.category or "") if subj.category else None
        pick = None
        if fb:
            try:
                with open(fb, "rb") as f:
                    im = decode_bytes(f.read(), max_pixels=self.max_pixels, what=f"fallback {fb}")
                pick = {"image_id": self._save(im, subj.name, f"fallback:{fb}"), "source": "fallback",
                        "source_url": str(Path(fb).resolve()), "attribution": f"fallback image for {subj.category!r}"}
                reason += f"; fallback image for category {subj.category!r} used"
            except (ImagerankError, OSError) as e:
                reason += f"; fallback image {fb} unusable ({e})"
        self.store.finish(sid, "flagged", reason=reason, candidates=rows, pick=pick)
        return {"status": "flagged", "reason": reason, "image_id": (pick or {}).get("image_id")}


def auto_pick(
    col: CatalogLike,
    subjects: Sequence[Subject | str],
    source: Source,
    scorer: Scorer,
    config: PickConfig | None = None,
    *,
    redo: bool = False,
    progress: bool = True,
    on_batch: Callable[[dict[str, Any]], None] | None = None,
) -> PickReport:
    """Pick the best image per subject from ``source``, scored by ``scorer``, or flag the subject with a reason.

    Args:
        col: the collection or catalog the winners are added to.
        subjects: :class:`Subject` records or plain names (a repeated name is processed once).
        source: a :class:`~imagerank.autopick.sources.Source` (Commons or a folder).
        scorer: a :class:`~imagerank.autopick.scorer.ClipAestheticScorer` or
            :class:`~imagerank.autopick.scorer.PyiqaScorer`.
        config: a :class:`PickConfig` (threshold, batch size, licences, fallbacks ...).
        redo: also process subjects already ``picked`` or ``flagged`` (default: they are skipped, so a rerun makes
            no request for them).
        progress: a progress bar over the subjects (on a terminal or in Jupyter).
        on_batch: called with each batch's result dict as it finishes.

    Returns:
        A :class:`PickReport`; the tables (``PickStore(cat).subjects_df()``, ``candidates_df()``) hold the details.

    Raises:
        InvalidArgumentError: a subject that is not a non-empty name.
    """
    cfg = config or PickConfig()
    first: dict[str, Subject] = {}
    for s in subjects:
        sub = s if isinstance(s, Subject) else Subject(s)
        first.setdefault(sub.name, sub)
    subs = list(first.values())
    picker = _Picker(col, source, scorer, cfg)
    ids = picker.store.ensure(subs)
    state = picker.store.status_of([s.name for s in subs])
    report = PickReport()
    bar = None
    if progress_enabled(progress, sys.stderr):
        from tqdm.auto import tqdm

        bar = tqdm(total=len(subs), desc="auto-pick", unit="subject")
    try:
        for b, start in enumerate(range(0, len(subs), cfg.batch_size)):
            batch = subs[start:start + cfg.batch_size]
            res: dict[str, Any] = {"batch": b, "status": "ok", "processed_count": 0, "updated_count": 0,
                                   "picked": 0, "flagged": 0, "errors": 0, "skipped": 0}
            for s in batch:
                if not redo and state.get(s.name) in RESOLVED:
                    row = picker.store.get(s.name)
                    report.subjects[s.name] = {"status": "skipped", "reason": f"already {row['status']}",
                                               "score": row["score"], "image_id": row["image_id"]}
                    res["skipped"] += 1
                else:
                    try:
                        out = picker.one(s, ids[s.name])
                    except (ImagerankError, OSError) as e:  # a write that failed: record it, go on
                        out = {"status": "error", "reason": f"{type(e).__name__}: {e}"}
                        try:
                            picker.store.finish(ids[s.name], "error", reason=out["reason"])
                        except ImagerankError:
                            pass
                    report.subjects[s.name] = {"score": None, "image_id": None, **out}
                    res["processed_count"] += 1
                    res["updated_count"] += int(out["status"] in ("picked", "flagged"))
                    res[{"picked": "picked", "flagged": "flagged"}.get(out["status"], "errors")] += 1
                if bar is not None:
                    bar.update(1)
            if res["errors"]:
                res["status"] = "failed" if res["errors"] == res["processed_count"] else "partial"
            report.batches.append(res)
            if on_batch is not None:
                on_batch(res)
    finally:
        if bar is not None:
            bar.close()
    return report

