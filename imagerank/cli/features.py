"""Feature commands: ``features`` (the feature pass), ``duplicates``, ``similar`` and ``feature-map``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from ._shared import Workspace, open_workspace, print_frame

__all__ = ["app"]

app = typer.Typer()


@app.command("features")
def features(
    workspace: Workspace,
    hashes: Annotated[
        bool, typer.Option("--hashes", help="pHash/dHash/wHash + file digest (single-decode pass)")
    ] = False,
    quality: Annotated[
        bool, typer.Option("--quality", help="blur, exposure, clipping, noise (single-decode pass)")
    ] = False,
    exif: Annotated[bool, typer.Option("--exif", help="capture time, camera, lens (file headers only)")] = False,
    embeddings: Annotated[
        list[str] | None,
        typer.Option(
            "--embeddings", metavar="MODEL:PRETRAINED",
            help="open_clip image embeddings, e.g. ViT-B-32:openai, ViT-B-32:/path/to/open_clip_model.safetensors, "
            "imagerank-tiny:none (random weights); repeatable",
        ),
    ] = None,
    feature: Annotated[
        list[str] | None,
        typer.Option("--feature", metavar="NAME",
                     help="another registered decode feature, e.g. cheap (the ranker's statistics); repeatable"),
    ] = None,
    devices: Annotated[str, typer.Option("--devices", help="devices (processes) for embeddings, or e.g. 0,1")] = "1",
    strategy: Annotated[str, typer.Option("--strategy", help="Lightning strategy for embeddings, e.g. ddp")] = "auto",
    accelerator: Annotated[str, typer.Option("--accelerator", help="cpu, cuda, mps or auto")] = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="images per forward pass")] = 64,
    num_workers: Annotated[
        int | None, typer.Option("--num-workers", min=0, help="DataLoader decode workers (default cores - 1)")
    ] = None,
    precision: Annotated[str, typer.Option("--precision", help="Lightning precision, e.g. 16-mixed")] = "32-true",
    scan: Annotated[bool, typer.Option("--scan", help="rescan the folders first")] = False,
    force: Annotated[bool, typer.Option("--force", help="recompute current rows too")] = False,
    no_skip_failures: Annotated[
        bool, typer.Option("--no-skip-failures", help="exit with an error when any image fails")
    ] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="no progress bars")] = False,
) -> int:
    """Compute feature sidecars (hashes, quality, EXIF, CLIP).

    New and changed files only (--force: all).
    With none of --hashes, --quality, --exif, --embeddings, --feature: hashes, quality and EXIF.
    """
    from ..features.pipeline import EmbeddingRun

    chosen = hashes or quality or exif or bool(embeddings) or bool(feature)
    run = EmbeddingRun(devices=int(devices) if devices.isdigit() else devices, strategy=strategy,
                       accelerator=accelerator, batch_size=batch_size, num_workers=num_workers, precision=precision)
    with open_workspace(workspace) as col:
        rep = col.compute_features(
            hashes=hashes or not chosen, quality=quality or not chosen, exif=exif or not chosen,
            embeddings=embeddings or None, features=tuple(feature or ()), force=force, scan=scan, run=run,
            skip_failures=not no_skip_failures, progress=not no_progress,
        )
    typer.echo(str(rep))
    for image_id, path, stage, reason in rep.failures[:20]:
        typer.echo(f"  failed: image {image_id} {path} ({stage}): {reason}")
    if len(rep.failures) > 20:
        typer.echo(f"  ... and {len(rep.failures) - 20} more (see `imagerank failures`)")
    return 0


@app.command("duplicates")
def duplicates(
    workspace: Workspace,
    method: Annotated[
        Literal["phash", "dhash", "whash", "embedding"],
        typer.Option("--method", help="hash Hamming distance or embedding cosine"),
    ] = "phash",
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="bits (hashes) or cosine (embedding); default from settings")
    ] = None,
    exact: Annotated[bool, typer.Option("--exact", help="byte-identical files only")] = False,
) -> int:
    """Print near-duplicate or exact-duplicate groups.

    By pHash (dHash, wHash) Hamming distance or embedding cosine; largest group first.
    """
    with open_workspace(workspace) as col:
        groups = col.exact_duplicates() if exact else col.near_duplicates(method, threshold=threshold)
        images = col.images_df()
    paths = dict(zip(images["id"].astype(int), images["filepath"]))
    kind = "exact duplicate" if exact else f"near-duplicate ({method})"
    typer.echo(f"{len(groups)} {kind} groups, {sum(len(g) for g in groups)} images")
    for n, group in enumerate(groups, 1):
        typer.echo(f"group {n}:")
        for image_id in group:
            typer.echo(f"  {image_id:>8}  {paths.get(image_id)}")
    return 0


@app.command("similar")
def similar(
    workspace: Workspace,
    image_id: Annotated[
        int, typer.Argument(metavar="IMAGE_ID", help="the image to match (see `imagerank images`)", show_default=False)
    ],
    k: Annotated[int, typer.Option("-k", min=1, help="how many neighbours")] = 10,
) -> int:
    """Print the images most similar to one image.

    The K active images nearest to IMAGE_ID by embedding cosine (needs `imagerank features --embeddings`).
    """
    with open_workspace(workspace) as col:
        df = col.similar(image_id, k)
    print_frame(df, ["image_id", "similarity", "filepath"], empty="no other image has an embedding")
    return 0


@app.command("feature-map")
def feature_map(
    workspace: Workspace,
    source: Annotated[
        str, typer.Option("--source", help="auto (newest embeddings, else hashes), hashes, or <model>__<pretrained>")
    ] = "auto",
    out: Annotated[
        Path | None, typer.Option("--out", help="write a CSV here (never overwritten) instead of printing")
    ] = None,
) -> int:
    """Print or write a 2-D map of the images.

    PCA of the embeddings (else of the hash bits): image_id, x, y.
    """
    with open_workspace(workspace) as col:
        df = col.feature_map("pca", source=source)
    if out is None:
        print_frame(df, empty="no images to map")
    else:
        from ..export import write_csv

        typer.echo(f"wrote {write_csv(df, out)} ({len(df)} images, source {df.attrs.get('source', source)})")
    return 0
