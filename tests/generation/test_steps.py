"""Pipeline steps: workflows in API format, node ids validated when a step is added, the shipped examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gen_support import example_workspace

from imagerank.catalog import Catalog
from imagerank.errors import InvalidArgumentError, NotFoundError
from imagerank.generation import steps

RECORDED = Path(__file__).resolve().parents[3] / "shared" / "data" / "comfyui" / "recorded"


def test_examples_are_added_in_order_and_read_back(tmp_path: Path) -> None:
    cat = example_workspace(tmp_path / "ws")
    got = steps.list_steps(cat)
    assert [s.name for s in got] == ["base", "face", "hand", "upscale"]
    assert [s.order for s in got] == [0, 1, 2, 3]
    assert got[0].is_base
    assert not any(s.is_base for s in got[1:])
    assert [s.workflow[s.output_node]["class_type"] for s in got] == ["SaveImage"] * 4
    assert [got[i].workflow["11"]["class_type"] for i in (1, 2, 3)] == ["ImageSharpen", "ImageBlur", "ImageScaleBy"]
    assert got[0].workflow["1"]["class_type"] == "EmptyImage"
    df = steps.steps_df(cat)
    assert list(df["name"]) == ["base", "face", "hand", "upscale"]
    assert list(df["nodes"]) == [2, 3, 3, 3]
    assert steps.get_step(cat, "hand") == steps.get_step(cat, got[2].id) == got[2]
    with pytest.raises(NotFoundError, match=r"'nope' does not exist.*base, face, hand, upscale"):
        steps.get_step(cat, "nope")
    with pytest.raises(InvalidArgumentError, match="has steps already"):
        steps.add_example_steps(cat)
    cat.close()
    again = Catalog.open(tmp_path / "ws")
    assert steps.list_steps(again) == got
    again.close()


def test_examples_use_only_nodes_a_real_server_has() -> None:
    """Every node class and input of the shipped workflows is in the /object_info recorded from a real ComfyUI."""
    if not RECORDED.is_dir():
        pytest.skip(f"recorded ComfyUI responses not present at {RECORDED}")
    known: dict[str, dict] = {}
    for f in RECORDED.glob("oi_*.json"):
        known.update(json.loads(f.read_text()))
    known["EmptyImage"] = {"input": {"required": {"width": 0, "height": 0, "batch_size": 0, "color": 0}}}
    for name in steps.EXAMPLES:
        wf = steps.load_workflow(steps.example_workflow(name))
        for node in wf.values():
            assert node["class_type"] in known, node
            spec = known[node["class_type"]]["input"]
            allowed = set(spec.get("required", {})) | set(spec.get("optional", {}))
            assert set(node["inputs"]) <= allowed, (name, node)


def test_prepare_prompt_sets_input_seed_and_prefix(tmp_path: Path) -> None:
    cat = example_workspace(tmp_path / "ws")
    base, face, _, up = steps.list_steps(cat)
    pid = "6b0be170-8168-47ca-b0c0-ac836f0c83fe"
    p = steps.prepare_prompt(base, input_image=None, seed=2**24 + 5, prompt_id=pid)
    assert p["1"]["inputs"]["color"] == 5  # mapped into [0, 0xFFFFFF]
    assert p["2"]["inputs"]["filename_prefix"] == f"imagerank/base/{pid}"
    assert base.workflow["2"]["inputs"]["filename_prefix"] == "imagerank/base"  # the step is not modified
    p = steps.prepare_prompt(face, input_image="imagerank/in_3.png", seed=7, prompt_id=pid)
    assert p["10"]["inputs"]["image"] == "imagerank/in_3.png"
    assert p["11"]["inputs"]["sharpen_radius"] == 1 + 7 % 5
    p = steps.prepare_prompt(up, input_image="x.png", seed=123, prompt_id=pid)
    assert p["11"]["inputs"]["scale_by"] == 1.5
    with pytest.raises(InvalidArgumentError, match="base step and takes none"):
        steps.prepare_prompt(base, input_image="x.png", seed=1, prompt_id=pid)
    with pytest.raises(InvalidArgumentError, match="needs the parent"):
        steps.prepare_prompt(face, input_image=None, seed=1, prompt_id=pid)
    with pytest.raises(InvalidArgumentError, match="seed: expected an integer >= 0, got -1"):
        steps.prepare_prompt(face, input_image="x", seed=-1, prompt_id=pid)
    cat.close()


WF = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 1, "model": ["4", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x.safetensors"}},
    "9": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "x"}},
}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"output_node": "99"}, r"output_node '99' is not a node of the workflow \(its nodes: 3, 4, 9\)"),
    ({"output_node": "4"},
     r"output_node '4' \(CheckpointLoaderSimple\) has no input 'images' \(its inputs: ckpt_name\)"),
    ({"output_node": "9", "seed_node": "3", "seed_input": "noise_seed"},
     r"seed_node '3' \(KSampler\) has no input 'noise_seed' \(its inputs: model, seed\)"),
    ({"output_node": "9", "seed_node": "7", "seed_input": "seed"}, r"seed_node '7' is not a node"),
    ({"output_node": "9", "seed_node": "3"}, "seed_node and seed_input go together"),
    ({"output_node": "9", "seed_node": "3", "seed_input": "model"}, "must hold an integer to replace"),
    ({"output_node": "9", "seed_min": 5}, "seed_min/seed_max: expected both or neither"),
    ({"output_node": "9", "seed_min": 5, "seed_max": 1}, "seed_min/seed_max"),
    ({"output_node": 9}, "output_node: expected a node id as a string"),
    ({"output_node": "9", "order": "1"}, "order: expected an integer"),
])
def test_bad_steps_name_what_is_missing(tmp_path: Path, kwargs: dict, message: str) -> None:
    cat = Catalog.create(tmp_path / "ws")
    with pytest.raises(InvalidArgumentError, match=message):
        steps.add_step(cat, "gen", WF, **kwargs)
    assert steps.list_steps(cat) == []
    cat.close()


def test_bad_workflows_and_names(tmp_path: Path) -> None:
    cat = Catalog.create(tmp_path / "ws")
    with pytest.raises(InvalidArgumentError, match="cannot read"):
        steps.add_step(cat, "a", tmp_path / "missing.json", output_node="9")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InvalidArgumentError, match="is not JSON"):
        steps.add_step(cat, "a", tmp_path / "bad.json", output_node="9")
    (tmp_path / "ui.json").write_text(json.dumps({"nodes": [], "links": [], "version": 0.4}))
    with pytest.raises(InvalidArgumentError, match=r"graph \(UI\) format.*Export \(API\)"):
        steps.add_step(cat, "a", tmp_path / "ui.json", output_node="9")
    with pytest.raises(InvalidArgumentError, match=r"node '1' .* is not an API-format node"):
        steps.add_step(cat, "a", {"1": {"inputs": {}}}, output_node="1")
    with pytest.raises(InvalidArgumentError, match=r"expected a JSON object of nodes.*list"):
        steps.add_step(cat, "a", "[1, 2]", output_node="1")
    with pytest.raises(InvalidArgumentError, match="links to node '5', which is not in the workflow"):
        steps.add_step(cat, "a", {"1": {"class_type": "SaveImage", "inputs": {"images": ["5", 0]}}}, output_node="1")
    for bad in ("", " x", "a/b", "x" * 65):
        with pytest.raises(InvalidArgumentError, match="name: expected a non-empty step name"):
            steps.add_step(cat, bad, WF, output_node="9")
    steps.add_step(cat, "gen", WF, output_node="9", seed_node="3", seed_input="seed")
    with pytest.raises(InvalidArgumentError, match="a step named 'gen' exists already"):
        steps.add_step(cat, "gen", WF, output_node="9")
    with pytest.raises(InvalidArgumentError, match="step 'gen' has order 0 already"):
        steps.add_step(cat, "other", WF, output_node="9", order=0)
    with pytest.raises(InvalidArgumentError, match="input_node is required"):
        steps.add_step(cat, "other", WF, output_node="9")
    with pytest.raises(InvalidArgumentError, match=r"the first step .* takes no input image"):
        steps.add_step(cat, "before", steps.example_workflow("face"), output_node="12", input_node="10", order=-1)
    with pytest.raises(InvalidArgumentError, match="input 'image' of input_node '11' is a link"):
        steps.add_step(cat, "face", steps.example_workflow("face"), output_node="12", input_node="11")
    with pytest.raises(InvalidArgumentError, match="expected one of base, face, hand, upscale"):
        steps.example_workflow("nope")
    face = steps.add_step(cat, "face", steps.example_workflow("face"), output_node="12", input_node="10")
    assert face.order == 1
    assert face.source == "face.json"
    assert [s.name for s in steps.list_steps(cat)] == ["gen", "face"]
    cat.close()
