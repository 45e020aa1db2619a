"""Core figures of issue 2: scan, rescan, vote latency and thumbnail throughput, printed side by side.

1. First scan of 100,000 files (tiny dummy files: discovery is stat-only, ``thumbnails=False``); target <= 10 s.
2. Rescan with nothing changed; target <= 2 s.
3. One vote with 100,000 images in the catalog: rate (OpenSkill) + persist (SQLite, synchronous=FULL) + next
   pair (``spec`` strategy), median over ~300 votes; target <= 5 ms.
4. Thumbnails per core on 2048-px JPEGs (one process): the thumbnail pass (``draft()`` decode, EXIF transpose,
   resize, JPEG write) beside a full decode of the same files (``Image.open().load()``, no draft).

Everything happens in a temporary folder that is removed afterwards.

Run:        python benchmarks/bench_core.py            (~1-2 min on 2 cores)
Quick run:  python benchmarks/bench_core.py --quick    (10,000 files, 100 votes, 12 JPEGs)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import imagerank
from imagerank.media import DecodeJob, process_job


def _make_dummy_files(root: Path, n: int, per_folder: int = 1000) -> None:
    """``n`` tiny files ``f<k>.jpg`` in folders of ``per_folder`` (contents need not decode: no thumbnails)."""
    payload = b"\xff\xd8\xff\xe0 not really a jpeg"
    for k in range(n):
        if k % per_folder == 0:
            folder = root / f"d{k // per_folder:04d}"
            folder.mkdir(parents=True)
        with open(folder / f"f{k:06d}.jpg", "wb") as fh:
            fh.write(payload)


def _make_big_jpegs(folder: Path, n: int, side: int = 2048) -> list[Path]:
    """``n`` photo-like ``side`` x (3/4 side) JPEGs (quality 90): the demo's procedural scenes plus sensor-like
    grain (SD 3), about 0.3-0.6 MB each, the entropy load of a well-exposed camera JPEG at this size."""
    from imagerank.demo import _grain, _paint

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    paths = []
    for k in range(n):
        im = _grain(rng, _paint(rng, (side, side * 3 // 4)), 3.0)
        p = folder / f"big_{k:03d}.jpg"
        im.save(p, "JPEG", quality=90)
        paths.append(p)
    return paths


def bench_scan(tmp: Path, n_files: int) -> tuple[imagerank.Collection, float, float]:
    images = tmp / "many"
    t = time.perf_counter()
    _make_dummy_files(images, n_files)
    print(f"  (made {n_files:,} dummy files in {time.perf_counter() - t:.1f} s)")
    col = imagerank.init(tmp / "ws", images, strategy="spec")
    t = time.perf_counter()
    rep = col.scan(thumbnails=False, progress=False)
    first = time.perf_counter() - t
    if rep.added != n_files:
        raise RuntimeError(f"first scan should add {n_files} files: {rep}")
    t = time.perf_counter()
    rep = col.scan(thumbnails=False, progress=False)
    again = time.perf_counter() - t
    if rep.unchanged != n_files or rep.added:
        raise RuntimeError(f"rescan should find {n_files} unchanged files: {rep}")
    return col, first, again


def bench_votes(col: imagerank.Collection, n_votes: int) -> dict[str, float]:
    col.start_session(voter="bench", strategy="spec", seed=0)
    col.next_pairs(1)  # load the pool once (as a panel does on open)
    outcomes = ["left", "right", "draw", "left", "right"]
    total, vote_t, pair_t = [], [], []
    pair = col.next_pairs(1)[0]
    for k in range(n_votes):
        t0 = time.perf_counter()
        col.vote(pair[0], pair[1], outcomes[k % len(outcomes)])  # type: ignore[arg-type]
        t1 = time.perf_counter()
        pair = col.next_pairs(1)[0]
        t2 = time.perf_counter()
        total.append(t2 - t0)
        vote_t.append(t1 - t0)
        pair_t.append(t2 - t1)
    if not col.doctor().ok:
        raise RuntimeError(f"doctor failed after the votes: {col.doctor()}")
    ms = 1000.0
    return {
        "median": statistics.median(total) * ms,
        "p90": float(np.percentile(total, 90)) * ms,
        "vote_median": statistics.median(vote_t) * ms,
        "pair_median": statistics.median(pair_t) * ms,
    }


def bench_thumbnails(tmp: Path, n: int) -> dict[str, float]:
    paths = _make_big_jpegs(tmp / "big", n)
    # decode-only: full-resolution decode, no draft (what a naive thumbnailer pays before resizing)
    t = time.perf_counter()
    for p in paths:
        with Image.open(p) as im:
            im.load()
    decode = (time.perf_counter() - t) / n
    # the thumbnail pass, one process: draft decode + transpose + resize + JPEG write
    out = tmp / "thumbs"
    jobs = [DecodeJob(k, str(p), "fp", str(out / f"{k}.jpg"), thumb_size=512) for k, p in enumerate(paths)]
    t = time.perf_counter()
    for job in jobs:
        res = process_job(job)
        if not (res.ok and res.thumb_written):
            raise RuntimeError(f"thumbnail failed: {res}")
    thumb = (time.perf_counter() - t) / n
    size_kb = sum(p.stat().st_size for p in paths) / n / 1000
    return {"decode_ms": decode * 1000, "thumb_ms": thumb * 1000, "size_kb": size_kb}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10,000 files, 100 votes, 12 JPEGs")
    args = ap.parse_args(argv)
    n_files, n_votes, n_jpegs = (10_000, 100, 12) if args.quick else (100_000, 300, 40)
    tmp = Path(tempfile.mkdtemp(prefix="imagerank-bench-"))
    try:
        print(f"imagerank core benchmark ({'quick' if args.quick else 'full'}; {os.cpu_count()} cores, "
              f"Python {sys.version.split()[0]})")
        col, first, again = bench_scan(tmp, n_files)
        votes = bench_votes(col, n_votes)
        col.close()
        th = bench_thumbnails(tmp, n_jpegs)
        scale = 100_000 / n_files
        full = not args.quick

        def row(label: str, value: str, target: str = "") -> None:
            print(f"{label:<56}{value:>16}{target:>10}")

        print()
        row("figure", "measured", "target")
        row(f"first scan of {n_files:,} files (stat only)", f"{first:.2f} s", "<= 10 s" if full else "")
        row(f"rescan, nothing changed ({n_files:,} files)", f"{again:.2f} s", "<= 2 s" if full else "")
        if args.quick:
            row("  linear estimate for 100,000: first / rescan", f"{first * scale:.1f} / {again * scale:.1f} s")
        row(f"vote: rate + persist + next pair, median of {n_votes}", f"{votes['median']:.2f} ms", "<= 5 ms")
        row("  p90", f"{votes['p90']:.2f} ms")
        row("  rate + persist (median)", f"{votes['vote_median']:.2f} ms")
        row("  next pair, spec strategy (median)", f"{votes['pair_median']:.2f} ms")
        row(f"full decode, 2048x1536 JPEG ({n_jpegs} files, {th['size_kb']:.0f} KB avg)",
            f"{th['decode_ms']:.1f} ms = {1000 / th['decode_ms']:.0f}/s")
        row("thumbnail 512 px of the same, one core", f"{th['thumb_ms']:.1f} ms = {1000 / th['thumb_ms']:.0f}/s")
        row("  thumbnail time / full decode time", f"{th['thumb_ms'] / th['decode_ms']:.2f} x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
