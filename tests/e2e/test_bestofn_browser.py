"""The compare panel's best-of-N mode in a real JupyterLab, in headless Debian Chromium driven by Python Playwright.

Opens notebooks/01_vote.ipynb on a small demo workspace, focuses the panel, switches to best of 3 with the N key,
picks the best with 3, marks the worst with Shift+1 and then picks 2, undoes, skips, switches to best of 4 and
back to pairs, and checks each time the matches stored in the catalog and what the page shows (N images in one
row within the panel, the worst marked, the mode's key help), and that the keys never reach JupyterLab.
"""

from __future__ import annotations

import time

import pytest
from labdriver import cell_errors, match_log, notebook_page, notebook_shape, repo_notebook_lab, wait_for

PANEL = ".imagerank-compare"

ROUND_JS = f"""() => {{
    const r = document.querySelector('{PANEL}');
    const figs = [...r.querySelectorAll('.ir-round-side')].filter((f) => f.style.display !== 'none');
    return {{
        mode: r.dataset.mode, rid: Number(r.dataset.rid), worst: r.dataset.worst ?? null,
        ids: figs.map((f) => Number(f.dataset.imageId)),
        loaded: figs.map((f) => !!f.querySelector('.ir-slot img') && f.querySelector('.ir-slot img').complete),
        marked: figs.map((f) => f.classList.contains('ir-worst')),
        boxes: figs.map((f) => {{ const b = f.querySelector('.ir-slot').getBoundingClientRect();
                                 return [b.left, b.top, b.width, b.height]; }}),
        panel: (() => {{ const b = r.getBoundingClientRect(); return [b.left, b.top, b.width, b.height]; }})(),
        viewH: (r.closest('.jp-WindowedPanel-outer') || r.closest('.jp-Notebook')).clientHeight,
        pairVisible: r.querySelector('.ir-stage').offsetParent !== null,
        hint: r.querySelector('.ir-round-hint').textContent,
        modeButton: r.querySelector('.ir-btn-mode').textContent,
    }};
}}"""


def shown_round(page, n: int) -> dict:
    """The round on screen once its ``n`` images are painted."""
    def ready():
        s = page.evaluate(ROUND_JS)
        return s if s["mode"] == f"best-of-{n}" and len(s["ids"]) == n and all(s["loaded"]) else None
    return wait_for(ready, what=f"a best-of-{n} round painted", timeout=30)


def on_screen_pair(page) -> tuple[int, int, int] | None:
    """(pid, left id, right id) of the pair on screen, None while there is none."""
    got = page.evaluate(f"""() => {{
        const r = document.querySelector('{PANEL}');
        const v = [r.dataset.pid, r.querySelector('.ir-left').dataset.imageId,
                   r.querySelector('.ir-right').dataset.imageId];
        return v.every((x) => x) ? v.map(Number) : null;
    }}""")
    return None if got is None else tuple(got)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab-bestofn")
    with repo_notebook_lab(root) as (url, ws):
        yield url, ws / "imagerank.db", root


def test_best_of_n_rounds_in_jupyterlab(lab):
    url, db, root = lab
    with notebook_page(url, "notebooks/01_vote.ipynb", root, failure="failure-bestofn.png") as page:
        assert cell_errors(page) == []
        page.wait_for_selector(f"{PANEL} .ir-left .ir-slot img", timeout=30_000)
        page.locator(PANEL).scroll_into_view_if_needed()
        page.click(f"{PANEL} .ir-header")
        assert "N" in page.evaluate(ROUND_JS)["modeButton"]  # the mode key is in the panel's key help

        # N: best of 3. Three images in one row inside the panel, the pair hidden, the keys explained.
        page.keyboard.press("n")
        r1 = shown_round(page, 3)
        assert not r1["pairVisible"]
        assert "1–3" in r1["hint"]
        assert "Shift" in r1["hint"]
        left, _top, width, _height = r1["panel"]
        assert len({round(b[1]) for b in r1["boxes"]}) == 1  # one row
        assert all(b[2] > 60 and b[3] > 60 for b in r1["boxes"])
        assert all(left <= b[0] and b[0] + b[2] <= left + width + 1 for b in r1["boxes"])
        assert r1["panel"][3] <= r1["viewH"] + 1  # the whole panel fits the notebook's visible height
        assert match_log(db) == []

        # 3: the third image is the best of the round; the whole round is one match.
        page.keyboard.press("3")
        r2 = wait_for(lambda: (s := page.evaluate(ROUND_JS))["rid"] != r1["rid"] and all(s["loaded"]) and s,
                      what="the next round after 3")
        expected = [("ranking", 0, r1["ids"], [1, 1, 0])]
        wait_for(lambda: match_log(db) == expected, what=f"the catalog to hold {expected}, has {match_log(db)}")

        # Shift+1 marks the first as the worst (shown), then 2 picks the second as the best.
        page.keyboard.press("Shift+1")
        marked = wait_for(lambda: (s := page.evaluate(ROUND_JS))["marked"] == [True, False, False] and s,
                          what="the first image marked worst")
        assert marked["worst"] == "0"
        assert match_log(db) == expected  # marking alone stores nothing
        page.screenshot(path=str(root / "bestofn-worst-marked.png"))
        page.keyboard.press("2")
        wait_for(lambda: page.evaluate(ROUND_JS)["rid"] not in (r2["rid"], r1["rid"]), what="the round after 2")
        expected.append(("ranking", 0, r2["ids"], [2, 0, 1]))
        wait_for(lambda: match_log(db) == expected, what=f"the catalog to hold {expected}, has {match_log(db)}")

        # U: the whole round is undone, exactly, and comes back on screen (unmarked).
        page.keyboard.press("u")
        back = wait_for(lambda: (s := page.evaluate(ROUND_JS))["rid"] == r2["rid"] and s,
                        what="the undone round back on screen")
        assert back["ids"] == r2["ids"]
        assert back["marked"] == [False, False, False]
        expected[-1] = ("ranking", 1, r2["ids"], [2, 0, 1])
        wait_for(lambda: match_log(db) == expected, what=f"the undo in the catalog, has {match_log(db)}")

        # S skips the round (stored, not rated).
        page.keyboard.press("s")
        wait_for(lambda: page.evaluate(ROUND_JS)["rid"] != r2["rid"], what="the round after S")
        expected.append(("skip", 0, r2["ids"], [0, 0, 0]))
        wait_for(lambda: match_log(db) == expected, what=f"the skip in the catalog, has {match_log(db)}")

        # Keys that are JupyterLab shortcuts, and the pair keys, do nothing to the notebook or the catalog.
        before = notebook_shape(page)
        for key in ["b", "a", "x", "c", "m", "ArrowDown", "ArrowLeft", "d", "9"]:
            page.keyboard.press(key)
        time.sleep(1.0)
        assert notebook_shape(page) == before
        assert match_log(db) == expected
        assert page.evaluate(f"() => document.activeElement === document.querySelector('{PANEL}')")

        # N again: best of 4; 4 picks the last.
        page.keyboard.press("n")
        r4 = shown_round(page, 4)
        assert len({round(b[1]) for b in r4["boxes"]}) == 1
        page.screenshot(path=str(root / "bestofn-4.png"))
        page.keyboard.press("4")
        expected.append(("ranking", 0, r4["ids"], [1, 1, 1, 0]))
        wait_for(lambda: match_log(db) == expected, what=f"the best-of-4 round in the catalog, has {match_log(db)}")

        # N once more: back to pairs, which vote as before.
        page.keyboard.press("n")
        def pair_shown():
            p = on_screen_pair(page)
            return p if p and page.evaluate(ROUND_JS)["mode"] == "pairs" else None

        pair = wait_for(pair_shown, what="a pair on screen again")
        assert page.evaluate(ROUND_JS)["pairVisible"]
        page.keyboard.press("ArrowLeft")
        expected.append(("win", 0, [pair[1], pair[2]], [0, 1]))
        wait_for(lambda: match_log(db) == expected, what=f"the pair vote in the catalog, has {match_log(db)}")


ADD_VIEW = """async () => {
    const app = window.jupyterapp;
    const nb = app.shell.currentWidget.content;
    nb.activeCellIndex = nb.widgets.length - 1;
    await app.commands.execute('notebook:insert-cell-below');
    nb.activeCell.model.sharedModel.setSource('panel  # a second view of the same panel');
    await app.commands.execute('notebook:run-cell');
}"""

VIEWS_JS = f"""() => [...document.querySelectorAll('{PANEL}')].map((r) => {{
    const figs = [...r.querySelectorAll('.ir-round-side')].filter((f) => f.style.display !== 'none');
    return {{mode: r.dataset.mode, rid: Number(r.dataset.rid), ids: figs.map((f) => Number(f.dataset.imageId)),
             marked: figs.map((f) => f.classList.contains('ir-worst')),
             loaded: figs.every((f) => !!f.querySelector('.ir-slot img'))}};
}})"""


def test_two_views_follow_one_round_and_the_mouse_votes(lab):
    url, db, root = lab
    with notebook_page(url, "notebooks/01_vote.ipynb", root, failure="failure-bestofn-views.png") as page:
        page.wait_for_selector(f"{PANEL} .ir-left .ir-slot img", timeout=30_000)
        page.evaluate(ADD_VIEW)
        wait_for(lambda: page.evaluate(f"() => document.querySelectorAll('{PANEL} .ir-right .ir-slot img').length")
                 == 2, what="a second view with its images")
        before = match_log(db)
        page.locator(PANEL).nth(1).locator(".ir-btn-mode").click()  # the mode button in view 2

        def same_round():
            v = page.evaluate(VIEWS_JS)
            ok = all(x["mode"] == "best-of-3" and len(x["ids"]) == 3 and x["loaded"] for x in v)
            return v if ok and v[0]["rid"] == v[1]["rid"] and v[0]["ids"] == v[1]["ids"] else None

        v = wait_for(same_round, what="both views on the same best-of-3 round", timeout=30)
        rid, ids = v[0]["rid"], v[0]["ids"]
        page.locator(PANEL).nth(0).locator(".ir-header").click()  # keys in view 1
        page.keyboard.press("Shift+2")
        wait_for(lambda: [x["marked"] for x in page.evaluate(VIEWS_JS)] == [[False, True, False]] * 2,
                 what="the worst marked in both views")
        page.locator(PANEL).nth(1).locator(".ir-round-side .ir-pick").nth(0).click()  # a mouse user picks 1 in view 2
        wait_for(lambda: all(x["rid"] != rid for x in page.evaluate(VIEWS_JS)), what="both views on the next round")
        wait_for(lambda: match_log(db) == [*before, ("ranking", 0, ids, [0, 2, 1])], what="the mouse's round")
        page.locator(PANEL).nth(0).locator(".ir-btn-undo").click()
        wait_for(lambda: [x["rid"] for x in page.evaluate(VIEWS_JS)] == [rid, rid], what="the round back in both views")
        wait_for(lambda: match_log(db)[-1][1] == 1, what="the undo in the catalog")
        page.screenshot(path=str(root / "bestofn-two-views.png"))
