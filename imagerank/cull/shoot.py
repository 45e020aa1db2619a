"""A generated burst shoot and a scripted burst picker, for the cull notebook, tests and demos (DEMO ONLY).

:func:`render_burst_shoot` paints ``n_bursts`` bursts of 2–4 JPEG frames (numpy + Pillow, no downloads) whose EXIF
``DateTimeOriginal`` + ``SubSecTimeOriginal`` are 0.2–0.5 s apart within a burst and minutes apart between bursts,
so :func:`imagerank.cull.cull` groups them. The frames of one burst show the same scene with three independent
changes drawn per frame: a Gaussian blur (radius 0–0.8 px: the technical score's sharpness), a brightness gain
(0.78–1.18) and a saturation gain (0.55–1.45). The folder's ``demo_manifest.json``
(:data:`imagerank.training.simulate.DEMO_MANIFEST`, which marks the workspace as a demo) records each frame's
values and its *appeal*, the known preference of the scripted picker: ``appeal = (brightness - 1) / 0.12 +
(saturation - 1) / 0.27`` (brighter and more saturated is better; sharpness does not count).

:func:`simulated_burst_picks` plays a user who picks, in each burst of :func:`imagerank.cull.refine.burst_groups`,
the frame with the highest appeal, recorded as N-way matches through the catalog's vote log with source
``simulated`` (``VoteLog.undo_source("simulated")`` takes them back out). It refuses a workspace that is not a demo.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import ExifTags, Image, ImageDraw, ImageEnhance, ImageFilter

from ..catalog import CatalogLike, as_catalog
from ..errors import InvalidArgumentError, NotFoundError
from ..training.simulate import DEMO_MANIFEST, is_demo_workspace

__all__ = ["ShootFrame", "appeal_of", "read_shoot_manifest", "render_burst_shoot", "simulated_burst_picks"]

_START = datetime(2024, 7, 6, 10, 0, 0)
GENERATOR = "imagerank.cull.shoot"


@dataclass(frozen=True)
class ShootFrame:
    """One generated frame: ``name`` (file name), ``burst`` (0-based), ``frame`` (0-based within the burst),
    ``blur`` (Gaussian radius, px), ``brightness`` and ``saturation`` (gains, 1 = unchanged), ``appeal`` (the
    scripted picker's utility), ``captured`` (ISO-8601 local time, milliseconds)."""

    name: str
    burst: int
    frame: int
    blur: float
    brightness: float
    saturation: float
    appeal: float
    captured: str


def appeal_of(brightness: float, saturation: float) -> float:
    """The scripted picker's utility of a frame: ``(brightness - 1) / 0.12 + (saturation - 1) / 0.27``."""
    return (brightness - 1.0) / 0.12 + (saturation - 1.0) / 0.27


def _scene(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """A colourful, detailed scene: a two-colour gradient, shapes and fine texture (sharp, so blur shows)."""
    hue = rng.uniform(0, 1)
    c1 = np.array(Image.new("HSV", (1, 1), (int(hue * 255), 170, 200)).convert("RGB").getpixel((0, 0)), float)
    c2 = np.array(Image.new("HSV", (1, 1), (int((hue + 0.3) % 1 * 255), 190, 120)).convert("RGB").getpixel((0, 0)),
                  float)
    t = np.linspace(0, 1, w)[None, :, None] * 0.6 + np.linspace(0, 1, h)[:, None, None] * 0.4
    arr = c1 * (1 - t) + c2 * t
    im = Image.fromarray(arr.clip(0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(6, 12))):
        x0, y0 = float(rng.uniform(0, w * 0.8)), float(rng.uniform(0, h * 0.8))
        x1, y1 = x0 + float(rng.uniform(30, w / 3)), y0 + float(rng.uniform(30, h / 3))
        hh = int(rng.uniform(0, 255))
        colour = Image.new("HSV", (1, 1), (hh, int(rng.uniform(120, 230)), int(rng.uniform(90, 230)))).convert(
            "RGB").getpixel((0, 0))
        (d.ellipse if rng.random() < 0.5 else d.rectangle)((x0, y0, x1, y1), fill=colour)
    for _ in range(40):  # thin strokes: fine detail a blur removes
        x0, y0 = float(rng.uniform(0, w)), float(rng.uniform(0, h))
        d.line((x0, y0, x0 + float(rng.uniform(-60, 60)), y0 + float(rng.uniform(-60, 60))),
               fill=tuple(int(v) for v in rng.integers(0, 256, 3)), width=1)
    grain = rng.normal(0, 6, (h, w, 1))
    return Image.fromarray((np.asarray(im, float) + grain).clip(0, 255).astype(np.uint8), "RGB")


def _exif(when: datetime) -> Image.Exif:
    ex = Image.Exif()
    ex[0x010F] = "imagerank"  # Make
    ex[0x0110] = "burst demo"  # Model
    ex[0x0112] = 1  # Orientation: upright
    ifd = ex.get_ifd(ExifTags.IFD.Exif)
    ifd[0x9003] = when.strftime("%Y:%m:%d %H:%M:%S")  # DateTimeOriginal
    ifd[0x9291] = f"{when.microsecond // 1000:03d}"  # SubSecTimeOriginal (milliseconds)
    return ex


def render_burst_shoot(folder: str | os.PathLike[str], n_bursts: int = 16, *, seed: int = 0,
                       size: tuple[int, int] = (640, 480), frames: tuple[int, int] = (2, 4)) -> list[ShootFrame]:
    """Paint a burst shoot into ``folder`` (created) and write its ``demo_manifest.json``; return the frames.

    Args:
        n_bursts: bursts to paint (>= 1).
        seed: the generator's seed; the same seed gives the same files on one Pillow build.
        size: (width, height) of every frame, pixels (each >= 64).
        frames: (fewest, most) frames per burst, 2 <= fewest <= most <= 4.

    Returns:
        One :class:`ShootFrame` per file, in capture order. Files that exist are left as they are.

    Raises:
        InvalidArgumentError: ``n_bursts`` < 1, a size under 64 px, or a bad ``frames`` range.
    """
    if int(n_bursts) < 1:
        raise InvalidArgumentError(f"n_bursts: expected at least 1 burst, got {n_bursts!r}")
    w, h = int(size[0]), int(size[1])
    if w < 64 or h < 64:
        raise InvalidArgumentError(f"size: expected width and height >= 64 px, got {size!r}")
    lo, hi = int(frames[0]), int(frames[1])
    if not 2 <= lo <= hi <= 4:
        raise InvalidArgumentError(f"frames: expected (fewest, most) with 2 <= fewest <= most <= 4, got {frames!r}")
    out_dir = Path(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out: list[ShootFrame] = []
    when = _START
    for b in range(int(n_bursts)):
        scene = _scene(rng, w, h)
        when += timedelta(minutes=float(rng.uniform(2, 9)))
        k = int(rng.integers(lo, hi + 1))
        for f in range(k):
            blur = float(rng.choice([0.0, 0.25, 0.5, 0.8]))
            bright = float(rng.uniform(0.78, 1.18))
            sat = float(rng.uniform(0.55, 1.45))
            dx, dy = int(rng.integers(-3, 4)), int(rng.integers(-3, 4))
            name = f"BURST_{b:03d}_{f}.jpg"
            out.append(ShootFrame(name, b, f, blur, round(bright, 4), round(sat, 4),
                                  round(appeal_of(bright, sat), 4), when.isoformat(timespec="milliseconds")))
            path = out_dir / name
            if not path.exists():
                im = scene.transform((w, h), Image.Transform.AFFINE, (1, 0, dx, 0, 1, dy),
                                     resample=Image.Resampling.BILINEAR)
                if blur > 0:
                    im = im.filter(ImageFilter.GaussianBlur(blur))
                im = ImageEnhance.Color(im).enhance(sat)
                im = ImageEnhance.Brightness(im).enhance(bright)
                tmp = path.with_name(path.name + ".part")
                im.save(tmp, "JPEG", quality=92, exif=_exif(when))
                os.replace(tmp, path)
            when += timedelta(seconds=float(rng.uniform(0.2, 0.5)))
    (out_dir / DEMO_MANIFEST).write_text(json.dumps(
        {"generator": GENERATOR, "seed": int(seed), "n": len(out), "images": [f.name for f in out],
         "frames": [asdict(f) for f in out]}, indent=1), encoding="utf-8")
    return out


def read_shoot_manifest(folder: str | os.PathLike[str]) -> dict[str, ShootFrame]:
    """The frames of the shoot in ``folder`` by file name (its ``demo_manifest.json``).

    Raises:
        NotFoundError: no manifest of a generated burst shoot in ``folder``.
    """
    path = Path(folder) / DEMO_MANIFEST
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise NotFoundError(f"burst shoot: expected a readable {DEMO_MANIFEST} in {folder}, got {e}") from e
    if not isinstance(doc, dict) or doc.get("generator") != GENERATOR:
        raise NotFoundError(f"burst shoot: {path} was not written by render_burst_shoot")
    return {f["name"]: ShootFrame(**f) for f in doc.get("frames", [])}


def simulated_burst_picks(col: CatalogLike, ir: pd.DataFrame, root: str | os.PathLike[str], *,
                          n: int | None = None, seed: int = 0, noise: float = 0.0,
                          allow_non_demo: bool = False) -> list[int]:
    """DEMO ONLY: pick the keeper of each burst as the scripted user would, recorded as N-way matches.

    Args:
        col: the workspace (collection or catalog) whose vote log receives the picks.
        ir: the cull's IR table of the shoot in ``root`` (:func:`imagerank.cull.cull`).
        root: the shoot folder (with the manifest of :func:`render_burst_shoot`).
        n: bursts to pick (the first ``n`` of :func:`~imagerank.cull.refine.burst_groups`); None: all.
        seed: seeds the judgement noise. noise: SD of Gaussian noise added to each frame's appeal (0: always the
            most appealing frame).
        allow_non_demo: pick in a workspace that is not a demo anyway.

    Returns:
        The match ids recorded (source ``simulated``; keeper rank 0, the other candidates rank 1).

    Raises:
        InvalidArgumentError: the workspace is not a demo (without ``allow_non_demo``), or ``n`` < 0.
        NotFoundError: no shoot manifest in ``root``.
    """
    from .refine import burst_groups, ir_image_ids

    cat = as_catalog(col)
    if not allow_non_demo and not is_demo_workspace(cat):
        raise InvalidArgumentError("simulated burst picks: expected a demo workspace (one with a "
                                   f"{DEMO_MANIFEST}); got {cat.root}, which holds a person's votes")
    if n is not None and int(n) < 0:
        raise InvalidArgumentError(f"n: expected a number of bursts >= 0, got {n!r}")
    frames = read_shoot_manifest(root)
    ids = ir_image_ids(cat, ir, root)
    rng = np.random.default_rng(seed)
    groups = burst_groups(ir)
    if n is not None:
        groups = groups[: int(n)]
    out: list[int] = []
    for g in groups:
        rows: Sequence[int] = g.rows
        names = [os.path.basename(str(ir.at[r, "path"])) for r in rows]
        if any(nm not in frames for nm in names) or any(pd.isna(ids.iloc[r]) for r in rows):
            continue
        appeal = np.array([frames[nm].appeal for nm in names]) + rng.normal(0, noise, len(names))
        keep = int(np.argmax(appeal))
        match = cat.votes.record([int(ids.iloc[r]) for r in rows], [0 if k == keep else 1 for k in range(len(rows))],
                                 positions=list(range(len(rows))), source="simulated")
        out.append(match.id)
    return out

