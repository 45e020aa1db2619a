"""The generation board in a real JupyterLab (headless Debian Chromium, Python Playwright).

A notebook made for the test runs the example steps on the local ComfyUI emulator (as 06_generation does) and shows a
``GenerationBoard``: its columns name the steps, every finished candidate's thumbnail is drawn, the figures use
one decimal, and the board is themed by the panels' shared stylesheet (panel.css)."""

from __future__ import annotations

from labdriver import cell_errors, demo_lab, notebook_page, wait_for

CELLS = [
    "import os\nimport imagerank\nfrom imagerank.generation import steps\n"
    "from imagerank.generation.emulator import comfyui_url\nfrom imagerank.generation.runner import Runner\n"
    "from imagerank.widgets import GenerationBoard",
    "col = imagerank.open(os.environ['IMAGERANK_WORKSPACE'])\nsteps.add_example_steps(col)\n"
    "runner = Runner(col, [comfyui_url(col.root / 'comfyui-emulator')], max_jobs=6, until_idle=True).start()\n"
    "report = runner.join(timeout=300)",
    "board = GenerationBoard(col, runner)\nboard.refresh()\nboard",
]


def test_board_draws_steps_and_thumbnails(tmp_path):
    with demo_lab(tmp_path, "board.ipynb", CELLS, 6) as (url, _ws), \
            notebook_page(url, "notebooks/board.ipynb", tmp_path) as page:
        assert cell_errors(page) == []
        board = page.locator(".imagerank-board")
        board.wait_for(timeout=120_000)
        wait_for(lambda: page.evaluate(
            "() => { const i = document.querySelectorAll('.imagerank-board .ir-b-item img');"
            " return i.length > 0 && [...i].every((x) => x.complete && x.naturalWidth > 0); }"),
            timeout=60, what="every candidate's thumbnail drawn")
        heads = board.locator(".ir-b-step").all_inner_texts()
        assert heads[0] == "base"
        caption = board.locator(".ir-b-item figcaption").first.inner_text()
        assert "μ" in caption
        assert "." in caption.split("μ")[1].split("σ")[0]  # one decimal, not "–"
        colour = page.evaluate("() => getComputedStyle(document.querySelector('.imagerank-board'))"
                               ".getPropertyValue('--ir-accent').trim()")
        assert colour != ""  # panel.css's theme colours reach the board
        page.screenshot(path=str(tmp_path / "board.png"))
