"""Perceptual hashes as int64, Hamming distances, digests; tiny, grey and alpha images."""

from __future__ import annotations

import shutil
from pathlib import Path

import imagehash
import numpy as np
import pytest
from features_support import base_image, variant
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from imagerank.features.hashing import (
    file_digest,
    hamming,
    hash_bits,
    hash_image,
    hashes_extractor,
    int_to_hex,
    to_int64,
)
from imagerank.media import DecodeJob


def test_int64_matches_imagehash_hex_and_distance() -> None:
    a, b = base_image(1), base_image(2)
    ha, hb = imagehash.phash(a), imagehash.phash(b)
    va, vb = to_int64(ha.hash), to_int64(hb.hash)
    assert int_to_hex(va) == str(ha)
    assert imagehash.hex_to_hash(int_to_hex(va)) == ha
    assert int(hamming(va, vb)) == ha - hb
    assert hash_image(a)["phash"] == va


@given(st.lists(st.booleans(), min_size=64, max_size=64))
def test_bits_round_trip(bits: list[bool]) -> None:
    v = to_int64(np.array(bits))
    assert -(2**63) <= v < 2**63
    assert hash_bits([v])[0].astype(bool).tolist() == bits
    assert int(hamming(v, v)) == 0
    assert int(hamming(v, ~v)) == 64


def test_to_int64_rejects_wrong_size() -> None:
    with pytest.raises(ValueError, match="64 hash bits"):
        to_int64(np.zeros(63, bool))


def test_near_duplicate_is_close_and_different_image_is_far() -> None:
    im = base_image(3)
    h0, h1, h2 = hash_image(im), hash_image(variant(im, 0)), hash_image(base_image(4))
    assert int(hamming(h0["phash"], h1["phash"])) <= 8
    assert int(hamming(h0["phash"], h2["phash"])) > 12


@pytest.mark.parametrize("size", [(1, 1), (3, 2), (7, 7), (8, 8), (31, 5)])
def test_images_smaller_than_the_hash_still_hash(size: tuple[int, int]) -> None:
    im = Image.fromarray(np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    h = hash_image(im)
    assert set(h) == {"phash", "dhash", "whash"}
    assert all(isinstance(v, int) for v in h.values())


@pytest.mark.parametrize("mode", ["L", "RGBA", "LA", "P", "I;16"])
def test_modes(mode: str) -> None:
    im = base_image(5).convert(mode) if mode != "I;16" else base_image(5).convert("L").convert("I;16")
    h = hash_image(im)
    assert int(hamming(h["phash"], hash_image(base_image(5))["phash"])) <= 10


def test_digest_equal_for_copies_and_different_otherwise(tmp_path: Path) -> None:
    p = tmp_path / "a.jpg"
    base_image(0).save(p, quality=90)
    shutil.copy(p, tmp_path / "b.jpg")
    base_image(0).save(tmp_path / "c.jpg", quality=89)
    assert file_digest(str(p)) == file_digest(str(tmp_path / "b.jpg"))
    assert file_digest(str(p)) != file_digest(str(tmp_path / "c.jpg"))
    assert len(file_digest(str(p))) == 32


def test_extractor_returns_all_columns(tmp_path: Path) -> None:
    p = tmp_path / "a.png"
    base_image(0).save(p)
    job = DecodeJob(image_id=1, path=str(p), fingerprint="1-1", thumb_dest=None)
    out = hashes_extractor(Image.open(p).convert("RGB"), job)
    assert set(out) == {"phash", "dhash", "whash", "digest"}
