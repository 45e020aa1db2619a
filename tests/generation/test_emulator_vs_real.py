"""The library's ComfyUI emulator answers like a real ComfyUI: run the same prompts on both and compare the shapes
of ``POST /prompt``, ``/history/{id}``, ``/api/jobs/{id}``, ``/object_info``, a refused prompt, ``/view`` and the
websocket's messages in order. A refused prompt's range errors are worded differently ("Value bigger than max"
with details "width, 99999 > 16384", where 0.3.64 says "Value 99999 bigger than max of 16384" with details
"width", because the client and runner tests match that wording); their types, inputs and values are compared.
Runs when ``COMFYUI_URL`` points at a real server (the weight-free nodes are enough: ``python main.py --cpu``);
skipped otherwise, with the reason."""

from __future__ import annotations

import asyncio
import io
import json
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from PIL import Image

from imagerank.generation import steps
from imagerank.generation.emulator import start_emulator

REAL = os.environ.get("COMFYUI_URL", "").strip()
pytestmark = pytest.mark.skipif(not REAL, reason="COMFYUI_URL is not set: no real ComfyUI to compare the emulator "
                                                 "with (start one with `python main.py --cpu`)")


def shape(x: Any, depth: int = 0) -> Any:
    """Keys and value types, four levels deep (lists by their first item)."""
    if isinstance(x, dict):
        return {k: shape(v, depth + 1) for k, v in sorted(x.items())} if depth < 4 else "dict"
    if isinstance(x, list):
        return [shape(x[0], depth + 1)] if x else []
    return type(x).__name__


async def exchange(url: str, workflow: dict[str, Any]) -> dict[str, Any]:
    """POST ``workflow`` with a websocket open; what came back, as shapes."""
    pid, cid = str(uuid.uuid4()), uuid.uuid4().hex
    msgs = []
    async with websockets.connect(url.replace("http", "ws", 1) + f"/ws?clientId={cid}") as ws:
        post = httpx.post(f"{url}/prompt", json={"prompt": workflow, "client_id": cid, "prompt_id": pid}).json()
        while True:
            m = await asyncio.wait_for(ws.recv(), 60)
            if isinstance(m, bytes):
                continue
            m = json.loads(m)
            nodes = m["data"].get("nodes") if m["type"] == "progress_state" else None
            msgs.append((m["type"], sorted(m["data"]), sorted(next(iter(nodes.values()))) if nodes else None))
            if m["type"] == "executing" and m["data"].get("node") is None:
                break
    entry = httpx.get(f"{url}/history/{pid}").json()[pid]
    job = httpx.get(f"{url}/api/jobs/{pid}")
    image = next(iter(entry["outputs"].values()))["images"][0]
    view = httpx.get(f"{url}/view", params=image)
    return {"post": shape(post), "history": shape(entry), "ws": msgs, "view": (view.status_code,
                                                                              view.headers.get("content-type")),
            "job": (job.status_code, shape(job.json()) if job.status_code == 200 else None)}


def test_the_emulator_answers_like_the_real_server(tmp_path: Path) -> None:
    has_jobs = httpx.get(f"{REAL}/api/jobs").status_code == 200
    emu = start_emulator(tmp_path / "comfy", node_delay_s=0.01, jobs_api=has_jobs)
    try:
        wf = steps.load_workflow(steps.example_workflow("base"))
        # a fresh colour each time, so the real server's cache does not skip the nodes
        wf["1"]["inputs"]["color"] = uuid.uuid4().int % 0xFFFFFF
        real = asyncio.run(exchange(REAL, wf))
        wf["1"]["inputs"]["color"] = uuid.uuid4().int % 0xFFFFFF
        mine = asyncio.run(exchange(emu.url, wf))
        for key in real:
            assert mine[key] == real[key], key
        # a fix step: upload a parent (POST /upload/image), LoadImage -> ImageSharpen -> SaveImage
        png = io.BytesIO()
        Image.new("RGB", (24, 16), (200, 40, 90)).save(png, "PNG")
        name = f"parent_{uuid.uuid4().hex[:8]}.png"
        ups = [httpx.post(f"{u}/upload/image", files={"image": (name, png.getvalue(), "image/png")},
                          data={"subfolder": "imagerank", "type": "input"}).json() for u in (REAL, emu.url)]
        assert ups[1] == ups[0]
        face = steps.load_workflow(steps.example_workflow("face"))
        face["10"]["inputs"]["image"] = f"imagerank/{name}"
        face["11"]["inputs"]["sharpen_radius"] = 2
        real, mine = asyncio.run(exchange(REAL, face)), asyncio.run(exchange(emu.url, face))
        for key in real:
            assert mine[key] == real[key], key
        nodes = ["EmptyImage", "LoadImage", "ImageSharpen", "ImageBlur", "ImageScaleBy", "SaveImage"]
        for cls in nodes:
            assert httpx.get(f"{emu.url}/object_info/{cls}").json() == \
                httpx.get(f"{REAL}/object_info/{cls}").json(), cls
        bad = {"1": {"class_type": "EmptyImage", "inputs": {"width": 0, "height": 8, "batch_size": 1, "color": 0}},
               "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
        answers = [httpx.post(f"{u}/prompt", json={"prompt": bad, "prompt_id": str(uuid.uuid4())})
                   for u in (REAL, emu.url)]
        assert [a.status_code for a in answers] == [400, 400]
        real_bad, mine_bad = answers[0].json(), answers[1].json()
        assert mine_bad["error"] == real_bad["error"]

        def errors(body: dict[str, Any]) -> dict[str, Any]:  # all but the wording (see emulator.py's _validate)
            return {n: (e["class_type"], e["dependent_outputs"], [(x["type"], x["extra_info"]) for x in e["errors"]])
                    for n, e in body["node_errors"].items()}

        assert errors(mine_bad) == errors(real_bad)
    finally:
        emu.stop()
