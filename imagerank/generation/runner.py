"""The runner: grows the generation tree on one or more ComfyUI servers, unattended.

One worker thread per server, one job in flight per server, so four servers (one per GPU or machine) give four
times the throughput. Each worker repeats:

1. take a job (:func:`~imagerank.generation.jobs.claim`): first a job of its server left by a runner that is gone
   (reconciled: found on the server by its prompt id → followed; unknown → submitted again with the same id),
   then a queued job nobody holds, else :func:`~imagerank.generation.policy.next_job` (held for this server in
   the transaction that makes it);
2. upload the parent image (``POST /upload/image``), fill the step's workflow (input image, seed, output prefix)
   and ``POST /prompt`` with the job's prompt id;
3. follow it: wait on the websocket for an event (at most ``comfy_poll_s``), then poll (``/api/jobs/{id}`` or
   ``/history`` + ``/queue``) — the poll decides;
4. on success download the output (``GET /view``, checked names) to ``<workspace>/generated/<step>/`` and store it
   as a candidate in the transaction that marks the job ``done`` (then its thumbnail), so voting works on it like
   on any other image; on an execution error or an interrupt, mark the job ``failed`` with the reason (no retry);
   a prompt the server refuses (400) is ``failed`` with the node errors.

Connection errors are retried with backoff inside each request (``comfy_retries``); a server that stays away is
shown ``down`` and retried with growing pauses, its posted job kept for it (never run elsewhere). A restart of
the runner or of ComfyUI loses nothing and runs nothing twice (see :mod:`.jobs`).

From a notebook: ``runner = Runner(col, ["http://127.0.0.1:8188"]).start()`` runs in a background thread;
``runner.snapshot()`` is what a board polls (servers, job counts, jobs per minute); ``runner.stop()``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._util import utcnow
from ..catalog import CatalogLike, as_catalog
from ..errors import ComfyUIError, ImagerankError, InvalidArgumentError
from . import jobs as J
from .client import ComfyClient, PromptRejectedError, ServerUnreachableError, normalize_server_url, safe_output_ref
from .policy import next_job
from .steps import get_step, list_steps, prepare_prompt
from .tree import ChildLimitError, add_candidate, output_dir

__all__ = ["RunReport", "Runner", "ServerStatus", "run"]

log = logging.getLogger(__name__)


@dataclass
class ServerStatus:
    """What one server is doing (the board's row).

    Attributes:
        url: the server. state: ``starting``, ``idle``, ``uploading``, ``submitted``, ``running``, ``collecting``,
        ``down`` (unreachable; retried), ``stopped``. job_id / prompt_id / step: the job in flight (or None).
        node / progress: the node running and its progress (value, max) from the websocket. since: when the state
        began (ISO 8601 UTC). done / failed: jobs this worker finished. error: the last error (or None).
    """

    url: str
    state: str = "starting"
    job_id: int | None = None
    prompt_id: str | None = None
    step: str | None = None
    node: str | None = None
    progress: tuple[float, float] | None = None
    since: str = field(default_factory=utcnow)
    done: int = 0
    failed: int = 0
    error: str | None = None


@dataclass
class RunReport:
    """What a run did: jobs ``done``, ``failed``, ``cancelled`` (parent rejected meanwhile), ``resubmitted``
    (the server had lost them), ``adopted`` (left by an earlier runner), ``started`` (jobs taken), ``elapsed_s``,
    and ``errors`` (unexpected errors that stopped a worker, as strings)."""

    done: int = 0
    failed: int = 0
    cancelled: int = 0
    resubmitted: int = 0
    adopted: int = 0
    started: int = 0
    elapsed_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def jobs_per_minute(self) -> float:
        return 60.0 * self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def __str__(self) -> str:
        return (f"{self.done} done, {self.failed} failed, {self.cancelled} cancelled, {self.resubmitted} resubmitted"
                f", {self.adopted} adopted in {self.elapsed_s:.1f} s ({self.jobs_per_minute:.1f} jobs/min)"
                + (f"; errors: {'; '.join(self.errors)}" if self.errors else ""))


class Runner:
    """Drive ComfyUI servers until the tree is grown (or ``max_jobs`` ran, or :meth:`stop`).

    Args:
        col: the workspace (Catalog or Collection).
        servers: ComfyUI base URLs (``http://host:port``), one worker each (duplicates are dropped).
        max_jobs: take at most this many jobs in this run (None: no limit), >= 1.
        until_idle: return when there is nothing left to do (``next_job`` is None and no job is in flight);
            otherwise keep waiting for work (a rejected candidate, a raised T) until stopped.
        policy: ``raffle`` / ``thompson`` / ``uniform`` (default the workspace setting).
        stale_s: seconds without a heartbeat after which another runner's job is adopted (> 0).
        websocket: use the event websocket (polling alone works too).
        thumbnails: write each new candidate's thumbnail.
        on_job: called from the worker thread as ``on_job(job, status, detail)`` when a job ends (``done`` with
            the new image id as detail, ``failed`` / ``cancelled`` with the reason); exceptions it raises are
            logged, never stop the run.
        client_options: more keyword arguments for :class:`~imagerank.generation.client.ComfyClient`.

    Raises:
        InvalidArgumentError: no servers, a bad URL, ``max_jobs`` < 1, ``stale_s`` <= 0, no pipeline steps.
    """

    def __init__(self, col: CatalogLike, servers: Sequence[str], *, max_jobs: int | None = None,
                 until_idle: bool = False, policy: str | None = None, stale_s: float = 60.0, websocket: bool = True,
                 thumbnails: bool = True, client_options: dict[str, Any] | None = None,
                 on_job: Callable[[J.Job, str, str], None] | None = None) -> None:
        self.cat = as_catalog(col)
        urls = list(dict.fromkeys(normalize_server_url(u) for u in servers))
        if not urls:
            raise InvalidArgumentError("servers: expected at least one ComfyUI URL (like http://127.0.0.1:8188)")
        if max_jobs is not None and (isinstance(max_jobs, bool) or not isinstance(max_jobs, int) or max_jobs < 1):
            raise InvalidArgumentError(f"max_jobs: expected an integer >= 1 or None, got {max_jobs!r}")
        if stale_s <= 0:
            raise InvalidArgumentError(f"stale_s: expected seconds > 0, got {stale_s!r}")
        if not list_steps(self.cat):
            raise InvalidArgumentError(f"the workspace {self.cat.root} has no pipeline steps; add them first "
                                       "(`imagerank steps WS --add-examples`, `imagerank add-step ...`)")
        self.servers, self.max_jobs, self.until_idle = urls, max_jobs, until_idle
        self.policy, self.stale_s, self.websocket, self.thumbnails = policy, float(stale_s), websocket, thumbnails
        self.on_job = on_job
        self.runner_id = J.make_runner_id()
        g = self.cat.settings.generation
        self.poll_s, self.timeout_s = float(g.comfy_poll_s), float(g.comfy_job_timeout_s)
        self._client_kw = {"retries": int(g.comfy_retries), **(client_options or {})}
        self._status = {u: ServerStatus(u) for u in urls}
        self._report = RunReport()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._busy = 0
        self._mine: set[int] = set()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    # ------------------------------------------------------------------ public
    def run(self) -> RunReport:
        """Run in this thread until done (see the class); returns the report."""
        self._t0 = time.monotonic()
        self._stop.clear()
        workers = [threading.Thread(target=self._worker, args=(u,), name=f"imagerank-gen {u}", daemon=True)
                   for u in self.servers]
        for w in workers:
            w.start()
        try:
            for w in workers:
                while w.is_alive():
                    w.join(timeout=0.5)
        except KeyboardInterrupt:
            self._stop.set()
            for w in workers:
                w.join()
            raise
        finally:
            self._report.elapsed_s = time.monotonic() - self._t0
            self.cat.db.release_reader()
        return self._report

    def start(self) -> Runner:
        """Run in a background thread (for notebooks); returns itself. Poll :meth:`snapshot`, end with :meth:`stop`.

        Raises:
            InvalidArgumentError: it is running already.
        """
        if self.running:
            raise InvalidArgumentError("this runner is running already; stop() it first")
        self._thread = threading.Thread(target=self._background, name="imagerank-gen runner", daemon=True)
        self._thread.start()
        return self

    def _background(self) -> None:
        try:
            self.run()
        except Exception as e:  # kept for the board; run() already recorded the workers' errors
            with self._lock:
                self._report.errors.append(f"{type(e).__name__}: {e}")

    @property
    def running(self) -> bool:
        """True while the background thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, wait: bool = True, timeout: float | None = 60.0) -> RunReport:
        """Ask the workers to stop at their next poll: a job in flight is left on its server, and the next runner
        (this process or another) adopts it at once and collects it. With ``wait``, wait for the workers.
        Returns the report so far."""
        self._stop.set()
        if wait and self._thread is not None:
            self._thread.join(timeout)
        return self._report

    def join(self, timeout: float | None = None) -> RunReport:
        """Wait for the background run to end by itself (``until_idle`` / ``max_jobs``)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self._report

    @property
    def report(self) -> RunReport:
        return self._report

    def snapshot(self) -> dict[str, Any]:
        """What the board shows, safe to call from any thread: ``servers`` (list of :class:`ServerStatus` dicts),
        ``jobs`` (count per status in the catalog), ``report`` (this run's counts), ``running`` (bool),
        ``elapsed_s`` and ``jobs_per_minute`` (this run)."""
        with self._lock:
            servers = [asdict(s) for s in self._status.values()]
            report = asdict(self._report)
        counts = {s: 0 for s in J.JOB_STATUSES}
        for status, n in self.cat.db.query("SELECT status, COUNT(*) FROM generation_jobs GROUP BY status"):
            counts[str(status)] = int(n)
        elapsed = time.monotonic() - self._t0 if self._t0 else 0.0
        return {"servers": servers, "jobs": counts, "report": report, "running": self.running or self._busy > 0,
                "elapsed_s": elapsed, "jobs_per_minute": 60.0 * report["done"] / elapsed if elapsed > 0 else 0.0}

    # ------------------------------------------------------------------ workers
    def _set(self, url: str, **changes: Any) -> None:
        with self._lock:
            st = self._status[url]
            if "state" in changes and changes["state"] != st.state:
                st.since = utcnow()
            for k, v in changes.items():
                setattr(st, k, v)

    def _count(self, **inc: int) -> None:
        with self._lock:
            for k, v in inc.items():
                setattr(self._report, k, getattr(self._report, k) + v)

    def _take(self, url: str) -> J.Job | None:
        """A job for ``url``: its own or an orphaned one first (always), then, within ``max_jobs``, a queued one
        nobody holds or a new one from ``next_job``."""
        job = J.claim(self.cat, url, self.runner_id, stale_s=self.stale_s, queued=False)
        if job is not None:
            with self._lock:
                if job.id not in self._mine:
                    self._mine.add(job.id)
                    self._report.started += 1
                    self._report.adopted += 1
            return job
        with self._lock:  # reserve the slot first, so workers racing for the last one never overshoot
            if self.max_jobs is not None and self._report.started >= self.max_jobs:
                return None
            self._report.started += 1
        job = None
        try:
            job = J.claim(self.cat, url, self.runner_id, stale_s=self.stale_s) or next_job(
                self.cat, policy=self.policy, server=url, runner=self.runner_id)
        finally:
            with self._lock:
                if job is None:
                    self._report.started -= 1
                else:
                    self._mine.add(job.id)
        return job

    def _worker(self, url: str) -> None:
        client = ComfyClient(url, websocket=self.websocket, **self._client_kw)
        down_pause = self.poll_s
        try:
            client.connect_events()
            while not self._stop.is_set():
                job = None
                with self._lock:
                    self._busy += 1
                try:
                    job = self._take(url)
                    if job is not None:
                        self._drive(client, url, job)
                        down_pause = self.poll_s
                        continue
                except ServerUnreachableError as e:
                    self._set(url, state="down", error=str(e), node=None, progress=None)
                    if job is not None and J.release(self.cat, job.id, f"server {url} unreachable"):
                        with self._lock:
                            self._mine.discard(job.id)
                            self._report.started -= 1
                    self._stop.wait(down_pause)
                    down_pause = min(down_pause * 2, 30.0)
                    continue
                finally:
                    with self._lock:
                        self._busy -= 1
                self._set(url, state="idle", job_id=None, prompt_id=None, step=None, node=None, progress=None)
                with self._lock:
                    limit_hit = self.max_jobs is not None and self._report.started >= self.max_jobs
                    idle_everywhere = self._busy == 0
                if (self.until_idle or limit_hit) and idle_everywhere:
                    break
                self._stop.wait(self.poll_s)
        except Exception as e:
            log.exception("generation worker for %s stopped", url)
            with self._lock:
                self._report.errors.append(f"{url}: {type(e).__name__}: {e}")
            self._set(url, error=f"{type(e).__name__}: {e}")
        finally:
            self._set(url, state="stopped", node=None, progress=None)
            client.close()
            self.cat.db.release_reader()

    def _drive(self, client: ComfyClient, url: str, job: J.Job) -> None:
        """Submit (or reconcile) one job and follow it to its end."""
        step = get_step(self.cat, job.step_id)
        self._set(url, job_id=job.id, prompt_id=job.prompt_id, step=step.name, error=None, node=None,
                  progress=None)
        need_submit = True
        if job.attempts > 0 or job.status in ("submitted", "running"):
            state = client.state(job.prompt_id)  # reconcile: the server may hold, have run or have lost it
            need_submit = state.status == "unknown"
            if need_submit and job.attempts > 0:
                self._count(resubmitted=1)
        deadline = time.monotonic() + self.timeout_s
        while True:
            if need_submit and not self._submit(client, url, job, step):
                return
            need_submit = False
            while True:
                client.wait(job.prompt_id, self.poll_s)
                if self._stop.is_set():  # stopped: leave the job on its server for the next runner
                    J.unhold(self.cat, job.id)
                    client.forget(job.prompt_id)
                    return
                J.heartbeat(self.cat, self.runner_id, job.id)
                state = client.state(job.prompt_id)
                prog = client.progress if client.progress.get("prompt_id") == job.prompt_id else {}
                if state.status == "running":
                    J.mark_running(self.cat, job.id)
                    v, m = prog.get("value"), prog.get("max")
                    self._set(url, state="running", node=prog.get("node"),
                              progress=None if v is None or m is None else (float(v), float(m)))
                elif state.status == "pending":
                    self._set(url, state="submitted")
                if state.finished:
                    break
                if state.status == "unknown":  # the server lost it (restarted): submit again, same prompt id
                    self._count(resubmitted=1)
                    need_submit = True
                    break
                if time.monotonic() > deadline:
                    client.delete_queued([job.prompt_id])
                    client.interrupt(job.prompt_id)
                    self._finish(url, job, f"timed out after {self.timeout_s:.0f} s on {url}")
                    return
            if not need_submit:
                break
        client.forget(job.prompt_id)
        if state.status != "success":
            self._finish(url, job, f"{state.describe_error()} (on {url})")
            return
        self._collect(client, url, job, step, state.outputs)

    def _submit(self, client: ComfyClient, url: str, job: J.Job, step: Any) -> bool:
        """Upload the parent and post the prompt; False when the job ended (refused, parent gone)."""
        input_name = None
        if job.parent_id is not None:
            parent = self.cat.images.get(job.parent_id)
            if parent["status"] != "active":
                self._finish(url, job, f"parent {job.parent_id} is {parent['status']}", status="cancelled")
                return False
            self._set(url, state="uploading")
            suffix = "".join(c for c in (parent["filepath"].rsplit(".", 1)[-1]) if c.isalnum())[:5] or "png"
            # named by content: a re-upload of the same parent reuses the name, and two workspaces sharing a server
            # never overwrite each other's inputs
            try:
                digest = hashlib.sha256(Path(parent["filepath"]).read_bytes()).hexdigest()[:20]
            except OSError as e:
                self._finish(url, job, f"cannot read the parent's file {parent['filepath']}: {e.strerror or e}")
                return False
            input_name = client.upload_image(parent["filepath"], name=f"imagerank_{digest}.{suffix}")
        workflow = prepare_prompt(step, input_image=input_name, seed=job.seed, prompt_id=job.prompt_id)
        J.begin_post(self.cat, job.id)
        try:
            client.submit(workflow, job.prompt_id)
        except ServerUnreachableError as e:
            if not e.sent:
                J.undo_post(self.cat, job.id)
            raise
        except PromptRejectedError as e:
            self._finish(url, job, str(e))
            return False
        J.mark_submitted(self.cat, job.id)
        self._set(url, state="submitted")
        return True

    def _collect(self, client: ComfyClient, url: str, job: J.Job, step: Any, outputs: dict[str, Any]) -> None:
        self._set(url, state="collecting", node=None, progress=None)
        images = (outputs.get(step.output_node) or {}).get("images") or []
        if not images:
            self._finish(url, job, f"the server reported no image from output node {step.output_node} (on {url})")
            return
        try:
            filename, _, _ = safe_output_ref(images[0])
            dest = output_dir(self.cat, step) / f"{job.id:06d}_{job.prompt_id[:8]}.{filename.rsplit('.', 1)[-1]}"
            client.download(images[0], dest)
        except ServerUnreachableError:
            raise
        except ComfyUIError as e:
            self._finish(url, job, f"{e} (on {url})")
            return
        try:
            image_id = add_candidate(self.cat, step=step, path=dest, parent_id=job.parent_id, job_id=job.id)
        except (ChildLimitError, InvalidArgumentError) as e:  # the parent was rejected, N lowered meanwhile
            dest.unlink(missing_ok=True)
            self._finish(url, job, str(e), status="cancelled")
            return
        if self.thumbnails:
            from ..media.thumbs import ThumbnailCache

            try:
                ThumbnailCache(self.cat).build([image_id], progress=False)
            except ImagerankError as e:  # the candidate stays; the thumbnail is retried by the next pass
                log.warning("thumbnail of candidate %s: %s", image_id, e)
        self._count(done=1)
        self._tell(job, "done", str(image_id))
        with self._lock:
            self._status[url].done += 1

    def _tell(self, job: J.Job, status: str, detail: str) -> None:
        if self.on_job is not None:
            try:
                self.on_job(job, status, detail)
            except Exception:
                log.exception("on_job callback failed")

    def _finish(self, url: str, job: J.Job, error: str, status: str = "failed") -> None:
        J.mark_failed(self.cat, job.id, error, status=status)
        self._tell(job, status, error)
        self._count(**{"failed" if status == "failed" else "cancelled": 1})
        with self._lock:
            self._status[url].failed += status == "failed"
            self._status[url].error = error


def run(col: CatalogLike, servers: Sequence[str], **options: Any) -> RunReport:
    """``Runner(col, servers, **options).run()``: grow the tree in this thread and return the report."""
    return Runner(col, servers, **options).run()
