"""Triage: final-column pairs first, then the columns to the left; the kill-left walk; exact undo of votes and
kills through the vote log and the tree; bad input refused with nothing recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from gen_support import add_file_candidate, example_workspace

from imagerank.catalog import Catalog
from imagerank.errors import InvalidArgumentError
from imagerank.generation import policy, tree
from imagerank.generation.triage import Triage, voted_pairs


def _grow(cat: Catalog) -> dict[str, int]:
    """b1 -> f1 -> h1 -> u1, u2 ; b1 -> f2 -> h2 -> u3 ; b2 -> f3 -> h3 ; b1 -> f1 -> h4."""
    ids: dict[str, int] = {}
    ids["b1"] = add_file_candidate(cat, "base", seed=1)
    ids["b2"] = add_file_candidate(cat, "base", seed=2)
    ids["f1"] = add_file_candidate(cat, "face", ids["b1"], seed=3)
    ids["f2"] = add_file_candidate(cat, "face", ids["b1"], seed=4)
    ids["f3"] = add_file_candidate(cat, "face", ids["b2"], seed=5)
    ids["h1"] = add_file_candidate(cat, "hand", ids["f1"], seed=6)
    ids["h4"] = add_file_candidate(cat, "hand", ids["f1"], seed=7)
    ids["h2"] = add_file_candidate(cat, "hand", ids["f2"], seed=8)
    ids["h3"] = add_file_candidate(cat, "hand", ids["f3"], seed=9)
    ids["u1"] = add_file_candidate(cat, "upscale", ids["h1"], seed=10)
    ids["u2"] = add_file_candidate(cat, "upscale", ids["h1"], seed=11)
    ids["u3"] = add_file_candidate(cat, "upscale", ids["h2"], seed=12)
    return ids


@pytest.fixture
def grown(tmp_path: Path) -> tuple[Catalog, dict[str, int]]:
    cat = example_workspace(tmp_path / "ws", max_children=3)
    return cat, _grow(cat)


def test_final_pairs_first_then_columns_right_to_left(grown) -> None:
    cat, ids = grown
    t = Triage(cat, seed=3)
    finals = {ids["u1"], ids["u2"], ids["u3"]}
    asked = []
    while t.question.kind == "pair" and t.question.is_final:
        q = t.question
        assert set(q.ids) <= finals
        assert q.step == "upscale"
        assert "final column" in q.text
        asked.append(frozenset(q.ids))
        t.vote("left", qid=q.qid)
    assert len(asked) == 3
    assert len(set(asked)) == 3
    q = t.question
    assert q.kind == "pair"
    assert q.step == "hand"
    assert q.unvoted == 6
    steps = []
    while t.question.kind == "pair":
        steps.append(t.question.step)
        t.vote("skip")  # a skip is a kept match: the pair is not asked again
    assert steps == ["hand"] * 6 + ["face"] * 3 + ["base"]
    assert t.question.kind == "done"
    assert "Every pair" in t.question.text
    assert len(voted_pairs(cat)) == 3 + 6 + 3 + 1
    assert t.votes == 13


def test_fewest_compared_first_and_sides_deterministic(grown) -> None:
    cat, ids = grown
    a, b = Triage(cat, seed=1).question, Triage(cat, seed=1).question
    assert (a.left, a.right) == (b.left, b.right)
    # u1 and u2 compared already elsewhere (the compare panel's path): u3, never compared, is asked first
    cat.votes.vote(ids["u1"], ids["u2"], "left")
    q = Triage(cat).question
    assert ids["u3"] in q.ids
    assert q.unvoted == 2


def test_votes_go_through_the_vote_log_and_undo_exactly(grown) -> None:
    cat, _ids = grown
    t = Triage(cat, voter="tester")
    before = tree.candidates_df(cat).set_index("id")[["mu", "sigma"]]
    q = t.question
    m = t.vote("right", qid=q.qid, decision_ms=420)
    df = cat.votes.matches_df()
    assert df["match_id"].nunique() == 1
    assert set(df["voter"]) == {"tester"}
    after = tree.candidates_df(cat).set_index("id")
    assert after.loc[q.right, "mu"] > after.loc[q.left, "mu"]
    assert cat.votes.doctor().ok
    u = t.undo()
    assert u is not None
    assert u.action == "vote"
    assert u.match is not None
    assert u.match.id == m.id
    assert u.question.ids == q.ids
    assert u.question.qid > q.qid
    assert cat.votes.matches_df().empty
    back = tree.candidates_df(cat).set_index("id")[["mu", "sigma"]]
    assert back.equals(before)
    assert t.undo() is None


def test_kill_walks_left_until_the_root_cause(grown) -> None:
    cat, ids = grown
    t = Triage(cat)
    # bring u1 on screen: vote until a final pair holds it
    while ids["u1"] not in t.question.ids:
        t.vote("skip")
    t.kill(ids["u1"])
    q = t.question
    # u1's parent h1 on the left, beside its sibling h4 (the only other child of f1)
    assert (q.kind, q.left, q.right, q.killed) == ("walk", ids["h1"], ids["h4"], (ids["u1"],))
    assert "Walk left" in q.text
    assert f"#{ids['h1']}" in q.text
    t.kill(ids["h1"])
    q = t.question
    assert (q.kind, q.left, q.right, q.killed) == ("walk", ids["f1"], ids["f2"], (ids["u1"], ids["h1"]))
    t.kill(ids["f1"])
    q = t.question
    # the base column: b1 beside b2
    assert (q.kind, q.left, q.right, q.step) == ("walk", ids["b1"], ids["b2"], "base")
    # b1 is fine: the vote ends the walk; f1 was the root cause
    t.vote("left")
    assert t.question.kind == "pair"
    assert not t.in_walk
    status = tree.candidates_df(cat).set_index("id")["status"]
    assert [status[ids[k]] for k in ("u1", "h1", "f1", "b1", "u2", "h4")] == \
        ["rejected"] * 3 + ["active"] * 3
    # a rejected node is never a parent again: next_job never picks h1 or f1
    for _ in range(20):
        job = policy.next_job(cat, max_children=5, target_finals=1)
        assert job is not None
        assert job.parent_id not in (ids["h1"], ids["f1"], ids["u1"])


def test_kill_at_the_base_ends_the_walk_and_killing_the_sibling_shows_another(grown) -> None:
    cat, ids = grown
    t = Triage(cat)
    while ids["u3"] not in t.question.ids:
        t.vote("skip")
    t.kill(ids["u3"])
    # h2's siblings: none (f2 has one child; h1, h3 are cousins, not siblings): h2 is alone
    assert t.question.left == ids["h2"]
    assert t.question.right is None
    assert "alone" in t.question.text
    with pytest.raises(InvalidArgumentError, match="no pair"):
        t.vote("left")
    t.kill(ids["h2"])
    q = t.question
    assert (q.left, q.right) == (ids["f2"], ids["f1"])
    t.kill(ids["f1"])  # the sibling: same suspect beside another sibling (none left active: f1 now rejected)
    q = t.question
    assert q.left == ids["f2"]
    assert q.right is None
    assert ids["f1"] not in q.ids
    t.kill(ids["f2"])
    q = t.question
    assert (q.left, q.right) == (ids["b1"], ids["b2"])
    t.kill(ids["b1"])  # the base: no parent, the walk ends
    assert t.question.kind == "pair"
    assert not t.in_walk


def test_stop_ends_the_walk_and_undo_restores_kills(grown) -> None:
    cat, ids = grown
    t = Triage(cat)
    while ids["u1"] not in t.question.ids:
        t.vote("skip")
    pair_q = t.question
    cancelled_job = policy.next_job(cat, max_children=3, target_finals=1)
    assert cancelled_job is not None
    t.kill(ids["u1"])
    t.kill(ids["h1"])
    walk_q = t.question
    t.stop()
    assert t.question.kind == "pair"
    u = t.undo()
    assert u is not None
    assert u.action == "stop"
    assert (t.question.left, t.question.right) == (walk_q.left,
                                                                                             walk_q.right)
    assert t.in_walk
    u = t.undo()
    assert u is not None
    assert u.action == "kill"
    assert u.image_id == ids["h1"]
    assert tree.get_candidate(cat, ids["h1"])["status"] == "active"
    assert t.question.kind == "walk"
    assert t.question.left == ids["h1"]
    u = t.undo()
    assert u is not None
    assert u.image_id == ids["u1"]
    assert tree.get_candidate(cat, ids["u1"])["status"] == "active"
    assert t.question.kind == "pair"
    assert t.question.ids == pair_q.ids
    assert not t.in_walk
    assert t.kills == 0


def test_bad_input_is_refused_and_records_nothing(grown, tmp_path: Path) -> None:
    cat, ids = grown
    t = Triage(cat)
    q = t.question
    with pytest.raises(InvalidArgumentError, match="outcome"):
        t.vote("up")
    with pytest.raises(InvalidArgumentError, match="out of step"):
        t.vote("left", qid=q.qid + 7)
    with pytest.raises(InvalidArgumentError, match="on screen"):
        t.kill(ids["b2"] if ids["b2"] not in q.ids else ids["b1"])
    with pytest.raises(InvalidArgumentError, match="candidate id"):
        t.kill("12")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="no kill-left walk"):
        t.stop()
    with pytest.raises(InvalidArgumentError, match="seed"):
        Triage(cat, seed=-1)
    assert cat.votes.matches_df().empty
    assert (tree.candidates_df(cat)["status"] == "active").all()
    assert t.question == q
    empty = Triage(example_workspace(tmp_path / "empty"))
    assert empty.question.kind == "done"
    assert "No active candidates" in empty.question.text
    with pytest.raises(InvalidArgumentError, match="nothing is left"):
        empty.vote("left")


def test_new_candidates_and_kills_elsewhere_refresh_the_question(tmp_path: Path) -> None:
    cat = example_workspace(tmp_path / "ws")
    b1 = add_file_candidate(cat, "base", seed=1)
    t = Triage(cat)
    assert t.question.kind == "done"
    b2 = add_file_candidate(cat, "base", seed=2)
    assert t.refresh().kind == "pair"
    assert set(t.question.ids) == {b1, b2}
    b3 = add_file_candidate(cat, "base", seed=3)
    tree.reject(cat, t.question.left)  # killed in another panel
    q = t.refresh()
    assert q.kind == "pair"
    assert b3 in q.ids
