"""The ``imagerank`` console script, driven through ``imagerank.cli.main([...])``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from imgsupport import write_images

import imagerank
from imagerank.cli import build_parser, main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_init_scan_stats_leaderboard(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_images(tmp_path / "a", 3)
    b = write_images(tmp_path / "b", 2, prefix="b")
    write_images(tmp_path / "a" / "nested", 2, prefix="n")
    ws = str(tmp_path / "ws")
    code, out, _ = _run(capsys, "init", ws, "--images", str(a), "--images", str(b), "--no-recursive")
    assert code == 0
    assert "over 2 folder(s)" in out
    toml = (tmp_path / "ws" / "imagerank.toml").read_text()
    assert "recursive = false" in toml
    assert str(a.resolve()) in toml
    code, out, _ = _run(capsys, "scan", ws)
    assert code == 0
    assert "5 added" in out  # nested/ is not walked
    code, out, _ = _run(capsys, "scan", ws, "--no-thumbnails")
    assert "0 added" in out
    assert "5 unchanged" in out
    code, out, _ = _run(capsys, "stats", ws)
    assert code == 0
    stats = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in out.strip().splitlines())}
    assert stats["images"] == "5"
    assert stats["comparisons"] == "0"
    col = imagerank.open(ws)
    ids = [int(i) for i in col.images_df()["id"]]
    col.vote(ids[3], ids[0], "left")
    col.close()
    code, out, _ = _run(capsys, "leaderboard", ws, "-n", "3")
    lines = out.strip().splitlines()
    assert code == 0
    assert lines[0].split()[:3] == ["rank", "image_id", "mu"]
    assert len(lines) == 4
    assert lines[1].split()[1] == str(ids[3])


def test_init_with_scan_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_images(tmp_path / "a", 2)
    code, out, _ = _run(capsys, "init", str(tmp_path / "ws"), "--images", str(a), "--ext", ".jpg", "--scan")
    assert code == 0
    assert "2 added" in out
    assert "2 thumbnails" in out


def test_export_csv_doctor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_images(tmp_path / "a", 4)
    ws = str(tmp_path / "ws")
    col = imagerank.init(ws, a, strategy="spec")
    col.scan(progress=False, thumbnails=False)
    ids = [int(i) for i in col.images_df()["id"]]
    col.vote(ids[0], ids[1], "left")
    col.vote(ids[0], ids[2], "left")
    code, out, _ = _run(capsys, "export", ws, "--top", "2", "--out", str(tmp_path / "top"), "--mode", "symlink")
    assert code == 0
    assert "exported 2 images" in out
    assert sorted(os.listdir(tmp_path / "top"))[0] == "0001_img_0000.jpg"
    assert (tmp_path / "top" / "0001_img_0000.jpg").is_symlink()
    os.remove(col.image(ids[3])["filepath"])
    threshold = float(col.leaderboard()["ordinal"].min()) - 1
    code, out, _ = _run(capsys, "export", ws, "--above", str(threshold), "--out", str(tmp_path / "all"))
    assert code == 0
    assert "1 sources missing" in out
    assert "missing source:" in out
    code, out, _ = _run(capsys, "csv", ws, "--out", str(tmp_path / "b.csv"))
    assert code == 0
    assert (tmp_path / "b.csv").exists()
    code, _, err = _run(capsys, "csv", ws, "--out", str(tmp_path / "b.csv"))
    assert code == 2
    assert "exists" in err
    code, out, _ = _run(capsys, "doctor", ws)
    assert code == 0
    assert "OK" in out
    col.db.execute("UPDATE images SET sigma = sigma * 2 WHERE id=?", (ids[1],))
    code, out, _ = _run(capsys, "doctor", ws)
    assert code == 1
    assert "1 images differ" in out
    code, out, _ = _run(capsys, "doctor", ws, "--fix")
    assert code == 0
    assert "1 images corrected" in out
    assert col.doctor().ok
    col.close()


def test_errors_exit_2_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "stats", str(tmp_path / "nowhere"))
    assert code == 2
    assert "not an imagerank workspace" in err
    assert "imagerank init" in err
    with pytest.raises(SystemExit) as e:
        main(["export", str(tmp_path)])  # --top or --above is required
    assert e.value.code == 2


def test_demo_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = tmp_path / "demo"
    code, out, _ = _run(capsys, "demo", str(ws), "-n", "14", "--seed", "3")
    assert code == 0
    assert "14 images" in out
    manifest = json.loads((ws / "demo_manifest.json").read_text())
    assert manifest["seed"] == 3
    assert len(manifest["images"]) == 14
    code, out, _ = _run(capsys, "demo", str(ws), "-n", "14")  # idempotent: opens what is there
    assert "14 images" in out


def test_lab_binds_localhost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[list[str], dict[str, str]]] = []
    monkeypatch.setattr("subprocess.call", lambda cmd, env: calls.append((cmd, env)) or 0)
    imagerank.init(tmp_path / "ws", tmp_path).close()
    assert main(["lab", str(tmp_path / "ws")]) == 0
    cmd, env = calls[0]
    assert "--ServerApp.ip=127.0.0.1" in cmd
    assert any(c.endswith("01_vote.ipynb") for c in cmd)
    assert env["IMAGERANK_WORKSPACE"] == str((tmp_path / "ws").resolve())


def test_every_command_is_registered() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"init", "demo", "scan", "stats", "leaderboard", "export", "csv", "doctor", "lab"} <= set(sub.choices)
