"""Plans in plain words: how fast the rule parser reads intents, and how long a preview and a run take.

1. Parse: the rule parser's :data:`~imagerank.cull.intents.rules.EXAMPLES` (every kind of phrasing), ``--repeat``
   times; intents per second.
2. A demo workspace of ``--n`` images (:func:`imagerank.demo.make_demo`): the selection frame cold (the cull
   extracts every file into ``cache/cull.sqlite``) and warm (cache hits: the walk, the passes and the join), then the
   preview and the run of one intent (select, burst picks, sort, limit, label, export by hard link).

Usage::

    python benchmarks/bench_plan.py [--n 300] [--repeat 50]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from imagerank.cull.intents import execute, parse_rules, preview, selection_frame
from imagerank.cull.intents.rules import EXAMPLES
from imagerank.demo import make_demo

INTENT = ("keepers, best of each burst, no duplicates, sort by sharpness, at most 50, label them flag, "
          "hardlink to picks")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="demo images")
    ap.add_argument("--repeat", type=int, default=50, help="passes over the phrasing table")
    a = ap.parse_args()
    texts = list(EXAMPLES)
    t0 = time.perf_counter()
    for _ in range(a.repeat):
        for t in texts:
            parse_rules(t)
    dt = time.perf_counter() - t0
    print(f"rule parser: {len(texts) * a.repeat / dt:,.0f} intents/s ({len(texts)} example intents x {a.repeat})")
    tmp = Path(tempfile.mkdtemp(prefix="bench_plan_"))
    try:
        col = make_demo(tmp / "ws", n=a.n, progress=False)
        t0 = time.perf_counter()
        selection_frame(col)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        selection_frame(col)
        warm = time.perf_counter() - t0
        plan = parse_rules(INTENT).plan
        if plan is None:
            raise SystemExit(f"the benchmark intent is not understood: {INTENT!r}")
        t0 = time.perf_counter()
        shown = preview(plan, col)
        t_preview = time.perf_counter() - t0
        t0 = time.perf_counter()
        done = execute(plan, col)
        t_run = time.perf_counter() - t0
        print(f"selection frame, {a.n} images: cold {cold:.2f} s (cull extraction), warm {warm:.2f} s")
        print(f"preview: {t_preview:.2f} s ({len(shown.selection)} selected); run: {t_run:.2f} s "
              f"(labelled {done.result['labelled']}, exported {done.result['exported']})")
        col.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
