"""The ``imagerank`` command line (floor 6): a thin layer over the facade, one module per area."""

from .main import build_parser, main, subcommand

__all__ = ["build_parser", "main", "subcommand"]
