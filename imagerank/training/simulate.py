"""Simulated judges for demos and tests: votes from a known preference, crops with known ideal boxes.

**Demo only.** These functions write *simulated* judgements into a collection (source ``simulated``, voter
``simulated``) so the training notebooks run on a fresh demo collection; they are never a substitute for a
person's votes. :func:`simulated_votes` refuses a workspace the user made (one without a :data:`DEMO_MANIFEST`, see
:func:`is_demo_workspace`) unless asked explicitly; ``VoteLog.undo_source("simulated")`` (``imagerank undo WS
--source simulated``) takes simulated votes back out, exactly.

The vote judge (:class:`FeatureJudge`) prefers a known linear function of the cheap features
(:data:`imagerank.training.features.CHEAP_FEATURES`, standardised): utility ``u = sum_k w_k z_k``, rescaled to unit
SD. Each judgement is Thurstone-style: a beats b when ``u_a + e_a > u_b + e_b`` with ``e ~ N(0, noise^2)``;
``noise`` 0.6 is about what real pairwise data shows (a 48x48 human comparison matrix gives ~0.62 x the
utilities' SD).
"""

from __future__ import annotations

import colorsys
import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..catalog import CatalogLike, as_catalog
from ..errors import InvalidArgumentError, NoVotesError
from ..pairing import next_pairs

if TYPE_CHECKING:
    import pandas as pd


__all__ = [
    "DEMO_MANIFEST",
    "FeatureJudge",
    "SimulationReport",
    "is_demo_workspace",
    "simulated_votes",
    "write_crop_demo",
    "write_preference_images",
]

#: The file that marks generated (demo) images: :func:`imagerank.demo.make_demo` writes it at the demo workspace's
#: root, :func:`write_preference_images` and :func:`write_crop_demo` into the folder of images they paint.
DEMO_MANIFEST = "demo_manifest.json"


def is_demo_workspace(col: CatalogLike) -> bool:
    """Whether ``col`` is a demo workspace: a :data:`DEMO_MANIFEST` at its root (``imagerank.demo.make_demo``) or
    in one of its image folders (generated images: :func:`write_preference_images`, :func:`write_crop_demo`).
    A workspace the user made over their own photos has neither."""
    cat = as_catalog(col)
    places = [Path(cat.root), *(Path(r) for r in cat.settings.roots)]
    return any((p / DEMO_MANIFEST).is_file() for p in places)


def _write_manifest(folder: Path, generator: str, seed: int, names: list[str]) -> None:
    (folder / DEMO_MANIFEST).write_text(
        json.dumps({"generator": generator, "seed": seed, "n": len(names), "images": names}, indent=1),
        encoding="utf-8",
    )


@dataclass
class FeatureJudge:
    """A simulated voter who prefers a known function of the cheap features.

    Attributes:
        weights: feature name -> weight on the standardised feature (see ``CHEAP_FEATURES``).
        noise: SD of the Thurstone noise per image per judgement, in units of the utilities' SD.
        draw_margin: a judgement is a draw when the noisy utilities differ by less than this (0: never).
    """

    weights: dict[str, float] = field(default_factory=lambda: {"sat_mean": 1.0, "luma_mean": 0.6,
                                                                 "log_laplacian_var": -0.4})
    noise: float = 0.6
    draw_margin: float = 0.0

    def utilities(self, col: CatalogLike) -> pd.Series:
        """The judge's true utility of every image with cheap features (unit SD), indexed by image id.

        Raises:
            InvalidArgumentError: a weight names an unknown feature.
        """
        cat = as_catalog(col)
        import pandas as pd

        from .features import CHEAP_FEATURES, CHEAP_SET, feature_matrix

        unknown = sorted(set(self.weights) - set(CHEAP_FEATURES))
        if unknown:
            raise InvalidArgumentError(f"weights: unknown feature(s) {unknown}; known: {', '.join(CHEAP_FEATURES)}")
        fm = feature_matrix(cat, CHEAP_SET)
        X = fm.X.astype(np.float64)
        std = X.std(0)
        std[std < 1e-9] = 1.0
        Z = (X - X.mean(0)) / std
        w = np.array([self.weights.get(n, 0.0) for n in CHEAP_FEATURES])
        u = Z @ w
        sd = u.std()
        u = u / sd if sd > 0 else u
        return pd.Series(u, index=pd.Index(fm.image_ids, name="image_id"), name="utility")

    def judge(self, u_a: float, u_b: float, rng: np.random.Generator) -> str:
        """``"left"`` (a wins), ``"right"`` or ``"draw"`` for one judgement."""
        d = (u_a + rng.normal(0, self.noise)) - (u_b + rng.normal(0, self.noise))
        if abs(d) < self.draw_margin:
            return "draw"
        return "left" if d > 0 else "right"


@dataclass
class SimulationReport:
    """What :func:`simulated_votes` recorded: counts of votes and the judge's true utilities."""

    n_votes: int
    wins: int
    draws: int
    utilities: Any

    def __str__(self) -> str:
        return (f"SIMULATED (demo) session: {self.n_votes} votes ({self.wins} wins, {self.draws} draws) by a "
                f"scripted judge over {len(self.utilities)} images")


def simulated_votes(
    col: CatalogLike,
    n: int = 500,
    judge: FeatureJudge | None = None,
    *,
    strategy: str = "random",
    seed: int = 0,
    batch: int = 64,
    allow_user_workspace: bool = False,
) -> SimulationReport:
    """Record ``n`` simulated A-vs-B votes (DEMO ONLY) through the vote log (``VoteLog.record``), as one batch.

    Pairs come from :func:`imagerank.pairing.next_pairs` with ``strategy`` in sessions of their own (voter
    ``simulated``, ``VoteLog.session_scope``), so the user's current session is untouched; every match has
    ``source="simulated"`` so it can be told apart from real votes (and excluded with
    ``load_votes(col, sources=["user", "import", "suggestion"])``, and removed with
    ``col.votes.undo_source("simulated")`` / ``imagerank undo WS --source simulated``). The live prior refits once,
    at the end.

    Only a demo workspace (:func:`is_demo_workspace`) takes simulated votes: in a workspace the user made they would
    become part of the user's leaderboard, prior and exports.

    Args:
        allow_user_workspace: True writes simulated votes into a workspace that is not a demo (tests, experiments
            on a scratch copy); remove them afterwards with ``undo_source("simulated")``.

    Returns:
        A :class:`SimulationReport` with the judge's true utilities (for checking what a ranker learned).

    Raises:
        InvalidArgumentError: ``col`` is not a demo workspace and ``allow_user_workspace`` is False.
        NoVotesError: fewer than two images have features (nothing to compare).
    """
    cat = as_catalog(col)
    if not allow_user_workspace and not is_demo_workspace(cat):
        raise InvalidArgumentError(
            f"simulated_votes: expected a demo workspace (one with {DEMO_MANIFEST}: imagerank.demo.open_demo() or "
            f"make_demo()), got {cat.root}, a workspace you made; simulated votes there would become your ranking. "
            "Pass allow_user_workspace=True to do it anyway (remove them with `imagerank undo WORKSPACE --source "
            "simulated`)"
        )
    judge = judge or FeatureJudge()
    util = judge.utilities(cat)
    if len(util) < 2:
        raise NoVotesError(f"cannot simulate votes: {len(util)} image(s) with features; at least 2 are needed")
    rng = np.random.default_rng(seed)
    u = util.to_dict()
    wins = draws = done = 0
    session_seed = seed
    # its own sessions, so the user's voting session is untouched; one batch, so the live prior refits once
    with cat.votes.batch():
        while done < n:
            before = done
            with cat.votes.session_scope(voter="simulated", strategy=strategy, seed=session_seed):
                while done < n:
                    pairs = [(a, b) for a, b in next_pairs(col, min(batch, n - done), strategy=strategy)
                             if a in u and b in u]
                    if not pairs:
                        break
                    for a, b in pairs:
                        outcome = judge.judge(u[a], u[b], rng)
                        ranks = {"left": [0, 1], "right": [1, 0], "draw": [0, 0]}[outcome]
                        cat.votes.record([a, b], ranks, positions=[0, 1],
                                         kind="draw" if outcome == "draw" else "win", source="simulated",
                                         voter="simulated")
                        wins += outcome != "draw"
                        draws += outcome == "draw"
                        done += 1
            if done == before:  # a fresh session found no pair to judge
                break
            session_seed = int(rng.integers(1 << 31))  # every pair of that session was judged: start another
    return SimulationReport(done, wins, draws, util)


def write_preference_images(folder: str | os.PathLike[str], n: int = 120, *, size: tuple[int, int] = (64, 48),
                            seed: int = 0) -> list[Path]:
    """Write ``n`` small PNGs whose colour, brightness, texture and sharpness vary independently (for tests and
    the ranker demo), and a :data:`DEMO_MANIFEST` listing them (so a workspace over ``folder`` is a demo workspace,
    :func:`is_demo_workspace`). Returns the image paths."""
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(seed)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    W, H = size
    yy, xx = np.mgrid[0:H, 0:W] / max(W, H)
    paths = []
    for i in range(n):
        hue, sat, val = rng.random(), rng.uniform(0.05, 1.0), rng.uniform(0.15, 0.95)
        base = np.array(colorsys.hsv_to_rgb(hue, sat, val))
        grad = rng.uniform(-0.3, 0.3) * (xx * np.cos(rng.uniform(0, 6.3)) + yy * np.sin(rng.uniform(0, 6.3)))
        img = base[None, None, :] + grad[..., None] + rng.normal(0, rng.uniform(0.0, 0.15), (H, W, 3))
        k = rng.integers(2, 6)
        img[int(H / k): int(H / k) * 2, int(W / k): int(W / k) * 2] += rng.uniform(-0.3, 0.3, 3)
        pil = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
        radius = rng.uniform(0, 2.0)
        if radius > 0.3:
            pil = pil.filter(ImageFilter.GaussianBlur(radius))
        p = out / f"pref_{i:04d}.png"
        pil.save(p)
        paths.append(p)
    _write_manifest(out, "write_preference_images", seed, [p.name for p in paths])
    return paths


def write_crop_demo(folder: str | os.PathLike[str], n: int = 96, *, size: int = 96, seed: int = 0) -> Path:
    """DEMO ONLY: write ``n`` images with a salient subject on a textured background and a crop log CSV of the
    ideal crops (in pixels, ``units=px``) and a :data:`DEMO_MANIFEST` beside them. Returns the CSV path (import it with
    :func:`imagerank.training.imports.import_crop_log`)."""
    from PIL import Image

    from .crop_metrics import make_crop_set

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    images, boxes = make_crop_set(n, size=size, seed=seed)
    csv_path = out / "crop_log.csv"
    names = []
    with open(csv_path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["path", "x", "y", "w", "h", "units"])
        for i, (im, b) in enumerate(zip(images, boxes)):
            name = f"subject_{i:04d}.png"
            Image.fromarray(im).save(out / name)
            wr.writerow([name, *(f"{v * size:.1f}" for v in b), "px"])
            names.append(name)
    _write_manifest(out, "write_crop_demo", seed, names)
    return csv_path
