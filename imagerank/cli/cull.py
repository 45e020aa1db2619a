"""The ``cull`` command: buckets, manifest, summary and export list for a photo shoot (:func:`imagerank.cull.cull`)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Literal

import typer

from ..errors import InvalidArgumentError
from ._shared import open_workspace, storage_faults

__all__ = ["app"]

app = typer.Typer()


@app.command("cull")
def cull(
    input_dir: Annotated[Path, typer.Argument(metavar="INPUT_DIR", help="the shoot's folder (walked recursively)",
                                              show_default=False)],
    out_dir: Annotated[Path, typer.Option("--out-dir", metavar="OUT", help="where the buckets and reports go")],
    export: Annotated[Literal["hardlink", "symlink", "copy"],
                      typer.Option("--export", help="how files are placed in the buckets")] = "hardlink",
    ext: Annotated[list[str] | None, typer.Option(
        "--ext", metavar=".NEF", help="suffixes to read (repeatable or comma-separated; default: every image and RAW "
        "suffix)")] = None,
    burst_seconds: Annotated[float | None, typer.Option(
        "--burst-seconds", help="largest gap inside a burst, seconds [settings: 2]")] = None,
    dedupe_hamming: Annotated[int | None, typer.Option(
        "--dedupe-hamming", min=0, max=64, help="dHash bits for near-duplicates [settings: 6]")] = None,
    min_sharpness: Annotated[float | None, typer.Option(
        "--min-sharpness", metavar="X", min=0.0, help="Laplacian variance under which a pick is trashed")] = None,
    max_clip: Annotated[float | None, typer.Option(
        "--max-clip", metavar="Y", min=0.0, max=1.0, help="clipped fraction over which a pick is trashed")] = None,
    faces: Annotated[bool | None, typer.Option(
        "--faces/--no-faces", help="the face / closed-eyes check (OpenCV, the [cull] extra)")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", metavar="export.txt", help="the list of kept paths [OUT/export.txt]")] = None,
    cache: Annotated[Path | None, typer.Option(
        "--cache", metavar="PATH", help="SQLite cache: a re-run reads only changed files")] = None,
    xmp: Annotated[bool, typer.Option("--xmp", help="write or merge XMP sidecars (rating, label) beside the files")
                   ] = False,
    workspace: Annotated[Path | None, typer.Option(
        "--workspace", metavar="WORKSPACE", help="use this workspace's [cull] settings and its cache")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="processes (default: every core)")] = None,
    rerank: Annotated[str | None, typer.Option(
        "--rerank", metavar="MODEL", help="rerank each burst with this learned model of the workspace's registry "
        "(trained from burst picks: train_burst_reranker; needs --workspace)")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="no progress bar")] = False,
) -> int:
    """Cull a photo shoot into OUT/best, good, maybe, trash with manifest.jsonl, summary.json and export.txt.

    Never overwrites or deletes; every file gets a bucket or a status with its reasons (manifest.jsonl).
    """
    from ..cull import cull as run

    with contextlib.ExitStack() as stack:
        reranker = None
        if rerank is not None:
            if workspace is None:
                raise InvalidArgumentError(f"--rerank {rerank}: expected --workspace WORKSPACE (the model lives in "
                                           "its registry), got none")
            from ..cull.rerank import Reranker

            col = stack.enter_context(open_workspace(workspace, reads_only=True))
            reranker = Reranker.from_workspace(col, input_dir, model=rerank)
        with storage_faults():
            df = run(input_dir, out_dir, export=export, extensions=ext, burst_seconds=burst_seconds,
                     dedupe_hamming=dedupe_hamming, min_sharpness=min_sharpness, max_clip=max_clip, faces=faces,
                     export_list=out, cache=cache, xmp=xmp, workspace=workspace, workers=workers,
                     progress=not no_progress, rerank=reranker)
    counts = df["bucket"].fillna("none").value_counts()
    parts = [f"{b} {int(counts.get(b, 0))}" for b in ("best", "good", "maybe", "trash")]
    unread = df[df["bucket"].isna()]
    if len(unread):
        parts.append(f"no bucket {len(unread)}")
    typer.echo(f"culled {len(df)} files ({df.attrs['cull']['cached']} from the cache): {', '.join(parts)}")
    if reranker is not None:
        info = df.attrs["rerank"]
        typer.echo(f"learned rerank ({info['scorer']}): {info['changed']} of {info['clusters']} bursts changed "
                   "their pick")
    for _, r in unread.iterrows():
        why = r["reasons"][0]["message"] if r["reasons"] else "no reason recorded"
        typer.echo(f"  {r['path']}: {r['status']}: {why}")
    typer.echo(f"manifest: {Path(out_dir) / 'manifest.jsonl'}")
    return 0
