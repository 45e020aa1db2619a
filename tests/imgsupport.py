"""Image and process helpers shared by the tests (imported by name; conftest re-exports them as fixtures' tools).

Kept out of ``conftest.py`` so test modules can import them without depending on which ``conftest`` module
pytest loaded last.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

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
