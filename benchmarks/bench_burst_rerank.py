"""How many burst choices the learned rerank needs, and what it costs.

A workspace over two generated shoots (:func:`imagerank.cull.shoot.render_burst_shoot`): the person picks in
``--train-bursts`` bursts of shoot A (the scripted picker of :func:`~imagerank.cull.shoot.simulated_burst_picks`:
the brightest, most saturated frame, with judgement noise ``--noise``), the reranker is trained on the first n
picks (:func:`imagerank.training.burst.train_burst_reranker`) and shoot B, which it never saw, is reranked. Printed
per n: the share of B's bursts whose pick is the frame the picker prefers (the technical score alone, then the
rerank), the clusters the rerank changed, and the seconds to train and to rerank.

    python benchmarks/bench_burst_rerank.py [--train-bursts 60] [--test-bursts 30] [--noise 0.5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import imagerank
from imagerank.cull import cull
from imagerank.cull.refine import burst_groups
from imagerank.cull.rerank import Reranker
from imagerank.cull.shoot import read_shoot_manifest, render_burst_shoot, simulated_burst_picks
from imagerank.training.burst import train_burst_reranker


def agreement(ir: pd.DataFrame, folder: Path) -> float:
    """Share of groups whose pick is the frame with the highest appeal."""
    frames = read_shoot_manifest(folder)
    hits = [ir["path"].iloc[g.pick] == max((ir["path"].iloc[k] for k in g.rows), key=lambda p: frames[p].appeal)
            for g in burst_groups(ir)]
    return float(np.mean(hits))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-bursts", type=int, default=60)
    ap.add_argument("--test-bursts", type=int, default=30)
    ap.add_argument("--noise", type=float, default=0.5, help="SD of the picker's noise on the appeal")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        a, b = base / "a", base / "b"
        render_burst_shoot(a, args.train_bursts, seed=11)
        render_burst_shoot(b, args.test_bursts, seed=12)
        col = imagerank.init(base / "ws", [a, b])
        col.scan(progress=False, extractors=("cheap",))
        ir_a = cull(a, None, use_exiftool=False)
        ir_b = cull(b, None, use_exiftool=False)
        n_groups = len(burst_groups(ir_a))
        tech = agreement(ir_b, b)
        print(f"picker: brighter and more saturated, noise {args.noise:g}; up to {n_groups} picks in shoot A, "
              f"{len(burst_groups(ir_b))} bursts in shoot B")
        print(f"{'picks':>6} {'tech alone':>11} {'reranked':>9} {'changed':>8} {'train s':>8} {'rerank s':>9}")
        for n in (5, 10, 20, 30, 45, 60):
            if n > n_groups:
                break
            col.votes.undo_source("simulated")
            simulated_burst_picks(col, ir_a, a, n=n, noise=args.noise, seed=0)
            t0 = time.perf_counter()
            train_burst_reranker(col, sources=("simulated",))
            t1 = time.perf_counter()
            out = Reranker.from_workspace(col, b)(ir_b)
            t2 = time.perf_counter()
            print(f"{n:>6} {tech:>11.2f} {agreement(out, b):>9.2f} {out.attrs['rerank']['changed']:>8} "
                  f"{t1 - t0:>8.2f} {t2 - t1:>9.2f}")
        col.close()


if __name__ == "__main__":
    main()
