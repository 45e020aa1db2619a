"""The feature pass: find images whose sidecar rows are missing or stale, compute them, write new parts.

One decode per image feeds thumbnail, hashes and quality: the pass runs the core's thumbnail pass
(:meth:`Collection.build_thumbnails`) with the ``hashes`` / ``quality`` extractors on exactly the images that need
them, rewriting a thumbnail only when it is stale too. EXIF reads file headers (no decode). Embeddings run
through Lightning (:mod:`.embeddings`). Each failure is recorded in the catalog's ``failures`` table (image,
file, stage, reason) and in the returned :class:`FeatureReport`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._util.procs import imap_processes
from ..catalog import Catalog, CatalogLike, as_catalog
from ..errors import FeatureError
from ..media import ThumbnailCache, scan_workspace
from .registry import extractors_for
from .sidecar import Sidecar, current_fingerprints

if TYPE_CHECKING:
    from ..media import DecodeJob, DecodeResult

__all__ = [
    "DecodeCollector",
    "EmbeddingSpec",
    "FeatureReport",
    "compute_features",
    "decode_pass",
    "parse_embedding_spec",
    "stale_ids",
]

FLUSH_ROWS = 4096
COMPACT_ABOVE = 16  # parts per sidecar before the pass compacts it


@dataclass
class FeatureReport:
    """What a feature pass did.

    Attributes:
        computed: sidecar name -> rows written in this pass.
        current: sidecar name -> images whose rows were already current (skipped).
        failures: (image_id, filepath, stage, reason) of every failure in this pass.
        seconds: wall time.
    """

    computed: dict[str, int] = field(default_factory=dict)
    current: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[int | None, str | None, str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def __str__(self) -> str:
        names = sorted(set(self.computed) | set(self.current))
        parts = [f"{n}: {self.computed.get(n, 0)} computed, {self.current.get(n, 0)} current" for n in names]
        done = "; ".join(parts) or "nothing asked"
        return f"features ({done}); {len(self.failures)} failures in {self.seconds:.1f} s"


@dataclass(frozen=True)
class EmbeddingSpec:
    """An open_clip image encoder: architecture name and weights.

    Attributes:
        model: an open_clip model name (``open_clip.list_models()``), e.g. ``ViT-B-32``, or ``imagerank-tiny``.
        pretrained: a tag from open_clip's registry (``open_clip.list_pretrained()``), a local checkpoint file,
            or None for seeded random weights (tests, CI).
        seed: the seed of random weights (pretrained None).
    """

    model: str
    pretrained: str | None = None
    seed: int = 0

    @property
    def tag(self) -> str:
        """The weights' short name: the registry tag, the checkpoint file's stem, or ``none``."""
        if self.pretrained is None:
            return "none" if self.seed == 0 else f"none-seed{self.seed}"
        if os.sep in self.pretrained or "/" in self.pretrained or os.path.isfile(self.pretrained):
            stem = os.path.basename(self.pretrained)
            for ext in (".safetensors", ".bin", ".pt", ".pth", ".ckpt"):
                if stem.endswith(ext):
                    stem = stem[: -len(ext)]
            return _safe(stem)
        return _safe(self.pretrained)

    @property
    def sidecar_name(self) -> str:
        """``embeddings/<model>__<tag>`` (characters outside ``A-Za-z0-9._+-`` become ``-``)."""
        return f"embeddings/{_safe(self.model)}__{self.tag}"


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "-", s).strip("-") or "x"


def parse_embedding_spec(spec: str | EmbeddingSpec | tuple[str, str | None]) -> EmbeddingSpec:
    """``"MODEL:PRETRAINED"`` -> :class:`EmbeddingSpec`. PRETRAINED ``none`` (or missing) = random weights.

    ``hf-hub:org/repo`` and ``local-dir:/path`` model names keep their schema (open_clip ignores PRETRAINED then).

    Raises:
        FeatureError: empty model name.
    """
    if isinstance(spec, EmbeddingSpec):
        return spec
    if isinstance(spec, tuple):
        model, pretrained = spec[0], spec[1]
    else:
        text = str(spec).strip()
        schema = ""
        for prefix in ("hf-hub:", "local-dir:"):
            if text.startswith(prefix):
                schema, text = prefix, text[len(prefix):]
        if schema == "local-dir:":
            model, pretrained = schema + text, None
        else:
            model, _, pretrained = text.partition(":")
            model = schema + model
    model = model.strip()
    if not model:
        raise FeatureError(f"embeddings: expected MODEL:PRETRAINED (e.g. ViT-B-32:openai), got {spec!r}")
    if pretrained is not None and pretrained.strip().lower() in ("", "none", "random", "null"):
        pretrained = None
    return EmbeddingSpec(model, pretrained.strip() if pretrained else None)


# ---------------------------------------------------------------------------------------------- helpers
def stale_ids(col: CatalogLike, name: str, ids: Iterable[int] | None = None, *, force: bool = False) -> list[int]:
    """Active images (or those of ``ids``) whose newest row in sidecar ``name`` is missing or has another
    fingerprint than the file's current one; all of them with ``force``. Sorted ascending."""
    cat = as_catalog(col)
    cur = current_fingerprints(cat, statuses=("active",))
    if ids is not None:
        wanted = {int(i) for i in ids}
        cur = {i: fp for i, fp in cur.items() if i in wanted}
    if force:
        return sorted(cur)
    have = Sidecar(cat.sidecars_dir, name).fingerprints()
    return sorted(i for i, fp in cur.items() if have.get(i) != fp)


def _metadata(name: str, cat: Catalog, feature_size: int | None = None) -> dict[str, Any]:
    s = cat.settings
    if name == "hashes":
        from .hashing import WHASH_SCALE

        try:
            import imagehash

            version = imagehash.__version__
        except (ImportError, AttributeError):  # pragma: no cover
            version = "unknown"
        return {
            "hash_convention": "signed int64 of imagehash's 64 bits, first bit most significant (see hashing.py)",
            "whash_image_scale": WHASH_SCALE,
            "digest": "blake2b-128 of the file bytes, hex",
            "imagehash_version": version,
            "feature_size": feature_size,
        }
    if name == "quality":
        from .quality import HIGHLIGHT_LEVEL, SHADOW_LEVEL

        return {
            "luma": "Rec. 601 (Pillow convert('L'))",
            "feature_size": feature_size,
            "shadow_level": SHADOW_LEVEL,
            "highlight_level": HIGHLIGHT_LEVEL,
            "thresholds": {
                "blur_threshold": s.blur_threshold,
                "dark_threshold": s.dark_threshold,
                "bright_threshold": s.bright_threshold,
                "clip_fraction_threshold": s.clip_fraction_threshold,
            },
        }
    if name == "exif":
        import PIL

        return {"reader": f"Pillow {PIL.__version__}"}
    return {}


class DecodeCollector:
    """Collects extractor values from the thumbnail pass and writes them to the sidecars in parts.

    Passed as ``on_result`` to :meth:`imagerank.media.ThumbnailCache.build` (which records the failures in the catalog);
    call :meth:`close` at the end to write what is buffered.
    """

    def __init__(self, col: CatalogLike, extractors: Iterable[str], *, flush_rows: int = FLUSH_ROWS) -> None:
        cat = as_catalog(col)
        self.cat = cat
        self.names = tuple(extractors)
        self.flush_rows = flush_rows
        self.rows: dict[str, list[dict[str, Any]]] = {n: [] for n in self.names}
        self.written: dict[str, int] = dict.fromkeys(self.names, 0)
        self.failures: list[tuple[int | None, str | None, str, str]] = []
        self.feature_size: int | None = None

    def __call__(self, res: DecodeResult, job: DecodeJob) -> None:
        self.feature_size = job.feature_size
        if not res.ok:
            self.failures.append((res.image_id, job.path, "decode", res.reason or "not decodable"))
            return
        for stage, reason in res.failures.items():
            self.failures.append((res.image_id, job.path, stage, reason))
        for name, values in res.features.items():
            if name not in self.rows:
                continue
            row = {"image_id": res.image_id, "fingerprint": job.fingerprint, **values}
            if name == "quality":
                from .quality import quality_flags

                row.update(quality_flags(values, self.cat.settings))
            self.rows[name].append(row)
            if len(self.rows[name]) >= self.flush_rows:
                self._flush(name)

    def _flush(self, name: str) -> None:
        rows = self.rows[name]
        if rows:
            Sidecar(self.cat.sidecars_dir, name).write(rows, metadata=_metadata(name, self.cat, self.feature_size))
            self.written[name] += len(rows)
            self.rows[name] = []

    def close(self) -> None:
        """Write every buffered row."""
        for name in self.names:
            self._flush(name)


def decode_pass(
    col: CatalogLike, names: Sequence[str], *, ids: Iterable[int] | None = None, progress: bool = True,
    force: bool = False,
) -> tuple[int, int]:
    """The thumbnail pass with the extractors ``names`` (``hashes``, ``quality``) run on the same decode and their
    rows written to the sidecars; returns (thumbnails written, images marked corrupt)."""
    cat = as_catalog(col)
    collector = DecodeCollector(cat, names)
    out = ThumbnailCache(cat).build(ids, progress=progress, force=force, extractors=extractors_for(tuple(names)),
                                    on_result=collector)
    collector.close()
    return out


# ---------------------------------------------------------------------------------------------- exif pass
def _exif_task(item: tuple[int, str]) -> tuple[int, dict[str, Any] | None, str | None]:
    from .exif import read_exif

    image_id, path = item
    try:
        return image_id, read_exif(path), None
    except Exception as e:  # the file itself is unreadable
        return image_id, None, f"{type(e).__name__}: {e}"[:500]


def run_exif(
    col: CatalogLike, ids: Sequence[int], *, progress: bool = True, workers: int | None = None, inline_below: int = 256
) -> tuple[int, list[tuple[int | None, str | None, str, str]]]:
    """Read the EXIF of ``ids`` (headers only) and write the ``exif`` sidecar; returns (rows, failures)."""
    cat = as_catalog(col)
    if not ids:
        return 0, []
    fps = current_fingerprints(cat)
    paths: dict[int, str] = {}
    wanted = set(ids)
    for r in cat.db.query("SELECT id, filepath FROM images WHERE status='active'"):
        if r[0] in wanted:
            paths[int(r[0])] = r[1]
    items = [(i, paths[i]) for i in ids if i in paths]
    rows: list[dict[str, Any]] = []
    failures: list[tuple[int | None, str | None, str, str]] = []
    sidecar = Sidecar(cat.sidecars_dir, "exif")
    meta = _metadata("exif", cat)
    written = 0
    for image_id, row, err in imap_processes(_exif_task, items, workers=workers, progress=progress, desc="exif",
                                             inline_below=inline_below, chunksize=64):
        if row is None:
            failures.append((image_id, paths[image_id], "exif", err or "unreadable"))
            continue
        rows.append({"image_id": image_id, "fingerprint": fps[image_id], **row})
        if len(rows) >= FLUSH_ROWS:
            sidecar.write(rows, metadata=meta)
            written += len(rows)
            rows = []
    sidecar.write(rows, metadata=meta)
    written += len(rows)
    cat.images.record_failures(failures)
    return written, failures


# ---------------------------------------------------------------------------------------------- the pass
def _rows_in(parts: Iterable[Any]) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in parts)


def compute_features(
    col: CatalogLike,
    *,
    hashes: bool = True,
    quality: bool = True,
    exif: bool = True,
    embeddings: str | EmbeddingSpec | Sequence[str | EmbeddingSpec] | None = None,
    ids: Iterable[int] | None = None,
    force: bool = False,
    scan: bool = False,
    devices: int | str = 1,
    strategy: str = "auto",
    accelerator: str = "auto",
    batch_size: int = 64,
    num_workers: int | None = None,
    precision: str = "32-true",
    skip_failures: bool = True,
    progress: bool = True,
) -> FeatureReport:
    """Compute the features of every active image whose sidecar rows are missing or stale.

    Args:
        hashes, quality: run these extractors in the single-decode pass (thumbnail + features, one decode).
        exif: read EXIF headers.
        embeddings: one or more ``"MODEL:PRETRAINED"`` specs (see :func:`parse_embedding_spec`), or None.
        ids: restrict to these image ids (default: all active images).
        force: recompute even current rows.
        scan: rescan the folders first (new and changed files get their thumbnail and hashes/quality in the
            scan's own decode).
        devices, strategy, accelerator, batch_size, num_workers, precision: for the embedding pass (Lightning
            ``Trainer`` arguments; ``devices=2, strategy="ddp"`` runs two processes).
        skip_failures: record failures and go on (default). False: still finish and write every good row,
            then raise :class:`FeatureError` naming the failures.
        progress: ``tqdm.auto`` bars.

    Returns:
        A :class:`FeatureReport`.

    Raises:
        FeatureError: failures with ``skip_failures=False``; embedding weights that cannot be had (the message
            says how to provide them).
    """
    cat = as_catalog(col)
    t0 = time.perf_counter()
    report = FeatureReport()
    decode = [n for n, on in (("hashes", hashes), ("quality", quality)) if on]
    id_list = None if ids is None else sorted({int(i) for i in ids})
    if scan:  # new and changed files get thumbnail + hashes/quality in the scan's own decode
        before = {n: set(Sidecar(cat.sidecars_dir, n).parts()) for n in decode}
        scan_workspace(cat, progress=progress, decode_pass=lambda: decode_pass(cat, decode, progress=progress))
        for n in decode:
            new = [p for p in Sidecar(cat.sidecars_dir, n).parts() if p not in before[n]]
            report.computed[n] = _rows_in(new)
    if decode:
        todo: set[int] = set()
        n_active = len(current_fingerprints(cat, statuses=("active",)))
        for name in decode:
            stale = stale_ids(cat, name, id_list, force=force)
            total = len(id_list) if id_list is not None else n_active
            report.current[name] = max(0, total - len(stale) - report.computed.get(name, 0))
            todo.update(stale)
        collector = DecodeCollector(cat, decode)
        if todo:
            ThumbnailCache(cat).build(sorted(todo), progress=progress, force=True, keep_current=True,
                                      extractors=extractors_for(decode), on_result=collector)
        collector.close()
        for name in decode:
            report.computed[name] = report.computed.get(name, 0) + collector.written[name]
        report.failures.extend(collector.failures)
    if exif:
        stale = stale_ids(cat, "exif", id_list, force=force)
        written, fails = run_exif(cat, stale, progress=progress)
        report.computed["exif"] = written
        report.current["exif"] = len(current_fingerprints(cat, statuses=("active",))) - len(stale) if id_list is None \
            else len(id_list) - len(stale)
        report.failures.extend(fails)
    specs: list[str | EmbeddingSpec] = []
    if embeddings is not None:
        specs = [embeddings] if isinstance(embeddings, (str, EmbeddingSpec)) else list(embeddings)
    for raw in specs:
        spec = parse_embedding_spec(raw)
        from .embeddings import compute_embeddings

        stale = stale_ids(cat, spec.sidecar_name, id_list, force=force)
        written, fails = compute_embeddings(
            cat, spec, stale, devices=devices, strategy=strategy, accelerator=accelerator, batch_size=batch_size,
            num_workers=num_workers, precision=precision, progress=progress,
        )
        report.computed[spec.sidecar_name] = written
        report.current[spec.sidecar_name] = (len(id_list) if id_list is not None else
                                             len(current_fingerprints(cat, statuses=("active",)))) - len(stale)
        report.failures.extend(fails)
    for name in list(report.computed):
        sc = Sidecar(cat.sidecars_dir, name)
        if len(sc.parts()) > COMPACT_ABOVE:
            sc.compact()
    report.seconds = time.perf_counter() - t0
    if report.failures and not skip_failures:
        head = "; ".join(f"image {i} ({stage}): {reason}" for i, _, stage, reason in report.failures[:5])
        raise FeatureError(
            f"features: {len(report.failures)} image(s) failed (rows of the others were written): {head}"
            + (" ..." if len(report.failures) > 5 else "")
        )
    return report
