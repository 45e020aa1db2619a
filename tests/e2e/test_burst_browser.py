"""The burst panel in a real JupyterLab (headless Debian Chromium, Python Playwright).

A notebook made for the test culls a generated four-burst shoot and shows a ``BurstPanel``. Clicked once, the
panel takes the keys: 2 then Enter keeps the second frame (an N-way match with that frame at rank 0 lands in the
catalog), U undoes it (the match is marked undone), 1 and 3 then Enter keep two frames, and plain keys that are
JupyterLab's commands (A inserts a cell in command mode) never reach JupyterLab. Each frame shows its 100 % crop:
the crop image is drawn at its natural size.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from labdriver import cell_errors, jupyterlab, notebook_page, notebook_shape, wait_for, write_notebook

PANEL = ".imagerank-burst"
CELLS = [
    "from imagerank.cull import cull\nfrom imagerank.demo import open_cull_demo\n"
    "from imagerank.widgets import BurstPanel",
    "col = open_cull_demo()\nshoot = col.settings.roots[0]\nir = cull(shoot, None, workers=1, use_exiftool=False)",
    "panel = BurstPanel(col, ir, shoot, view_size=480, zoom_px=160)\npanel",
]


def matches(db: Path) -> list[tuple[str, int, list[int]]]:
    """(source, undone, ranks by screen position) of every match, in order."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        out = []
        for mid, source, undone in con.execute("SELECT id, source, undone FROM matches ORDER BY id"):
            es = con.execute("SELECT rank FROM match_entries WHERE match_id=? ORDER BY position", (mid,)).fetchall()
            out.append((source, undone, [e[0] for e in es]))
        return out
    finally:
        con.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from imagerank.demo import open_cull_demo

    root = tmp_path_factory.mktemp("burst-lab")
    ws = root / "cull-demo"
    open_cull_demo(ws, n_bursts=4, seed=7).close()
    (root / "notebooks").mkdir()
    write_notebook(root / "notebooks" / "burst.ipynb", CELLS)
    with jupyterlab(root, env={"IMAGERANK_CULL_DEMO": str(ws)}) as url:
        yield url, ws / "imagerank.db", root


def frames_on_screen(page) -> dict:
    return page.evaluate(f"""() => {{
        const r = document.querySelector('{PANEL}');
        const figs = [...r.querySelectorAll('.ir-frame')];
        return {{
            n: figs.length,
            views: figs.filter((f) => f.querySelector('.ir-img')?.complete).length,
            zooms: figs.map((f) => {{
                const z = f.querySelector('.ir-zoom-img');
                return z && z.complete ? [z.naturalWidth, z.getBoundingClientRect().width] : null;
            }}),
            kept: figs.filter((f) => f.classList.contains('ir-kept')).length,
            header: r.querySelector('.ir-counts').textContent,
        }};
    }}""")


def test_burst_keys_record_keepers_and_never_reach_jupyterlab(lab):
    url, db, root = lab
    with notebook_page(url, "notebooks/burst.ipynb", root, failure="burst-failure.png") as page:
        assert cell_errors(page) == []
        page.locator(PANEL).wait_for(timeout=60_000)
        wait_for(lambda: (lambda s: s["n"] >= 2 and all(s["zooms"]))(frames_on_screen(page)),
                 timeout=60, what="the first burst's frames and crops")
        shown = frames_on_screen(page)
        assert 2 <= shown["n"] <= 4
        assert shown["header"].startswith("Burst 1 of 4")
        for natural, drawn in shown["zooms"]:  # 100 %: one image pixel per CSS pixel
            assert natural == 160
            assert abs(drawn - natural) < 1.0
        page.keyboard.press("Escape")  # command mode, as after Run All
        before = notebook_shape(page)
        page.click(f"{PANEL} .ir-header")  # the panel takes the keys
        page.keyboard.press("2")
        wait_for(lambda: frames_on_screen(page)["kept"] == 1, what="the second frame marked as keeper")
        page.keyboard.press("Enter")
        wait_for(lambda: len(matches(db)) == 1, what="the pick's match in the catalog")
        source, undone, ranks = matches(db)[0]
        assert (source, undone) == ("burst", 0)
        assert ranks == [1, 0] + [1] * (shown["n"] - 2)
        wait_for(lambda: frames_on_screen(page)["header"].startswith("Burst 2 of 4"), what="the next burst")
        page.keyboard.press("u")
        wait_for(lambda: matches(db)[0][1] == 1, what="the undo in the catalog")
        wait_for(lambda: frames_on_screen(page)["header"].startswith("Burst 1 of 4"), what="the burst back")
        page.keyboard.press("1")
        page.keyboard.press("3" if shown["n"] >= 3 else "2")
        page.keyboard.press("Enter")
        wait_for(lambda: len(matches(db)) == 2, what="the two-keeper match")
        assert matches(db)[1][2][:2] == ([0, 1] if shown["n"] >= 3 else [0, 0])
        for key in ("a", "x", "m"):  # JupyterLab commands in command mode: insert above, cut, to markdown
            page.keyboard.press(key)
        time.sleep(1.0)
        assert notebook_shape(page)["types"] == before["types"]
        assert len(matches(db)) == 2
        page.screenshot(path=str(root / "burst.png"))
