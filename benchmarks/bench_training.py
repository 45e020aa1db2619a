"""Training figures: ranker training time on 10,000 matches of 512-d embeddings (CPU, and GPU when present),
scoring throughput, and the crop proposer's mean IoU against the centre-crop and saliency baselines.

All data is synthetic and generated here (no collection, no downloads):

- 2,000 "images" with random L2-normalised 512-d vectors; a hidden linear utility; 10,000 pairwise votes from a
  Thurstone judge (noise 0.6 x the utilities' SD), so the achievable accuracy is known-ish;
- the generated crop set of :func:`imagerank.training.crops.make_crop_set` (a subject on a textured background,
  ideal crop known).

Run: ``.venv/bin/python benchmarks/bench_training.py [--quick]``. Prints one block of figures.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.stats import spearmanr

from imagerank.training.bt import fit_linear_bt
from imagerank.training.crops import CropConfig, CropModel, evaluate_crops, make_crop_set, train_crop_proposer
from imagerank.training.data import VoteData
from imagerank.training.features import FeatureMatrix
from imagerank.training.ranker import RankerConfig, fit_ranker


def synthetic_votes(n_images: int, n_matches: int, dim: int, seed: int = 0) -> tuple[FeatureMatrix, VoteData,
                                                                                        np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_images, dim)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    w = rng.normal(size=dim)
    u = X @ w
    u = (u - u.mean()) / u.std()
    a = rng.integers(0, n_images, n_matches)
    b = (a + rng.integers(1, n_images, n_matches)) % n_images
    win = (u[a] + rng.normal(0, 0.6, n_matches)) > (u[b] + rng.normal(0, 0.6, n_matches))
    ids = np.arange(1, n_images + 1, dtype=np.int64)
    entries = [np.array([ids[i], ids[j]]) for i, j in zip(a, b)]
    ranks = [np.array([0, 1]) if wv else np.array([1, 0]) for wv in win]
    votes = VoteData(np.arange(1, n_matches + 1, dtype=np.int64), entries, ranks)
    return FeatureMatrix(ids, X, "embeddings:synthetic__512"), votes, u


def bench_ranker(device: str, epochs: int) -> dict[str, float]:
    fm, votes, u = synthetic_votes(2000, 10_000, 512)
    t = time.perf_counter()
    cfg = RankerConfig(max_epochs=epochs, seed=0, accelerator=device, val_fraction=0.1, cold_fraction=0.0)
    ranker = fit_ranker(fm, votes, cfg, progress=False)
    total = time.perf_counter() - t
    m = ranker.metadata["metrics"]
    rho = spearmanr(ranker.score(fm.X), u).statistic
    return {"seconds": total, "per_epoch": total / epochs, "val_acc": m["val_accuracy"], "spearman": float(rho),
            "n_train": ranker.metadata["data"]["n_train"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer epochs and images (a smoke run)")
    ns = ap.parse_args()
    epochs = 3 if ns.quick else 20
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"cuda: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}")

    print("\n== ranker: 10,000 pairwise matches, 2,000 images, 512-d embeddings, MLP 512-64-1 ==")
    rows = {"cpu": bench_ranker("cpu", epochs)}
    if torch.cuda.is_available():
        bench_ranker("cuda", 1)  # warm-up (CUDA context, kernels)
        rows["cuda"] = bench_ranker("cuda", epochs)
    for dev, r in rows.items():
        how = "1 CPU thread" if dev == "cpu" else dev
        print(f"{dev:>5}: {epochs} epochs in {r['seconds']:.2f} s ({r['per_epoch']:.3f} s/epoch, "
              f"{r['n_train']} training + {10_000 - r['n_train']} held-out matches, {how}); held-out "
              f"accuracy {r['val_acc']:.3f}, Spearman vs hidden utility {r['spearman']:.3f}")
    if "cuda" in rows:
        print(f"cuda / cpu time: {rows['cuda']['seconds'] / rows['cpu']['seconds']:.2f}x")
    fm, votes, _ = synthetic_votes(2000, 10_000, 512)
    pairs = votes.pairs()
    t = time.perf_counter()
    fit_linear_bt(fm.X, fm.rows(pairs.a), fm.rows(pairs.b), pairs.y, l2=1.0)
    print(f"for scale: fit_linear_bt (scipy L-BFGS, the active strategy's prior) on the same data: "
          f"{time.perf_counter() - t:.2f} s")

    print("\n== scoring throughput (MLP 512-64-1, batches of 16,384) ==")
    ranker = fit_ranker(fm, votes, RankerConfig(max_epochs=1, accelerator="cpu"), progress=False)
    big = np.random.default_rng(1).normal(size=(100_000, 512)).astype(np.float32)
    for dev in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        ranker.score(big[:1000], device=dev)
        t = time.perf_counter()
        ranker.score(big, device=dev)
        dt = time.perf_counter() - t
        print(f"{dev:>5}: 100,000 feature vectors in {dt:.3f} s = {100_000 / dt:,.0f} images/s "
              "(the feature vectors given; embedding them is the features pass)")

    print("\n== crop proposer vs baselines: generated set, 64 x 64 px, conv backbone ==")
    n_train, n_test = (200, 100) if ns.quick else (800, 200)
    images, boxes = make_crop_set(n_train + n_test, size=64, seed=0)
    t = time.perf_counter()
    cfg = CropConfig(max_epochs=4 if ns.quick else 15, val_fraction=0.1, accelerator="cpu")
    model = train_crop_proposer(data=(images[:n_train], boxes[:n_train]), config=cfg, progress=False, name=None)
    train_s = time.perf_counter() - t
    assert isinstance(model, CropModel)  # background=False: the model itself, not a job
    ev = evaluate_crops(model, images[n_train:], boxes[n_train:])
    print(f"trained on {n_train} images in {train_s:.1f} s (CPU); {n_test} held-out images:")
    print(ev)
    p, c, s = ev.row("proposer"), ev.row("centre"), ev.row("saliency")
    print(f"mean IoU: proposer {p['mean_iou']:.3f} vs centre {c['mean_iou']:.3f} ({p['mean_iou'] / c['mean_iou']:.2f}x)"
          f" vs saliency {s['mean_iou']:.3f} ({p['mean_iou'] / s['mean_iou']:.2f}x); boundary displacement "
          f"{p['bde']:.3f} vs {c['bde']:.3f} vs {s['bde']:.3f}")


if __name__ == "__main__":
    main()
