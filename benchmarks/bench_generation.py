"""Runner overhead: jobs per minute against the fake ComfyUI (tests/generation/fake_comfy.py), which answers like a
real server but does almost no work (a 512x384 image per job, no node delay), so the figure is what the runner
itself costs per job: next_job, upload, POST /prompt, the wait (websocket wake-up, or a poll every
``comfy_poll_s``), GET /view, the candidate's transaction and its thumbnail.

Rows: 1, 2 and 4 servers, each with the websocket (events wake the poll) and without (polling every 0.25 s).
The tree: four example steps, N=3, T large (the runner never runs out of work); ``--jobs`` jobs per row.

Run:
    python benchmarks/bench_generation.py            # about a minute
    python benchmarks/bench_generation.py --jobs 200
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "generation"))

from fake_comfy import FakeComfy  # noqa: E402

from imagerank.catalog import Catalog  # noqa: E402
from imagerank.generation import steps  # noqa: E402
from imagerank.generation.runner import Runner  # noqa: E402


def measure(root: Path, servers: int, websocket: bool, jobs: int) -> tuple[float, float]:
    """(jobs per minute, ms per job) of one run of ``jobs`` jobs on ``servers`` fake servers."""
    cat = Catalog.create(root / "ws", max_children=3, target_finals=10_000, comfy_poll_s=0.25, prior_refit_every=0)
    steps.add_example_steps(cat)
    fakes = [FakeComfy(root / f"srv{i}", node_delay_s=0.0).start() for i in range(servers)]
    try:
        t0 = time.perf_counter()
        report = Runner(cat, [f.url for f in fakes], max_jobs=jobs, websocket=websocket).run()
        elapsed = time.perf_counter() - t0
    finally:
        for f in fakes:
            f.stop()
        cat.close()
    if report.done != jobs or report.errors:
        raise SystemExit(f"run incomplete: {report}")
    return 60.0 * jobs / elapsed, 1000.0 * elapsed / jobs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=60, help="jobs per row")
    a = ap.parse_args(argv)
    print(f"bench_generation: runner overhead against the fake ComfyUI, {a.jobs} jobs per row\n")
    print("| servers | websocket | jobs/min | ms per job (wall) |")
    print("|---|---|---|---|")
    for servers in (1, 2, 4):
        for ws in (True, False):
            with tempfile.TemporaryDirectory() as tmp:
                jpm, ms = measure(Path(tmp), servers, ws, a.jobs)
            print(f"| {servers} | {'on' if ws else 'off (poll 0.25 s)'} | {jpm:.0f} | {ms:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
