"""Generation-tree simulation: how many GPU jobs does each ``next_job`` policy spend before the user has T good
final images, and how good is the final column after K jobs?

The tree is the real one: a workspace with the four example steps, jobs chosen by
:func:`imagerank.generation.policy.next_job` (``raffle``, ``thompson``, ``uniform``), candidates stored with
:func:`imagerank.generation.tree.add_candidate`, votes recorded through the vote log (OpenSkill), rejections with
:func:`imagerank.generation.tree.reject`. Only ComfyUI is simulated: a job "runs" instantly and its candidate gets
a latent quality

- base candidate: ``q ~ Normal(0, 1)``;
- child: ``q = q_parent + Normal(0, STEP_SD)`` (a fix step can help or hurt; the parent's quality is inherited).

``--gpus`` jobs are in flight at once (servers; ``next_job`` counts them as children), the oldest lands first; a
job whose parent was killed meanwhile is cancelled, as the runner does. With one GPU the seed's rule is a pure
depth-first walk (one eligible candidate per column at any time), so the policies only differ once several jobs
are in flight or the user kills candidates.

The simulated judge acts as the user would: after each new candidate it answers ``VOTES_PER_JOB`` A-vs-B questions
pairing it with random active candidates of the same column (Thurstone: the better one wins with probability
``Phi((q_a - q_b) / JUDGE_SD)``); it rejects a final image whose quality is under the bar (it would not keep it)
and walks left (kill-left), killing each ancestor that can hardly still reach the bar
(``q < bar - STEP_SD * sqrt(steps left)``). Metrics, per policy, mean over seeds:

- ``jobs to T good``: GPU jobs until T active final images above the bar (capped at ``--max-jobs``; a capped run
  counts as the cap and is reported in ``capped``);
- ``final q @K``: mean latent quality of every final image made in the first K jobs (kept or rejected): how well
  the GPU time went to good branches;
- ``good @K``: final images above the bar among the first K jobs.

Run (about a minute on 2 cores):
    python benchmarks/generation_sim.py
    python benchmarks/generation_sim.py --seeds 10 --k 80 --bar 1.5 --n 3 --t 3
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imagerank.catalog import Catalog
from imagerank.generation import policy, steps, tree

STEP_SD = 0.6
JUDGE_SD = 0.5
VOTES_PER_JOB = 2
STEP_NAMES = ["base", "face", "hand", "upscale"]


def _kill_left(cat: Catalog, q: dict[int, float], final_id: int, bar: float) -> int:
    """Kill-left as the judge does it: after rejecting a final image, walk to its parent and kill it too while it
    is unlikely to still reach the bar (``q < bar - STEP_SD * sqrt(steps left)``); returns how many it killed."""
    killed = 0
    parent = cat.images.get(final_id)["parent_id"]
    left = 1
    while parent is not None and q[int(parent)] < bar - STEP_SD * math.sqrt(left):
        tree.reject(cat, int(parent), "kill-left: the root cause")
        killed += 1
        parent = cat.images.get(int(parent))["parent_id"]
        left += 1
    return killed


def simulate(pol: str, seed: int, *, n: int, t: int, k: int, bar: float, max_jobs: int, gpus: int,
             root: Path) -> dict:
    """One run; returns jobs_to_t (int), capped (bool), final_q_at_k (float), good_at_k (int)."""
    cat = Catalog.create(root / f"{pol}-{seed}", max_children=n, target_finals=t, job_seed=seed, job_policy=pol,
                         prior_refit_every=0)
    cat.db.execute("PRAGMA synchronous=OFF")  # a throw-away simulation: no fsync per commit
    steps.add_example_steps(cat)
    folders = {name: tree.output_dir(cat, name) for name in STEP_NAMES}
    rng = np.random.default_rng(seed + 10_000)
    q: dict[int, float] = {}
    by_step: dict[str, list[int]] = {name: [] for name in STEP_NAMES}
    pixel = Image.new("RGB", (1, 1))
    jobs_done, hit, finals_at_k = 0, None, []
    in_flight: list = []
    while jobs_done < max_jobs and (hit is None or jobs_done < k):
        while len(in_flight) < gpus:  # every GPU gets a job; next_job counts the ones in flight
            nxt = policy.next_job(cat)
            if nxt is None:
                break
            in_flight.append(nxt)
        if not in_flight:
            break
        job = in_flight.pop(0)  # the oldest job finishes first
        if job.parent_id is not None and cat.images.get(job.parent_id)["status"] != "active":
            cat.db.execute("UPDATE generation_jobs SET status='cancelled' WHERE id=?", (job.id,))
            continue  # its parent was killed while it ran: the runner cancels such a job
        quality = rng.normal(0, 1) if job.parent_id is None else q[job.parent_id] + rng.normal(0, STEP_SD)
        path = folders[job.step] / f"{job.id:06d}.png"
        pixel.save(path)
        image_id = tree.add_candidate(cat, step=job.step, path=path, parent_id=job.parent_id, job_id=job.id)
        q[image_id] = float(quality)
        jobs_done += 1
        peers = [i for i in by_step[job.step] if cat.images.get(i)["status"] == "active"]
        by_step[job.step].append(image_id)
        for other in rng.permutation(peers)[:VOTES_PER_JOB]:
            p_win = 0.5 * (1 + math.erf((q[image_id] - q[int(other)]) / (JUDGE_SD * math.sqrt(2))))
            cat.votes.vote(image_id, int(other), "left" if rng.random() < p_win else "right")
        if job.step == STEP_NAMES[-1]:
            if jobs_done <= k:
                finals_at_k.append(q[image_id])
            if q[image_id] < bar:
                tree.reject(cat, image_id, "under the bar")
                _kill_left(cat, q, image_id, bar)
        good = sum(1 for i in by_step[STEP_NAMES[-1]] if q[i] >= bar)
        if hit is None and good >= t:
            hit = jobs_done
    cat.close()
    return {"jobs_to_t": hit if hit is not None else max_jobs, "capped": hit is None,
            "final_q_at_k": float(np.mean(finals_at_k)) if finals_at_k else float("nan"),
            "good_at_k": int(sum(x >= bar for x in finals_at_k))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=6, help="runs per policy (seeds 0..S-1)")
    ap.add_argument("--n", type=int, default=3, help="N, max children per candidate")
    ap.add_argument("--t", type=int, default=3, help="T, good final images wanted")
    ap.add_argument("--k", type=int, default=60, help="K, the job budget for the quality columns")
    ap.add_argument("--bar", type=float, default=1.5, help="latent quality a final image must reach")
    ap.add_argument("--max-jobs", type=int, default=300, help="cap on jobs per run")
    ap.add_argument("--gpus", type=int, default=4, help="jobs in flight at once (servers)")
    ap.add_argument("--policies", default=",".join(policy.POLICIES))
    a = ap.parse_args(argv)
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for pol in a.policies.split(","):
            runs = [simulate(pol, s, n=a.n, t=a.t, k=a.k, bar=a.bar, max_jobs=a.max_jobs,
                             gpus=a.gpus, root=Path(tmp))
                    for s in range(a.seeds)]
            rows.append((pol, np.mean([r["jobs_to_t"] for r in runs]), np.std([r["jobs_to_t"] for r in runs]),
                         sum(r["capped"] for r in runs), np.nanmean([r["final_q_at_k"] for r in runs]),
                         np.mean([r["good_at_k"] for r in runs])))
    print(f"generation_sim: N={a.n} T={a.t} K={a.k} bar={a.bar} gpus={a.gpus} step_sd={STEP_SD} judge_sd={JUDGE_SD} "
          f"votes/job={VOTES_PER_JOB}, mean of {a.seeds} seeds ({time.perf_counter() - t0:.0f} s)\n")
    print("| policy | GPU jobs to T good finals (mean ± sd) | capped | final-column quality @K | good finals @K |")
    print("|---|---|---|---|---|")
    for pol, m, sd, capped, fq, good in rows:
        print(f"| {pol} | {m:.1f} ± {sd:.1f} | {capped}/{a.seeds} | {fq:.2f} | {good:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
