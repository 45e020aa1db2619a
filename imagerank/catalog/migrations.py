"""Numbered schema migrations, tracked in ``PRAGMA user_version`` and applied atomically.

Add a migration by decorating a function ``@migration(n)`` with the next number; never edit a released one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from ..errors import InvalidArgumentError, SchemaVersionError
from .db import Database

__all__ = ["MIGRATIONS", "READ_COMPATIBLE_FROM", "SCHEMA_VERSION", "migrate", "migration"]

MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {}


def migration(number: int) -> Callable[[Callable[[sqlite3.Connection], None]], Callable[[sqlite3.Connection], None]]:
    """Register ``fn`` as schema migration ``number`` (1, 2, 3 ... without gaps)."""

    def register(fn: Callable[[sqlite3.Connection], None]) -> Callable[[sqlite3.Connection], None]:
        if number in MIGRATIONS:
            raise InvalidArgumentError(
                f"migration {number} registered twice ({MIGRATIONS[number].__name__}, {fn.__name__})"
            )
        MIGRATIONS[number] = fn
        return fn

    return register


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run ``;``-separated statements inside the caller's transaction (``executescript`` would commit)."""
    for statement in script.split(";\n"):
        body = "\n".join(line for line in statement.splitlines() if not line.strip().startswith("--")).strip()
        if body:
            conn.execute(body)


@migration(1)
def _initial(conn: sqlite3.Connection) -> None:
    _run_script(
        conn,
        """
        CREATE TABLE pipeline_steps (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            step_order INTEGER NOT NULL,
            workflow_json TEXT,
            max_children INTEGER,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
        );
        CREATE TABLE images (
            id INTEGER PRIMARY KEY,
            filepath TEXT NOT NULL UNIQUE,
            filename TEXT NOT NULL,
            mu REAL NOT NULL,
            sigma REAL NOT NULL,
            prior_mu REAL,
            prior_sigma REAL,
            comparison_count INTEGER NOT NULL DEFAULT 0,
            added_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
            last_compared_at TEXT,
            size INTEGER,
            mtime_ns INTEGER,
            width INTEGER,
            height INTEGER,
            status TEXT NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'missing', 'corrupt', 'rejected')),
            status_reason TEXT,
            thumb_fingerprint TEXT,
            step_id INTEGER REFERENCES pipeline_steps(id),
            parent_id INTEGER REFERENCES images(id),
            child_count INTEGER
        );
        CREATE INDEX idx_images_exposure ON images ((mu - 3 * sigma));
        CREATE INDEX idx_images_sigma ON images (sigma);
        CREATE INDEX idx_images_status ON images (status);
        CREATE INDEX idx_images_parent ON images (parent_id);

        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
            ended_at TEXT,
            voter TEXT,
            strategy TEXT,
            note TEXT
        );

        -- The append-only vote log. kind: win (pairwise), draw, skip, ranking (N-way, ties share a rank).
        -- rated = 1 when the match changed ratings (a skip is rated only with skip_as_draw).
        CREATE TABLE matches (
            id INTEGER PRIMARY KEY,
            session_id INTEGER REFERENCES sessions(id),
            voter TEXT,
            kind TEXT NOT NULL CHECK (kind IN ('win', 'draw', 'skip', 'ranking')),
            rated INTEGER NOT NULL DEFAULT 1,
            source TEXT NOT NULL DEFAULT 'user',
            decision_ms REAL,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
            undone INTEGER NOT NULL DEFAULT 0,
            undone_at TEXT
        );
        CREATE INDEX idx_matches_session ON matches (session_id);

        CREATE TABLE match_entries (
            match_id INTEGER NOT NULL REFERENCES matches(id),
            image_id INTEGER NOT NULL REFERENCES images(id),
            rank INTEGER NOT NULL,
            position INTEGER,
            mu_before REAL NOT NULL,
            sigma_before REAL NOT NULL,
            mu_after REAL NOT NULL,
            sigma_after REAL NOT NULL,
            PRIMARY KEY (match_id, image_id)
        );
        CREATE INDEX idx_entries_image ON match_entries (image_id, match_id);

        -- The seed's pairwise view: every kept, rated match decomposed into (winner, loser) pairs;
        -- tied entries give one row each with was_draw = 1 (lower screen position first).
        CREATE VIEW comparisons AS
            SELECT m.id AS match_id, a.image_id AS winner_id, b.image_id AS loser_id,
                   (a.rank = b.rank) AS was_draw, m.created_at AS compared_at, m.session_id AS session_id
            FROM matches m
            JOIN match_entries a ON a.match_id = m.id
            JOIN match_entries b ON b.match_id = m.id
            WHERE m.undone = 0 AND m.rated = 1
              AND (a.rank < b.rank
                   OR (a.rank = b.rank AND COALESCE(a.position, a.image_id) < COALESCE(b.position, b.image_id)));

        CREATE TABLE labels (
            id INTEGER PRIMARY KEY,
            image_id INTEGER NOT NULL REFERENCES images(id),
            label TEXT NOT NULL CHECK (label IN ('good', 'bad', 'flag')),
            source TEXT NOT NULL DEFAULT 'user',
            note TEXT,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
        );
        CREATE INDEX idx_labels_image ON labels (image_id);

        CREATE TABLE crops (
            id INTEGER PRIMARY KEY,
            image_id INTEGER NOT NULL REFERENCES images(id),
            x REAL NOT NULL CHECK (x >= 0 AND x <= 1),
            y REAL NOT NULL CHECK (y >= 0 AND y <= 1),
            w REAL NOT NULL CHECK (w > 0 AND x + w <= 1.000001),
            h REAL NOT NULL CHECK (h > 0 AND y + h <= 1.000001),
            aspect TEXT,
            source TEXT NOT NULL DEFAULT 'user',
            model TEXT,
            confidence REAL,
            accepted INTEGER,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
        );
        CREATE INDEX idx_crops_image ON crops (image_id);

        CREATE TABLE suggestions (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('winner', 'crop')),
            model TEXT NOT NULL,
            payload TEXT NOT NULL,
            confidence REAL,
            decision TEXT CHECK (decision IN ('approve', 'edit', 'reject')),
            decided_payload TEXT,
            match_id INTEGER REFERENCES matches(id),
            crop_id INTEGER REFERENCES crops(id),
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
            decided_at TEXT
        );

        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            step_id INTEGER REFERENCES pipeline_steps(id),
            parent_id INTEGER REFERENCES images(id),
            prompt_id TEXT,
            status TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
            payload TEXT,
            error TEXT,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
            finished_at TEXT
        );

        -- Every failure of a batch pass (scan, thumbnails, features ...), never dropped silently.
        CREATE TABLE failures (
            id INTEGER PRIMARY KEY,
            image_id INTEGER REFERENCES images(id),
            filepath TEXT,
            stage TEXT NOT NULL,
            reason TEXT NOT NULL,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
        );
        CREATE INDEX idx_failures_image ON failures (image_id, stage);
        """
    )



@migration(2)
def _import_rows(conn: sqlite3.Connection) -> None:
    _run_script(
        conn,
        """
        -- One row per imported log row (selection or crop logs), written in the transaction that stores its match
        -- or crop: a rerun of an interrupted import skips the rows already imported. row_key is the SHA-256 of the
        -- row as resolved (image ids, choice or box, voter, time) and its occurrence number in the file.
        CREATE TABLE import_rows (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('selection', 'crop')),
            row_key TEXT NOT NULL,
            file_sha256 TEXT NOT NULL,
            line INTEGER NOT NULL,
            match_id INTEGER REFERENCES matches(id),
            crop_id INTEGER REFERENCES crops(id),
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
        );
        CREATE INDEX idx_import_rows_key ON import_rows (kind, row_key)
        """
    )


@migration(3)
def _generation_tree(conn: sqlite3.Connection) -> None:
    _run_script(
        conn,
        """
        -- The generation tree (imagerank.generation): which node of a step's ComfyUI API workflow takes the input
        -- image, the seed, and saves the output; seeds are mapped into [seed_min, seed_max] when both are set.
        ALTER TABLE pipeline_steps ADD COLUMN input_node TEXT;
        ALTER TABLE pipeline_steps ADD COLUMN output_node TEXT;
        ALTER TABLE pipeline_steps ADD COLUMN seed_node TEXT;
        ALTER TABLE pipeline_steps ADD COLUMN seed_input TEXT;
        ALTER TABLE pipeline_steps ADD COLUMN seed_min INTEGER;
        ALTER TABLE pipeline_steps ADD COLUMN seed_max INTEGER;
        ALTER TABLE pipeline_steps ADD COLUMN workflow_source TEXT;
        -- One row per generation job (the old `jobs` table stays unused: its status CHECK has no 'submitted').
        -- prompt_id is chosen when the job is made (a lowercase UUID) and kept across resubmissions, so a
        -- restarted runner or server finds the job by it. image_id is the candidate the job produced. A job with
        -- a server is held by runner (host:pid:token) while heartbeat_at (Unix seconds) is fresh.
        CREATE TABLE generation_jobs (
            id INTEGER PRIMARY KEY,
            step_id INTEGER NOT NULL REFERENCES pipeline_steps(id),
            parent_id INTEGER REFERENCES images(id),
            seed INTEGER NOT NULL,
            prompt_id TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'submitted', 'running', 'done', 'failed', 'cancelled')),
            attempts INTEGER NOT NULL DEFAULT 0,
            policy TEXT,
            server TEXT,
            runner TEXT,
            heartbeat_at REAL,
            image_id INTEGER REFERENCES images(id),
            error TEXT,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
            submitted_at TEXT,
            started_at TEXT,
            finished_at TEXT
        );
        CREATE INDEX idx_generation_jobs_status ON generation_jobs (status);
        CREATE INDEX idx_generation_jobs_parent ON generation_jobs (parent_id);
        CREATE INDEX idx_images_step ON images (step_id)
        """
    )


@migration(4)
def _rating_model(conn: sqlite3.Connection) -> None:
    _run_script(
        conn,
        """
        -- The rating model of the vote log: the judge's performance SD beta (OpenSkill units) fitted to the votes
        -- (imagerank.ratings.consistency). The stored ratings are the replay of the kept matches with it; no row
        -- means openskill's default 25/6 (every catalog made before this table).
        CREATE TABLE rating_model (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            beta REAL NOT NULL CHECK (beta > 0),
            fitted_votes INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
        )
        """
    )


@migration(5)
def _plans(conn: sqlite3.Connection) -> None:
    _run_script(
        conn,
        """
        -- Plans run from plain-words intents (imagerank.cull.intents): the validated plan as JSON, the parser that
        -- made it, the counts per step and what ran; session_id is the voting session the plan started (if any).
        CREATE TABLE plans (
            id INTEGER PRIMARY KEY,
            intent TEXT NOT NULL,
            plan_json TEXT NOT NULL,
            parser TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
            session_id INTEGER REFERENCES sessions(id),
            result_json TEXT,
            error TEXT,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
            finished_at TEXT
        );
        CREATE INDEX idx_plans_session ON plans (session_id);
        -- The selection a plan ran on, in its order (a plan's voting session draws its pairs from these).
        CREATE TABLE plan_images (
            plan_id INTEGER NOT NULL REFERENCES plans(id),
            image_id INTEGER NOT NULL REFERENCES images(id),
            position INTEGER NOT NULL,
            PRIMARY KEY (plan_id, image_id)
        )
        """
    )


@migration(6)
def _autopick(conn: sqlite3.Connection) -> None:
    _run_script(
        conn,
        """
        -- Auto-pick (imagerank.autopick): one row per subject (a name from the user's list) with its state
        -- (pending -> picked / flagged / error), the reason, the picked image and where it came from (source URL,
        -- licence, author, attribution line), and every candidate scored for it. Candidates keep their CLIP
        -- embedding (float32 bytes) and a small JPEG preview so labels train the head and the label panel works
        -- offline; their full-size files are never downloaded (only the winner's is).
        CREATE TABLE autopick_subjects (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            category TEXT,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'picked', 'flagged', 'error')),
            reason TEXT,
            image_id INTEGER REFERENCES images(id),
            candidate_id INTEGER,
            score REAL,
            source TEXT,
            source_url TEXT,
            page_url TEXT,
            licence TEXT,
            licence_url TEXT,
            author TEXT,
            attribution TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
            updated_at TEXT
        );
        CREATE INDEX idx_autopick_subjects_status ON autopick_subjects (status);
        CREATE TABLE autopick_candidates (
            id INTEGER PRIMARY KEY,
            subject_id INTEGER NOT NULL REFERENCES autopick_subjects(id),
            position INTEGER NOT NULL,
            title TEXT NOT NULL,
            source TEXT NOT NULL,
            source_url TEXT,
            thumb_url TEXT,
            page_url TEXT,
            licence TEXT,
            licence_url TEXT,
            author TEXT,
            attribution TEXT,
            mime TEXT,
            width INTEGER,
            height INTEGER,
            aesthetic REAL,
            similarity REAL,
            score REAL,
            status TEXT NOT NULL CHECK (status IN ('scored', 'picked', 'excluded', 'failed')),
            reason TEXT,
            embedding BLOB,
            embedding_model TEXT,
            preview BLOB,
            label TEXT CHECK (label IN ('good', 'bad')),
            label_source TEXT,
            labelled_at TEXT,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
        );
        CREATE INDEX idx_autopick_candidates_subject ON autopick_candidates (subject_id)
        """
    )


SCHEMA_VERSION = max(MIGRATIONS)
#: The oldest schema this code reads without migrating it (a read-only workspace): migration 2 only added the
#: ``import_rows`` table that imports write, so a 0.1.0 catalog (version 1) reads as it is.
READ_COMPATIBLE_FROM = 1


def migrate(db: Database) -> int:
    """Apply every migration above the file's ``user_version``, each in its own transaction.

    Returns:
        The schema version after migrating.

    Raises:
        SchemaVersionError: the file is newer than this code.
    """
    with db.lock:
        current = int(db.query("PRAGMA user_version")[0][0])
        target = max(MIGRATIONS)
        if current > target:
            raise SchemaVersionError(
                f"{db.path} has schema version {current}; this imagerank knows up to {target}. Upgrade imagerank."
            )
        for number in range(current + 1, target + 1):
            with db.atomic() as conn:
                # re-check under the write lock: another process may have migrated meanwhile
                now = int(conn.execute("PRAGMA user_version").fetchone()[0])
                if now >= number:
                    continue
                MIGRATIONS[number](conn)
                conn.execute(f"PRAGMA user_version = {number}")
        return int(db.query("PRAGMA user_version")[0][0])
