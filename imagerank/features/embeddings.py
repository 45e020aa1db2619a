"""CLIP image embeddings: an open_clip encoder as a LightningModule, run by ``Trainer.predict``.

The same code runs on a laptop CPU, an Apple GPU (mps), one CUDA GPU or several processes (DDP): a
:class:`ImageItems` dataset whose DataLoader workers decode and preprocess (with the model's own open_clip
transform) so the model never waits; :class:`ClipEncoder` (``predict_step`` = ``encode_image`` + L2
normalisation, float32); and :class:`ParquetShardWriter`, a ``BasePredictionWriter`` that streams each rank's
vectors into one parquet shard ``sidecars/embeddings/<model>__<pretrained>/part-<run>-r<rank>-<id>.parquet``.
The shard's metadata names the model, pretrained tag, checkpoint, image size, normalisation (mean/std,
interpolation, resize mode) and that vectors are L2-normalised.

Pixels: the image's thumbnail when it is current (the panels' 512-px JPEG), else the original decoded and
reduced exactly like a thumbnail (JPEG ``draft`` + EXIF transpose + 8-bit RGB + bilinear reduction to
``thumb_size``), so both paths give nearly the same vector; the ``source`` column says which was used.

Weights: ``pretrained`` is a tag of open_clip's registry (downloaded and cached by open_clip on first use), a
local checkpoint file, or None for random weights seeded by ``EmbeddingSpec.seed`` (identical in every process;
tests and CI use them with the tiny ``imagerank-tiny`` architecture shipped in ``model_configs/``). Without
network access a registry tag fails with a :class:`~imagerank.errors.FeatureError` that says how to pass a local
file instead.

``EmbeddingRun(devices=N, strategy="ddp")`` (N > 1, not already under a launcher such as torchrun) runs the pass
in a child ``python -m imagerank.features.embeddings JOB.json`` so Lightning's launcher can start the other ranks
from a clean entry point (this works from notebooks, tests and the CLI alike); every rank writes its own shard.
Vectors agree with a single-process run to float32 rounding (batch composition differs).

Cost: one forward pass per image (ViT-B-32 at 224 px: 4.4 GFLOPs); decoding a 512-px thumbnail is ~2-4 ms per
image in a worker.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pyarrow as pa
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from .._util import progress_enabled
from .._util.torch import quiet_lightning, resolve_accelerator
from ..catalog import Catalog, CatalogLike, as_catalog
from ..errors import FeatureError
from .pipeline import EmbeddingRun, EmbeddingSpec, parse_embedding_spec
from .sidecar import Sidecar, current_fingerprints, embedding_schema

__all__ = [
    "TINY_MODEL",
    "ClipEncoder",
    "ImageItems",
    "ParquetShardWriter",
    "compute_embeddings",
    "load_encoder",
    "resolve_weights",
]

TINY_MODEL = "imagerank-tiny"
_CONFIG_DIR = Path(__file__).parent / "model_configs"
_registered = False
_log = logging.getLogger(__name__)


def _register_configs() -> None:
    global _registered
    if not _registered:
        import open_clip

        open_clip.add_model_config(_CONFIG_DIR)
        _registered = True


def _no_weights_message(spec: EmbeddingSpec, err: BaseException) -> str:
    return (
        f"embeddings: could not get the weights {spec.model}:{spec.pretrained} from open_clip's pretrained registry "
        f"({type(err).__name__}: {str(err)[:300]}). Without network access, fetch them on a machine that has it "
        f"(`python -c \"import open_clip; open_clip.create_model('{spec.model}', pretrained='{spec.pretrained}')\"` "
        "caches the file under ~/.cache/huggingface/hub), copy the checkpoint file over and pass its path: "
        f"`imagerank features WORKSPACE --embeddings {spec.model}:/path/to/open_clip_model.safetensors` "
        f"(or Collection.compute_features(embeddings='{spec.model}:/path/to/open_clip_model.safetensors')). "
        f"For a quick test without weights use `--embeddings {spec.model}:none` (random weights)."
    )


def resolve_weights(spec: EmbeddingSpec) -> dict[str, Any]:
    """Where ``spec``'s weights come from, downloading a registry tag (open_clip caches it) if needed.

    Returns:
        ``{"checkpoint": local file or None, "preprocess": {mean, std, interpolation, resize_mode ...} from the
        registry entry (empty otherwise)}``.

    Raises:
        FeatureError: unknown model, unknown tag, missing file, or the download failed (no network); the
            message lists the choices or says how to provide weights.
    """
    import open_clip

    _register_configs()
    if not spec.model.startswith(("hf-hub:", "local-dir:")) and spec.model not in open_clip.list_models():
        near = [m for m in open_clip.list_models() if spec.model.lower()[:5] in m.lower()][:12]
        raise FeatureError(
            f"embeddings: unknown open_clip model {spec.model!r}; see open_clip.list_models() "
            f"(close names: {', '.join(near) or 'none'}; the tiny test model is {TINY_MODEL!r})"
        )
    if spec.pretrained is None:
        return {"checkpoint": None, "preprocess": {}}
    p = spec.pretrained
    if os.path.isfile(p):
        return {"checkpoint": os.path.abspath(p), "preprocess": {}}
    if os.sep in p or "/" in p or p.endswith((".safetensors", ".bin", ".pt", ".pth", ".ckpt")):
        raise FeatureError(f"embeddings: checkpoint file {p!r} does not exist (pretrained for {spec.model})")
    cfg = open_clip.get_pretrained_cfg(spec.model, p)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(spec.model)
        raise FeatureError(
            f"embeddings: {p!r} is neither a pretrained tag of {spec.model} (known: {', '.join(tags) or 'none'}) "
            "nor an existing checkpoint file"
        )
    try:
        from open_clip.pretrained import download_pretrained

        path = download_pretrained(cfg)
    except Exception as e:  # network errors come in many types (OSError, HTTPError, RuntimeError ...)
        raise FeatureError(_no_weights_message(spec, e)) from e
    if not path or not os.path.isfile(path):
        raise FeatureError(_no_weights_message(spec, FileNotFoundError(f"no file for tag {p!r}")))
    keys = ("mean", "std", "interpolation", "resize_mode", "fill_color")
    return {"checkpoint": path, "preprocess": {k: cfg[k] for k in keys if k in cfg}}


def load_encoder(spec: EmbeddingSpec, weights: dict[str, Any] | None = None) -> tuple[torch.nn.Module, Any, dict]:
    """Build ``spec``'s open_clip model (eval mode, CPU) and its inference transform.

    Args:
        weights: the result of :func:`resolve_weights` (computed when None).

    Returns:
        (model, preprocess, info): ``preprocess`` maps a PIL image to a (3, S, S) float32 tensor; ``info`` is
        the metadata written with the vectors (model, pretrained, tag, checkpoint, image_size, mean, std,
        interpolation, resize_mode, dim, normalised="l2", open_clip version).

    Raises:
        FeatureError: see :func:`resolve_weights`; a checkpoint that does not fit the architecture.
    """
    import open_clip

    weights = resolve_weights(spec) if weights is None else weights
    _register_configs()
    kwargs: dict[str, Any] = {"pretrained": weights["checkpoint"], "device": "cpu"}
    if weights.get("preprocess"):
        kwargs["force_preprocess_cfg"] = weights["preprocess"]
    with quiet_lightning(root=True), torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(spec.model, **kwargs)
        except FeatureError:
            raise
        except Exception as e:
            what = f"checkpoint {weights['checkpoint']}" if weights["checkpoint"] else "random weights"
            raise FeatureError(f"embeddings: cannot build {spec.model} with {what}: {type(e).__name__}: {e}") from e
    model.eval()
    pcfg = open_clip.get_model_preprocess_cfg(model)
    size = pcfg.get("size", 224)
    size = list(size) if isinstance(size, (tuple, list)) else [int(size), int(size)]
    with torch.no_grad():
        dim = int(model.encode_image(torch.zeros(1, 3, size[0], size[1])).shape[-1])
    info = {
        "model": spec.model,
        "pretrained": spec.pretrained,
        "tag": spec.tag,
        "seed": spec.seed if spec.pretrained is None else None,
        "checkpoint": weights["checkpoint"],
        "image_size": size,
        "mean": [float(v) for v in pcfg.get("mean", ())],
        "std": [float(v) for v in pcfg.get("std", ())],
        "interpolation": pcfg.get("interpolation"),
        "resize_mode": pcfg.get("resize_mode"),
        "dim": dim,
        "dtype": "float32",
        "normalised": "l2",
        "open_clip_version": open_clip.__version__,
    }
    return model, preprocess, info


# ---------------------------------------------------------------------------------------------- data
class ImageItems(Dataset):
    """Images to embed, decoded and preprocessed in DataLoader workers.

    Args:
        items: (image_id, fingerprint, path, source) per image; ``source`` is ``"thumbnail"`` (path is the
            current thumbnail) or ``"original"``.
        transform: the model's preprocess (PIL RGB -> (3, S, S) float32 tensor).
        image_size: (S_h, S_w) of the transform's output (for the zero tensor of a failed item).
        thumb_size: originals are reduced to this longest side first, like a thumbnail.

    Each item is ``{"index", "pixels", "ok", "error"}``; a file that cannot be decoded gives ``ok=False`` and
    zeros (the writer records it as a failure), never an exception.
    """

    def __init__(
        self,
        items: Sequence[tuple[int, str, str, str]],
        transform: Any,
        image_size: Sequence[int],
        thumb_size: int = 512,
        max_pixels: int = 178_956_970,
    ) -> None:
        self.items = list(items)
        self.transform = transform
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.thumb_size = int(thumb_size)
        self.max_pixels = int(max_pixels)

    def __len__(self) -> int:
        return len(self.items)

    def load(self, i: int) -> Image.Image:
        """The RGB image of item ``i`` (thumbnail, or original reduced like a thumbnail)."""
        from ..media import decode_image, reduce_like_thumbnail

        _, _, path, source = self.items[i]
        if source == "thumbnail":
            with Image.open(path) as im:
                return im.convert("RGB")
        rgb, _, _ = decode_image(path, self.thumb_size, self.max_pixels)
        return reduce_like_thumbnail(rgb, self.thumb_size)

    def __getitem__(self, i: int) -> dict[str, Any]:
        try:
            x = self.transform(self.load(i))
            return {"index": i, "pixels": x, "ok": True, "error": ""}
        except Exception as e:  # recorded as a failure of this image by the writer
            return {"index": i, "pixels": torch.zeros(3, *self.image_size), "ok": False,
                    "error": f"{type(e).__name__}: {e}"[:500]}


# ---------------------------------------------------------------------------------------------- model
class ClipEncoder(L.LightningModule):
    """Wraps an open_clip model for ``Trainer.predict``: (B, 3, S, S) pixels -> (B, D) float32, L2-normalised.

    Args:
        model: an open_clip model (anything with ``encode_image``), handed in already built.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        feats = self.model.encode_image(pixels)  # type: ignore[operator]
        return torch.nn.functional.normalize(feats.float(), dim=-1)

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        return {"index": batch["index"], "embedding": self(batch["pixels"]), "ok": batch["ok"],
                "error": batch["error"]}


class ParquetShardWriter(BasePredictionWriter):
    """Streams each rank's predictions into one parquet shard (plus a hidden JSON-lines file of failures).

    Args:
        out_dir: the sidecar folder (``sidecars/embeddings/<model>__<tag>``).
        run: the run's ``<time_ns>-<id>`` (all ranks share it, so shards of one run sort together).
        items: the dataset's items (to map ``index`` to image id and fingerprint).
        metadata: JSON-able facts for the parquet file metadata.
        dim: vector length D.
    """

    def __init__(self, out_dir: Path, run: str, items: Sequence[tuple[int, str, str, str]], metadata: dict,
                 dim: int) -> None:
        super().__init__(write_interval="batch")
        self.out_dir = Path(out_dir)
        self.run = run
        self.items = items
        self.metadata = metadata
        self.schema = embedding_schema(dim)
        self.dim = dim
        self._writer: Any = None
        self._tmp: Path | None = None
        self._rows = 0
        self._rank = 0

    def _paths(self, rank: int) -> tuple[Path, Path, Path]:
        stamp, rid = self.run.split("-", 1)
        name = f"part-{stamp}-r{rank:03d}-{rid}.parquet"
        return (self.out_dir / name, self.out_dir / f".{name}.tmp",
                self.out_dir / f".failures-{self.run}-r{rank:03d}.jsonl")

    def write_on_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, prediction: Any,
                           batch_indices: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        import pyarrow.parquet as pq

        rank = trainer.global_rank
        self._rank = rank
        _, tmp, fails = self._paths(rank)
        index = prediction["index"].cpu().numpy().tolist()
        ok = prediction["ok"].cpu().numpy().astype(bool).tolist()
        vecs = prediction["embedding"].detach().to("cpu", torch.float32).numpy()
        bad = [(self.items[i], err) for i, good, err in zip(index, ok, prediction["error"]) if not good]
        if bad:
            with open(fails, "a", encoding="utf-8") as f:
                for (image_id, _, path, _), err in bad:
                    f.write(json.dumps({"image_id": image_id, "filepath": path, "reason": err}) + "\n")
        keep = [k for k, good in enumerate(ok) if good]
        if not keep:
            return
        now_ms = time.time_ns() // 1_000_000
        flat = pa.array(np.ascontiguousarray(vecs[keep]).reshape(-1), pa.float32())
        table = pa.Table.from_arrays(
            [
                pa.array([self.items[index[k]][0] for k in keep], pa.int64()),
                pa.array([self.items[index[k]][1] for k in keep], pa.string()),
                pa.array([now_ms] * len(keep), pa.timestamp("ms", tz="UTC")),
                pa.FixedSizeListArray.from_arrays(flat, self.dim),
                pa.array([self.items[index[k]][3] for k in keep], pa.string()),
            ],
            schema=self.schema,
        )
        if self._writer is None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            meta = {**self.metadata, "rank": rank, "world_size": trainer.world_size,
                    "written_at": datetime.now(timezone.utc).isoformat()}
            schema = self.schema.with_metadata({b"imagerank": json.dumps(meta).encode()})
            self._tmp = tmp
            self._writer = pq.ParquetWriter(tmp, schema, compression="zstd")
        self._writer.write_table(table.replace_schema_metadata(self._writer.schema.metadata))
        self._rows += len(keep)

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._writer is not None and self._tmp is not None:
            self._writer.close()
            os.replace(self._tmp, self._paths(trainer.global_rank)[0])
            self._writer = None


# ---------------------------------------------------------------------------------------------- running
def _items_for(cat: Catalog, ids: Sequence[int]) -> list[tuple[int, str, str, str]]:
    from ..media import thumb_path

    wanted = set(int(i) for i in ids)
    fps = current_fingerprints(cat)
    size = cat.settings.thumb_size
    items = []
    for r in cat.db.query("SELECT id, filepath, thumb_fingerprint FROM images WHERE status='active' ORDER BY id"):
        i = int(r[0])
        if i not in wanted:
            continue
        fp = fps[i]
        tp = thumb_path(cat.thumbs_dir, i, fp, size)
        if r[2] == fp and tp.exists():
            items.append((i, fp, str(tp), "thumbnail"))
        else:
            items.append((i, fp, r[1], "original"))
    return items


def _needs_launch(devices: int | str, strategy: str) -> bool:
    """True when a DDP run must be started from a clean entry point (not already under a launcher)."""
    n = devices if isinstance(devices, int) else (int(devices) if str(devices).isdigit() else 1)
    if n <= 1 or strategy not in ("ddp", "auto"):
        return False
    return "LOCAL_RANK" not in os.environ and "SLURM_PROCID" not in os.environ


def run_job(job: dict[str, Any], callbacks: Sequence[Any] = ()) -> None:
    """Run one embedding job (a dict as written by :func:`compute_embeddings`) in this process.

    Under DDP every rank calls this with the same job; each writes its own shard. ``callbacks`` are added to
    the Trainer's (the benchmark times batches with one).
    """
    import pyarrow.parquet as pq

    spec = EmbeddingSpec(job["model"], job["pretrained"], job.get("seed", 0))
    model, preprocess, info = load_encoder(spec, job["weights"])
    t = pq.read_table(job["items"])
    items = list(zip(t.column("image_id").to_pylist(), t.column("fingerprint").to_pylist(),
                     t.column("path").to_pylist(), t.column("source").to_pylist()))
    ds = ImageItems(items, preprocess, info["image_size"], job["thumb_size"], job["max_pixels"])
    accelerator = resolve_accelerator(job["accelerator"])
    workers = job["num_workers"]
    if workers is None:
        workers = max(1, min(8, (os.cpu_count() or 2) - 1))
    devices = job["devices"]
    strategy = job["strategy"]
    n_dev = devices if isinstance(devices, int) else 1
    if strategy == "auto" and n_dev > 1:
        strategy = "ddp"
    if accelerator == "cpu" and n_dev > 1:  # share the cores between the ranks
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // n_dev))
    loader = DataLoader(
        ds, batch_size=job["batch_size"], shuffle=False, num_workers=workers, pin_memory=accelerator == "cuda",
        prefetch_factor=4 if workers else None, persistent_workers=False,
    )
    writer = ParquetShardWriter(Path(job["out_dir"]), job["run"], items, {**job["metadata"], **info}, info["dim"])
    with quiet_lightning(root=True):
        trainer = L.Trainer(
            accelerator=accelerator, devices=devices, strategy=strategy, precision=job["precision"], logger=False,
            enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=job["progress"],
            callbacks=[writer, *callbacks], default_root_dir=job["out_dir"], inference_mode=True,
        )
        trainer.predict(ClipEncoder(model), dataloaders=loader, return_predictions=False)


def compute_embeddings(
    col: CatalogLike,
    spec: EmbeddingSpec | str,
    ids: Sequence[int],
    *,
    run: EmbeddingRun | None = None,
    progress: bool = True,
    callbacks: Sequence[Any] = (),
) -> tuple[int, list[tuple[int | None, str | None, str, str]]]:
    """Embed the images ``ids`` of ``col`` and append the vectors to their sidecar.

    Args:
        spec: the encoder (``"MODEL:PRETRAINED"`` or an :class:`EmbeddingSpec`).
        ids: image ids (active ones are embedded; use :func:`imagerank.features.pipeline.stale_ids`).
        run: devices, strategy, accelerator, batch size, DataLoader workers and precision
            (:class:`~imagerank.features.pipeline.EmbeddingRun`; default one device, the best accelerator).
        callbacks: extra Lightning callbacks (single-process runs only).

    Returns:
        (rows written, failures as (image_id, filepath, "embeddings", reason)); failures are also recorded in
        the catalog.

    Raises:
        FeatureError: weights unavailable (the message says how to provide them), or the run failed.
    """
    cat = as_catalog(col)
    import pyarrow.parquet as pq

    spec = parse_embedding_spec(spec)
    run = run if run is not None else EmbeddingRun()
    items = _items_for(cat, ids)
    if not items:
        return 0, []
    weights = resolve_weights(spec)  # fail fast, in this process, with the clear message
    sidecar = Sidecar(cat.sidecars_dir, spec.sidecar_name)
    out = sidecar.path
    out.mkdir(parents=True, exist_ok=True)
    tag = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
    items_path = out / f".items-{tag}.parquet"
    pq.write_table(pa.table({
        "image_id": pa.array([it[0] for it in items], pa.int64()),
        "fingerprint": [it[1] for it in items],
        "path": [it[2] for it in items],
        "source": [it[3] for it in items],
    }), items_path)
    job = {
        "model": spec.model, "pretrained": spec.pretrained, "seed": spec.seed, "weights": weights,
        "items": str(items_path), "out_dir": str(out), "run": tag, "thumb_size": cat.settings.thumb_size,
        "max_pixels": cat.settings.max_image_pixels, "devices": run.devices, "strategy": run.strategy,
        "accelerator": run.accelerator, "batch_size": int(run.batch_size), "num_workers": run.num_workers,
        "precision": run.precision, "progress": progress_enabled(progress, sys.stdout),
        "metadata": {"sidecar": spec.sidecar_name, "schema_version": 1, "source_size": cat.settings.thumb_size},
    }
    job_path = out / f".job-{tag}.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    try:
        if _needs_launch(run.devices, run.strategy):
            env = dict(os.environ)
            env.setdefault("PYTHONWARNINGS", "ignore")
            proc = subprocess.run(
                [sys.executable, "-m", "imagerank.features.embeddings", str(job_path)],
                env=env, stdout=None if progress else subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )
            if proc.returncode != 0:
                raise FeatureError(
                    f"embeddings: the {run.devices}-process {run.strategy} run failed (exit {proc.returncode}): "
                    f"{(proc.stderr or '').strip()[-1500:]}"
                )
        else:
            run_job(job, callbacks)
        failures: list[tuple[int | None, str | None, str, str]] = []
        for f in sorted(out.glob(f".failures-{tag}-r*.jsonl")):
            for line in f.read_text(encoding="utf-8").splitlines():
                rec = json.loads(line)
                failures.append((rec["image_id"], rec["filepath"], "embeddings", rec["reason"]))
        written = 0
        for shard in out.glob(f"part-{tag.split('-')[0]}-r*-{tag.split('-')[1]}.parquet"):
            written += pq.ParquetFile(shard).metadata.num_rows
    finally:
        leftovers = [*out.glob(f".failures-{tag}-r*.jsonl"), *out.glob(f".part-*{tag.split('-')[1]}*.tmp")]
        for f in [items_path, job_path, *leftovers]:
            f.unlink(missing_ok=True)
    cat.images.record_failures(failures)
    return written, failures


def embed_images(
    images: Sequence[Image.Image], spec: EmbeddingSpec | str, *, batch_size: int = 32
) -> tuple[np.ndarray, dict[str, Any]]:
    """Embed in-memory PIL images in this process (no sidecar): ((N, D) float32 L2-normalised, info)."""
    spec = parse_embedding_spec(spec)
    model, preprocess, info = load_encoder(spec)
    out = []
    with torch.inference_mode():
        for s in range(0, len(images), batch_size):
            x = torch.stack([preprocess(im.convert("RGB")) for im in images[s : s + batch_size]])
            out.append(ClipEncoder(model)(x).numpy())
    dim = info["dim"]
    return (np.concatenate(out) if out else np.zeros((0, dim), np.float32)).astype(np.float32), info


def _main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m imagerank.features.embeddings JOB.json", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    try:
        run_job(job)
    except FeatureError as e:
        print(f"imagerank embeddings: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
