"""CropPanel and ReviewPanel, driven headless: box scaling and aspect presets, one box, saving to ``crops``;
suggestions approved / edited / rejected by key, each logged, approved and edited ones becoming matches and crops."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import imagerank
from imagerank.errors import CropError
from imagerank.training.crops import CropModel, build_crop_net
from imagerank.training.features import CHEAP_FEATURES, feature_matrix
from imagerank.training.ranker import NetConfig, Ranker, build_ranker_net
from imagerank.training.simulate import write_preference_images
from imagerank.training.suggest import decide, suggest_winners, suggestions_df
from imagerank.widgets import CropPanel, ReviewPanel
from imagerank.widgets.crop import ASPECTS, fit_aspect


@pytest.fixture
def col(tmp_path: Path) -> Iterator[imagerank.Collection]:
    """8 generated 64 x 48 images, scanned (thumbnails are the images' own size)."""
    write_preference_images(tmp_path / "images", 8, size=(64, 48), seed=3)
    c = imagerank.init(tmp_path / "ws", tmp_path / "images", strategy="random")
    c.scan(progress=False)
    yield c
    c.close()


def _ids(col: imagerank.Collection) -> list[int]:
    return [int(i) for i in col.images_df()["id"]]


def _ranker(col: imagerank.Collection) -> Ranker:
    """A linear ranker that prefers saturation (no training needed for the panel tests)."""
    cfg = NetConfig(len(CHEAP_FEATURES), kind="linear")
    net = build_ranker_net(cfg)
    net[0].fit(feature_matrix(col, "cheap").X)
    with torch.no_grad():
        net[1].weight.zero_()
        net[1].weight[0, CHEAP_FEATURES.index("sat_mean")] = 2.0
        net[1].bias.zero_()
    return Ranker(net.eval(), cfg, "cheap-v1", {"metrics": {"val_accuracy": 0.8}}, name="sat-ranker")


def _proposer() -> CropModel:
    torch.manual_seed(0)
    cfg = {"backbone": "conv", "width": 8, "image_size": 32, "head_hidden": 16}
    return CropModel(build_crop_net(cfg).eval(), cfg, {"kind": "crop"}, name="crops-test")


def test_fit_aspect_keeps_centre_area_and_bounds() -> None:
    x, y, w, h = fit_aspect((10, 10, 40, 10), 1.0, 64, 48)
    assert w == pytest.approx(h)
    assert w * h == pytest.approx(400)
    assert (x + w / 2, y + h / 2) == pytest.approx((30, 15))
    x, y, w, h = fit_aspect((0, 0, 64, 48), 16 / 9, 64, 48)  # too big for the frame: shrunk to fit
    assert w / h == pytest.approx(16 / 9)
    assert w <= 64 + 1e-9
    assert h <= 48 + 1e-9
    assert x >= 0
    assert y >= 0
    x, y, w, h = fit_aspect((60, 40, 20, 20), 4 / 5, 64, 48)  # near the corner: shifted inside
    assert x + w <= 64 + 1e-9
    assert y + h <= 48 + 1e-9
    assert w / h == pytest.approx(0.8)
    assert fit_aspect((-5, -5, 20, 20), None, 64, 48) == (0, 0, 15, 15)
    with pytest.raises(CropError, match="zero area"):
        fit_aspect((5, 5, 0, 10), 1.0, 64, 48)
    with pytest.raises(CropError, match="outside"):
        fit_aspect((70, 10, 5, 5), None, 64, 48)


def test_crop_panel_scales_snaps_and_saves(col: imagerank.Collection) -> None:
    ids = _ids(col)
    saved = []
    panel = CropPanel(col, ids[:3], on_save=lambda i, b, c: saved.append((i, b, c)))
    assert panel.size == (64, 48)
    assert panel.bbox.classes == list(ASPECTS)
    # the user drags a box in display pixels (the widget's natural image coordinates)
    panel.bbox.bboxes = [{"x": 16, "y": 12, "width": 32, "height": 24, "label": "free"}]
    assert panel.box() == pytest.approx((0.25, 0.25, 0.5, 0.5))
    assert panel.box_original() == (16, 12, 32, 24)
    # a second box replaces the first: one box only
    panel.bbox.bboxes = [*panel.bbox.bboxes, {"x": 0, "y": 0, "width": 32, "height": 32, "label": "free"}]
    assert len(panel.bbox.bboxes) == 1
    assert panel.box() == pytest.approx((0, 0, 0.5, 32 / 48))
    # pressing "2" in the widget selects the 1:1 class: the box snaps to a square in pixels
    panel.bbox.label = "1:1"
    assert panel.aspect == "1:1"
    assert panel.aspect_buttons.value == "1:1"
    w, h = panel.bbox.bboxes[0]["width"], panel.bbox.bboxes[0]["height"]
    assert w == pytest.approx(h, abs=0.02)
    assert panel.bbox.bboxes[0]["label"] == "1:1"
    panel.aspect_buttons.value = "16:9"
    b = panel.bbox.bboxes[0]
    assert b["width"] / b["height"] == pytest.approx(16 / 9, rel=1e-3)
    assert panel.bbox.label == "16:9"
    crop_id = panel.save()  # Enter in the widget calls this too (on_submit)
    row = col.db.query("SELECT image_id, x, y, w, h, aspect, source FROM crops WHERE id=?", (crop_id,))[0]
    assert row["image_id"] == ids[0]
    assert row["aspect"] == "16:9"
    assert row["source"] == "user"
    assert (row["w"] * 64) / (row["h"] * 48) == pytest.approx(16 / 9, rel=1e-2)
    assert saved[0][0] == ids[0]
    assert panel.image_id == ids[1]
    panel.bbox._handle_custom_msg({"type": "skip"}, [])  # Space in the widget
    assert panel.image_id == ids[2]
    with pytest.raises(CropError, match="draw a box first"):
        panel.save()
    with pytest.raises(CropError, match="outside"):
        panel.set_box(0.8, 0.1, 0.5, 0.5)
    panel.set_box(0.1, 0.1, 0.3, 0.3)
    panel.bbox._handle_custom_msg({"type": "submit"}, [])  # Enter
    assert panel.done
    assert len(panel.saved) == 2
    # reopening an image shows its latest crop
    again = CropPanel(col, ids[0])
    assert again.box() == pytest.approx(tuple(row)[1:5], abs=0.02)
    with pytest.raises(ValueError, match="aspect"):
        CropPanel(col, ids[0], aspect="2:7")


def test_review_approve_edit_reject_by_key(col: imagerank.Collection) -> None:
    ids = _ids(col)
    ranker = _ranker(col)
    groups = [ids[0:2], ids[2:4], ids[4:7], ids[6:8]]
    items = suggest_winners(col, ranker, groups=groups, proposer=_proposer())
    assert len(items) == 4
    assert all(s.winner in s.image_ids and s.crop is not None for s in items)
    sat = feature_matrix(col, "cheap").X[:, CHEAP_FEATURES.index("sat_mean")]
    fm_ids = feature_matrix(col, "cheap").image_ids.tolist()
    for s in items:  # the suggested winner is the most saturated image of its group
        assert s.winner == max(s.image_ids, key=lambda i: sat[fm_ids.index(i)])
    assert 0.5 <= items[0].confidence <= 1.0
    assert 1 / 3 <= items[2].confidence <= 1.0
    panel = ReviewPanel(col, items)
    assert len(panel.cards.children) == 2
    assert "A approve" in panel.header.value

    approved = panel.handle_key("a")
    m = col.votes.get(approved.result["match_id"])
    assert dict(zip(m.image_ids, m.ranks))[approved.winner] == 0
    assert col.matches_df()["source"].iloc[0] == "suggestion"
    crop = col.db.query("SELECT source, model, accepted FROM crops WHERE id=?", (approved.result["crop_id"],))[0]
    assert tuple(crop) == ("model", "crops-test", 1)

    rejected = panel.handle_key("X")
    assert rejected.result == {"match_id": None, "crop_id": None, "winner": rejected.winner, "box": rejected.crop}

    editor = panel.handle_key("e")  # opens the crop editor on the winner's image
    assert panel.editing
    assert editor is not None
    assert editor.image_id == items[2].winner
    other = next(i for i in items[2].image_ids if i != items[2].winner)
    panel.click(other)  # a click makes another image the winner
    editor.set_box(0.1, 0.2, 0.4, 0.4)
    editor.bbox._handle_custom_msg({"type": "submit"}, [])  # Enter in the editor saves the edit
    edited = panel.decisions[-1]
    assert edited.decision == "edit"
    assert edited.result["winner"] == other
    m = col.votes.get(edited.result["match_id"])
    assert m.kind == "ranking"
    assert dict(zip(m.image_ids, m.ranks)) == {i: (0 if i == other else 1)
                                                                         for i in items[2].image_ids}
    crop = col.db.query("SELECT source, x, y, w, h FROM crops WHERE id=?", (edited.result["crop_id"],))[0]
    assert crop["source"] == "user"
    assert (crop["x"], crop["y"]) == pytest.approx((0.1, 0.2), abs=0.02)

    panel.handle_key("escape")
    panel.handle_key("a")
    assert panel.current is None
    assert "review done" in panel.header.value
    assert "1 edited" in panel.header.value

    log = suggestions_df(col)
    assert len(log) == 8
    assert set(log["kind"]) == {"winner", "crop"}
    assert log["decision"].tolist().count("approve") == 4
    assert log["decision"].tolist().count("reject") == 2
    winners = log[log["kind"] == "winner"]
    assert winners["match_id"].notna().sum() == 3
    assert log["decided_at"].notna().all()
    edit_row = winners[winners["decision"] == "edit"].iloc[0]
    assert json.loads(edit_row["decided_payload"]) == {"winner": other}
    assert col.doctor().ok
    with pytest.raises(ValueError, match="already decided"):
        decide(col, items[0], "approve")


def test_review_crop_only_and_bad_edit(col: imagerank.Collection) -> None:
    ids = _ids(col)
    panel = ReviewPanel(col, proposer=_proposer(), ids=ids[:2])
    assert panel.current.winner is None
    assert panel.current.crop_image == ids[0]
    with pytest.raises(CropError, match="zero area"):
        panel.edit(box=(0.1, 0.1, 0.0, 0.2))
    assert panel.current.decision is None  # nothing recorded for a bad edit
    panel._on_dom_event({"type": "keydown", "key": "e"})
    panel._on_dom_event({"type": "keydown", "key": "e"})  # a second E saves the edit with the editor's box
    assert panel.decisions[-1].decision == "edit"
    assert panel.decisions[-1].result["match_id"] is None
    panel._on_dom_event({"type": "keydown", "key": "a", "ctrlKey": True})  # modifier combos pass through
    assert panel.position == 1
    with pytest.raises(ValueError, match="pass items"):
        ReviewPanel(col)
    # the file and its thumbnail vanish: the card says so instead of failing
    col.thumbs.path(ids[1]).unlink()
    col.images.set_status(ids[1], "missing", "gone")
    panel._render()
    (card,) = panel.cards.children
    assert "no thumbnail" in card.children[0].value


def test_review_renders_do_not_pile_up_widgets(col: imagerank.Collection) -> None:
    """Every click re-renders the cards; the old cards and their click listeners are closed, not leaked."""
    from ipywidgets.widgets.widget import _instances  # every live widget (ipywidgets 8)

    ids = _ids(col)
    items = suggest_winners(col, _ranker(col), groups=[ids[0:3], ids[3:5]], proposer=_proposer())
    panel = ReviewPanel(col, items)
    panel.handle_key("e")
    first_cards = panel.cards.children
    live = len(_instances)
    for k in range(20):
        panel.click(items[0].image_ids[k % 3])
    assert len(_instances) <= live + 2
    assert len(panel._card_events) == 3
    assert all(card.comm is None for card in first_cards)  # closed
    assert len(panel.cards.children) == 3


# ---------------------------------------------------------------- crop editor (issue 17)
def test_crop_panel_second_box_replaces_the_first_and_never_leaves_a_zero_box(col: imagerank.Collection) -> None:
    """The browser sends the new box at 0 x 0 on mouse-down and its size on mouse-up; the old box stays until then,
    and a click without a drag leaves it (Enter saves the box on screen)."""
    ids = _ids(col)
    panel = CropPanel(col, ids[:3])
    old = {"x": 16, "y": 12, "width": 32, "height": 24, "label": "free"}
    panel.bbox.bboxes = [old]
    panel.bbox.bboxes = [*panel.bbox.bboxes, {"x": 5, "y": 5, "width": 0, "height": 0, "label": "free"}]  # down
    assert panel.bbox.bboxes[0] == old  # the drag goes on over the widget's own list
    assert panel.box() == pytest.approx((0.25, 0.25, 0.5, 0.5))
    panel.bbox.bboxes = [old, {"x": 5, "y": 5, "width": 20, "height": 10, "label": "free"}]  # mouse-up
    assert len(panel.bbox.bboxes) == 1
    assert panel.box() == pytest.approx((5 / 64, 5 / 48, 20 / 64, 10 / 48))
    # a click without a drag: a 0 x 0 box stays behind; Enter saves the box on screen, not "draw a box first"
    panel.bbox.bboxes = [*panel.bbox.bboxes, {"x": 40, "y": 30, "width": 0, "height": 0, "label": "free"}]
    panel.bbox._handle_custom_msg({"type": "submit"}, [])
    assert panel.saved[-1][1] == pytest.approx((5 / 64, 5 / 48, 20 / 64, 10 / 48))
    # a box dragged up and to the left comes with negative sizes
    panel.bbox.bboxes = [{"x": 40, "y": 30, "width": -20, "height": -10, "label": "free"}]
    assert panel.box() == pytest.approx((20 / 64, 20 / 48, 20 / 64, 10 / 48))


def test_crop_panel_hides_the_widgets_own_controls(col: imagerank.Collection) -> None:
    """Save / Skip and the aspect choice appear once: the wrapped widget's buttons and class list are hidden by CSS
    (hide_buttons would also switch off its Enter / Space keys)."""
    from ipywidgets import Button, ToggleButtons

    from imagerank.widgets.crop import BBOX_CLASS

    panel = CropPanel(col, _ids(col)[0], aspect="4:5")
    assert BBOX_CLASS in panel.bbox._dom_classes
    assert f".{BBOX_CLASS} .buttons, .{BBOX_CLASS} .classes {{ display: none !important; }}" in panel.bbox._css
    assert panel.bbox.hide_buttons is False

    def walk(wd):
        yield wd
        for c in getattr(wd, "children", ()):
            yield from walk(c)

    found = list(walk(panel.widget))
    assert sorted(b.description for b in found if isinstance(b, Button)) == ["Save (Enter)", "Skip (Space)"]
    assert [t.value for t in found if isinstance(t, ToggleButtons)] == ["4:5"]
    assert (panel.aspect, panel.bbox.label) == ("4:5", "4:5")


def test_crop_widget_module_keeps_the_initial_aspect(tmp_path: Path) -> None:
    """BBoxWidget sets its label to the first class ("free") when its view mounts; the panel's module restores the
    label the kernel chose. Run in Node with a stand-in widget module that does what the real one does on mount."""
    import shutil
    import subprocess

    from imagerank.widgets.crop import wrapper_esm

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    base = ('export default { render({ model }) { model.set("label", model.get("classes")[0]); '
            'model.save_changes(); return () => {}; } };')
    (tmp_path / "wrapped.mjs").write_text(wrapper_esm(base))
    (tmp_path / "base.mjs").write_text(base)
    (tmp_path / "run.mjs").write_text("""
globalThis.Blob = class { constructor(parts) { this.src = parts.join(""); } };
URL.createObjectURL = (b) => "data:text/javascript;base64," + Buffer.from(b.src).toString("base64");
URL.revokeObjectURL = () => {};
const out = {};
for (const name of ["base", "wrapped"]) {
  const attrs = { label: "4:5", classes: ["free", "1:1", "4:5"] };
  const sent = [];
  const model = { get: (k) => attrs[k], set: (k, v) => { attrs[k] = v; }, save_changes: () => sent.push(attrs.label) };
  const mod = (await import(new URL(`./${name}.mjs`, import.meta.url))).default;
  await mod.render({ model, el: {} });
  out[name] = { label: attrs.label, sent };
}
console.log(JSON.stringify(out));
""")
    res = subprocess.run([node, str(tmp_path / "run.mjs")], capture_output=True, text=True, timeout=60, check=True)
    out = json.loads(res.stdout)
    assert out["base"]["label"] == "free"  # what the widget alone does
    assert out["wrapped"] == {"label": "4:5", "sent": ["free", "4:5"]}


def test_crop_panel_edits_a_large_preview_not_the_thumbnail(tmp_path: Path) -> None:
    """A 2400 x 1800 photo stored sideways (EXIF orientation 6) is edited on a 1200 x 1600 upright preview, decoded
    once and cached; boxes drawn in preview pixels are stored normalised to the upright original. A file that is gone
    falls back to the thumbnail."""
    from PIL import Image

    from imagerank.widgets.crop import preview_bytes

    folder = tmp_path / "images"
    folder.mkdir()
    im = Image.linear_gradient("L").resize((2400, 1800)).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    im.save(folder / "big.jpg", quality=85, exif=exif)
    with imagerank.init(tmp_path / "ws", folder, strategy="random") as c:
        c.scan(progress=False)
        (image_id,) = _ids(c)
        assert (c.image(image_id)["width"], c.image(image_id)["height"]) == (1800, 2400)
        panel = CropPanel(c, image_id)
        assert panel.size == (1200, 1600)  # not the 512-px thumbnail
        panel.set_box(300, 400, 600, 800, units="display")
        assert panel.box() == pytest.approx((0.25, 0.25, 0.5, 0.5))
        assert panel.box_original() == (450, 600, 900, 1200)
        assert list((c.catalog.thumbs_dir / "1600").rglob("*.jpg"))  # cached beside the thumbnails
        assert preview_bytes(c, image_id)[1] is True
        small = CropPanel(c, image_id, preview_size=800)
        assert small.size == (600, 800)
        (folder / "big.jpg").unlink()
        for p in (c.catalog.thumbs_dir / "1600").rglob("*.jpg"):
            p.unlink()
        _data, is_preview = preview_bytes(c, image_id)
        assert not is_preview
        assert CropPanel(c, image_id).size == (384, 512)  # the thumbnail stands in
        with pytest.raises(ValueError, match="preview_size"):
            CropPanel(c, image_id, preview_size=10)
