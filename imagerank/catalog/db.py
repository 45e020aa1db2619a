"""The catalog connection.

Pragmas (DESIGN §3): ``journal_mode=WAL`` so readers never block the writer, ``synchronous=FULL`` so a vote
acknowledged is a vote kept even on power loss, ``foreign_keys=ON``, ``busy_timeout`` 10 s so two kernels voting
on one file wait for each other instead of failing. Writes go through :meth:`Database.atomic`, a
``BEGIN IMMEDIATE`` transaction (the write lock is taken up front, so no deadlock-prone lock upgrade).

Faults: a full disk or an I/O error raises :class:`~imagerank.errors.StorageError` naming the catalog and SQLite's
own reason (``database or disk is full``, ``disk I/O error``), a write to a catalog that cannot be written raises
:class:`~imagerank.errors.DatabaseReadOnlyError`; what raised was not stored. When ``COMMIT`` fails SQLite has
usually rolled the transaction back already: it is rolled back here only while one is still active, so the real
cause is what the caller sees.

Read-only catalogs (``read_only=True``) are opened with the SQLite URI ``file:...?mode=ro`` and
``PRAGMA query_only``. A WAL catalog in a folder that cannot be written is readable when its ``-wal`` and ``-shm``
files exist and can be read (a writer has it open, or left them), or when there is no ``-wal`` file with commits
in it (then it is opened ``immutable=1``: SQLite assumes nobody changes the file while it is open, so a writer
that gains access meanwhile is not seen). A ``-wal`` file with commits but no ``-shm`` file cannot be read without
write access: that is refused with :class:`~imagerank.errors.DatabaseReadOnlyError`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import (
    DatabaseReadOnlyError,
    ImagerankError,
    InvalidArgumentError,
    SchemaVersionError,
    StorageError,
    WorkspaceNotFoundError,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BUSY_TIMEOUT_MS", "Database", "connect", "storage_error"]

BUSY_TIMEOUT_MS = 10_000

_READ_ONLY_HINT = "make the workspace writable (chmod u+w on the folder and imagerank.db) or copy it somewhere writable"


def storage_error(path: str, e: sqlite3.Error, *, read_only: bool = False) -> ImagerankError | None:
    """The :class:`ImagerankError` for SQLite error ``e`` on the catalog ``path``, or None when it is not a fault
    of the storage (a constraint, a syntax error, a lock: those stay SQLite's own errors).

    ``database or disk is full`` and ``disk I/O error`` give :class:`StorageError`; ``attempt to write a readonly
    database`` gives :class:`DatabaseReadOnlyError` (``read_only``: the catalog was opened read-only on purpose).
    """
    name = str(getattr(e, "sqlite_errorname", "") or "")
    text = str(e)
    if name.startswith("SQLITE_FULL") or "database or disk is full" in text:
        return StorageError(f"cannot write the catalog {path}: {text} (SQLite); nothing of this write was stored. "
                            "Free some space on that disk and run it again.")
    if name.startswith("SQLITE_IOERR") or "disk I/O error" in text:
        return StorageError(f"cannot use the catalog {path}: {text} (SQLite); nothing of this write was stored. "
                            "Check the disk (full, removed, failing) and run it again.")
    if name.startswith("SQLITE_READONLY") or "readonly" in text or "read-only" in text:
        if read_only:
            return DatabaseReadOnlyError(
                f"the catalog {path} is open read-only (the workspace cannot be written, or it was opened with "
                f"read_only=True) and this needs to write to it ({text}); {_READ_ONLY_HINT}"
            )
        return DatabaseReadOnlyError(f"the catalog {path} is read-only: {text}; {_READ_ONLY_HINT}")
    return None


def _uri(path: str, query: str) -> str:
    return "file:" + urllib.parse.quote(os.path.abspath(path)) + "?" + query


class Database:
    """One SQLite connection with the catalog's pragmas and a re-entrant ``atomic()`` transaction.

    The connection is opened with ``check_same_thread=False`` and guarded by a lock, so a panel's callbacks
    and a training thread in the same kernel can share it.

    Args:
        path: the database file, or ``":memory:"``.
        create: create the file if it does not exist (otherwise :class:`WorkspaceNotFoundError`).
        read_only: open the existing file for reading only (``mode=ro``, see the module docstring): nothing is
            written, not even the WAL switch; every write raises :class:`DatabaseReadOnlyError`.

    Raises:
        WorkspaceNotFoundError: ``create`` is False (or ``read_only`` True) and the file does not exist.
        DatabaseReadOnlyError: the file or its folder cannot be written (WAL needs both), or ``read_only`` and
            the catalog cannot be read without writing (a ``-wal`` file with commits and no ``-shm`` file).
        StorageError: the disk is full or failing (SQLite's reason in the message).
        InvalidArgumentError: ``read_only`` with ``":memory:"``.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, create: bool = True, read_only: bool = False
    ) -> None:
        self.path = str(path)
        self.read_only = bool(read_only)
        if self.path == ":memory:" and self.read_only:
            raise InvalidArgumentError("read_only: an in-memory catalog cannot be opened read-only (got ':memory:')")
        if self.path != ":memory:":
            p = Path(self.path)
            if (self.read_only or not create) and not p.exists():
                raise WorkspaceNotFoundError(f"no catalog at {p}; run `imagerank init` first")
            if not self.read_only:
                self._check_writable(p)
        self.lock = threading.RLock()
        self._depth = 0
        #: Commits made through this connection (every ``atomic`` block and every ``execute``, except blocks that
        #: wrote derived columns only, see :meth:`atomic`); with ``PRAGMA data_version`` (commits by other
        #: connections) it tells caches when to reload: :meth:`version`.
        self.writes = 0
        self._derived_only = False
        self.conn = self._open_read_only() if self.read_only else self._open()
        self._readers = threading.local()  # per-thread read-only connections (snapshot_query)
        self._reader_conns: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()

    def _open(self) -> sqlite3.Connection:
        conn = None
        try:
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            if self.path != ":memory:":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            return conn
        except sqlite3.OperationalError as e:
            if conn is not None:
                conn.close()
            mapped = storage_error(self.path, e)
            if isinstance(mapped, StorageError):
                raise mapped from e
            if mapped is not None or "unable to open" in str(e):
                raise DatabaseReadOnlyError(f"cannot open the catalog {self.path} for writing: {e}") from e
            raise

    def _open_read_only(self) -> sqlite3.Connection:
        wal = Path(self.path + "-wal")
        first: sqlite3.Error | None = None
        for query in ("mode=ro", "mode=ro&immutable=1"):
            if first is not None and wal.exists() and wal.stat().st_size > 0:
                raise DatabaseReadOnlyError(
                    f"cannot read the catalog {self.path} without writing: {wal.name} holds commits and SQLite "
                    f"needs to create {Path(self.path).name}-shm beside it to read them ({first}). Open the "
                    "workspace once where its folder is writable (any imagerank command), or copy the folder "
                    "with its -wal file somewhere writable."
                ) from first
            conn = sqlite3.connect(_uri(self.path, query), uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None, check_same_thread=False)
            try:
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA query_only=ON")
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the file and the WAL
                return conn
            except sqlite3.OperationalError as e:
                conn.close()
                mapped = storage_error(self.path, e)
                if isinstance(mapped, StorageError):
                    raise mapped from e
                if mapped is None and "unable to open" not in str(e):
                    raise
                first = first or e
        raise DatabaseReadOnlyError(f"cannot open the catalog {self.path} for reading: {first}") from first

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

    def _raise_mapped(self, e: BaseException) -> None:
        """Raise the ImagerankError for a storage fault ``e`` (from ``e``); return when it is none."""
        if isinstance(e, sqlite3.OperationalError):
            mapped = storage_error(self.path, e, read_only=self.read_only)
            if mapped is not None:
                raise mapped from e

    def _rollback(self) -> None:
        """Roll back the open transaction, if SQLite has not done so already; a failing rollback is not raised
        (the caller is already raising the cause)."""
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    @contextmanager
    def atomic(self, *, derived: bool = False) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction (``BEGIN`` on a read-only catalog, so a block that only reads works);
        nested calls join the outer one. Rolls back on any error; nothing of a block that raised is stored.

        Args:
            derived: the block writes only derived, cache-like data that no :meth:`version`-keyed cache reads
                (thumbnail fingerprints and sizes, failure records): its commit does not advance :attr:`writes`, so
                the pairing pool of 100,000 images is not reloaded after each on-demand thumbnail. A transaction
                counts as derived only when every block joined in it says so.

        Raises:
            DatabaseReadOnlyError: the database is (or turned) read-only.
            StorageError: the disk is full or failing (at any statement or at ``COMMIT``).
        """
        with self.lock:
            if self._depth:
                self._derived_only = self._derived_only and derived
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            try:
                self.conn.execute("BEGIN" if self.read_only else "BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                self._raise_mapped(e)
                raise
            self._depth = 1
            self._derived_only = derived
            try:
                yield self.conn
            except BaseException as e:
                self._depth = 0
                self._rollback()
                self._raise_mapped(e)
                raise
            self._depth = 0
            if not self._derived_only:
                self.writes += 1
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as e:
                self._rollback()  # SQLite rolls back itself on a full disk or an I/O error at COMMIT
                self._raise_mapped(e)
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
        """Run one statement (autocommit outside ``atomic``).

        Raises:
            DatabaseReadOnlyError: a write to a read-only catalog. StorageError: the disk is full or failing.
            sqlite3.Error: any other SQLite error (constraints ...), as SQLite raised it.
        """
        with self.lock:
            self.writes += 1
            try:
                return self.conn.execute(sql, params)
            except sqlite3.OperationalError as e:
                self._raise_mapped(e)
                raise

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        """Run a read and return all rows.

        Raises:
            StorageError: the disk failed (``disk I/O error``).
        """
        with self.lock:
            try:
                return self.conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as e:
                self._raise_mapped(e)
                raise

    def snapshot_query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        """Run a large read on a second, read-only connection of this thread, without the shared connection's lock,
        so a big read in a background thread (a prior refit reading 100,000 fingerprints) never makes a vote wait.

        WAL lets this reader run beside the writer; it sees what was committed when the statement started (the
        caller's own uncommitted writes on the shared connection are not visible: use :meth:`query` inside a
        transaction). An in-memory catalog has no second connection, and a read-only one needs none (nothing
        writes through it; a second ``mode=ro`` connection of a read-only folder may not be able to open the WAL):
        this is :meth:`query` there.
        """
        if self.path == ":memory:" or self.read_only:
            return self.query(sql, params)
        conn = getattr(self._readers, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(_uri(self.path, "mode=ro"), uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                                       check_same_thread=False)
            except sqlite3.OperationalError:
                return self.query(sql, params)  # no second reader here (a read-only folder without -shm ...)
            conn.row_factory = sqlite3.Row
            self._readers.conn = conn
            with self._readers_lock:  # not the shared connection's lock: this path must never wait for it
                self._reader_conns.append(conn)
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as e:
            self._raise_mapped(e)
            raise

    def release_reader(self) -> None:
        """Close this thread's :meth:`snapshot_query` connection (a worker thread calls it before it ends)."""
        conn = getattr(self._readers, "conn", None)
        if conn is not None:
            self._readers.conn = None
            with self._readers_lock:
                if conn in self._reader_conns:
                    self._reader_conns.remove(conn)
            conn.close()

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
        """Close the connection (and the readers of :meth:`snapshot_query`)."""
        with self.lock, self._readers_lock:
            for reader in self._reader_conns:
                reader.close()
            self._reader_conns.clear()
            self.conn.close()


def connect(path: str | os.PathLike[str], *, create: bool = True, read_only: bool = False) -> Database:
    """Open ``path`` with the catalog's pragmas and bring its schema up to date (see :mod:`.migrations`).

    Args:
        path: the database file, or ``":memory:"``.
        create: create the file when it does not exist.
        read_only: open for reading only (see :class:`Database`); the schema is not migrated then, so it must be
            one this code reads as it is (``migrations.READ_COMPATIBLE_FROM`` up to the current one).

    Raises:
        WorkspaceNotFoundError: no file and ``create`` False (or ``read_only`` True).
        DatabaseReadOnlyError: the catalog cannot be written (or, ``read_only``: its schema is too old to read
            without migrating, or it cannot be read without writing).
        SchemaVersionError: the catalog was written by a newer imagerank.
        StorageError: the disk is full or failing.
    """
    from .migrations import READ_COMPATIBLE_FROM, SCHEMA_VERSION, migrate

    db = Database(path, create=create, read_only=read_only)
    try:
        if not read_only:
            migrate(db)
            return db
        current = int(db.query("PRAGMA user_version")[0][0])
        if current > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{db.path} has schema version {current}; this imagerank knows up to {SCHEMA_VERSION}. "
                "Upgrade imagerank."
            )
        if current < READ_COMPATIBLE_FROM:
            raise DatabaseReadOnlyError(
                f"the catalog {db.path} has schema version {current} and this imagerank needs {SCHEMA_VERSION}; "
                f"migrating it needs write access, and it was opened read-only: {_READ_ONLY_HINT}, and open it once"
            )
    except BaseException:
        db.close()
        raise
    return db
