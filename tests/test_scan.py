"""Scan and thumbnails on every kind of bad input: each file gets a status, nothing crashes or is lost."""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from imgsupport import gradient, run_python_unprivileged, write_image
from PIL import Image

import imagerank
from imagerank.media import decode_image
from imagerank.scan import WalkReport, display_path, walk_images


def _status(col: imagerank.Collection) -> dict[str, tuple[str, str | None]]:
    rows = col.db.query("SELECT filepath, status, status_reason FROM images")
    return {os.path.basename(r[0]): (r[1], r[2]) for r in rows}


def _thumb(col: imagerank.Collection, name: str) -> Image.Image:
    row = col.images_df().set_index("filename").loc[name]
    path = col.thumbs.path(int(row["id"]))
    assert path is not None, f"no thumbnail for {name}"
    return Image.open(path)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def test_broken_files_are_corrupt_with_a_reason(tmp_path: Path) -> None:
    src = tmp_path / "imgs"
    write_image(src / "good.jpg")
    (src / "zero.jpg").write_bytes(b"")
    buf = io.BytesIO()
    gradient(256, 256).save(buf, "JPEG")
    (src / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (src / "text.jpg").write_text("this is a text file, not a JPEG\n")
    col = imagerank.init(tmp_path / "ws", src, strategy="spec")
    rep = col.scan(progress=False)
    st = _status(col)
    assert rep.added == 4
    assert rep.corrupt == 3
    assert rep.thumbnails_built == 1
    assert st["good.jpg"] == ("active", None)
    assert st["zero.jpg"][0] == "corrupt"
    assert "cannot identify" in st["zero.jpg"][1]
    assert st["text.jpg"][0] == "corrupt"
    assert "cannot identify" in st["text.jpg"][1]
    assert st["truncated.jpg"][0] == "corrupt"
    assert "truncated" in st["truncated.jpg"][1]
    fails = col.images.failures_df()
    assert sorted(fails["filepath"].map(os.path.basename)) == ["text.jpg", "truncated.jpg", "zero.jpg"]
    assert set(fails["stage"]) == {"decode"}
    # corrupt images never enter the pair pool or the leaderboard
    assert len(col.pool()) == 1
    assert list(col.leaderboard()["filename"]) == ["good.jpg"]
    # a rescan does not retry or duplicate them
    rep2 = col.scan(progress=False)
    assert rep2.added == 0
    assert rep2.corrupt == 0
    assert rep2.unchanged == 4
    assert len(col.images.failures_df()) == 3
    # a corrupt file replaced by a good one (new size and mtime) becomes active with a thumbnail
    write_image(src / "text.jpg", seed=4)
    rep3 = col.scan(progress=False)
    assert rep3.changed == 1
    assert rep3.thumbnails_built == 1
    assert _status(col)["text.jpg"] == ("active", None)
    # a corrupt file that goes missing and returns unchanged is decoded again, and is still corrupt
    data = (src / "zero.jpg").read_bytes()
    (src / "zero.jpg").unlink()
    assert col.scan(progress=False).missing == 1
    (src / "zero.jpg").write_bytes(data)
    rep4 = col.scan(progress=False)
    assert rep4.corrupt == 1
    assert _status(col)["zero.jpg"][0] == "corrupt"
    col.close()


def test_decompression_bombs(tmp_path: Path) -> None:
    src = tmp_path / "imgs"
    write_image(src / "small.png", 40, 40)
    write_image(src / "large.png", 200, 200)  # over the small limit set below
    # a real bomb-style header: a PNG that claims 60000 x 60000 pixels (3.6 Gpx) in a few hundred bytes
    ihdr = struct.pack(">IIBBBBB", 60_000, 60_000, 8, 2, 0, 0, 0)
    (src / "bomb.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 4096))
        + _png_chunk(b"IEND", b"")
    )
    assert (src / "bomb.png").stat().st_size < 1000
    col = imagerank.init(tmp_path / "ws", src, strategy="spec", max_image_pixels=100 * 100)
    col.scan(progress=False)
    st = _status(col)
    assert st["small.png"][0] == "active"
    assert st["large.png"][0] == "corrupt"
    assert "decompression-bomb" in st["large.png"][1]
    assert st["bomb.png"][0] == "corrupt"
    assert "DecompressionBomb" in st["bomb.png"][1]
    col.close()
    # with the default limit the 200 px file is fine but the 3.6 Gpx header still is not
    col = imagerank.init(tmp_path / "ws2", src, strategy="spec")
    col.scan(progress=False)
    st = _status(col)
    assert st["large.png"][0] == "active"
    assert st["bomb.png"][0] == "corrupt"
    assert "exceeds" in st["bomb.png"][1]
    col.close()


def test_large_photos_follow_the_configured_pixel_limit_not_pillows(tmp_path: Path) -> None:
    # 10000 x 9500 = 95 MP: over Pillow's own 89.5 MP guard, under the default limit (178,956,970); a flat grey
    # JPEG is small and, with draft scaling, decodes in hundredths of a second
    src = tmp_path / "imgs"
    write_image(src / "small.jpg")
    Image.new("L", (10_000, 9_500), 128).save(src / "mp95.jpg", quality=30)
    col = imagerank.init(tmp_path / "ws", src, strategy="spec")
    rep = col.scan(progress=False)
    assert rep.corrupt == 0
    st = _status(col)
    assert st["mp95.jpg"] == ("active", None), st["mp95.jpg"]
    row = col.images_df().set_index("filename").loc["mp95.jpg"]
    assert (row["width"], row["height"]) == (10_000, 9_500)
    assert max(_thumb(col, "mp95.jpg").size) == col.settings.thumb_size
    col.close()
    # under a smaller configured limit it is refused, and the reason names that limit
    col = imagerank.init(tmp_path / "ws2", src, strategy="spec", max_image_pixels=50_000_000)
    assert col.scan(progress=False).corrupt == 1
    status, reason = _status(col)["mp95.jpg"]
    assert status == "corrupt"
    assert "95000000 pixels exceeds the limit of 50000000" in reason
    assert "max_image_pixels" in reason
    assert _status(col)["small.jpg"] == ("active", None)
    col.close()


def test_odd_modes_decode_to_rgb_thumbnails(tmp_path: Path) -> None:
    src = tmp_path / "imgs"
    src.mkdir()
    base = gradient(64, 48, seed=3)
    base.convert("CMYK").save(src / "cmyk.jpg")
    ramp = np.linspace(0, 65535, 64 * 48).reshape(48, 64).astype(np.uint16)
    Image.fromarray(ramp).save(src / "sixteen.png")
    assert Image.open(src / "sixteen.png").mode == "I;16"
    pal = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.save(src / "palette_alpha.png", transparency=0)
    assert Image.open(src / "palette_alpha.png").info.get("transparency") == 0
    frames = [base, base.transpose(Image.Transpose.FLIP_LEFT_RIGHT), gradient(64, 48, seed=4)]
    frames[0].save(src / "animated.png", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(src / "animated.png").n_frames == 3
    base.convert("LA").save(src / "grey_alpha.png")
    col = imagerank.init(tmp_path / "ws", src, strategy="spec")
    col.scan(progress=False)
    st = _status(col)
    assert all(s == ("active", None) for s in st.values()), st
    for name in st:
        th = _thumb(col, name)
        assert (th.mode, th.size) == ("RGB", (64, 48)), name
    # 16-bit is scaled (a full ramp stays a full ramp), not clipped to white
    a16 = np.asarray(_thumb(col, "sixteen.png").convert("L"), dtype=np.float64)
    assert 110 < a16.mean() < 145
    assert a16.min() < 20
    assert a16.max() > 235
    # CMYK comes out with the same colours as the RGB it was made from
    cm = np.asarray(_thumb(col, "cmyk.jpg"), dtype=np.float64)
    assert np.abs(cm - np.asarray(base, dtype=np.float64)).mean() < 12
    # the animated file shows its first frame
    an = np.asarray(_thumb(col, "animated.png"), dtype=np.float64)
    assert np.abs(an - np.asarray(base, dtype=np.float64)).mean() < 8
    col.close()


def _grey(im: Image.Image, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(im.convert("L").resize(size, Image.Resampling.BILINEAR), dtype=np.float64)


def test_exif_orientations_come_out_upright(tmp_path: Path, shared_data: Path) -> None:
    folder = shared_data / "photos" / "exif-samples" / "jpg" / "orientation"
    if not folder.is_dir():
        pytest.skip(f"{folder} absent")
    col = imagerank.init(tmp_path / "ws", folder, strategy="spec", thumb_size=128)
    col.scan(progress=False)
    df = col.images_df().set_index("filename")
    assert len(df) == 16
    assert set(df["status"]) == {"active"}
    for kind, (w, h) in (("landscape", (600, 450)), ("portrait", (450, 600))):
        size = (32, 24) if kind == "landscape" else (24, 32)
        ref = _grey(_thumb(col, f"{kind}_1.jpg"), size)  # orientation 1: stored upright
        for k in range(1, 9):
            name = f"{kind}_{k}.jpg"
            assert (df.loc[name, "width"], df.loc[name, "height"]) == (w, h), name
            th = _thumb(col, name)
            assert (th.width > th.height) == (kind == "landscape"), name
            # the files differ in brightness, so compare structure: correlation with the upright reference
            assert np.corrcoef(_grey(th, size).ravel(), ref.ravel())[0, 1] > 0.97, f"{name} is not upright"
            if k > 1:  # the raw pixels (orientation ignored) do not match: the check can fail
                with Image.open(folder / name) as raw:
                    assert np.corrcoef(_grey(raw, size).ravel(), ref.ravel())[0, 1] < 0.8, name
    col.close()


def test_decode_image_reports_displayed_size(shared_data: Path) -> None:
    path = shared_data / "photos" / "exif-samples" / "jpg" / "orientation" / "landscape_6.jpg"
    if not path.exists():
        pytest.skip(f"{path} absent")
    im, w, h = decode_image(str(path), 100)
    assert (w, h) == (600, 450)
    assert im.width > im.height
    assert max(im.size) >= 100


def test_symlink_loops_are_walked_once(tmp_path: Path) -> None:
    src = tmp_path / "imgs"
    write_image(src / "a" / "one.jpg", seed=1)
    write_image(src / "b" / "two.jpg", seed=2)
    os.symlink("..", src / "a" / "up")  # loop to the root
    os.symlink(".", src / "b" / "self")  # loop to itself
    os.symlink("../b", src / "a" / "to_b")  # a and b point at each other
    os.symlink("../a", src / "b" / "to_a")
    os.symlink("nowhere", src / "dangling.jpg")  # a broken link is an error, not a crash
    report = WalkReport()
    files = list(walk_images([str(src)], [".jpg"], report=report))
    assert sorted(os.path.basename(f.path) for f in files) == ["one.jpg", "two.jpg"]
    assert any("dangling.jpg" in p for p, _ in report.errors)
    col = imagerank.init(tmp_path / "ws", src, strategy="spec")
    rep = col.scan(progress=False)
    assert rep.added == 2
    assert col.stats()["active"] == 2
    col.close()


_UNREADABLE_CHILD = """
import json, sys
import imagerank
col = imagerank.open({ws!r})
rep = col.scan(progress=False)
rows = [list(r) for r in col.db.query("SELECT filepath, status, status_reason FROM images")]
print(json.dumps({{"errors": rep.errors, "rows": rows}}))
"""


def test_unreadable_file_and_folder(tmp_path: Path) -> None:
    src = tmp_path / "imgs"
    write_image(src / "ok.jpg", seed=1)
    secret = write_image(src / "secret.jpg", seed=2)
    write_image(src / "locked" / "inside.jpg", seed=3)
    imagerank.init(tmp_path / "ws", src, strategy="spec").close()
    secret.chmod(0o000)
    (src / "locked").chmod(0o000)
    try:
        res = run_python_unprivileged(_UNREADABLE_CHILD.format(ws=str(tmp_path / "ws")))
    finally:
        secret.chmod(0o644)
        (src / "locked").chmod(0o755)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    rows = {os.path.basename(p): (s, r) for p, s, r in out["rows"]}
    assert rows["ok.jpg"] == ("active", None)
    assert rows["secret.jpg"][0] == "corrupt"
    assert "Permission denied" in rows["secret.jpg"][1]
    assert any(p.endswith("locked") and "not readable" in why for p, why in out["errors"]), out["errors"]
    # once readable again, a rescan finds the folder's image (the corrupt file keeps its status until it changes)
    col = imagerank.open(tmp_path / "ws")
    rep = col.scan(progress=False)
    assert rep.added == 1
    assert _status(col)["inside.jpg"] == ("active", None)
    col.close()


def test_non_utf8_file_name_gets_a_status(tmp_path: Path) -> None:
    src = tmp_path / "imgs"
    write_image(src / "fine.jpg", seed=1)
    bad = os.fsencode(str(src)) + b"/caf\xe9.jpg"  # Latin-1 'é': not valid UTF-8
    buf = io.BytesIO()
    gradient(seed=2).save(buf, "JPEG")
    fd = os.open(bad, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, buf.getvalue())
    os.close(fd)
    col = imagerank.init(tmp_path / "ws", src, strategy="spec")
    rep = col.scan(progress=False)
    assert rep.invalid_names == 1
    assert rep.added == 1
    st = _status(col)
    assert st["fine.jpg"] == ("active", None)
    assert st["caf\\xe9.jpg"][0] == "corrupt"
    assert "UTF-8" in st["caf\\xe9.jpg"][1]
    assert display_path(os.fsdecode(bad)).endswith("caf\\xe9.jpg")
    # rescans neither duplicate it nor mark it missing; the leaderboard and CSV still work
    rep2 = col.scan(progress=False)
    assert rep2.invalid_names == 1
    assert col.stats()["images"] == 2
    assert col.stats()["missing"] == 0
    col.to_csv(tmp_path / "board.csv")
    assert "caf\\xe9.jpg" in (tmp_path / "board.csv").read_text(encoding="utf-8")
    # renamed to a valid name it is a new active image; the old entry goes missing
    os.rename(bad, os.fsencode(str(src)) + b"/cafe.jpg")
    rep3 = col.scan(progress=False)
    assert rep3.added == 1
    assert rep3.missing == 1
    st = _status(col)
    assert st["cafe.jpg"] == ("active", None)
    assert st["caf\\xe9.jpg"][0] == "missing"
    col.close()


def test_deleted_file_goes_missing_and_comes_back(make_collection) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(4, thumbnails=True)
    ids = col.images_df()["id"].tolist()
    col.vote(ids[0], ids[1], "left")
    path = Path(col.image(ids[0])["filepath"])
    data = path.read_bytes()
    stat = path.stat()
    rating = (col.image(ids[0])["mu"], col.image(ids[0])["sigma"])
    path.unlink()
    rep = col.scan(progress=False)
    assert rep.missing == 1
    row = col.image(ids[0])
    assert row["status"] == "missing"
    assert "not found" in row["status_reason"]
    assert ids[0] not in col.pool().ids
    assert ids[0] not in set(col.leaderboard()["image_id"])
    assert ids[0] in set(col.leaderboard(include_inactive=True)["image_id"])
    assert all(ids[0] not in p for p in col.next_pairs(3))
    assert col.scan(progress=False).missing == 0  # stays missing, counted once
    # the same file returns: active again, same id, ratings kept, no new thumbnail needed
    path.write_bytes(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    rep = col.scan(progress=False)
    assert rep.returned == 1
    assert rep.added == 0
    assert rep.thumbnails_built == 0
    row = col.image(ids[0])
    assert row["status"] == "active"
    assert row["status_reason"] is None
    assert (row["mu"], row["sigma"]) == rating
    # a changed file (new size / mtime) is re-thumbnailed, keeps its id and ratings
    write_image(path, 20, 20, seed=99)
    rep = col.scan(progress=False)
    assert rep.changed == 1
    assert rep.thumbnails_built == 1
    assert col.image(ids[0])["width"] == 20
    assert col.image(ids[0])["mu"] == rating[0]
    assert col.doctor().ok


def test_empty_and_absent_folders(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    col = imagerank.init(tmp_path / "ws", [tmp_path / "empty", tmp_path / "absent"], strategy="spec")
    rep = col.scan(progress=False)
    assert (rep.added, rep.missing, rep.thumbnails_built) == (0, 0, 0)
    assert len(rep.errors) == 1
    assert "absent" in rep.errors[0][0]
    assert "not readable" in rep.errors[0][1]
    assert col.stats()["images"] == 0
    assert col.next_pairs(5) == []
    assert col.leaderboard().empty
    col.close()


def test_same_name_in_two_folders_is_two_images(tmp_path: Path) -> None:
    src = tmp_path / "imgs"
    write_image(src / "day1" / "IMG_0001.jpg", seed=1)
    write_image(src / "day2" / "IMG_0001.jpg", seed=2)
    col = imagerank.init(tmp_path / "ws", src, strategy="spec")
    col.scan(progress=False)
    df = col.images_df()
    assert list(df["filename"]) == ["IMG_0001.jpg", "IMG_0001.jpg"]
    assert df["filepath"].nunique() == 2
    assert set(df["status"]) == {"active"}
    col.vote(int(df["id"][0]), int(df["id"][1]), "right")
    assert col.leaderboard()["filepath"][0].endswith(os.path.join("day2", "IMG_0001.jpg"))
    col.close()


def test_extensions_case_and_recursion(tmp_path: Path) -> None:
    src = tmp_path / "imgs"
    write_image(src / "UPPER.JPG", seed=1)
    write_image(src / "photo.jpeg", seed=2)
    write_image(src / "pic.webp", seed=3)
    write_image(src / "skip.bmp", seed=4)
    write_image(src / ".hidden" / "h.jpg", seed=5)
    write_image(src / "deep" / "er" / "d.png", seed=6)
    (src / "._resource.jpg").write_bytes(b"\0\5\26\7")  # macOS AppleDouble side file
    col = imagerank.init(tmp_path / "ws", src, strategy="spec")
    col.scan(progress=False)
    assert sorted(col.images_df()["filename"]) == ["UPPER.JPG", "d.png", "photo.jpeg", "pic.webp"]
    col.close()
    flat = imagerank.init(tmp_path / "flat", src, recursive=False, strategy="spec")
    flat.scan(progress=False)
    assert sorted(flat.images_df()["filename"]) == ["UPPER.JPG", "photo.jpeg", "pic.webp"]
    flat.close()


def test_thumbnails_only_for_new_or_changed(workspace: imagerank.Collection) -> None:
    first = workspace.stats()
    assert first["active"] == 6
    assert first["corrupt"] == 1
    paths = sorted(p for p in workspace.catalog.thumbs_dir.rglob("*.jpg"))
    assert len(paths) == 6
    mtimes = [p.stat().st_mtime_ns for p in paths]
    rep = workspace.scan(progress=False)
    assert rep.thumbnails_built == 0
    assert rep.unchanged == 7
    assert [p.stat().st_mtime_ns for p in paths] == mtimes
    # a deleted thumbnail file is rebuilt on demand
    img = int(workspace.images_df(status="active")["id"].iloc[0])
    thumb = workspace.thumbs.path(img)
    assert thumb is not None
    thumb.unlink()
    data = workspace.thumbnail_bytes(img)
    assert data is not None
    assert data[:2] == b"\xff\xd8"
    with Image.open(io.BytesIO(data)) as im:
        assert max(im.size) <= workspace.settings.thumb_size


def test_thumbnail_size_and_pool(tmp_path: Path) -> None:
    src = tmp_path / "imgs"
    for i in range(30):  # >= 24 jobs: the process pool path
        write_image(src / f"p{i:02d}.jpg", 300, 200, seed=i)
    col = imagerank.init(tmp_path / "ws", src, strategy="spec", thumb_size=64)
    rep = col.scan(progress=False)
    assert rep.thumbnails_built == 30
    for i in col.images_df()["id"]:
        p = col.thumbs.path(int(i))
        assert p is not None
        with Image.open(p) as im:
            assert im.size == (64, 43)
    df = col.images_df()
    assert set(zip(df["width"], df["height"])) == {(300, 200)}
    col.close()
