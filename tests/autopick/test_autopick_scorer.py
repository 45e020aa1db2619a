"""The aesthetic head: loading LAION-style weight files made in the test, scores on 0-10, bad files; pyiqa absent;
training on labels with the training recipe and the registry."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import cast

import numpy as np
import pytest
import torch
from autopick_support import TINY_CLIP
from safetensors.torch import save_file

from imagerank.autopick import (
    AestheticHead,
    ClipAestheticScorer,
    CommonsSource,
    HeadConfig,
    HeadFitConfig,
    PickConfig,
    PickStore,
    PyiqaScorer,
    auto_pick,
    load_head,
    load_trained_head,
    train_head,
)
from imagerank.autopick.fake_commons import FakeCommons, fake_catalogue
from imagerank.autopick.train import spearman
from imagerank.catalog import Catalog
from imagerank.errors import CheckpointError, FeatureError, InvalidArgumentError, NoVotesError
from imagerank.training.registry import list_models


def _improved_predictor_state(d: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict shaped like improved-aesthetic-predictor's MLP (keys layers.0/2/4/6/7)."""
    g = torch.Generator().manual_seed(seed)
    dims = [(1024, d), (128, 1024), (64, 128), (16, 64), (1, 16)]
    return {**{f"layers.{i}.weight": torch.randn(*s, generator=g) * 0.05 for i, s in zip((0, 2, 4, 6, 7), dims)},
            **{f"layers.{i}.bias": torch.full((s[0],), 0.1) for i, s in zip((0, 2, 4, 6, 7), dims)}}


def test_improved_predictor_file_loads_and_scores_in_range(tmp_path: Path) -> None:
    state = _improved_predictor_state(64)
    torch.save(state, tmp_path / "sac+logos+ava1-l14-linearMSE.pth")
    head = load_head(tmp_path / "sac+logos+ava1-l14-linearMSE.pth")
    assert head.config == HeadConfig("laion-mlp", 64)
    X = np.random.default_rng(0).normal(size=(5, 64)).astype(np.float32)
    s = head.rating(X)
    assert s.shape == (5,)
    assert ((s >= 0) & (s <= 10)).all()
    # the same numbers as running the layers by hand on the L2-normalised input
    x = torch.from_numpy(X / np.linalg.norm(X, axis=1, keepdims=True))
    for i in (0, 2, 4, 6, 7):
        x = x @ state[f"layers.{i}.weight"].T + state[f"layers.{i}.bias"]
    assert np.allclose(s, np.clip(x.squeeze(-1).numpy(), 0, 10), atol=1e-5)


def test_v1_linear_and_safetensors_heads(tmp_path: Path) -> None:
    lin = torch.nn.Linear(64, 1)
    torch.save(lin.state_dict(), tmp_path / "sa_0_4_vit_b_32_linear.pth")
    assert load_head(tmp_path / "sa_0_4_vit_b_32_linear.pth").config.kind == "linear"
    head = AestheticHead(HeadConfig("mlp", 64, hidden=16))
    save_file(head.state_dict(), str(tmp_path / "h.safetensors"))
    again = load_head(tmp_path / "h.safetensors")
    assert again.config == HeadConfig("mlp", 64, hidden=16)
    torch.save({"state_dict": _improved_predictor_state(32)}, tmp_path / "lightning.ckpt")
    assert load_head(tmp_path / "lightning.ckpt").config.in_dim == 32


def test_large_raw_ratings_are_clamped_to_ten() -> None:
    head = AestheticHead(HeadConfig("linear", 4))
    with torch.no_grad():
        cast(torch.nn.Linear, head.layers[0]).weight.zero_()
        cast(torch.nn.Linear, head.layers[0]).bias.fill_(42.0)
    assert head.rating(np.ones((2, 4), np.float32)).tolist() == [10.0, 10.0]
    with pytest.raises(CheckpointError, match="expects \\(N, 4\\)"):
        head.rating(np.ones((2, 5), np.float32))


def test_bad_head_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no weights file"):
        load_head(tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_head(tmp_path / "junk.pth")
    torch.save({"conv.weight": torch.zeros(3, 3)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not a LAION-style predictor"):
        load_head(tmp_path / "other.pth")
    good = tmp_path / "t.safetensors"
    save_file(AestheticHead(HeadConfig("linear", 8)).state_dict(), str(good))
    (tmp_path / "trunc.safetensors").write_bytes(good.read_bytes()[:40])
    with pytest.raises(CheckpointError):
        load_head(tmp_path / "trunc.safetensors")
    with pytest.raises(InvalidArgumentError, match="head kind"):
        HeadConfig("resnet", 8)


def test_head_must_match_the_clip_dimension() -> None:
    with pytest.raises(CheckpointError, match="expects 768-dim embeddings but imagerank-tiny gives 64"):
        ClipAestheticScorer(TINY_CLIP, AestheticHead(HeadConfig("linear", 768)))


def test_pyiqa_adapter_needs_the_package_and_its_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "pyiqa", None)  # not installed
    with pytest.raises(FeatureError, match="needs the pyiqa package"):
        PyiqaScorer("topiq_iaa", tmp_path / "w.pth")


def test_spearman() -> None:
    assert spearman(np.array([1.0, 2, 3, 4]), np.array([0.0, 0, 1, 1])) == pytest.approx(0.894, abs=1e-3)
    assert np.isnan(spearman(np.array([1.0]), np.array([1.0])))


def test_training_on_labels_beats_the_untrained_head(tmp_path: Path, scorer: ClipAestheticScorer) -> None:
    cat = Catalog.create(tmp_path / "ws")
    blank = ClipAestheticScorer(TINY_CLIP, AestheticHead(HeadConfig("mlp", 64, hidden=32)))
    names = [f"Subject {i:03d}" for i in range(12)]
    with FakeCommons(fake_catalogue(12)) as srv:
        src = CommonsSource("t@example.org", api=srv.api, per_hour=0, state_dir=tmp_path / "state")
        auto_pick(cat, names, src, blank, PickConfig(threshold=0, demote_off_subject=False), progress=False)
        files = {f.title: f.kind for fs in srv.subjects.values() for f in fs.files}
    store = PickStore(cat)
    cands = store.candidates_df()
    with pytest.raises(NoVotesError, match="at least 4 good/bad labels"):
        train_head(cat, blank.head, blank.name, name=None)
    for cid, title in zip(cands.id, cands.title):  # the user labels what the fake server drew
        store.label(int(cid), "good" if files[title] == "good" else "bad", source="label-panel")
    out = train_head(cat, blank.head, blank.name, HeadFitConfig(max_epochs=40), name="aesthetic")
    m = out.metadata["metrics"]
    assert out.metadata["data"]["n_val"] >= 10
    assert m["val_spearman"] > 0.6
    # the head it started from is one random draw (it may rank well or badly by chance): training never makes it
    # worse, and the trained head beats chance, i.e. the mean of several fresh untrained heads, by a clear margin
    assert m["val_spearman"] >= m["val_spearman_before"] - 0.05
    X, y, _ = store.labelled_embeddings(blank.name)
    torch.manual_seed(1)
    chance = float(np.mean([np.nan_to_num(spearman(AestheticHead(HeadConfig("mlp", 64, hidden=32)).rating(X), y))
                            for _ in range(8)]))
    assert m["val_spearman"] > chance + 0.2, (m, chance)
    head, meta = load_trained_head(cat, "aesthetic")
    assert meta["clip"] == blank.name == "imagerank-tiny__none"
    assert np.allclose(head.rating(X), out.net.rating(X))
    assert "aesthetic" in set(list_models(cat).name)
    (cat.models_dir / "aesthetic" / "meta.json").write_text('{"kind": "ranker"}')
    with pytest.raises(CheckpointError, match="not an aesthetic head"):
        load_trained_head(cat, "aesthetic")


class _Metric:
    """A stand-in for a pyiqa metric (the package's weights cannot be fetched here): mean brightness mapped onto
    the AVA range 1-10, with pyiqa's ``lower_better`` attribute."""

    def __init__(self, lower_better: bool) -> None:
        self.lower_better = lower_better

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return 1.0 + 9.0 * x.mean().reshape(1, 1)


def test_pyiqa_adapter_maps_scores_onto_0_10(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import types

    from PIL import Image

    made: list[dict[str, object]] = []

    def create_metric(name: str, **kw: object) -> _Metric:
        made.append({"name": name, **kw})
        return _Metric(lower_better=name == "brisque")

    monkeypatch.setitem(sys.modules, "pyiqa", types.SimpleNamespace(create_metric=create_metric))
    weights = tmp_path / "topiq.pth"
    weights.write_bytes(b"weights")
    ims = [Image.new("RGB", (8, 8), (v, v, v)) for v in (0, 255)]
    s = PyiqaScorer("topiq_iaa", weights)
    assert s.score(ims).tolist() == pytest.approx([0.0, 10.0])
    assert made[0]["pretrained_model_path"] == str(weights)
    low = PyiqaScorer("brisque", weights, score_range=(1.0, 10.0))
    assert low.score(ims).tolist() == pytest.approx([10.0, 0.0])  # lower is better: reversed
    with pytest.raises(FeatureError, match="pass its local weights file"):
        PyiqaScorer("topiq_iaa")
    with pytest.raises(FeatureError, match="no weights file"):
        PyiqaScorer("topiq_iaa", tmp_path / "missing.pth")
    with pytest.raises(InvalidArgumentError, match="score_range"):
        PyiqaScorer("musiq", weights)
