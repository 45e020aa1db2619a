"""``Catalog``: one workspace's root, settings, database and paths, with its tables by concept.

Every layer below the facade (:mod:`imagerank.collection`) is handed a :class:`Catalog`, never a ``Collection``.
Functions that users also call with a ``Collection`` (``train_ranker(col)``, ``import_selection_log(col, path)``)
accept anything with a ``catalog`` attribute and turn it into the Catalog with :func:`as_catalog`.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..config import CONFIG_NAME, Settings, load_settings, write_settings
from ..errors import DatabaseReadOnlyError, ImagerankError, StorageError, WorkspaceNotFoundError
from .crops import CropTable
from .db import Database, connect
from .images import ImageTable
from .suggestions import SuggestionTable
from .votes import VoteLog

__all__ = ["DB_NAME", "Catalog", "CatalogLike", "HasCatalog", "as_catalog"]

DB_NAME = "imagerank.db"
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


class Catalog:
    """One workspace: ``root`` (absolute), ``settings``, the SQLite ``db``, the folders beside it, and the tables.

    Attributes:
        images: :class:`~imagerank.catalog.images.ImageTable` (scan upsert, status, labels, failures, reads).
        votes: :class:`~imagerank.catalog.votes.VoteLog` (sessions, record, undo, replay, doctor, listeners).
        crops: :class:`~imagerank.catalog.crops.CropTable` (normalised boxes per image, user or model).
        suggestions: :class:`~imagerank.catalog.suggestions.SuggestionTable` (model proposals and decisions).

    Thread-safe for one process (the connection is locked); several processes may use one workspace at once
    (SQLite WAL + ``BEGIN IMMEDIATE``).
    """

    def __init__(self, root: str | os.PathLike[str], settings: Settings, db: Database) -> None:
        self.root = Path(root).resolve()
        self._settings = settings
        self.db = db
        self.images = ImageTable(db)
        self.votes = VoteLog(db, settings)
        self.crops = CropTable(db)
        self.suggestions = SuggestionTable(db)

    @property
    def settings(self) -> Settings:
        """The workspace settings (``imagerank.toml`` + environment + overrides); assignable for this process."""
        return self._settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        self._settings = value
        self.votes.settings = value

    @classmethod
    def create(
        cls,
        workspace: str | os.PathLike[str],
        roots: Sequence[str | os.PathLike[str]] = (),
        **overrides: Any,
    ) -> Catalog:
        """Create (or update) a workspace: write ``imagerank.toml`` and ``imagerank.db`` and the folders.

        Args:
            workspace: folder to create; may already exist.
            roots: image folders (stored as absolute paths).
            **overrides: :class:`~imagerank.config.Settings` fields.

        Raises:
            ConfigError: a bad setting. DatabaseReadOnlyError: the folder is not writable.
            StorageError: the disk is full or failing (writing the settings or the catalog).
        """
        root = Path(workspace)
        with _write_faults(root):
            root.mkdir(parents=True, exist_ok=True)
        if roots:
            overrides["roots"] = tuple(str(Path(r).expanduser().resolve()) for r in roots)
        cfg = load_settings(root, **overrides)  # this run: file < IMAGERANK_* environment < overrides
        with _write_faults(root):
            write_settings(root, load_settings(root, env=False, **overrides))  # the environment is never written
            for sub in ("sidecars", "thumbs", "exports"):
                (root / sub).mkdir(exist_ok=True)
        return cls(root, cfg, connect(root / DB_NAME))

    @classmethod
    def open(cls, workspace: str | os.PathLike[str], *, read_only: bool = False, **overrides: Any) -> Catalog:
        """Open an existing workspace folder, migrating its database to the current schema.

        Args:
            workspace: the workspace folder.
            read_only: open the catalog for reading only (SQLite ``mode=ro``; works on a workspace that cannot
                be written; nothing is migrated, every write raises :class:`DatabaseReadOnlyError`).
            **overrides: :class:`~imagerank.config.Settings` fields for this process.

        Raises:
            WorkspaceNotFoundError: no ``imagerank.db`` / ``imagerank.toml`` there (``read_only``: no
                ``imagerank.db``).
            DatabaseReadOnlyError: the catalog cannot be written (``read_only``: its schema needs migrating, or
                it cannot be read without writing).
            StorageError: the disk is full or failing.
        """
        root = Path(workspace)
        if not (root / DB_NAME).exists() and not (root / CONFIG_NAME).exists():
            raise WorkspaceNotFoundError(
                f"{root} is not an imagerank workspace (no {DB_NAME}); create one with "
                f"`imagerank init {root} --images DIR` or `imagerank demo {root}`"
            )
        cfg = load_settings(root, **overrides)
        return cls(root, cfg, connect(root / DB_NAME, create=not read_only, read_only=read_only))

    @property
    def read_only(self) -> bool:
        """True when the catalog was opened read-only (:meth:`open` with ``read_only=True``)."""
        return self.db.read_only

    @property
    def catalog(self) -> Catalog:
        """Itself, so that a Catalog is :data:`CatalogLike` too."""
        return self

    # ------------------------------------------------------------------ paths
    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    @property
    def sidecars_dir(self) -> Path:
        return self.root / "sidecars"

    @property
    def thumbs_dir(self) -> Path:
        return self.root / "thumbs"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def close(self) -> None:
        """Close the database connection."""
        self.db.close()

    def __repr__(self) -> str:
        return f"Catalog({str(self.root)!r})"


@contextmanager
def _write_faults(root: Path) -> Iterator[None]:
    """Turn an ``OSError`` while creating the workspace into :class:`DatabaseReadOnlyError` (no permission, a
    read-only filesystem) or :class:`StorageError` (full disk, I/O error ...), naming the folder and the reason."""
    try:
        yield
    except ImagerankError as e:
        if isinstance(e, OSError) and e.errno in _NOT_WRITABLE:
            raise DatabaseReadOnlyError(f"the workspace folder {root} cannot be written: {e}") from e
        raise
    except OSError as e:
        where = e.filename or root
        if e.errno in _NOT_WRITABLE:
            raise DatabaseReadOnlyError(
                f"cannot create {where}: {e.strerror or e}; choose a folder you can write to"
            ) from e
        err = StorageError(f"cannot create {where}: {e.strerror or e}")
        err.errno = e.errno
        raise err from e


@runtime_checkable
class HasCatalog(Protocol):
    """Anything that holds a :class:`Catalog` (``imagerank.Collection`` does)."""

    @property
    def catalog(self) -> Catalog: ...


CatalogLike = Catalog | HasCatalog


def as_catalog(obj: CatalogLike) -> Catalog:
    """The :class:`Catalog` of ``obj`` (a Catalog, or a ``Collection`` / anything with a ``catalog`` attribute).

    Raises:
        TypeError: ``obj`` is neither.
    """
    if isinstance(obj, Catalog):
        return obj
    cat = getattr(obj, "catalog", None)
    if isinstance(cat, Catalog):
        return cat
    raise TypeError(f"expected a Catalog or a Collection, got {type(obj).__name__}")
