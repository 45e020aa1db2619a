"""The compare panel's Python side, driven headless: message dicts in, replies and catalog rows out."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from imgsupport import write_image
from PIL import Image

from imagerank.errors import StrategyNotFoundError
from imagerank.widgets import ComparePanel

JPEG_SOI = b"\xff\xd8"


def vote(panel: ComparePanel, outcome: str, pair: dict | None = None, ms: float = 850.0) -> dict:
    """Vote on ``pair`` (default: the front one) as the browser would; returns the pair voted."""
    p = pair or panel.pairs[0]
    panel.handle_message(
        {"type": "vote", "pid": p["pid"], "left": p["left"]["id"], "right": p["right"]["id"], "outcome": outcome,
         "ms": ms}
    )
    assert panel.status.get("level") != "error", panel.status
    return p


def kept_matches(col) -> list[tuple[str, list[int], list[int], list[int]]]:
    """(kind, image ids by position, ranks, positions) of kept matches, in order."""
    df = col.matches_df()
    out = []
    for _, g in df.groupby("match_id", sort=True):
        g = g.sort_values("position")
        out.append((g["kind"].iloc[0], g["image_id"].tolist(), g["rank"].tolist(), g["position"].tolist()))
    return out


def test_no_images_before_ready_then_thumbnails_as_binary_buffers(make_collection):
    col = make_collection(10)
    panel = ComparePanel(col, strategy="spec", queue_depth=4)
    assert len(panel.pairs) == 4
    # Before the browser says "ready", a vote reply carries no image message.
    sent = vote_replies = panel.handle_message({"type": "flag", "pid": panel.pairs[0]["pid"]})
    assert all(c["type"] != "images" for c, _ in sent), vote_replies
    replies = panel.handle_message({"type": "ready"})
    images = [(c, b) for c, b in replies if c["type"] == "images"]
    assert len(images) == 1
    content, buffers = images[0]
    queued = {i for p in panel.pairs for i in (p["left"]["id"], p["right"]["id"])}
    assert queued <= set(content["ids"])
    assert len(buffers) == len(content["ids"])
    for b in buffers:
        assert isinstance(b, bytes)
        assert b.startswith(JPEG_SOI)
        Image.open(io.BytesIO(b)).verify()
    # The JSON part is small: no image data hides in it (never base64).
    assert len(json.dumps(content)) < 40 * len(content["ids"]) + 100


def test_votes_are_stored_exactly(make_collection):
    col = make_collection(12)
    panel = ComparePanel(col, strategy="spec", queue_depth=6)
    panel.handle_message({"type": "ready"})
    expected = []
    for outcome in ["left", "right", "draw", "skip", "left"]:
        p = vote(panel, outcome, ms=1234.5)
        ids = [p["left"]["id"], p["right"]["id"]]
        kind = {"left": "win", "right": "win", "draw": "draw", "skip": "skip"}[outcome]
        ranks = {"left": [0, 1], "right": [1, 0], "draw": [0, 0], "skip": [0, 0]}[outcome]
        expected.append((kind, ids, ranks, [0, 1]))
    assert kept_matches(col) == expected
    assert col.matches_df()["decision_ms"].eq(1234.5).all()
    assert panel.votes == 4
    assert panel.header["votes"] == 4
    assert panel.header["skips"] == 1
    assert panel.header["comparisons"] == 4
    assert len(panel.pairs) == 6  # refilled after every vote
    assert col.doctor().ok


def test_undo_after_the_browser_advanced_brings_the_pair_back(make_collection):
    col = make_collection(12)
    panel = ComparePanel(col, strategy="spec", queue_depth=5)
    panel.handle_message({"type": "ready"})
    first, second = panel.pairs[0], panel.pairs[1]
    # The browser advanced twice before Python heard of either vote, then the user pressed U.
    vote(panel, "left", first)
    vote(panel, "right", second)
    replies = panel.handle_message({"type": "undo"})
    assert {"type": "undone", "pid": second["pid"]} in [c for c, _ in replies]
    images = [c for c, _ in replies if c["type"] == "images"]
    assert images
    assert set(images[0]["ids"]) == {second["left"]["id"], second["right"]["id"]}
    assert panel.pairs[0]["pid"] == second["pid"]
    back = panel.pairs[0]
    assert (back["left"]["id"], back["right"]["id"]) == (second["left"]["id"], second["right"]["id"])
    assert len(panel.pairs) == 5
    assert kept_matches(col) == [("win", [first["left"]["id"], first["right"]["id"]], [0, 1], [0, 1])]
    # Judge it again, differently.
    vote(panel, "draw")
    assert [m[0] for m in kept_matches(col)] == ["win", "draw"]
    # Undo everything, then one more: nothing left, said so.
    panel.handle_message({"type": "undo"})
    panel.handle_message({"type": "undo"})
    replies = panel.handle_message({"type": "undo"})
    assert ({"type": "undone", "pid": None}, []) in replies
    assert "nothing to undo" in panel.status["text"]
    assert kept_matches(col) == []
    assert panel.pairs[0]["pid"] == first["pid"]
    assert panel.can_undo == 0
    assert col.doctor().ok


def test_stale_and_duplicate_votes_are_ignored_and_reported(make_collection):
    col = make_collection(8)
    panel = ComparePanel(col, strategy="spec", queue_depth=3)
    p = vote(panel, "left")
    # A second view voting on the same pair (it had not seen the update yet) is not counted twice.
    panel.handle_message({"type": "vote", "pid": p["pid"], "left": p["left"]["id"], "right": p["right"]["id"],
                          "outcome": "right"})
    assert panel.status["level"] == "warning"
    assert "already judged" in panel.status["text"]
    panel.handle_message({"type": "vote", "pid": 99999, "outcome": "left"})
    assert panel.status["level"] == "warning"
    assert len(kept_matches(col)) == 1
    # Malformed messages become an error status, never an exception.
    for bad in [{"type": "vote", "pid": panel.pairs[0]["pid"], "outcome": "sideways"}, {"type": "vote"},
                {"type": "nonsense"}, {"no": "type"},
                {"type": "vote", "pid": panel.pairs[0]["pid"], "left": -1, "right": -2, "outcome": "left"}]:
        panel.handle_message(bad)
        assert panel.status["level"] == "error", bad
    assert len(kept_matches(col)) == 1


def test_rescan_puts_new_images_into_the_upcoming_pairs(make_collection, tmp_path):
    col = make_collection(10)
    panel = ComparePanel(col, strategy="spec", queue_depth=6)
    panel.handle_message({"type": "ready"})
    front = panel.pairs[0]
    folder = Path(col.settings.roots[0])
    for i in range(3):
        write_image(folder / f"new_{i}.jpg", 20, 14, seed=100 + i)
    replies = panel.handle_message({"type": "rescan"})
    new_ids = {r[0] for r in col.db.query("SELECT id FROM images WHERE filename LIKE 'new_%'")}
    assert len(new_ids) == 3
    assert panel.pairs[0]["pid"] == front["pid"]  # the pair on screen stays
    upcoming = [{p["left"]["id"], p["right"]["id"]} for p in panel.pairs[1:]]
    assert all(any(n in s for s in upcoming[:3]) for n in new_ids)
    sent = {i for c, _ in replies if c["type"] == "images" for i in c["ids"]}
    assert new_ids <= sent
    assert "3 new image(s)" in panel.status["text"]
    assert panel.header["images"] == 13


def test_missing_and_corrupt_files_are_skipped_and_reported(make_collection):
    col = make_collection(10)
    rows = col.db.query("SELECT id, filepath FROM images ORDER BY id")
    gone_id, gone_path = rows[0]
    bad_id, bad_path = rows[1]
    Path(gone_path).unlink()
    Path(bad_path).write_bytes(b"not a jpeg at all" * 10)
    panel = ComparePanel(col, strategy="random", queue_depth=16)
    panel.handle_message({"type": "ready"})
    for _ in range(12):  # keep voting: the queue never stalls and never shows the two
        vote(panel, "left")
        queued = {i for p in panel.pairs for i in (p["left"]["id"], p["right"]["id"])}
        assert gone_id not in queued
        assert bad_id not in queued
        assert len(panel.pairs) == 16
    assert col.image(gone_id)["status"] == "missing"
    assert col.image(bad_id)["status"] == "corrupt"
    assert {s["id"] for s in panel.skipped} == {gone_id, bad_id}
    reasons = {s["id"]: s["reason"] for s in panel.skipped}
    assert "not found" in reasons[gone_id]
    assert "decoded" in reasons[bad_id]
    failures = col.images.failures_df()
    assert {gone_id, bad_id} <= set(failures[failures["stage"] == "compare"]["image_id"])
    assert panel.header["missing"] == 1
    assert panel.header["corrupt"] == 1


def test_a_thumbnail_the_browser_cannot_decode_is_rebuilt_or_skipped(make_collection):
    col = make_collection(8, thumbnails=True)
    panel = ComparePanel(col, strategy="spec", queue_depth=3)
    panel.handle_message({"type": "ready"})
    victim = panel.pairs[0]["left"]["id"]
    # The cached thumbnail is damaged but the original is fine: rebuilt and sent again.
    col.thumbs.path(victim).write_bytes(b"garbage")
    replies = panel.handle_message({"type": "broken", "id": victim})
    imgs = [(c, b) for c, b in replies if c["type"] == "images"]
    assert imgs
    assert imgs[0][0]["ids"] == [victim]
    assert imgs[0][1][0].startswith(JPEG_SOI)
    # Now the original is damaged too: skipped, its pairs leave the queue, the queue refills.
    Path(col.image(victim)["filepath"]).write_bytes(b"garbage")
    panel.handle_message({"type": "broken", "id": victim})
    assert all(victim not in (p["left"]["id"], p["right"]["id"]) for p in panel.pairs)
    assert len(panel.pairs) == 3
    assert col.image(victim)["status"] == "corrupt"
    assert panel.skipped[-1]["id"] == victim


def test_two_views_share_the_model_state(make_collection):
    col = make_collection(10)
    panel = ComparePanel(col, strategy="spec", queue_depth=4)
    a = panel.handle_message({"type": "ready"})  # view A
    b = panel.handle_message({"type": "ready"})  # view B (another tab): gets every thumbnail too
    assert [c["ids"] for c, _ in a if c["type"] == "images"] == [c["ids"] for c, _ in b if c["type"] == "images"]
    state = panel.get_state()
    for key in ("pairs", "header", "top", "status", "skipped", "can_undo", "blind", "panel_id"):
        assert key in state  # synced traits: every view renders from these
    before = state["pairs"][0]["pid"]
    vote(panel, "right")  # from view A
    state = panel.get_state()
    assert state["pairs"][0]["pid"] != before
    assert state["header"]["votes"] == 1
    # View B, not yet updated, votes on the same pair: ignored.
    panel.handle_message({"type": "vote", "pid": before, "outcome": "left"})
    assert len(kept_matches(col)) == 1


def test_blind_mode_sends_no_scores(make_collection):
    col = make_collection(8)
    panel = ComparePanel(col, strategy="spec", blind=True, queue_depth=3)
    for p in panel.pairs:
        for side in ("left", "right"):
            assert set(p[side]) == {"id", "name"}
    assert panel.top == []
    vote(panel, "left")
    assert set(panel.pairs[0]["left"]) == {"id", "name"}
    seen = ComparePanel(col, strategy="spec", queue_depth=3)
    assert {"mu", "sigma", "n"} <= set(seen.pairs[0]["left"])
    assert len(seen.top) == 8


def test_header_stability_and_top_strip(make_collection):
    col = make_collection(20)
    panel = ComparePanel(col, strategy="spec", queue_depth=4, refresh_every=3)
    assert panel.wait_stability()  # computed off the kernel's thread: the header shows it once made
    h = panel.header
    assert h["images"] == 20
    assert h["active"] == 20
    assert h["comparisons"] == 0
    assert h["k"] == 5
    assert 0.0 <= h["stability"] <= 1.0
    assert [t["rank"] for t in panel.top] == list(range(1, 11))
    vote(panel, "left")
    vote(panel, "left")
    vote(panel, "left")  # third vote: refresh
    assert panel.top[0]["ordinal"] == max(t["ordinal"] for t in panel.top)
    board = col.leaderboard(10)
    assert [t["id"] for t in panel.top] == board["image_id"].tolist()
    assert panel.top[0]["ordinal"] > 0  # a winner leads the unrated images
    # mu/sigma/n under each image follow the ratings after the vote
    img = col.image(panel.pairs[0]["left"]["id"])
    assert panel.pairs[0]["left"]["mu"] == pytest.approx(img["mu"], abs=1e-3)
    assert panel.pairs[0]["left"]["n"] == img["comparison_count"]


def test_zoom_sends_the_original_upright_and_downscaled(make_collection):
    col = make_collection(4)
    path = Path(col.image(1)["filepath"])
    im = Image.new("RGB", (400, 200), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display: shown 200 wide, 400 high
    im.save(path, exif=exif.tobytes())
    panel = ComparePanel(col, strategy="spec", queue_depth=2)
    (content, buffers), = panel.handle_message({"type": "zoom", "id": 1, "width": 300, "height": 100})
    assert content["type"] == "zoom"
    assert content["original"] == [200, 400]
    shown = Image.open(io.BytesIO(buffers[0]))
    assert shown.format == "JPEG"
    assert shown.height <= 100
    assert shown.width < shown.height
    Path(col.image(2)["filepath"]).unlink()
    (content, _), = panel.handle_message({"type": "zoom", "id": 2, "width": 300, "height": 300})
    assert content["type"] == "zoom_error"
    assert "FileNotFoundError" in content["reason"]
    assert col.image(2)["status"] == "missing"


def test_flag_labels_both_images(make_collection):
    col = make_collection(6)
    panel = ComparePanel(col, strategy="spec", queue_depth=2)
    p = panel.pairs[0]
    panel.handle_message({"type": "flag", "pid": p["pid"]})
    labels = col.db.query("SELECT image_id, label FROM labels ORDER BY image_id")
    assert sorted((r[0], r[1]) for r in labels) == sorted([(p["left"]["id"], "flag"), (p["right"]["id"], "flag")])
    panel.handle_message({"type": "flag", "ids": [p["left"]["id"]]})
    assert len(col.db.query("SELECT * FROM labels")) == 3


def test_strategy_checked_up_front_and_default_from_settings(make_collection):
    col = make_collection(6)
    with pytest.raises(StrategyNotFoundError, match="no-such"):
        ComparePanel(col, strategy="no-such")
    with pytest.raises(ValueError, match="queue_depth"):
        ComparePanel(col, queue_depth=0)
    panel = ComparePanel(col)
    assert panel.strategy == col.settings.strategy == "spec"
    active = make_collection(6, name="ws2", strategy="active")
    assert ComparePanel(active, queue_depth=3).strategy == "active"


def test_widget_files_are_packaged_beside_the_module():
    here = Path(ComparePanel.__module__.replace(".", "/")).name
    assert here == "compare"
    esm, css = str(ComparePanel._esm), str(ComparePanel._css)
    assert "export default" in esm
    assert "data-lm-suppress-shortcuts" in esm
    assert "msg:custom" in esm
    assert ".imagerank-compare" in css


def test_a_vote_for_an_image_deleted_after_queueing_is_an_error_status(make_collection):
    col = make_collection(8)
    panel = ComparePanel(col, strategy="spec", queue_depth=3)
    p = panel.pairs[0]
    col.db.execute("DELETE FROM images WHERE id=?", (p["left"]["id"],))
    panel.handle_message({"type": "vote", "pid": p["pid"], "left": p["left"]["id"], "right": p["right"]["id"],
                          "outcome": "left"})
    assert panel.status["level"] == "error"
    assert "NotFoundError" in panel.status["text"]
    assert all(p["left"]["id"] not in (q["left"]["id"], q["right"]["id"]) for q in panel.pairs)
    assert len(panel.pairs) == 3
    assert kept_matches(col) == []
    q = panel.pairs[0]  # the panel goes on
    panel.handle_message({"type": "vote", "pid": q["pid"], "left": q["left"]["id"], "right": q["right"]["id"],
                          "outcome": "right"})
    assert len(kept_matches(col)) == 1


# ---------------------------------------------------------------------------------------------- faults (issue 16)
def _big_jpeg(path: Path, w: int, h: int) -> Path:
    """A flat grey JPEG of ``w`` x ``h`` pixels: cheap to write and, with libjpeg's draft scaling, to decode."""
    Image.new("L", (w, h), 128).save(path, "JPEG", quality=30)
    return path


def test_every_zoom_gets_a_reply_and_the_pixel_limit_is_the_configured_one(make_collection):
    col = make_collection(4, max_image_pixels=50_000_000)
    panel = ComparePanel(col, strategy="spec", queue_depth=2)
    # 95 megapixels: over the configured 50 MP, refused with that limit named, and the browser told so
    _big_jpeg(Path(col.image(1)["filepath"]), 10_000, 9_500)
    (content, bufs), = panel.handle_message({"type": "zoom", "id": 1, "width": 300, "height": 300})
    assert content == {"type": "zoom_error", "id": 1, "reason": content["reason"]}
    assert "DecompressionBombError" in content["reason"]
    assert "exceeds the limit of 50000000" in content["reason"]
    assert bufs == []
    assert panel.status["level"] == "warning"
    assert col.image(1)["status"] == "active"  # a refused zoom changes no status
    # a message the panel cannot even parse still gets its zoom_error
    (content, _), = panel.handle_message({"type": "zoom", "id": "abc"})
    assert (content["type"], content["id"]) == ("zoom_error", "abc")


def test_zoom_of_a_95_megapixel_photo_under_the_default_limit(make_collection):
    col = make_collection(4)
    _big_jpeg(Path(col.image(2)["filepath"]), 10_000, 9_500)
    panel = ComparePanel(col, strategy="spec", queue_depth=2)
    (content, bufs), = panel.handle_message({"type": "zoom", "id": 2, "width": 300, "height": 300})
    assert content["type"] == "zoom", content
    assert content["original"] == [10_000, 9_500]
    assert max(Image.open(io.BytesIO(bufs[0])).size) <= 300


def test_broken_for_an_unknown_id_is_a_warning(make_collection):
    col = make_collection(4)
    panel = ComparePanel(col, strategy="spec", queue_depth=2)
    panel.handle_message({"type": "ready"})
    before = len(col.images.failures_df())
    assert panel.handle_message({"type": "broken", "id": 9999}) == []
    assert panel.status["level"] == "warning"
    assert "9999" in panel.status["text"]
    assert "internal error" not in panel.status["text"]
    assert len(col.images.failures_df()) == before
    assert len(panel.pairs) == 2


def test_broken_thumbnail_of_a_deleted_file_marks_it_missing_not_corrupt(make_collection):
    col = make_collection(6, thumbnails=True)
    panel = ComparePanel(col, strategy="spec", queue_depth=2)
    panel.handle_message({"type": "ready"})
    victim = panel.pairs[0]["left"]["id"]
    Path(col.image(victim)["filepath"]).unlink()
    panel.handle_message({"type": "broken", "id": victim})
    assert col.image(victim)["status"] == "missing"
    assert all(victim not in (p["left"]["id"], p["right"]["id"]) for p in panel.pairs)
    assert panel.skipped[-1]["id"] == victim


def test_zoom_of_a_non_utf8_name_keeps_it_corrupt(make_collection):
    col = make_collection(4)
    folder = os.fsencode(os.path.dirname(col.image(1)["filepath"]))
    bad = folder + b"/caf\xe9.jpg"  # Latin-1 'é': not valid UTF-8
    try:
        fd = os.open(bad, os.O_WRONLY | os.O_CREAT, 0o644)
    except OSError as e:  # pragma: no cover - a file system that refuses such names
        pytest.skip(f"cannot create a non-UTF-8 file name here: {e}")
    os.write(fd, Path(col.image(1)["filepath"]).read_bytes())
    os.close(fd)
    col.scan(progress=False, thumbnails=False)
    (row,) = col.images_df("corrupt").to_dict("records")
    assert "UTF-8" in row["status_reason"]
    panel = ComparePanel(col, strategy="spec", queue_depth=2)
    (content, _), = panel.handle_message({"type": "zoom", "id": row["id"], "width": 300, "height": 300})
    assert content["type"] == "zoom_error"
    assert "UTF-8" in content["reason"]
    assert col.image(row["id"])["status"] == "corrupt"
    assert "UTF-8" in col.image(row["id"])["status_reason"]
    panel.handle_message({"type": "broken", "id": row["id"]})
    col.scan(progress=False, thumbnails=False)
    assert col.image(row["id"])["status"] == "corrupt"
