"""The cull's optional cache: one SQLite file of per-file extraction results, so a re-run redoes only changed files.

A row is keyed by the file's IR ``path`` and valid while the file's size and mtime (ns) and the extraction's
version key (:data:`imagerank.cull.extract.EXTRACT_VERSION` plus the options that change the values) are the
same; the passes run again on every record (they are cheap). The file can live anywhere (``--cache PATH``); in a
workspace it defaults to ``cache/cull.sqlite``. The cache holds no decision, only measurements.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import ImagerankError

__all__ = ["CullCache"]

_SCHEMA = """CREATE TABLE IF NOT EXISTS extract (
  root TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, version TEXT NOT NULL,
  record TEXT NOT NULL, PRIMARY KEY (root, path))"""


class CullCache:
    """The extraction cache in the SQLite file ``path`` (created when missing).

    Args:
        path: the file. root: the input folder (absolute) the paths are relative to; one file can serve several.

    Raises:
        ImagerankError: ``path`` exists and is not an imagerank cull cache (not SQLite, or another schema).
    """

    def __init__(self, path: str | os.PathLike[str], root: str) -> None:
        self.path = Path(path)
        self.root = root
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path)
            self.db.execute(_SCHEMA)
            self.db.execute("SELECT root, path, size, mtime_ns, version, record FROM extract LIMIT 1").fetchall()
        except (sqlite3.DatabaseError, OSError) as e:
            raise ImagerankError(f"cull cache: expected an imagerank cull cache (SQLite) at {self.path}, "
                                 f"got {type(e).__name__}: {e}") from e

    def get(self, keys: Iterable[tuple[str, int, int]], version: str) -> dict[str, dict[str, Any]]:
        """The cached records of the (path, size, mtime_ns) keys still valid for ``version``: path -> record."""
        wanted = {p: (s, m) for p, s, m in keys}
        out: dict[str, dict[str, Any]] = {}
        rows = self.db.execute("SELECT path, size, mtime_ns, version, record FROM extract WHERE root = ?",
                               (self.root,))
        for path, size, mtime, ver, record in rows:
            if wanted.get(path) == (size, mtime) and ver == version:
                try:
                    out[path] = json.loads(record)
                except ValueError:
                    continue  # a damaged row: recomputed
        return out

    def put(self, records: Iterable[dict[str, Any]], version: str) -> None:
        """Store ``records`` (extraction results with ``path``, ``size``, ``mtime_ns``) in one transaction."""
        rows = [(self.root, r["path"], int(r["size"]), int(r["mtime_ns"]), version,
                 json.dumps(r, ensure_ascii=False, allow_nan=True)) for r in records]
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO extract VALUES (?, ?, ?, ?, ?, ?)", rows)

    def close(self) -> None:
        """Close the file."""
        self.db.close()
