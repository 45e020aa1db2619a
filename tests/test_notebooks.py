"""Every notebook in notebooks/ runs top to bottom on a small generated demo workspace (nbclient, like nbmake).

The workspace comes from ``IMAGERANK_WORKSPACE`` (a fresh 60-image demo for each notebook), cells run
with the notebook folder as working directory, and the notebooks in the repository are never written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))


def test_notebooks_exist():
    names = {p.name for p in PATHS}
    assert {"01_vote.ipynb", "05_explore.ipynb", "09_plan.ipynb"} <= names


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    import nbclient
    import nbformat

    import imagerank
    from imagerank.demo import make_demo

    ws = tmp_path / "ws"
    make_demo(ws, n=60, progress=False).close()
    monkeypatch.setenv("IMAGERANK_WORKSPACE", str(ws))
    monkeypatch.setenv("IMAGERANK_CULL_DEMO", str(tmp_path / "cull-demo"))  # 07_cull's generated shoot
    monkeypatch.setenv("IMAGERANK_AUTOPICK_DEMO", str(tmp_path / "autopick-demo"))  # 08_autopick's own workspace
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("COMFYUI_URL", raising=False)  # 06_generation runs on its local emulator

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert "def " not in cell.source, f"{path.name}: notebook cells define no functions"
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    if path.name == "01_vote.ipynb":
        widgets = [c for c in nb.cells if c.cell_type == "code"
                   and any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in c.outputs)]
        assert len(widgets) == 2  # the compare panel and the leaderboard
    if path.name == "06_generation.ipynb":  # no COMFYUI_URL here: the local emulator ran every job
        from imagerank.generation import tree

        widgets = [c for c in nb.cells if c.cell_type == "code"
                   and any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in c.outputs)]
        assert len(widgets) == 2  # the board and the triage panel
        cols = tree.columns_df(imagerank.open(ws))
        assert list(cols["step"]) == ["base", "face", "hand", "upscale"]
        assert cols["candidates"].sum() == 24
        assert (cols["candidates"] > 0).all()
    if path.name == "07_cull.ipynb":
        cull_ws = imagerank.open(tmp_path / "cull-demo")
        picks = cull_ws.matches_df().drop_duplicates("match_id")
        assert (picks["source"] == "simulated").sum() >= 10  # the demo's scripted burst picks
        assert (cull_ws.models_dir / "burst-reranker" / "meta.json").is_file()
        pngs = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
        assert pngs == 3  # the best and trash buckets, then best after the rerank
        texts = "".join(o.get("data", {}).get("text/plain", "") for c in nb.cells if c.cell_type == "code"
                        for o in c.outputs)
        assert "'changed': 0" not in texts  # the learned rerank changed some picks
        cull_ws.close()
    if path.name == "05_explore.ipynb":
        pngs = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
        assert pngs == 5
        stats = json.loads(json.dumps(imagerank.open(ws).stats()))
        assert stats["comparisons"] >= 100  # the demo cell's scripted votes, so the plots show something
    if path.name == "09_plan.ipynb":
        col = imagerank.open(ws)
        assert [tuple(r) for r in col.db.query("SELECT status, session_id IS NOT NULL FROM plans")] == [("done", 1)]
        col.close()


def test_plan_notebook_writes_nothing_to_a_workspace_the_user_made(tmp_path, monkeypatch):
    """09_plan previews on any workspace but runs its plan by itself only on the demo: on a workspace the user made
    (no demo manifest) it leaves no plan row and starts no voting session."""
    import nbclient
    import nbformat

    import imagerank
    from imagerank.demo import make_demo
    from imagerank.training.simulate import DEMO_MANIFEST

    ws = tmp_path / "ws"
    make_demo(ws, n=40, progress=False).close()
    (ws / DEMO_MANIFEST).unlink()  # now it is a workspace like one the user made
    before = imagerank.open(ws)
    sessions = before.db.query("SELECT COUNT(*) FROM sessions")[0][0]
    before.close()
    monkeypatch.setenv("IMAGERANK_WORKSPACE", str(ws))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOKS / "09_plan.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    col = imagerank.open(ws)
    assert col.db.query("SELECT COUNT(*) FROM plans")[0][0] == 0
    assert col.db.query("SELECT COUNT(*) FROM sessions")[0][0] == sessions
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "press Run in the panel" in outputs
