"""What the area modules of :mod:`imagerank.cli` share: argument types, opening a workspace, printing tables."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    import pandas as pd

    from ..collection import Collection, Match

__all__ = [
    "MinComparisons", "Workspace", "describe_match", "open_workspace", "print_frame", "ranking_text", "usage_error",
]


Workspace = Annotated[
    Path,
    typer.Argument(
        metavar="WORKSPACE", help="workspace folder (holds imagerank.toml and imagerank.db)", show_default=False
    ),
]
"""The first argument of (almost) every command."""

MinComparisons = Annotated[
    int,
    typer.Option(
        "--min-comparisons", min=0, metavar="N",
        help="only images voted on at least N times (1: leave out images only a learned prior ranks)",
    ),
]


@contextmanager
def open_workspace(workspace: Path) -> Iterator[Collection]:
    """Open the workspace for one command and close it afterwards (waiting for a live-prior refit in flight).

    Raises:
        WorkspaceNotFoundError: not an imagerank workspace.
    """
    from ..collection import open_collection

    col = open_collection(workspace)
    try:
        yield col
    finally:
        col.close()


def usage_error(message: str, param_hint: str | None = None) -> typer.BadParameter:
    """A usage error for the running command (exit status 2, one line on stderr); ``raise usage_error(...)``."""
    return typer.BadParameter(message, param_hint=param_hint)


def print_frame(df: pd.DataFrame, columns: Sequence[str] | None = None, *, empty: str = "(none)") -> None:
    """Print a DataFrame as an aligned text table without the index (floats with 3 decimals)."""
    if df.empty:
        typer.echo(empty)
        return
    if columns is not None:
        df = df[[c for c in columns if c in df.columns]]
    typer.echo(df.to_string(index=False, float_format=lambda x: f"{x:.3f}"))


def ranking_text(image_ids: Sequence[int], ranks: Sequence[int]) -> str:
    """Ids best first, ``>`` between ranks and ``=`` between ties: ``12 > 5 = 9``."""
    order = sorted(zip(ranks, image_ids))
    parts = [str(order[0][1])] if order else []
    for (prev, _), (rank, image_id) in pairwise(order):
        parts.append(("= " if rank == prev else "> ") + str(image_id))
    return " ".join(parts)


def describe_match(match: Match, verb: str = "recorded") -> str:
    """One line on a stored match: ``recorded match 7 (win, rated): 12 > 5``."""
    rated = "rated" if match.rated else "not rated"
    return f"{verb} match {match.id} ({match.kind}, {rated}): {ranking_text(match.image_ids, match.ranks)}"
