"""Importing selection and crop logs: good rows imported, bad rows reported one by one, the rest kept; the CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image

import imagerank
from imagerank.cli import main
from imagerank.errors import ImportLogError
from imagerank.training.imports import import_crop_log, import_selection_log


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _files(col: imagerank.Collection) -> dict[str, tuple[int, str]]:
    return {r["filename"]: (int(r["id"]), r["filepath"]) for _, r in col.images_df().iterrows()}


def test_selection_log_imports_good_rows_and_reports_bad_ones(small_col, tmp_path: Path) -> None:
    pref_col = small_col(8)  # its own image folder: this test adds a file to it
    f = _files(pref_col)
    img_dir = Path(pref_col.settings.roots[0])
    names = sorted(f)[:6]
    # a new image in the collection's folder, not scanned yet: added on import
    Image.new("RGB", (40, 30), (200, 10, 10)).save(img_dir / "late_arrival.png")
    (tmp_path / "outside.png").write_bytes((img_dir / names[0]).read_bytes())
    log = _write_csv(tmp_path / "sel.csv", ["candidates", "chosen", "voter"], [
        ["|".join(str(img_dir / n) for n in names[:3]), str(img_dir / names[1]), "ann"],   # line 2: 3-way
        [f"{img_dir / names[3]}|{img_dir / names[4]}", names[4], ""],                     # line 3: pair, by name
        [f"{img_dir / names[0]}|{img_dir / 'gone.jpg'}", str(img_dir / names[0]), ""],   # line 4: missing file
        [f"{img_dir / names[0]}|{img_dir / names[1]}", str(img_dir / names[5]), ""],     # line 5: not a candidate
        [str(img_dir / names[0]), str(img_dir / names[0]), ""],                          # line 6: one candidate
        [f"{img_dir / names[2]}|{img_dir / names[3]}", "", ""],                           # line 7: empty chosen
        [f"{img_dir / names[2]}|../outside.png", str(img_dir / names[2]), ""],            # line 8: escapes
        [f"{img_dir / names[2]}|{img_dir / 'late_arrival.png'}", str(img_dir / "late_arrival.png"), ""],  # 9
    ])
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"{img_dir / names[0]}|{img_dir / names[1]},{img_dir / names[0]},bob,extra\n")  # line 10
    rep = import_selection_log(pref_col, log, base=tmp_path / "sub")
    assert rep.rows == 9
    assert rep.imported == 3
    assert rep.images_added == 1
    by_line = {e.line: e.reason for e in rep.errors}
    assert set(by_line) == {4, 5, 6, 7, 8, 10}
    assert "file does not exist" in by_line[4]
    assert "not among the candidates" in by_line[5]
    assert "at least 2 candidates" in by_line[6]
    assert "empty 'chosen'" in by_line[7]
    assert "outside" in by_line[8]
    assert "more fields" in by_line[10]
    m = pref_col.votes.get(rep.ids[0])
    assert m.kind == "ranking"
    assert dict(zip(m.image_ids, m.ranks)) == {
        f[names[0]][0]: 1, f[names[1]][0]: 0, f[names[2]][0]: 1}
    assert pref_col.votes.get(rep.ids[1]).kind == "win"
    md = pref_col.matches_df()
    assert set(md["source"]) == {"import"}
    assert "ann" in set(md["voter"])
    fails = pref_col.images.failures_df()
    assert (fails["stage"] == "import-selections").sum() == 6
    assert pref_col.doctor().ok
    with pytest.raises(ImportLogError, match="imported before"):
        import_selection_log(pref_col, log)
    again = import_selection_log(pref_col, log, force=True, base=tmp_path / "sub")
    assert again.imported == 3
    assert "line 4" in str(rep)


def test_selection_log_wide_format_and_relative_paths(pref_col) -> None:
    img_dir = Path(pref_col.settings.roots[0])
    names = sorted(_files(pref_col))[:4]
    log = _write_csv(img_dir / "choices.csv", ["candidate_1", "candidate_2", "candidate_3", "chosen", "decision_ms"],
                     [[names[0], names[1], names[2], names[2], 812], [names[3], names[0], "", names[3], ""]])
    rep = import_selection_log(pref_col, log)
    assert rep.ok
    assert rep.imported == 2
    assert pref_col.matches_df().groupby("match_id").size().tolist() == [3, 2]


def test_unreadable_selection_logs_raise(tmp_path: Path, pref_col) -> None:
    with pytest.raises(ImportLogError, match="no such file"):
        import_selection_log(pref_col, tmp_path / "nope.csv")
    bad = _write_csv(tmp_path / "bad.csv", ["file", "winner"], [["a", "b"]])
    with pytest.raises(ImportLogError, match="'chosen' column"):
        import_selection_log(pref_col, bad)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ImportLogError, match="empty file"):
        import_selection_log(pref_col, tmp_path / "empty.csv")
    (tmp_path / "latin.csv").write_bytes(b"candidates,chosen\n\xe9\xe9,\xe9\n")
    with pytest.raises(ImportLogError, match="not UTF-8"):
        import_selection_log(pref_col, tmp_path / "latin.csv")


def test_crop_log_units_detection_and_bad_rows(pref_col, tmp_path: Path) -> None:
    f = _files(pref_col)
    names = sorted(f)[:6]
    img_dir = Path(pref_col.settings.roots[0])  # images are 64 x 48 pixels
    log = _write_csv(tmp_path / "crops.csv", ["path", "x", "y", "w", "h", "units", "aspect"], [
        [img_dir / names[0], 0.1, 0.2, 0.5, 0.5, "", "free"],   # line 2: normalised (detected)
        [img_dir / names[1], 16, 12, 32, 24, "", ""],           # line 3: pixels (detected)
        [img_dir / names[2], 0, 0, 1, 1, "px", ""],             # line 4: declared pixels: a 1x1 px box
        [img_dir / names[3], 40, 0, 40, 20, "px", ""],          # line 5: outside (40 + 40 > 64)
        [img_dir / names[4], 0.2, 0.2, 0, 0.3, "", ""],         # line 6: zero area
        [img_dir / "missing.jpg", 0.1, 0.1, 0.2, 0.2, "", ""],  # line 7: missing file
        [img_dir / names[5], "left", 0.1, 0.2, 0.2, "", ""],    # line 8: not a number
        [img_dir / names[5], 0.1, 0.1, 0.2, 0.2, "inch", ""],   # line 9: bad units
    ])
    rep = import_crop_log(pref_col, log)
    assert rep.imported == 3
    assert rep.rows == 8
    by_line = {e.line: e.reason for e in rep.errors}
    assert set(by_line) == {5, 6, 7, 8, 9}
    assert "outside" in by_line[5]
    assert "zero area" in by_line[6]
    assert "does not exist" in by_line[7]
    assert "numbers" in by_line[8]
    assert "units" in by_line[9]
    crops = pref_col.db.query("SELECT image_id, x, y, w, h, aspect, source FROM crops ORDER BY id")
    assert [tuple(r)[1:5] for r in crops][:2] == [pytest.approx((0.1, 0.2, 0.5, 0.5)),
                                                  pytest.approx((0.25, 0.25, 0.5, 0.5))]
    assert tuple(crops[2])[1:5] == pytest.approx((0, 0, 1 / 64, 1 / 48))
    assert crops[0]["aspect"] == "free"
    assert {r["source"] for r in crops} == {"user"}
    forced = import_crop_log(pref_col, _write_csv(tmp_path / "c2.csv", ["file", "x", "y", "width", "height"],
                                                  [[img_dir / names[0], 0, 0, 1, 1]]), units="px")
    assert forced.ok
    assert pref_col.db.query("SELECT w FROM crops WHERE id=?", (forced.ids[0],))[0][0] == 1 / 64
    with pytest.raises(ImportLogError, match="path, x, y, w, h"):
        import_crop_log(pref_col, _write_csv(tmp_path / "c3.csv", ["path", "left", "top"], [["a", 1, 2]]))


def test_cli_import_and_train(pref_col, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img_dir = Path(pref_col.settings.roots[0])
    names = sorted(_files(pref_col))
    rows = [[f"{img_dir / names[i]}|{img_dir / names[(i * 7 + 3) % 120]}", str(img_dir / names[i])]
            for i in range(0, 120, 2)]
    rows.append([f"{img_dir / names[0]}|{img_dir / 'nope.jpg'}", str(img_dir / names[0])])
    log = _write_csv(tmp_path / "sel.csv", ["candidates", "chosen"], rows)
    ws = str(pref_col.root)
    assert main(["import-selections", ws, str(log)]) == 1  # one bad row: exit 1, the rest imported
    out = capsys.readouterr().out
    assert "60 of 61 rows imported" in out
    assert "line 62" in out
    assert "file does not exist" in out
    assert main(["import-selections", ws, str(log)]) == 2
    assert "imported before" in capsys.readouterr().err
    clog = _write_csv(tmp_path / "c.csv", ["path", "x", "y", "w", "h"], [[img_dir / names[0], 8, 8, 16, 16]])
    assert main(["import-crops", ws, str(clog)]) == 0
    assert "1 of 1 rows imported" in capsys.readouterr().out
    assert main(["train", ws, "--features", "cheap", "--epochs", "2", "--no-progress", "--name", "cli"]) == 0
    out = capsys.readouterr().out
    assert "Ranker(" in out
    assert "openskill" in out
    assert (pref_col.root / "models" / "cli" / "meta.json").exists()
    empty = imagerank.init(tmp_path / "empty")
    empty.close()
    assert main(["train", str(tmp_path / "empty"), "--epochs", "1", "--no-progress"]) == 2
    assert "no votes yet" in capsys.readouterr().err


def _pairs_log(path: Path, img_dir: Path, names: list[str], n: int) -> Path:
    """A selection log of ``n`` distinct pairs, the first candidate chosen, decision_ms 500 + i."""
    rows = [[f"{img_dir / names[i]}|{img_dir / names[i + 1]}", str(img_dir / names[i]), "ann", 500 + i]
            for i in range(n)]
    return _write_csv(path, ["candidates", "chosen", "voter", "decision_ms"], rows)


def test_interrupted_selection_import_resumes_without_doubles(pref_col, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    img_dir = Path(pref_col.settings.roots[0])
    names = sorted(_files(pref_col))
    log = _pairs_log(tmp_path / "sel.csv", img_dir, names, 10)
    real_record = pref_col.votes.record
    calls = {"n": 0}

    def dies_after_four(*a, **k):  # the process is killed during the 5th row
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real_record(*a, **k)

    monkeypatch.setattr(pref_col.votes, "record", dies_after_four)
    with pytest.raises(KeyboardInterrupt):
        import_selection_log(pref_col, log)
    monkeypatch.undo()
    assert len(pref_col.matches_df()["match_id"].unique()) == 4
    rep = import_selection_log(pref_col, log)  # the rerun is not refused: it imports the 6 rows left
    assert (rep.imported, rep.already, rep.rows) == (6, 4, 10)
    assert rep.ok
    assert "4 rows imported before" in str(rep)
    md = pref_col.matches_df()
    assert len(md["match_id"].unique()) == 10
    assert sorted(md.drop_duplicates("match_id")["decision_ms"]) == [500.0 + i for i in range(10)]
    with pytest.raises(ImportLogError, match="imported before"):  # finished now
        import_selection_log(pref_col, log)
    # the log grows: only the new rows are imported
    grown = _pairs_log(tmp_path / "sel_grown.csv", img_dir, names, 13)
    rep = import_selection_log(pref_col, grown)
    assert (rep.imported, rep.already) == (3, 10)
    assert len(pref_col.matches_df()["match_id"].unique()) == 13
    assert pref_col.doctor().ok


def test_crop_import_is_idempotent_per_row(pref_col, tmp_path: Path) -> None:
    img_dir = Path(pref_col.settings.roots[0])
    names = sorted(_files(pref_col))
    log = _write_csv(tmp_path / "c.csv", ["path", "x", "y", "w", "h"],
                     [[img_dir / names[i], 0.1, 0.1, 0.5, 0.5] for i in range(3)])
    assert import_crop_log(pref_col, log).imported == 3
    again = import_crop_log(pref_col, log)
    assert (again.imported, again.already) == (0, 3)
    assert pref_col.db.query("SELECT COUNT(*) FROM crops")[0][0] == 3
    assert import_crop_log(pref_col, log, force=True).imported == 3


def test_oversized_field_and_bad_values_reject_their_row_only(pref_col, tmp_path: Path) -> None:
    img_dir = Path(pref_col.settings.roots[0])
    names = sorted(_files(pref_col))
    pair = f"{img_dir / names[0]}|{img_dir / names[1]}"
    log = _write_csv(tmp_path / "sel.csv", ["candidates", "chosen", "voter", "decision_ms"], [
        [pair, str(img_dir / names[0]), "ann", 500],               # line 2: fine
        [pair, str(img_dir / names[0]), "x" * 200_000, 500],       # line 3: over csv.field_size_limit
        [pair, str(img_dir / names[1]), "v" * 100_000, ""],         # line 4: under the csv limit, too long a voter
        [pair, str(img_dir / names[1]), "bob", "inf"],              # line 5
        [pair, str(img_dir / names[1]), "bob", "-5"],               # line 6
        [pair, str(img_dir / names[1]), "bob", "nan"],              # line 7
        [f"{img_dir / names[2]}|{img_dir / names[3]}", str(img_dir / names[3]), "bob", 0],  # line 8: fine
    ])
    rep = import_selection_log(pref_col, log)
    assert rep.rows == 7
    assert rep.imported == 2
    by_line = {e.line: e.reason for e in rep.errors}
    assert set(by_line) == {3, 4, 5, 6, 7}, by_line
    assert "field larger than field limit" in by_line[3]
    assert "voter" in by_line[4]
    assert "200" in by_line[4]
    for line in (5, 6, 7):
        assert "decision_ms" in by_line[line]
    stored = pref_col.db.query("SELECT voter, decision_ms FROM matches ORDER BY id")
    assert [tuple(r) for r in stored] == [("ann", 500.0), ("bob", 0.0)]


@pytest.mark.parametrize("kwargs", [{"decision_ms": float("inf")}, {"decision_ms": -5.0},
                                    {"decision_ms": float("nan")}, {"voter": "v" * 100_000}])
def test_vote_log_rejects_bad_decision_time_and_voter(pref_col, kwargs: dict) -> None:
    from imagerank.errors import InvalidArgumentError

    a, b = (int(i) for i in pref_col.images_df()["id"][:2])
    with pytest.raises(InvalidArgumentError, match=r"decision_ms|voter"):
        pref_col.votes.record([a, b], [0, 1], **kwargs)
    assert pref_col.db.query("SELECT COUNT(*) FROM matches")[0][0] == 0
    pref_col.votes.record([a, b], [0, 1], decision_ms=0, voter="v" * 200)  # the limits themselves are fine
