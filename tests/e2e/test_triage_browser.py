"""The triage panel of the generation tree in a real JupyterLab (headless Debian Chromium, Python Playwright).

A workspace whose tree was grown by the runner against the library's ComfyUI emulator (base → face → hand →
upscale, N = 2) is triaged with the keyboard, beside the board of the tree: ← votes (a match in the catalog),
K then → kills the right candidate and the panel walks left (the killed candidate's parent beside one of its
siblings), K then ← kills that parent too and the walk goes one column further left, U restores the last kill,
S ends the walk, Backspace undoes the stop; no key reaches JupyterLab.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from labdriver import cell_errors, jupyterlab, notebook_page, notebook_shape, wait_for, write_notebook

PANEL = ".imagerank-triage"
CELLS = [
    "import os\nimport imagerank\nfrom imagerank.widgets import GenerationBoard, TriagePanel",
    "col = imagerank.open(os.environ['IMAGERANK_WORKSPACE'])\npanel = TriagePanel(col)\npanel",
    "GenerationBoard(col)",
]


def _db(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def kept_matches(db: Path) -> int:
    return int(_db(db, "SELECT COUNT(*) FROM matches WHERE undone=0")[0][0])


def status(db: Path, image_id: int) -> str:
    return str(_db(db, "SELECT status FROM images WHERE id=?", (image_id,))[0][0])


def parent(db: Path, image_id: int) -> int | None:
    p = _db(db, "SELECT parent_id FROM images WHERE id=?", (image_id,))[0][0]
    return None if p is None else int(p)


def on_screen(page) -> dict:
    return page.evaluate(f"""() => {{
        const r = document.querySelector('{PANEL}');
        const id = (side) => {{
            const v = r.querySelector('.ir-t-' + side).dataset.imageId;
            return v ? Number(v) : null;
        }};
        return {{qid: Number(r.dataset.qid), kind: r.dataset.kind, left: id('left'), right: id('right'),
                 mode: r.querySelector('.ir-t-mode').textContent, where: r.querySelector('.ir-t-where').textContent,
                 images: r.querySelectorAll('.ir-t-slot img').length}};
    }}""")


def next_screen(page, before: dict) -> dict:
    return wait_for(lambda: (s := on_screen(page))["qid"] != before["qid"] and s, what="the next question")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    import imagerank
    from imagerank.catalog import Catalog
    from imagerank.generation import steps
    from imagerank.generation.emulator import start_emulator
    from imagerank.generation.runner import Runner

    root = tmp_path_factory.mktemp("triage-lab")
    ws = root / "ws"
    cat = Catalog.create(ws, max_children=2, target_finals=2)
    steps.add_example_steps(cat)
    cat.close()
    emu = start_emulator(root / "comfy", node_delay_s=0.005)
    try:
        col = imagerank.open(ws)
        report = Runner(col, [emu.url], until_idle=True).run()
        col.close()
    finally:
        emu.stop()
    assert report.done >= 4
    (root / "notebooks").mkdir()
    write_notebook(root / "notebooks" / "triage.ipynb", CELLS)
    with jupyterlab(root, env={"IMAGERANK_WORKSPACE": str(ws)}) as url:
        yield url, ws / "imagerank.db", root


def test_triage_votes_and_the_kill_left_walk_in_jupyterlab(lab):
    url, db, root = lab
    with notebook_page(url, "notebooks/triage.ipynb", root, failure="triage-failure.png") as page:
        assert cell_errors(page) == []
        page.wait_for_selector(f"{PANEL} .ir-t-left .ir-t-slot img", timeout=60_000)
        page.wait_for_selector(f"{PANEL} .ir-t-right .ir-t-slot img", timeout=30_000)
        page.keyboard.press("Escape")
        shape = notebook_shape(page)
        page.locator(PANEL).scroll_into_view_if_needed()
        page.click(f"{PANEL} .ir-t-header")
        assert page.evaluate(f"() => document.activeElement === document.querySelector('{PANEL}')")

        # ← votes on a final-column pair
        s0 = on_screen(page)
        assert s0["kind"] == "pair"
        assert "final column" in s0["where"]
        page.keyboard.press("ArrowLeft")
        wait_for(lambda: kept_matches(db) == 1, what="the vote in the catalog")
        s1 = next_screen(page, s0)
        assert s1["kind"] == "pair"

        # K then → kills the right candidate; the walk shows its parent (left) beside a sibling of the parent
        killed = s1["right"]
        page.keyboard.press("k")
        assert page.locator(f"{PANEL} .ir-t-armed").is_visible()
        page.keyboard.press("ArrowRight")
        wait_for(lambda: status(db, killed) == "rejected", what="the kill in the catalog")
        w1 = next_screen(page, s1)
        suspect = parent(db, killed)
        assert (w1["kind"], w1["left"], w1["mode"]) == ("walk", suspect, "Walk left")
        assert w1["right"] is not None
        assert parent(db, w1["right"]) == parent(db, suspect)  # a sibling of the suspect
        assert f"#{suspect}" in w1["where"]
        assert w1["images"] == 2

        # K then ← kills the suspect too: one column further left
        page.keyboard.press("k")
        page.keyboard.press("ArrowLeft")
        wait_for(lambda: status(db, suspect) == "rejected", what="the suspect's kill")
        w2 = next_screen(page, w1)
        assert (w2["kind"], w2["left"]) == ("walk", parent(db, suspect))

        # U undoes the last kill: the suspect is active again and back on screen
        page.keyboard.press("u")
        wait_for(lambda: status(db, suspect) == "active", what="the kill undone")
        w3 = next_screen(page, w2)
        assert (w3["kind"], w3["left"], w3["right"]) == ("walk", w1["left"], w1["right"])

        # S: the suspect looks fine, the walk ends (the first kill was the root cause); Backspace brings it back
        page.keyboard.press("s")
        p = next_screen(page, w3)
        assert p["kind"] == "pair"
        page.keyboard.press("Backspace")
        w4 = next_screen(page, p)
        assert (w4["kind"], w4["left"]) == ("walk", suspect)

        # the board (refreshing every second) shows the kill: one rejected candidate in the killed one's column
        board = ".imagerank-board"
        page.locator(board).scroll_into_view_if_needed()
        js = f"""() => [...document.querySelectorAll('{board} .ir-b-col')].map(c =>
            [c.dataset.step, c.querySelectorAll('img').length, c.querySelectorAll('.ir-b-rejected').length])"""
        # (a board scrolled into view paints the state of its last refresh; the next one, within a second,
        # shows the catalog as it is now)
        cols = wait_for(lambda: (c := page.evaluate(js)) and all(x[1] > 0 for x in c) and sum(x[2] for x in c) == 1
                        and c, what="the board's columns with their thumbnails and the one rejected candidate")
        assert [c[0] for c in cols] == ["base", "face", "hand", "upscale"]
        assert kept_matches(db) == 1  # kills and stops are no votes
        assert status(db, killed) == "rejected"
        assert notebook_shape(page)["types"] == shape["types"]  # no key reached JupyterLab
        page.screenshot(path=str(root / "triage.png"))
