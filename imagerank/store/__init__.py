"""SQLite catalog: connection (WAL, busy_timeout, immediate transactions) and numbered migrations."""

from .db import Database, connect
from .migrations import MIGRATIONS, SCHEMA_VERSION, migrate

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Database", "connect", "migrate"]
