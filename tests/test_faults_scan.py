"""Scan faults: nothing stays broken after its cause is gone (unreadable files are retried), and nothing is skipped
silently (hidden folders, other extensions, unreadable paths are named with the reason)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from imgsupport import run_python_unprivileged, write_image

import imagerank
import imagerank.media.thumbs as thumbs_mod
from imagerank.cli import main


def _status(col: imagerank.Collection) -> dict[str, tuple[str, str | None]]:
    return {os.path.basename(r[0]): (r[1], r[2])
            for r in col.db.query("SELECT filepath, status, status_reason FROM images")}


_CHILD = """
import json
import imagerank
col = imagerank.open({ws!r})
rep = col.scan(progress=False)
rows = [list(r) for r in col.db.query("SELECT filepath, status, status_reason FROM images")]
print(json.dumps(rows))
"""


def test_unreadable_file_becomes_active_once_readable(tmp_path: Path) -> None:
    src = tmp_path / "imgs"
    write_image(src / "ok.jpg", seed=1)
    secret = write_image(src / "secret.jpg", seed=2)
    imagerank.init(tmp_path / "ws", src, strategy="spec").close()
    secret.chmod(0o000)
    try:
        res = run_python_unprivileged(_CHILD.format(ws=str(tmp_path / "ws")))
    finally:
        secret.chmod(0o644)  # size and mtime unchanged
    assert res.returncode == 0, res.stderr
    rows = {os.path.basename(p): (s, r) for p, s, r in json.loads(res.stdout.strip().splitlines()[-1])}
    assert rows["secret.jpg"][0] == "corrupt"
    assert "Permission denied" in rows["secret.jpg"][1]
    col = imagerank.open(tmp_path / "ws")
    rep = col.scan(progress=False)
    assert rep.retried == 1
    assert "1 corrupt retried" in str(rep)
    assert _status(col)["secret.jpg"] == ("active", None)
    sid = col.images.id_of(str(secret))
    assert sid is not None
    assert col.thumbs.path(sid) is not None
    col.close()


def test_transient_decode_error_is_retried_and_bad_bytes_are_not(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from imagerank.catalog.images import is_transient_reason

    src = tmp_path / "imgs"
    write_image(src / "flaky.jpg", seed=1)
    write_image(src / "fine.jpg", seed=2)
    (src / "garbage.jpg").write_bytes(b"\xff\xd8\xff not a jpeg at all")
    real = thumbs_mod.decode_image
    failed: list[str] = []

    def flaky(path, *a, **k):  # the first read of flaky.jpg fails like an unreadable network share
        if path.endswith("flaky.jpg") and not failed:
            failed.append(path)
            raise OSError(5, "Input/output error", path)
        return real(path, *a, **k)

    monkeypatch.setattr(thumbs_mod, "decode_image", flaky)
    col = imagerank.init(tmp_path / "ws", src, strategy="spec")
    rep = col.scan(progress=False)
    assert rep.corrupt == 2
    st = _status(col)
    assert st["flaky.jpg"][0] == "corrupt"
    assert is_transient_reason(st["flaky.jpg"][1]), st
    assert not is_transient_reason(st["garbage.jpg"][1]), st
    again = col.scan(progress=False)
    assert (again.retried, again.corrupt, again.thumbnails_built) == (1, 0, 1)
    assert _status(col)["flaky.jpg"] == ("active", None)
    assert _status(col)["garbage.jpg"][0] == "corrupt"
    third = col.scan(progress=False)  # bad bytes are not decoded again while the file is unchanged
    assert (third.retried, third.unchanged, third.corrupt) == (0, 3, 0)
    col.close()


def test_doctor_fix_retries_every_corrupt_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "imgs"
    good = write_image(src / "repaired.jpg", seed=1).read_bytes()
    write_image(src / "other.jpg", seed=2)
    path = src / "repaired.jpg"
    st = path.stat()
    path.write_bytes(b"\0" * len(good))  # unreadable content, same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    col = imagerank.init(tmp_path / "ws", src, strategy="spec")
    assert col.scan(progress=False).corrupt == 1
    col.close()
    path.write_bytes(good)  # repaired in place: size and mtime as before, so a scan does not look again
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    col = imagerank.open(tmp_path / "ws")
    assert col.scan(progress=False).retried == 0
    assert _status(col)["repaired.jpg"][0] == "corrupt"
    col.close()
    assert main(["doctor", str(tmp_path / "ws"), "--fix"]) == 0
    out = capsys.readouterr().out
    assert "retried 1 corrupt images: 1 readable now, 0 still corrupt" in out
    col = imagerank.open(tmp_path / "ws")
    assert _status(col)["repaired.jpg"] == ("active", None)
    col.close()


def _mixed_folder(src: Path) -> None:
    write_image(src / "a.jpg", seed=1)
    write_image(src / ".cache" / "hidden.jpg", seed=2)
    write_image(src / "sub" / ".git" / "deep.jpg", seed=3)
    write_image(src / "._a.jpg", seed=4)
    for i in range(3):
        write_image(src / "scans" / f"page{i}.tiff", seed=10 + i)
    for i in range(2):
        (src / f"IMG_{i}.CR2").write_bytes(b"II*\0 raw")
    (src / "notes.txt").write_text("not an image")
    os.symlink("nowhere", src / "dangling.jpg")


def test_scan_report_names_what_it_skipped(tmp_path: Path) -> None:
    src = tmp_path / "imgs"
    _mixed_folder(src)
    col = imagerank.init(tmp_path / "ws", src, strategy="spec")
    rep = col.scan(progress=False)
    assert rep.added == 1
    skipped = {os.path.relpath(p, src): why for p, why in rep.skipped}
    assert set(skipped) == {".cache", os.path.join("sub", ".git"), "._a.jpg", "IMG_0.CR2", "IMG_1.CR2",
                            *(os.path.join("scans", f"page{i}.tiff") for i in range(3))}
    assert "hidden folder" in skipped[".cache"]
    assert ".tiff" in skipped[os.path.join("scans", "page0.tiff")]
    assert rep.skipped_extensions == {".tiff": 3, ".cr2": 2}
    assert any("--ext .tiff" in h and "3 files skipped for their extension" in h for h in rep.hints), rep.hints
    assert any("RAW" in h and ".cr2" in h for h in rep.hints), rep.hints
    assert "8 skipped" in str(rep)
    assert [os.path.basename(p) for p, _ in rep.errors] == ["dangling.jpg"]
    text = rep.describe(limit=3)
    assert "... 5 more" in text
    assert "dangling.jpg" in text
    col.close()


def test_cli_scan_prints_errors_skips_and_the_ext_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "imgs"
    _mixed_folder(src)
    ws = str(tmp_path / "ws")
    imagerank.init(ws, src, strategy="spec").close()
    assert main(["scan", ws, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "1 errors" in out
    assert f"{src / 'dangling.jpg'}: cannot stat" in out
    assert f"{src / '.cache'}: hidden folder" in out
    assert "--ext .tiff" in out
    assert "(.tiff \u00d73)" in out
    # following the hint picks the files up
    exts = [a for e in (".jpg", ".jpeg", ".png", ".webp", ".tiff") for a in ("--ext", e)]
    assert main(["init", ws, *exts]) == 0
    assert main(["scan", ws, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "3 added" in out
    assert ".tiff" not in out.split("hint:")[-1]


def test_symlinked_root_is_stored_resolved(tmp_path: Path) -> None:
    real = tmp_path / "real"
    write_image(real / "one.jpg", seed=1)
    write_image(real / "inner" / "two.jpg", seed=2)
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    os.symlink(real / "inner", real / "alias")  # a linked sub-folder keeps the path it is walked by
    col = imagerank.init(tmp_path / "ws", tmp_path / "link", strategy="spec")
    assert col.settings.roots == (str(real.resolve()),)
    col.scan(progress=False, thumbnails=False)
    paths = sorted(col.images_df()["filepath"])
    base = real.resolve()
    assert paths == sorted([str(base / "one.jpg"), str(base / "inner" / "two.jpg")]) or paths == sorted(
        [str(base / "one.jpg"), str(base / "alias" / "two.jpg")])
    col.close()
