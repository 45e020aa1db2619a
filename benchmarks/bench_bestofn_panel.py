"""Compare panel, Python side: milliseconds to handle one judgement message, pairs against best-of-3 and best-of-4.

Each message is what the browser sends after a key press (``vote`` for a pair, ``round`` for a best-of-N round):
the panel records the match through the vote log, refills its queue through the strategy (``active``) and
publishes its state. No browser: :meth:`ComparePanel.handle_message` is called directly, so the figure is the
kernel's work per judgement (the browser has already painted the next pair or round from its queue by then).

Run: ``.venv/bin/python benchmarks/bench_bestofn_panel.py [--images 300] [--votes 40]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from imagerank.demo import make_demo
from imagerank.widgets import ComparePanel


def _timed(fn: Callable[[], None]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--votes", type=int, default=40, help="judgements timed per mode")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        col = make_demo(Path(tmp) / "ws", n=args.images, progress=False)
        panel = ComparePanel(col, strategy="active")
        panel.handle_message({"type": "ready"})

        def pair() -> None:
            p = panel.pairs[0]
            panel.handle_message({"type": "vote", "pid": p["pid"], "left": p["left"]["id"],
                                  "right": p["right"]["id"], "outcome": "left", "ms": 500})

        def rnd() -> None:
            r = panel.rounds[0]
            panel.handle_message({"type": "round", "rid": r["rid"], "ids": [i["id"] for i in r["images"]],
                                  "best": 0, "worst": len(r["images"]) - 1, "ms": 500})

        rows = []
        for size in (2, 3, 4):
            panel.group_size = size
            ms = [_timed(pair if size == 2 else rnd) for _ in range(args.votes)]
            rows.append((size, statistics.median(ms), sorted(ms)[int(0.9 * (len(ms) - 1))]))
        ok = col.doctor().ok
        panel.close()
        col.close()
    print(f"{args.images:,} images, strategy active, {args.votes} judgements per mode; doctor ok: {ok}")
    print("| mode | median ms | p90 ms |\n|---|---|---|")
    for size, med, p90 in rows:
        print(f"| {'pairs' if size == 2 else f'best-of-{size}'} | {med:.1f} | {p90:.1f} |")


if __name__ == "__main__":
    main()
