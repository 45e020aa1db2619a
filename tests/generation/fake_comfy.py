"""A protocol-faithful fake ComfyUI: real HTTP and websocket on 127.0.0.1 (aiohttp), real image work (Pillow).

Its answers follow what a real ComfyUI 0.3.64 answered (``../shared/data/comfyui/recorded/``, see SOURCES.md
there): ``POST /prompt`` → ``{"prompt_id", "number", "node_errors"}`` or 400 ``{"error": {...}, "node_errors":
{...}}``; ``/history/{id}`` entries ``{"prompt": [number, id, prompt, extra_data, outputs], "outputs", "status":
{"status_str", "completed", "messages"}, "meta"}`` (``{}`` for an unknown id); ``/queue`` items; the websocket's
``status``, ``execution_start``, ``execution_cached``, ``progress_state``, ``executing``, ``executed``,
``execution_success``, ``execution_error`` (the recorded runtime error's fields), ``execution_interrupted`` and
the final ``executing`` with ``node`` null; ``/object_info`` from the recorded node definitions (inputs checked
against their ranges and choices); ``/view`` and ``/upload/image`` with the real server's path checks; every route
also under ``/api``. ``jobs_api=True`` adds the newer ``/api/jobs`` and ``/api/jobs/{id}`` (pending /
in_progress / completed / failed; 404 ``{"error": "Job not found"}``); without it they are aiohttp's plain 404,
as on the recorded server.

Faults: :meth:`FakeComfy.go_down` / :meth:`up` (connection refused, state kept), :meth:`restart` (down, queue and
history lost, up again: what a real restart does), ``faults`` (a list consumed one per prompt: ``node_errors`` →
400 with node errors, ``execution_error`` → the recorded runtime error at the first node, ``interrupt`` →
interrupted after the first node, ``unsafe_output`` → history names ``../escape.png``), ``ws_silent`` (the
websocket stays open and says nothing while HTTP works), ``http_delay_s`` (every response that late),
``node_delay_s`` (time per node).
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from PIL import Image, ImageFilter, ImageOps

RECORDED = Path(__file__).resolve().parents[3] / "shared" / "data" / "comfyui" / "recorded"
_EMPTY_IMAGE = {"EmptyImage": {"input": {"required": {
    "width": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}],
    "height": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}],
    "batch_size": ["INT", {"default": 1, "min": 1, "max": 4096}],
    "color": ["INT", {"default": 0, "min": 0, "max": 0xFFFFFF, "step": 1, "display": "color"}]}},
    "input_order": {"required": ["width", "height", "batch_size", "color"]}, "output": ["IMAGE"],
    "output_is_list": [False], "output_name": ["IMAGE"], "name": "EmptyImage", "display_name": "EmptyImage",
    "description": "", "python_module": "nodes", "category": "image", "output_node": False}}


def load_object_info() -> dict[str, Any]:
    """The recorded ``/object_info`` of the nodes the examples use (EmptyImage added from ComfyUI's definition)."""
    info: dict[str, Any] = dict(copy.deepcopy(_EMPTY_IMAGE))
    for f in sorted(RECORDED.glob("oi_*.json")):
        info.update(json.loads(f.read_text()))
    return info


def recorded_runtime_error() -> dict[str, Any]:
    """The ``execution_error`` event data the real server sent (history_runtime_error.json)."""
    entry = next(iter(json.loads((RECORDED / "history_runtime_error.json").read_text()).values()))
    return dict(next(m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"))


class FakeComfy:
    """The fake server. ``with FakeComfy(tmp) as server: server.url``.

    Attributes:
        executions: prompt ids in the order they were executed (a prompt run twice appears twice).
        posts: prompt ids in the order ``POST /prompt`` accepted them.
    """

    def __init__(self, root: Path, *, jobs_api: bool = False, node_delay_s: float = 0.005, port: int = 0) -> None:
        self.root = Path(root)
        self.input_dir, self.output_dir = self.root / "input", self.root / "output"
        self.input_dir.mkdir(parents=True, exist_ok=True)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.jobs_api, self.node_delay_s, self.port = jobs_api, node_delay_s, port
        self.object_info = load_object_info()
        self.faults: list[str] = []
        self.ws_silent = False
        self.http_delay_s = 0.0
        self.executions: list[str] = []
        self.posts: list[str] = []
        self.max_queue = 0  # the most prompts this server held at once (pending + running)
        self._pending: list[list[Any]] = []
        self._running: list[Any] | None = None
        self._history: dict[str, dict[str, Any]] = {}
        self._sockets: dict[str, web.WebSocketResponse] = {}
        self._counter: dict[str, int] = {}
        self._number = 0
        self._interrupt = False
        self._epoch = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="fake-comfy")
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._work: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def start(self) -> FakeComfy:
        self._thread.start()
        self._call(self._start())
        return self

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._delay], client_max_size=64 * 2**20)
        routes = self._routes()
        app.add_routes([web.route(m, "/api" + p, h) for m, p, h in routes] + [web.route(m, p, h) for m, p, h in routes])
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        self._work = asyncio.Event()
        self._worker = asyncio.ensure_future(self._execute_loop())
        await self._listen()

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()
        sock = self._site._server.sockets[0]  # type: ignore[union-attr]
        self.port = sock.getsockname()[1]

    def go_down(self) -> None:
        """Stop listening (connections refused) and drop the websockets; queue and history are kept."""
        self._call(self._down())

    async def _down(self) -> None:
        for ws in list(self._sockets.values()):
            await ws.close()
        self._sockets.clear()
        if self._site is not None:
            await self._site.stop()
            self._site = None

    def up(self) -> None:
        """Listen again on the same port."""
        self._call(self._listen())

    def restart(self) -> None:
        """What a real restart does: down, the queue, the running job and the history lost, up again."""
        async def wipe() -> None:
            await self._down()
            self._pending.clear()
            self._history.clear()
            self._epoch += 1  # the running job dies with the process: no more events, no history
            await self._listen()
        self._call(wipe())

    def stop(self) -> None:
        async def close() -> None:
            await self._down()
            if self._worker is not None:
                self._worker.cancel()
                await asyncio.gather(self._worker, return_exceptions=True)
            if self._runner is not None:
                await self._runner.cleanup()
        self._call(close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeComfy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def queue_ids(self) -> tuple[list[str], list[str]]:
        return ([self._running[1]] if self._running else []), [p[1] for p in self._pending]

    # ------------------------------------------------------------------ http
    @web.middleware
    async def _delay(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.http_delay_s:
            await asyncio.sleep(self.http_delay_s)
        return await handler(request)

    def _routes(self) -> list[tuple[str, str, Any]]:
        r = [("GET", "/ws", self._ws), ("GET", "/system_stats", self._stats), ("GET", "/object_info", self._oi),
             ("GET", "/object_info/{cls}", self._oi), ("POST", "/prompt", self._prompt),
             ("GET", "/history", self._history_all), ("GET", "/history/{pid}", self._history_one),
             ("GET", "/queue", self._queue), ("POST", "/queue", self._queue_post),
             ("POST", "/interrupt", self._interrupt_post), ("POST", "/upload/image", self._upload),
             ("GET", "/view", self._view)]
        if self.jobs_api:
            r += [("GET", "/jobs", self._jobs), ("GET", "/jobs/{pid}", self._job)]
        return r

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response({"system": {"os": os.name, "comfyui_version": "0.3.64", "python_version": "3.11",
                                             "embedded_python": False, "argv": ["main.py", "--cpu"]},
                                  "devices": [{"name": "cpu", "type": "cpu", "index": None}]})

    async def _oi(self, request: web.Request) -> web.Response:
        cls = request.match_info.get("cls")
        if cls is None:
            return web.json_response(self.object_info)
        return web.json_response({cls: self.object_info[cls]} if cls in self.object_info else {})

    def _validate(self, prompt: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any], list[str]]:
        """(error, node_errors, outputs) as ComfyUI's validate_prompt answers."""
        outputs = []
        for node_id, node in prompt.items():
            cls = node.get("class_type") if isinstance(node, dict) else None
            if cls not in self.object_info:
                return ({"type": "invalid_prompt", "message": f"Cannot execute because node {cls} does not exist.",
                         "details": f"Node ID '#{node_id}'", "extra_info": {}}, {}, [])
            if self.object_info[cls].get("output_node"):
                outputs.append(node_id)
        if not outputs:
            return ({"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "",
                     "extra_info": {}}, {}, [])
        node_errors: dict[str, Any] = {}
        for node_id, node in prompt.items():
            errs = []
            spec = self.object_info[node["class_type"]]["input"].get("required", {})
            for name, (kind, *opts) in spec.items():
                conf = opts[0] if opts else {}
                value = node.get("inputs", {}).get(name)
                if value is None:
                    errs.append({"type": "required_input_missing", "message": "Required input is missing",
                                 "details": name, "extra_info": {"input_name": name}})
                elif isinstance(value, list):
                    if len(value) != 2 or value[0] not in prompt:
                        errs.append({"type": "bad_linked_input", "message": "Bad linked input, must be a length-2 "
                                     "list of [node_id, slot_index]", "details": name,
                                     "extra_info": {"input_name": name}})
                elif node["class_type"] == "LoadImage" and name == "image":
                    if not self._resolve_input(str(value)).is_file():
                        errs.append({"type": "custom_validation_failed",
                                     "message": "Custom validation failed for node",
                                     "details": f"image - Invalid image file: {value}",
                                     "extra_info": {"input_name": name}})
                elif isinstance(kind, list) and value not in kind:
                    errs.append({"type": "value_not_in_list", "message": "Value not in list",
                                 "details": f"{name}: '{value}' not in {kind}", "extra_info": {"input_name": name}})
                elif kind in ("INT", "FLOAT") and isinstance(conf, dict):
                    if "max" in conf and value > conf["max"]:
                        errs.append({"type": "value_bigger_than_max", "message": "Value bigger than max",
                                     "details": f"{name}, {value} > {conf['max']}",
                                     "extra_info": {"input_name": name}})
                    if "min" in conf and value < conf["min"]:
                        errs.append({"type": "value_smaller_than_min", "message": "Value smaller than min",
                                     "details": f"{name}, {value} < {conf['min']}",
                                     "extra_info": {"input_name": name}})
            if errs:
                node_errors[node_id] = {"errors": errs, "dependent_outputs": outputs,
                                        "class_type": node["class_type"]}
        if node_errors:
            return ({"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                     "details": "", "extra_info": {}}, node_errors, outputs)
        return None, {}, outputs

    async def _prompt(self, request: web.Request) -> web.Response:
        body = await request.json()
        pid = body.get("prompt_id") or str(uuid.uuid4())
        try:
            ok = str(uuid.UUID(str(pid))) == pid
        except ValueError:
            ok = False
        if not ok:
            return web.json_response({"error": {"type": "invalid_prompt_id", "message": "Invalid prompt_id",
                                                "details": f"{pid!r} is not a lowercase UUID", "extra_info": {}},
                                      "node_errors": {}}, status=400)
        prompt = body.get("prompt")
        if not isinstance(prompt, dict) or not prompt:
            return web.json_response({"error": {"type": "no_prompt", "message": "No prompt provided",
                                                "details": "No prompt provided", "extra_info": {}},
                                      "node_errors": []}, status=400)
        error, node_errors, outputs = self._validate(prompt)
        if error is None and self.faults and self.faults[0] == "node_errors":
            self.faults.pop(0)
            first = next(iter(prompt))
            error = {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                     "details": "", "extra_info": {}}
            node_errors = {first: {"errors": [{"type": "value_bigger_than_max", "message": "Value bigger than max",
                                               "details": "sharpen_radius, 40 > 31",
                                               "extra_info": {"input_name": "sharpen_radius"}}],
                                   "dependent_outputs": outputs, "class_type": prompt[first]["class_type"]}}
        if error is not None:
            return web.json_response({"error": error, "node_errors": node_errors}, status=400)
        fault = self.faults.pop(0) if self.faults else None
        self._number += 1
        extra = {"client_id": body.get("client_id"), "create_time": int(time.time() * 1000)}
        self._pending.append([self._number, pid, prompt, extra, outputs, fault])
        self.posts.append(pid)
        self.max_queue = max(self.max_queue, self._remaining())
        assert self._work is not None
        self._work.set()
        await self._broadcast("status", {"status": {"exec_info": {"queue_remaining": self._remaining()}}})
        return web.json_response({"prompt_id": pid, "number": self._number, "node_errors": {}})

    def _remaining(self) -> int:
        return len(self._pending) + (1 if self._running else 0)

    async def _history_all(self, request: web.Request) -> web.Response:
        return web.json_response(self._history)

    async def _history_one(self, request: web.Request) -> web.Response:
        pid = request.match_info["pid"]
        return web.json_response({pid: self._history[pid]} if pid in self._history else {})

    def _queue_item(self, item: list[Any]) -> list[Any]:
        return item[:5]

    async def _queue(self, request: web.Request) -> web.Response:
        return web.json_response({"queue_running": [self._queue_item(self._running)] if self._running else [],
                                  "queue_pending": [self._queue_item(p) for p in self._pending]})

    async def _queue_post(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("clear"):
            self._pending.clear()
        for pid in body.get("delete", []):
            self._pending = [p for p in self._pending if p[1] != pid]
        return web.Response(status=200)

    async def _interrupt_post(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        pid = body.get("prompt_id") if isinstance(body, dict) else None
        if self._running and (pid is None or pid == self._running[1]):
            self._interrupt = True
        return web.Response(status=200)

    def _resolve_input(self, name: str) -> Path:
        if name.endswith(" [output]"):
            return self.output_dir / name[: -len(" [output]")]
        return self.input_dir / name

    async def _upload(self, request: web.Request) -> web.Response:
        post = await request.post()
        image = post.get("image")
        if not isinstance(image, web.FileField) or not image.filename:
            return web.Response(status=400)
        subfolder = str(post.get("subfolder", ""))
        folder = (self.input_dir / os.path.normpath(subfolder)).resolve()
        path = (folder / image.filename).resolve()
        if os.path.commonpath((str(self.input_dir.resolve()), str(path))) != str(self.input_dir.resolve()):
            return web.Response(status=400)
        folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image.file.read())
        return web.json_response({"name": image.filename, "subfolder": subfolder, "type": "input"})

    async def _view(self, request: web.Request) -> web.StreamResponse:
        q = request.rel_url.query
        filename = q.get("filename", "")
        if not filename or filename[0] == "/" or ".." in filename:
            return web.Response(status=400)
        base = {"output": self.output_dir, "input": self.input_dir}.get(q.get("type", "output"))
        if base is None:
            return web.Response(status=400)
        folder = (base / q.get("subfolder", "")).resolve()
        if os.path.commonpath((str(folder), str(base.resolve()))) != str(base.resolve()):
            return web.Response(status=403)
        file = folder / os.path.basename(filename)
        if not file.is_file():
            return web.Response(status=404)
        return web.FileResponse(file, headers={"Content-Disposition": f'filename="{file.name}"'})

    def _job_record(self, pid: str) -> dict[str, Any] | None:
        if pid in self._history:
            h = self._history[pid]
            messages = h["status"]["messages"]
            err = next((m[1] for m in messages if m[0] == "execution_error"), None)
            failed = h["status"]["status_str"] == "error"
            return {"id": pid, "status": "failed" if failed else "completed", "priority": h["prompt"][0],
                    "create_time": h["prompt"][3].get("create_time"), "execution_error": err,
                    "outputs_count": sum(len(v.get("images", [])) for v in h["outputs"].values()),
                    "outputs": h["outputs"], "execution_status": h["status"],
                    "workflow": {"prompt": h["prompt"][2], "extra_data": h["prompt"][3]}}
        if self._running and self._running[1] == pid:
            return {"id": pid, "status": "in_progress", "priority": self._running[0], "outputs_count": 0}
        for p in self._pending:
            if p[1] == pid:
                return {"id": pid, "status": "pending", "priority": p[0], "outputs_count": 0}
        return None

    async def _jobs(self, request: web.Request) -> web.Response:
        ids = ([self._running[1]] if self._running else []) + [p[1] for p in self._pending] + list(self._history)
        jobs = [self._job_record(i) for i in ids]
        return web.json_response({"jobs": jobs, "pagination": {"offset": 0, "limit": None, "total": len(jobs),
                                                                "has_more": False}})

    async def _job(self, request: web.Request) -> web.Response:
        rec = self._job_record(request.match_info["pid"])
        if rec is None:
            return web.json_response({"error": "Job not found"}, status=404)
        return web.json_response(rec)

    # ------------------------------------------------------------------ websocket
    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.rel_url.query.get("clientId", "") or uuid.uuid4().hex
        self._sockets[sid] = ws
        try:
            await self._send(ws, "status", {"status": {"exec_info": {"queue_remaining": self._remaining()}},
                                            "sid": sid})
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            if self._sockets.get(sid) is ws:
                self._sockets.pop(sid, None)
        return ws

    async def _send(self, ws: web.WebSocketResponse, kind: str, data: dict[str, Any]) -> None:
        if self.ws_silent:
            return
        try:
            await ws.send_json({"type": kind, "data": data})
        except (ConnectionError, RuntimeError):
            pass

    async def _broadcast(self, kind: str, data: dict[str, Any], sid: str | None = None) -> None:
        targets = [self._sockets[sid]] if sid and sid in self._sockets else \
            ([] if sid else list(self._sockets.values()))
        for ws in targets:
            await self._send(ws, kind, data)

    # ------------------------------------------------------------------ execution
    async def _execute_loop(self) -> None:
        assert self._work is not None
        while True:
            if not self._pending:
                self._work.clear()
                await self._work.wait()
                continue
            self._running = self._pending.pop(0)
            self._interrupt = False
            try:
                await self._execute(self._running)
            finally:
                self._running = None

    def _stamp(self) -> int:
        return int(time.time() * 1000)

    async def _execute(self, item: list[Any]) -> None:
        number, pid, prompt, extra, outputs, fault = item
        sid = extra.get("client_id")
        epoch = self._epoch
        self.executions.append(pid)
        messages: list[list[Any]] = []

        async def emit(kind: str, data: dict[str, Any], keep: bool = False) -> None:
            if keep:
                messages.append([kind, data])
            await self._broadcast(kind, data, sid)

        await self._broadcast("status", {"status": {"exec_info": {"queue_remaining": self._remaining()}}})
        await emit("execution_start", {"prompt_id": pid, "timestamp": self._stamp()}, keep=True)
        await emit("execution_cached", {"nodes": [], "prompt_id": pid, "timestamp": self._stamp()}, keep=True)
        values: dict[str, Image.Image] = {}
        states: dict[str, str] = {}  # node id -> running / finished, as progress_state reports them

        def progress(nodes: dict[str, str]) -> dict[str, Any]:
            return {"prompt_id": pid, "nodes": {n: {
                "value": 1.0 if st == "finished" else 0.0, "max": 1.0, "state": st, "node_id": n, "prompt_id": pid,
                "display_node_id": n, "parent_node_id": None, "real_node_id": n} for n, st in nodes.items()}}

        done: list[str] = []
        ui: dict[str, Any] = {}
        status = "success"
        for node_id in self._order(prompt):
            node = prompt[node_id]
            if self._epoch != epoch:
                return
            if self._interrupt or (fault == "interrupt" and done):
                await emit("execution_interrupted", {"prompt_id": pid, "node_id": node_id,
                                                     "node_type": node["class_type"], "executed": list(done),
                                                     "timestamp": self._stamp()}, keep=True)
                status = "interrupted"
                break
            states[node_id] = "running"
            await emit("progress_state", progress(states))
            await emit("executing", {"node": node_id, "display_node": node_id, "prompt_id": pid})
            await asyncio.sleep(self.node_delay_s)
            try:
                if fault == "execution_error":
                    raise OSError("cannot identify image file")
                out = self._run_node(node, values, pid)
            except Exception as e:  # reported the way ComfyUI reports a node's exception
                err = recorded_runtime_error()
                err.update({"prompt_id": pid, "node_id": node_id, "node_type": node["class_type"],
                            "executed": list(done), "exception_message": f"{e}\n",
                            "exception_type": type(e).__name__, "timestamp": self._stamp()})
                await emit("execution_error", err, keep=True)
                status = "error"
                break
            if isinstance(out, Image.Image):
                values[node_id] = out
            elif isinstance(out, dict):
                ui[node_id] = out
                await emit("executed", {"node": node_id, "display_node": node_id, "output": out, "prompt_id": pid})
            done.append(node_id)
            states[node_id] = "finished"
            await emit("progress_state", progress(states))
        if status == "success":
            await emit("execution_success", {"prompt_id": pid, "timestamp": self._stamp()}, keep=True)
        if fault == "unsafe_output":
            ui = {k: {"images": [{"filename": "../escape.png", "subfolder": "../..", "type": "output"}]}
                  for k in ui}
        if self._epoch != epoch:
            return
        self._history[pid] = {
            "prompt": [number, pid, prompt, {"client_id": extra.get("client_id")}, outputs],
            "outputs": ui if status == "success" else {},
            "status": {"status_str": "success" if status == "success" else "error",
                       "completed": status == "success", "messages": messages},
            "meta": {k: {"node_id": k, "display_node": k, "parent_node": None, "real_node_id": k} for k in ui},
        }
        await self._broadcast("status", {"status": {"exec_info": {"queue_remaining": len(self._pending)}}})
        await emit("executing", {"node": None, "prompt_id": pid})

    @staticmethod
    def _order(prompt: dict[str, Any]) -> list[str]:
        """Nodes with their inputs before them."""
        seen: list[str] = []

        def visit(n: str) -> None:
            if n in seen:
                return
            for v in prompt[n].get("inputs", {}).values():
                if isinstance(v, list) and len(v) == 2 and v[0] in prompt:
                    visit(v[0])
            seen.append(n)

        for n in prompt:
            visit(n)
        return seen

    def _run_node(self, node: dict[str, Any], values: dict[str, Image.Image], pid: str) -> Any:
        cls, inp = node["class_type"], node.get("inputs", {})

        def image(key: str = "image") -> Image.Image:
            return values[inp[key][0]]

        if cls == "EmptyImage":
            c = int(inp.get("color", 0))
            return Image.new("RGB", (int(inp["width"]), int(inp["height"])), ((c >> 16) & 255, (c >> 8) & 255, c & 255))
        if cls == "LoadImage":
            with Image.open(self._resolve_input(str(inp["image"]))) as im:
                return im.convert("RGB")
        if cls == "ImageSharpen":
            return image().filter(ImageFilter.UnsharpMask(radius=int(inp["sharpen_radius"]),
                                                          percent=int(100 * float(inp["alpha"]))))
        if cls == "ImageBlur":
            return image().filter(ImageFilter.GaussianBlur(float(inp["sigma"])))
        if cls == "ImageScaleBy":
            im = image()
            s = float(inp["scale_by"])
            return im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.Resampling.BICUBIC)
        if cls == "ImageInvert":
            return ImageOps.invert(image())
        if cls == "SaveImage":
            prefix = str(inp.get("filename_prefix", "ComfyUI"))
            sub, _, stem = prefix.rpartition("/")
            key = f"{sub}/{stem}"
            self._counter[key] = self._counter.get(key, 0) + 1
            name = f"{stem}_{self._counter[key]:05d}_.png"
            folder = self.output_dir / sub
            folder.mkdir(parents=True, exist_ok=True)
            image("images").save(folder / name)
            return {"images": [{"filename": name, "subfolder": sub, "type": "output"}]}
        raise RuntimeError(f"the fake has no implementation of {cls}")
