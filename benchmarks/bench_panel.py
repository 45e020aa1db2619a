"""Compare panel in a real browser: key press -> next pair painted, and kernel memory, at 5,000 and 100,000 images.

JupyterLab (127.0.0.1, free port, fresh settings) serves a copy of notebooks/01_vote.ipynb; headless Debian
Chromium (Playwright, 1400x1000 viewport) runs it, focuses the panel and presses keys at a steady pace. The panel
records, for every key press, ``performance.now()``-based times: the key event's timestamp and the moment after
the frame that shows the next pair (requestAnimationFrame, then a message task, i.e. after paint). Images are
decoded (``img.decode()``) before they are placed, so a paint is a real paint of pixels.

Catalogs: 300 demo photographs (640–1024 px JPEG/PNG) hard-linked under distinct names to 5,000 and 100,000
files, scanned (stat only); thumbnails are built on demand by the panel as pairs enter its queue, as in a fresh
catalog. The pairing strategy is the workspace default (``active``).

Kernel memory is the resident set size of the notebook's kernel process after the presses. "waited" counts the
presses that found the browser's own queue empty (the next pair had to come from Python): at four presses a second
a kernel that cannot keep up shows here first, then as presses never painted (a press while nothing is shown
casts no vote). Every run starts from a fresh copy of the scanned catalog (no thumbnails, no votes).

``--code LABEL=DIR`` (repeatable) runs the kernel with ``PYTHONPATH=DIR``, i.e. another checkout of the project
(``git archive <commit> | tar -x -C DIR``), interleaved with the others on the same catalogs, so old and new are
compared under the same machine load; the default is this checkout only. The load average (1 min) at the start
of each run is printed with it.

``--load`` runs each size a second time with the kernel busy, as when a training job runs in the same kernel: a
background thread there sorts 2 million random numbers back to back (NumPy, one core, the GIL released) while
the keys are pressed.

Run: ``.venv/bin/python benchmarks/bench_panel.py [--presses 60] [--pace 0.25] [--sizes 5000 100000] [--load]
[--code old=../old-checkout --code new=.]``.
Targets (issue 3): median <= 20 ms and p90 <= 35 ms at both sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from labdriver import CHROMIUM, chromium, jupyterlab, open_notebook, run_all  # noqa: E402

PANEL = ".imagerank-compare"


def build_catalog(root: Path, sources: list[Path], n: int) -> Path:
    """A workspace over ``n`` files (hard links to ``sources``, round robin), scanned without thumbnails."""
    import imagerank

    folder = root / f"images-{n}"
    folder.mkdir(parents=True)
    for i in range(n):
        src = sources[i % len(sources)]
        os.link(src, folder / f"{i:06d}_{src.name}")
    ws = root / f"ws-{n}"
    col = imagerank.init(ws, folder)
    t0 = time.perf_counter()
    report = col.scan(progress=False, thumbnails=False)
    print(f"  catalog of {n:,}: {report.added:,} added in {time.perf_counter() - t0:.1f} s")
    col.close()
    return ws


def kernel_rss(server_pid: int) -> int | None:
    """RSS in bytes of the ipykernel process started by the server (None when not found)."""
    import psutil

    for p in psutil.Process(server_pid).children(recursive=True):
        try:
            if any("ipykernel" in part for part in p.cmdline()):
                return int(p.memory_info().rss)
        except psutil.Error:
            continue
    return None


#: A cell appended to the notebook under --load: CPU work in the kernel beside the panel, like a training job.
LOAD_CELL = ("import threading, numpy as np\n"
             "threading.Thread(target=lambda: [np.sort(np.random.rand(2_000_000)) for _ in iter(int, 1)],\n"
             "                 daemon=True, name='bench-load').start()")


def run_one(root: Path, pristine: Path, presses: int, pace: float, shots: Path | None, load: bool = False,
            code: tuple[str, Path] = ("this", REPO)) -> dict[str, float]:
    label, code_dir = code
    tag = f"{pristine.name}-{label}{'-loaded' if load else ''}"
    ws = root / f"ws-{tag}"
    shutil.copytree(pristine, ws)  # a fresh catalog each run: no thumbnails, no votes
    lab_root = root / f"lab-{tag}"
    (lab_root / "notebooks").mkdir(parents=True)
    nb_path = lab_root / "notebooks" / "01_vote.ipynb"
    shutil.copy(code_dir / "notebooks" / "01_vote.ipynb", nb_path)
    if load:
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "bench-load", "metadata": {},
                            "outputs": [], "source": LOAD_CELL})
        nb_path.write_text(json.dumps(nb), encoding="utf-8")
    server_pid: list[int] = []
    env = {"IMAGERANK_WORKSPACE": str(ws),
           "PYTHONPATH": os.pathsep.join(p for p in (str(code_dir), os.environ.get("PYTHONPATH", "")) if p)}
    load_avg = os.getloadavg()[0]
    with jupyterlab(lab_root, env=env, on_start=server_pid.append) as url, \
            chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        t0 = time.perf_counter()
        open_notebook(page, url, "notebooks/01_vote.ipynb")
        run_all(page, timeout_ms=600_000)
        page.wait_for_selector(f"{PANEL} .ir-left .ir-slot img", timeout=120_000)
        page.wait_for_selector(f"{PANEL} .ir-right .ir-slot img", timeout=120_000)
        ready_s = time.perf_counter() - t0
        page.locator(PANEL).scroll_into_view_if_needed()
        page.click(f"{PANEL} .ir-header")
        time.sleep(2.0)  # let the queue fill (thumbnails of the first pairs are built on demand)
        keys = ["ArrowLeft", "ArrowRight", "1", "2"]
        for i in range(presses):
            page.keyboard.press(keys[i % len(keys)])
            time.sleep(pace)
        time.sleep(2.0)
        paints = page.evaluate(f"() => document.querySelector('{PANEL}').irPaints")
        if shots is not None:
            page.screenshot(path=str(shots / f"panel-{tag}.png"))
        rss = kernel_rss(server_pid[0])
        deadline = time.monotonic() + 60
        stored = 0
        while time.monotonic() < deadline:
            con = sqlite3.connect(f"file:{ws / 'imagerank.db'}?mode=ro", uri=True)
            stored = con.execute("SELECT COUNT(*) FROM matches WHERE undone=0").fetchone()[0]
            con.close()
            if stored >= presses:
                break
            time.sleep(0.5)
    ms = [p["ms"] for p in paints]
    # "ahead" is recorded by this version's compare.js; an older checkout's panel does not say
    waited = sum(1 for p in paints if p.get("ahead") == 0) if all("ahead" in p for p in paints) else -1
    return {
        "presses": presses, "painted": len(ms), "waited": waited + presses - len(ms) if waited >= 0 else -1,
        "stored": stored,
        "ready_s": ready_s, "load": load_avg,
        "median": statistics.median(ms) if ms else float("nan"),
        "p90": float(np.percentile(ms, 90)) if ms else float("nan"),
        "max": max(ms) if ms else float("nan"),
        "rss_mb": (rss or 0) / 2**20,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--presses", type=int, default=60)
    ap.add_argument("--pace", type=float, default=0.25, help="seconds between key presses (default 0.25)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[5000, 100_000])
    ap.add_argument("--screenshots", type=Path, default=None, help="folder for a screenshot per run")
    ap.add_argument("--load", action="store_true", help="also run each size with CPU work in the kernel")
    ap.add_argument("--code", action="append", default=[], metavar="LABEL=DIR",
                    help="run the kernel on this checkout (repeatable; default: this one)")
    args = ap.parse_args()
    codes = [(c.split("=", 1)[0], Path(c.split("=", 1)[1]).resolve()) for c in args.code] or [("this", REPO)]
    for label, d in codes:
        if not (d / "imagerank" / "widgets" / "compare.py").exists():
            print(f"--code {label}={d}: not a checkout of this project")
            return 2
    if not Path(CHROMIUM).exists():
        print(f"needs Debian's chromium at {CHROMIUM} (apt-get install -y chromium)")
        return 2
    from imagerank.demo import render_demo_images

    with tempfile.TemporaryDirectory(prefix="bench-panel-") as tmp:
        root = Path(tmp)
        print("rendering 300 demo photographs ...")
        render_demo_images(root / "src", n=300, seed=0, progress=False)
        sources = sorted(p for p in (root / "src").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        rows = []
        for k, n in enumerate(args.sizes):
            ws = build_catalog(root / f"run{k}", sources, n)
            for state in ("idle", "loaded") if args.load else ("idle",):
                for code in codes:
                    print(f"  {n:,} images, kernel {state}, code {code[0]}: {args.presses} presses, one every "
                          f"{args.pace * 1000:.0f} ms ...")
                    r = run_one(root / f"run{k}", ws, args.presses, args.pace, args.screenshots,
                                load=state == "loaded", code=code)
                    rows.append((n, state, code[0], r))
                    print(f"    median {r['median']:.1f} ms, p90 {r['p90']:.1f} ms, {r['painted']} painted, "
                          f"{r['waited']} waited (load average {r['load']:.1f})", flush=True)
        print()
        print("key press -> next pair painted (headless Chromium, JupyterLab, 1400x1000), kernel RSS after")
        print(f"{'images':>9} {'kernel':>7} {'code':>6} {'load':>5} {'presses':>8} {'painted':>8} {'waited':>7} "
              f"{'stored':>7} {'median ms':>10} {'p90 ms':>8} {'max ms':>8} {'kernel RSS MB':>14} "
              f"{'panel ready s':>14}")
        for n, state, label, r in rows:
            print(f"{n:>9,} {state:>7} {label:>6} {r['load']:>5.1f} {r['presses']:>8} {r['painted']:>8} "
                  f"{r['waited']:>7} {r['stored']:>7} {r['median']:>10.1f} {r['p90']:>8.1f} {r['max']:>8.1f} "
                  f"{r['rss_mb']:>14.0f} {r['ready_s']:>14.1f}")
        ok = all(r["median"] <= 20 and r["p90"] <= 35 and r["painted"] >= args.presses
                 for _, _, label, r in rows if label == codes[-1][0])
        print(f"targets (median <= 20 ms, p90 <= 35 ms, every press painted), code {codes[-1][0]}:",
              "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
