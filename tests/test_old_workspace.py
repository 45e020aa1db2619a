"""A workspace made by the previous release (0.1.0, flat ``[imagerank]`` settings file, the cheap-feature cache
of that time) opens, migrates and passes ``doctor``; its ratings and leaderboard are exactly as that release left
them, and voting, undo and a refit of the live prior go on from there."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import imagerank

FIXTURE = Path(__file__).parent / "data" / "workspace-0.1.0"


@pytest.fixture
def old_ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(FIXTURE, ws)
    return ws


def test_previous_release_workspace_opens_migrates_and_passes_doctor(old_ws: Path) -> None:
    col = imagerank.open(old_ws)
    try:
        assert col.settings.roots == ("/photos/shoot",)  # the flat [imagerank] file still loads
        assert col.settings.strategy == "spec"
        assert col.settings.prior_refit_every == 0
        rep = col.doctor()
        assert rep.ok, str(rep)
        assert rep.matches_replayed == 32  # 30 wins, a draw, a 3-way ranking; the skip and the undone vote not
        expected_stats = json.loads((old_ws / "expected_stats.json").read_text())
        assert col.stats() == expected_stats
        board = col.leaderboard()[["image_id", "filename", "mu", "sigma", "comparison_count"]]
        expected = json.loads((old_ws / "expected_leaderboard.json").read_text())
        assert board.to_dict("records") == expected  # bit for bit: the replay and the stored ratings agree
    finally:
        col.close()


def test_voting_undo_and_the_live_prior_go_on_in_an_old_workspace(old_ws: Path) -> None:
    col = imagerank.open(old_ws)
    try:
        ids = col.leaderboard()["image_id"].astype(int).tolist()
        m = col.vote(ids[0], ids[-1], "right")
        assert col.doctor().ok
        assert col.undo(m.id) is not None
        assert col.doctor().ok
        before = col.stats()["comparisons"]
        col.vote(ids[1], ids[2], "left")
        assert col.stats()["comparisons"] == before + 1
        # the old cheap-feature cache is no obstacle: a refit without computing either uses or replaces it,
        # or says what to run; it never crashes and never breaks the log
        try:
            said = str(col.refit_prior("cheap", compute=False))
        except imagerank.ImagerankError as e:
            said = str(e)
        assert "features" in said or "live prior" in said
        assert col.doctor().ok
    finally:
        col.close()


def test_a_read_only_copy_of_an_old_workspace_reads_without_migrating(old_ws: Path) -> None:
    """A 0.1.0 workspace on read-only storage: its schema (version 1) is read as it is, never migrated."""
    col = imagerank.open(old_ws, read_only=True)
    try:
        assert col.stats() == json.loads((old_ws / "expected_stats.json").read_text())
        assert col.db.query("PRAGMA user_version")[0][0] == 1  # not migrated
        assert col.doctor().ok
    finally:
        col.close()
