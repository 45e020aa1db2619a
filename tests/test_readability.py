"""What the notebooks show reads well: file names (not ids) under thumbnails and in the review panel, threshold
labels at a legible size, the side bias as a sentence and a table, crop examples large with visible boxes."""

from __future__ import annotations

import numpy as np
import pytest
from imgsupport import write_images

import imagerank
from imagerank.plots import features as fplots
from imagerank.plots import side_bias
from imagerank.training.crop_metrics import CropEvaluation


@pytest.fixture
def col(tmp_path):
    c = imagerank.init(tmp_path / "ws", write_images(tmp_path / "images", 8, w=40, h=30, prefix="holiday"))
    c.scan(progress=False)
    yield c
    c.close()


def test_quality_extremes_and_grids_name_files(col):
    col.compute_features(exif=False, progress=False)
    fig = fplots.quality_extremes(col, "luma_mean", n=3)
    titles = [ax.get_title() for ax in fig.axes]
    assert all(t.startswith("holiday_") for t in titles), titles
    assert all("\n" in t for t in titles)  # the value under the name
    grid = fplots.thumbnail_grid(col, [1, 2])
    assert [ax.get_title() for ax in grid.axes] == ["holiday_0000.jpg", "holiday_0001.jpg"]
    dup = fplots.duplicate_groups_grid(col, [[1, 2]])
    assert [ax.get_title() for ax in dup.axes] == ["1: holiday_0000.jpg", "1: holiday_0001.jpg"]


def test_threshold_labels_are_legible(col):
    col.compute_features(exif=False, progress=False)
    fig = fplots.quality_distributions(col)
    labels = [t for ax in fig.axes for t in ax.texts if "threshold" in t.get_text()]
    assert labels
    assert min(t.get_fontsize() for t in labels) >= 10
    assert fig.get_size_inches()[0] <= 10  # drawn at its size in a notebook, not shrunk


def test_side_bias_reads_as_a_sentence_and_a_table(col):
    empty = side_bias(col)
    assert str(empty) == "no pairwise wins yet"
    for k in range(12):
        col.record_match([1 + k % 4, 5 + k % 4], [0, 1], positions=[0, 1])
    b = side_bias(col)
    assert b["left"] == 12
    assert b["right"] == 0  # still the dict it was
    assert "left wins 100% of 12 wins" in str(b)
    assert "bias toward the left" in str(b)
    html = b._repr_html_()
    assert "<table>" in html
    assert "wins by the left image" in html


def test_crop_examples_are_large_with_visible_boxes():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(6, 64, 64, 3), dtype=np.uint8)
    targets = np.tile([0.2, 0.2, 0.5, 0.5], (6, 1))
    ev = CropEvaluation(table=None, boxes={"proposer": targets + 0.05}, targets=targets, images=images)
    fig = ev.plot_examples(k=6)
    assert len(fig.axes) == 6
    w_in = fig.get_size_inches()[0] / 3
    assert w_in * fig.dpi >= 250  # each example about 300 px wide (was ~120)
    widths = [p.get_linewidth() for ax in fig.axes for p in ax.patches]
    assert min(widths) >= 2.5
    assert fig.legends
    import matplotlib.pyplot as plt

    plt.close(fig)  # plot_examples draws with pyplot (a notebook shows it): leave no pyplot state behind


def test_review_panel_names_files(col):
    from imagerank.training.suggest import Suggestion
    from imagerank.widgets import ReviewPanel

    col.build_thumbnails(progress=False)
    panel = ReviewPanel(col, [Suggestion(image_ids=[1, 2], winner=2, confidence=0.75),
                              Suggestion(image_ids=[3, 4], winner=4, confidence=0.6)])
    assert "suggested winner: holiday_0001.jpg (75% sure)" in panel.header.value
    labels = [card.children[1].value for card in panel.cards.children]
    assert "holiday_0000.jpg" in labels[0]
    assert "#1" not in labels[0]
    panel.handle_key("x")
    assert "suggested winner: holiday_0003.jpg (60% sure)" in panel.header.value
