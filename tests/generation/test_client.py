"""The ComfyUI client against the fake server: real HTTP and websocket, the recorded shapes, the faults."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fake_comfy import FakeComfy

from imagerank.errors import ComfyUIError, InvalidArgumentError
from imagerank.generation import steps
from imagerank.generation.client import (
    ComfyClient,
    JobState,
    PromptRejectedError,
    ServerUnreachableError,
    normalize_server_url,
    safe_output_ref,
    wait_until,
)


@pytest.fixture(params=[False, True], ids=["history", "jobs-api"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FakeComfy]:
    with FakeComfy(tmp_path / "srv", jobs_api=request.param) as srv:
        yield srv


def _wf(name: str) -> dict:
    return json.loads(steps.example_workflow(name).read_text())


def _finish(c: ComfyClient, pid: str, timeout: float = 10) -> JobState:
    end = time.monotonic() + timeout
    st = c.state(pid)
    while not st.finished and time.monotonic() < end:
        c.wait(pid, 0.1)
        st = c.state(pid)
    return st


def test_base_then_face_round_trip(server: FakeComfy, tmp_path: Path) -> None:
    with ComfyClient(server.url, retries=2, backoff_s=0.01) as c:
        c.connect_events()
        assert wait_until(lambda: c.events > 0, 5)  # the status message every new socket gets
        assert c.system_stats()["system"]["comfyui_version"] == "0.3.64"
        assert set(c.object_info()) >= {"SaveImage", "LoadImage", "ImageSharpen", "EmptyImage"}
        assert list(c.object_info("ImageBlur")) == ["ImageBlur"]
        pid = str(uuid.uuid4())
        ans = c.submit(_wf("base"), pid)
        assert ans == {"prompt_id": pid, "number": 1, "node_errors": {}}
        assert c.wait(pid, 5)  # an event woke us before the timeout
        st = _finish(c, pid)
        assert st.status == "success"
        assert st.source == ("jobs" if server.jobs_api else "history")
        ref = st.outputs["2"]["images"][0]
        assert ref == {"filename": "base_00001_.png", "subfolder": "imagerank", "type": "output"}
        out = c.download(ref, tmp_path / "b.png")
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        name = c.upload_image(out, name="in_1.png")
        assert name == "imagerank/in_1.png"
        assert (server.input_dir / "imagerank" / "in_1.png").read_bytes() == out.read_bytes()
        wf = _wf("face")
        wf["10"]["inputs"]["image"] = name
        pid2 = str(uuid.uuid4())
        c.submit(wf, pid2)
        assert _finish(c, pid2).status == "success"
        assert c.state(str(uuid.uuid4())).status == "unknown"
        assert server.executions == [pid, pid2]


def test_refused_prompts_raise_with_node_errors(server: FakeComfy) -> None:
    with ComfyClient(server.url, websocket=False) as c:
        wf = _wf("face")  # example.png is not in the fake's input folder
        with pytest.raises(PromptRejectedError, match=r"Prompt outputs failed validation; node 10 \(LoadImage\): "
                                                      r"Custom validation failed for node: image - Invalid image file"
                           ) as info:
            c.submit(wf, str(uuid.uuid4()))
        assert info.value.node_errors["10"]["class_type"] == "LoadImage"
        assert isinstance(info.value, ComfyUIError)
        wf = _wf("base")
        wf["1"]["inputs"]["width"] = 99999
        with pytest.raises(PromptRejectedError, match=r"node 1 \(EmptyImage\): Value bigger than max: width, 99999"):
            c.submit(wf, str(uuid.uuid4()))
        with pytest.raises(PromptRejectedError, match="Cannot execute because node KSampler does not exist"):
            c.submit({"1": {"class_type": "KSampler", "inputs": {}}}, str(uuid.uuid4()))
        server.faults.append("node_errors")
        with pytest.raises(PromptRejectedError, match="sharpen_radius, 40 > 31"):
            c.submit(_wf("base"), str(uuid.uuid4()))
        with pytest.raises(PromptRejectedError, match="is not a lowercase UUID"):
            c.submit(_wf("base"), str(uuid.uuid4()).upper())
        assert server.posts == []


def test_execution_error_and_interrupt_are_reported(server: FakeComfy) -> None:
    with ComfyClient(server.url) as c:
        c.connect_events()
        server.faults.extend(["execution_error", "interrupt"])
        a, b = str(uuid.uuid4()), str(uuid.uuid4())
        c.submit(_wf("base"), a)
        c.submit(_wf("base"), b)
        sa, sb = _finish(c, a), _finish(c, b)
        assert sa.status == "error"
        assert sa.error is not None
        assert sa.error["exception_type"] == "OSError"
        assert sa.describe_error().startswith("execution error at node 1 (EmptyImage): OSError: cannot identify")
        assert sb.status == "interrupted"
        assert sb.describe_error() == "interrupted at node 2 (SaveImage)"
        # POST /interrupt stops the running prompt
        server.node_delay_s = 0.5
        d = str(uuid.uuid4())
        c.submit(_wf("base"), d)
        assert wait_until(lambda: c.state(d).status == "running", 5)
        c.interrupt()
        assert _finish(c, d).status == "interrupted"


def test_unsafe_output_names_are_refused(server: FakeComfy, tmp_path: Path) -> None:
    with ComfyClient(server.url, websocket=False) as c:
        server.faults.append("unsafe_output")
        pid = str(uuid.uuid4())
        c.submit(_wf("base"), pid)
        st = _finish(c, pid)
        ref = st.outputs["2"]["images"][0]
        unsafe = re.escape("unsafe or unexpected filename '../escape.png'; not downloaded")
        with pytest.raises(ComfyUIError, match=unsafe):
            c.download(ref, tmp_path / "x.png")
    for bad, what in [({"filename": "a/b.png"}, "filename"), ({"filename": ".hidden.png"}, "filename"),
                      ({"filename": "x.png", "subfolder": "/etc"}, "subfolder"),
                      ({"filename": "x.png", "subfolder": "a/../../b"}, "subfolder"),
                      ({"filename": "x.png", "type": "input"}, "type"), ({"filename": "x.exe"}, "file type"),
                      ({}, "filename")]:
        with pytest.raises(ComfyUIError, match=f"unsafe or unexpected {what}"):
            safe_output_ref(bad)
    assert safe_output_ref({"filename": "a_00001_.png", "subfolder": "imagerank/base"}) == (
        "a_00001_.png", "imagerank/base", "output")


def test_server_down_retries_then_raises(tmp_path: Path) -> None:
    srv = FakeComfy(tmp_path / "srv").start()
    url = srv.url
    srv.go_down()
    with ComfyClient(url, retries=3, backoff_s=0.01, max_backoff_s=0.02, websocket=False) as c:
        t = time.monotonic()
        with pytest.raises(ServerUnreachableError, match=r"did not answer GET /queue after 3 attempts: ConnectError"):
            c.queue()
        assert time.monotonic() - t < 5
        srv.up()
        assert c.queue() == ([], [])  # the same client works once the server is back
    # a server that comes back during the retries is reached
    srv.go_down()
    with ComfyClient(url, retries=8, backoff_s=0.1, max_backoff_s=0.4, websocket=False) as c:
        import threading
        threading.Timer(0.3, srv.up).start()
        assert c.system_stats()["system"]["comfyui_version"] == "0.3.64"
    srv.stop()


def test_silent_websocket_and_slow_http_still_finish(server: FakeComfy) -> None:
    server.ws_silent = True
    server.http_delay_s = 0.2
    with ComfyClient(server.url, timeout_s=5) as c:
        c.connect_events()
        pid = str(uuid.uuid4())
        c.submit(_wf("base"), pid)
        assert not c.wait(pid, 0.3)  # the socket says nothing
        assert _finish(c, pid).status == "success"  # polling decides


def test_bad_urls_and_arguments(tmp_path: Path) -> None:
    assert normalize_server_url(" http://127.0.0.1:8188/ ") == "http://127.0.0.1:8188"
    assert normalize_server_url("https://gpu.example/comfy/") == "https://gpu.example/comfy"
    for bad in ("127.0.0.1:8188", "ftp://x", "http://", "http://x/?a=1", ""):
        with pytest.raises(InvalidArgumentError, match=re.escape("server: expected a URL like http://127.0.0.1:8188")):
            normalize_server_url(bad)
    with pytest.raises(InvalidArgumentError, match="retries >= 1"):
        ComfyClient("http://127.0.0.1:1", retries=0)
    with ComfyClient("http://127.0.0.1:1", websocket=False) as c, \
            pytest.raises(InvalidArgumentError, match="cannot read"):
        c.upload_image(tmp_path / "missing.png")


def test_the_fake_answers_like_the_recorded_server(tmp_path: Path) -> None:
    """The fake's /history entry has the recorded entry's shape (keys, prompt tuple, status messages)."""
    from fake_comfy import RECORDED

    if not RECORDED.is_dir():
        pytest.skip(f"recorded ComfyUI responses not present at {RECORDED}")

    recorded = next(iter(json.loads((RECORDED / "history_base.json").read_text()).values()))
    with FakeComfy(tmp_path / "srv") as srv, ComfyClient(srv.url, websocket=False) as c:
        pid = str(uuid.uuid4())
        c.submit(_wf("base"), pid)
        _finish(c, pid)
        got = httpx.get(f"{srv.url}/history/{pid}").json()[pid]
        assert set(got) == set(recorded)
        assert len(got["prompt"]) == len(recorded["prompt"])
        assert [m[0] for m in got["status"]["messages"]] == [m[0] for m in recorded["status"]["messages"]]
        assert got["outputs"] == recorded["outputs"]
        assert httpx.get(f"{srv.url}/api/history/{pid}").json()[pid]["outputs"] == recorded["outputs"]
        assert httpx.get(f"{srv.url}/api/jobs/{pid}").status_code == 404  # 0.3.64 has no jobs API


def test_the_fake_websocket_sends_the_recorded_sequence(tmp_path: Path) -> None:
    """A base job's websocket messages, in order, are the types the real server sent for the recorded base job."""
    from fake_comfy import RECORDED

    if not RECORDED.is_dir():
        pytest.skip(f"recorded ComfyUI responses not present at {RECORDED}")
    from websockets.sync.client import connect

    recorded = json.loads((RECORDED / "ws_messages.json").read_text())
    base_pid = next(iter(json.loads((RECORDED / "history_base.json").read_text())))
    start = next(i for i, m in enumerate(recorded) if m["msg"]["data"].get("prompt_id") == base_pid)
    end = max(i for i, m in enumerate(recorded) if m["msg"]["data"].get("prompt_id") == base_pid)
    want = ["status"] + [m["msg"]["type"] for m in recorded[start - 2: end + 1]]  # the greeting, then the job
    with FakeComfy(tmp_path / "srv") as srv:
        client_id = uuid.uuid4().hex
        with connect(f"ws://127.0.0.1:{srv.port}/ws?clientId={client_id}") as ws:
            got = [json.loads(ws.recv(timeout=5))]
            assert got[0]["data"]["sid"] == client_id
            httpx.post(f"{srv.url}/prompt", json={"prompt": _wf("base"), "client_id": client_id,
                                                  "prompt_id": str(uuid.uuid4())})
            while not (got[-1]["type"] == "executing" and got[-1]["data"]["node"] is None):
                got.append(json.loads(ws.recv(timeout=5)))
    assert [m["type"] for m in got] == want
