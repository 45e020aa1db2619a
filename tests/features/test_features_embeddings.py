"""open_clip embeddings through Lightning: vectors, metadata, local checkpoints, DDP == one process, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from features_support import write_collection

import imagerank
from imagerank.errors import FeatureError
from imagerank.features.neighbors import embedding_sets
from imagerank.features.pipeline import EmbeddingRun, EmbeddingSpec, parse_embedding_spec
from imagerank.features.sidecar import Sidecar

pytest.importorskip("open_clip")
TINY = "imagerank-tiny:none"


def _col(tmp_path: Path, thumbnails: bool = True, n: int = 8) -> imagerank.Collection:
    write_collection(tmp_path / "images", n_base=n, n_variants=2)
    col = imagerank.init(tmp_path / "ws", tmp_path / "images")
    col.scan(progress=False, thumbnails=thumbnails)
    return col


def _embed(col: imagerank.Collection, spec: str = TINY, **kw: object) -> object:
    kw.setdefault("num_workers", 0)
    run = {k: kw.pop(k) for k in list(kw) if k in EmbeddingRun.__dataclass_fields__}
    return col.compute_features(hashes=False, quality=False, exif=False, embeddings=spec, progress=False,
                                run=EmbeddingRun(**run), **kw)  # type: ignore[arg-type]


def test_parse_spec() -> None:
    assert parse_embedding_spec("ViT-B-32:openai") == EmbeddingSpec("ViT-B-32", "openai")
    assert parse_embedding_spec("ViT-B-32:none").pretrained is None
    assert parse_embedding_spec("ViT-B-32").sidecar_name == "embeddings/ViT-B-32__none"
    spec = parse_embedding_spec("ViT-B-32:/models/open_clip_model.safetensors")
    assert spec.pretrained == "/models/open_clip_model.safetensors"
    assert spec.tag == "open_clip_model"
    assert parse_embedding_spec("hf-hub:org/repo").model == "hf-hub:org/repo"
    with pytest.raises(FeatureError):
        parse_embedding_spec(":openai")


def test_vectors_metadata_and_incremental(tmp_path: Path) -> None:
    col = _col(tmp_path)
    rep = _embed(col)
    assert rep.computed == {"embeddings/imagerank-tiny__none": 10}
    assert not rep.failures
    ids, X = col.embeddings("imagerank-tiny__none")
    assert X.shape == (10, 64)
    assert X.dtype == np.float32
    assert ids.dtype == np.int64
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=1e-5)
    df = col.features_df("embeddings/imagerank-tiny__none")
    assert set(df["source"]) == {"thumbnail"}
    assert len(df["embedding"].iloc[0]) == 64
    md = embedding_sets(col)["imagerank-tiny__none"]
    assert md["model"] == "imagerank-tiny"
    assert md["pretrained"] is None
    assert md["image_size"] == [64, 64]
    assert md["normalised"] == "l2"
    assert len(md["mean"]) == 3
    assert len(md["std"]) == 3
    assert md["dim"] == 64
    assert _embed(col).computed == {"embeddings/imagerank-tiny__none": 0}  # type: ignore[attr-defined]
    col.close()


def test_originals_used_when_no_thumbnail_and_failures_recorded(tmp_path: Path) -> None:
    col = _col(tmp_path, thumbnails=False)
    (tmp_path / "images" / "base_05.jpg").unlink()
    rep = _embed(col)
    assert rep.computed["embeddings/imagerank-tiny__none"] == 9  # type: ignore[attr-defined]
    assert [(f[2], "No such file" in f[3]) for f in rep.failures] == [("embeddings", True)]  # type: ignore[attr-defined]
    assert [r[0] for r in col.db.query("SELECT stage FROM failures")] == ["embeddings"]
    assert set(col.features_df("embeddings/imagerank-tiny__none")["source"]) == {"original"}
    assert not list(Sidecar(col.sidecars_dir, "embeddings/imagerank-tiny__none").path.glob(".*"))  # no leftovers
    col.close()


def test_thumbnail_and_original_give_nearly_the_same_vector(tmp_path: Path) -> None:
    col = _col(tmp_path, thumbnails=False)
    _embed(col)
    _, X_orig = col.embeddings()
    col.build_thumbnails(progress=False)
    _embed(col, force=True)
    df = col.features_df("embeddings/imagerank-tiny__none")
    assert set(df["source"]) == {"thumbnail"}
    X_thumb = np.stack(df["embedding"].to_numpy()).astype(np.float32)
    dist = np.linalg.norm(X_thumb[:, None, :] - X_orig[None, :, :], axis=-1)
    assert (dist.argmin(axis=1) == np.arange(len(dist))).all()  # each thumbnail vector is nearest its original's
    col.close()


def test_local_checkpoint_gives_the_saved_weights(tmp_path: Path) -> None:
    import torch

    from imagerank.features.embeddings import load_encoder

    model, _, _ = load_encoder(EmbeddingSpec("imagerank-tiny", None, seed=7))
    ckpt = tmp_path / "tiny-seed7.pt"
    torch.save(model.state_dict(), ckpt)
    col = _col(tmp_path, n=4)
    _embed(col, f"imagerank-tiny:{ckpt}")
    _embed(col, EmbeddingSpec("imagerank-tiny", None, seed=7))  # type: ignore[arg-type]
    _, from_file = col.embeddings("imagerank-tiny__tiny-seed7")
    _, from_seed = col.embeddings("imagerank-tiny__none-seed7")
    np.testing.assert_allclose(from_file, from_seed, atol=1e-6)
    assert embedding_sets(col)["imagerank-tiny__tiny-seed7"]["checkpoint"] == str(ckpt)
    bad = tmp_path / "bad.pt"
    torch.save({"visual.nothing": torch.zeros(3)}, bad)
    with pytest.raises(FeatureError, match="cannot build imagerank-tiny"):
        _embed(col, f"imagerank-tiny:{bad}")
    col.close()


@pytest.mark.slow
def test_ddp_two_processes_equal_one(tmp_path: Path) -> None:
    col = _col(tmp_path, n=9)
    _embed(col)
    ids1, X1 = col.embeddings()
    shutil.rmtree(col.sidecars_dir / "embeddings")
    rep = _embed(col, devices=2, strategy="ddp")
    assert rep.computed == {"embeddings/imagerank-tiny__none": 11}  # type: ignore[attr-defined]
    parts = Sidecar(col.sidecars_dir, "embeddings/imagerank-tiny__none").parts()
    assert len(parts) == 2
    assert {"r000", "r001"} == {p.name.split("-")[2] for p in parts}
    sizes = [pq.ParquetFile(p).metadata.num_rows for p in parts]
    assert sum(sizes) == 11
    assert min(sizes) >= 5
    ids2, X2 = col.embeddings()
    np.testing.assert_array_equal(ids1, ids2)
    np.testing.assert_allclose(X1, X2, atol=1e-5)
    apart = np.abs(X1[:, None, :] - X1[None, :, :]).max(axis=-1) + np.eye(len(X1))
    assert apart.min() > 1e-3  # the tolerance is far below the differences between images
    col.close()


def test_no_network_error_says_how_to_provide_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hf = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(hf, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    col = _col(tmp_path, n=2)
    with pytest.raises(FeatureError) as e:
        _embed(col, "ViT-B-32:openai")
    msg = str(e.value)
    assert "--embeddings ViT-B-32:/path/to/open_clip_model.safetensors" in msg
    assert "registry" in msg
    col.close()


@pytest.mark.parametrize(
    ("spec", "match"),
    [("NoSuchNet:none", "unknown open_clip model"), ("ViT-B-32:nosuchtag", "neither a pretrained tag"),
     ("ViT-B-32:/nowhere/weights.safetensors", "does not exist")],
)
def test_bad_specs(tmp_path: Path, spec: str, match: str) -> None:
    col = _col(tmp_path, n=2)
    with pytest.raises(FeatureError, match=match):
        _embed(col, spec)
    col.close()


def test_embed_images_matches_the_sidecar(tmp_path: Path) -> None:
    from PIL import Image

    from imagerank.features.embeddings import embed_images

    col = _col(tmp_path, n=3)
    _embed(col)
    ids, X = col.embeddings()
    ims = [Image.open(col.thumbs.path(int(i))).convert("RGB") for i in ids]
    Y, info = embed_images(ims, TINY)
    assert info["dim"] == 64
    np.testing.assert_allclose(Y, X, atol=1e-5)
    col.close()


def test_collection_compute_features_takes_every_option_of_the_pipeline() -> None:
    """``Collection.compute_features`` forwards to the pipeline: it must offer the same keyword arguments."""
    import inspect

    from imagerank.features.pipeline import compute_features

    pipeline = set(inspect.signature(compute_features).parameters) - {"col"}
    method = set(inspect.signature(imagerank.Collection.compute_features).parameters) - {"self"}
    assert method == pipeline
