"""The demo collection: deterministic, varied, with bursts, near-duplicates and defects that are measurable."""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image

from imagerank.demo import make_demo, render_demo_images

N = 48


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    ws = tmp_path_factory.mktemp("demo") / "ws"
    col = make_demo(ws, n=N, seed=5, progress=False)
    col.close()
    manifest = json.loads((ws / "demo_manifest.json").read_text())["images"]
    return ws, manifest


def _luma(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.float64)


def test_counts_and_scan(demo: tuple[Path, list[dict]]) -> None:
    ws, manifest = demo
    assert len(manifest) == N
    files = sorted(p.name for p in (ws / "images").iterdir())
    assert files == sorted(m["filename"] for m in manifest)
    import imagerank

    col = imagerank.open(ws)
    s = col.stats()
    assert s["images"] == N
    assert s["active"] == N
    assert all(col.thumbs.path(int(i)) is not None for i in col.images_df()["id"])
    kinds = {m["kind"] for m in manifest}
    assert kinds == {"base", "near_duplicate", "burst"}
    assert any(f.endswith(".png") for f in files)
    for m in manifest:
        assert 640 <= max(m["width"], m["height"]) <= 1024
    col.close()


def test_bursts_have_subsecond_exif_times(demo: tuple[Path, list[dict]]) -> None:
    ws, manifest = demo
    bursts: dict[int, list[datetime]] = {}
    for m in manifest:
        if m["kind"] != "burst":
            continue
        with Image.open(ws / "images" / m["filename"]) as im:
            ifd = im.getexif().get_ifd(ExifTags.IFD.Exif)
        t = datetime.strptime(ifd[0x9003], "%Y:%m:%d %H:%M:%S").replace(microsecond=int(ifd[0x9291]) * 1000)
        assert t.isoformat(timespec="milliseconds") == m["captured_at"]
        bursts.setdefault(m["burst"], []).append(t)
    assert bursts
    for times in bursts.values():
        assert 3 <= len(times) <= 6
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        assert all(0.05 < g < 0.5 for g in gaps), gaps
    # other images are minutes apart
    others = sorted(datetime.fromisoformat(m["captured_at"]) for m in manifest if m["kind"] != "burst"
                    and m["captured_at"])
    assert min((b - a).total_seconds() for a, b in itertools.pairwise(others)) >= 60


def test_near_duplicates_are_close_in_phash(demo: tuple[Path, list[dict]]) -> None:
    import imagehash

    ws, manifest = demo
    dups = [m for m in manifest if m["kind"] == "near_duplicate"]
    assert dups
    folder = ws / "images"
    for m in dups:
        d = imagehash.phash(Image.open(folder / m["filename"])) - imagehash.phash(Image.open(folder / m["source"]))
        assert d <= 8, (m["filename"], d)
    bases = [m["filename"] for m in manifest if m["kind"] == "base"][:12]
    hashes = [imagehash.phash(Image.open(folder / b)) for b in bases]
    far = [hashes[i] - hashes[j] for i in range(len(hashes)) for j in range(i + 1, len(hashes))]
    assert np.median(far) > 20  # distinct scenes are far apart


def test_defects_are_measurable(demo: tuple[Path, list[dict]]) -> None:
    ws, manifest = demo
    folder = ws / "images"
    for m in manifest:
        if "underexposed" in m["defects"]:
            assert _luma(folder / m["filename"]).mean() < 40
        if "overexposed" in m["defects"]:
            assert _luma(folder / m["filename"]).mean() > 205
    blurred = [m for m in manifest if "blurred" in m["defects"]]
    assert blurred


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = render_demo_images(tmp_path / "a", n=12, seed=9, progress=False)
    b = render_demo_images(tmp_path / "b", n=12, seed=9, progress=False)
    c = render_demo_images(tmp_path / "c", n=12, seed=10, progress=False)
    assert a == b

    def digest(folder: Path) -> list[str]:
        return [hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())]

    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")
    assert a != c
    # an interrupted run completes to the same files
    victim = sorted((tmp_path / "a").iterdir())[5]
    victim.unlink()
    render_demo_images(tmp_path / "a", n=12, seed=9, progress=False)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_make_demo_is_idempotent(demo: tuple[Path, list[dict]]) -> None:
    ws, _ = demo
    import imagerank

    col = imagerank.open(ws)
    ids = [int(i) for i in col.images_df()["id"][:2]]
    col.vote(ids[0], ids[1], "left")
    col.close()
    again = make_demo(ws, n=N, seed=5, progress=False)
    assert again.stats()["wins"] == 1
    assert again.stats()["images"] == N
    again.close()


def test_bad_n() -> None:
    with pytest.raises(ValueError, match="n: expected at least 1"):
        render_demo_images("unused", n=0)


def test_quality_flags_find_the_blurred_images_and_spare_the_rest(demo: tuple[Path, list[dict]]) -> None:
    """Demo images carry photo-like fine detail, so the default blur threshold flags the blurred ones only."""
    import imagerank

    ws, manifest = demo
    defects = {m["filename"]: m["defects"] for m in manifest}
    with imagerank.open(ws) as col:
        col.compute_features(hashes=False, quality=True, exif=False, progress=False)
        q = col.features_df("quality").merge(col.images_df()[["id", "filename"]], left_on="image_id", right_on="id")
    blurred = q[q["filename"].map(lambda f: "blurred" in defects[f])]
    clean = q[q["filename"].map(lambda f: not defects[f])]
    assert len(blurred) >= 2
    assert blurred["too_blurry"].all()
    assert clean["too_blurry"].mean() <= 0.05, clean[clean["too_blurry"]]["filename"].tolist()


def test_demo_caches_cheap_features_for_the_live_prior(demo: tuple[Path, list[dict]]) -> None:
    import imagerank
    from imagerank.training.features import feature_matrix

    ws, _ = demo
    assert list((ws / "sidecars" / "cheap").glob("part-*.parquet"))  # the cheap sidecar, written by the scan
    with imagerank.open(ws) as col:
        assert len(feature_matrix(col, "cheap-v1").image_ids) == N


def test_open_demo_builds_or_opens_the_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``open_demo()`` is the notebooks' first cell: IMAGERANK_WORKSPACE, else the path, built when absent."""
    import imagerank
    from imagerank.demo import is_demo_workspace, open_demo

    ws = tmp_path / "env-demo"
    monkeypatch.setenv("IMAGERANK_WORKSPACE", str(ws))
    with open_demo(n=12, progress=False) as col:  # absent: the demo is built there
        assert col.root == ws
        assert col.stats()["images"] == 12
        assert is_demo_workspace(col)
        col.vote(*col.next_pairs(1)[0], "left")
    with open_demo(n=30, progress=False) as col:  # present: opened as it is, votes kept
        assert col.stats()["images"] == 12
        assert col.stats()["comparisons"] == 1
    monkeypatch.delenv("IMAGERANK_WORKSPACE")
    (tmp_path / "photos").mkdir()
    imagerank.init(tmp_path / "mine", tmp_path / "photos").close()  # a workspace the user made: never painted into
    with open_demo(tmp_path / "mine", progress=False) as col:
        assert col.stats()["images"] == 0
        assert not is_demo_workspace(col)
    assert not (tmp_path / "mine" / "images").exists()
    monkeypatch.chdir(tmp_path / "photos")
    with open_demo(n=12, progress=False) as col:  # no path, no variable: ../data/demo from here
        assert col.root.resolve() == (tmp_path / "data" / "demo").resolve()


def test_progress_bars_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    from imagerank._util import progress_enabled

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert progress_enabled(True, Tty())
    assert not progress_enabled(False, Tty())
    assert not progress_enabled(True, io.StringIO())  # a log file or a pipe
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not progress_enabled(True)


def test_demo_command_prints_no_bars_into_a_pipe(tmp_path: Path) -> None:
    """``imagerank demo WS -n 12 2>log``: no progress-bar redraws (each would be a line in a CI log)."""
    import re
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from imagerank.cli import main; sys.exit(main(sys.argv[1:]))",
         "demo", str(tmp_path / "ws"), "-n", "12"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "12 images" in proc.stdout
    lines = [s for s in re.split(r"[\r\n]+", proc.stderr) if s.strip()]  # a log shows every \r redraw as a line
    assert len(lines) <= 2, lines[:10]
    assert "img/s" not in proc.stderr
    assert "it/s" not in proc.stderr


def test_open_autopick_demo_never_opens_the_voting_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """08_autopick's made-up subjects and winners go to a workspace of their own, never IMAGERANK_WORKSPACE."""
    import imagerank
    from imagerank.demo import open_autopick_demo

    mine = imagerank.init(tmp_path / "mine")
    mine.close()
    monkeypatch.setenv("IMAGERANK_WORKSPACE", str(tmp_path / "mine"))
    monkeypatch.setenv("IMAGERANK_AUTOPICK_DEMO", str(tmp_path / "pick-demo"))
    col = open_autopick_demo()
    assert col.root.resolve() == (tmp_path / "pick-demo").resolve()
    assert col.stats()["active"] == 0
    col.close()
    again = open_autopick_demo()  # reopened as it is
    assert again.root.resolve() == (tmp_path / "pick-demo").resolve()
    again.close()
    other = open_autopick_demo(tmp_path / "elsewhere")
    assert other.root.name == "elsewhere"
    other.close()
