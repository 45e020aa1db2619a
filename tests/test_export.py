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


# ----------------------------------------------------------------- faults (issue 16)
def _full_disk_copy(fail_on: set[int]):  # type: ignore[no-untyped-def]
    """A stand-in for ``shutil.copy2`` that writes a few bytes and then fails with ENOSPC on the given calls."""
    import errno
    import shutil

    real = shutil.copy2
    calls = [0]

    def copy2(src, dst, *a, **k):  # type: ignore[no-untyped-def]
        calls[0] += 1
        if calls[0] in fail_on:
            with open(dst, "wb") as fh:
                fh.write(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, *a, **k)

    return copy2


def test_export_full_disk_partway_leaves_no_partial_file_and_goes_on(  # type: ignore[no-untyped-def]
    make_collection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import imagerank.export as export_mod

    col = make_collection(4)
    ids = _ranked(col)
    out = tmp_path / "out"
    monkeypatch.setattr(export_mod.shutil, "copy2", _full_disk_copy({2}))
    rep = col.export_top(4, out)
    assert sorted(os.listdir(out)) == ["0001_img_0000.jpg", "0003_img_0002.jpg", "0004_img_0003.jpg"]
    assert len(rep.failed) == 1
    failure = rep.failed[0]
    assert failure.rank == 2
    assert failure.source == col.image(ids[1])["filepath"]
    assert "No space left on device" in failure.reason
    assert "1 failed" in str(rep)
    for _, dest in rep.written:  # whole files only under the final names
        assert Path(dest).stat().st_size > 100
    monkeypatch.undo()  # the disk has room again: the same export fills the gap
    rep = col.export_top(4, out)
    assert not rep.failed
    assert "0002_img_0001.jpg" in os.listdir(out)
    assert not [n for n in os.listdir(out) if n.startswith(".")]


def test_csv_full_disk_leaves_nothing_and_works_again(  # type: ignore[no-untyped-def]
    make_collection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    col = make_collection(3)
    _ranked(col)
    real = pd.DataFrame.to_csv

    def full(self, buf, *a, **k):  # type: ignore[no-untyped-def]
        buf.write("rank,image_id\n1,")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    path = tmp_path / "csv" / "board.csv"
    with pytest.raises(ExportError, match="No space left on device") as e:
        col.to_csv(path)
    assert str(path) in str(e.value)
    assert os.listdir(path.parent) == []  # no 0-byte board.csv, no temporary file
    monkeypatch.setattr(pd.DataFrame, "to_csv", real)
    assert col.to_csv(path) == path  # not refused as "exists"
    assert list(pd.read_csv(path)["rank"]) == [1, 2, 3]
    assert os.listdir(path.parent) == ["board.csv"]


def test_long_utf8_names_are_capped_in_bytes_and_later_ranks_exported(tmp_path: Path) -> None:
    long_name = "é" * 124 + ".jpg"  # 252 UTF-8 bytes: fits the folder, not with a 0001_ prefix
    src = tmp_path / "src"
    src.mkdir()
    (src / long_name).write_bytes(b"long")
    (src / "b.jpg").write_bytes(b"bee")
    board = pd.DataFrame({"rank": [1, 2], "filepath": [str(src / long_name), str(src / "b.jpg")],
                          "filename": [long_name, "b.jpg"]})
    for _ in range(2):  # the second time with a de-duplication suffix
        rep = export_images(board, tmp_path / "out")
        assert not rep.failed
        assert len(rep.written) == 2
    names = sorted(os.listdir(tmp_path / "out"))
    assert len(names) == 4
    assert "0002_b.jpg" in names
    assert "0002_b-1.jpg" in names
    long_out = [n for n in names if n.startswith("0001_")]
    assert len(long_out) == 2
    for n in long_out:
        assert len(n.encode("utf-8")) <= 255
        assert n.endswith(".jpg")
        assert (tmp_path / "out" / n).read_bytes() == b"long"


def test_safe_name_caps_bytes_without_splitting_characters_and_keeps_the_extension() -> None:
    for name in ("é" * 124 + ".jpg", "a" * 300 + ".jpeg", "\U0001f600" * 100 + ".png", "漢" * 90 + ".webp"):
        out = safe_name(name)
        assert len(out.encode("utf-8")) <= 200
        assert os.path.splitext(out)[1] == os.path.splitext(name)[1]
        assert out.encode("utf-8").decode("utf-8") == out
        assert name.startswith(os.path.splitext(out)[0])  # whole characters only
    assert len(safe_name("é" * 124 + ".jpg", max_bytes=50).encode()) <= 50
    assert safe_name(".jpg") == "image.jpg"  # not "jpg"
    assert safe_name("..jpg") == "image.jpg"
    assert safe_name("photo.jpg") == "photo.jpg"
    assert safe_name("README") == "README"


@pytest.mark.parametrize("n", [0, -5])
def test_export_top_non_positive_n_is_an_argument_error(  # type: ignore[no-untyped-def]
    make_collection, tmp_path: Path, n: int
) -> None:
    from imagerank.errors import InvalidArgumentError

    col = make_collection(3)
    with pytest.raises(InvalidArgumentError, match=rf"n: expected .*>= 1, got {n}"):
        col.export_top(n, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(InvalidArgumentError, match="threshold"):
        col.export_above(float("nan"), tmp_path / "out")


def test_copy_without_hard_links_still_never_overwrites(  # type: ignore[no-untyped-def]
    make_collection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    def no_links(*a, **k):  # type: ignore[no-untyped-def]
        raise OSError(errno.EPERM, "Operation not permitted")  # what FAT and some network file systems say

    col = make_collection(2)
    _ranked(col)
    out = tmp_path / "out"
    out.mkdir()
    (out / "0001_img_0000.jpg").write_bytes(b"precious")
    monkeypatch.setattr(os, "link", no_links)
    rep = col.export_top(2, out)
    assert not rep.failed
    assert (out / "0001_img_0000.jpg").read_bytes() == b"precious"
    assert sorted(os.listdir(out)) == ["0001_img_0000-1.jpg", "0001_img_0000.jpg", "0002_img_0001.jpg"]
    path = col.to_csv(tmp_path / "b.csv")
    with pytest.raises(ExportError, match="exists"):
        col.to_csv(path)
    assert sorted(os.listdir(tmp_path)) == sorted(["b.csv", "out", "ws", "ws-images"])
