"""Small generated shoots for the cull tests: JPEGs with real EXIF capture times (sub-seconds, bodies)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def shot(path: Path, seed: int, when: str, subsec: str = "00", *, model: str = "X100", serial: str = "1",
         blur: bool = False, shift: int = 0, bias: float | None = None, mode: int | None = None) -> Path:
    """A 320x240 textured JPEG (the same ``seed`` = the same scene) with DateTimeOriginal ``when``
    (``YYYY:MM:DD HH:MM:SS``), SubSecTimeOriginal, Make/Model/BodySerialNumber and optional bias / ExposureMode."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    im = Image.fromarray(base).resize((320, 240), Image.Resampling.BICUBIC)
    a = np.asarray(im).astype(np.int16)
    a = np.roll(a, shift, axis=1)
    a = np.clip(a + rng.integers(-6, 7, a.shape), 0, 255).astype(np.uint8)
    im = Image.fromarray(a)
    if blur:
        from PIL import ImageFilter

        im = im.filter(ImageFilter.GaussianBlur(6))
    exif = Image.Exif()
    exif[0x010F] = "Fuji"
    exif[0x0110] = model
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = when
    sub[0x9291] = subsec
    sub[0xA431] = serial
    if bias is not None:
        from PIL.TiffImagePlugin import IFDRational

        sub[0x9204] = IFDRational(int(bias * 3), 3)
    if mode is not None:
        sub[0xA402] = mode
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, "JPEG", quality=92, exif=exif)
    return path


@pytest.fixture
def shoot(tmp_path: Path) -> Path:
    """A shoot: a 3-frame burst of one scene (one blurred) within 0.4 s, a lone frame of another scene 10 s later,
    the same scene on another body at the same time, and an exact copy."""
    d = tmp_path / "card" / "DCIM"
    shot(d / "A_0001.JPG", 1, "2024:06:01 10:00:00", "10")
    shot(d / "A_0002.JPG", 1, "2024:06:01 10:00:00", "35", shift=1)
    shot(d / "A_0003.JPG", 1, "2024:06:01 10:00:00", "50", blur=True)
    shot(d / "A_0004.JPG", 2, "2024:06:01 10:00:10", "00")
    shot(d / "B_0001.JPG", 3, "2024:06:01 10:00:00", "20", model="X-T5", serial="9")
    (d / "copy_of_A_0004.JPG").write_bytes((d / "A_0004.JPG").read_bytes())
    return tmp_path / "card"
