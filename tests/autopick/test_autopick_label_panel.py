"""The label panel driven headless (handle_message), as the browser would."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from imagerank.autopick import ClipAestheticScorer, FolderSource, PickConfig, PickStore, auto_pick
from imagerank.autopick.fake_commons import render
from imagerank.catalog import Catalog
from imagerank.errors import InvalidArgumentError
from imagerank.widgets import LabelPanel


@pytest.fixture
def picked(cat: Catalog, scorer: ClipAestheticScorer, tmp_path: Path) -> Catalog:
    root = tmp_path / "subjects"
    for name, kinds in (("Tower", ["good", "bad", "good"]), ("Dim", ["bad", "bad"])):
        (root / name).mkdir(parents=True)
        for k, kind in enumerate(kinds):
            render(kind, 640, 480, 10 * k + len(name)).save(root / name / f"{k}.jpg")
    auto_pick(cat, ["Tower", "Dim"], FolderSource(root), scorer, PickConfig(demote_off_subject=False),
              progress=False)
    return cat


def test_keys_label_candidates_with_their_source(picked: Catalog) -> None:
    panel = LabelPanel(picked)
    assert panel.item["total"] == 5
    assert panel.item["subject"] == "Tower"
    replies = panel.handle_message({"type": "ready"})
    (msg, bufs), = replies
    assert msg == {"type": "images", "cid": panel.item["cid"], "has_current": True}
    assert bufs[0][:2] == b"\xff\xd8"  # the current image (the winner)
    assert bufs[1][:2] == b"\xff\xd8"  # the candidate's preview
    first = panel.item["cid"]
    panel.handle_message({"type": "label", "cid": first, "label": "good"})
    second = panel.item["cid"]
    panel.label("skip")
    panel.label("bad")
    assert panel.item["position"] == 3
    df = PickStore(picked).candidates_df().set_index("id")
    assert df.loc[first, "label"] == "good"
    assert df.loc[first, "label_source"] == "label-panel"
    assert pd.isna(df.loc[second, "label"])
    assert panel.done == [(first, "good"), (panel.items[2]["cid"], "bad")]
    # Dim has no image: the panel says so
    (msg, bufs), = panel.handle_message({"type": "ready"})
    assert panel.item["subject"] == "Dim"
    assert msg["has_current"] is False
    assert bufs[0] == b""
    panel.back()
    assert panel.item["position"] == 2
    # a second panel shows only what is still unlabelled
    assert LabelPanel(picked).item["total"] == 3
    assert LabelPanel(picked, ["Dim"], unlabelled_only=False).item["total"] == 2


def test_bad_messages_become_status_never_exceptions(picked: Catalog) -> None:
    panel = LabelPanel(picked)
    cid = panel.item["cid"]
    panel.handle_message({"type": "label", "cid": cid + 999, "label": "good"})
    assert panel.status["level"] == "error"
    assert "stale key" in panel.status["text"]
    panel.handle_message({"type": "label", "cid": cid, "label": "great"})
    assert "expected good, bad or skip" in panel.status["text"]
    panel.handle_message({"type": "label", "cid": None, "label": "good"})
    assert "cid: expected an integer" in panel.status["text"]
    panel.handle_message({"type": "jump"})
    assert "expected ready, label or back" in panel.status["text"]
    panel.back()
    assert "already at the first" in panel.status["text"]
    assert PickStore(picked).candidates_df().label.isna().all()
    with pytest.raises(InvalidArgumentError, match="source"):
        LabelPanel(picked, source=" ")


def test_finished_queue(picked: Catalog) -> None:
    panel = LabelPanel(picked, ["Dim"])
    panel.label("bad")
    panel.label("bad")
    assert panel.item["finished"] is True
    assert panel.handle_message({"type": "ready"}) == []
    panel.label("good")
    assert panel.status["level"] == "error"
