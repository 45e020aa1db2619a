"""Feature plots: figures with the expected panels, and a message figure for empty input."""

from __future__ import annotations

from pathlib import Path

import pytest
from features_support import write_collection

import imagerank
from imagerank.plots import features as plots


@pytest.fixture
def col(tmp_path: Path) -> imagerank.Collection:
    write_collection(tmp_path / "images", n_base=8, n_variants=3)
    c = imagerank.init(tmp_path / "ws", tmp_path / "images")
    c.scan(progress=False)
    return c


def test_empty_collection_figures_say_so(col: imagerank.Collection) -> None:
    for fig in (plots.quality_distributions(col), plots.quality_extremes(col), plots.duplicate_groups_grid(col, [])):
        texts = [t.get_text() for ax in fig.axes for t in ax.texts]
        assert texts
        assert texts[0].startswith("no ")


def test_figures_after_features(col: imagerank.Collection) -> None:
    col.compute_features(exif=False, progress=False)
    assert len(plots.quality_distributions(col).axes) == 6
    ext = plots.quality_extremes(col, "luma_mean", n=3)
    assert len(ext.axes) == 6
    assert all(ax.images for ax in ext.axes)
    groups = col.near_duplicates()
    grid = plots.duplicate_groups_grid(col, groups)
    assert sum(bool(ax.images) for ax in grid.axes) == sum(len(g) for g in groups) == 6
    fig = plots.feature_map_plot(col, col.feature_map(), cells=4)
    assert 1 <= len(fig.axes[0].artists) <= 16
    assert "PC 1" in fig.axes[0].get_xlabel()
    tiles = plots.thumbnail_grid(col, [1, 2, 10_000], titles=["a", "b", "missing"])
    assert [ax.get_title() for ax in tiles.axes[:3]] == ["a", "b", "missing"]
