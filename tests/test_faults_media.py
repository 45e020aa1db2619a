"""Faults in decoding (issue 16): the pixel limit is the configured one, not Pillow's, on every decode path.

Large images are flat grey JPEGs: a few hundred kilobytes to write and, with libjpeg's draft scaling, a few
hundredths of a second to decode, however many megapixels their header declares.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import pytest
from PIL import Image

from imagerank.features.exif import read_exif
from imagerank.media import decode_image
from imagerank.media.decode import check_pixels, pillow_limit_lifted
from imagerank.widgets.common import zoom_jpeg

PILLOW_LIMIT = 89_478_485  # Image.MAX_IMAGE_PIXELS: Pillow warns above it and refuses above twice it


def _big_jpeg(path: Path, w: int, h: int, **save: object) -> Path:
    Image.new("L", (w, h), 128).save(path, "JPEG", quality=30, **save)
    return path


@pytest.fixture(scope="module")
def mp95(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10000 x 9500 = 95 megapixels, with EXIF (camera make): over Pillow's warning limit, under ours."""
    ex = Image.Exif()
    ex[0x010F] = "BigCam"
    return _big_jpeg(tmp_path_factory.mktemp("big") / "mp95.jpg", 10_000, 9_500, exif=ex.tobytes())


@pytest.fixture(scope="module")
def mp182(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """14000 x 13000 = 182 megapixels: over twice Pillow's limit (where Pillow raises instead of warning)."""
    ex = Image.Exif()
    ex[0x010F] = "HugeCam"
    return _big_jpeg(tmp_path_factory.mktemp("huge") / "mp182.jpg", 14_000, 13_000, exif=ex.tobytes())


def test_under_the_configured_limit_decodes_without_a_warning(mp95: Path) -> None:
    assert Image.MAX_IMAGE_PIXELS == PILLOW_LIMIT
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning, no other warning either
        im, w, h = decode_image(str(mp95), 512)  # the default limit, 178,956,970
    assert (w, h) == (10_000, 9_500)
    assert im.mode == "RGB"
    assert max(im.size) >= 512
    assert Image.MAX_IMAGE_PIXELS == PILLOW_LIMIT  # Pillow's own setting is back as it was


def test_over_the_configured_limit_is_refused_naming_it(mp95: Path) -> None:
    with pytest.raises(Image.DecompressionBombError, match=r"95000000 pixels exceeds the limit of 50000000"):
        decode_image(str(mp95), 512, max_pixels=50_000_000)
    with pytest.raises(Image.DecompressionBombError, match="max_image_pixels"):
        decode_image(str(mp95), 512, max_pixels=95_000_000 - 1)
    decode_image(str(mp95), 64, max_pixels=95_000_000)  # exactly at the limit: allowed
    assert Image.MAX_IMAGE_PIXELS == PILLOW_LIMIT


def test_a_limit_above_twice_pillows_is_honoured(mp182: Path) -> None:
    _, w, h = decode_image(str(mp182), 256, max_pixels=200_000_000)
    assert (w, h) == (14_000, 13_000)
    with pytest.raises(Image.DecompressionBombError, match="exceeds the limit of 178956970"):
        decode_image(str(mp182), 256)  # the default


def test_zoom_follows_the_configured_limit(mp95: Path) -> None:
    data, shown, original = zoom_jpeg(str(mp95), 400, 300, 178_956_970)
    assert original == (10_000, 9_500)
    assert max(shown) <= 400
    assert data[:2] == b"\xff\xd8"
    with pytest.raises(Image.DecompressionBombError, match="exceeds the limit of 1000000"):
        zoom_jpeg(str(mp95), 400, 300, 1_000_000)


def test_exif_of_a_large_photo_is_read_without_pillows_limit(mp95: Path, mp182: Path) -> None:
    r = read_exif(str(mp95))
    assert r["make"] == "BigCam"
    assert r["exif_errors"] is None  # no DecompressionBombWarning listed as an EXIF problem
    r = read_exif(str(mp182))  # Pillow alone raises DecompressionBombError on open
    assert r["make"] == "HugeCam"
    assert r["exif_errors"] is None
    assert Image.MAX_IMAGE_PIXELS == PILLOW_LIMIT


def test_check_pixels() -> None:
    check_pixels(100, 100, 10_000)
    with pytest.raises(Image.DecompressionBombError, match=r"100x101 = 10100 pixels exceeds the limit of 10000"):
        check_pixels(100, 101, 10_000)


def test_the_lift_is_shared_by_threads_and_restored_by_the_last() -> None:
    assert Image.MAX_IMAGE_PIXELS == PILLOW_LIMIT
    inside = threading.Barrier(3)
    release = [threading.Event(), threading.Event()]

    def hold(k: int) -> None:
        with pillow_limit_lifted():
            inside.wait(5)
            release[k].wait(5)

    threads = [threading.Thread(target=hold, args=(k,)) for k in range(2)]
    for th in threads:
        th.start()
    inside.wait(5)
    assert Image.MAX_IMAGE_PIXELS is None  # both threads are inside
    with pillow_limit_lifted():  # nesting in a third
        pass
    assert Image.MAX_IMAGE_PIXELS is None
    release[0].set()
    threads[0].join(5)
    assert Image.MAX_IMAGE_PIXELS is None  # the first one out does not restore it under the other
    release[1].set()
    threads[1].join(5)
    assert Image.MAX_IMAGE_PIXELS == PILLOW_LIMIT  # the last one out does
    with pytest.raises(RuntimeError), pillow_limit_lifted():  # an exception inside restores it too
        raise RuntimeError("boom")
    assert Image.MAX_IMAGE_PIXELS == PILLOW_LIMIT


def test_a_malformed_exif_block_decodes_quietly(tmp_path: Path) -> None:
    ex = Image.Exif()
    for tag, value in ((0x0112, 6), (0x0128, 2), (0x0213, 1)):
        ex[tag] = value
    path = tmp_path / "cut.jpg"
    Image.new("RGB", (40, 30), (90, 20, 20)).save(path, exif=ex.tobytes()[:6 + 8 + 2 + 12 * 2 + 5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Corrupt EXIF data" belongs in exif_errors, not on the decode pass's stderr
        _, w, h = decode_image(str(path), 64)
    assert (w, h) == (30, 40)  # the orientation that could be read is applied
    assert "Corrupt EXIF data" in (read_exif(str(path))["exif_errors"] or "")
