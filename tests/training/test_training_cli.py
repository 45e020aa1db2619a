"""``imagerank models``, ``evaluate`` and ``apply-prior`` from the command line."""

from __future__ import annotations

import pytest

from imagerank.cli import main
from imagerank.training.simulate import FeatureJudge, simulated_votes


def test_models_evaluate_apply_prior(small_col, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    col = small_col(30)
    ws = str(col.root)
    assert main(["models", ws]) == 0
    assert "no models saved yet" in capsys.readouterr().out
    simulated_votes(col, 40, FeatureJudge(noise=0.3), strategy="random", seed=0)
    col.close()
    assert main(["train", ws, "--features", "cheap", "--epochs", "1", "--network", "linear", "--no-progress",
                 "--name", "lin"]) == 0
    capsys.readouterr()
    assert main(["models", ws]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[0] == "name"
    assert lines[1].split()[0] == "lin"
    assert main(["evaluate", ws, "lin"]) == 0
    assert "openskill" in capsys.readouterr().out
    assert main(["apply-prior", ws, "lin", "--max-comparisons", "100"]) == 0
    assert capsys.readouterr().out.strip()
    for argv in (["evaluate", ws, "nosuch"], ["apply-prior", ws, "nosuch"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1
        assert err.startswith(f"imagerank {argv[0]}: error: ")
        assert "nosuch" in err


def test_train_crops_without_crops_is_one_line(small_col, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    col = small_col(10)
    ws = str(col.root)
    col.close()
    assert main(["train-crops", ws, "--epochs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("imagerank train-crops: error: ")
