"""Workspace commands: ``init``, ``demo``, ``scan``, ``thumbnails``, ``stats``, ``doctor``, ``replay``,
``failures`` and ``lab``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from ._shared import Workspace, open_workspace, print_frame

__all__ = ["app"]

app = typer.Typer()


@app.command("init")
def init_workspace(
    workspace: Annotated[
        Path, typer.Argument(metavar="WORKSPACE", help="workspace folder to create (may exist already)")
    ],
    images: Annotated[
        list[Path] | None,
        typer.Option("--images", metavar="DIR", help="image folder (repeatable)"),
    ] = None,
    no_recursive: Annotated[bool, typer.Option("--no-recursive", help="do not walk sub-folders")] = False,
    ext: Annotated[
        list[str] | None,
        typer.Option("--ext", metavar=".EXT", help="image suffix (repeatable; default .jpg .jpeg .png .webp)"),
    ] = None,
    scan: Annotated[bool, typer.Option("--scan", help="scan right away")] = False,
) -> int:
    """Create a workspace over image folders.

    Writes imagerank.toml and imagerank.db into WORKSPACE.
    The image files stay where they are and are never modified. Run again to add folders.
    """
    from ..collection import init

    col = init(workspace, [str(p) for p in images or ()], recursive=not no_recursive, extensions=ext or None)
    try:
        typer.echo(f"workspace {col.root} over {len(col.settings.roots)} folder(s)")
        if scan:
            typer.echo(col.scan().describe(limit=20))
    finally:
        col.close()
    return 0


@app.command("demo")
def demo(
    workspace: Annotated[
        Path, typer.Argument(metavar="WORKSPACE", help="workspace folder to create (or open, when it exists)")
    ],
    n: Annotated[int, typer.Option("-n", min=2, help="number of images")] = 300,
    seed: Annotated[int, typer.Option("--seed", help="generator seed: the same seed gives the same images")] = 0,
) -> int:
    """Generate the demo collection and scan it.

    About 300 deterministic procedural images (bursts, near-duplicates, defects).
    Idempotent: an existing demo workspace is opened as it is (votes kept).
    """
    from ..demo import make_demo

    col = make_demo(workspace, n=n, seed=seed)
    try:
        typer.echo(f"demo workspace {col.root}: {col.stats()['images']} images")
    finally:
        col.close()
    return 0


@app.command("scan")
def scan(
    workspace: Workspace,
    no_thumbnails: Annotated[bool, typer.Option("--no-thumbnails", help="do not build thumbnails")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="no progress bars")] = False,
) -> int:
    """Find new, changed and missing files; build thumbnails.

    Lists the files it could not read and what it skipped (hidden folders, other extensions) with the reason
    (the first 20 of each), and how to include skipped image files.
    """
    with open_workspace(workspace) as col:
        typer.echo(col.scan(thumbnails=not no_thumbnails, progress=not no_progress).describe(limit=20))
    return 0


@app.command("thumbnails")
def thumbnails(
    workspace: Workspace,
    force: Annotated[bool, typer.Option("--force", help="rebuild current thumbnails too")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="no progress bars")] = False,
) -> int:
    """Build missing or stale thumbnails.

    Images that cannot be decoded are marked corrupt.
    """
    with open_workspace(workspace) as col:
        written, corrupt = col.build_thumbnails(force=force, progress=not no_progress)
    typer.echo(f"{written} thumbnails written, {corrupt} images marked corrupt")
    return 0


@app.command("stats")
def stats(workspace: Workspace) -> int:
    """Totals: images by status, comparisons, sessions."""
    with open_workspace(workspace, reads_only=True) as col:
        for key, value in col.stats().items():
            typer.echo(f"{key:>14}: {value}")
    return 0


@app.command("doctor")
def doctor(
    workspace: Workspace,
    fix: Annotated[
        bool, typer.Option("--fix", help="store the replayed ratings when they differ; retry corrupt images")
    ] = False,
) -> int:
    """Check the catalog integrity and the stored ratings.

    Runs SQLite's integrity check and replays the vote log: replayed ratings must equal stored ratings.
    With --fix, also decodes every corrupt image again (those readable now become active).
    Exit status 1 when a check fails (0 with --fix once the ratings are corrected).
    """
    with open_workspace(workspace, reads_only=not fix) as col:
        rep = col.doctor()
        typer.echo(str(rep))
        if fix:
            ids = col.images.retry_corrupt()
            if ids:
                _, still = col.build_thumbnails(ids, progress=False)
                typer.echo(f"retried {len(ids)} corrupt images: {len(ids) - still} readable now, {still} still "
                           "corrupt (`imagerank failures` lists why)")
        if not rep.ok and fix and rep.integrity == "ok":
            typer.echo(f"replayed: {col.votes.replay()} images corrected")
            return 0
    return 0 if rep.ok else 1


@app.command("replay")
def replay(workspace: Workspace) -> int:
    """Recompute and store every rating from the vote log.

    Replays the kept matches from the priors; prints how many stored ratings changed.
    """
    with open_workspace(workspace) as col:
        typer.echo(f"replayed the vote log: {col.votes.replay()} images changed")
    return 0


@app.command("failures")
def failures(
    workspace: Workspace,
    last: Annotated[int, typer.Option("-n", "--last", min=0, help="show the last N (0: all)")] = 20,
) -> int:
    """List recorded failures of batch passes.

    Scan, thumbnails, features and imports record each image they could not handle.
    """
    with open_workspace(workspace, reads_only=True) as col:
        df = col.images.failures_df()
    typer.echo(f"{len(df)} failures recorded")
    if len(df):
        print_frame(df.tail(last) if last else df, ["image_id", "stage", "filepath", "reason", "created_at"])
    return 0


@app.command("lab")
def lab(
    workspace: Annotated[
        Path | None, typer.Argument(metavar="WORKSPACE", help="workspace folder (default from settings)")
    ] = None,
    notebooks: Annotated[Path, typer.Option("--notebooks", help="notebook folder")] = Path("notebooks"),
    port: Annotated[int | None, typer.Option("--port", help="port (default from settings)")] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="address to bind (default from settings: 127.0.0.1)")
    ] = None,
) -> int:
    """Start JupyterLab on the voting notebook.

    Opens NOTEBOOKS/01_vote.ipynb with IMAGERANK_WORKSPACE set to WORKSPACE.
    """
    from ..config import load_settings

    cfg = load_settings(workspace) if workspace else load_settings()
    env = dict(os.environ)
    if workspace:
        env["IMAGERANK_WORKSPACE"] = str(Path(workspace).resolve())
    cmd = [
        sys.executable, "-m", "jupyter", "lab", str(notebooks / "01_vote.ipynb"),
        f"--ServerApp.ip={host or cfg.host}", f"--ServerApp.port={port or cfg.port}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Containers and CI machines often run as root; JupyterLab refuses that unless told.
        typer.echo("imagerank lab: running as root (container?); starting JupyterLab with allow_root", err=True)
        cmd.append("--ServerApp.allow_root=True")
    return subprocess.call(cmd, env=env)
