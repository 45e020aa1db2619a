"""Auto-pick figures: subjects per minute with CPU scoring against the local fake Commons server (rate limit off),
and the trained aesthetic head's Spearman correlation on held-out labels against the untrained one.

Everything is local and generated here (no downloads): :class:`~imagerank.autopick.fake_commons.FakeCommons` on
127.0.0.1 with :func:`~imagerank.autopick.fake_commons.fake_catalogue` (6 files per subject, every 10th subject
without files, every 6th with only bad ones). CLIP is open_clip ``ViT-B-32`` with random weights (the compute of the
real model: 224 px, 4.4 GFLOPs per image; no published weights can be fetched here), on the CPU; the head a
LAION-style linear head (512 -> 1) made here from 16 good and 16 bad renderings (nearest-centroid
direction). The server draws and encodes its images before the clock starts; the throughput run includes
fetching every thumbnail (330 px) and each winner's original over HTTP, the cache and rate-limit layers, decoding,
embedding, scoring, the CLIP text embedding of each subject's name, resizing the winner to 800x600 and the
catalog writes; a second run shows the rerun (every subject resolved: skipped, no request).

The Spearman figure: the candidates of the run are labelled good/bad from what the server drew, with 10 % of the
labels flipped (a human labeller is not perfectly consistent); a fresh ``mlp`` head is trained on 75 % of them
(:func:`~imagerank.autopick.train_head`, stratified hold-out) and both heads are scored on the same held-out 25 %.

Run: ``.venv/bin/python benchmarks/bench_autopick.py [--subjects 60] [--clip ViT-B-32:none]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--subjects", type=int, default=60)
    ap.add_argument("--clip", default="ViT-B-32:none", help="open_clip MODEL:PRETRAINED (default random ViT-B-32)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from imagerank.autopick import (
        AestheticHead,
        ClipAestheticScorer,
        CommonsSource,
        HeadConfig,
        HeadFitConfig,
        PickConfig,
        PickStore,
        auto_pick,
        train_head,
    )
    from imagerank.autopick.fake_commons import FakeCommons, fake_catalogue, render
    from imagerank.catalog import Catalog

    names = [f"Subject {i:03d}" for i in range(args.subjects)]
    with tempfile.TemporaryDirectory() as tmp:
        cat = Catalog.create(Path(tmp) / "ws")
        t = time.perf_counter()
        dim = {"imagerank-tiny": 64, "ViT-B-32": 512, "ViT-L-14": 768}.get(args.clip.split(":")[0], 512)
        probe = ClipAestheticScorer(args.clip, AestheticHead(HeadConfig("linear", dim)))
        load_s = time.perf_counter() - t
        # the head for the throughput run: nearest-centroid direction between the server's good and bad renderings,
        # scaled so good ~8 and bad ~2 (a stand-in for published weights, which cannot be fetched here)
        g = probe.embed([render("good", 320, 240, 1000 + k) for k in range(16)])
        b = probe.embed([render("bad", 320, 240, 2000 + k) for k in range(16)])
        w = g.mean(0) - b.mean(0)
        scale = 6.0 / float((g @ w).mean() - (b @ w).mean())
        lin = probe.head.layers[0]
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w * scale)[None])  # type: ignore[operator]
            lin.bias.fill_(8.0 - scale * float((g @ w).mean()))  # type: ignore[operator]
        with FakeCommons(fake_catalogue(args.subjects)) as srv:
            srv.prerender(330)  # the server's drawing and encoding is not the client's time
            src = CommonsSource("bench@example.org", api=srv.api, per_hour=0, state_dir=cat.root / "autopick")
            t = time.perf_counter()
            rep = auto_pick(cat, names, src, probe, PickConfig(threshold=5.0), progress=False)
            run_s = time.perf_counter() - t
            n_req = src.network_requests
            t = time.perf_counter()
            rerun = auto_pick(cat, names, src, probe, PickConfig(threshold=5.0), progress=False)
            rerun_s = time.perf_counter() - t
            truth = {f.title: f.kind for s in srv.subjects.values() for f in s.files}
        c = rep.counts()
        print(f"auto-pick, {args.subjects} subjects, fake Commons on 127.0.0.1, rate limit off, CLIP {args.clip} on "
              f"CPU ({torch.get_num_threads()} threads), model load {load_s:.1f} s")
        print(f"  first run: {run_s:.1f} s = {args.subjects / run_s * 60:.1f} subjects/min; {n_req} requests; "
              f"picked {c['picked']}, flagged {c['flagged']}, errors {c['error']}")
        print(f"  rerun:     {rerun_s:.2f} s, {src.network_requests - n_req} requests, "
              f"skipped {rerun.counts()['skipped']}")

        store = PickStore(cat)
        df = store.candidates_df()
        rng = np.random.default_rng(0)
        flips = 0
        for cid, title in zip(df.id, df.title):
            good = truth[title] == "good"
            if rng.random() < 0.10:
                good, flips = not good, flips + 1
            store.label(int(cid), "good" if good else "bad", source="simulated")
        torch.manual_seed(0)  # the fresh head's initialisation: the "untrained" figure depends on it
        fresh = AestheticHead(HeadConfig("mlp", probe.head.config.in_dim, hidden=64))
        t = time.perf_counter()
        out = train_head(cat, fresh, probe.name, HeadFitConfig(max_epochs=60), name="aesthetic")
        m = out.metadata["metrics"]
        print(f"aesthetic head on {len(df)} labelled candidates ({flips} labels flipped), "
              f"held-out {out.metadata['data']['n_val']}: Spearman untrained {m['val_spearman_before']:+.3f}, "
              f"trained {m['val_spearman']:+.3f} (train {m['train_spearman']:+.3f}); "
              f"training {time.perf_counter() - t:.1f} s")
        cat.close()


if __name__ == "__main__":
    main()
