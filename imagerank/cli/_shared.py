"""What the area modules of :mod:`imagerank.cli` share: argument types, opening a workspace, printing tables."""

from __future__ import annotations

import errno
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
    "MinComparisons", "Workspace", "describe_match", "open_workspace", "print_frame", "ranking_text", "storage_faults",
    "usage_error",
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
def open_workspace(workspace: Path, *, reads_only: bool = False) -> Iterator[Collection]:
    """Open the workspace for one command and close it afterwards (waiting for a live-prior refit in flight).

    A full disk or a failing disk met by the command (``ENOSPC``, ``EIO``, SQLite's "database or disk is full")
    is raised as :class:`~imagerank.errors.StorageError` naming the file and the reason, which the CLI prints as
    one line (exit status 2).

    Args:
        workspace: the workspace folder.
        reads_only: the command only reads the catalog (stats, leaderboard, csv ...): when the workspace cannot be
            written, it is opened read-only (SQLite ``mode=ro``) instead of refused. A writable workspace is
            opened as usual, so its schema is migrated and SQLite tidies its ``-wal`` file on close.

    Raises:
        WorkspaceNotFoundError: not an imagerank workspace. DatabaseReadOnlyError: the workspace cannot be
            written and the command writes. StorageError: the disk is full or failing.
    """
    from ..collection import open_collection
    from ..errors import DatabaseReadOnlyError

    with storage_faults(Path(workspace) / "imagerank.db"):
        try:
            col = open_collection(workspace)
        except DatabaseReadOnlyError:
            if not reads_only:
                raise
            col = open_collection(workspace, read_only=True)
        try:
            yield col
        finally:
            col.close()


_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EFBIG)


@contextmanager
def storage_faults(catalog: Path | None = None) -> Iterator[None]:
    """Raise a full or failing disk met inside the block as :class:`~imagerank.errors.StorageError` (an
    ``OSError`` with errno ``ENOSPC``, ``EDQUOT``, ``EIO``, ``EROFS`` or ``EFBIG``, or a "No space left on device"
    from pyarrow; an SQLite "database or disk is full" / "disk I/O error" not raised through ``catalog``'s
    connection), naming the file and the system's reason; every other exception passes unchanged."""
    import sqlite3

    from ..catalog.db import storage_error
    from ..errors import ImagerankError, StorageError

    try:
        yield
    except ImagerankError:
        raise
    except sqlite3.OperationalError as e:
        mapped = storage_error(str(catalog or "of this workspace"), e)
        if mapped is None:
            raise
        raise mapped from e
    except OSError as e:
        if e.errno not in _DISK_ERRNOS and "No space left on device" not in str(e):
            raise
        where = f" {e.filename}" if e.filename else ""
        err = StorageError(f"cannot write{where}: {e.strerror or e}; free some space or fix the disk and rerun")
        err.errno = e.errno
        raise err from e


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
