"""Helpers of the auto-pick tests: a small aesthetic head made in the test (no published weights), a subjects CSV."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np
import torch

from imagerank.autopick import AestheticHead, ClipAestheticScorer, HeadConfig
from imagerank.autopick.fake_commons import render

TINY_CLIP = "imagerank-tiny:none"


def separating_head(scorer: ClipAestheticScorer, *, good: float = 8.0, bad: float = 2.0) -> AestheticHead:
    """A linear LAION-style head over the tiny CLIP model's embeddings that rates the fake server's ``good``
    renderings about ``good`` and its ``bad`` ones about ``bad``: the weight is the difference of the two classes'
    mean embeddings (a nearest-centroid direction), scaled and shifted onto the 0-10 scale."""
    g = scorer.embed([render("good", 320, 240, 1000 + s) for s in range(16)])
    b = scorer.embed([render("bad", 320, 240, 2000 + s) for s in range(16)])
    w = g.mean(0) - b.mean(0)
    pg, pb = float((g @ w).mean()), float((b @ w).mean())
    scale = (good - bad) / (pg - pb)
    head = AestheticHead(HeadConfig("linear", g.shape[1]))
    with torch.no_grad():
        cast(torch.nn.Linear, head.layers[0]).weight.copy_(torch.from_numpy(w * scale)[None])
        cast(torch.nn.Linear, head.layers[0]).bias.fill_(good - scale * pg)
    return head.eval()


def write_subjects(path: Path, names: list[str], categories: dict[str, str] | None = None) -> Path:
    rows = ["name,category"] + [f"{n},{(categories or {}).get(n, '')}" for n in names]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def noise(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 64)).astype(np.float32)
