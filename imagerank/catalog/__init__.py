"""The SQLite catalog (floor 1): connection and migrations, the workspace (:class:`Catalog`), and its tables by
concept: images (scan upsert, status, labels, failures), the vote log (sessions, record, undo, replay, doctor,
listeners), crops and suggestions."""

from .crops import Box, CropTable, validate_box
from .db import BUSY_TIMEOUT_MS, Database, connect
from .images import ImageTable, UpsertCounts
from .judge import JudgeConsistency
from .migrations import MIGRATIONS, SCHEMA_VERSION, migrate
from .suggestions import SuggestionTable
from .votes import DoctorReport, Match, Outcome, Session, VoteEvent, VoteLog, pair_key, pair_keys
from .workspace import DB_NAME, Catalog, CatalogLike, HasCatalog, as_catalog

__all__ = [
    "BUSY_TIMEOUT_MS",
    "DB_NAME",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Box",
    "Catalog",
    "CatalogLike",
    "CropTable",
    "Database",
    "DoctorReport",
    "HasCatalog",
    "ImageTable",
    "JudgeConsistency",
    "Match",
    "Outcome",
    "Session",
    "SuggestionTable",
    "UpsertCounts",
    "VoteEvent",
    "VoteLog",
    "as_catalog",
    "connect",
    "migrate",
    "pair_key",
    "pair_keys",
    "validate_box",
]
