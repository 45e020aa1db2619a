"""Faults of the storage (issue 16): a full disk, an I/O error, a read-only workspace.

A full disk is SQLite's ``PRAGMA max_page_count`` (SQLITE_FULL, "database or disk is full") on a file catalog; an
I/O error at ``COMMIT`` and a full disk while writing ``imagerank.toml`` are simulated (SQLite rolls back on its own
when COMMIT fails, which is what the simulated connection does too).
"""

from __future__ import annotations

import errno
import functools
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from imgsupport import run_python_unprivileged, write_images

import imagerank
from imagerank.catalog import Database, connect
from imagerank.cli import main
from imagerank.errors import DatabaseReadOnlyError, ImagerankError, StorageError

_REAL_CONNECT = sqlite3.connect


class _FullDisk(sqlite3.Connection):
    """A connection whose database cannot grow past its size when opened (at least 1 page): a full disk."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        pages = int(super().execute("PRAGMA page_count").fetchone()[0])
        super().execute(f"PRAGMA max_page_count = {max(pages, 1)}")


class _IOErrorAtCommit(sqlite3.Connection):
    """COMMIT fails with "disk I/O error" after SQLite rolled the transaction back, as on a failing disk."""

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
        if sql.strip().upper() == "COMMIT":
            super().execute("ROLLBACK")
            raise sqlite3.OperationalError("disk I/O error")
        return super().execute(sql, *args)


class _FullAtWalSwitch(sqlite3.Connection):
    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
        if sql.startswith("PRAGMA journal_mode"):
            raise sqlite3.OperationalError("database or disk is full")
        return super().execute(sql, *args)


def _connections(monkeypatch: pytest.MonkeyPatch, factory: type[sqlite3.Connection]) -> None:
    monkeypatch.setattr(sqlite3, "connect", functools.partial(_REAL_CONNECT, factory=factory))


def _cap(db: Database) -> None:
    pages = int(db.query("PRAGMA page_count")[0][0])
    db.conn.execute(f"PRAGMA max_page_count = {pages}")


@pytest.fixture
def voted(tmp_path: Path) -> imagerank.Collection:
    write_images(tmp_path / "img", 6)
    col = imagerank.init(tmp_path / "ws", tmp_path / "img")
    col.scan(thumbnails=False, progress=False)
    yield col
    col.close()


# ---------------------------------------------------------------------------------------------- the library
def test_full_disk_during_a_vote_names_the_cause_and_acknowledges_nothing(voted: imagerank.Collection) -> None:
    col = voted
    ids = [int(i) for i in col.images_df()["id"]]
    col.vote(ids[0], ids[1], "left")
    col.pairs.get()  # the pool is loaded and kept current by votes
    _cap(col.db)
    acknowledged = 1

    def fill() -> None:  # fill the last free page, then the next vote finds the disk full
        nonlocal acknowledged
        for k in range(2000):
            col.vote(ids[2 + k % 2], ids[4 + k % 2], "left")
            acknowledged += 1

    with pytest.raises(StorageError, match="database or disk is full") as info:
        fill()
    assert str(col.catalog.db_path) in str(info.value)
    assert isinstance(info.value, ImagerankError)
    assert isinstance(info.value, OSError)
    assert "cannot rollback" not in str(info.value)
    stored = col.db.query("SELECT COUNT(*) FROM matches")[0][0]
    assert stored == acknowledged  # the vote that raised is not stored; every acknowledged one is
    before = col.images_df().set_index("id")[["mu", "sigma", "comparison_count"]]
    pool_before = col.pairs.get().mu.copy()
    with pytest.raises(StorageError):
        col.vote(ids[2], ids[4], "left")
    after = col.images_df().set_index("id")[["mu", "sigma", "comparison_count"]]
    assert after.equals(before)
    assert (col.pairs.get().mu == pool_before).all()
    assert not col.db.conn.in_transaction
    col.db.conn.execute("PRAGMA max_page_count = 1073741823")  # space freed: voting works again
    match = col.vote(ids[2], ids[4], "left")
    assert col.db.query("SELECT COUNT(*) FROM matches")[0][0] == stored + 1 == match.id


def test_io_error_at_commit_is_the_cause_not_cannot_rollback(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _connections(monkeypatch, _IOErrorAtCommit)
    db = Database(tmp_path / "x.db")
    db.conn.execute("CREATE TABLE t (x)")
    with pytest.raises(StorageError, match="disk I/O error") as info, db.atomic() as conn:
        conn.execute("INSERT INTO t VALUES (1)")
    assert "cannot rollback" not in str(info.value)
    assert str(tmp_path / "x.db") in str(info.value)
    assert not db.conn.in_transaction
    assert db.query("SELECT COUNT(*) FROM t")[0][0] == 0
    db.close()


def test_a_failed_body_still_rolls_back_and_keeps_sqlite_errors(memory_store: Database) -> None:
    # not a storage fault: SQLite's own error, unchanged
    with pytest.raises(sqlite3.IntegrityError), memory_store.atomic() as conn:
        conn.execute("INSERT INTO images (filepath, filename, mu, sigma, status) VALUES ('a','a',25,8,'x')")
    assert not memory_store.conn.in_transaction


def test_opening_on_a_full_disk_names_the_cause(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = tmp_path / "ws"
    imagerank.init(ws).close()
    _connections(monkeypatch, _FullAtWalSwitch)
    with pytest.raises(StorageError, match="database or disk is full"):
        imagerank.open(ws)


def test_creating_a_catalog_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _connections(monkeypatch, _FullDisk)
    with pytest.raises(StorageError, match="database or disk is full"):
        connect(tmp_path / "new.db")


def test_settings_on_a_full_disk_leave_no_half_written_file(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    ws = tmp_path / "ws"
    imagerank.init(ws, thumb_size=200).close()
    before = (ws / "imagerank.toml").read_text()
    real_write = Path.write_text

    def full(self: Path, data: str, *args: Any, **kwargs: Any) -> int:
        real_write(self, data[:10], *args, **kwargs)  # a part lands, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(StorageError, match="No space left on device") as info:
        imagerank.init(ws, thumb_size=300)
    assert info.value.errno == errno.ENOSPC
    assert "imagerank.toml" in str(info.value)
    monkeypatch.undo()
    assert (ws / "imagerank.toml").read_text() == before
    assert sorted(p.name for p in ws.iterdir() if p.name.endswith(".tmp")) == []


# ---------------------------------------------------------------------------------------------- the CLI
def _one_line_exit_2(capsys: pytest.CaptureFixture[str], rc: int, *needles: str) -> str:
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_cli_init_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    def full(self: Path, *args: Any, **kwargs: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    with monkeypatch.context() as m:
        m.setattr(Path, "write_text", full)
        rc = main(["init", str(tmp_path / "a"), "--images", str(tmp_path)])
    _one_line_exit_2(capsys, rc, "imagerank init: error:", "No space left on device")
    assert not (tmp_path / "a" / "imagerank.toml").exists()
    with monkeypatch.context() as m:
        _connections(m, _FullDisk)
        rc = main(["init", str(tmp_path / "b"), "--images", str(tmp_path)])
    _one_line_exit_2(capsys, rc, "imagerank init: error:", "database or disk is full")


def test_cli_scan_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    write_images(tmp_path / "img", 60, w=8, h=8)
    imagerank.init(tmp_path / "ws", tmp_path / "img").close()
    _connections(monkeypatch, _FullDisk)
    rc = main(["scan", str(tmp_path / "ws"), "--no-thumbnails", "--no-progress"])
    _one_line_exit_2(capsys, rc, "imagerank scan: error:", "database or disk is full")
    monkeypatch.undo()
    assert main(["scan", str(tmp_path / "ws"), "--no-thumbnails", "--no-progress"]) == 0  # space is back


def test_cli_features_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "img").mkdir()
    for i in range(60):  # undecodable: the pass records a status and a failure row per file, so the catalog grows
        (tmp_path / "img" / f"bad_{i:03d}.jpg").write_bytes(b"not a jpeg " * (i + 1))
    col = imagerank.init(tmp_path / "ws", tmp_path / "img")
    col.scan(thumbnails=False, progress=False)
    col.close()
    _connections(monkeypatch, _FullDisk)
    rc = main(["features", str(tmp_path / "ws"), "--hashes", "--no-progress"])
    _one_line_exit_2(capsys, rc, "imagerank features: error:", "database or disk is full")


def test_cli_features_sidecar_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import pyarrow.parquet as pq

    write_images(tmp_path / "img", 4, w=8, h=8)
    col = imagerank.init(tmp_path / "ws", tmp_path / "img")
    col.scan(thumbnails=False, progress=False)
    col.close()

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq, "write_table", full)
    rc = main(["features", str(tmp_path / "ws"), "--hashes", "--no-progress"])
    _one_line_exit_2(capsys, rc, "imagerank features: error:", "No space left on device")


# ---------------------------------------------------------------------------------------------- read-only
def test_read_only_catalog_reads_and_refuses_writes(voted: imagerank.Collection) -> None:
    ids = [int(i) for i in voted.images_df()["id"]]
    voted.vote(ids[0], ids[1], "left")
    ws = voted.root
    voted.close()
    col = imagerank.open(ws, read_only=True)
    try:
        assert col.catalog.read_only
        assert col.stats()["comparisons"] == 1
        assert len(col.leaderboard()) == 6
        assert col.doctor().ok
        with pytest.raises(DatabaseReadOnlyError, match="read-only"):
            col.vote(ids[2], ids[3], "left")
        with pytest.raises(DatabaseReadOnlyError, match="read-only"):
            col.images.set_status(ids[0], "rejected")
    finally:
        col.close()
    assert imagerank.open(ws).stats()["comparisons"] == 1


def test_read_only_refuses_an_old_schema_and_memory(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE t (x)")
    raw.close()
    with pytest.raises(DatabaseReadOnlyError, match="migrating it needs write access"):
        connect(path, read_only=True)
    with pytest.raises(ImagerankError, match="in-memory"):
        Database(":memory:", read_only=True)


_CHILD = """
import contextlib, io, json, sys
import imagerank
from imagerank.cli import main
ws, out_csv = {ws!r}, {csv!r}
res = {{}}
for name, argv in [("stats", ["stats", ws]), ("leaderboard", ["leaderboard", ws]), ("images", ["images", ws]),
                   ("show", ["show", ws, "1"]), ("matches", ["matches", ws]), ("sessions", ["sessions", ws]),
                   ("failures", ["failures", ws]), ("doctor", ["doctor", ws]), ("models", ["models", ws]),
                   ("csv", ["csv", ws, "--out", out_csv]), ("vote", ["vote", ws, "1", "2", "left"])]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code
    res[name] = [rc, out.getvalue(), err.getvalue()]
try:
    imagerank.open(ws)
    res["open"] = "opened"
except Exception as e:
    res["open"] = type(e).__name__
col = imagerank.open(ws, read_only=True)
res["api"] = col.stats()["comparisons"]
col.close()
print(json.dumps(res))
"""


@pytest.mark.parametrize("leftovers", [False, True], ids=["clean", "wal-files-present"])
def test_cli_reads_a_read_only_workspace(tmp_path: Path, leftovers: bool) -> None:
    write_images(tmp_path / "img", 4)
    ws = tmp_path / "ws"
    col = imagerank.init(ws, tmp_path / "img")
    col.scan(thumbnails=False, progress=False)
    col.vote(1, 2, "left")
    writer = None
    if leftovers:  # a writer still has it open: the -wal and -shm files exist (and hold a commit)
        writer = sqlite3.connect(ws / "imagerank.db")
        writer.execute("PRAGMA wal_autocheckpoint=0")
        col.close()
        col = imagerank.open(ws)
        col.vote(3, 4, "left")
    col.close()
    made = [p for p in ws.iterdir()]
    for p in made:
        if p.is_file():
            p.chmod(0o444)
    ws.chmod(0o555)
    try:
        res = run_python_unprivileged(_CHILD.format(ws=str(ws), csv=str(tmp_path / "board.csv")), timeout=120)
    finally:
        ws.chmod(0o755)
        for p in made:
            if p.is_file():
                p.chmod(0o644)
        if writer is not None:
            writer.close()
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    for name in ("stats", "leaderboard", "images", "show", "matches", "sessions", "failures", "doctor", "models",
                 "csv"):
        assert out[name][0] == 0, (name, out[name])
    assert f"comparisons: {2 if leftovers else 1}" in out["stats"][1]
    assert (tmp_path / "board.csv").read_text().count("\n") == 5
    rc, _, err = out["vote"]
    assert rc == 2
    assert "read-only" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert out["open"] == "DatabaseReadOnlyError"  # the default is still to refuse: a vote must be kept
    assert out["api"] == (2 if leftovers else 1)
