"""Cull throughput: files per second for a shoot of JPEGs and one of RAW files, cold and warm cache, beside a naive
pipeline in the same run, and peak memory.

1. JPEGs: ``--unique`` photo-like JPEGs (``--size``, quality 90) hard-linked to ``--n`` names (the per-file work —
   read, digest, EXIF, decode, features — is the same for a link as for a distinct file; the exact-duplicate pass
   then trashes the copies, which costs nothing).
2. RAW: every sample of ``../shared/data/raw`` hard-linked round-robin to ``--n`` names (skipped when absent).

For each: ``cull`` with a fresh cache file (cold), then again with it (warm: only the passes and the artifacts),
and the naive pipeline: every file fully decoded by Pillow at full size (RAW: the largest embedded JPEG, found by
the same scan, fully decoded), then the same quality metrics and hashes on the full-size image, in the same
process pool. Ratio = cull cold files/s / naive files/s. Peak memory: the largest resident set of this process and
of any worker (``getrusage``'s ``ru_maxrss``).

Usage::

    python benchmarks/bench_cull.py [--n 2000] [--unique 200] [--size 3000x2000] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from imagerank._util.procs import imap_processes
from imagerank.cull import cull
from imagerank.cull.ir import RAW_EXTENSIONS
from imagerank.cull.preview import largest_jpeg
from imagerank.features.hashing import file_digest, hash_image
from imagerank.features.quality import quality_metrics
from imagerank.media.decode import pillow_limit_lifted

RAW_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "raw"


def make_photos(folder: Path, n: int, size: tuple[int, int], seed: int = 0) -> list[Path]:
    """``n`` photo-like JPEGs (smooth colour field, shapes, grain) with a DateTimeOriginal each, quality 90."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    out = []
    for i in range(n):
        im = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), "RGB").resize(
            (w, h), Image.Resampling.BILINEAR)
        d = ImageDraw.Draw(im)
        for _ in range(10):
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            box = [x0, y0, x0 + int(rng.integers(50, w // 3)), y0 + int(rng.integers(50, h // 3))]
            d.ellipse(box, fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        a = np.asarray(im, dtype=np.int16)
        a += rng.integers(-5, 6, (h, 1, 1), dtype=np.int16)  # cheap grain: a row pattern
        exif = Image.Exif()
        exif.get_ifd(0x8769)[0x9003] = f"2024:06:01 10:{i // 60 % 60:02d}:{i % 60:02d}"
        p = folder / f"src_{i:04d}.jpg"
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB").save(p, quality=90, exif=exif)
        out.append(p)
    return out


def link_to(sources: list[Path], folder: Path, n: int) -> None:
    """Hard-link ``sources`` round-robin to ``n`` names under ``folder`` (keeping each suffix)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        s = sources[i % len(sources)]
        os.link(s, folder / f"IMG_{i:05d}{s.suffix}")


def naive_one(path: str) -> int:
    """The naive pipeline for one file: a full Pillow decode at full size, then metrics, hashes and digest."""
    try:
        with pillow_limit_lifted():
            if os.path.splitext(path)[1].lower() in RAW_EXTENSIONS:
                data, _ = largest_jpeg(Path(path).read_bytes())
                if data is None:
                    return 0
                import io

                im = Image.open(io.BytesIO(data))
            else:
                im = Image.open(path)
            with im:
                rgb = im.convert("RGB")
        grey = rgb.convert("L")
        quality_metrics(grey)
        hash_image(grey)
        file_digest(path)
        return 1
    except Exception:
        return 0


def _rss_mb() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return me, kids


def bench(name: str, folder: Path, n: int, workers: int, work: Path) -> None:
    """Print cold, warm and naive files/s for the shoot in ``folder``."""
    cache = work / f"{name}.sqlite"
    t0 = time.perf_counter()
    df = cull(folder, work / f"out_{name}_cold", cache=cache, workers=workers)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    warm_df = cull(folder, work / f"out_{name}_warm", cache=cache, workers=workers)
    warm = time.perf_counter() - t0
    paths = sorted(str(p) for p in folder.iterdir())
    t0 = time.perf_counter()
    decoded = sum(imap_processes(naive_one, paths, workers=workers, progress=False, desc="naive"))
    naive = time.perf_counter() - t0
    statuses = df["status"].value_counts().to_dict()
    reread = warm_df.attrs["cull"]["extracted"]
    print(f"{name}: {n} files, {workers} workers; statuses {statuses}; the warm run read {reread} files")
    print(f"  cull cold   {n / cold:8.1f} files/s  ({cold:6.1f} s)")
    print(f"  cull warm   {n / warm:8.1f} files/s  ({warm:6.1f} s)")
    print(f"  naive       {n / naive:8.1f} files/s  ({naive:6.1f} s; {decoded} decoded)")
    print(f"  ratio cull cold / naive = {naive / cold:.1f}x")
    me, kids = _rss_mb()
    print(f"  peak RSS so far: this process {me:.0f} MB, largest worker {kids:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="files per shoot")
    ap.add_argument("--unique", type=int, default=200, help="distinct JPEGs generated (then hard-linked)")
    ap.add_argument("--size", default="3000x2000", help="JPEG size WxH")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    w, h = (int(v) for v in args.size.lower().split("x"))
    work = Path(tempfile.mkdtemp(prefix="bench_cull_"))
    try:
        t0 = time.perf_counter()
        src = make_photos(work / "src", min(args.unique, args.n), (w, h))
        print(f"made {len(src)} {w}x{h} JPEGs in {time.perf_counter() - t0:.1f} s; exiftool on PATH: "
              f"{shutil.which('exiftool') is not None}")
        link_to(src, work / "jpeg", args.n)
        bench("jpeg", work / "jpeg", args.n, args.workers, work)
        raws = sorted(p for p in RAW_SAMPLES.rglob("*") if p.suffix.lower() in RAW_EXTENSIONS) \
            if RAW_SAMPLES.is_dir() else []
        if raws:
            link_to(raws, work / "raw", args.n)
            bench("raw", work / "raw", args.n, args.workers, work)
        else:
            print(f"raw: skipped ({RAW_SAMPLES} is absent)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
