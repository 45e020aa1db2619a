"""The review panel in a real JupyterLab (headless Debian Chromium, Python Playwright).

A notebook made for the test shows a ``ReviewPanel`` over four pair suggestions. With the mouse over the panel,
A approves (a vote lands in the catalog), X rejects (nothing is voted), and neither key reaches JupyterLab's
command mode, where A inserts a cell and X cuts one; away from the panel A inserts a cell as usual.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from labdriver import cell_errors, demo_lab, notebook_page, notebook_shape, wait_for

CELLS = [
    "import os\nimport imagerank\nfrom imagerank.training.suggest import Suggestion\n"
    "from imagerank.widgets import ReviewPanel",
    "col = imagerank.open(os.environ['IMAGERANK_WORKSPACE'])\nids = [int(i) for i in col.images_df()['id']]",
    "items = [Suggestion(image_ids=ids[2 * k:2 * k + 2], winner=ids[2 * k], confidence=0.7) for k in range(4)]\n"
    "panel = ReviewPanel(col, items)\npanel",
]


def _matches(db: Path) -> list[tuple[str, str, list[int]]]:
    """(kind, source, image ids by rank) of every kept match."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        out = []
        for mid, kind, source in con.execute("SELECT id, kind, source FROM matches WHERE undone=0 ORDER BY id"):
            es = con.execute("SELECT image_id FROM match_entries WHERE match_id=? ORDER BY rank, image_id",
                             (mid,)).fetchall()
            out.append((kind, source, [e[0] for e in es]))
        return out
    finally:
        con.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("review-lab")
    with demo_lab(root, "review.ipynb", CELLS, 12) as (url, ws):
        yield url, ws / "imagerank.db", root


def test_review_keys_decide_and_never_reach_jupyterlab(lab):
    url, db, root = lab
    with notebook_page(url, "notebooks/review.ipynb", root) as page:
        assert cell_errors(page) == []
        buttons = page.locator("button", has_text="Approve (A)")
        buttons.wait_for(timeout=60_000)
        # command mode, as after Run All; the panel is hovered, not clicked
        page.keyboard.press("Escape")
        before = notebook_shape(page)
        assert len(before["types"]) == 3
        buttons.hover()
        page.keyboard.press("a")
        wait_for(lambda: len(_matches(db)) == 1, what="the approval's vote in the catalog")
        kind, source, ranked = _matches(db)[0]
        assert (kind, source) == ("win", "suggestion")
        assert ranked[0] < ranked[1]  # the suggested winner, ids[0] of the first pair, ranked first
        page.keyboard.press("x")  # reject the second suggestion: no vote
        time.sleep(1.0)
        assert len(_matches(db)) == 1
        assert notebook_shape(page) == before  # no cell inserted (A) or cut (X)
        # away from the panel the same key is JupyterLab's again: A inserts a cell above (so the check above
        # would have seen a leak)
        page.mouse.move(5, 5)
        page.click(".jp-Cell .jp-InputPrompt >> nth=0")
        page.keyboard.press("Escape")
        page.keyboard.press("a")
        wait_for(lambda: len(notebook_shape(page)["types"]) == 4, what="A outside the panel to insert a cell")
        assert len(_matches(db)) == 1
        page.screenshot(path=str(root / "review.png"))
