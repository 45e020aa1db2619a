"""The compare panel's layout and details in a real JupyterLab (headless Debian Chromium, Playwright).

Layout, at 1280x720 and 1920x1080 and device pixel ratios 1 and 2: every image fills its slot's width and the taller
of the pair fills its slot's height (slots take the images' aspect ratios), the whole panel (header to top-10 strip)
fits the notebook's visible height with nothing of it below its bottom edge, and the thumbnails have the device
pixels they are drawn at (the larger cached size on a 2x display).

Details: no μ/σ/n and no top-10 strip at 0 votes; the status line is true after each action (a vote clears the
rescan summary and "undone: … is back"); F twice on one pair labels it once; after Tab the hint says the keys are
not the panel's and neither keys nor Enter vote; Esc hands the keys to the notebook in command mode.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from labdriver import catalog_rows, chromium, open_notebook, repo_notebook_lab, run_all, wait_for

PANEL = ".imagerank-compare"
NOTEBOOK = "notebooks/01_vote.ipynb"

GEOMETRY = f"""() => {{
    const r = document.querySelector('{PANEL}');
    const rb = r.getBoundingClientRect();
    const sc = r.closest('.jp-WindowedPanel-outer') || r.closest('.jp-Notebook');
    const viewBottom = Math.min(sc ? sc.getBoundingClientRect().bottom : innerHeight, innerHeight);
    const sides = [...r.querySelectorAll('.ir-side')].map((f) => {{
        const slot = f.querySelector('.ir-slot');
        const img = slot.querySelector('img');
        const s = slot.getBoundingClientRect();
        const scale = Math.min(s.width / img.naturalWidth, s.height / img.naturalHeight);
        return {{id: Number(f.dataset.imageId), slotW: s.width, slotH: s.height, drawnW: img.naturalWidth * scale,
                 drawnH: img.naturalHeight * scale, natural: Math.max(img.naturalWidth, img.naturalHeight)}};
    }});
    const below = [...r.querySelectorAll('*')].filter((e) => {{
        const b = e.getBoundingClientRect();
        return b.height > 0 && getComputedStyle(e).visibility !== 'hidden' && b.bottom > rb.bottom + 0.5;
    }}).map((e) => e.className);
    return {{top: rb.top, bottom: rb.bottom, viewBottom, sides, below, dpr: devicePixelRatio,
             status: r.querySelector('.ir-status').getBoundingClientRect().bottom,
             strip: r.querySelector('.ir-top').getBoundingClientRect().bottom}};
}}"""


def matches(db: Path) -> int:
    """Kept judgements (wins and draws; the layout test's skips are not counted)."""
    return int(catalog_rows(db, "SELECT COUNT(*) FROM matches WHERE undone = 0 AND kind != 'skip'")[0][0])


def labels(db: Path) -> list[tuple[int, str]]:
    return [(int(r[0]), str(r[1])) for r in catalog_rows(db, "SELECT image_id, label FROM labels ORDER BY id")]


def original_longest(db: Path, image_id: int) -> int:
    w, h = catalog_rows(db, "SELECT width, height FROM images WHERE id = ?", (image_id,))[0]
    return max(int(w), int(h))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("layout")
    with repo_notebook_lab(root, NOTEBOOK) as (url, ws), chromium() as browser:
        yield url, ws, root, browser


def open_panel(browser, url: str, size: tuple[int, int], dpr: float):
    ctx = browser.new_context(viewport={"width": size[0], "height": size[1]}, device_scale_factor=dpr)
    page = ctx.new_page()
    open_notebook(page, url, NOTEBOOK)
    run_all(page)
    page.wait_for_selector(f"{PANEL} .ir-left .ir-slot img", timeout=30_000)
    page.wait_for_selector(f"{PANEL} .ir-right .ir-slot img", timeout=30_000)
    page.evaluate(f"() => document.querySelector('{PANEL}').scrollIntoView({{block: 'start'}})")
    time.sleep(0.5)
    return ctx, page


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)], ids=["1280x720", "1920x1080"])
@pytest.mark.parametrize("dpr", [1, 2], ids=["dpr1", "dpr2"])
def test_slots_fit_the_images_and_the_panel_fits_the_screen(lab, size, dpr):
    url, ws, root, browser = lab
    ctx, page = open_panel(browser, url, size, dpr)
    try:
        for step in range(3):  # three pairs (different aspect ratios)
            page.evaluate(f"() => document.querySelector('{PANEL}').scrollIntoView({{block: 'start'}})")
            time.sleep(0.3)
            g = page.evaluate(GEOMETRY)
            assert g["bottom"] <= g["viewBottom"] + 1, f"panel bottom {g['bottom']} below the visible {g['viewBottom']}"
            assert g["below"] == [], f"below the panel's bottom edge: {g['below']}"
            assert g["status"] <= g["bottom"]
            assert g["strip"] <= g["bottom"]
            for s in g["sides"]:
                assert s["drawnW"] >= s["slotW"] - 2, f"image narrower than its slot: {s}"
            assert max(s["drawnH"] - s["slotH"] for s in g["sides"]) >= -2, f"no image fills the height: {g}"
            # sharp: the thumbnail has the device pixels it is drawn at (up to the cache's 1024 and the original)
            wait_for(lambda: all(
                s["natural"] >= min(1024, original_longest(ws / "imagerank.db", s["id"]),
                                    max(s["drawnW"], s["drawnH"]) * dpr / 1.25)
                for s in page.evaluate(GEOMETRY)["sides"]), timeout=20, what=f"sharp thumbnails at dpr {dpr}")
            if step < 2:
                page.click(f"{PANEL} .ir-btn-skip")
                time.sleep(0.5)
        page.screenshot(path=str(root / f"layout-{size[0]}x{size[1]}-dpr{dpr}.png"))
    except Exception:
        page.screenshot(path=str(root / f"failure-layout-{size[0]}x{size[1]}-dpr{dpr}.png"))
        print(f"screenshot and JupyterLab log in {root}")
        raise
    finally:
        ctx.close()


def status(page) -> str:
    return page.evaluate(f"() => document.querySelector('{PANEL} .ir-status').textContent")


def test_status_scores_flag_tab_and_escape(lab):
    url, ws, root, browser = lab
    db = ws / "imagerank.db"
    ctx, page = open_panel(browser, url, (1280, 720), 1)
    try:
        assert matches(db) == 0
        # the leaderboard below: no column header cut off ("Ra…", "Score μ−…", "Vot…")
        page.wait_for_selector(".ir-lb-header", timeout=30_000)
        cut = page.evaluate("""() => [...document.querySelectorAll('.ir-lb-header')]
            .filter((b) => b.scrollWidth > b.clientWidth + 1).map((b) => b.textContent)""")
        assert cut == []
        # 0 votes: every rating is equal, nothing to anchor on
        stats = f"() => [...document.querySelectorAll('{PANEL} .ir-stats')].map((e) => e.textContent).join('')"
        strip = f"() => getComputedStyle(document.querySelector('{PANEL} .ir-top')).visibility"
        assert page.evaluate(stats) == ""
        assert page.evaluate(strip) == "hidden"
        page.click(f"{PANEL} .ir-header")
        page.keyboard.press("ArrowLeft")
        wait_for(lambda: matches(db) == 1, what="the first vote")
        wait_for(lambda: "μ" in page.evaluate(stats), what="μ σ n after the first vote")
        wait_for(lambda: page.evaluate(strip) == "visible", what="the top-10 strip after the first vote")

        # rescan: its summary, then a vote clears it
        page.keyboard.press("r")
        wait_for(lambda: "new image" in status(page), what="the rescan summary")
        page.keyboard.press("ArrowRight")
        wait_for(lambda: matches(db) == 2, what="the vote after the rescan")
        time.sleep(0.5)
        assert status(page) == ""
        # undo: "is back" while the pair is back; voting on it clears it
        page.keyboard.press("u")
        wait_for(lambda: "is back" in status(page), what="the undo message")
        page.keyboard.press("ArrowLeft")
        wait_for(lambda: matches(db) == 2, what="the vote on the pair that came back")
        time.sleep(0.5)
        assert status(page) == ""

        # F twice on one pair: two label rows, not four
        before = len(labels(db))
        page.keyboard.press("f")
        wait_for(lambda: len(labels(db)) == before + 2, what="the two flag labels")
        page.keyboard.press("f")
        wait_for(lambda: "already flagged" in status(page), what="the second flag answered")
        assert len(labels(db)) == before + 2

        # Tab: the keys leave the panel and the hint says so; neither keys nor Enter vote
        page.keyboard.press("Tab")
        hint = page.evaluate(f"() => document.querySelector('{PANEL} .ir-keyhint').textContent")
        in_panel = page.evaluate(f"() => document.querySelector('{PANEL}').contains(document.activeElement)")
        assert not in_panel
        assert "click the panel" in hint
        n = matches(db)
        page.keyboard.press("Enter")
        page.keyboard.press("Escape")
        time.sleep(0.8)
        assert matches(db) == n

        # Esc hands the keys to the notebook in command mode: JupyterLab's own keys work at once
        page.click(f"{PANEL} .ir-header")
        page.keyboard.press("Escape")
        where = page.evaluate("""() => {
            const nb = window.jupyterapp.shell.currentWidget.content;
            return {mode: nb.mode, inside: nb.node.contains(document.activeElement), index: nb.activeCellIndex};
        }""")
        assert where["mode"] == "command", where
        assert where["inside"], where
        page.keyboard.press("k")  # command mode: select the cell above
        wait_for(lambda: page.evaluate("() => window.jupyterapp.shell.currentWidget.content.activeCellIndex")
                 == where["index"] - 1, what="JupyterLab's k after Esc")
        assert matches(db) == n
    except Exception:
        page.screenshot(path=str(root / "failure-details.png"))
        print(f"screenshot and JupyterLab log in {root}")
        raise
    finally:
        ctx.close()
