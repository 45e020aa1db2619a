"""Drive a real JupyterLab in headless Debian Chromium with Python Playwright (used by tests/e2e and benchmarks).

JupyterLab runs on 127.0.0.1 on a free port, without a token, with fresh settings and workspace folders (so a
developer's layout or extensions never leak in) and ``window.jupyterapp`` exposed for reading the notebook model.
Chromium is Debian's ``/usr/bin/chromium``; Playwright never downloads a browser here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_lab_settings(folder: Path) -> None:
    # No news or update checks (no network here, and no toast over the panel in screenshots).
    target = folder / "@jupyterlab" / "apputils-extension"
    target.mkdir(parents=True, exist_ok=True)
    (target / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}), encoding="utf-8"
    )


@contextmanager
def jupyterlab(
    root: Path, env: dict[str, str] | None = None, timeout: float = 90.0, on_start: Callable[[int], Any] | None = None
) -> Iterator[str]:
    """Run ``jupyter lab`` serving ``root``; yields its base URL. The server and its kernels are stopped after.

    ``on_start`` is called with the server's process id (its kernels are its children).

    Raises:
        RuntimeError: the server did not answer within ``timeout`` seconds (its log is in the message).
    """
    port = free_port()
    settings, workspaces = root / ".lab-settings", root / ".lab-workspaces"
    _write_lab_settings(settings)
    workspaces.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {}), "JUPYTERLAB_SETTINGS_DIR": str(settings),
                "JUPYTERLAB_WORKSPACES_DIR": str(workspaces), "JUPYTER_PLATFORM_DIRS": "1"}
    log_path = root / "jupyterlab.log"
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        "--IdentityProvider.token=", "--ServerApp.password=", "--ServerApp.allow_root=True",
        "--LabApp.expose_app_in_browser=True", f"--ServerApp.root_dir={root}",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=root,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    if on_start is not None:
        on_start(proc.pid)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not start: {log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server we started and everything in its process group (its kernels)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    else:  # the server exited; its kernels may not have
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@contextmanager
def chromium(**launch: Any) -> Iterator[Any]:
    """Headless Debian Chromium through Playwright (never ``playwright install``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, **launch)
        try:
            yield browser
        finally:
            browser.close()


def open_notebook(page: Any, url: str, path: str, timeout_ms: int = 90_000) -> None:
    """Open ``path`` (relative to the server root) and wait until its kernel is idle."""
    page.goto(f"{url}/lab/tree/{path}", wait_until="domcontentloaded", timeout=timeout_ms)
    page.wait_for_function(
        """() => {
            const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
            return !!(w && w.content && w.content.model && k && k.status === 'idle');
        }""",
        timeout=timeout_ms,
    )


def run_all(page: Any, timeout_ms: int = 120_000) -> None:
    """Run every cell of the current notebook and wait until the kernel is idle again with no cell pending."""
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(
        """() => {
            const nb = window.jupyterapp.shell.currentWidget;
            const k = nb.sessionContext.session.kernel;
            const cells = nb.content.widgets;
            const pending = cells.some(c => c.model.type === 'code' &&
                (c.model.executionCount === null || (c.promptNode && c.promptNode.textContent.includes('*'))));
            return k.status === 'idle' && !pending;
        }""",
        timeout=timeout_ms,
        polling=250,
    )


def notebook_shape(page: Any) -> dict[str, Any]:
    """The current notebook's cell types in order, its active cell index and whether it has unsaved changes."""
    return page.evaluate(
        """() => {
            const nb = window.jupyterapp.shell.currentWidget;
            const cells = nb.content.model.cells;
            const types = [];
            for (let i = 0; i < cells.length; i++) types.push(cells.get(i).type);
            return {types, active: nb.content.activeCellIndex, mode: nb.content.mode};
        }"""
    )


def cell_errors(page: Any) -> list[str]:
    """Error outputs of the current notebook's cells (empty when every cell ran cleanly)."""
    return page.evaluate(
        """() => {
            const nb = window.jupyterapp.shell.currentWidget;
            const out = [];
            const cells = nb.content.model.cells;
            for (let i = 0; i < cells.length; i++) {
                const c = cells.get(i);
                if (c.type !== 'code') continue;
                const outputs = c.outputs;
                for (let j = 0; j < outputs.length; j++) {
                    const o = outputs.get(j).toJSON();
                    if (o.output_type === 'error') out.push(`${o.ename}: ${o.evalue}`);
                }
            }
            return out;
        }"""
    )


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``predicate`` every 0.1 s until it returns something truthy (returned), or fail after ``timeout`` s.

    Raises:
        AssertionError: naming ``what`` was waited for.
    """
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)
    return value


def write_notebook(path: Path, sources: list[str]) -> None:
    """Write an nbformat 4.5 notebook of code cells with these sources (a Python 3 kernel)."""
    cells = [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [],
              "source": src} for i, src in enumerate(sources)]
    nb = {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                      "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb), encoding="utf-8")


@contextmanager
def demo_lab(root: Path, notebook: str, sources: list[str], n_images: int) -> Iterator[tuple[str, Path]]:
    """A demo workspace of ``n_images`` at ``root / "ws"``, ``root / "notebooks" / notebook`` with these code cells,
    and JupyterLab serving ``root`` with ``IMAGERANK_WORKSPACE`` set; yields ``(url, workspace)``."""
    from imagerank.demo import make_demo

    ws = root / "ws"
    make_demo(ws, n=n_images, progress=False).close()
    (root / "notebooks").mkdir()
    write_notebook(root / "notebooks" / notebook, sources)
    with jupyterlab(root, env={"IMAGERANK_WORKSPACE": str(ws)}) as url:
        yield url, ws


@contextmanager
def repo_notebook_lab(root: Path, notebook: str = "notebooks/01_vote.ipynb", n_images: int = 40
                      ) -> Iterator[tuple[str, Path]]:
    """A demo workspace of ``n_images`` at ``root / "demo-ws"``, the repository's ``notebook`` copied to the same
    path under ``root``, and JupyterLab serving ``root`` with ``IMAGERANK_WORKSPACE`` set; yields
    ``(url, workspace)``."""
    from imagerank.demo import make_demo

    ws = root / "demo-ws"
    make_demo(ws, n=n_images, progress=False).close()
    (root / notebook).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / notebook, root / notebook)
    with jupyterlab(root, env={"IMAGERANK_WORKSPACE": str(ws)}) as url:
        yield url, ws


def catalog_rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` on the catalog ``db``, read through a read-only connection (the kernel keeps writing)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def match_log(db: Path) -> list[tuple[str, int, list[int], list[int]]]:
    """(kind, undone, image ids by screen position, ranks) of every match in the catalog ``db``, in order."""
    entries: dict[int, list[tuple[int, int]]] = {}
    for mid, image_id, rank in catalog_rows(db, "SELECT match_id, image_id, rank FROM match_entries "
                                                "ORDER BY match_id, position"):
        entries.setdefault(mid, []).append((image_id, rank))
    return [(kind, undone, [e[0] for e in entries.get(mid, [])], [e[1] for e in entries.get(mid, [])])
            for mid, kind, undone in catalog_rows(db, "SELECT id, kind, undone FROM matches ORDER BY id")]


@contextmanager
def notebook_page(url: str, path: str, root: Path, *, failure: str = "failure.png",
                  viewport: tuple[int, int] = (1400, 1000)) -> Iterator[Any]:
    """A Chromium page with notebook ``path`` open and every cell run; yields the page. When the block fails, a
    screenshot ``root / failure`` is taken (the JupyterLab log is in ``root`` too) and the error goes on."""
    with chromium() as browser:
        page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        try:
            open_notebook(page, url, path)
            run_all(page)
            yield page
        except Exception:
            page.screenshot(path=str(root / failure))
            print(f"screenshot and JupyterLab log in {root}")
            raise
