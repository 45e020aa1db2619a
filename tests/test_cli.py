"""The ``imagerank`` console script, driven through ``imagerank.cli.main([...])``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from imgsupport import write_images
from typer.testing import CliRunner

import imagerank
from imagerank.cli import app, build_parser, main


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
    sub = build_parser()  # the click group behind the typer app
    assert {"init", "demo", "scan", "stats", "leaderboard", "export", "csv", "doctor", "lab"} <= set(sub.commands)


# ---------------------------------------------------------------------------------------------- help and errors
EVERY_COMMAND = {
    "init", "demo", "scan", "thumbnails", "stats", "doctor", "replay", "failures", "lab",
    "leaderboard", "export", "csv", "images", "show",
    "pairs", "vote", "record", "undo", "matches", "sessions", "set-status", "label",
    "features", "duplicates", "similar", "feature-map",
    "train", "prior", "apply-prior", "train-crops", "import-selections", "import-crops", "models", "evaluate",
    "generate", "steps", "add-step", "tree", "jobs",
    "cull",
    "plan", "explain",
    "autopick", "autopick-train",
}


def test_help_lists_every_command_with_one_line() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == EVERY_COMMAND == set(build_parser().commands)


@pytest.mark.parametrize("name", sorted(EVERY_COMMAND))
def test_help_of_each_command_names_its_arguments(name: str) -> None:
    command = build_parser().commands[name]
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: imagerank {name} ")
    assert (command.help or "").split("\n")[0][:30] in " ".join(result.output.split())
    for param in command.params:
        if param.param_type_name == "argument":
            assert (param.name or "").upper() in result.output.splitlines()[0]
        elif param.name != "help":
            assert param.opts[-1] in result.output


def test_main_help_returns_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--help")
    assert code == 0
    assert "leaderboard" in out
    code, out, _ = _run(capsys, "vote", "-h")
    assert code == 0
    assert "left" in out


def test_errors_are_one_line_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["stats", str(tmp_path / "nowhere")], ["undo", str(tmp_path / "nowhere"), "--match", "1"]):
        code, out, err = _run(capsys, *argv)
        assert code == 2
        assert out == ""
        assert len(err.strip().splitlines()) == 1
        assert err.startswith(f"imagerank {argv[0]}: error: ")
        assert "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["export", "WS", "--top", "2", "--above", "0"],
    ["leaderboard", "WS", "--top", "zero"],
    ["vote", "WS", "1", "2", "sideways"],
    ["no-such-command"],
])
def test_usage_errors_exit_2_with_one_line(argv: list[str], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main([str(tmp_path) if a == "WS" else a for a in argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert ": error: " in err
    assert "--help" in err


def test_no_arguments_print_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 2
    assert "Commands:" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- new commands
def test_vote_record_undo_matches_sessions(make_collection, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(5)
    ws = str(col.root)
    ids = [int(i) for i in col.images_df()["id"]]
    col.close()
    code, out, _ = _run(capsys, "undo", ws)
    assert code == 1
    assert "nothing to undo" in out
    code, out, _ = _run(capsys, "pairs", ws, "-n", "3")
    assert code == 0
    pairs = [tuple(int(x) for x in line.split()) for line in out.strip().splitlines()]
    assert len(pairs) == 3
    assert all(a != b and {a, b} <= set(ids) for a, b in pairs)
    code, out, _ = _run(capsys, "vote", ws, str(ids[0]), str(ids[1]), "right", "--voter", "ann")
    assert code == 0
    assert out.strip() == f"recorded match 1 (win, rated): {ids[1]} > {ids[0]}"
    code, out, _ = _run(capsys, "vote", ws, str(ids[2]), str(ids[3]), "skip")
    assert out.strip() == f"recorded match 2 (skip, not rated): {ids[2]} = {ids[3]}"
    code, out, _ = _run(capsys, "record", ws, str(ids[4]), str(ids[0]), str(ids[2]))
    assert code == 0
    assert f"{ids[4]} > {ids[0]} > {ids[2]}" in out
    code, out, _ = _run(capsys, "record", ws, str(ids[1]), str(ids[2]), "--ranks", "0,0")
    assert f"{ids[1]} = {ids[2]}" in out
    code, out, _ = _run(capsys, "matches", ws)
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["match_id", "kind", "rated"]
    assert len(lines) == 5
    assert "ann" in lines[1]
    code, out, _ = _run(capsys, "undo", ws)
    assert code == 0
    assert out.startswith("undid match 4 ")
    code, out, _ = _run(capsys, "undo", ws, "--match", "1")
    assert out.startswith("undid match 1 ")
    code, _, err = _run(capsys, "undo", ws, "--match", "1")
    assert code == 2
    assert "already undone" in err
    code, out, _ = _run(capsys, "matches", ws, "--include-undone", "-n", "2")
    assert len(out.strip().splitlines()) == 3
    assert "undone" in out.splitlines()[0]
    code, out, _ = _run(capsys, "sessions", ws)
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split() == ["session_id", "voter", "kept", "undone", "first", "last"]
    assert len(lines) == 5  # one session per vote / record call
    col = imagerank.open(ws)
    assert col.matches_df()["match_id"].nunique() == 2  # the skip and the 3-way ranking are kept
    assert col.doctor().ok
    col.close()


def test_voting_commands_reject_bad_input(make_collection, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(3)
    ws = str(col.root)
    ids = [int(i) for i in col.images_df()["id"]]
    col.close()
    for argv, message in [
        (["vote", ws, str(ids[0]), "9999", "left"], "9999"),
        (["vote", ws, str(ids[0]), str(ids[0]), "left"], "duplicates"),
        (["record", ws, str(ids[0])], "2"),
        (["pairs", ws, "--strategy", "nonsense"], "nonsense"),
        (["show", ws, "9999"], "image 9999 does not exist"),
        (["label", ws, "9999", "good"], "9999"),
    ]:
        code, _, err = _run(capsys, *argv)
        assert code == 2, argv
        assert len(err.strip().splitlines()) == 1, err
        assert message in err
    with pytest.raises(SystemExit):
        main(["record", ws, "1", "2", "--ranks", "a,b"])
    assert "--ranks" in capsys.readouterr().err


def test_images_show_status_label(make_collection, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(4)
    ws = str(col.root)
    ids = [int(i) for i in col.images_df()["id"]]
    col.close()
    code, out, _ = _run(capsys, "images", ws)
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["id", "status"]
    assert len(lines) == 5
    code, out, _ = _run(capsys, "show", ws, str(ids[2]))
    assert code == 0
    row = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in out.strip().splitlines())}
    assert row["id"] == str(ids[2])
    assert row["status"] == "active"
    code, out, _ = _run(capsys, "set-status", ws, str(ids[2]), "rejected", "--reason", "blurry")
    assert code == 0
    code, out, _ = _run(capsys, "images", ws, "--status", "rejected")
    assert len(out.strip().splitlines()) == 2
    code, out, _ = _run(capsys, "leaderboard", ws)
    assert str(ids[2]) not in [line.split()[1] for line in out.strip().splitlines()[1:]]
    code, out, _ = _run(capsys, "label", ws, str(ids[0]), "good", "--note", "sharp")
    assert code == 0
    assert f"image {ids[0]} good" in out
    col = imagerank.open(ws)
    assert col.image(ids[2])["status_reason"] == "blurry"
    col.close()


def test_thumbnails_replay_failures(workspace: imagerank.Collection, capsys: pytest.CaptureFixture[str]) -> None:
    ws = str(workspace.root)
    code, out, _ = _run(capsys, "thumbnails", ws, "--force", "--no-progress")
    assert code == 0
    assert "thumbnails written" in out
    code, out, _ = _run(capsys, "replay", ws)
    assert code == 0
    assert "0 images changed" in out
    code, out, _ = _run(capsys, "failures", ws)
    assert code == 0
    assert out.startswith(f"{len(workspace.images.failures_df())} failures recorded")


def test_undo_by_source_removes_simulated_votes(make_collection, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(6)
    ws = str(col.root)
    ids = [int(i) for i in col.images_df()["id"]]
    col.votes.record([ids[0], ids[1]], source="simulated", voter="simulated")
    col.vote(ids[1], ids[2], "left")
    col.votes.record([ids[2], ids[3]], [1, 0], source="simulated", voter="simulated")
    col.close()
    code, out, _ = _run(capsys, "undo", ws, "--source", "simulated")
    assert code == 0
    assert "undid 2 matches with source 'simulated'" in out
    with imagerank.open(ws) as again:
        assert set(again.matches_df()["source"]) == {"user"}
        assert again.doctor().ok
    code, out, _ = _run(capsys, "undo", ws, "--source", "simulated")
    assert code == 1
    assert "nothing to undo" in out
    with pytest.raises(SystemExit) as exited:  # a usage error: one line, exit status 2
        main(["undo", ws, "--source", "simulated", "--match", "1"])
    assert exited.value.code == 2
    assert "not both" in capsys.readouterr().err
