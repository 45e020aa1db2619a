"""Faults as a hostile tester tries them, with the figures every later change can be checked against.

Four runs, each printing its figures:

1. ``kill``: rounds of a child process that votes as fast as it can on a workspace while, in the same process, a
   scan, a feature pass or live-prior refits run; the child is killed with SIGKILL at a random moment. Every vote the
   child acknowledged (printed after ``vote()`` returned) must be in the log afterwards, ``doctor`` must pass, and
   the child's worker processes must be gone.
2. ``writers``: two processes vote on one workspace at once; every match of both must be stored.
3. ``disk``: a workspace on a small tmpfs that fills up while votes come in (where this machine lets us mount
   one; otherwise skipped with the reason): the failure must be an ``ImagerankError``, every acknowledged vote kept.
4. ``corpus``: files that break things (truncated, empty, random bytes, a PNG named .jpg, CMYK, 16-bit, animated,
   EXIF-rotated, a non-UTF-8 name, one past the pixel limit, one deleted after the scan) through scan, features,
   the compare panel, export and doctor: every file must end with a status and a reason.

Run:  python benchmarks/bench_faults.py [--rounds 12] [--only kill,writers,disk,corpus]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import imagerank
from imagerank.errors import ImagerankError
from imagerank.scan import display_path

CHILD = r"""
import sys, threading
import imagerank
ws, mode, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
col = imagerank.open(ws)
def background():
    try:
        while True:
            if mode == "scan":
                col.build_thumbnails(progress=False, force=True)
            elif mode == "features":
                col.compute_features(exif=False, force=True, progress=False)
            elif mode == "refit":
                col.refit_prior("cheap")
    except Exception as e:
        print("background:", type(e).__name__, e, file=sys.stderr, flush=True)
if mode != "vote":
    threading.Thread(target=background, daemon=True).start()
col.start_session(voter=f"kill-{seed}", seed=seed)
while True:
    (a, b), = col.next_pairs(1)
    m = col.vote(a, b, "left" if (a * 7 + b + seed) % 3 else "right")
    print(m.id, flush=True)
"""


def _images(folder: Path, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        a = (rng.random((36, 48, 3)) * 255).astype(np.uint8)
        a[..., i % 3] = (40 + 7 * i) % 256
        Image.fromarray(a).save(folder / f"img_{i:04d}.jpg", quality=85)
    return folder


def _children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


def run_kill(tmp: Path, rounds: int) -> None:
    ws = tmp / "kill-ws"
    col = imagerank.init(ws, _images(tmp / "kill-imgs", 120), prior_refit_every=50)
    col.scan(progress=False)
    col.compute_features(features=("cheap",), exif=False, progress=False)
    col.close()
    modes = ["vote", "scan", "features", "refit"]
    acked: list[int] = []
    orphans = 0
    rng = random.Random(0)
    for r in range(rounds):
        mode = modes[r % len(modes)]
        out_path = tmp / f"kill-{r}.out"
        with open(out_path, "w") as out:  # a file, not a pipe: orphaned workers holding it cannot stall us
            proc = subprocess.Popen([sys.executable, "-c", CHILD, str(ws), mode, str(r)], stdout=out,
                                    stderr=subprocess.DEVNULL, text=True)
        start = time.monotonic()
        while not out_path.read_text().strip() and time.monotonic() - start < 120:
            time.sleep(0.02)  # the first acknowledged vote
        time.sleep(rng.uniform(0.3, 1.5))
        kids = _children_of(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        acked += [int(x) for x in out_path.read_text().split()]  # every line was flushed after vote() returned
        time.sleep(3.0)  # workers must notice that their parent is gone
        alive = [k for k in kids if Path(f"/proc/{k}").exists()]
        orphans += len(alive)
        for k in alive:  # leave nothing behind for the next round
            try:
                os.kill(k, signal.SIGKILL)
            except ProcessLookupError:
                pass
    col = imagerank.open(ws)
    kept = set(col.matches_df()["match_id"].astype(int))
    lost = sorted(set(acked) - kept)
    rep = col.doctor()
    col.close()
    print(f"kill: {rounds} SIGKILLs (vote / scan / features / refit), {len(acked)} acknowledged votes, "
          f"{len(lost)} lost, doctor {'ok' if rep.ok else 'FAILED: ' + str(rep)}, {orphans} orphaned workers "
          f"3 s after the kill")


VOTER = r"""
import sys
import imagerank
ws, seed, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
col = imagerank.open(ws)
col.start_session(voter=f"w{seed}", seed=seed)
for _ in range(n):
    (a, b), = col.next_pairs(1)
    print(col.vote(a, b, "left").id, flush=True)
"""


def run_writers(tmp: Path, n: int = 300) -> None:
    ws = tmp / "writers-ws"
    col = imagerank.init(ws, _images(tmp / "writers-imgs", 60, seed=1), prior_refit_every=0)
    col.scan(progress=False, thumbnails=False)
    col.close()
    procs = [subprocess.Popen([sys.executable, "-c", VOTER, str(ws), str(s), str(n)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for s in (1, 2)]
    acked = [int(x) for p in procs for x in p.communicate(timeout=600)[0].split()]
    col = imagerank.open(ws)
    stored = set(col.matches_df()["match_id"].astype(int))
    ok = col.doctor().ok
    col.close()
    print(f"writers: 2 processes x {n} votes: {len(acked)} acknowledged, {len(stored)} stored, "
          f"{len(set(acked) - stored)} lost, doctor {'ok' if ok else 'FAILED'}")


def run_disk(tmp: Path) -> None:
    mnt = tmp / "small-disk"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        print("disk: skipped (mounting a tmpfs needs root and mount(8))")
        return
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True,
                         text=True)
    if res.returncode != 0:
        print(f"disk: skipped (this machine does not let us mount a tmpfs: {res.stderr.strip()[:120]})")
        return
    try:
        col = imagerank.init(mnt / "ws", _images(tmp / "disk-imgs", 40, seed=2), prior_refit_every=0)
        col.scan(progress=False, thumbnails=False)
        filler = mnt / "filler"
        free = shutil.disk_usage(mnt).free
        filler.write_bytes(b"\0" * max(0, free - 256 * 1024))
        acked: list[int] = []
        error = "none"
        for _ in range(100_000):
            try:
                (a, b), = col.next_pairs(1)
                acked.append(col.vote(a, b, "left").id)
            except ImagerankError as e:
                error = f"ImagerankError ({type(e).__name__}): {e}"
                break
            except Exception as e:  # anything else is a finding
                error = f"NOT an ImagerankError: {type(e).__name__}: {e}"
                break
        filler.unlink()
        col.close()
        col = imagerank.open(mnt / "ws")
        kept = set(col.matches_df()["match_id"].astype(int))
        ok = col.doctor().ok
        col.close()
        print(f"disk: {len(acked)} votes acknowledged before the disk filled, {len(set(acked) - kept)} lost, "
              f"doctor {'ok' if ok else 'FAILED'}; the failure: {error[:160]}")
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def _corpus(folder: Path) -> dict[str, str]:
    """Write the bad-file corpus; returns file name -> what it is."""
    folder.mkdir(parents=True)
    what = {}
    good = Image.fromarray((np.random.default_rng(3).random((40, 60, 3)) * 255).astype(np.uint8))
    good.save(folder / "good.jpg")
    what["good.jpg"] = "an ordinary JPEG"
    data = (folder / "good.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    what["truncated.jpg"] = "half a JPEG"
    (folder / "empty.jpg").write_bytes(b"")
    what["empty.jpg"] = "zero bytes"
    (folder / "noise.jpg").write_bytes(np.random.default_rng(4).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    what["noise.jpg"] = "random bytes"
    good.save(folder / "png_named.jpg", format="PNG")
    what["png_named.jpg"] = "a PNG with a .jpg name"
    good.convert("CMYK").save(folder / "cmyk.jpg")
    what["cmyk.jpg"] = "CMYK JPEG"
    Image.fromarray((np.arange(40 * 60).reshape(40, 60) * 20).astype(np.uint16)).save(folder / "sixteen.png")
    what["sixteen.png"] = "16-bit grey PNG"
    frames = [good.rotate(k * 30) for k in range(3)]
    frames[0].save(folder / "animated.webp", save_all=True, append_images=frames[1:], duration=100)
    what["animated.webp"] = "animated WebP"
    exif = Image.Exif()
    exif[0x0112] = 6
    good.save(folder / "rotated.jpg", exif=exif.tobytes())
    what["rotated.jpg"] = "EXIF orientation 6"
    raw_name = os.fsencode(folder) + b"/bad\xffname.jpg"
    with open(raw_name, "wb") as f:
        f.write(data)
    what[os.fsdecode(b"bad\xffname.jpg")] = "file name not valid UTF-8"
    Image.new("1", (14_000, 13_000)).save(folder / "huge.png")
    what["huge.png"] = "182 megapixels, past the default limit"
    good.save(folder / "deleted.jpg")
    what["deleted.jpg"] = "deleted after the scan"
    return what


def run_corpus(tmp: Path) -> None:
    folder = tmp / "corpus"
    what = _corpus(folder)
    col = imagerank.init(tmp / "corpus-ws", folder, prior_refit_every=0)
    t0 = time.perf_counter()
    rep = col.scan(progress=False)
    (folder / "deleted.jpg").unlink()
    steps = [f"scan: {rep}"]
    try:
        steps.append(f"features: {col.compute_features(progress=False)}")
    except Exception as e:  # a finding, printed
        steps.append(f"features: CRASH {type(e).__name__}: {e}")
    try:
        import logging

        from imagerank.widgets import ComparePanel

        logging.getLogger("imagerank").setLevel(logging.CRITICAL)  # the panel logs what it also reports
        panel = ComparePanel(col, queue_depth=4)
        panel.handle_message({"type": "ready"})
        for i in col.images_df()["id"].astype(int):
            panel.handle_message({"type": "zoom", "id": int(i), "width": 800, "height": 600})
        steps.append(f"panel: zoomed every image, last status {panel.status.get('text', '')[:80]!r}")
    except Exception as e:
        steps.append(f"panel: CRASH {type(e).__name__}: {e}")
    try:
        exp = col.export_top(20, tmp / "corpus-export")
        steps.append(f"export: {exp}")
    except Exception as e:
        steps.append(f"export: CRASH {type(e).__name__}: {e}")
    col.scan(progress=False)
    doctor = col.doctor()
    df = col.images_df()
    seconds = time.perf_counter() - t0
    print(f"corpus: {len(what)} files in {seconds:.1f} s; doctor {'ok' if doctor.ok else 'FAILED'}")
    for s in steps:
        print("  " + s[:200])
    print("  | file | what it is | status | reason |")
    print("  |---|---|---|---|")
    by_name = {os.path.basename(r.filepath): r for r in df.itertuples()}
    for name, desc in what.items():
        row = by_name.get(name, by_name.get(display_path(name)))
        status = "NOT IN CATALOG" if row is None else row.status
        reason = row.status_reason if row is not None and isinstance(row.status_reason, str) else ""
        print(f"  | {ascii(name)[1:-1]} | {desc} | {status} | {reason[:70]} |")
    col.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=12, help="SIGKILL rounds of the kill run (default 12)")
    ap.add_argument("--only", default="kill,writers,disk,corpus", help="comma-separated runs")
    args = ap.parse_args(argv)
    runs = {"kill": lambda t: run_kill(t, args.rounds), "writers": run_writers, "disk": run_disk,
            "corpus": run_corpus}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only.split(","):
            runs[name.strip()](Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
