"""``PairQueue`` driven directly, without a widget or a browser: what every voting panel builds on."""

from __future__ import annotations

import numpy as np
import pytest

from imagerank.catalog import pair_key
from imagerank.errors import InvalidArgumentError, NotFoundError, StrategyNotFoundError
from imagerank.pairing import OUTCOMES, Pair, PairQueue, Pool, Undone


def keys(q: PairQueue) -> list[tuple[int, int]]:
    return [p.key for p in q]


def test_fill_queues_depth_distinct_unjudged_pairs(make_collection):
    col = make_collection(10)
    q = PairQueue(col, depth=6)
    assert len(q) == 0  # nothing until asked
    added = q.fill()
    assert len(q) == 6 == len(added)
    assert len(set(keys(q))) == 6  # no pair twice in the queue
    assert len({p.pid for p in q}) == 6
    assert all(p.left != p.right for p in q)
    assert q.peek() == q.pairs[0]
    assert q.strategy == col.settings.strategy == "spec"
    assert q.image_ids() == list(dict.fromkeys(i for p in q for i in p.ids))
    assert q.fill() == []  # full already


def test_record_goes_through_the_vote_log_retires_and_refills(make_collection):
    col = make_collection(10)
    q = PairQueue(col, depth=4, voter="tester")
    q.fill()
    judged = []
    for outcome in ["left", "right", "draw", "skip"]:
        pair = q.peek()
        assert pair is not None
        match = q.record(pair, outcome, decision_ms=812.5)
        judged.append(pair)
        assert match.image_ids == [pair.left, pair.right]
        assert match.positions == [0, 1]
        assert pair not in q.pairs
        assert len(q) == 4
        assert q.is_judged(pair.pid)
    assert (q.votes, q.skips, q.can_undo) == (3, 1, 4)
    df = col.matches_df()
    assert set(df["voter"]) == {"tester"}
    assert df["decision_ms"].eq(812.5).all()
    assert [k for k in df.drop_duplicates("match_id")["kind"]] == ["win", "win", "draw", "skip"]
    # judged pairs never come back in this session
    for _ in range(5):
        p = q.peek()
        assert p is not None
        q.record(p, "left")
    assert not {p.key for p in judged} & set(keys(q))
    assert col.doctor().ok


def test_decision_time_out_of_range_is_stored_as_none(make_collection):
    col = make_collection(6)
    q = PairQueue(col, depth=2)
    q.fill()
    for ms in (-5, 10 ** 12, "fast", True):
        p = q.peek()
        assert p is not None
        q.record(p, "left", ms)  # type: ignore[arg-type]
    assert col.matches_df()["decision_ms"].isna().all()


def test_bad_input_is_a_clear_error_and_records_nothing(make_collection):
    col = make_collection(8)
    q = PairQueue(col, depth=3)
    q.fill()
    front = q.peek()
    assert front is not None
    with pytest.raises(InvalidArgumentError, match="outcome"):
        q.record(front, "sideways")
    with pytest.raises(NotFoundError, match="99999"):
        q.record(99999, "left")
    with pytest.raises(InvalidArgumentError, match="Python queued"):
        q.record(front.pid, "left", shown=(front.right, front.left))
    assert col.stats()["comparisons"] == 0
    q.record(front.pid, "left", shown=front.ids)
    with pytest.raises(InvalidArgumentError, match="judged already"):
        q.record(front, "right")
    assert len(col.matches_df()) == 2  # one match, two entries
    assert OUTCOMES == ("left", "right", "draw", "skip")


def test_a_retired_pair_still_takes_its_late_vote(make_collection):
    col = make_collection(8)
    q = PairQueue(col, depth=3)
    q.fill()
    first = q.pop()  # the browser advanced past it before Python heard the vote
    assert first is not None
    assert first not in q.pairs
    assert q.get(first.pid) == first
    assert len(q) == 2
    q.record(first.pid, "right")
    assert col.stats()["wins"] == 1
    assert len(q) == 3  # refilled
    q.retire(q.pairs[-1])
    assert len(q) == 2
    q.fill()
    assert len(q) == 3


def test_undo_puts_the_pair_back_in_front(make_collection):
    col = make_collection(10)
    q = PairQueue(col, depth=4)
    q.fill()
    a = q.peek()
    assert a is not None
    q.record(a, "left")
    b = q.peek()
    assert b is not None
    q.record(b, "skip")
    done = q.undo()
    assert isinstance(done, Undone)
    assert done.pair == b
    assert done.requeued
    assert done.reason is None
    assert done.match.kind == "skip"
    assert q.peek() == b
    assert len(q) == 4  # trimmed back to depth
    assert not q.is_judged(b.pid)
    assert (q.votes, q.skips) == (1, 0)
    q.record(b, "draw")  # judged again, differently
    assert q.undo() is not None
    assert q.undo() is not None
    assert q.undo() is None  # nothing left
    assert q.peek() == a
    assert col.stats()["comparisons"] == 0
    assert col.doctor().ok


def test_undo_of_a_match_undone_elsewhere_is_not_found(make_collection):
    col = make_collection(6)
    q = PairQueue(col, depth=2)
    q.fill()
    p = q.peek()
    assert p is not None
    match = q.record(p, "left")
    col.undo(match.id)  # another view, or the notebook
    with pytest.raises(NotFoundError, match="already undone"):
        q.undo()
    assert q.can_undo == 0


def test_images_that_become_unusable_leave_the_queue(make_collection):
    col = make_collection(10)
    gone: set[int] = set()
    q = PairQueue(col, depth=5, check=lambda i: "file gone" if i in gone else None)
    q.fill()
    victim = q.pairs[0].left
    gone.add(victim)
    dropped = q.drop_images({victim})
    assert dropped
    assert all(victim in p.ids for p in dropped)
    assert all(victim not in p.ids for p in q)
    q.fill()
    assert len(q) == 5
    for _ in range(10):  # the check keeps it out of every refill
        p = q.peek()
        assert p is not None
        q.record(p, "left")
        assert all(victim not in p.ids for p in q)
    # an undo whose pair holds it does not requeue the pair, and says why
    q2 = PairQueue(col, depth=3, check=lambda i: "file gone" if i in gone else None)
    q2.fill()
    p = q2.peek()
    assert p is not None
    q2.record(p, "right")
    gone.add(p.left)
    done = q2.undo()
    assert done is not None
    assert not done.requeued
    assert done.reason == "file gone"
    assert p not in q2.pairs
    assert col.doctor().ok


def test_default_check_follows_the_pool(make_collection):
    col = make_collection(6)
    q = PairQueue(col, depth=15)  # 6 images: 15 pairs in all
    q.fill()
    assert len(q) == 15
    col.images.set_status(1, "rejected", "not wanted")
    assert q.usable(1) == "not an active image"
    q.drop_images([i for i in range(1, 7) if q.usable(i) is not None])
    assert len(q) == 10
    assert q.fill() == []  # every pair of the 5 left is queued already


def test_opponents_for_new_images_and_introduce(make_collection):
    col = make_collection(12)
    q = PairQueue(col, depth=6, rng=np.random.default_rng(3))
    q.fill()
    front = q.peek()
    q.clear(keep_front=True)
    assert q.pairs == [front]
    opp = q.opponent_for(5)
    assert opp is not None
    assert opp != 5
    assert pair_key(5, opp) not in set(keys(q))
    assert q.opponent_for(12345) is None  # not in the pool
    new = q.introduce([3, 4, 5])
    assert len(new) == 3
    assert all(n in p.ids for n, p in zip([3, 4, 5], new))
    assert len(q) == 4
    q.introduce(range(1, 13))
    assert len(q) == 6  # never past depth
    q.clear()
    assert len(q) == 0


def test_opponent_never_repeats_a_judged_pair(make_collection):
    col = make_collection(2)
    q = PairQueue(col, depth=1)
    q.fill()
    p = q.peek()
    assert p is not None
    q.record(p, "left")
    assert q.opponent_for(p.left) is None  # the only pair was judged in this session
    assert len(q) == 0  # and the strategy has nothing left to offer
    assert q.fill() == []


def test_works_on_a_bare_catalog_and_a_pool_function(make_collection):
    col = make_collection(8)
    cat = col.catalog
    q = PairQueue(cat, depth=3, strategy="random")
    q.fill()
    p = q.peek()
    assert p is not None
    q.record(p, "left")
    assert cat.votes.get(1).image_ids == list(p.ids)
    pool = Pool.from_arrays([1, 2, 3], [25.0] * 3, [8.0] * 3, [0] * 3)
    q2 = PairQueue(cat, depth=2, strategy="random", pool=lambda: pool)
    q2.fill()
    assert {i for p in q2 for i in p.ids} <= {1, 2, 3}


def test_push_depth_and_strategy_are_checked(make_collection):
    col = make_collection(6)
    with pytest.raises(InvalidArgumentError, match="depth"):
        PairQueue(col, depth=0)
    with pytest.raises(InvalidArgumentError, match="depth"):
        PairQueue(col, depth=65)
    with pytest.raises(StrategyNotFoundError, match="no-such"):
        PairQueue(col, strategy="no-such")
    q = PairQueue(col, depth=3)
    with pytest.raises(InvalidArgumentError, match="two different"):
        q.push(2, 2)
    pushed = q.push(1, 2, front=True)
    assert isinstance(pushed, Pair)
    assert pushed.ids == (1, 2)
    assert pushed.key == (1, 2)
    q.fill()
    assert q.peek() == pushed
    assert len(q) == 3
    q.depth = 1
    q.fill()
    assert q.pairs == [pushed]


def test_an_image_deleted_after_queueing_is_a_clear_error_and_its_pair_leaves(make_collection):
    col = make_collection(8)
    q = PairQueue(col, depth=3)
    p = q.push(1, 2)
    q.push(3, 1)
    q.fill()
    col.db.execute("DELETE FROM images WHERE id=?", (p.left,))
    with pytest.raises(NotFoundError, match=str(p.left)):
        q.record(p, "left")
    assert p not in q.pairs
    assert len(q) == 3
    assert all(p.left not in x.ids for x in q)
    assert len(col.matches_df()) == 0
