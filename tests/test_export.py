"""Exports: rank-prefixed names, never overwrite, never touch sources, missing sources reported, CSV."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import pytest

import imagerank
from imagerank.errors import ExportError
from imagerank.export import export_images, safe_name


def _ranked(col: imagerank.Collection) -> list[int]:
    """Vote so the images rank in id order (first id best); returns the ids."""
    ids = [int(i) for i in col.images_df()["id"]]
    for _ in range(2):
        for k in range(len(ids) - 1):
            col.vote(ids[k], ids[k + 1], "left")
    assert list(col.leaderboard()["image_id"]) == ids
    return ids


def _digests(col: imagerank.Collection) -> dict[str, tuple[str, int]]:
    out = {}
    for p in col.images_df()["filepath"]:
        if os.path.exists(p):
            out[p] = (hashlib.sha256(Path(p).read_bytes()).hexdigest(), os.stat(p).st_mtime_ns)
    return out


def test_export_top_names_and_copies(make_collection, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(5)
    _ranked(col)
    before = _digests(col)
    rep = col.export_top(3, tmp_path / "out")
    names = sorted(os.listdir(tmp_path / "out"))
    assert names == ["0001_img_0000.jpg", "0002_img_0001.jpg", "0003_img_0002.jpg"]
    assert len(rep.written) == 3
    assert not rep.missing
    assert not rep.failed
    assert "exported 3 images" in str(rep)
    for src, dest in rep.written:
        assert Path(dest).read_bytes() == Path(src).read_bytes()
        assert not Path(dest).is_symlink()
    assert _digests(col) == before  # sources untouched


def test_export_never_overwrites(make_collection, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(3)
    _ranked(col)
    out = tmp_path / "out"
    out.mkdir()
    (out / "0001_img_0000.jpg").write_bytes(b"precious")
    col.export_top(2, out)
    col.export_top(2, out)  # again into the same folder
    assert (out / "0001_img_0000.jpg").read_bytes() == b"precious"
    assert sorted(os.listdir(out)) == [
        "0001_img_0000-1.jpg", "0001_img_0000-2.jpg", "0001_img_0000.jpg", "0002_img_0001-1.jpg", "0002_img_0001.jpg"
    ]


def test_missing_sources_are_reported(make_collection, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(4)
    ids = _ranked(col)
    gone = col.image(ids[1])["filepath"]
    os.remove(gone)  # deleted after the scan, before the export (catalog still says active)
    rep = col.export_top(3, tmp_path / "out")
    assert rep.missing == [gone]
    assert [os.path.basename(d) for _, d in rep.written] == ["0001_img_0000.jpg", "0003_img_0002.jpg"]
    assert "1 sources missing" in str(rep)


@pytest.mark.parametrize("mode", ["symlink", "hardlink"])
def test_link_modes(make_collection, tmp_path: Path, mode: str) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(3)
    _ranked(col)
    before = _digests(col)
    rep = col.export_top(2, tmp_path / "out", mode=mode)
    assert len(rep.written) == 2
    for src, dest in rep.written:
        d = Path(dest)
        if mode == "symlink":
            assert d.is_symlink()
            assert os.readlink(d) == os.path.abspath(src)
        else:
            assert not d.is_symlink()
            assert os.stat(d).st_ino == os.stat(src).st_ino
    assert _digests(col) == before


def test_export_above_threshold(make_collection, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(4)
    _ranked(col)
    board = col.leaderboard()
    threshold = float(board["ordinal"][1])  # the top two are at or above it
    rep = col.export_above(threshold, tmp_path / "out")
    assert sorted(os.listdir(tmp_path / "out")) == ["0001_img_0000.jpg", "0002_img_0001.jpg"]
    assert len(rep.written) == 2
    assert col.export_above(1e9, tmp_path / "none").written == []


def test_default_export_folder(make_collection) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(3)
    rep = col.export_top(2)
    assert rep.out_dir.parent == col.exports_dir
    assert rep.out_dir.name.startswith("top2-")
    assert len(list(rep.out_dir.iterdir())) == 2


def test_bad_mode_and_unwritable_destination(make_collection, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(2)
    with pytest.raises(ExportError, match="mode: expected one of copy, symlink, hardlink"):
        col.export_top(1, tmp_path / "out", mode="move")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match="cannot create export folder"):
        col.export_top(1, tmp_path / "file" / "sub")


def test_names_cannot_escape_the_folder(tmp_path: Path) -> None:
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("..\\..\\boot.ini") == "boot.ini"
    assert safe_name("..") == "image"
    assert safe_name("a\x00b<c>.jpg") == "abc.jpg"
    src = tmp_path / "x.jpg"
    src.write_bytes(b"data")
    board = pd.DataFrame({"rank": [1], "filepath": [str(src)], "filename": ["../../evil.jpg"]})
    rep = export_images(board, tmp_path / "out")
    assert [Path(d).parent for _, d in rep.written] == [tmp_path / "out"]
    assert os.listdir(tmp_path / "out") == ["0001_evil.jpg"]


def test_to_csv_refuses_to_overwrite(make_collection, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(3)
    _ranked(col)
    path = col.to_csv(tmp_path / "csv" / "board.csv")
    df = pd.read_csv(path)
    assert list(df["rank"]) == [1, 2, 3]
    assert {"image_id", "filename", "filepath", "mu", "sigma", "ordinal", "status"} <= set(df.columns)
    with pytest.raises(ExportError, match="exists"):
        col.to_csv(path)
    assert pd.read_csv(path).equals(df)
    default = col.to_csv()
    assert default.parent == col.exports_dir
    assert default.suffix == ".csv"


def test_min_comparisons_leaves_out_images_only_a_prior_ranks(make_collection, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from imagerank.cli import main

    col = make_collection(6)
    ids = [int(i) for i in col.images_df()["id"]]
    col.vote(ids[0], ids[1], "left")
    col.vote(ids[1], ids[2], "left")
    # a learned prior ranks an image nobody has voted on above all: it leads the plain leaderboard
    col.votes.set_priors([(60.0, 3.0, ids[5])])
    assert int(col.leaderboard(1)["image_id"].iloc[0]) == ids[5]
    board = col.leaderboard(min_comparisons=1)
    assert set(board["image_id"]) == {ids[0], ids[1], ids[2]}
    assert board["rank"].tolist() == [1, 2, 3]
    assert (board["comparison_count"] >= 1).all()
    assert len(col.leaderboard(min_comparisons=2)) == 1  # only ids[1] was in two votes
    rep = col.export_top(2, tmp_path / "voted", min_comparisons=1)
    paths = dict(zip(col.images_df()["id"].astype(int), col.images_df()["filepath"]))
    assert [src for src, _ in rep.written] == [paths[i] for i in col.leaderboard(2, min_comparisons=1)["image_id"]]
    assert paths[ids[5]] not in [src for src, _ in rep.written]
    cut = float(col.leaderboard()["ordinal"].min()) - 1
    rep = col.export_above(cut, tmp_path / "above", min_comparisons=1)
    assert len(os.listdir(tmp_path / "above")) == 3
    with pytest.raises(ValueError, match="min_comparisons"):
        col.leaderboard(min_comparisons=-1)
    ws = str(col.root)
    col.close()
    assert main(["export", ws, "--top", "6", "--min-comparisons", "1", "--out", str(tmp_path / "cli")]) == 0
    assert len(os.listdir(tmp_path / "cli")) == 3
    with pytest.raises(SystemExit):
        main(["leaderboard", ws, "--min-comparisons", "-1"])
