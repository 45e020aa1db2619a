"""The ``imagerank`` console script: every library action reachable from a shell.

Each sub-command is a thin wrapper over :class:`imagerank.Collection` (or the module named in its help).
Exit status: 0 on success, 1 when a check fails (``doctor``), 2 on a usage or imagerank error.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ImagerankError

if TYPE_CHECKING:
    from ..collection import Collection

__all__ = ["build_parser", "main", "subcommand"]

_COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], str]] = {}


def subcommand(
    name: str, help: str
) -> Callable[[Callable[[argparse.ArgumentParser], None]], Callable[[argparse.ArgumentParser], None]]:
    """Register ``imagerank NAME``: decorate ``configure(parser)``; it must ``set_defaults(run=fn)``."""

    def wrap(configure: Callable[[argparse.ArgumentParser], None]) -> Callable[[argparse.ArgumentParser], None]:
        _COMMANDS[name] = (configure, help)
        return configure

    return wrap


def _open(ns: argparse.Namespace) -> Collection:
    from .. import open as open_collection

    return open_collection(ns.workspace)


@subcommand("init", "create a workspace (imagerank.toml + imagerank.db) over image folders")
def _init(p: argparse.ArgumentParser) -> None:
    p.add_argument("workspace")
    p.add_argument("--images", action="append", default=[], metavar="DIR", help="image folder (repeatable)")
    p.add_argument("--no-recursive", action="store_true", help="do not walk sub-folders")
    p.add_argument("--ext", action="append", metavar=".EXT", help="image suffix (repeatable)")
    p.add_argument("--scan", action="store_true", help="scan right away")

    def run(ns: argparse.Namespace) -> int:
        from .. import init

        col = init(ns.workspace, ns.images, recursive=not ns.no_recursive, extensions=ns.ext)
        print(f"workspace {col.root} over {len(col.settings.roots)} folder(s)")
        if ns.scan:
            print(col.scan())
        return 0

    p.set_defaults(run=run)


@subcommand("demo", "generate the deterministic demo collection (~300 procedural images) and scan it")
def _demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("workspace")
    p.add_argument("-n", type=int, default=300, help="number of images (default 300)")
    p.add_argument("--seed", type=int, default=0)

    def run(ns: argparse.Namespace) -> int:
        from ..demo import make_demo

        col = make_demo(ns.workspace, n=ns.n, seed=ns.seed)
        print(f"demo workspace {col.root}: {col.stats()['images']} images")
        return 0

    p.set_defaults(run=run)


@subcommand("scan", "find new, changed and missing files; build thumbnails")
def _scan(p: argparse.ArgumentParser) -> None:
    p.add_argument("workspace")
    p.add_argument("--no-thumbnails", action="store_true")

    def run(ns: argparse.Namespace) -> int:
        print(_open(ns).scan(thumbnails=not ns.no_thumbnails))
        return 0

    p.set_defaults(run=run)


@subcommand("stats", "totals: images by status, comparisons, sessions")
def _stats(p: argparse.ArgumentParser) -> None:
    p.add_argument("workspace")

    def run(ns: argparse.Namespace) -> int:
        for k, v in _open(ns).stats().items():
            print(f"{k:>14}: {v}")
        return 0

    p.set_defaults(run=run)


def _count(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


_MIN_COMPARISONS_HELP = "only images voted on at least N times (1: leave out images only a learned prior ranks)"


@subcommand("leaderboard", "print the top images by ordinal mu - 3*sigma")
def _leaderboard(p: argparse.ArgumentParser) -> None:
    p.add_argument("workspace")
    p.add_argument("-n", "--top", type=int, default=20)
    p.add_argument("--min-comparisons", type=_count, default=0, metavar="N", help=_MIN_COMPARISONS_HELP)

    def run(ns: argparse.Namespace) -> int:
        board = _open(ns).leaderboard(limit=ns.top, min_comparisons=ns.min_comparisons)
        cols = ["rank", "image_id", "mu", "sigma", "ordinal", "comparison_count", "filename"]
        print(board[cols].to_string(index=False, float_format=lambda x: f"{x:.3f}"))
        return 0

    p.set_defaults(run=run)


@subcommand("export", "export the top N (or those above an ordinal threshold) as 0001_name.ext files")
def _export(p: argparse.ArgumentParser) -> None:
    p.add_argument("workspace")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--top", type=int, metavar="N")
    g.add_argument("--above", type=float, metavar="ORDINAL")
    p.add_argument("--out", help="destination folder (default WORKSPACE/exports/...)")
    p.add_argument("--mode", choices=["copy", "symlink", "hardlink"], default="copy")
    p.add_argument("--min-comparisons", type=_count, default=0, metavar="N", help=_MIN_COMPARISONS_HELP)

    def run(ns: argparse.Namespace) -> int:
        col = _open(ns)
        if ns.top is not None:
            rep = col.export_top(ns.top, ns.out, mode=ns.mode, min_comparisons=ns.min_comparisons)
        else:
            rep = col.export_above(ns.above, ns.out, mode=ns.mode, min_comparisons=ns.min_comparisons)
        print(rep)
        for path in rep.missing:
            print(f"  missing source: {path}")
        for path, why in rep.failed:
            print(f"  failed: {path}: {why}")
        return 0

    p.set_defaults(run=run)


@subcommand("csv", "write the leaderboard of every image to a CSV file")
def _csv(p: argparse.ArgumentParser) -> None:
    p.add_argument("workspace")
    p.add_argument("--out", help="CSV path (default WORKSPACE/exports/leaderboard-<time>.csv)")

    def run(ns: argparse.Namespace) -> int:
        print(f"wrote {_open(ns).to_csv(ns.out)}")
        return 0

    p.set_defaults(run=run)


@subcommand("doctor", "check the catalog: integrity and replayed ratings == stored ratings")
def _doctor(p: argparse.ArgumentParser) -> None:
    p.add_argument("workspace")
    p.add_argument("--fix", action="store_true", help="store the replayed ratings when they differ")

    def run(ns: argparse.Namespace) -> int:
        col = _open(ns)
        rep = col.doctor()
        print(rep)
        if not rep.ok and ns.fix and rep.integrity == "ok":
            print(f"replayed: {col.votes.replay()} images corrected")
            return 0
        return 0 if rep.ok else 1

    p.set_defaults(run=run)


@subcommand("lab", "start JupyterLab on notebooks/01_vote.ipynb for this workspace")
def _lab(p: argparse.ArgumentParser) -> None:
    p.add_argument("workspace", nargs="?", default=None)
    p.add_argument("--notebooks", default="notebooks", help="notebook folder (default ./notebooks)")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--host", default=None, help="address to bind (default from settings: 127.0.0.1)")

    def run(ns: argparse.Namespace) -> int:
        from ..config import load_settings

        cfg = load_settings(ns.workspace) if ns.workspace else load_settings()
        env = dict(os.environ)
        if ns.workspace:
            env["IMAGERANK_WORKSPACE"] = str(Path(ns.workspace).resolve())
        nb_dir = Path(ns.notebooks)
        cmd = [
            sys.executable, "-m", "jupyter", "lab", str(nb_dir / "01_vote.ipynb"),
            f"--ServerApp.ip={ns.host or cfg.host}", f"--ServerApp.port={ns.port or cfg.port}",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # Containers and CI machines often run as root; JupyterLab refuses that unless told.
            print("imagerank lab: running as root (container?); starting JupyterLab with allow_root", file=sys.stderr)
            cmd.append("--ServerApp.allow_root=True")
        return subprocess.call(cmd, env=env)

    p.set_defaults(run=run)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered sub-command."""
    _load_plugins()
    parser = argparse.ArgumentParser(prog="imagerank", description="Pick the few best images out of thousands.")
    subs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (configure, help_) in _COMMANDS.items():
        configure(subs.add_parser(name, help=help_, description=help_))
    return parser


def _load_plugins() -> None:
    """Import the modules that register more sub-commands (features, training ...), when present."""
    import importlib

    for mod in ("imagerank.cli.features", "imagerank.cli.training"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if not e.name or not mod.startswith(e.name):
                raise


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``imagerank`` console script."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        return int(ns.run(ns))
    except ImagerankError as e:
        print(f"imagerank {ns.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
