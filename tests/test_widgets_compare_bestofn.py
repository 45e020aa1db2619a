"""The compare panel's best-of-N mode, driven headless: ``round`` / ``mode`` / ``undo`` messages in, matches and
ratings out; bad messages become a recorded status, never an exception."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagerank.errors import InvalidArgumentError
from imagerank.pairing import RoundQueue
from imagerank.widgets import ComparePanel


def kept_matches(col) -> list[tuple[str, list[int], list[int], list[int]]]:
    """(kind, image ids by position, ranks, positions) of kept matches, in order."""
    df = col.matches_df()
    out = []
    for _, g in df.groupby("match_id", sort=True):
        g = g.sort_values("position")
        out.append((g["kind"].iloc[0], g["image_id"].tolist(), g["rank"].tolist(), g["position"].tolist()))
    return out


def ratings(col) -> dict[int, tuple[float, float, int]]:
    return {int(r["id"]): (float(r["mu"]), float(r["sigma"]), int(r["comparison_count"]))
            for r in col.db.query("SELECT id, mu, sigma, comparison_count FROM images")}


def judge(panel: ComparePanel, best: int | None, worst: int | None = None, *, outcome: str = "best",
          rnd: dict | None = None) -> dict:
    """Judge ``rnd`` (default: the front round) as the browser would; returns the round."""
    r = rnd or panel.rounds[0]
    msg = {"type": "round", "rid": r["rid"], "ids": [i["id"] for i in r["images"]], "best": best, "worst": worst,
           "outcome": outcome, "ms": 1500.0}
    panel.handle_message(msg)
    assert panel.status.get("level") != "error", panel.status
    return r


@pytest.fixture
def col(make_collection):
    return make_collection(14)


@pytest.mark.parametrize("size", [3, 4])
def test_rounds_are_stored_as_one_nway_match_each(col, size):
    panel = ComparePanel(col, strategy="spec", group_size=size, queue_depth=8)
    panel.handle_message({"type": "ready"})
    assert panel.rounds_mode
    assert panel.group_size == size
    assert panel.pairs == []
    assert len(panel.rounds) == 4
    assert all(len(r["images"]) == size and len({i["id"] for i in r["images"]}) == size for r in panel.rounds)
    r1 = judge(panel, best=2)
    r2 = judge(panel, best=0, worst=size - 1)
    r3 = judge(panel, None, outcome="skip")
    ids = [[i["id"] for i in r["images"]] for r in (r1, r2, r3)]
    mid = [1] * size
    rk1 = list(mid)
    rk1[2] = 0
    rk2 = [0, *[1] * (size - 2), size - 1]
    kind = "ranking"
    assert kept_matches(col) == [(kind, ids[0], rk1, list(range(size))), (kind, ids[1], rk2, list(range(size))),
                                 ("skip", ids[2], [0] * size, list(range(size)))]
    assert col.matches_df()["decision_ms"].eq(1500.0).all()
    assert panel.header["votes"] == 2
    assert panel.header["skips"] == 1
    assert panel.header["comparisons"] == 2
    assert len(panel.rounds) == 4
    assert panel.rounds[0]["rid"] not in {r1["rid"], r2["rid"], r3["rid"]}
    assert panel.can_undo == 3
    assert col.doctor().ok


def test_undo_takes_back_the_whole_round_exactly(col):
    panel = ComparePanel(col, strategy="spec", group_size=4)
    panel.handle_message({"type": "ready"})
    before = ratings(col)
    r = judge(panel, best=1, worst=3)
    after = ratings(col)
    assert after != before
    replies = panel.handle_message({"type": "undo"})
    assert ratings(col) == before  # exactly: the before values come back
    assert ({"type": "undone", "pid": None, "rid": r["rid"]}, []) in replies
    assert panel.rounds[0]["rid"] == r["rid"]  # the round is back on screen
    assert panel.header["votes"] == 0
    assert panel.can_undo == 0
    assert [m[0] for m in kept_matches(col)] == []
    assert col.doctor().ok
    judge(panel, best=0)  # the same round again
    assert len(kept_matches(col)) == 1
    assert col.doctor().ok


def test_undo_follows_the_order_of_pairs_and_rounds(col):
    panel = ComparePanel(col, strategy="spec")
    panel.handle_message({"type": "ready"})
    p = panel.pairs[0]
    panel.handle_message({"type": "vote", "pid": p["pid"], "left": p["left"]["id"], "right": p["right"]["id"],
                          "outcome": "left", "ms": 900})
    panel.handle_message({"type": "mode", "size": 3})
    assert panel.group_size == 3
    assert panel.pairs == []
    assert len(panel.rounds) == 4
    assert "best of 3" in panel.status["text"]
    r = judge(panel, best=0)
    panel.handle_message({"type": "undo"})  # the round first
    assert panel.rounds[0]["rid"] == r["rid"]
    assert [m[1] for m in kept_matches(col)] == [[p["left"]["id"], p["right"]["id"]]]
    panel.handle_message({"type": "undo"})  # then the pair
    assert kept_matches(col) == []
    assert col.doctor().ok
    panel.handle_message({"type": "mode", "size": 2})
    assert panel.rounds == []
    assert len(panel.pairs) == 8
    assert panel.group_size == 2


@pytest.mark.parametrize(("patch", "says"), [
    ({"ids": "drop-last"}, "has 3 images, the browser sent 2"),  # wrong N
    ({"ids": "extra"}, "has 3 images, the browser sent 4"),
    ({"ids": "reversed"}, "Python queued"),
    ({"best": 3}, "best: expected an image index 0..2"),  # out of range
    ({"best": -1}, "best: expected an image index 0..2"),
    ({"best": "x"}, "best: expected an image index"),
    ({"best": None}, "best: expected an image index"),
    ({"worst": 7}, "worst: expected an image index 0..2"),
    ({"best": 1, "worst": 1}, "worst: expected another image than best"),
    ({"rid": "abc"}, "rid: expected an integer"),
    ({"outcome": "left"}, "outcome: expected best or skip"),
])
def test_bad_round_messages_become_an_error_status(col, patch, says):
    panel = ComparePanel(col, strategy="spec", group_size=3)
    r = panel.rounds[0]
    ids = [i["id"] for i in r["images"]]
    msg = {"type": "round", "rid": r["rid"], "ids": ids, "best": 0, "worst": None, "ms": 10}
    for k, v in patch.items():
        msg[k] = {"drop-last": ids[:-1], "extra": [*ids, 999], "reversed": ids[::-1]}.get(v, v) \
            if k == "ids" else v
    panel.handle_message(msg)
    assert panel.status["level"] == "error"
    assert says in panel.status["text"]
    assert kept_matches(col) == []
    assert panel.rounds[0]["rid"] == r["rid"]  # nothing moved on
    judge(panel, best=0)  # and the panel still works
    assert len(kept_matches(col)) == 1


def test_stale_and_repeated_round_ids_are_ignored_with_a_warning(col):
    panel = ComparePanel(col, strategy="spec", group_size=3)
    panel.handle_message({"type": "round", "rid": 9999, "best": 0})
    assert panel.status["level"] == "warning"
    assert "round 9999" in panel.status["text"]
    r = judge(panel, best=0)
    panel.handle_message({"type": "round", "rid": r["rid"], "best": 1})  # a second view's late vote
    assert panel.status["level"] == "warning"
    assert "already judged" in panel.status["text"]
    assert len(kept_matches(col)) == 1
    # A round voted just before a switch to pairs is still accepted (the browser advanced locally).
    r2 = panel.rounds[0]
    panel.handle_message({"type": "mode", "size": 2})
    judge(panel, best=2, rnd=r2)
    assert len(kept_matches(col)) == 2
    assert panel.rounds == []


@pytest.mark.parametrize("size", [1, 5, "3", None, True, 3.5])
def test_bad_mode_messages_and_arguments(col, size):
    panel = ComparePanel(col, strategy="spec")
    panel.handle_message({"type": "mode", "size": size})
    assert panel.status["level"] == "error"
    assert "group_size" in panel.status["text"]
    assert panel.group_size == 2
    assert len(panel.pairs) == 8
    with pytest.raises(InvalidArgumentError, match="group_size"):
        ComparePanel(col, group_size=size)  # type: ignore[arg-type]


def test_setting_group_size_from_python_and_active_rounds(make_collection):
    col = make_collection(30, strategy="active")
    panel = ComparePanel(col)
    panel.handle_message({"type": "ready"})
    panel.group_size = 4
    assert len(panel.rounds) == 4
    assert all(len(r["images"]) == 4 for r in panel.rounds)
    # the front round's thumbnails were sent
    sent = panel.handle_message({"type": "ready"})
    shown = {i for c, _ in sent if c["type"] == "images" for i in c["ids"]}
    assert {i["id"] for i in panel.rounds[0]["images"]} <= shown
    for _ in range(6):
        judge(panel, best=3, worst=0)
    assert panel.top
    assert panel.header["votes"] == 6
    assert col.doctor().ok
    # no two queued rounds share a pair of images
    keys = [k for r in panel.round_queue for k in r.pair_keys]
    assert len(keys) == len(set(keys))
    with pytest.raises(Exception, match="group_size"):
        panel.group_size = 7
    assert panel.group_size == 4


def test_round_queue_alone(col):
    q = RoundQueue(col, size=3, depth=2)
    assert q.fill()
    assert len(q) == 2
    r = q.peek()
    assert r is not None
    m = q.record(r, best=1, worst=2, decision_ms=-5)
    assert m.kind == "ranking"
    assert q.votes == 1
    assert q.get(r.rid) == r
    assert q.is_judged(r.rid)
    assert q.last_match_id == m.id
    with pytest.raises(InvalidArgumentError, match="judged already"):
        q.record(r, best=0)
    back = q.undo()
    assert back is not None
    assert back.requeued
    assert q.peek() == r
    assert q.undo() is None
    with pytest.raises(InvalidArgumentError, match="size"):
        RoundQueue(col, size=2)
    with pytest.raises(InvalidArgumentError, match="depth"):
        RoundQueue(col, size=3, depth=5)


def test_a_gone_image_leaves_the_rounds_and_undo_still_restores_the_log(col):
    panel = ComparePanel(col, strategy="spec", group_size=3)
    panel.handle_message({"type": "ready"})
    before = ratings(col)
    r = judge(panel, best=0)
    gone = r["images"][1]["id"]
    Path(col.image(gone)["filepath"]).unlink()
    panel.handle_message({"type": "broken", "id": gone})  # the browser could not show it
    assert all(gone not in [i["id"] for i in q["images"]] for q in panel.rounds)
    assert len(panel.rounds) == 4
    panel.handle_message({"type": "undo"})
    assert panel.status["level"] == "warning"
    assert "not shown again" in panel.status["text"]
    assert all(q["rid"] != r["rid"] for q in panel.rounds)
    after = ratings(col)
    assert {k: v[:2] for k, v in after.items()} == {k: v[:2] for k, v in before.items()}
    assert col.doctor().ok


def test_flag_in_rounds_mode_labels_the_images_shown(col):
    panel = ComparePanel(col, strategy="spec", group_size=4)
    ids = [i["id"] for i in panel.rounds[0]["images"]]
    panel.handle_message({"type": "flag", "ids": ids})
    assert panel.status["level"] == "info"
    flagged = {int(r["image_id"]) for r in col.db.query("SELECT image_id FROM labels WHERE label = 'flag'")}
    assert flagged == set(ids)
