"""Small generated images for the feature tests: textured bases and near-duplicate variants of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
EXIF_SAMPLES = SHARED_DATA / "photos" / "exif-samples"


def base_image(seed: int, w: int = 160, h: int = 120) -> Image.Image:
    """A distinct RGB image: smooth random colour field plus a few shapes (w x h pixels)."""
    rng = np.random.default_rng(seed)
    grid = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    im = Image.fromarray(grid, "RGB").resize((w, h), Image.Resampling.BICUBIC)
    d = ImageDraw.Draw(im)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, w - 20)), int(rng.integers(0, h - 20))
        x1, y1 = x0 + int(rng.integers(10, w // 2)), y0 + int(rng.integers(10, h // 2))
        d.rectangle([x0, y0, x1, y1], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return im


def variant(im: Image.Image, seed: int) -> Image.Image:
    """A near-duplicate like the demo's: crop <= 1.5 % per edge resized back, brightness ±6 %, light noise."""
    rng = np.random.default_rng(1000 + seed)
    w, h = im.size
    box = (round(rng.uniform(0, 0.015) * w), round(rng.uniform(0, 0.015) * h),
           w - round(rng.uniform(0, 0.015) * w), h - round(rng.uniform(0, 0.015) * h))
    out = im.crop(box).resize((w, h), Image.Resampling.BILINEAR)
    out = ImageEnhance.Brightness(out).enhance(float(rng.uniform(0.94, 1.06)))
    a = np.asarray(out, dtype=np.float32) + rng.normal(0, 2.0, (h, w, 3))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


def write_collection(folder: Path, n_base: int = 10, n_variants: int = 3) -> dict[str, str]:
    """``n_base`` distinct JPEGs ``base_XX.jpg`` and, for the first ``n_variants``, a variant ``var_XX.jpg``.

    Returns:
        variant file name -> its base file name.
    """
    folder.mkdir(parents=True, exist_ok=True)
    pairs = {}
    for i in range(n_base):
        im = base_image(i)
        im.save(folder / f"base_{i:02d}.jpg", quality=90)
        if i < n_variants:
            variant(im, i).save(folder / f"var_{i:02d}.jpg", quality=85)
            pairs[f"var_{i:02d}.jpg"] = f"base_{i:02d}.jpg"
    return pairs


def blurred(im: Image.Image, radius: float = 4.0) -> Image.Image:
    """``im`` with a Gaussian blur of ``radius`` pixels."""
    return im.filter(ImageFilter.GaussianBlur(radius))
