"""The compare panel in a real JupyterLab, in headless Debian Chromium driven by Python Playwright.

Opens notebooks/01_vote.ipynb on a small demo workspace, runs it, focuses the panel and checks that keys vote
(exactly the expected matches land in the catalog), that other keys never reach JupyterLab, that focus survives
the mouse leaving, that Ctrl combinations still reach JupyterLab, and that Esc hands the keys back.
"""

from __future__ import annotations

import time

import pytest
from labdriver import cell_errors, match_log, notebook_page, notebook_shape, repo_notebook_lab, wait_for

PANEL = ".imagerank-compare"


def on_screen(page, view: int = 0) -> tuple[int, int, int]:
    """(pid, left image id, right image id) of the pair the panel (its ``view``-th view) shows."""
    return tuple(page.evaluate(f"""() => {{
        const r = document.querySelectorAll('{PANEL}')[{view}];
        return [Number(r.dataset.pid), Number(r.querySelector('.ir-left').dataset.imageId),
                Number(r.querySelector('.ir-right').dataset.imageId)];
    }}"""))


def panel_has_focus(page) -> bool:
    return bool(page.evaluate(f"() => document.activeElement === document.querySelector('{PANEL}')"))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    with repo_notebook_lab(root) as (url, ws):
        yield url, ws / "imagerank.db", root


def test_keyboard_voting_in_jupyterlab(lab):
    url, db, root = lab
    with notebook_page(url, "notebooks/01_vote.ipynb", root) as page:
        assert cell_errors(page) == []
        page.wait_for_selector(f"{PANEL} .ir-left .ir-slot img", timeout=30_000)
        page.wait_for_selector(f"{PANEL} .ir-right .ir-slot img", timeout=30_000)
        assert match_log(db) == []
        # the stability figure is made off the kernel's message path and synced from the kernel's IO loop: it
        # reaches the header with no key pressed
        wait_for(lambda: "stability" in page.inner_text(f"{PANEL} .ir-stability"), what="the stability figure")
        page.locator(PANEL).scroll_into_view_if_needed()
        page.click(f"{PANEL} .ir-header")
        assert panel_has_focus(page)
        # The focus ring is on: a coloured box-shadow around the panel.
        shadow = page.evaluate(f"() => getComputedStyle(document.querySelector('{PANEL}')).boxShadow")
        assert shadow not in ("", "none")

        # ←, →, S, D, U
        expected = []
        shown = []
        for key, kind, ranks in [("ArrowLeft", "win", [0, 1]), ("ArrowRight", "win", [1, 0]),
                                 ("s", "skip", [0, 0]), ("d", "draw", [0, 0])]:
            pid, left, right = wait_for(lambda: on_screen(page) if all(on_screen(page)) else None,
                                        what="a pair on screen")
            shown.append((pid, left, right))
            page.keyboard.press(key)
            wait_for(lambda p=pid: on_screen(page)[0] != p, what=f"the next pair after {key}")
            expected.append((kind, 0, [left, right], ranks))
        page.keyboard.press("u")
        # The undone pair comes back at once (the browser had already moved past it).
        wait_for(lambda: on_screen(page) == shown[-1], what="the undone pair back on screen")
        expected[-1] = ("draw", 1, expected[-1][2], [0, 0])
        wait_for(lambda: match_log(db) == expected, what=f"the catalog to hold {expected}, has {match_log(db)}")
        page.screenshot(path=str(root / "after-votes.png"))

        # Keys that are JupyterLab shortcuts in command mode do nothing while the panel has focus.
        before = notebook_shape(page)
        for key in ["b", "a", "x", "c", "m", "ArrowDown"]:
            page.keyboard.press(key)
        time.sleep(1.0)
        assert notebook_shape(page) == before
        assert on_screen(page) == shown[-1]
        assert match_log(db) == expected
        assert panel_has_focus(page)

        # The mouse leaves the panel: keys still go to it.
        page.mouse.move(3, 3)
        page.mouse.move(20, 500)
        pid, left, right = on_screen(page)
        page.keyboard.press("1")
        expected.append(("win", 0, [left, right], [0, 1]))
        wait_for(lambda: match_log(db) == expected, what="the vote cast after the mouse left")
        assert panel_has_focus(page)

        # Ctrl combinations pass through to JupyterLab: Ctrl+S saves the notebook.
        dirty = "() => window.jupyterapp.shell.currentWidget.context.model.dirty"
        if page.evaluate(dirty):
            page.keyboard.press("Control+s")
            wait_for(lambda: not page.evaluate(dirty), what="Ctrl+S to save the notebook")
        assert panel_has_focus(page)

        # Click an image: the original, larger; Esc closes that view first, then releases the keys.
        page.click(f"{PANEL} .ir-left .ir-slot")
        page.wait_for_selector(".imagerank-zoom:not([hidden])")
        page.wait_for_function(
            "() => document.querySelector('.imagerank-zoom .ir-zoom-caption').textContent.includes('×')")
        page.keyboard.press("Escape")
        assert page.evaluate("() => document.querySelector('.imagerank-zoom').hidden")
        assert panel_has_focus(page)
        page.keyboard.press("Escape")
        assert not panel_has_focus(page)
        page.keyboard.press("2")
        time.sleep(0.8)
        assert match_log(db) == expected


ADD_VIEW = """async () => {
    const app = window.jupyterapp;
    const nb = app.shell.currentWidget.content;
    nb.activeCellIndex = nb.widgets.length - 1;
    await app.commands.execute('notebook:insert-cell-below');
    nb.activeCell.model.sharedModel.setSource('panel  # a second view of the same panel');
    await app.commands.execute('notebook:run-cell');
}"""


def test_two_views_stay_in_sync_and_buttons_vote(lab):
    url, db, root = lab
    with notebook_page(url, "notebooks/01_vote.ipynb", root, failure="failure-two-views.png") as page:
        page.wait_for_selector(f"{PANEL} .ir-left .ir-slot img", timeout=30_000)
        page.evaluate(ADD_VIEW)
        wait_for(lambda: page.evaluate(f"() => document.querySelectorAll('{PANEL} .ir-right .ir-slot img').length")
                 == 2, what="a second view with its images")
        assert on_screen(page, 0) == on_screen(page, 1)
        before = match_log(db)
        pid, left, right = on_screen(page, 1)
        page.locator(PANEL).nth(1).locator(".ir-btn-right").click()  # a mouse user votes in view 2
        wait_for(lambda: on_screen(page, 0)[0] != pid and on_screen(page, 0) == on_screen(page, 1),
                 what="both views on the next pair")
        wait_for(lambda: match_log(db) == [*before, ("win", 0, [left, right], [1, 0])], what="the button's vote")
        page.locator(PANEL).nth(0).locator(".ir-header").click()  # keys in view 1
        pid2, left2, right2 = on_screen(page, 0)
        page.keyboard.press("ArrowLeft")
        wait_for(lambda: on_screen(page, 1)[0] != pid2, what="view 2 to follow view 1")
        wait_for(lambda: len(match_log(db)) == len(before) + 2, what="the key's vote")
        assert match_log(db)[-1] == ("win", 0, [left2, right2], [0, 1])
        page.locator(PANEL).nth(1).locator(".ir-btn-undo").click()
        wait_for(lambda: on_screen(page, 0) == on_screen(page, 1) == (pid2, left2, right2),
                 what="the undone pair back in both views")
        wait_for(lambda: match_log(db)[-1][1] == 1, what="the undo in the catalog")
        page.screenshot(path=str(root / "two-views.png"))
