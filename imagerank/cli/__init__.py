"""The ``imagerank`` command line (the top floor): a thin typer layer over the facade, one module per area.

- :mod:`.workspace`: ``init``, ``demo``, ``scan``, ``thumbnails``, ``stats``, ``doctor``, ``replay``, ``failures``,
  ``lab``;
- :mod:`.ranking`: ``leaderboard``, ``export``, ``csv``, ``images``, ``show``;
- :mod:`.voting`: ``pairs``, ``vote``, ``record``, ``undo``, ``matches``, ``sessions``, ``set-status``, ``label``;
- :mod:`.features`: ``features``, ``duplicates``, ``similar``, ``feature-map``;
- :mod:`.training`: ``train``, ``prior``, ``apply-prior``, ``train-crops``, ``import-selections``, ``import-crops``,
  ``models``, ``evaluate``;
- :mod:`.generation`: ``generate``, ``steps``, ``add-step``, ``tree``, ``jobs``;
- :mod:`.cull`: ``cull`` (a photo shoot into best / good / maybe / trash; no workspace needed);
- :mod:`.plan`: ``plan``, ``explain``;
- :mod:`.autopick`: ``autopick``, ``autopick-train``.

Exit status: 0 on success; 1 when a check finds a problem or nothing was done (``doctor``, ``undo``, imports with
rejected rows); 2 on an :class:`~imagerank.errors.ImagerankError` (one line ``imagerank CMD: error: ...`` on stderr,
no traceback) and on a usage error (raised as ``SystemExit(2)``, as argparse did, after one line on stderr).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer
from typer.core import TyperGroup

from ..errors import ImagerankError
from . import autopick, cull, features, generation, plan, ranking, training, voting, workspace

__all__ = ["app", "build_parser", "main"]

app = typer.Typer(
    name="imagerank",
    help="Pick the few best images out of thousands.\n\n"
    "Every command takes the workspace folder (imagerank.toml + imagerank.db) first. Exit status: 0 on success, "
    "1 when a check finds a problem or nothing was done (doctor, undo, imports with rejected rows), 2 on a usage "
    "error or an imagerank error (one line on stderr).",
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
for _area in (workspace, ranking, voting, features, training, generation, cull, plan, autopick):  # --help order
    app.add_typer(_area.app)


def build_parser() -> TyperGroup:
    """The click command group behind :data:`app`, every command registered (``build_parser().commands``)."""
    command = typer.main.get_command(app)
    if not isinstance(command, TyperGroup):  # pragma: no cover (an app with several commands is a group)
        raise TypeError(f"expected a TyperGroup, got {type(command).__name__}")
    return command


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``imagerank`` console script: run one command and return its exit status.

    Args:
        argv: the arguments after ``imagerank`` (default ``sys.argv[1:]``).

    Returns:
        0 on success, 1 when the command found a problem, 2 on an imagerank error, 130 when interrupted.

    Raises:
        SystemExit: code 2 on a usage error (unknown command or option, missing or bad value) after one line on
            stderr, and after the help when there are no arguments at all (as argparse did).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    group = build_parser()
    if not args:
        group.main(args=["--help"], prog_name="imagerank", standalone_mode=False)
        raise SystemExit(2)
    name = next((a for a in args if a in group.commands), None)
    prog = f"imagerank {name}" if name else "imagerank"
    try:
        rv = group.main(args=args, prog_name="imagerank", standalone_mode=False)
    except typer.TyperException as e:  # click's exceptions: usage errors have exit code 2
        ctx = getattr(e, "ctx", None)
        path = ctx.command_path if ctx is not None else prog
        message = f"{path}: error: {_one_line(e.format_message())}"
        if e.exit_code == 2:
            typer.echo(f"{message} (see `{path} --help`)", err=True)
            raise SystemExit(2) from None
        typer.echo(message, err=True)
        return int(e.exit_code)
    except typer.Abort:
        typer.echo(f"{prog}: aborted", err=True)
        return 130
    except ImagerankError as e:
        typer.echo(f"{prog}: error: {_one_line(str(e))}", err=True)
        return 2
    if rv == 130:
        typer.echo(f"{prog}: interrupted", err=True)
    return int(rv or 0)


if __name__ == "__main__":
    sys.exit(main())
