"""The burst panel's Python side, driven headless: message dicts in, replies and vote-log rows out."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import imagerank
from imagerank.cull import cull
from imagerank.cull.shoot import render_burst_shoot
from imagerank.errors import InvalidArgumentError
from imagerank.widgets import BurstPanel


@pytest.fixture
def shoot(tmp_path):
    folder = tmp_path / "shoot"
    render_burst_shoot(folder, 4, seed=3, frames=(3, 4))
    col = imagerank.init(tmp_path / "ws", folder)
    col.scan(progress=False)
    ir = cull(folder, None, workers=1, use_exiftool=False)
    yield col, folder, ir
    col.close()


def _kept(col):
    df = col.matches_df()
    out = []
    for _, g in df.groupby("match_id", sort=True):
        g = g.sort_values("position")
        out.append((g["source"].iloc[0], g["image_id"].tolist(), g["rank"].tolist(), g["position"].tolist()))
    return out


def test_ready_sends_each_frame_and_a_100_percent_crop_of_its_sharpest_region(shoot):
    col, folder, ir = shoot
    panel = BurstPanel(col, ir, folder, view_size=320, zoom_px=96)
    assert len(panel.groups) == 4
    g = panel.groups[0]
    assert 3 <= len(g["items"]) <= 4
    assert sum(it["pick"] for it in g["items"]) == 1  # the cull's pick is shown
    replies = panel.handle_message({"type": "ready"})
    (msg, bufs), = [r for r in replies if r[0]["type"] == "images"]
    n_frames = sum(len(x["items"]) for x in panel.groups[:3])  # the current group and two ahead
    assert len(msg["ids"]) == 2 * n_frames == len(bufs)
    first = g["items"][0]
    k_view = msg["ids"].index(first["id"])
    view = Image.open(io.BytesIO(bufs[k_view]))
    zoom = Image.open(io.BytesIO(bufs[k_view + 1]))
    assert msg["kinds"][k_view: k_view + 2] == ["view", "zoom"]
    assert max(view.size) == 320
    assert zoom.size == (96, 96)
    # 100 %: the crop's pixels are the original's pixels around the sharpest region's centre
    orig = np.asarray(Image.open(folder / first["name"]).convert("RGB"), dtype=float)
    x, y, w, h = first["sharp"]
    cx, cy = (x + w / 2) * orig.shape[1], (y + h / 2) * orig.shape[0]
    left = int(min(max(cx - 48, 0), orig.shape[1] - 96))
    top = int(min(max(cy - 48, 0), orig.shape[0] - 96))
    diff = np.abs(np.asarray(zoom.convert("RGB"), dtype=float) - orig[top:top + 96, left:left + 96]).mean()
    assert diff < 6.0  # JPEG re-encoding only


def test_keys_record_n_way_matches_and_undo_takes_them_back(shoot):
    col, folder, ir = shoot
    panel = BurstPanel(col, ir, folder)
    panel.handle_message({"type": "ready"})
    g0, g1 = panel.groups[0], panel.groups[1]
    ids0 = [it["id"] for it in g0["items"]]
    panel.handle_message({"type": "pick", "gid": g0["gid"], "keepers": [ids0[-1]], "ms": 1200})
    assert panel.status["level"] == "info"
    assert panel.position == 1
    ids1 = [it["id"] for it in g1["items"]]
    panel.handle_message({"type": "pick", "gid": g1["gid"], "keepers": ids1[:2], "ms": 800})
    kept = _kept(col)
    assert kept[0] == ("burst", ids0, [1] * (len(ids0) - 1) + [0], list(range(len(ids0))))
    assert kept[1][2] == [0, 0] + [1] * (len(ids1) - 2)  # two keepers tie at rank 0
    assert col.matches_df()["decision_ms"].dropna().tolist()[:1] == [1200]
    assert list(panel.picks["cluster_id"]) == [g0["cluster_id"], g1["cluster_id"]]
    assert panel.can_undo == 2
    # a second pick of a recorded group (another view) is refused with a warning, nothing recorded
    panel.handle_message({"type": "pick", "gid": g0["gid"], "keepers": [ids0[0]]})
    assert panel.status["level"] == "warning"
    assert len(_kept(col)) == 2
    replies = panel.handle_message({"type": "undo"})
    assert ({"type": "undone", "gid": g1["gid"]}, []) in replies
    assert panel.position == 1
    assert g1["gid"] not in panel.done
    assert len(_kept(col)) == 1
    assert col.doctor().ok  # undo through the vote log: replay agrees with the stored ratings
    panel.handle_message({"type": "undo"})
    replies = panel.handle_message({"type": "undo"})
    assert ({"type": "undone", "gid": None}, []) in replies
    assert _kept(col) == []


def test_navigation_and_skip(shoot):
    col, folder, ir = shoot
    panel = BurstPanel(col, ir, folder)
    panel.handle_message({"type": "skip", "gid": panel.groups[0]["gid"]})
    assert panel.position == 1
    panel.handle_message({"type": "goto", "position": 3})
    assert panel.position == 3
    assert _kept(col) == []


@pytest.mark.parametrize(("msg", "expected"), [
    ({"type": "nonsense"}, "message type"),
    ("not a dict", "message type"),
    ({"type": "pick", "gid": "nope", "keepers": [1]}, "gid"),
    ({"type": "pick", "gid": None, "keepers": [1]}, "gid"),
    ({"type": "goto", "position": 99}, "position"),
    ({"type": "goto", "position": "x"}, "position"),
    ({"type": "broken", "id": None}, "id"),
])
def test_bad_messages_become_an_error_status(shoot, msg, expected):
    col, folder, ir = shoot
    panel = BurstPanel(col, ir, folder)
    panel.handle_message(msg)  # type: ignore[arg-type]
    assert panel.status["level"] == "error"
    assert expected in panel.status["text"]
    assert _kept(col) == []


def test_keepers_must_be_frames_of_the_group(shoot):
    col, folder, ir = shoot
    panel = BurstPanel(col, ir, folder)
    g = panel.groups[0]
    for keepers in ([], "1", [10_000], [True]):
        panel.handle_message({"type": "pick", "gid": g["gid"], "keepers": keepers})
        assert panel.status["level"] == "error", keepers
        assert "keepers" in panel.status["text"]
    assert _kept(col) == []


def test_bad_arguments_and_a_vanished_file(shoot):
    col, folder, ir = shoot
    with pytest.raises(InvalidArgumentError, match="view_size"):
        BurstPanel(col, ir, folder, view_size=10)
    with pytest.raises(InvalidArgumentError, match="zoom_px"):
        BurstPanel(col, ir, folder, zoom_px=5000)
    with pytest.raises(InvalidArgumentError, match="IR"):
        BurstPanel(col, ir[["path"]], folder)
    gone = folder / panel_first_name(col, ir, folder)
    gone.unlink()
    panel = BurstPanel(col, ir, folder)
    panel.handle_message({"type": "ready"})
    assert panel.status["level"] == "warning"
    assert gone.name in panel.status["text"]


def panel_first_name(col, ir, folder) -> str:
    return BurstPanel(col, ir, folder).groups[0]["items"][0]["name"]


def test_no_bursts_says_so(tmp_path):
    folder = tmp_path / "single"
    render_burst_shoot(folder, 1, seed=4, frames=(2, 2))
    col = imagerank.init(tmp_path / "ws", folder)
    col.scan(progress=False)
    ir = cull(folder, None, workers=1, use_exiftool=False, dedupe_hamming=0)
    ir = ir.assign(cluster_size=1)
    panel = BurstPanel(col, ir, folder)
    panel.handle_message({"type": "ready"})
    assert panel.groups == []
    assert "no bursts" in panel.status["text"]
    col.close()


def test_bucket_grid_draws_a_bucket_with_its_reasons(shoot):
    from imagerank.plots import bucket_grid
    from imagerank.plots.cull import reason_label

    col, folder, ir = shoot
    fig = bucket_grid(col, ir, folder, "trash", max_images=3)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 3
    assert all("near_duplicate of BURST_" in t for t in titles)
    assert f"of {(ir['bucket'] == 'trash').sum()} files" in fig._suptitle.get_text()
    with pytest.raises(InvalidArgumentError, match="bucket"):
        bucket_grid(col, ir, folder, "keepers")
    with pytest.raises(InvalidArgumentError, match="max_images"):
        bucket_grid(col, ir, folder, "best", max_images=0)
    assert reason_label([{"code": "kept"}, {"code": "blurry"}]) == "blurry"
    assert reason_label(None) == ""


def test_frames_outside_the_workspace_are_not_recorded_without_add(shoot, tmp_path):
    col, _, _ = shoot
    other = tmp_path / "other"
    render_burst_shoot(other, 1, seed=6, frames=(2, 2))
    ir = cull(other, None, workers=1, use_exiftool=False)
    panel = BurstPanel(col, ir, other, add=False)
    (g,) = panel.groups
    assert [it["id"] for it in g["items"]] == [None, None]
    replies = panel.handle_message({"type": "ready"})
    assert [r for r in replies if r[0]["type"] == "images"] == []
    panel.handle_message({"type": "pick", "gid": g["gid"], "keepers": [1]})
    assert panel.status["level"] == "error"
    assert "not in the workspace's catalog" in panel.status["text"]
    assert _kept(col) == []
    added = BurstPanel(col, ir, other)  # add=True: the files join the catalog and can be recorded
    ids = [it["id"] for it in added.groups[0]["items"]]
    added.handle_message({"type": "pick", "gid": g["gid"], "keepers": [ids[0]]})
    assert _kept(col)[0][1:3] == (ids, [0, 1])
