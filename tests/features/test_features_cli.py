"""``imagerank features`` and ``imagerank duplicates`` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from features_support import write_collection

import imagerank
from imagerank.cli import main


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    write_collection(tmp_path / "images", n_base=5, n_variants=2)
    imagerank.init(tmp_path / "ws", tmp_path / "images").close()
    return tmp_path / "ws"


def test_features_then_duplicates(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["features", str(ws), "--scan", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "hashes: 7 computed, 0 current" in out
    assert "quality: 7 computed" in out
    assert "exif: 7 computed" in out
    assert main(["features", str(ws), "--hashes", "--no-progress"]) == 0
    assert "hashes: 0 computed, 7 current" in capsys.readouterr().out
    assert main(["duplicates", str(ws)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 near-duplicate (phash) groups, 4 images")
    assert "var_00.jpg" in out
    assert "base_00.jpg" in out
    assert main(["duplicates", str(ws), "--exact"]) == 0
    assert capsys.readouterr().out.startswith("0 exact duplicate groups")


def test_embeddings_option_and_errors(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["features", str(ws), "--scan", "--embeddings", "imagerank-tiny:none", "--num-workers", "0",
                 "--no-progress"]) == 0
    assert "embeddings/imagerank-tiny__none: 7 computed" in capsys.readouterr().out
    assert main(["features", str(ws), "--embeddings", "NoSuchNet:none", "--no-progress"]) == 2
    assert "unknown open_clip model" in capsys.readouterr().err
    assert main(["duplicates", str(ws), "--method", "embedding", "--threshold", "0.999999"]) == 0


def test_similar_and_feature_map(ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["similar", str(ws), "1"]) == 2  # nothing computed yet: one line, no traceback
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("imagerank similar: error: ")
    assert main(["features", str(ws), "--scan", "--hashes", "--embeddings", "imagerank-tiny:none", "--num-workers",
                 "0", "--no-progress"]) == 0
    capsys.readouterr()
    col = imagerank.open(ws)
    ids = [int(i) for i in col.images_df()["id"]]
    col.close()
    assert main(["similar", str(ws), str(ids[0]), "-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["image_id", "similarity", "filepath"]
    assert len(lines) == 4
    assert str(ids[0]) not in [line.split()[0] for line in lines[1:]]
    assert main(["similar", str(ws), "9999"]) == 2
    assert "9999" in capsys.readouterr().err
    assert main(["feature-map", str(ws)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["image_id", "x", "y"]
    assert len(lines) == 1 + len(ids)
    out = tmp_path / "map.csv"
    assert main(["feature-map", str(ws), "--source", "hashes", "--out", str(out)]) == 0
    assert "hashes" in capsys.readouterr().out
    assert out.read_text().startswith("image_id,x,y")
    assert main(["feature-map", str(ws), "--out", str(out)]) == 2  # never overwritten
    assert "exists" in capsys.readouterr().err
