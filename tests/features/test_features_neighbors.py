"""Near-duplicate groups (pHash, embeddings), exact duplicates, nearest neighbours and the PCA map."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from features_support import EXIF_SAMPLES, write_collection

import imagerank
from imagerank.errors import FeatureError, NotFoundError
from imagerank.features.hashing import hamming
from imagerank.features.neighbors import connected_groups, cosine_pairs, hamming_pairs, pca_2d
from imagerank.features.pipeline import EmbeddingRun


def test_hamming_pairs_equal_brute_force() -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(-(2**63), 2**63 - 1, 40, dtype=np.int64)
    flips = (np.int64(1) << rng.integers(0, 63, 40).astype(np.int64))
    h = np.concatenate([base, base ^ flips, base[:5]])  # near copies (1 bit) and exact copies
    i, j, d = hamming_pairs(h, 6, block=7)
    got = set(zip(i.tolist(), j.tolist()))
    want = {(a, b) for a, b in itertools.combinations(range(len(h)), 2) if int(hamming(h[a], h[b])) <= 6}
    assert got == want
    assert len(want) >= 40
    assert all(int(hamming(h[a], h[b])) == dd for a, b, dd in zip(i, j, d))


def test_cosine_pairs_equal_brute_force() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 8)).astype(np.float32)
    X[25:] = X[:25] + rng.normal(0, 0.05, (25, 8))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    i, j, s = cosine_pairs(X, 0.98, block=9)
    sims = X @ X.T
    want = {(a, b) for a, b in itertools.combinations(range(50), 2) if sims[a, b] >= 0.98}
    assert set(zip(i.tolist(), j.tolist())) == want
    np.testing.assert_allclose(s, sims[i, j], rtol=1e-5)


def test_connected_groups_chain_and_order() -> None:
    groups = connected_groups(8, np.array([0, 1, 5, 6]), np.array([1, 2, 6, 7]))
    assert [g.tolist() for g in groups] == [[0, 1, 2], [5, 6, 7]]
    assert connected_groups(3, np.zeros(0, np.int64), np.zeros(0, np.int64)) == []


def test_pca_2d() -> None:
    rng = np.random.default_rng(2)
    X = np.outer(rng.normal(size=100), [3.0, 0, 0, 0]) + np.outer(rng.normal(size=100), [0, 1.0, 0, 0])
    X += rng.normal(0, 0.01, X.shape)
    Y, ratio = pca_2d(X)
    assert Y.shape == (100, 2)
    assert Y.dtype == np.float32
    assert ratio[0] > 0.85
    assert ratio[0] + ratio[1] > 0.99
    assert abs(np.corrcoef(Y[:, 0], X[:, 0])[0, 1]) > 0.99
    assert abs(np.corrcoef(Y[:, 1], X[:, 1])[0, 1]) > 0.95
    Y2, _ = pca_2d(X)
    np.testing.assert_array_equal(Y, Y2)
    assert pca_2d(np.zeros((1, 3)))[0].shape == (1, 2)


@pytest.fixture
def dup_col(tmp_path: Path) -> imagerank.Collection:
    pairs = write_collection(tmp_path / "images", n_base=12, n_variants=4)
    shutil.copy(tmp_path / "images" / "base_10.jpg", tmp_path / "images" / "copy_of_10.jpg")
    c = imagerank.init(tmp_path / "ws", tmp_path / "images")
    c.scan(progress=False)
    c.compute_features(exif=False, progress=False)
    c.pairs = pairs  # type: ignore[attr-defined]
    return c


def test_near_duplicate_variants_are_grouped(dup_col: imagerank.Collection) -> None:
    names = {int(r[0]): r[1] for r in dup_col.db.query("SELECT id, filename FROM images")}
    groups = [sorted(names[i] for i in g) for g in dup_col.near_duplicates()]
    want = sorted([sorted([v, b]) for v, b in dup_col.pairs.items()] + [["base_10.jpg", "copy_of_10.jpg"]])
    assert sorted(groups) == want
    assert [sorted(names[i] for i in g) for g in dup_col.exact_duplicates()] == [["base_10.jpg", "copy_of_10.jpg"]]
    assert dup_col.exact_duplicates()[0] in dup_col.near_duplicates(threshold=0)  # equal bytes, equal hashes
    dup_col.close()


def test_map_from_hashes(dup_col: imagerank.Collection) -> None:
    m = dup_col.feature_map()
    assert len(m) == 17
    assert m.attrs["source"] == "hashes"
    assert np.isfinite(m[["x", "y"]].to_numpy()).all()
    with pytest.raises(FeatureError):
        dup_col.feature_map("umap")
    with pytest.raises(FeatureError, match="no embeddings"):
        dup_col.similar(1, 3)
    dup_col.close()


def test_embedding_groups_similar_and_map(dup_col: imagerank.Collection) -> None:
    dup_col.compute_features(hashes=False, quality=False, exif=False, embeddings="imagerank-tiny:none",
                             run=EmbeddingRun(num_workers=0), progress=False)
    ids, X = dup_col.embeddings()
    assert X.dtype == np.float32
    assert len(ids) == 17
    sims = X @ X.T
    groups = dup_col.near_duplicates("embedding", threshold=float(np.sort(sims[np.triu_indices(17, 1)])[-1]) - 1e-6)
    assert groups
    assert all(len(g) >= 2 for g in groups)
    top = dup_col.similar(int(ids[0]), k=5)
    assert len(top) == 5
    assert int(ids[0]) not in set(top["image_id"])
    assert top["similarity"].is_monotonic_decreasing
    np.testing.assert_allclose(top["similarity"].to_numpy(), np.sort(sims[0, 1:])[::-1][:5], rtol=1e-5)
    with pytest.raises(NotFoundError):
        dup_col.similar(10_000)
    m = dup_col.feature_map()
    assert m.attrs["source"] == "embeddings/imagerank-tiny__none"
    assert len(m) == 17
    dup_col.close()


def test_hamming_scales_to_many_hashes() -> None:
    h = np.random.default_rng(3).integers(-(2**63), 2**63 - 1, 20_000, dtype=np.int64)
    i, _, _ = hamming_pairs(h, 8)
    assert len(i) < 50  # random 64-bit hashes are ~32 bits apart


def test_demo_near_duplicates_are_found(tmp_path: Path) -> None:
    demo = pytest.importorskip("imagerank.demo")
    col = demo.make_demo(tmp_path / "demo", n=40, progress=False)
    col.compute_features(exif=False, progress=False)
    manifest = json.loads((tmp_path / "demo" / "demo_manifest.json").read_text())["images"]
    ids = {r[1]: int(r[0]) for r in col.db.query("SELECT id, filename FROM images")}
    group_of = {i: k for k, g in enumerate(col.near_duplicates()) for i in g}
    variants = [m for m in manifest if m["kind"] == "near_duplicate"]
    assert variants
    for m in variants:
        a, b = ids[m["filename"]], ids[m["source"]]
        assert a in group_of, m
        assert group_of[a] == group_of.get(b), m
    flagged = col.features_df("quality").set_index("image_id")
    for m in manifest:
        if "underexposed" in m["defects"]:
            assert flagged.loc[ids[m["filename"]], "too_dark"]
        if "overexposed" in m["defects"]:
            assert flagged.loc[ids[m["filename"]], "too_bright"]
    col.close()


def test_real_photos_features_groups_and_map(tmp_path: Path) -> None:
    src = EXIF_SAMPLES / "jpg"
    if not src.is_dir():
        pytest.skip(f"real photos not present at {src}")
    col = imagerank.init(tmp_path / "ws", src)
    col.scan(progress=False)
    rep = col.compute_features(progress=False)
    n = int(col.db.query("SELECT COUNT(*) FROM images WHERE status='active'")[0][0])
    assert rep.computed["hashes"] == rep.computed["exif"] == n > 50
    names = {int(r[0]): r[1] for r in col.db.query("SELECT id, filepath FROM images")}
    groups = [sorted(Path(names[i]).name for i in g) for g in col.near_duplicates()]
    # the 8 EXIF orientations of one photo are one picture once turned upright
    assert [f"landscape_{k}.jpg" for k in range(1, 9)] in groups
    assert len(col.feature_map()) == n
    col.close()
