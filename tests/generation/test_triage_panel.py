"""The triage panel and the generation board without a browser (their whole Python side: handle_message), and
the board following a real runner against the library's ComfyUI emulator."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from gen_support import add_file_candidate, example_workspace

import imagerank
from imagerank.errors import InvalidArgumentError
from imagerank.generation import tree
from imagerank.generation.emulator import comfyui_url, start_emulator
from imagerank.generation.runner import Runner
from imagerank.widgets import GenerationBoard, TriagePanel


@pytest.fixture
def col(tmp_path: Path):
    cat = example_workspace(tmp_path / "ws", max_children=3)
    b1 = add_file_candidate(cat, "base", seed=1)
    b2 = add_file_candidate(cat, "base", seed=2)
    f1 = add_file_candidate(cat, "face", b1, seed=3)
    f2 = add_file_candidate(cat, "face", b1, seed=4)
    h1 = add_file_candidate(cat, "hand", f1, seed=5)
    add_file_candidate(cat, "hand", f2, seed=6)
    u1 = add_file_candidate(cat, "upscale", h1, seed=7)
    add_file_candidate(cat, "upscale", h1, seed=8)
    cat.close()
    c = imagerank.open(tmp_path / "ws")
    c.build_thumbnails(progress=False)  # as the runner does for each candidate it stores
    c.ids = {"b1": b1, "b2": b2, "f1": f1, "h1": h1, "u1": u1}  # type: ignore[attr-defined]
    yield c
    c.close()


def test_panel_votes_kills_walks_and_undoes_through_messages(col) -> None:
    panel = TriagePanel(col)
    q = panel.question
    assert q["kind"] == "pair"
    assert q["is_final"]
    assert {q["sides"]["left"]["step"], q["sides"]["right"]["step"]} == {"upscale"}
    out = panel.handle_message({"type": "ready"})
    assert out[0][0] == {"type": "images", "ids": [q["left"], q["right"]]}
    assert all(b[:2] == b"\xff\xd8" for b in out[0][1])  # JPEG thumbnails as binary buffers
    panel.handle_message({"type": "vote", "qid": q["qid"], "outcome": "left", "ms": 812})
    assert panel.status["level"] == "info"
    assert panel.header["votes"] == 1
    m = col.catalog.votes.matches_df()
    assert set(m["image_id"]) == {q["left"], q["right"]}
    # the final pair is compared: the next question is in the hand column
    q = panel.question
    assert q["step"] == "hand"
    # kill the hand candidate h1 -> the walk: f1 (its parent) beside f2
    h1 = col.ids["h1"]
    side = "left" if q["left"] == h1 else "right"
    panel.kill(side)
    q = panel.question
    assert q["kind"] == "walk"
    assert q["left"] == col.ids["f1"]
    assert q["killed"] == [h1]
    assert panel.header["mode"] == "walk"
    assert "Walk left" in panel.header["text"]
    assert q["sides"]["left"]["status"] == "active"
    assert tree.get_candidate(col, h1)["status"] == "rejected"
    panel.undo()
    assert tree.get_candidate(col, h1)["status"] == "active"
    assert panel.question["kind"] == "pair"
    assert h1 in (panel.question["left"], panel.question["right"])


def test_panel_refuses_bad_messages_and_records_nothing(col) -> None:
    panel = TriagePanel(col)
    q = panel.question
    for bad in ({"type": "vote", "qid": q["qid"], "outcome": "up"}, {"type": "vote", "qid": q["qid"] + 5,
                                                                      "outcome": "left"},
                {"type": "kill", "qid": q["qid"], "id": col.ids["b2"]}, {"type": "kill", "qid": q["qid"]},
                {"type": "stop", "qid": q["qid"]}, {"type": "dance"}, "not a dict"):
        panel.handle_message(bad)  # type: ignore[arg-type]
        assert panel.status["level"] == "error", bad
    assert col.catalog.votes.matches_df().empty
    assert (tree.candidates_df(col)["status"] == "active").all()
    assert panel.question["qid"] == q["qid"]
    panel.undo()
    assert panel.status == {**panel.status, "text": "nothing to undo", "level": "warn"}
    with pytest.raises(InvalidArgumentError, match="side"):
        panel.kill("middle")


def test_board_columns_counts_queue_and_thumbnails(col) -> None:
    board = GenerationBoard(col)
    assert [c["step"] for c in board.columns] == ["base", "face", "hand", "upscale"]
    assert [c["candidates"] for c in board.columns] == [2, 2, 2, 2]
    assert board.columns[-1]["is_final"]
    tree.reject(col, col.ids["u1"])
    board.handle_message({"type": "poll"})
    final = board.columns[-1]
    assert (final["active"], final["rejected"]) == (1, 1)
    assert final["items"][-1]["id"] == col.ids["u1"]  # rejected ones last
    assert final["items"][-1]["status"] == "rejected"
    assert board.summary["runner"] is None
    assert board.servers == []
    out = board.handle_message({"type": "ready"})
    assert sorted(out[0][0]["ids"]) == sorted(int(i) for i in tree.candidates_df(col)["id"])
    assert board.handle_message({"type": "poll"}) == []  # thumbnails travel once
    board.handle_message({"type": "nonsense"})
    assert "message type" in board.summary["error"]
    for bad in ({"interval_s": 0}, {"per_column": 0}, {"finished_jobs": -1}, {"interval_s": True}):
        with pytest.raises(InvalidArgumentError):
            GenerationBoard(col, **bad)


def test_board_follows_a_runner_on_the_emulator(tmp_path: Path) -> None:
    cat = example_workspace(tmp_path / "ws", max_children=1, target_finals=2)
    cat.close()
    col = imagerank.open(tmp_path / "ws")
    emu = start_emulator(tmp_path / "comfy", node_delay_s=0.1)
    try:
        runner = Runner(col, [emu.url], until_idle=True)
        board = GenerationBoard(col, runner)
        panel = TriagePanel(col)
        assert panel.question["kind"] == "done"
        runner.start()
        seen = []  # what the board showed while the runner ran in its background thread
        while runner.running:
            board.handle_message({"type": "poll"})
            seen.append((board.summary["runner"], sum(c["candidates"] for c in board.columns),
                         board.servers[0]["state"] if board.servers else None))
            time.sleep(0.02)
        runner.join(timeout=120)
        board.refresh()
        # a server seen at work (uploading, submitted, running, collecting) while the runner ran
        assert any(r == "running" and s not in (None, "idle", "starting", "stopped") for r, _, s in seen)
        counts = [n for _, n, _ in seen]
        assert counts == sorted(counts)  # the columns fill as jobs finish, never shrink
        assert len(set(counts)) > 1
        panel.handle_message({"type": "poll"})  # the panel's timer while nothing was to ask: candidates came
        assert panel.question["kind"] == "pair"
        assert [c["candidates"] for c in board.columns] == [2, 2, 2, 2]
        assert board.summary["jobs"]["done"] == 8
        assert board.summary["runner"] == "stopped"
        assert board.servers[0]["url"] == emu.url
        assert board.servers[0]["done"] == 8
        assert [j["status"] for j in board.jobs] == ["done"] * 8
        assert len(emu.executions) == 8
    finally:
        emu.stop()
        col.close()


def test_comfyui_url_prefers_the_environment_and_reuses_one_emulator(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COMFYUI_URL", "http://gpu-box:8188")
    assert comfyui_url(tmp_path / "a") == "http://gpu-box:8188"
    monkeypatch.delenv("COMFYUI_URL")
    url = comfyui_url(tmp_path / "a")
    assert url.startswith("http://127.0.0.1:")
    assert comfyui_url(tmp_path / "a") == url
    with pytest.raises(InvalidArgumentError, match="node_delay_s"):
        start_emulator(tmp_path / "b", node_delay_s=-1)
    with pytest.raises(InvalidArgumentError, match="port"):
        start_emulator(tmp_path / "b", port=70000)


def test_the_emulators_shipped_answers_are_the_recorded_servers() -> None:
    """The node definitions and runtime error shipped with the emulator are those a real ComfyUI answered."""
    import json

    from fake_comfy import RECORDED

    from imagerank.generation.emulator import load_object_info, recorded_runtime_error

    if not RECORDED.is_dir():
        pytest.skip(f"recorded ComfyUI responses not present at {RECORDED}")
    info = load_object_info()
    for f in RECORDED.glob("oi_*.json"):
        for name, spec in json.loads(f.read_text()).items():
            assert info[name] == spec, name
    entry = next(iter(json.loads((RECORDED / "history_runtime_error.json").read_text()).values()))
    assert recorded_runtime_error() == next(m[1] for m in entry["status"]["messages"] if m[0] == "execution_error")
    assert set(info) >= {"EmptyImage", "LoadImage", "ImageSharpen", "ImageBlur", "ImageScaleBy", "SaveImage"}
