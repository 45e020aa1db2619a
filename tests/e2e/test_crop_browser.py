"""The crop editor in a real JupyterLab (headless Debian Chromium, Python Playwright).

A notebook made for the test shows a ``CropPanel`` over three images. The user drags a box on the image, presses
2 (the 1:1 preset: the box snaps to a square), D (move right) and Enter (save and go on): the crop lands in the
catalog, square in pixels of the original. None of these keys, nor A or X, reaches JupyterLab's command mode.
A second panel opened with ``aspect="4:5"`` keeps it once drawn (the widget resets its label when it mounts), and
each panel shows its Save / Skip buttons and aspect choice once (the wrapped widget's own are hidden).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from labdriver import cell_errors, demo_lab, notebook_page, notebook_shape, wait_for

import imagerank

CELLS = [
    "import os\nimport imagerank\nfrom imagerank.widgets import CropPanel",
    "col = imagerank.open(os.environ['IMAGERANK_WORKSPACE'])\nids = [int(i) for i in col.images_df()['id']]",
    "panel = CropPanel(col, ids[:3])\npanel45 = CropPanel(col, ids[3:5], aspect='4:5')\ndisplay(panel, panel45)",
]


def _crops(db: Path) -> list[tuple[int, float, float, float, float]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [tuple(r) for r in con.execute("SELECT image_id, x, y, w, h FROM crops ORDER BY id")]
    finally:
        con.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("crop-lab")
    with demo_lab(root, "crop.ipynb", CELLS, 6) as (url, ws):
        yield url, ws, root


def test_crop_keys_snap_move_and_save_without_reaching_jupyterlab(lab):
    url, ws, root = lab
    db = ws / "imagerank.db"
    with notebook_page(url, "notebooks/crop.ipynb", root, viewport=(1400, 1100)) as page:
        assert cell_errors(page) == []
        img = page.locator(".jp-OutputArea img").first
        img.wait_for(timeout=60_000)
        img.scroll_into_view_if_needed()
        page.keyboard.press("Escape")
        before = notebook_shape(page)
        box = img.bounding_box()
        assert box is not None
        x0, y0 = box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.2
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(x0 + box["width"] * 0.4, y0 + box["height"] * 0.3, steps=8)
        page.mouse.up()
        for key in ["2", "d", "a", "x"]:
            page.keyboard.press(key)
        time.sleep(0.5)
        assert notebook_shape(page) == before  # no cell inserted (A) or cut (X), no mode change
        page.keyboard.press("Enter")
        wait_for(lambda: len(_crops(db)) == 1, what="the saved crop in the catalog")
        image_id, x, y, w, h = _crops(db)[0]
        assert 0 <= x < x + w <= 1
        assert 0 <= y < y + h <= 1
        with imagerank.open(ws) as col:
            info = col.image(image_id)
        assert abs(w * info["width"] - h * info["height"]) <= 2  # 1:1 in pixels of the original
        assert notebook_shape(page) == before
        page.screenshot(path=str(root / "crop.png"))


def test_crop_panel_keeps_its_initial_aspect_and_shows_its_controls_once(lab):
    url, ws, root = lab
    db = ws / "imagerank.db"
    with notebook_page(url, "notebooks/crop.ipynb", root, viewport=(1400, 1100), failure="failure45.png") as page:
        assert cell_errors(page) == []
        imgs = page.locator(".imagerank-crop-bbox img")
        wait_for(lambda: imgs.count() == 2, timeout=60, what="two crop editors")
        visible = page.locator("button:visible")
        wait_for(lambda: visible.filter(has_text="Save (Enter)").count() == 2, what="one Save button per panel")
        assert visible.filter(has_text="Skip (Space)").count() == 2
        assert visible.filter(has_text="Submit").count() == 0  # the wrapped widget's own buttons
        assert page.locator(".imagerank-crop-bbox .classes:visible").count() == 0  # and its class list
        assert page.locator(".widget-toggle-buttons:visible").count() == 2  # our aspect choice, once a panel
        n_before = len(_crops(db))
        img = imgs.nth(1)
        img.scroll_into_view_if_needed()
        box = img.bounding_box()
        assert box is not None
        x0, y0 = box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.2
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(x0 + box["width"] * 0.5, y0 + box["height"] * 0.25, steps=8)
        page.mouse.up()
        time.sleep(0.3)
        page.keyboard.press("Enter")
        wait_for(lambda: len(_crops(db)) == n_before + 1, what="the 4:5 crop in the catalog")
        image_id, _x, _y, w, h = _crops(db)[-1]
        with imagerank.open(ws) as col:
            info = col.image(image_id)
            aspect = col.db.query("SELECT aspect FROM crops ORDER BY id DESC LIMIT 1")[0][0]
        assert aspect == "4:5"
        assert abs(w * info["width"] * 5 - h * info["height"] * 4) <= 10  # 4:5 in pixels of the original
        page.screenshot(path=str(root / "crop45.png"))
