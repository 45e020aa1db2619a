"""Shared fixtures: tiny generated images (one corrupt), workspaces, in-memory and file stores, real data.

Everything is generated at test time and small (tens of pixels), so the suite stays fast on 2 cores. Real
photographs come from ``../shared/data`` when that folder exists (tests using them skip otherwise).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import imagerank
from imagerank.store import Database, connect

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def gradient(w: int = 48, h: int = 32, seed: int = 0) -> Image.Image:
    """A small RGB image with a seed-dependent gradient and a block, so images differ (w x h pixels)."""
    rng = np.random.default_rng(seed)
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0.0, 1.0, w)[None, :, None]
    a = c0[None, None, :] * (1 - t) + c1[None, None, :] * t
    a = np.repeat(a, h, axis=0)
    x, y = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
    a[y : y + h // 3, x : x + w // 3] = rng.integers(0, 256, 3)
    return Image.fromarray(a.astype(np.uint8), "RGB")


def write_image(path: str | os.PathLike[str], w: int = 48, h: int = 32, seed: int = 0, **save: Any) -> Path:
    """Write :func:`gradient` to ``path`` (format from the suffix); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    gradient(w, h, seed).save(p, **save)
    return p


def write_images(folder: str | os.PathLike[str], n: int, *, w: int = 16, h: int = 12, prefix: str = "img") -> Path:
    """``n`` distinct tiny JPEGs ``<prefix>_0000.jpg`` ... in ``folder``; returns the folder."""
    f = Path(folder)
    for i in range(n):
        write_image(f / f"{prefix}_{i:04d}.jpg", w, h, seed=i, quality=80)
    return f


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


def _drop_dac_capabilities() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH: root then obeys file permission bits
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def run_python_unprivileged(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh Python that obeys file permission bits, even when the tests run as root.

    As root, the child drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from its bounding set before exec, so
    ``chmod 000`` files and read-only folders really are unreadable / unwritable for it. Skips the test when
    that is not possible (no CAP_SETPCAP, not Linux).
    """
    preexec = None
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        if not sys.platform.startswith("linux"):
            pytest.skip("running as root and cannot drop capabilities on this platform")
        preexec = _drop_dac_capabilities
    try:
        return subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, preexec_fn=preexec
        )
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"cannot start an unprivileged child: {e}")
