"""Builders shared by the training tests: generated preference collections, cloned per test (fast)."""

from __future__ import annotations

import shutil
from pathlib import Path

import imagerank
from imagerank.training.simulate import write_preference_images


def build_pref_collection(root: Path, n: int = 120, seed: int = 0) -> Path:
    """A scanned workspace at ``root / "ws"`` over ``n`` generated preference images (closed); returns its path."""
    images = write_preference_images(root / "images", n, seed=seed)
    col = imagerank.init(root / "ws", images[0].parent, strategy="random")
    col.scan(progress=False)
    col.close()
    return root / "ws"


def clone(ws: Path, dest: Path) -> imagerank.Collection:
    """Copy a closed workspace (catalog, thumbnails, sidecars) and open the copy; the images are shared."""
    shutil.copytree(ws, dest)
    return imagerank.open(dest)
