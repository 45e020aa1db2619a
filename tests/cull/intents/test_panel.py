"""The plan panel: preview shows the plan and writes nothing; Run runs exactly the plan shown; errors stay in the
status line."""

from __future__ import annotations

import pytest

from imagerank.demo import make_demo
from imagerank.widgets import PlanPanel


@pytest.fixture
def col(tmp_path):
    c = make_demo(tmp_path / "ws", n=10, progress=False)
    yield c
    c.close()


def test_preview_then_run(col):
    panel = PlanPanel(col, "top 3, label them good")
    assert panel.run() is None
    assert panel.status.value == "nothing to run: Preview first"
    shown = panel.preview()
    assert shown is not None
    assert not panel.run_button.disabled
    assert "3 files selected" in panel.status.value
    assert "<table>" in panel.view.value
    assert 'title="' in panel.view.value  # each sample file carries its cull reasons
    assert col.db.query("SELECT COUNT(*) FROM plans")[0][0] == 0
    done = panel.run()
    assert done is not None
    assert done.plan == shown.plan
    assert list(done.selection["image_id"]) == list(shown.selection["image_id"])
    assert panel.status.value.startswith("ran as plan 1")
    assert panel.run_button.disabled  # a plan runs once per preview


def test_editing_the_text_needs_a_new_preview(col):
    panel = PlanPanel(col)
    panel.preview("top 2")
    panel.text.value = "top 2, label them bad"
    assert panel.run_button.disabled
    assert panel.run() is None


def test_bad_intents_stay_in_the_status_line(col):
    panel = PlanPanel(col)
    assert panel.preview("delete everything") is None
    assert panel.status.value.startswith("not run: intent: not understood: 'delete'")
    assert panel.run_button.disabled
    assert panel.preview("top 2, copy to /etc/x") is None
    assert "export destination" in panel.status.value
