"""The catalog connection.

Pragmas (DESIGN §3): ``journal_mode=WAL`` so readers never block the writer, ``synchronous=FULL`` so a vote
acknowledged is a vote kept even on power loss, ``foreign_keys=ON``, ``busy_timeout`` 10 s so two kernels voting
on one file wait for each other instead of failing. Writes go through :meth:`Database.atomic`, a
``BEGIN IMMEDIATE`` transaction (the write lock is taken up front, so no deadlock-prone lock upgrade).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DatabaseReadOnlyError, WorkspaceNotFoundError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BUSY_TIMEOUT_MS", "Database", "connect"]

BUSY_TIMEOUT_MS = 10_000


class Database:
    """One SQLite connection with the catalog's pragmas and a re-entrant ``atomic()`` transaction.

    The connection is opened with ``check_same_thread=False`` and guarded by a lock, so a panel's callbacks
    and a training thread in the same kernel can share it.

    Args:
        path: the database file, or ``":memory:"``.
        create: create the file if it does not exist (otherwise :class:`WorkspaceNotFoundError`).

    Raises:
        WorkspaceNotFoundError: ``create`` is False and the file does not exist.
        DatabaseReadOnlyError: the file or its folder cannot be written (WAL needs both).
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            p = Path(self.path)
            if not create and not p.exists():
                raise WorkspaceNotFoundError(f"no catalog at {p}; run `imagerank init` first")
            self._check_writable(p)
        self.lock = threading.RLock()
        self._depth = 0
        #: Commits made through this connection (every ``atomic`` block and every ``execute``); with
        #: ``PRAGMA data_version`` (commits by other connections) it tells caches when to reload: :meth:`version`.
        self.writes = 0
        try:
            self.conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            self.conn.row_factory = sqlite3.Row
            if self.path != ":memory:":
                self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.OperationalError as e:
            if "readonly" in str(e) or "read-only" in str(e) or "unable to open" in str(e):
                raise DatabaseReadOnlyError(f"cannot open the catalog {self.path} for writing: {e}") from e
            raise

    @staticmethod
    def _check_writable(p: Path) -> None:
        folder = p.parent if str(p.parent) else Path(".")
        if p.exists() and not os.access(p, os.W_OK):
            raise DatabaseReadOnlyError(
                f"the catalog {p} is read-only; imagerank records every vote in it. "
                "Make it writable (chmod u+w) or copy the workspace somewhere writable."
            )
        if folder.exists() and not os.access(folder, os.W_OK):
            raise DatabaseReadOnlyError(
                f"the workspace folder {folder} is read-only; SQLite needs to write its journal beside "
                f"{p.name}. Make the folder writable or copy the workspace."
            )

    @contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction; nested calls join the outer one. Rolls back on any error.

        Raises:
            DatabaseReadOnlyError: the database turned read-only under us.
        """
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                if "readonly" in str(e):
                    raise DatabaseReadOnlyError(f"the catalog {self.path} is read-only: {e}") from e
                raise
            self._depth = 1
            try:
                yield self.conn
            except BaseException:
                self._depth = 0
                self.conn.execute("ROLLBACK")
                raise
            self._depth = 0
            self.writes += 1
            try:
                self.conn.execute("COMMIT")
            except sqlite3.OperationalError as e:
                self.conn.execute("ROLLBACK")
                if "readonly" in str(e):
                    raise DatabaseReadOnlyError(f"the catalog {self.path} is read-only: {e}") from e
                raise

    @contextmanager
    def relaxed_sync(self) -> Iterator[None]:
        """Inside this block (holding the lock, outside any transaction) commits are not fsynced
        (``synchronous=NORMAL``): for bulk writes that can be recomputed, never for votes. WAL still orders them,
        and the next ``FULL`` commit syncs them too."""
        with self.lock:
            self.conn.execute("PRAGMA synchronous=NORMAL")
            try:
                yield
            finally:
                self.conn.execute("PRAGMA synchronous=FULL")

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        """Run one statement (autocommit outside ``atomic``)."""
        with self.lock:
            self.writes += 1
            try:
                return self.conn.execute(sql, params)
            except sqlite3.OperationalError as e:
                if "readonly" in str(e):
                    raise DatabaseReadOnlyError(f"the catalog {self.path} is read-only: {e}") from e
                raise

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        """Run a read and return all rows."""
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def read_frame(self, sql: str, params: tuple | dict | None = None) -> pd.DataFrame:
        """Run a read and return a pandas DataFrame, holding the connection's lock (so a read from one thread
        never interleaves with another thread's transaction on the shared connection)."""
        import pandas as pd

        with self.lock:
            return pd.read_sql_query(sql, self.conn, params=params)

    def data_version(self) -> int:
        """``PRAGMA data_version``: changes whenever another connection commits to this file."""
        with self.lock:
            return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def version(self) -> tuple[int, int]:
        """``(data_version, writes)``: equal between two calls exactly when nobody committed in between."""
        with self.lock:
            return self.data_version(), self.writes

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self.conn.close()


def connect(path: str | os.PathLike[str], *, create: bool = True) -> Database:
    """Open ``path`` with the catalog's pragmas and bring its schema up to date (see :mod:`.migrations`)."""
    from .migrations import migrate

    db = Database(path, create=create)
    migrate(db)
    return db
