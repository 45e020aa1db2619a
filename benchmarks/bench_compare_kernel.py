"""The compare panel's kernel side per vote, without a browser: where a vote's time goes at 5,000 and 100,000 images.

A fresh catalog (300 demo photographs hard-linked to N files, scanned without thumbnails, as in
``bench_panel.py``) gets a :class:`~imagerank.widgets.ComparePanel` (default strategy ``active``, queue depth 8);
``ready`` is handled, then votes arrive one every ``--pace`` seconds, as from a browser at four presses a second.
For each vote: the time of ``handle_message`` (the kernel's reply to one key press), whether the pairing pool was
reloaded from the catalog during it, and how many thumbnails were decoded on the kernel's own thread.

Run with another checkout's code to compare: ``PYTHONPATH=<checkout> python benchmarks/bench_compare_kernel.py``.
Usage: ``python benchmarks/bench_compare_kernel.py [--sizes 5000 100000] [--votes 40] [--pace 0.25]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def run(root: Path, sources: list[Path], n: int, votes: int, pace: float) -> dict[str, float]:
    import imagerank
    from imagerank.widgets import ComparePanel

    folder = root / f"images-{n}"
    folder.mkdir()
    for i in range(n):
        src = sources[i % len(sources)]
        os.link(src, folder / f"{i:06d}_{src.name}")
    col = imagerank.init(root / f"ws-{n}", folder)
    col.scan(progress=False, thumbnails=False)
    main_builds = [0]
    real_build = col.thumbs.build

    def build(*args, **kwargs):
        if threading.current_thread() is threading.main_thread():
            main_builds[0] += 1
        return real_build(*args, **kwargs)

    col.thumbs.build = build  # type: ignore[method-assign]
    panel = ComparePanel(col)
    panel.send = lambda content, buffers=None: None  # no comm here
    panel.handle_message({"type": "ready"})
    time.sleep(2.0)  # as the browser bench: the panel sits on screen a moment before the first key
    ms, reloads, builds = [], 0, 0
    for _ in range(votes):
        time.sleep(pace)
        p = panel.pairs[0]
        pool, b0 = col.pairs._pool, main_builds[0]
        t = time.perf_counter()
        panel.handle_message({"type": "vote", "pid": p["pid"], "left": p["left"]["id"], "right": p["right"]["id"],
                              "outcome": "left", "ms": 500})
        ms.append((time.perf_counter() - t) * 1000)
        reloads += col.pairs._pool is not pool
        builds += main_builds[0] - b0
    panel.close()
    col.close()
    return {"median": statistics.median(ms), "p90": float(np.percentile(ms, 90)), "max": max(ms),
            "reloads": reloads, "builds": builds, "votes": votes}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[5000, 100_000])
    ap.add_argument("--votes", type=int, default=40)
    ap.add_argument("--pace", type=float, default=0.25, help="seconds between votes (default 0.25)")
    args = ap.parse_args()
    from imagerank.demo import render_demo_images

    with tempfile.TemporaryDirectory(prefix="bench-compare-kernel-") as tmp:
        root = Path(tmp)
        render_demo_images(root / "src", n=300, seed=0, progress=False)
        sources = sorted(p for p in (root / "src").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        print(f"{'images':>9} {'load':>5} {'votes':>6} {'median ms':>10} {'p90 ms':>8} {'max ms':>8} "
              f"{'pool reloads':>13} {'thumbnails on kernel thread':>28}")
        for n in args.sizes:
            load = os.getloadavg()[0]
            r = run(root, sources, n, args.votes, args.pace)
            print(f"{n:>9,} {load:>5.1f} {r['votes']:>6} {r['median']:>10.1f} {r['p90']:>8.1f} {r['max']:>8.1f} "
                  f"{r['reloads']:>13} {r['builds']:>28}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
