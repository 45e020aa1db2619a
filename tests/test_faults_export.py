"""Issue 16, export and CSV from the command line: a bad N is a usage error, a full disk names its cause, leaves
no file behind, and every rank that could be written is written."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pandas as pd
import pytest

import imagerank.export as export_mod
from imagerank.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _workspace(make_collection) -> str:  # type: ignore[no-untyped-def]
    col = make_collection(3)
    ids = [int(i) for i in col.images_df()["id"]]
    col.vote(ids[0], ids[1], "left")
    col.vote(ids[1], ids[2], "left")
    ws = str(col.root)
    col.close()
    return ws


@pytest.mark.parametrize("n", ["0", "-5"])
def test_export_top_non_positive_is_a_usage_error(  # type: ignore[no-untyped-def]
    make_collection, tmp_path: Path, capsys: pytest.CaptureFixture[str], n: str
) -> None:
    ws = _workspace(make_collection)
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["export", ws, "--top", n, "--out", str(tmp_path / "out")])
    assert e.value.code == 2
    _, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1
    assert "--top" in err
    assert not (tmp_path / "out").exists()


def test_export_full_disk_lists_failures_and_exits_1(  # type: ignore[no-untyped-def]
    make_collection, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = _workspace(make_collection)
    real = export_mod.shutil.copy2
    calls = [0]

    def copy2(src, dst, *a, **k):  # type: ignore[no-untyped-def]
        calls[0] += 1
        if calls[0] == 2:
            Path(dst).write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, *a, **k)

    monkeypatch.setattr(export_mod.shutil, "copy2", copy2)
    out_dir = tmp_path / "out"
    code, out, _ = _run(capsys, "export", ws, "--top", "3", "--out", str(out_dir))
    assert code == 1
    assert "exported 2 images" in out
    assert "1 failed" in out
    failed = [line for line in out.splitlines() if "failed: rank 2" in line]
    assert len(failed) == 1
    assert "img_0001.jpg" in failed[0]
    assert "No space left on device" in failed[0]
    assert sorted(os.listdir(out_dir)) == ["0001_img_0000.jpg", "0003_img_0002.jpg"]


def test_csv_full_disk_is_one_line_and_the_retry_works(  # type: ignore[no-untyped-def]
    make_collection, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = _workspace(make_collection)
    real = pd.DataFrame.to_csv

    def full(self, buf, *a, **k):  # type: ignore[no-untyped-def]
        buf.write("rank,")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    path = tmp_path / "board.csv"
    code, _, err = _run(capsys, "csv", ws, "--out", str(path))
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "No space left on device" in err
    assert not path.exists()
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".part")]
    monkeypatch.setattr(pd.DataFrame, "to_csv", real)
    code, _, _ = _run(capsys, "csv", ws, "--out", str(path))
    assert code == 0
    assert len(pd.read_csv(path)) == 3
