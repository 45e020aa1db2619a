"""Shared fixtures: tiny generated images (one corrupt), workspaces, in-memory and file stores, real data.

Everything is generated at test time and small (tens of pixels), so the suite stays fast on 2 cores. Real
photographs come from ``../shared/data`` when that folder exists (tests using them skip otherwise).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from imgsupport import SHARED_DATA, gradient, run_python_unprivileged, write_image, write_images  # noqa: F401

import imagerank
from imagerank.catalog import Database, connect


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real photographs, RAW files, preference data); skips the test when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not present at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def tiny_images(tmp_path: Path) -> Path:
    """A folder of 6 tiny images (4 JPEG, 1 PNG, 1 in a sub-folder) plus ``corrupt.jpg`` (random bytes)."""
    folder = tmp_path / "images"
    for i in range(4):
        write_image(folder / f"photo_{i}.jpg", seed=i)
    write_image(folder / "drawing.png", seed=10)
    write_image(folder / "sub" / "nested.jpg", seed=11)
    (folder / "corrupt.jpg").write_bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes())
    return folder


@pytest.fixture
def workspace(tmp_path: Path, tiny_images: Path) -> Iterator[imagerank.Collection]:
    """A scanned workspace over :func:`tiny_images` (6 active images, 1 corrupt), strategy ``spec``."""
    col = imagerank.init(tmp_path / "ws", tiny_images, strategy="spec")
    col.scan(progress=False)
    yield col
    col.close()


@pytest.fixture
def make_collection(tmp_path: Path) -> Iterator[Callable[..., imagerank.Collection]]:
    """Factory: ``make_collection(n, **settings)`` -> a workspace over ``n`` tiny JPEGs, scanned without
    thumbnails (fast), strategy ``spec`` unless given."""
    made: list[imagerank.Collection] = []

    def make(n: int = 8, name: str = "ws", thumbnails: bool = False, **settings: Any) -> imagerank.Collection:
        images = write_images(tmp_path / f"{name}-images", n)
        settings.setdefault("strategy", "spec")
        col = imagerank.init(tmp_path / name, images, **settings)
        col.scan(progress=False, thumbnails=thumbnails)
        made.append(col)
        return col

    yield make
    for col in made:
        col.close()


@pytest.fixture
def memory_store() -> Iterator[Database]:
    """An in-memory catalog with every migration applied."""
    db = connect(":memory:")
    yield db
    db.close()


@pytest.fixture
def file_store(tmp_path: Path) -> Iterator[Database]:
    """A catalog file in ``tmp_path`` with every migration applied (WAL)."""
    db = connect(tmp_path / "imagerank.db")
    yield db
    db.close()
