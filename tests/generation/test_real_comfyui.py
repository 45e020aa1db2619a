"""Against a real ComfyUI: runs only when COMFYUI_URL points at one (``COMFYUI_URL=http://127.0.0.1:8188``), with
the four weight-free example workflows (no model weights needed; ``python main.py --cpu`` is enough)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from gen_support import example_workspace
from PIL import Image

from imagerank.generation import steps, tree
from imagerank.generation.client import ComfyClient, PromptRejectedError
from imagerank.generation.runner import run

URL = os.environ.get("COMFYUI_URL", "")
pytestmark = pytest.mark.skipif(not URL, reason="COMFYUI_URL is not set: no real ComfyUI server to test against "
                                "(start one with `python main.py --cpu` and set COMFYUI_URL=http://127.0.0.1:8188)")


def test_real_server_knows_the_example_nodes_and_refuses_bad_values() -> None:
    with ComfyClient(URL, websocket=False) as c:
        info = c.object_info()
        for name in steps.EXAMPLES:
            for node in steps.load_workflow(steps.example_workflow(name)).values():
                assert node["class_type"] in info
        wf = steps.load_workflow(steps.example_workflow("base"))
        wf["1"]["inputs"]["width"] = 10**9
        with pytest.raises(PromptRejectedError) as err:
            c.submit(wf, str(uuid.uuid4()))
        assert "1" in err.value.node_errors


def test_real_server_grows_the_four_step_tree(tmp_path: Path) -> None:
    cat = example_workspace(tmp_path / "ws", max_children=1, target_finals=1, comfy_poll_s=0.2)
    report = run(cat, [URL], until_idle=True)
    assert report.errors == []
    assert (report.done, report.failed) == (4, 0)
    df = tree.candidates_df(cat)
    assert df["step"].tolist() == ["base", "face", "hand", "upscale"]
    with Image.open(df["filepath"].iloc[-1]) as im:
        assert im.size == (768, 576)  # 512x384 scaled by 1.5
    cat.close()
