"""Thumbnail prefetch of the compare panel: look-ahead pairs get their thumbnails on a background thread, a vote
decodes nothing on the kernel's thread, failures are recorded, and thumbnail writes do not reload the pool."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from imagerank.widgets import ComparePanel
from imagerank.widgets.prefetch import AHEAD_PAIRS, ThumbPrefetch


def _until(cond, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def _vote(panel: ComparePanel) -> None:
    p = panel.pairs[0]
    panel.handle_message({"type": "vote", "pid": p["pid"], "left": p["left"]["id"], "right": p["right"]["id"],
                          "outcome": "left", "ms": 500})
    assert panel.status.get("level") != "error", panel.status


def test_look_ahead_thumbnails_are_made_without_a_key_press(make_collection):
    col = make_collection(40)  # scanned without thumbnails: every thumbnail is made on demand
    panel = ComparePanel(col, strategy="random", queue_depth=2)
    assert len(panel.queue) == 2 == len(panel.pairs)  # the browser's window is queue_depth pairs
    ahead = panel.pair_queue.pairs[2:]
    assert len(ahead) == AHEAD_PAIRS  # and Python holds the look-ahead beyond it
    ids = {i for p in ahead for i in p.ids}
    assert _until(lambda: all(col.thumbs.path(i) is not None for i in ids)), "look-ahead thumbnails not made"
    assert panel._prefetch.made > 0


def test_a_vote_decodes_nothing_on_the_kernel_thread_once_prefetched(make_collection, monkeypatch):
    col = make_collection(40)
    panel = ComparePanel(col, strategy="random", queue_depth=2)
    panel.handle_message({"type": "ready"})
    assert panel._prefetch.wait(30)
    made_on: list[str] = []
    real = col.thumbs.build

    def build(*args, **kwargs):
        made_on.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(col.thumbs, "build", build)
    for _ in range(5):
        before = {i for p in panel.pair_queue.pairs for i in p.ids}
        front = panel.pairs[0]
        sent = panel.handle_message({"type": "vote", "pid": front["pid"], "left": front["left"]["id"],
                                     "right": front["right"]["id"], "outcome": "right", "ms": 400})
        held = {i for m, _ in sent if m.get("type") == "images" for i in m["ids"]} | panel._held
        new_pair = panel.pairs[-1]
        assert {new_pair["left"]["id"], new_pair["right"]["id"]} <= held  # the browser has its thumbnails
        assert {new_pair["left"]["id"], new_pair["right"]["id"]} <= before  # it came from the look-ahead
        assert panel._prefetch.wait(30)
    assert threading.main_thread().name not in made_on  # every thumbnail (queue and top-10 strip) made ahead


def test_a_broken_image_in_the_prefetch_window_is_recorded_not_raised(make_collection):
    col = make_collection(10)
    rows = col.db.query("SELECT id, filepath FROM images ORDER BY id")
    bad_ids = {rows[k][0] for k in (3, 7)}
    for k in (3, 7):
        Path(rows[k][1]).write_bytes(b"not a jpeg" * 20)
    panel = ComparePanel(col, strategy="random", queue_depth=2)  # 2 shown, 12 ahead: nearly every image queued
    panel.handle_message({"type": "ready"})
    for _ in range(6):
        assert panel._prefetch.wait(30)
        _vote(panel)
    assert _until(lambda: all(col.image(i)["status"] == "corrupt" for i in bad_ids), 5)
    _vote(panel)  # the failures the worker found are reported at the next message
    assert bad_ids <= {s["id"] for s in panel.skipped}
    assert all("decoded" in s["reason"] for s in panel.skipped if s["id"] in bad_ids)
    failures = col.images.failures_df()
    assert bad_ids <= set(failures[failures["stage"] == "compare"]["image_id"])
    assert not bad_ids & {i for p in panel.pair_queue.pairs for i in p.ids}
    assert len(panel.pairs) == 2


def test_prefetch_worker_survives_failures_and_takes_in_order():
    calls: list[int] = []

    def make(i: int) -> bytes | None:
        calls.append(i)
        if i == 2:
            raise OSError("disk hiccup")
        return None if i == 3 else b"jpeg%d" % i

    pf = ThumbPrefetch(make)
    pf.ask([1, 2, 3, 4])
    assert pf.wait(10)
    assert calls == [1, 2, 3, 4]  # front first
    assert pf.take(1) == (True, b"jpeg1")
    assert pf.take(2) == (False, None)  # raised: the caller makes it itself and sees the error
    assert pf.take(3) == (True, None)  # cannot be shown: the caller reports the skip
    assert pf.failed() == {3}
    pf.forget(3)
    assert pf.failed() == set()
    pf.ask([5, 1])  # 1 is kept, not made again
    assert pf.wait(10)
    assert calls == [1, 2, 3, 4, 5]
    pf.stop()
    pf.ask([6])
    time.sleep(0.1)
    assert 6 not in calls


def test_take_of_an_id_not_made_yet_leaves_it_to_the_caller():
    gate = threading.Event()

    def make(i: int) -> bytes:
        gate.wait(5)
        return b"x"

    pf = ThumbPrefetch(make)
    pf.ask([1, 2])
    assert _until(lambda: pf._busy == 1, 5)
    assert pf.take(2, timeout=0) == (False, None)  # queued, not started: the caller makes it, the worker will not
    gate.set()
    assert pf.take(1) == (True, b"x")  # in flight: waits for it
    assert pf.wait(5)
    assert not pf.ready(2)
    pf.stop()


def test_thumbnail_writes_do_not_reload_the_pool_but_a_corrupt_image_does(make_collection):
    col = make_collection(6)
    pool = col.pool()
    ids = pool.ids.tolist()
    assert col.thumbnail_bytes(ids[0]) is not None  # writes the thumbnail's fingerprint and size
    assert col.pool() is pool  # a derived-only write: the cached pool of ratings is still current
    path = col.image(ids[1])["filepath"]
    Path(path).write_bytes(b"broken")
    assert col.thumbnail_bytes(ids[1]) is None  # marks it corrupt: the pool must change
    fresh = col.pool()
    assert fresh is not pool
    assert ids[1] not in fresh.ids.tolist()


def test_a_derived_block_joined_with_a_real_write_counts(make_collection):
    col = make_collection(2)
    db = col.db
    before = db.writes
    with db.atomic(derived=True):
        db.conn.execute("UPDATE images SET width=1 WHERE id=?", (1,))
    assert db.writes == before
    with db.atomic(derived=True), db.atomic():
        db.conn.execute("UPDATE images SET mu=mu WHERE id=?", (1,))
    assert db.writes == before + 1
    with pytest.raises(RuntimeError), db.atomic(derived=True):
        raise RuntimeError("rolled back")
    assert db.writes == before + 1
