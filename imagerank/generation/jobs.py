"""Generation jobs: one row of ``generation_jobs`` per ComfyUI run, persisted from the moment it is chosen.

Life of a job (``status``)::

    queued ──claim──> queued+server ──POST /prompt──> submitted ──server runs it──> running ──> done
       │                  │                               │                            └──────> failed
       └─ parent rejected: cancelled                      └─ server lost it (restart): submitted again, same id

- ``prompt_id`` is a canonical lowercase UUID chosen when the job is made and kept for every resubmission, so a
  runner that restarts (or a server that restarted) finds the job by it: ComfyUI's ``/history`` or
  ``/api/jobs/{id}`` answer for a job it ran, ``/queue`` for one it holds; a job the server does not know is
  submitted again with the same id. A job is therefore never run twice and never lost.
- ``server`` and ``runner`` (``host:pid:token``) say who holds a job; ``heartbeat_at`` (Unix seconds) is refreshed
  while it is held. Another runner adopts a job whose runner is gone (same host, process dead) or silent for
  ``stale_s`` seconds.
- ``attempts`` counts submissions; timings: ``created_at``, ``submitted_at``, ``started_at``, ``finished_at``.

Jobs are made by :func:`imagerank.generation.policy.next_job` (in the transaction that reads the tree) and driven
by :class:`imagerank.generation.runner.Runner`; :func:`jobs_df` is what a board shows.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._util import utcnow
from ..catalog import CatalogLike, as_catalog
from ..errors import InvalidArgumentError, NotFoundError

if TYPE_CHECKING:
    import sqlite3

    import pandas as pd

__all__ = [
    "JOB_STATUSES",
    "Job",
    "begin_post",
    "canonical_prompt_id",
    "claim",
    "get_job",
    "heartbeat",
    "insert_job",
    "jobs_df",
    "make_runner_id",
    "mark_failed",
    "mark_running",
    "mark_submitted",
    "new_prompt_id",
    "release",
    "runner_alive",
    "undo_post",
    "unhold",
]

JOB_STATUSES = ("queued", "submitted", "running", "done", "failed", "cancelled")
_COLUMNS = ("j.id, j.step_id, s.name AS step, j.parent_id, j.seed, j.prompt_id, j.status, j.attempts, j.policy, "
            "j.server, j.runner, j.heartbeat_at, j.image_id, j.error, j.created_at, j.submitted_at, j.started_at, "
            "j.finished_at")
_FROM = "FROM generation_jobs j JOIN pipeline_steps s ON s.id = j.step_id"


@dataclass(frozen=True)
class Job:
    """One ``generation_jobs`` row.

    Attributes:
        id, step_id, step (name), parent_id (None for a base job), seed (>= 0), prompt_id (lowercase UUID),
        status (one of :data:`JOB_STATUSES`), attempts (submissions so far), policy (``raffle``/``thompson``/
        ``uniform``), server (URL or None), runner (holder or None), image_id (the candidate made, or None),
        error (why it failed or was cancelled), timestamps (ISO 8601 UTC strings or None).
    """

    id: int
    step_id: int
    step: str
    parent_id: int | None
    seed: int
    prompt_id: str
    status: str
    attempts: int
    policy: str | None
    server: str | None
    runner: str | None
    image_id: int | None
    error: str | None
    created_at: str
    submitted_at: str | None
    started_at: str | None
    finished_at: str | None


def _job(row: Any) -> Job:
    return Job(id=int(row["id"]), step_id=int(row["step_id"]), step=str(row["step"]),
               parent_id=None if row["parent_id"] is None else int(row["parent_id"]), seed=int(row["seed"]),
               prompt_id=str(row["prompt_id"]), status=str(row["status"]), attempts=int(row["attempts"]),
               policy=row["policy"], server=row["server"], runner=row["runner"],
               image_id=None if row["image_id"] is None else int(row["image_id"]), error=row["error"],
               created_at=str(row["created_at"]), submitted_at=row["submitted_at"], started_at=row["started_at"],
               finished_at=row["finished_at"])


def new_prompt_id() -> str:
    """A new prompt id: a random UUID in canonical lowercase form (``8-4-4-4-12`` hex digits)."""
    return str(uuid.uuid4())


def canonical_prompt_id(value: str) -> str:
    """``value`` if it is a UUID in canonical lowercase form (what ComfyUI accepts), else an error.

    Raises:
        InvalidArgumentError: not a UUID, or not canonical (upper case, braces, no dashes).
    """
    try:
        ok = str(uuid.UUID(str(value))) == value
    except ValueError:
        ok = False
    if not ok:
        raise InvalidArgumentError(f"prompt_id: expected a lowercase UUID like {new_prompt_id()!r}, got {value!r}")
    return value


def make_runner_id() -> str:
    """``host:pid:token``: who holds a job (the token tells two runners of one process apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def runner_alive(runner: str | None, heartbeat_at: float | None, *, stale_s: float, now: float | None = None
                 ) -> bool:
    """Whether the holder ``runner`` of a job is still there: on this host, its process exists; elsewhere, its
    heartbeat is younger than ``stale_s`` seconds. None (nobody) is not alive."""
    if not runner:
        return False
    now = time.time() if now is None else now
    host, _, rest = runner.partition(":")
    pid_text = rest.partition(":")[0]
    if host == socket.gethostname() and pid_text.isdigit():
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
    return heartbeat_at is not None and now - float(heartbeat_at) < stale_s


def insert_job(conn: sqlite3.Connection, *, step_id: int, parent_id: int | None, seed: int, policy: str,
               server: str | None = None, runner: str | None = None) -> int:
    """Insert a queued job inside the caller's transaction (``next_job``'s), held by ``server``/``runner`` when
    given; returns its id."""
    cur = conn.execute(
        "INSERT INTO generation_jobs (step_id, parent_id, seed, prompt_id, status, policy, created_at, server, "
        "runner, heartbeat_at) VALUES (?,?,?,?, 'queued', ?,?,?,?,?)",
        (step_id, parent_id, int(seed), new_prompt_id(), policy, utcnow(), server, runner,
         time.time() if runner else None))
    return int(cur.lastrowid or 0)


def get_job(col: CatalogLike, job_id: int) -> Job:
    """One job.

    Raises:
        NotFoundError: no such job.
    """
    rows = as_catalog(col).db.query(f"SELECT {_COLUMNS} {_FROM} WHERE j.id=?", (int(job_id),))
    if not rows:
        raise NotFoundError(f"generation job {job_id} does not exist")
    return _job(rows[0])


def jobs_df(col: CatalogLike, status: str | None = None) -> pd.DataFrame:
    """The jobs by id: the :class:`Job` fields plus ``queue_s`` (created → submitted) and ``run_s`` (submitted →
    finished), float seconds or NaN.

    Raises:
        InvalidArgumentError: ``status`` not one of :data:`JOB_STATUSES`.
    """
    import pandas as pd

    if status is not None and status not in JOB_STATUSES:
        raise InvalidArgumentError(f"status: expected one of {', '.join(JOB_STATUSES)}, got {status!r}")
    cat = as_catalog(col)
    from .steps import require_schema

    require_schema(cat)
    where, params = ("WHERE j.status=?", (status,)) if status else ("", ())
    df = cat.db.read_frame(f"SELECT {_COLUMNS} {_FROM} {where} ORDER BY j.id", params)
    for name in ("parent_id", "image_id"):
        df[name] = df[name].astype("Int64")
    stamps = {c: pd.to_datetime(df[c], utc=True, format="ISO8601") for c in ("created_at", "submitted_at",
                                                                             "finished_at")}
    df["queue_s"] = (stamps["submitted_at"] - stamps["created_at"]).dt.total_seconds()
    df["run_s"] = (stamps["finished_at"] - stamps["submitted_at"]).dt.total_seconds()
    return df


def claim(col: CatalogLike, server: str, runner: str, *, stale_s: float = 60.0, queued: bool = True
          ) -> Job | None:
    """Take the next job for ``server``, in one transaction: first a job of this server held by ``runner`` itself
    or by a runner that is gone (to reconcile it), then (with ``queued``) the oldest queued job nobody holds. The
    job gets ``server``, ``runner`` and a fresh heartbeat; its status is unchanged (the caller reconciles or
    submits).

    Returns:
        The job, or None when there is nothing to take.
    """
    cat = as_catalog(col)
    now = time.time()
    with cat.db.atomic() as conn:
        rows = conn.execute(f"SELECT {_COLUMNS} {_FROM} WHERE j.status IN ('queued', 'submitted', 'running') "
                            "AND j.server=? ORDER BY j.id", (server,)).fetchall()
        pick = next((r for r in rows if r["runner"] == runner
                     or not runner_alive(r["runner"], r["heartbeat_at"], stale_s=stale_s, now=now)), None)
        if pick is None and queued:
            pick = conn.execute(f"SELECT {_COLUMNS} {_FROM} WHERE j.status='queued' AND j.server IS NULL "
                                "ORDER BY j.id LIMIT 1").fetchone()
        if pick is None:
            return None
        conn.execute("UPDATE generation_jobs SET server=?, runner=?, heartbeat_at=? WHERE id=?",
                     (server, runner, now, int(pick["id"])))
    return get_job(cat, int(pick["id"]))


def heartbeat(col: CatalogLike, runner: str, job_id: int) -> None:
    """Refresh the heartbeat of a job ``runner`` holds (so no other runner adopts it)."""
    as_catalog(col).db.execute("UPDATE generation_jobs SET heartbeat_at=? WHERE id=? AND runner=?",
                               (time.time(), int(job_id), runner))


def begin_post(col: CatalogLike, job_id: int) -> None:
    """About to POST /prompt: one more attempt. From here on the server may know the job, so it stays with that
    server (see :func:`release`)."""
    as_catalog(col).db.execute("UPDATE generation_jobs SET attempts=attempts+1, heartbeat_at=? WHERE id=?",
                               (time.time(), int(job_id)))


def unhold(col: CatalogLike, job_id: int) -> None:
    """Let go of a job in flight without ending it (the runner was stopped): it keeps its server, and the next
    runner on that server adopts it at once (no heartbeat to wait out)."""
    as_catalog(col).db.execute("UPDATE generation_jobs SET runner=NULL, heartbeat_at=NULL WHERE id=? "
                               "AND status IN ('queued', 'submitted', 'running')", (int(job_id),))


def undo_post(col: CatalogLike, job_id: int) -> None:
    """The POST never reached the server (no connection was made): take the attempt back, so the job may be
    released to another server."""
    as_catalog(col).db.execute("UPDATE generation_jobs SET attempts=attempts-1 WHERE id=? AND attempts > 0 "
                               "AND status='queued'", (int(job_id),))


def mark_submitted(col: CatalogLike, job_id: int) -> None:
    """POST /prompt was accepted (or the server already holds the job): status ``submitted``, ``submitted_at``
    set once."""
    as_catalog(col).db.execute(
        "UPDATE generation_jobs SET status='submitted', submitted_at=COALESCE(submitted_at, ?), heartbeat_at=? "
        "WHERE id=? AND status IN ('queued', 'submitted')", (utcnow(), time.time(), int(job_id)))


def mark_running(col: CatalogLike, job_id: int) -> None:
    """The server started it: status ``running`` (``started_at`` set once)."""
    as_catalog(col).db.execute(
        "UPDATE generation_jobs SET status='running', started_at=COALESCE(started_at, ?), heartbeat_at=? "
        "WHERE id=? AND status IN ('queued', 'submitted', 'running')", (utcnow(), time.time(), int(job_id)))


def mark_failed(col: CatalogLike, job_id: int, error: str, *, status: str = "failed") -> None:
    """The job ended without a candidate: ``failed`` (an execution error, a refused prompt, a timeout) or
    ``cancelled`` (its parent was rejected), with the reason."""
    if status not in ("failed", "cancelled"):
        raise InvalidArgumentError(f"status: expected failed or cancelled, got {status!r}")
    as_catalog(col).db.execute("UPDATE generation_jobs SET status=?, error=?, finished_at=? WHERE id=?",
                               (status, error, utcnow(), int(job_id)))


def release(col: CatalogLike, job_id: int, error: str) -> bool:
    """Give a job its server never received back to the queue, for any server (its server is unreachable).

    Only a job never posted (``attempts == 0``) is released: once a POST was attempted the server may hold the
    job, so it stays with that server until the server answers (then it is followed, or submitted again with the
    same prompt id), and it can never run on two servers.

    Returns:
        True when the job was released.
    """
    cur = as_catalog(col).db.execute(
        "UPDATE generation_jobs SET server=NULL, runner=NULL, heartbeat_at=NULL, error=? "
        "WHERE id=? AND status='queued' AND attempts=0", (error, int(job_id)))
    return cur.rowcount == 1
