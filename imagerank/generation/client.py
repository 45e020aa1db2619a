"""A ComfyUI client on httpx (HTTP) and websockets (events), written against ComfyUI's own API.

Endpoints used (all under the server's base URL; ComfyUI serves each both at ``/x`` and ``/api/x``):

- ``POST /upload/image`` (multipart ``image``, ``subfolder``, ``overwrite``) → ``{"name", "subfolder", "type"}``;
  a ``LoadImage`` node takes ``"<subfolder>/<name>"``.
- ``POST /prompt`` with ``{"prompt": <API workflow>, "client_id": <ours>, "prompt_id": <canonical lowercase
  UUID>}`` → ``{"prompt_id", "number", "node_errors"}``; a refused prompt is HTTP 400 with ``{"error": {...},
  "node_errors": {node_id: {"errors": [...], "class_type", "dependent_outputs"}}}``: :class:`PromptRejectedError`
  whose message lists every node error.
- ``GET /api/jobs/{id}`` (newer servers: ``pending``/``in_progress``/``completed``/``failed``, 404
  ``{"error": "Job not found"}``), else ``GET /history/{id}`` (``{}`` until the job has finished) and
  ``GET /queue`` (``queue_running``/``queue_pending`` items ``[number, prompt_id, ...]``): :meth:`ComfyClient.state`.
- ``GET /view?filename=&subfolder=&type=output`` for the outputs; ``POST /interrupt``; ``POST /queue``
  ``{"delete": [...]}``; ``GET /system_stats``, ``GET /object_info[/{class}]``.
- ``GET /ws?clientId=<ours>``: JSON events ``status``, ``execution_start``, ``executing`` (``node`` null: done),
  ``progress`` (``value``/``max``), ``executed``, ``execution_success``, ``execution_error``,
  ``execution_interrupted`` (binary preview frames are ignored).

Polling is the source of truth: the websocket (opened before posting) only wakes the poll early
(:meth:`ComfyClient.wait`), because ComfyUI's websocket is known to stall after long uptimes while HTTP keeps
working. Connection errors (refused, reset, timeouts: ``httpx.TransportError``) are retried with exponential
backoff (``tenacity``: ``retries`` attempts, waits ``backoff_s * 2**k`` up to ``max_backoff_s``), then raise
:class:`ServerUnreachableError`; HTTP answers (400, 500) are never retried. Output file names and subfolders
from the server are checked (:func:`safe_output_ref`): nothing a server answers can write outside the output
folder.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import ComfyUIError, InvalidArgumentError

__all__ = [
    "ComfyClient",
    "ExecutionFailedError",
    "JobState",
    "PromptRejectedError",
    "ServerUnreachableError",
    "normalize_server_url",
    "safe_output_ref",
]

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


class ServerUnreachableError(ComfyUIError):
    """The server could not be reached after every retry (refused, reset, timed out); ``url`` says which, and
    ``sent`` is False when no connection was ever made (so the request surely did not arrive)."""

    def __init__(self, message: str, url: str, sent: bool = True) -> None:
        super().__init__(message)
        self.url = url
        self.sent = sent


class PromptRejectedError(ComfyUIError):
    """``POST /prompt`` answered 400: ``error`` (ComfyUI's error object) and ``node_errors`` (per node id)."""

    def __init__(self, message: str, error: Any, node_errors: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.error = error
        self.node_errors = dict(node_errors)


class ExecutionFailedError(ComfyUIError):
    """The server ran the prompt and it failed (``execution_error``) or was interrupted."""


def normalize_server_url(url: str) -> str:
    """``http(s)://host[:port][/path]`` without a trailing slash.

    Raises:
        InvalidArgumentError: not an http or https URL with a host.
    """
    parts = urllib.parse.urlsplit(str(url).strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise InvalidArgumentError(f"server: expected a URL like http://127.0.0.1:8188, got {url!r}")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def safe_output_ref(ref: Mapping[str, Any]) -> tuple[str, str, str]:
    """``(filename, subfolder, type)`` of one output image the server reported, checked.

    Raises:
        ComfyUIError: a filename with a path separator, ``..``, a NUL or a leading dot; a subfolder that is
            absolute or climbs (``..``); a type other than output/temp; a suffix that is not an image's.
    """
    filename, subfolder, kind = ref.get("filename"), ref.get("subfolder", "") or "", ref.get("type", "output")
    bad = None
    if not isinstance(filename, str) or not filename or any(c in filename for c in "/\\\0") \
            or filename.startswith(".") or ".." in filename:
        bad = f"filename {filename!r}"
    elif not isinstance(subfolder, str) or "\0" in subfolder or "\\" in subfolder \
            or PurePosixPath(subfolder).is_absolute() or ".." in PurePosixPath(subfolder).parts:
        bad = f"subfolder {subfolder!r}"
    elif kind not in ("output", "temp"):
        bad = f"type {kind!r}"
    elif PurePosixPath(filename).suffix.lower() not in IMAGE_SUFFIXES:
        bad = f"file type of {filename!r} (expected {', '.join(IMAGE_SUFFIXES)})"
    if bad:
        raise ComfyUIError(f"the server reported an output with an unsafe or unexpected {bad}; not downloaded")
    return str(filename), str(subfolder), str(kind)


@dataclass
class JobState:
    """Where a prompt stands on one server.

    Attributes:
        status: ``pending`` (queued), ``running``, ``success``, ``error`` (``execution_error``), ``interrupted``,
            or ``unknown`` (the server does not know the id: never received, or lost in a restart).
        outputs: node id -> outputs (``{"images": [{"filename", "subfolder", "type"}]}``) when finished.
        error: the ``execution_error`` event's data (``node_id``, ``node_type``, ``exception_message`` ...).
        source: ``jobs`` (``/api/jobs``) or ``history`` (``/history`` + ``/queue``).
    """

    status: str
    outputs: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    source: str = "history"

    @property
    def finished(self) -> bool:
        return self.status in ("success", "error", "interrupted")

    def describe_error(self) -> str:
        """One line: the failing node, its type and the exception (or ``interrupted``)."""
        if self.status == "interrupted":
            node = (self.error or {}).get("node_id")
            return "interrupted" + (f" at node {node} ({(self.error or {}).get('node_type')})" if node else "")
        e = self.error or {}
        msg = str(e.get("exception_message", "")).strip() or "no message"
        return f"execution error at node {e.get('node_id')} ({e.get('node_type')}): {e.get('exception_type', '')}: " \
               f"{msg}"


def _messages_state(status: Mapping[str, Any] | None) -> tuple[str | None, dict[str, Any] | None]:
    """From ``status.messages``: ``interrupted``/``error`` with the event data, or (None, None)."""
    for entry in (status or {}).get("messages", []) or []:
        if isinstance(entry, (list, tuple)) and len(entry) >= 2 and isinstance(entry[1], dict):
            if entry[0] == "execution_interrupted":
                return "interrupted", dict(entry[1])
            if entry[0] == "execution_error":
                return "error", dict(entry[1])
    return None, None


def _format_node_errors(node_errors: Mapping[str, Any]) -> str:
    parts = []
    for node_id, info in node_errors.items():
        errs = info.get("errors", []) if isinstance(info, dict) else []
        text = "; ".join(f"{e.get('message', '')}" + (f": {e.get('details')}" if e.get("details") else "")
                         for e in errs if isinstance(e, dict)) or json.dumps(info)[:200]
        cls = info.get("class_type", "?") if isinstance(info, dict) else "?"
        parts.append(f"node {node_id} ({cls}): {text}")
    return "; ".join(parts)


class ComfyClient:
    """One ComfyUI server.

    Args:
        url: the server, ``http://host:port`` (see :func:`normalize_server_url`).
        client_id: our websocket client id (default a random hex UUID); sent with every prompt so the server
            addresses its events to us.
        retries: attempts per request on connection errors, >= 1.
        timeout_s: HTTP timeout per request, seconds > 0.
        backoff_s / max_backoff_s: first wait and cap of the exponential backoff between attempts, seconds.
        websocket: open the event socket (:meth:`connect_events`); False: poll only.

    Thread-safety: one runner thread per client; :meth:`snapshot` may be read from any thread.

    Raises:
        InvalidArgumentError: a bad URL or number.
    """

    def __init__(self, url: str, *, client_id: str | None = None, retries: int = 5, timeout_s: float = 30.0,
                 backoff_s: float = 0.5, max_backoff_s: float = 8.0, websocket: bool = True) -> None:
        import httpx

        self.url = normalize_server_url(url)
        if retries < 1 or timeout_s <= 0 or backoff_s < 0 or max_backoff_s < backoff_s:
            raise InvalidArgumentError(f"retries >= 1, timeout_s > 0, 0 <= backoff_s <= max_backoff_s expected, got "
                                       f"{retries}, {timeout_s}, {backoff_s}, {max_backoff_s}")
        self.client_id = client_id or uuid.uuid4().hex
        self.retries, self.backoff_s, self.max_backoff_s = int(retries), float(backoff_s), float(max_backoff_s)
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s)
        self._jobs_api: bool | None = None  # unknown until the first /api/jobs answer
        self._use_ws = websocket
        self._ws_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.events = 0  # websocket messages received
        self.progress: dict[str, Any] = {}  # prompt_id, node, value, max of the latest event

    # ------------------------------------------------------------------ http
    def _request(self, method: str, path: str, **kw: Any) -> Any:
        import httpx
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

        retrying = Retrying(retry=retry_if_exception_type(httpx.TransportError),
                            stop=stop_after_attempt(self.retries),
                            wait=wait_exponential(multiplier=self.backoff_s, max=self.max_backoff_s), reraise=True)
        try:
            for attempt in retrying:
                with attempt:
                    return self._http.request(method, path, **kw)
        except httpx.TransportError as e:
            raise ServerUnreachableError(
                f"ComfyUI at {self.url} did not answer {method} {path} after {self.retries} attempts: "
                f"{type(e).__name__}: {e}", self.url, sent=not isinstance(e, (httpx.ConnectError,
                                                                              httpx.ConnectTimeout))) from e
        raise ServerUnreachableError(f"ComfyUI at {self.url}: no attempt made", self.url)  # pragma: no cover

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        r = self._request(method, path, **kw)
        if r.status_code >= 400:
            raise ComfyUIError(f"ComfyUI at {self.url} answered {method} {path} with HTTP {r.status_code}: "
                               f"{r.text[:300]}")
        try:
            return r.json()
        except ValueError as e:
            raise ComfyUIError(f"ComfyUI at {self.url} answered {method} {path} with something that is not JSON: "
                               f"{r.text[:200]!r}") from e

    def system_stats(self) -> dict[str, Any]:
        """``GET /system_stats`` (``system.comfyui_version``, ``devices``)."""
        return dict(self._json("GET", "/system_stats"))

    def object_info(self, node_class: str | None = None) -> dict[str, Any]:
        """``GET /object_info`` or ``/object_info/{class}``: node class -> its inputs and outputs."""
        return dict(self._json("GET", "/object_info" + (f"/{urllib.parse.quote(node_class)}" if node_class else "")))

    def upload_image(self, path: str | Path, *, name: str | None = None, subfolder: str = "imagerank") -> str:
        """Upload a file into the server's input folder (overwriting a file of that name).

        Returns:
            The name a ``LoadImage`` node takes: ``"<subfolder>/<name>"`` (or ``name`` without a subfolder).

        Raises:
            InvalidArgumentError: the file cannot be read. ComfyUIError: the server refused it.
        """
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as e:
            raise InvalidArgumentError(f"path: cannot read {p}: {e.strerror or e}") from e
        mime = mimetypes.guess_type(name or p.name)[0] or "application/octet-stream"
        ans = self._json("POST", "/upload/image", files={"image": (name or p.name, data, mime)},
                         data={"subfolder": subfolder, "overwrite": "true", "type": "input"})
        sub = ans.get("subfolder") or ""
        return f"{sub}/{ans['name']}" if sub else str(ans["name"])

    def submit(self, workflow: Mapping[str, Any], prompt_id: str) -> dict[str, Any]:
        """``POST /prompt`` with our client id and ``prompt_id``.

        Returns:
            The server's answer (``prompt_id``, ``number``, ``node_errors``).

        Raises:
            PromptRejectedError: HTTP 400, with the node errors in the message and in ``node_errors``.
            ComfyUIError: another HTTP error. ServerUnreachableError: after the retries.
        """
        r = self._request("POST", "/prompt", json={"prompt": dict(workflow), "client_id": self.client_id,
                                                    "prompt_id": prompt_id})
        if r.status_code == 400:
            try:
                body = r.json()
            except ValueError:
                body = {"error": r.text[:300], "node_errors": {}}
            err, nodes = body.get("error"), body.get("node_errors") or {}
            what = err.get("message", "") if isinstance(err, dict) else str(err)
            detail = err.get("details", "") if isinstance(err, dict) else ""
            raise PromptRejectedError(
                f"ComfyUI at {self.url} refused prompt {prompt_id}: {what}"
                + (f" ({detail})" if detail else "") + (f"; {_format_node_errors(nodes)}" if nodes else ""),
                err, nodes)
        if r.status_code >= 400:
            raise ComfyUIError(f"ComfyUI at {self.url} answered POST /prompt with HTTP {r.status_code}: "
                               f"{r.text[:300]}")
        return dict(r.json())

    def history(self, prompt_id: str) -> dict[str, Any] | None:
        """``GET /history/{id}``: the finished job's entry, or None when the server has none."""
        ans = self._json("GET", f"/history/{urllib.parse.quote(prompt_id)}")
        return ans.get(prompt_id) if isinstance(ans, dict) else None

    def queue(self) -> tuple[list[str], list[str]]:
        """``GET /queue``: (running prompt ids, pending prompt ids)."""
        ans = self._json("GET", "/queue")
        ids = [[str(item[1]) for item in ans.get(key, []) if isinstance(item, list) and len(item) > 1]
               for key in ("queue_running", "queue_pending")]
        return ids[0], ids[1]

    def state(self, prompt_id: str) -> JobState:
        """Where ``prompt_id`` stands: ``/api/jobs/{id}`` when the server has it, else ``/history`` and ``/queue``.

        Raises:
            ServerUnreachableError: after the retries. ComfyUIError: an unexpected answer.
        """
        if self._jobs_api is not False:
            r = self._request("GET", f"/api/jobs/{urllib.parse.quote(prompt_id)}")
            body: Any = None
            try:
                body = r.json()
            except ValueError:
                body = None
            if r.status_code == 200 and isinstance(body, dict) and "status" in body:
                self._jobs_api = True
                return self._from_job(body)
            if r.status_code == 404 and isinstance(body, dict) and "error" in body:
                self._jobs_api = True
                return JobState("unknown", source="jobs")
            self._jobs_api = False  # an older server: no jobs API (aiohttp's plain 404)
        entry = self.history(prompt_id)
        if entry:
            kind, data = _messages_state(entry.get("status"))
            status_str = (entry.get("status") or {}).get("status_str")
            if kind is None and status_str == "error":
                kind = "error"
            return JobState(kind or "success", outputs=dict(entry.get("outputs") or {}), error=data)
        running, pending = self.queue()
        if prompt_id in running:
            return JobState("running")
        if prompt_id in pending:
            return JobState("pending")
        if self.history(prompt_id):  # it finished between the two reads (history is written, then dequeued)
            return self.state(prompt_id)
        return JobState("unknown")

    @staticmethod
    def _from_job(job: Mapping[str, Any]) -> JobState:
        status = job.get("status")
        if status == "pending":
            return JobState("pending", source="jobs")
        if status == "in_progress":
            return JobState("running", source="jobs")
        outputs = dict(job.get("outputs") or {})
        kind, data = _messages_state(job.get("execution_status"))
        if status == "failed":
            return JobState(kind or "error", outputs=outputs, error=job.get("execution_error") or data, source="jobs")
        return JobState(kind or "success", outputs=outputs, error=data, source="jobs")

    def download(self, ref: Mapping[str, Any], dest: Path) -> Path:
        """Fetch one output image (``GET /view``) to ``dest`` (written under a temporary name, then renamed).

        Raises:
            ComfyUIError: an unsafe reference (:func:`safe_output_ref`) or an HTTP error.
        """
        filename, subfolder, kind = safe_output_ref(ref)
        r = self._request("GET", "/view", params={"filename": filename, "subfolder": subfolder, "type": kind})
        if r.status_code != 200:
            raise ComfyUIError(f"ComfyUI at {self.url} answered GET /view {subfolder}/{filename} with HTTP "
                               f"{r.status_code}")
        tmp = dest.with_name(dest.name + ".part")
        tmp.write_bytes(r.content)
        tmp.replace(dest)
        return dest

    def interrupt(self, prompt_id: str | None = None) -> None:
        """``POST /interrupt`` (the running prompt; with ``prompt_id`` only if that one is running)."""
        self._request("POST", "/interrupt", json={"prompt_id": prompt_id} if prompt_id else {})

    def delete_queued(self, prompt_ids: list[str]) -> None:
        """``POST /queue {"delete": [...]}``: drop pending prompts."""
        self._request("POST", "/queue", json={"delete": list(prompt_ids)})

    # ------------------------------------------------------------------ websocket
    def connect_events(self) -> None:
        """Open the event websocket in a background thread (reconnecting with backoff); a no-op when disabled or
        already open. Call before :meth:`submit`."""
        if not self._use_ws or (self._ws_thread is not None and self._ws_thread.is_alive()):
            return
        self._stop.clear()
        self._ws_thread = threading.Thread(target=self._ws_loop, name=f"comfy-ws {self.url}", daemon=True)
        self._ws_thread.start()

    def _ws_url(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path + "/ws", f"clientId={self.client_id}", ""))

    def _ws_loop(self) -> None:
        from websockets.exceptions import WebSocketException
        from websockets.sync.client import connect

        delay = self.backoff_s or 0.5
        while not self._stop.is_set():
            try:
                with connect(self._ws_url(), open_timeout=5, close_timeout=1, max_size=2**24) as ws:
                    delay = self.backoff_s or 0.5
                    while not self._stop.is_set():
                        try:
                            msg = ws.recv(timeout=0.5)
                        except TimeoutError:
                            continue
                        if isinstance(msg, str):
                            self._on_event(msg)
            except (OSError, WebSocketException, TimeoutError) as e:
                log.debug("websocket %s: %s", self.url, e)
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, self.max_backoff_s or 8.0)

    def _on_event(self, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            return
        kind, data = msg.get("type"), msg.get("data") or {}
        if not isinstance(data, dict):
            return
        self.events += 1
        pid = data.get("prompt_id")
        with self._lock:
            if kind == "progress":
                self.progress = {"prompt_id": pid, "node": data.get("node"), "value": data.get("value"),
                                 "max": data.get("max")}
            elif kind == "progress_state" and isinstance(data.get("nodes"), dict):
                running = [n for n in data["nodes"].values() if isinstance(n, dict) and n.get("state") == "running"]
                if running:
                    self.progress = {"prompt_id": pid, "node": running[0].get("node_id"),
                                     "value": running[0].get("value"), "max": running[0].get("max")}
            elif kind == "executing" and data.get("node") is not None:
                self.progress = {"prompt_id": pid, "node": data.get("node"), "value": None, "max": None}
            ev = self._wake.get(str(pid)) if pid else None
        if ev is not None and kind in ("execution_start", "execution_success", "execution_error",
                                       "execution_interrupted", "executing", "execution_cached"):
            ev.set()

    def wait(self, prompt_id: str, timeout_s: float) -> bool:
        """Sleep up to ``timeout_s`` seconds, waking early when an event about ``prompt_id`` arrives.

        Returns:
            True when an event woke it (then poll :meth:`state`), False on timeout.
        """
        with self._lock:
            ev = self._wake.setdefault(prompt_id, threading.Event())
        woke = ev.wait(timeout_s)
        ev.clear()
        return woke

    def forget(self, prompt_id: str) -> None:
        """Stop tracking events of a finished prompt."""
        with self._lock:
            self._wake.pop(prompt_id, None)

    def close(self) -> None:
        """Close the websocket thread and the HTTP connection pool."""
        self._stop.set()
        if self._ws_thread is not None:
            self._ws_thread.join(timeout=3)
        self._http.close()

    def __enter__(self) -> ComfyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_until(predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout_s`` passed; returns its last value."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()
