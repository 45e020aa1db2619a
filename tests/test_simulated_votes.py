"""Simulated votes stay out of the user's workspaces: ``simulated_votes`` refuses a workspace the user made, the
ranker notebook simulates only on the demo, and ``VoteLog.undo_source`` takes simulated votes back out exactly."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pytest

import imagerank
from imagerank.catalog.votes import VoteEvent
from imagerank.errors import InvalidArgumentError
from imagerank.training.simulate import (
    DEMO_MANIFEST,
    FeatureJudge,
    is_demo_workspace,
    simulated_votes,
    write_preference_images,
)

NOTEBOOK_03 = Path(__file__).resolve().parents[1] / "notebooks" / "03_train_ranker.ipynb"


def _ratings(col: imagerank.Collection) -> dict[int, tuple[float, float, int]]:
    rows = col.db.query("SELECT id, mu, sigma, comparison_count FROM images ORDER BY id")
    return {int(r[0]): (r[1], r[2], int(r[3])) for r in rows}


def test_simulated_votes_refuse_a_workspace_the_user_made(make_collection) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(6, strategy="random")
    assert not is_demo_workspace(col)
    with pytest.raises(InvalidArgumentError, match="expected a demo workspace") as err:
        simulated_votes(col, 10)
    assert str(col.root) in str(err.value)
    assert "allow_user_workspace=True" in str(err.value)
    assert col.stats()["comparisons"] == 0  # nothing written
    report = simulated_votes(col, 5, allow_user_workspace=True)  # asked for explicitly
    assert report.n_votes == 5
    assert set(col.matches_df()["source"]) == {"simulated"}


def test_generated_images_make_a_demo_workspace(tmp_path: Path) -> None:
    write_preference_images(tmp_path / "images", 4, seed=1)
    manifest = json.loads((tmp_path / "images" / DEMO_MANIFEST).read_text(encoding="utf-8"))
    assert manifest["n"] == 4
    col = imagerank.init(tmp_path / "ws", tmp_path / "images")
    try:
        assert is_demo_workspace(col)
    finally:
        col.close()


def test_undo_source_leaves_exactly_the_users_votes(tmp_path: Path) -> None:
    write_preference_images(tmp_path / "images", 24, seed=2)
    col = imagerank.init(tmp_path / "ws", tmp_path / "images", strategy="random", prior_refit_every=0)
    col.scan(progress=False)
    col.close()
    shutil.copytree(tmp_path / "ws", tmp_path / "fresh")  # the same workspace before any vote
    col = imagerank.open(tmp_path / "ws")
    fresh = imagerank.open(tmp_path / "fresh")
    try:
        ids = [int(i) for i in col.images_df()["id"]]
        user = [([ids[0], ids[1]], [0, 1]), ([ids[2], ids[3], ids[4]], [1, 0, 2]), ([ids[1], ids[5]], [0, 0])]
        simulated_votes(col, 40, FeatureJudge(noise=0.3), seed=1)
        col.votes.record(*user[0], source="user")
        simulated_votes(col, 30, FeatureJudge(noise=0.3), seed=2)  # later simulated votes touch the same images
        col.votes.record(*user[1], source="user")
        col.votes.record(*user[2])
        assert col.stats()["comparisons"] >= 73
        events: list[VoteEvent] = []
        col.votes.subscribe(events.append)

        assert col.votes.undo_source("simulated") == 70
        assert [e.kind for e in events] == ["replay"]
        kept = col.matches_df()
        assert set(kept["source"]) == {"user"}
        assert kept["match_id"].nunique() == 3
        assert len(col.matches_df(include_undone=True).drop_duplicates("match_id")) == 73
        assert col.doctor().ok
        for image_ids, ranks in user:  # the user's votes alone, recorded in a fresh copy
            fresh.votes.record(image_ids, ranks)
        assert _ratings(col) == _ratings(fresh)  # exactly: as if the simulated votes had never been recorded
        assert col.votes.undo_source("simulated") == 0  # nothing left with that source
        assert [e.kind for e in events] == ["replay"]
        with pytest.raises(InvalidArgumentError, match="source"):
            col.votes.undo_source("")
    finally:
        col.close()
        fresh.close()


def test_ranker_notebook_simulates_only_on_the_demo(make_collection, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Notebook 03's first cells, run on a workspace the user made with a few votes: no simulated vote lands."""
    col = make_collection(6, strategy="random")
    ids = [int(i) for i in col.images_df()["id"]]
    for a, b in itertools.pairwise(ids):
        col.vote(a, b, "left")
    root = col.root
    col.close()
    monkeypatch.setenv("IMAGERANK_WORKSPACE", str(root))
    cells = [c for c in json.loads(NOTEBOOK_03.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    scope: dict[str, object] = {}
    for cell in cells[:3]:  # imports, open the workspace, the demo-only simulation cell
        source = "".join(cell["source"])
        exec("\n".join(line for line in source.splitlines() if not line.startswith("%")), scope)
    nb_col = scope["col"]
    assert isinstance(nb_col, imagerank.Collection)
    try:
        assert nb_col.root == root
        assert set(nb_col.matches_df()["source"]) == {"user"}
        assert nb_col.stats()["comparisons"] == 5
        assert "using the votes in the workspace" in capsys.readouterr().out
    finally:
        nb_col.close()
