"""The voting notebook as a Voilà app, as `make app` serves it (voila.json at the repository root, the `imagerank`
template from share/jupyter, the notebook trusted first): the page never requests a host outside the machine,
the server does not call the notebook untrusted, the panel shows a pair, and the text does not talk about
JupyterLab's keys."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from labdriver import chromium, free_port

REPO = Path(__file__).resolve().parents[2]
PANEL = ".imagerank-compare"


def test_voila_page_is_offline_trusted_and_reads_right(tmp_path):
    from imagerank.demo import make_demo

    make_demo(tmp_path / "ws", n=20, progress=False).close()
    nb = tmp_path / "01_vote.ipynb"
    shutil.copy(REPO / "notebooks" / "01_vote.ipynb", nb)
    env = {**os.environ, "IMAGERANK_WORKSPACE": str(tmp_path / "ws"), "JUPYTER_DATA_DIR": str(tmp_path / "data"),
           "JUPYTER_PATH": str(REPO / "share" / "jupyter")}
    subprocess.run([sys.executable, "-m", "jupyter", "trust", str(nb)], env=env, check=True, capture_output=True)
    port = free_port()
    log_path = tmp_path / "voila.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "voila", str(nb), "--no-browser", "--Voila.ip=127.0.0.1",
                                 f"--port={port}"], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/voila/static/", timeout=1)
                break
            except OSError as e:
                if getattr(e, "code", None) is not None:  # the server answered (a 404 is an answer)
                    break
            assert proc.poll() is None, log_path.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "Voilà did not start"
            time.sleep(0.3)
        outside: list[str] = []
        console: list[str] = []
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(
                (f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", "data:", "blob:")) else None)
            page.goto(f"http://127.0.0.1:{port}/", wait_until="load", timeout=120_000)
            page.wait_for_selector(f"{PANEL} .ir-left .ir-slot img", timeout=120_000)
            time.sleep(1.0)
            text = page.evaluate("() => document.body.innerText")
            page.screenshot(path=str(tmp_path / "voila.png"))
        assert outside == []
        # The page logs no error. Its only warnings are Voila's known version notes (its page ships JupyterLab
        # 4.2.5 modules while its own widget manager and jupyterlab_widgets were built against newer ones,
        # voila-dashboards/voila#1514); webpack falls back to the loaded module and the widgets work.
        errors = [m for m in console if m.startswith("error:")]
        assert errors == []
        other = [m for m in console if m.startswith("warning:") and "atisf" not in m]
        assert other == []
        assert "back to JupyterLab" not in text
        assert "Esc" in text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    assert "not trusted" not in log_path.read_text(errors="replace")
