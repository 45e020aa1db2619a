"""Quality metrics: blur ordering, exposure, clipping, the noise estimate, flags and tiny/odd images."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from features_support import base_image, blurred
from PIL import Image

from imagerank.config import Settings
from imagerank.features.quality import METRIC_COLUMNS, apply_flags, quality_flags, quality_metrics


def test_blur_lowers_laplacian_variance() -> None:
    im = base_image(0, 320, 240)
    sharp, soft = quality_metrics(im)["laplacian_var"], quality_metrics(blurred(im, 4))["laplacian_var"]
    assert soft < sharp / 5


def test_exposure_statistics_of_constant_images() -> None:
    black = quality_metrics(Image.new("RGB", (50, 40), (0, 0, 0)))
    white = quality_metrics(Image.new("RGB", (50, 40), (255, 255, 255)))
    grey = quality_metrics(Image.new("L", (50, 40), 100))
    assert black["clip_shadows"] == 1.0
    assert black["clip_highlights"] == 0.0
    assert white["clip_highlights"] == 1.0
    assert white["luma_mean"] == 255.0
    assert grey["luma_mean"] == grey["luma_p05"] == grey["luma_p50"] == grey["luma_p95"] == 100.0
    assert grey["luma_std"] == 0.0
    assert grey["laplacian_var"] == 0.0
    assert grey["noise_sigma"] == 0.0


def test_percentiles_of_a_ramp() -> None:
    ramp = Image.fromarray(np.tile(np.arange(256, dtype=np.uint8), (10, 1)), "L")
    m = quality_metrics(ramp)
    assert m["luma_p05"] == pytest.approx(12, abs=1)
    assert m["luma_p50"] == pytest.approx(127, abs=1)
    assert m["luma_p95"] == pytest.approx(242, abs=1)


def test_noise_estimate_recovers_gaussian_sigma() -> None:
    rng = np.random.default_rng(0)
    for sigma in (3.0, 10.0):
        a = np.clip(128 + rng.normal(0, sigma, (256, 256)), 0, 255).astype(np.uint8)
        assert quality_metrics(Image.fromarray(a, "L"))["noise_sigma"] == pytest.approx(sigma, rel=0.15)


@pytest.mark.parametrize("size", [(1, 1), (2, 5)])
def test_tiny_images_give_nan_not_errors(size: tuple[int, int]) -> None:
    m = quality_metrics(Image.new("RGB", size, (10, 200, 30)))
    assert set(m) == set(METRIC_COLUMNS)
    assert math.isnan(m["laplacian_var"])
    assert math.isnan(m["noise_sigma"])
    assert not quality_flags(m, Settings())["too_blurry"]


@pytest.mark.parametrize("mode", ["L", "RGBA", "LA", "CMYK"])
def test_modes(mode: str) -> None:
    m = quality_metrics(base_image(1).convert(mode))
    assert all(np.isfinite(v) for v in m.values())


def test_flags_follow_settings() -> None:
    s = Settings()
    dark = quality_metrics(Image.new("RGB", (30, 30), (10, 10, 10)))
    f = quality_flags(dark, s)
    assert f["too_dark"]
    assert not f["too_bright"]
    assert f["too_blurry"]
    assert not f["clipped_highlights"]
    bright = quality_flags(quality_metrics(Image.new("RGB", (30, 30), (255, 255, 255))), s)
    assert bright["too_bright"]
    assert bright["clipped_highlights"]
    assert not quality_flags(dark, s.replace(dark_threshold=5.0))["too_dark"]


def test_apply_flags_rederives_from_current_settings() -> None:
    df = pd.DataFrame({"laplacian_var": [50.0, 500.0, np.nan], "luma_mean": [30.0, 120.0, 230.0],
                       "clip_highlights": [0.0, 0.2, 0.01], "too_blurry": [False] * 3})
    apply_flags(df, Settings())
    assert df["too_blurry"].tolist() == [True, False, False]
    assert df["too_dark"].tolist() == [True, False, False]
    assert df["too_bright"].tolist() == [False, False, True]
    assert df["clipped_highlights"].tolist() == [False, True, False]
    apply_flags(df, Settings(blur_threshold=1000.0))
    assert df["too_blurry"].tolist() == [True, True, False]
