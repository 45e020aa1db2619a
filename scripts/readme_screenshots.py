"""Make the README's screenshots in a real JupyterLab (headless Debian Chromium, Playwright, as tests/e2e does).

A 60-image demo workspace gets 300 votes from the simulated judge (demo only), then a notebook of plain library
calls shows the compare panel, the leaderboard, two feature plots and the crop editor at 1280x720 (device pixel
ratio 1). Each output is captured as the user sees it, after the panel has sized itself to the window, and saved
as an optimised PNG in docs/screenshots/ (or --out).

Run: ``.venv/bin/python scripts/readme_screenshots.py [--out docs/screenshots]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from labdriver import (  # noqa: E402
    CHROMIUM,
    cell_errors,
    chromium,
    jupyterlab,
    open_notebook,
    run_all,
    write_notebook,
)

CELLS = [
    "%matplotlib inline\nfrom imagerank.demo import open_demo\nfrom imagerank.plots import features as fplots\n"
    "from imagerank.widgets import ComparePanel, CropPanel, LeaderboardView\ncol = open_demo()",
    "ComparePanel(col)",
    "LeaderboardView(col, page_size=10)",
    "col.compute_features(exif=False, progress=False)\nfplots.quality_distributions(col)",
    "fplots.feature_map_plot(col, col.feature_map(source='hashes'), cells=6)",
    "CropPanel(col, col.leaderboard(4)['image_id'].tolist(), aspect='4:5')",
]
#: output file -> (cell index, CSS selector inside that cell's output area)
SHOTS = {
    "compare-panel.png": (1, ".imagerank-compare"),
    "leaderboard.png": (2, ".jp-OutputArea-output"),
    "quality-distributions.png": (3, ".jp-OutputArea-output img"),
    "feature-map.png": (4, ".jp-OutputArea-output img"),
    "crop-editor.png": (5, ".jp-OutputArea-output"),
}


def build_workspace(ws: Path) -> None:
    from imagerank import training
    from imagerank.demo import make_demo

    col = make_demo(ws, n=60, progress=False)
    try:
        training.simulated_votes(col, 300, seed=0)
    finally:
        col.close()


def shoot(page, cell: int, selector: str, dest: Path, *, drag: bool = False) -> None:
    """Scroll cell ``cell`` to the top of the notebook and capture what of its ``selector`` element shows in the
    notebook area (as a user sees it); ``drag`` first draws a box across the middle of the element's image."""
    page.evaluate(f"""() => {{
        const nb = window.jupyterapp.shell.currentWidget.content;
        nb.activeCellIndex = {cell};
        nb.widgets[{cell}].node.scrollIntoView({{block: 'start'}});
    }}""")
    time.sleep(1.5)  # the panel re-measures; thumbnails arrive
    loc = page.locator(f".jp-Notebook .jp-Cell >> nth={cell}").locator(selector).first
    loc.wait_for(state="visible", timeout=60_000)
    if drag:
        img = page.locator(f".jp-Notebook .jp-Cell >> nth={cell}").locator("img").first
        b = img.bounding_box()
        page.mouse.move(b["x"] + 0.15 * b["width"], b["y"] + 0.2 * b["height"])
        page.mouse.down()
        page.mouse.move(b["x"] + 0.8 * b["width"], b["y"] + 0.75 * b["height"], steps=12)
        page.mouse.up()
        time.sleep(0.5)
    if selector.endswith("img"):  # a plot: the whole figure
        loc.screenshot(path=str(dest))
        print(f"  {dest}")
        return
    e = loc.bounding_box()
    area = page.locator(".jp-WindowedPanel-outer").first.bounding_box()
    top, bottom = max(e["y"], area["y"]), min(e["y"] + e["height"], area["y"] + area["height"])
    page.screenshot(path=str(dest), clip={"x": e["x"], "y": top, "width": e["width"], "height": bottom - top})
    print(f"  {dest}")


def optimise(path: Path) -> None:
    """Re-save ``path`` as a PNG with Pillow's optimiser (lossless)."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
    im.save(path, optimize=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"needs Debian's chromium at {CHROMIUM} (apt-get install -y chromium)")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="readme-shots-") as tmp:
        root = Path(tmp)
        print("demo workspace with 300 simulated votes ...")
        build_workspace(root / "ws")
        write_notebook(root / "shots.ipynb", CELLS)
        with jupyterlab(root, env={"IMAGERANK_WORKSPACE": str(root / "ws")}) as url, chromium() as browser:
            ctx = browser.new_context(viewport={"width": 1280, "height": 720}, device_scale_factor=1)
            page = ctx.new_page()
            open_notebook(page, url, "shots.ipynb")
            run_all(page, timeout_ms=300_000)
            errors = cell_errors(page)
            if errors:
                print("cells failed:", *errors, sep="\n  ")
                return 1
            page.wait_for_selector(".imagerank-compare .ir-right .ir-slot img", timeout=60_000)
            page.evaluate("() => window.jupyterapp.commands.execute('application:toggle-left-area')")
            for name, (cell, selector) in SHOTS.items():
                shoot(page, cell, selector, args.out / name, drag=name == "crop-editor.png")
                optimise(args.out / name)
            ctx.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
