"""``imagerank autopick`` on 60 subjects against the fake Commons server, and ``autopick-train``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import torch
from autopick_support import TINY_CLIP, write_subjects

from imagerank.autopick import ClipAestheticScorer, PickStore
from imagerank.autopick.fake_commons import FakeCommons, fake_catalogue, render
from imagerank.catalog import Catalog
from imagerank.cli import main


@pytest.mark.slow
def test_autopick_60_subjects_resolves_flags_respects_the_rate_and_reruns_offline(
        tmp_path: Path, scorer: ClipAestheticScorer, capsys: pytest.CaptureFixture[str]) -> None:
    head = tmp_path / "head.pth"
    torch.save(scorer.head.state_dict(), head)
    names = [f"Subject {i:03d}" for i in range(60)]
    csv = write_subjects(tmp_path / "subjects.csv", names)
    ws = tmp_path / "ws"
    Catalog.create(ws).close()
    with FakeCommons(fake_catalogue(60)) as srv:
        args = ["autopick", str(ws), str(csv), "--api", srv.api, "--contact", "tests@example.org", "--clip",
                TINY_CLIP, "--head", str(head), "--rate", "450", "--no-demote", "--exclude-licence", "CC BY-NC"]
        assert main(args) == 0
        out = capsys.readouterr().out
        assert "batch 0: ok, processed 50, updated 50" in out
        assert "batch 1: ok, processed 10, updated 10" in out
        n_requests = len(srv.log)
        with sqlite3.connect(ws / "autopick" / "rate_budget.sqlite") as db:
            spent = db.execute("SELECT COUNT(*) FROM commons_requests").fetchone()[0]
        assert spent == n_requests <= 450  # every request went through the budget, within the rate
        # rerun: finished subjects make no request at all
        assert main(args) == 0
        assert len(srv.log) == n_requests
        assert "skipped 60" in capsys.readouterr().out
    cat = Catalog.open(ws)
    df = PickStore(cat).subjects_df().set_index("name")
    flagged = set(df.index[df.status == "flagged"])
    no_files = {n for i, n in enumerate(names) if i % 10 == 9}
    only_bad = {n for i, n in enumerate(names) if i % 6 == 5} - no_files
    assert flagged == no_files | only_bad
    assert (df.status == "picked").sum() == 60 - len(flagged)
    assert df.loc[sorted(flagged), "reason"].str.len().gt(10).all()
    picked = df[df.status == "picked"]
    assert picked.licence.notna().all()
    assert not picked.licence.str.startswith("CC BY-NC").any()
    cat.close()


def test_autopick_folder_source_and_bad_arguments(tmp_path: Path, scorer: ClipAestheticScorer,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    head = tmp_path / "head.pth"
    torch.save(scorer.head.state_dict(), head)
    root = tmp_path / "subjects"
    (root / "Tower").mkdir(parents=True)
    render("good", 900, 700, 1).save(root / "Tower" / "a.jpg")
    csv = write_subjects(tmp_path / "s.csv", ["Tower", "Nowhere"])
    ws = tmp_path / "ws"
    Catalog.create(ws).close()
    base = ["autopick", str(ws), str(csv), "--clip", TINY_CLIP, "--head", str(head)]
    assert main([*base, "--source", f"folder:{root}", "--no-demote"]) == 0
    out = capsys.readouterr().out
    assert "picked 1, flagged 1, errors 0" in out
    assert "no candidates found at folder for 'Nowhere'" in out
    with pytest.raises(SystemExit):
        main([*base, "--source", "ftp"])
    assert "expected 'commons' or 'folder:DIR'" in capsys.readouterr().err
    assert main([*base, "--contact", "nobody"]) == 2
    assert "User-Agent policy" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--threshold", "12"])


def test_autopick_train_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = tmp_path / "ws"
    Catalog.create(ws).close()
    assert main(["autopick-train", str(ws), "--clip", TINY_CLIP]) == 2
    assert "at least 4 good/bad labels" in capsys.readouterr().err
