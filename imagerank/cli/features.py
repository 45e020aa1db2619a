"""``imagerank features`` and ``imagerank duplicates``: the feature pass and its groups from a shell."""

from __future__ import annotations

import argparse

from .main import _open, subcommand

__all__: list[str] = []


@subcommand("features", "compute feature sidecars: hashes, quality, EXIF, CLIP embeddings (new/changed files only)")
def _features(p: argparse.ArgumentParser) -> None:
    p.add_argument("workspace")
    p.add_argument("--hashes", action="store_true", help="pHash/dHash/wHash + file digest (single-decode pass)")
    p.add_argument("--quality", action="store_true", help="blur, exposure, clipping, noise (single-decode pass)")
    p.add_argument("--exif", action="store_true", help="capture time, camera, lens (file headers only)")
    p.add_argument(
        "--embeddings", action="append", metavar="MODEL:PRETRAINED",
        help="open_clip image embeddings, e.g. ViT-B-32:openai, ViT-B-32:/path/to/open_clip_model.safetensors, "
        "imagerank-tiny:none (random weights); repeatable",
    )
    p.add_argument("--devices", default="1", help="devices (processes) for embeddings (default 1)")
    p.add_argument("--strategy", default="auto", help="Lightning strategy for embeddings, e.g. ddp (default auto)")
    p.add_argument("--accelerator", default="auto", help="cpu, cuda, mps or auto (default)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--num-workers", type=int, default=None, help="DataLoader decode workers (default cores - 1)")
    p.add_argument("--scan", action="store_true", help="rescan the folders first")
    p.add_argument("--force", action="store_true", help="recompute current rows too")
    p.add_argument("--no-skip-failures", action="store_true", help="exit with an error when any image fails")
    p.add_argument("--no-progress", action="store_true")

    def run(ns: argparse.Namespace) -> int:
        from ..features.pipeline import compute_features

        col = _open(ns)
        chosen = ns.hashes or ns.quality or ns.exif or bool(ns.embeddings)
        devices: int | str = int(ns.devices) if str(ns.devices).isdigit() else ns.devices
        rep = compute_features(
            col,
            hashes=ns.hashes or not chosen,
            quality=ns.quality or not chosen,
            exif=ns.exif or not chosen,
            embeddings=ns.embeddings,
            force=ns.force,
            scan=ns.scan,
            devices=devices,
            strategy=ns.strategy,
            accelerator=ns.accelerator,
            batch_size=ns.batch_size,
            num_workers=ns.num_workers,
            skip_failures=not ns.no_skip_failures,
            progress=not ns.no_progress,
        )
        print(rep)
        for image_id, path, stage, reason in rep.failures[:20]:
            print(f"  failed: image {image_id} {path} ({stage}): {reason}")
        if len(rep.failures) > 20:
            print(f"  ... and {len(rep.failures) - 20} more (see the failures table)")
        return 0

    p.set_defaults(run=run)


@subcommand("duplicates", "print near-duplicate groups (pHash or embedding) and exact duplicates")
def _duplicates(p: argparse.ArgumentParser) -> None:
    p.add_argument("workspace")
    p.add_argument("--method", choices=["phash", "dhash", "whash", "embedding"], default="phash")
    p.add_argument("--threshold", type=float, default=None, help="bits (hashes) or cosine (embedding)")
    p.add_argument("--exact", action="store_true", help="byte-identical files only")

    def run(ns: argparse.Namespace) -> int:
        col = _open(ns)
        groups = col.exact_duplicates() if ns.exact else col.near_duplicates(ns.method, threshold=ns.threshold)
        paths = {int(r[0]): r[1] for r in col.db.query("SELECT id, filepath FROM images")}
        kind = "exact duplicate" if ns.exact else f"near-duplicate ({ns.method})"
        print(f"{len(groups)} {kind} groups, {sum(len(g) for g in groups)} images")
        for n, g in enumerate(groups, 1):
            print(f"group {n}:")
            for i in g:
                print(f"  {i:>8}  {paths.get(i)}")
        return 0

    p.set_defaults(run=run)
