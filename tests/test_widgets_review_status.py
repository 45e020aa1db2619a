"""The review panel's status line names each decision in plain English ("approved", "rejected", "edited")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import imagerank
from imagerank.training.simulate import write_preference_images
from imagerank.training.suggest import Suggestion
from imagerank.widgets import ReviewPanel


@pytest.fixture
def col(tmp_path: Path) -> Iterator[imagerank.Collection]:
    write_preference_images(tmp_path / "images", 4, size=(64, 48), seed=3)
    c = imagerank.init(tmp_path / "ws", tmp_path / "images", strategy="random")
    c.scan(progress=False)
    yield c
    c.close()


def test_status_says_rejected_and_approved(col: imagerank.Collection) -> None:
    ids = [int(i) for i in col.images_df()["id"]]
    items = [Suggestion(image_ids=ids[0:2], winner=ids[0], confidence=0.7),
             Suggestion(image_ids=ids[2:4], winner=ids[3], confidence=0.6)]
    panel = ReviewPanel(col, items)
    panel.reject()
    assert panel.status.value.startswith("rejected")
    assert "rejectd" not in panel.status.value
    panel.approve()
    assert panel.status.value.startswith("approved")
