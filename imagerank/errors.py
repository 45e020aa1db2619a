"""Exceptions raised by imagerank.

Every error derives from :class:`ImagerankError`; subclasses are named after the condition, and their messages
name the argument, what was expected and what came.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ComfyUIError",
    "ConfigError",
    "CropError",
    "DatabaseReadOnlyError",
    "ExportError",
    "FeatureError",
    "ImagerankError",
    "ImportLogError",
    "InvalidArgumentError",
    "NoVotesError",
    "NotFoundError",
    "SchemaVersionError",
    "StorageError",
    "StrategyNotFoundError",
    "WorkspaceNotFoundError",
]


class ImagerankError(Exception):
    """Base class of every error imagerank raises on purpose."""


class InvalidArgumentError(ImagerankError, ValueError):
    """An argument has a bad value (wrong range, unknown name, wrong length); the message names the argument,
    what was expected and what came."""


class ConfigError(ImagerankError, ValueError):
    """A setting in ``imagerank.toml``, the CLI or the environment has a bad value."""


class WorkspaceNotFoundError(ImagerankError, FileNotFoundError):
    """The folder is not an imagerank workspace (no ``imagerank.db`` / ``imagerank.toml``)."""


class DatabaseReadOnlyError(ImagerankError, PermissionError):
    """The catalog database (or its folder) cannot be written."""


class StorageError(ImagerankError, OSError):
    """The disk refused a write or a read: full (``database or disk is full``, ``ENOSPC``), an I/O error, a quota.

    The message names the file (the catalog, ``imagerank.toml`` ...) and the system's own reason; what failed was
    not stored (a vote that raised this was not recorded). Free some space or fix the disk and run it again.
    ``errno`` is set when the cause was an ``OSError`` with one.
    """


class SchemaVersionError(ImagerankError):
    """The catalog was written by a newer imagerank (its ``PRAGMA user_version`` is ahead of this code)."""


class NotFoundError(ImagerankError, KeyError):
    """An image, match, session or model that was asked for does not exist."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else ""


class StrategyNotFoundError(ImagerankError, KeyError):
    """A pairing strategy name is not in the registry."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class NoVotesError(ImagerankError):
    """An operation needs votes (matches) and the collection has none that qualify."""


class ExportError(ImagerankError):
    """An export could not be written (bad destination, name escaping its folder ...)."""


class FeatureError(ImagerankError):
    """A feature pass failed and ``skip_failures`` was False, or a sidecar is unreadable."""


class CheckpointError(ImagerankError):
    """A model checkpoint is corrupt, missing, or was trained on a different feature set."""


class CropError(ImagerankError, ValueError):
    """A crop box is not finite, has zero area, or lies (partly) outside its image."""


class ImportLogError(ImagerankError, ValueError):
    """An import file (selection or crop log) cannot be read at all: missing, not CSV, or lacks required columns.

    Bad *rows* are not raised: they are reported one by one in the import report while the rest is imported.
    """


class ComfyUIError(ImagerankError):
    """The ComfyUI server refused a request or reported an execution error."""
