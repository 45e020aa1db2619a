"""Reading the ranking: ``leaderboard``, ``export``, ``csv``, ``images`` and ``show``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, cast

import typer

from ._shared import MinComparisons, Workspace, open_workspace, print_frame, usage_error

__all__ = ["app"]

app = typer.Typer()

_BOARD_COLUMNS = ["rank", "image_id", "mu", "sigma", "ordinal", "comparison_count", "filename"]


@app.command("leaderboard")
def leaderboard(
    workspace: Workspace,
    top: Annotated[int, typer.Option("-n", "--top", min=1, help="how many images to print")] = 20,
    min_comparisons: MinComparisons = 0,
    include_inactive: Annotated[
        bool, typer.Option("--include-inactive", help="rank missing, corrupt and rejected images too")
    ] = False,
) -> int:
    """Print the top images by their leaderboard score.

    The score is OpenSkill's ordinal mu - 3*sigma, or in the consistent-judge mode (a judge whose votes agree
    with each other, or `[pairing] posterior = on`) the EP posterior's mean - 1 SD, printed as the score column
    after the ordinal.
    Columns: rank, image_id, mu, sigma, ordinal, [score,] comparison_count, filename. A rank marked * is an image
    ranked by the learned prior alone (never voted on); --min-comparisons 1 leaves those out.
    """
    with open_workspace(workspace, reads_only=True) as col:
        board = col.leaderboard(top, min_comparisons=min_comparisons, include_inactive=include_inactive,
                                prior_only=True)
    marked = board["prior_only"].to_numpy(bool) if len(board) else None
    if marked is not None and marked.any():
        board["rank"] = [f"{r}*" if m else str(r) for r, m in zip(board["rank"], marked)]
    columns = _BOARD_COLUMNS if "score" not in board.columns else [*_BOARD_COLUMNS[:5], "score", *_BOARD_COLUMNS[5:]]
    print_frame(board, columns, empty="no images")
    if marked is not None and marked.any():
        typer.echo(f"* ranked by the learned prior alone, never voted on ({int(marked.sum())} of {len(board)}); "
                   "--min-comparisons 1 leaves them out")
    return 0


@app.command("export")
def export(
    workspace: Workspace,
    top: Annotated[int | None, typer.Option("--top", min=1, metavar="N", help="export the top N")] = None,
    above: Annotated[
        float | None,
        typer.Option("--above", metavar="SCORE",
                     help="export every image whose leaderboard score is >= this: OpenSkill's ordinal mu - 3*sigma, "
                          "or in the consistent-judge mode the EP posterior's mean - 1 SD (the leaderboard's score "
                          "column)"),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="destination folder (default WORKSPACE/exports/...)")
    ] = None,
    mode: Annotated[
        Literal["copy", "symlink", "hardlink"], typer.Option("--mode", help="how to write")
    ] = "copy",
    min_comparisons: MinComparisons = 0,
) -> int:
    """Export the best images as 0001_name.ext files.

    The top N (--top) or every image whose leaderboard score is above a threshold (--above): the score the
    leaderboard ranks by and prints, OpenSkill's ordinal mu - 3*sigma, or in the consistent-judge mode the EP
    posterior's mean - 1 SD (its score column).
    Exactly one of --top and --above is required. Source files are never modified.
    Every rank is attempted; exit status 1 when some could not be written (each listed with its reason).
    """
    if (top is None) == (above is None):
        raise usage_error("exactly one of --top N and --above SCORE is required", "--top / --above")
    with open_workspace(workspace, reads_only=True) as col:
        if top is not None:
            rep = col.export_top(top, out, mode=mode, min_comparisons=min_comparisons)
        else:  # exactly one is set (checked above)
            rep = col.export_above(cast(float, above), out, mode=mode, min_comparisons=min_comparisons)
    typer.echo(str(rep))
    for path in rep.missing:
        typer.echo(f"  missing source: {path}")
    for fail in rep.failed:
        typer.echo(f"  failed: rank {fail.rank}: {fail.source}: {fail.reason}")
    return 1 if rep.failed else 0


@app.command("csv")
def csv(
    workspace: Workspace,
    out: Annotated[
        Path | None, typer.Option("--out", help="CSV path (default WORKSPACE/exports/leaderboard-<time>.csv)")
    ] = None,
) -> int:
    """Write the leaderboard of every image to a CSV file.

    An existing file is never overwritten (exit status 2); a failed write (a full disk) leaves no file.
    """
    with open_workspace(workspace, reads_only=True) as col:
        typer.echo(f"wrote {col.to_csv(out)}")
    return 0


@app.command("images")
def images(
    workspace: Workspace,
    status: Annotated[
        Literal["active", "missing", "corrupt", "rejected"] | None,
        typer.Option("--status", help="only images with this status"),
    ] = None,
    limit: Annotated[int, typer.Option("-n", "--limit", min=0, help="print at most N (0: all)")] = 0,
) -> int:
    """List the catalog's images by id.

    Columns: id, status, mu, sigma, ordinal, comparison_count, filepath.
    """
    with open_workspace(workspace, reads_only=True) as col:
        df = col.images_df(status)
    print_frame(df.head(limit) if limit else df,
                ["id", "status", "mu", "sigma", "ordinal", "comparison_count", "filepath"], empty="no images")
    return 0


@app.command("show")
def show(
    workspace: Workspace,
    image_id: Annotated[int, typer.Argument(metavar="IMAGE_ID", help="image id (see `imagerank images`)")],
) -> int:
    """Print one image's catalog row as key: value lines."""
    with open_workspace(workspace, reads_only=True) as col:
        row = col.image(image_id)
    for key, value in row.items():
        typer.echo(f"{key:>18}: {value}")
    return 0
