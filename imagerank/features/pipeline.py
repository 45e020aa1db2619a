"""The feature pass: find images whose sidecar rows are missing or stale, compute them, write new parts.

One decode per image feeds thumbnail, hashes, quality and any other registered decode feature (``cheap`` ...): the
pass runs the thumbnail pass (:meth:`imagerank.media.ThumbnailCache.build`) with those features' extractors
(:mod:`.registry`) on exactly the images that need them, rewriting a thumbnail only when it is stale too; each
feature's spec says how its rows are written (schema, metadata, write hook). EXIF reads file headers (no decode).
Embeddings run through Lightning (:mod:`.embeddings`), configured by an :class:`EmbeddingRun`. Each failure is
recorded in the catalog's ``failures`` table (image, file, stage, reason) and in the returned
:class:`FeatureReport`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._util.procs import imap_processes
from ..catalog import CatalogLike, as_catalog
from ..errors import FeatureError, InvalidArgumentError
from ..media import Extractor, ThumbnailCache, scan_workspace
from .registry import FEATURES, get_feature
from .sidecar import Sidecar, current_fingerprints
from .spec import FeatureContext, FeatureSpec

if TYPE_CHECKING:
    from ..media import DecodeJob, DecodeResult

__all__ = [
    "DecodeCollector",
    "EmbeddingRun",
    "EmbeddingSpec",
    "FeatureReport",
    "compute_features",
    "decode_pass",
    "parse_embedding_spec",
    "resolve_features",
    "run_exif",
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


@dataclass(frozen=True)
class EmbeddingRun:
    """How the embedding pass runs: Lightning ``Trainer`` and ``DataLoader`` settings (one object, passed as is
    from ``Collection.compute_features(run=...)`` and the CLI to :func:`.embeddings.compute_embeddings`).

    Attributes:
        devices: devices (= processes under DDP) for ``Trainer.predict``: an int >= 1, or a Lightning device
            string (``"auto"``, ``"0,1"``). ``devices=2, strategy="ddp"`` (or ``"auto"``) starts a two-process
            run from a clean entry point unless already under a launcher (torchrun, SLURM); each rank writes one
            parquet shard.
        strategy: Lightning strategy (``auto``, ``ddp`` ...); ``auto`` with more than one device means ``ddp``.
        accelerator: ``auto`` (cuda, then mps, then cpu: :func:`imagerank._util.torch.resolve_accelerator`),
            ``cpu``, ``cuda``, ``gpu``, ``mps``.
        batch_size: images per forward pass (>= 1).
        num_workers: DataLoader decode processes; None = cores - 1, at least 1, at most 8; 0 = decode in the
            main process.
        precision: Lightning precision (``32-true``, ``16-mixed``, ``bf16-mixed`` ...).

    Raises:
        InvalidArgumentError: devices < 1 or empty, batch_size < 1, num_workers < 0, or an empty string setting.
    """

    devices: int | str = 1
    strategy: str = "auto"
    accelerator: str = "auto"
    batch_size: int = 64
    num_workers: int | None = None
    precision: str = "32-true"

    def __post_init__(self) -> None:
        if isinstance(self.devices, bool) or not isinstance(self.devices, (int, str)) or \
                (isinstance(self.devices, int) and self.devices < 1) or \
                (isinstance(self.devices, str) and not self.devices.strip()):
            raise InvalidArgumentError(f"devices: expected an int >= 1 or a Lightning device string, got "
                                       f"{self.devices!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise InvalidArgumentError(f"batch_size: expected an int >= 1, got {self.batch_size!r}")
        if self.num_workers is not None and (isinstance(self.num_workers, bool)
                                             or not isinstance(self.num_workers, int) or self.num_workers < 0):
            raise InvalidArgumentError(f"num_workers: expected None or an int >= 0, got {self.num_workers!r}")
        for key in ("strategy", "accelerator", "precision"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value.strip():
                raise InvalidArgumentError(f"{key}: expected a non-empty string, got {value!r}")


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


def resolve_features(features: Iterable[str | FeatureSpec]) -> list[FeatureSpec]:
    """The specs of ``features`` (registered names or specs), in order, without repeats.

    Raises:
        InvalidArgumentError: an unknown name (the message lists the registered ones).
    """
    out: dict[str, FeatureSpec] = {}
    for f in features:
        spec = f if isinstance(f, FeatureSpec) else get_feature(str(f))
        out.setdefault(spec.name, spec)
    return list(out.values())


class DecodeCollector:
    """Collects extractor values from the thumbnail pass and writes them to the sidecars in parts.

    Passed as ``on_result`` to :meth:`imagerank.media.ThumbnailCache.build` (which records the decode and extractor
    failures in the catalog); each row goes through its feature's spec (keys, ``on_write`` hook) and the parts get
    the spec's metadata. Call :meth:`close` at the end to write what is buffered.

    Args:
        features: registered feature names or specs whose values to keep (values of other extractors are ignored).
    """

    def __init__(self, col: CatalogLike, features: Iterable[str | FeatureSpec], *,
                 flush_rows: int = FLUSH_ROWS) -> None:
        cat = as_catalog(col)
        self.cat = cat
        self.specs = {s.name: s for s in resolve_features(features)}
        self.names = tuple(self.specs)
        self.flush_rows = flush_rows
        self.rows: dict[str, list[dict[str, Any]]] = {n: [] for n in self.names}
        self.written: dict[str, int] = dict.fromkeys(self.names, 0)
        self.failures: list[tuple[int | None, str | None, str, str]] = []
        self._hook_failures: list[tuple[int | None, str | None, str, str]] = []
        self.feature_size: int | None = None

    @property
    def extractors(self) -> dict[str, Extractor]:
        """name -> extractor of the collected features that have one (for ``ThumbnailCache.build``)."""
        return {n: s.extractor for n, s in self.specs.items() if s.extractor is not None}

    def __call__(self, res: DecodeResult, job: DecodeJob) -> None:
        self.feature_size = job.feature_size
        if not res.ok:
            self.failures.append((res.image_id, job.path, "decode", res.reason or "not decodable"))
            return
        for stage, reason in res.failures.items():
            self.failures.append((res.image_id, job.path, stage, reason))
        ctx = FeatureContext(self.cat.settings, job.feature_size, res.width, res.height)
        for name, values in res.features.items():
            spec = self.specs.get(name)
            if spec is None:
                continue
            try:
                row = spec.row(res.image_id, job.fingerprint, values, ctx)
            except Exception as e:  # a broken write hook fails this feature of this image, not the pass
                fail = (res.image_id, job.path, name, f"{type(e).__name__}: {e}"[:500])
                self.failures.append(fail)
                self._hook_failures.append(fail)
                continue
            self.rows[name].append(row)
            if len(self.rows[name]) >= self.flush_rows:
                self._flush(name)

    def _flush(self, name: str) -> None:
        rows = self.rows[name]
        if rows:
            spec = self.specs[name]
            meta = spec.file_metadata(FeatureContext(self.cat.settings, self.feature_size))
            Sidecar(self.cat.sidecars_dir, name).write(rows, schema=spec.schema, metadata=meta)
            self.written[name] += len(rows)
            self.rows[name] = []

    def close(self) -> None:
        """Write every buffered row (and record write-hook failures in the catalog)."""
        for name in self.names:
            self._flush(name)
        if self._hook_failures:
            self.cat.images.record_failures(self._hook_failures)
            self._hook_failures = []


def decode_pass(
    col: CatalogLike, names: Sequence[str], *, ids: Iterable[int] | None = None, progress: bool = True,
    force: bool = False,
) -> tuple[int, int]:
    """The thumbnail pass with the registered decode features ``names`` (``hashes``, ``quality``, ``cheap`` ...)
    run on the same decode and their rows written to the sidecars; names without a registered extractor are left
    out. Returns (thumbnails written, images marked corrupt)."""
    cat = as_catalog(col)
    collector = DecodeCollector(cat, [n for n in names if n in FEATURES and FEATURES[n].extractor is not None])
    out = ThumbnailCache(cat).build(ids, progress=progress, force=force, extractors=collector.extractors,
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
    """Read the EXIF of ``ids`` (headers only, in worker processes) and write the ``exif`` sidecar.

    Returns:
        (rows written, failures as (image_id, filepath, "exif", reason)); failures are also recorded in the catalog.
    """
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
    spec = get_feature("exif")
    sidecar = Sidecar(cat.sidecars_dir, spec.name)
    meta = spec.file_metadata(FeatureContext(cat.settings))
    written = 0
    for image_id, row, err in imap_processes(_exif_task, items, workers=workers, progress=progress, desc="exif",
                                             inline_below=inline_below, chunksize=64):
        if row is None:
            failures.append((image_id, paths[image_id], "exif", err or "unreadable"))
            continue
        rows.append({"image_id": image_id, "fingerprint": fps[image_id], **row})
        if len(rows) >= FLUSH_ROWS:
            sidecar.write(rows, schema=spec.schema, metadata=meta)
            written += len(rows)
            rows = []
    sidecar.write(rows, schema=spec.schema, metadata=meta)
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
    features: Sequence[str | FeatureSpec] = (),
    ids: Iterable[int] | None = None,
    force: bool = False,
    scan: bool = False,
    run: EmbeddingRun | None = None,
    skip_failures: bool = True,
    progress: bool = True,
) -> FeatureReport:
    """Compute the features of every active image whose sidecar rows are missing or stale.

    Args:
        hashes, quality: run these extractors in the single-decode pass (thumbnail + features, one decode).
        exif: read EXIF headers.
        embeddings: one or more ``"MODEL:PRETRAINED"`` specs (see :func:`parse_embedding_spec`), or None.
        features: more decode features by registered name (``"cheap"``: the ranker's cheap-v1 statistics; see
            :func:`imagerank.features.registry.list_features`) or as a :class:`~.spec.FeatureSpec` not in the
            registry; they run in the same decode as hashes and quality. ``"exif"`` here means ``exif=True``.
        ids: restrict to these image ids (default: all active images).
        force: recompute even current rows.
        scan: rescan the folders first (new and changed files get their thumbnail and decode features in the
            scan's own decode).
        run: how the embedding pass runs (devices, strategy, accelerator, batch size, DataLoader workers,
            precision); default ``EmbeddingRun()`` (one device, the best accelerator).
        skip_failures: record failures and go on (default). False: still finish and write every good row,
            then raise :class:`FeatureError` naming the failures.
        progress: ``tqdm.auto`` bars.

    Returns:
        A :class:`FeatureReport` (``computed`` / ``current`` per sidecar name: rows written / rows already current).

    Raises:
        InvalidArgumentError: an unknown feature name, or a feature without an extractor in ``features``.
        FeatureError: failures with ``skip_failures=False``; embedding weights that cannot be had (the message
            says how to provide them).
    """
    cat = as_catalog(col)
    t0 = time.perf_counter()
    report = FeatureReport()
    extra = resolve_features(features)
    exif = exif or any(s.name == "exif" for s in extra)
    specs = resolve_features([*(n for n, on in (("hashes", hashes), ("quality", quality)) if on),
                              *(s for s in extra if s.name != "exif")])
    no_extractor = [s.name for s in specs if s.extractor is None]
    if no_extractor:
        raise InvalidArgumentError(f"features: {no_extractor} have no extractor for the decode pass")
    decode = [s.name for s in specs]
    id_list = None if ids is None else sorted({int(i) for i in ids})

    def total() -> int:  # images asked for now (a decode may just have marked some corrupt)
        return len(id_list) if id_list is not None else len(current_fingerprints(cat, statuses=("active",)))

    if scan:  # new and changed files get thumbnail + decode features in the scan's own decode
        before = {n: set(Sidecar(cat.sidecars_dir, n).parts()) for n in decode}

        def scan_decode() -> tuple[int, int]:
            collector = DecodeCollector(cat, specs)
            out = ThumbnailCache(cat).build(progress=progress, extractors=collector.extractors, on_result=collector)
            collector.close()
            return out

        scan_workspace(cat, progress=progress, decode_pass=scan_decode)
        for n in decode:
            new = [p for p in Sidecar(cat.sidecars_dir, n).parts() if p not in before[n]]
            report.computed[n] = _rows_in(new)
    if decode:
        todo: set[int] = set()
        n_asked = total()
        for name in decode:
            stale = stale_ids(cat, name, id_list, force=force)
            report.current[name] = max(0, n_asked - len(stale) - report.computed.get(name, 0))
            todo.update(stale)
        collector = DecodeCollector(cat, specs)
        if todo:
            ThumbnailCache(cat).build(sorted(todo), progress=progress, force=True, keep_current=True,
                                      extractors=collector.extractors, on_result=collector)
        collector.close()
        for name in decode:
            report.computed[name] = report.computed.get(name, 0) + collector.written[name]
        report.failures.extend(collector.failures)
    if exif:
        stale = stale_ids(cat, "exif", id_list, force=force)
        written, fails = run_exif(cat, stale, progress=progress)
        report.computed["exif"] = written
        report.current["exif"] = total() - len(stale)
        report.failures.extend(fails)
    specs_e: list[str | EmbeddingSpec] = []
    if embeddings is not None:
        specs_e = [embeddings] if isinstance(embeddings, (str, EmbeddingSpec)) else list(embeddings)
    for raw in specs_e:
        spec = parse_embedding_spec(raw)
        from .embeddings import compute_embeddings

        stale = stale_ids(cat, spec.sidecar_name, id_list, force=force)
        written, fails = compute_embeddings(cat, spec, stale, run=run, progress=progress)
        report.computed[spec.sidecar_name] = written
        report.current[spec.sidecar_name] = total() - len(stale)
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
