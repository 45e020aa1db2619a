"""The SQLite catalog: migrations, pragmas, transactions, schema version and read-only workspaces."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from imgsupport import run_python_unprivileged

import imagerank
from imagerank.catalog import MIGRATIONS, SCHEMA_VERSION, Database, connect, migrate
from imagerank.catalog.migrations import migration
from imagerank.errors import DatabaseReadOnlyError, SchemaVersionError, WorkspaceNotFoundError

TABLES = {"images", "matches", "match_entries", "sessions", "labels", "crops", "suggestions", "pipeline_steps",
          "jobs", "failures"}


def test_migrations_are_numbered_without_gaps() -> None:
    assert sorted(MIGRATIONS) == list(range(1, SCHEMA_VERSION + 1))


def test_memory_store_has_the_schema(memory_store: Database) -> None:
    names = {r[0] for r in memory_store.query("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    assert names >= TABLES | {"comparisons"}
    assert memory_store.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION
    cols = {r[1] for r in memory_store.query("PRAGMA table_info(images)")}
    assert cols >= {"id", "filepath", "filename", "mu", "sigma", "comparison_count", "added_at", "last_compared_at",
                    "size", "mtime_ns", "width", "height", "status", "status_reason", "step_id", "parent_id",
                    "child_count"}
    entry_cols = {r[1] for r in memory_store.query("PRAGMA table_info(match_entries)")}
    assert entry_cols >= {"match_id", "image_id", "rank", "position", "mu_before", "sigma_before", "mu_after",
                          "sigma_after"}
    indexed = " ".join(str(r[0]) for r in memory_store.query("SELECT sql FROM sqlite_master WHERE type='index'"))
    assert "mu - 3 * sigma" in indexed
    assert "(sigma)" in indexed


def test_file_store_pragmas(file_store: Database) -> None:
    assert file_store.query("PRAGMA journal_mode")[0][0] == "wal"
    assert file_store.query("PRAGMA foreign_keys")[0][0] == 1
    assert file_store.query("PRAGMA busy_timeout")[0][0] >= 5000
    assert file_store.query("PRAGMA synchronous")[0][0] in (1, 2)  # NORMAL or FULL (DESIGN §3); FULL here
    assert file_store.query("PRAGMA synchronous")[0][0] == 2


def test_migrate_is_idempotent(file_store: Database) -> None:
    assert migrate(file_store) == SCHEMA_VERSION
    assert migrate(file_store) == SCHEMA_VERSION
    second = connect(file_store.path)
    assert second.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION
    second.close()


def test_foreign_keys_are_enforced(memory_store: Database) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        memory_store.execute(
            "INSERT INTO match_entries (match_id, image_id, rank, mu_before, sigma_before, mu_after, sigma_after) "
            "VALUES (999, 999, 0, 25, 8, 25, 8)"
        )


def test_status_check_constraint(memory_store: Database) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        memory_store.execute("INSERT INTO images (filepath, filename, mu, sigma, status) VALUES ('a', 'a', 25, 8, 'x')")


def test_atomic_rolls_back_and_nests(memory_store: Database) -> None:
    ins = "INSERT INTO images (filepath, filename, mu, sigma) VALUES (?, ?, 25, 8)"

    def fail_half_way() -> None:
        with memory_store.atomic() as conn:
            conn.execute(ins, ("a", "a"))
            with memory_store.atomic() as inner:  # joins the outer transaction
                inner.execute(ins, ("b", "b"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail_half_way()
    assert memory_store.query("SELECT COUNT(*) FROM images")[0][0] == 0
    with memory_store.atomic() as conn:
        conn.execute(ins, ("a", "a"))
        with memory_store.atomic() as inner:
            inner.execute(ins, ("b", "b"))
    assert memory_store.query("SELECT COUNT(*) FROM images")[0][0] == 2


def test_failed_migration_leaves_the_version(tmp_path: Path) -> None:
    db = connect(tmp_path / "x.db")
    number = SCHEMA_VERSION + 1

    @migration(number)
    def _broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("migration failed half way")

    try:
        with pytest.raises(RuntimeError):
            migrate(db)
        assert db.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION
        assert not db.query("SELECT name FROM sqlite_master WHERE name='half_done'")
    finally:
        del MIGRATIONS[number]
        db.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    raw.close()
    with pytest.raises(SchemaVersionError, match=rf"schema version {SCHEMA_VERSION + 5}.*Upgrade imagerank"):
        connect(path)


def test_missing_catalog_without_create(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceNotFoundError, match="imagerank init"):
        Database(tmp_path / "absent.db", create=False)
    with pytest.raises(WorkspaceNotFoundError, match="not an imagerank workspace"):
        imagerank.open(tmp_path)


_READONLY_CHILD = """
import json, os, sys
import imagerank
from imagerank.errors import DatabaseReadOnlyError
ws = sys.argv[1] if len(sys.argv) > 1 else {ws!r}
out = {{}}
try:
    imagerank.open(ws)
    out["error"] = None
except DatabaseReadOnlyError as e:
    out["error"] = "DatabaseReadOnlyError"
    out["message"] = str(e)
out["writable"] = os.access(os.path.join(ws, "imagerank.db"), os.W_OK)
print(json.dumps(out))
"""


@pytest.mark.parametrize("what", ["file", "folder"])
def test_read_only_workspace_gives_a_clear_error(tmp_path: Path, what: str) -> None:
    ws = tmp_path / "ws"
    imagerank.init(ws, tmp_path).close()
    db = ws / "imagerank.db"
    for extra in ("imagerank.db-wal", "imagerank.db-shm"):
        (ws / extra).unlink(missing_ok=True)
    if what == "file":
        db.chmod(0o444)
    else:
        ws.chmod(0o555)
    try:
        res = run_python_unprivileged(_READONLY_CHILD.format(ws=str(ws)))
    finally:
        db.chmod(0o644)
        ws.chmod(0o755)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["error"] == "DatabaseReadOnlyError", out
    assert "read-only" in out["message"]
    assert ("chmod" in out["message"]) if what == "file" else ("folder" in out["message"])


def test_read_only_error_is_a_permission_error() -> None:
    assert issubclass(DatabaseReadOnlyError, PermissionError)
    assert issubclass(DatabaseReadOnlyError, imagerank.ImagerankError)


_READONLY_OPEN_CHILD = """
import json
import imagerank
from imagerank.errors import DatabaseReadOnlyError
out = {{}}
try:
    col = imagerank.open({ws!r}, read_only=True)
    out["comparisons"] = col.stats()["comparisons"]
    col.close()
except DatabaseReadOnlyError as e:
    out["error"] = str(e)
print(json.dumps(out))
"""


@pytest.mark.parametrize("state", ["closed", "wal-without-shm"])
def test_read_only_open_of_a_read_only_folder(tmp_path: Path, state: str) -> None:
    ws = tmp_path / "ws"
    col = imagerank.init(ws, tmp_path)
    col.votes.start_session()
    col.close()
    if state == "wal-without-shm":  # a writer died: its -wal holds a commit, its -shm is gone
        keep = sqlite3.connect(ws / "imagerank.db")
        keep.execute("PRAGMA wal_autocheckpoint=0")
        keep.execute("INSERT INTO sessions (started_at, strategy) VALUES ('2026-01-01T00:00:00Z', 'random')")
        keep.commit()
        wal = (ws / "imagerank.db-wal").read_bytes()
        keep.close()
        (ws / "imagerank.db-wal").write_bytes(wal)
        (ws / "imagerank.db-shm").unlink(missing_ok=True)
    ws.chmod(0o555)
    try:
        res = run_python_unprivileged(_READONLY_OPEN_CHILD.format(ws=str(ws)))
    finally:
        ws.chmod(0o755)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if state == "closed":
        assert out == {"comparisons": 0}
    else:  # SQLite cannot read those commits without writing the -shm file: refused, and says why
        assert "imagerank.db-wal" in out["error"], out
        assert "writable" in out["error"], out
