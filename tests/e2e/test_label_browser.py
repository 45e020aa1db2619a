"""The auto-pick label panel in a real JupyterLab (headless Debian Chromium, Python Playwright).

A notebook made for the test runs auto_pick on a folder of three candidates (tiny CLIP model, an untrained head,
threshold 0 so the subject gets an image) and shows a ``LabelPanel``. With the panel focused, G labels the
candidate good, B bad, S skips; labels land in the catalog with source ``label-panel``; the current image and the
candidate are drawn; a key pressed before the next candidate arrives waits for it; and B (insert a cell below in
JupyterLab's command mode) never reaches JupyterLab.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from labdriver import cell_errors, demo_lab, notebook_page, notebook_shape, wait_for

CELLS = [
    "import os\nimport imagerank\nfrom imagerank.autopick import (AestheticHead, ClipAestheticScorer, FolderSource,"
    " HeadConfig, PickConfig, auto_pick)\nfrom imagerank.widgets import LabelPanel",
    "col = imagerank.open(os.environ['IMAGERANK_WORKSPACE'])\n"
    "scorer = ClipAestheticScorer('imagerank-tiny:none', AestheticHead(HeadConfig('linear', 64)))\n"
    "report = auto_pick(col, ['Tower'], FolderSource('../subjects'), scorer, PickConfig(threshold=0), "
    "progress=False)",
    "panel = LabelPanel(col)\npanel",
]


def _labels(db: Path) -> list[tuple[str | None, str | None]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [(r[0], r[1]) for r in con.execute(
            "SELECT label, label_source FROM autopick_candidates ORDER BY score DESC, position")]
    finally:
        con.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from imagerank.autopick.fake_commons import render

    root = tmp_path_factory.mktemp("label-lab")
    (root / "subjects" / "Tower").mkdir(parents=True)
    for k in range(3):
        render("good" if k != 1 else "bad", 480, 360, k).save(root / "subjects" / "Tower" / f"{k}.jpg")
    with demo_lab(root, "label.ipynb", CELLS, 6) as (url, ws):
        yield url, ws / "imagerank.db", root


def test_label_keys_store_labels_and_never_reach_jupyterlab(lab):
    url, db, root = lab
    with notebook_page(url, "notebooks/label.ipynb", root) as page:
        assert cell_errors(page) == []
        panel = page.locator(".imagerank-label")
        panel.wait_for(timeout=60_000)
        wait_for(lambda: page.evaluate(
            "() => { const i = document.querySelectorAll('.imagerank-label img');"
            " return i.length === 2 && [...i].every((x) => x.complete && x.naturalWidth > 0); }"),
            what="the current image and the candidate drawn")
        assert "1 of 3" in panel.locator(".il-count").inner_text()
        page.screenshot(path=str(root / "label-start.png"))
        page.keyboard.press("Escape")  # command mode, as after Run All
        before = notebook_shape(page)
        panel.locator(".il-subject").click()  # focus the panel
        page.keyboard.press("g")
        wait_for(lambda: _labels(db)[0] == ("good", "label-panel"), what="G stored as a good label")
        wait_for(lambda: "2 of 3" in panel.locator(".il-count").inner_text(), what="the next candidate")
        page.keyboard.press("b")  # B and S at once: S waits for the next candidate, never labels this one
        page.keyboard.press("s")
        wait_for(lambda: panel.locator(".il-done").is_visible(), what="the end of the queue")
        assert "error" not in (panel.locator(".il-status").get_attribute("class") or "")
        labels = [lab for lab, _ in _labels(db)]
        assert sorted(x or "" for x in labels) == ["", "bad", "good"]
        assert notebook_shape(page) == before  # B did not insert a cell
        page.screenshot(path=str(root / "label.png"))
