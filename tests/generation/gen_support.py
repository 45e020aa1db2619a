"""Helpers of the generation tests: an empty workspace with the four example steps, candidate files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imgsupport import write_image

from imagerank.catalog import Catalog
from imagerank.generation import steps, tree


def example_workspace(root: Path, **settings: Any) -> Catalog:
    """A new workspace (no image folders) with the four weight-free example steps (base, face, hand, upscale)."""
    cat = Catalog.create(root, **settings)
    steps.add_example_steps(cat)
    return cat


def add_file_candidate(cat: Catalog, step: str, parent_id: int | None = None, *, seed: int = 0,
                       max_children: int | None = None) -> int:
    """Write a tiny PNG into the step's output folder and add it as a candidate; returns its id."""
    folder = tree.output_dir(cat, step)
    path = folder / f"c{len(list(folder.iterdir())):05d}_{seed}.png"
    write_image(path, w=16, h=12, seed=seed)
    return tree.add_candidate(cat, step=step, path=path, parent_id=parent_id, max_children=max_children)
