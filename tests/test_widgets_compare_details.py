"""The compare panel's details, headless: the status line follows the last action, F twice on one pair labels it
once, and the larger thumbnails for high-density displays (made in the background, never by a vote)."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from imgsupport import write_image
from PIL import Image

from imagerank.errors import InvalidArgumentError
from imagerank.media.thumbs import LARGE_THUMB_SIZE
from imagerank.widgets import ComparePanel


def vote(panel: ComparePanel, outcome: str = "left") -> dict:
    p = panel.pairs[0]
    panel.handle_message({"type": "vote", "pid": p["pid"], "left": p["left"]["id"], "right": p["right"]["id"],
                          "outcome": outcome, "ms": 700.0})
    return p


def test_a_vote_clears_the_last_actions_message(make_collection):
    col = make_collection(10)
    panel = ComparePanel(col, queue_depth=3)
    panel.handle_message({"type": "rescan"})
    assert "new image" in panel.status["text"]
    vote(panel)
    assert panel.status["text"] == ""  # the rescan summary was about the rescan
    first = vote(panel)
    panel.handle_message({"type": "undo"})
    assert panel.status["text"].endswith("is back")
    assert panel.pairs[0]["pid"] == first["pid"]
    vote(panel)
    assert panel.status["text"] == ""  # the pair that was back is judged again
    # a vote that has something to say still says it
    p = panel.pairs[0]
    panel.handle_message({"type": "vote", "pid": p["pid"], "outcome": "sideways"})
    assert panel.status["level"] == "error"
    assert "sideways" in panel.status["text"]


def test_f_twice_on_one_pair_labels_it_once(make_collection):
    col = make_collection(6)
    panel = ComparePanel(col, queue_depth=2)
    p = panel.pairs[0]
    panel.handle_message({"type": "flag", "pid": p["pid"]})
    panel.handle_message({"type": "flag", "pid": p["pid"]})
    rows = col.db.query("SELECT image_id FROM labels WHERE label = 'flag'")
    assert sorted(r[0] for r in rows) == sorted([p["left"]["id"], p["right"]["id"]])
    assert panel.status["text"].startswith("already flagged")
    panel.handle_message({"type": "flag", "pid": 10_000})  # an unknown pair: an error status, no label
    assert panel.status["level"] == "error"
    assert len(col.db.query("SELECT * FROM labels")) == 2


def test_large_thumbnails_on_a_high_density_display(make_collection, tmp_path):
    col = make_collection(6)
    for i in range(1, 7):  # originals larger than the cached 512 px: 1600 x 1200 (4:3)
        write_image(col.image(i)["filepath"], 1600, 1200, seed=i, quality=85)
    col.scan(progress=False)
    panel = ComparePanel(col, queue_depth=2)
    sent: list[tuple[dict, list[bytes], str]] = []
    panel.send = lambda content, buffers=None: sent.append((content, list(buffers or []),
                                                            threading.current_thread().name))
    small = panel.handle_message({"type": "ready"})
    assert [c["px"] for c, _ in small if c["type"] == "images"] == [512]
    assert not panel.large_thumbnails
    panel.thumb_px = 620  # 1.2x the cached size: the 512-px thumbnails are sharp enough
    assert panel.wait_thumbnails(5)
    assert not [c for c, _, _ in sent if c.get("px") == LARGE_THUMB_SIZE]

    panel.thumb_px = 940  # a 470-px slot on a 2x display
    assert panel.large_thumbnails
    assert panel.wait_thumbnails(30)
    large = [(c, b, who) for c, b, who in sent if c.get("px") == LARGE_THUMB_SIZE]
    queued = {i for p in panel.pairs for i in (p["left"]["id"], p["right"]["id"])}
    assert {c["ids"][0] for c, _, _ in large} == queued
    for _c, (data,), who in large:
        assert who != threading.main_thread().name  # made in the background: a vote never waits for it
        assert Image.open(io.BytesIO(data)).size == (1024, 768)
    # the next pairs entering the queue come large too, and each image only once
    sent.clear()
    vote(panel)
    assert panel.wait_thumbnails(30)
    again = [c["ids"][0] for c, _, _ in sent if c.get("px") == LARGE_THUMB_SIZE]
    assert len(again) == len(set(again))
    assert not set(again) & {c["ids"][0] for c, _, _ in large}
    assert set(again) <= {i for p in panel.pairs for i in (p["left"]["id"], p["right"]["id"])}
    panel.close()


def test_the_larger_size_is_cached_never_enlarged_and_refuses_bad_sizes(make_collection):
    col = make_collection(3)
    write_image(col.image(1)["filepath"], 700, 300, seed=1, quality=85)
    col.scan(progress=False)
    data = col.thumbs.read_bytes(1, size=LARGE_THUMB_SIZE)
    assert data is not None
    assert Image.open(io.BytesIO(data)).size == (700, 300)
    files = list(Path(col.root, "thumbs", str(LARGE_THUMB_SIZE)).rglob("*.jpg"))
    assert len(files) == 1
    assert col.thumbs.read_bytes(1, size=LARGE_THUMB_SIZE) == data  # read from the cache
    assert col.image(1)["thumb_fingerprint"] is not None  # the configured size is still what the catalog tracks
    with pytest.raises(InvalidArgumentError, match="size"):
        col.thumbs.read_bytes(1, size=8)
    Path(col.image(2)["filepath"]).write_bytes(b"not an image")
    col.scan(progress=False)
    assert col.thumbs.read_bytes(2, size=LARGE_THUMB_SIZE) is None  # undecodable: None, no exception
