"""Aesthetic scoring of candidate thumbnails: a LAION-style predictor head on L2-normalised CLIP image embeddings,
and an adapter for ``pyiqa`` aesthetic metrics.

The head. LAION's aesthetic predictors map a CLIP image embedding, L2-normalised, to a rating on the AVA scale
(about 1-10; Schuhmann et al., "LAION-5B", NeurIPS 2022 Datasets track, section on LAION-Aesthetics):

* ``laion-mlp``: the "improved aesthetic predictor" (github.com/christophschuhmann/improved-aesthetic-predictor):
  Linear(D, 1024), Dropout(0.2), Linear(1024, 128), Dropout(0.2), Linear(128, 64), Dropout(0.1), Linear(64, 16),
  Linear(16, 1). Its published weights ``sac+logos+ava1-l14-linearMSE.pth`` take D = 768 embeddings of
  OpenAI's CLIP ViT-L/14 (open_clip ``ViT-L-14`` with pretrained tag ``openai``).
* ``linear``: LAION-Aesthetics V1 (github.com/LAION-AI/aesthetic-predictor): one Linear(D, 1);
  ``sa_0_4_vit_l_14_linear.pth`` for ViT-L/14 (D = 768) and ``sa_0_4_vit_b_32_linear.pth`` for ViT-B/32 (D = 512,
  open_clip ``ViT-B-32`` / ``openai``).
* ``mlp``: a small head (Linear(D, hidden), GELU, Dropout, Linear(hidden, 1)) for training on the user's labels when
  no published weights are at hand.

Weights are read from a local file only (``.pth``/``.pt`` through ``torch.load(weights_only=True)``, or
``.safetensors``); the architecture is recognised from the state dict. Nothing is downloaded. Scores are the head's
output clamped to 0-10 (the AVA scale the published heads are trained on; :meth:`AestheticHead.rating`).

The CLIP model is any open_clip model (:class:`~imagerank.features.pipeline.EmbeddingSpec`: an architecture name
and a registry tag or a local checkpoint file); with its text tower, :meth:`ClipAestheticScorer.similarity` gives
the cosine similarity of each image to a text (the subject's name), which :mod:`imagerank.autopick.pick` uses to
demote off-subject candidates.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..errors import CheckpointError, FeatureError, InvalidArgumentError
from ..features.pipeline import EmbeddingSpec, parse_embedding_spec

__all__ = ["HEAD_KINDS", "AestheticHead", "ClipAestheticScorer", "HeadConfig", "PyiqaScorer", "load_head"]

HEAD_KINDS: tuple[str, ...] = ("laion-mlp", "linear", "mlp")
_LAION_WIDTHS = (1024, 128, 64, 16)
_LAION_DROPOUT = (0.2, 0.2, 0.1, 0.0)


@dataclass(frozen=True)
class HeadConfig:
    """The head's architecture: ``kind`` (one of :data:`HEAD_KINDS`), ``in_dim`` (the CLIP embedding dimension,
    512 for ViT-B/32, 768 for ViT-L/14), and for ``mlp`` ``hidden`` units and ``dropout``.

    Raises:
        InvalidArgumentError: unknown kind, ``in_dim`` or ``hidden`` < 1, dropout outside [0, 1).
    """

    kind: str = "laion-mlp"
    in_dim: int = 768
    hidden: int = 64
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.kind not in HEAD_KINDS:
            raise InvalidArgumentError(f"head kind: expected one of {', '.join(HEAD_KINDS)}, got {self.kind!r}")
        if int(self.in_dim) < 1 or int(self.hidden) < 1:
            raise InvalidArgumentError(f"in_dim, hidden: expected >= 1, got {self.in_dim!r}, {self.hidden!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise InvalidArgumentError(f"dropout: expected a probability in [0, 1), got {self.dropout!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AestheticHead(nn.Module):
    """The predictor head: (N, D) embeddings -> (N,) raw ratings; inputs are L2-normalised first, as LAION's
    predictors expect (an already normalised embedding is unchanged).

    Args:
        config: the :class:`HeadConfig`. State-dict keys are ``layers.<i>.weight/bias``, the published files' own.
            A fresh head (not loaded) starts with its output bias at 5, the middle of the 0-10 scale.
    """

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        d = int(config.in_dim)
        mods: list[nn.Module] = []
        if config.kind == "laion-mlp":
            for width, p in zip(_LAION_WIDTHS, _LAION_DROPOUT):
                mods.append(nn.Linear(d, width))
                if p:
                    mods.append(nn.Dropout(p))
                d = width
            mods.append(nn.Linear(d, 1))
        elif config.kind == "linear":
            mods.append(nn.Linear(d, 1))
        else:
            mods += [nn.Linear(d, config.hidden), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(config.hidden, 1)]
        self.layers = nn.Sequential(*mods)
        with torch.no_grad():  # a fresh head rates everything mid-scale (loaded weights replace this)
            last = mods[-1]
            if isinstance(last, nn.Linear):
                last.bias.fill_(5.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, D) float embeddings -> (N,) raw ratings (AVA scale, unclamped)."""
        x = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return self.layers(x).squeeze(-1)

    def rating(self, X: np.ndarray) -> np.ndarray:
        """Aesthetic scores of (N, D) embeddings: (N,) float64 in [0, 10] (the raw rating clamped).

        Raises:
            CheckpointError: D differs from the head's input dimension.
        """
        return np.clip(self.raw(X), 0.0, 10.0)

    def raw(self, X: np.ndarray) -> np.ndarray:
        """(N,) float64 raw ratings of (N, D) embeddings (unclamped: the order the head expresses, which rank
        statistics such as Spearman's use). Raises CheckpointError as :meth:`rating`."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.config.in_dim:
            raise CheckpointError(f"embeddings: this aesthetic head expects (N, {self.config.in_dim}) rows, got "
                                  f"shape {X.shape}; embed with the CLIP model the head was made for")
        if not len(X):
            return np.zeros(0, np.float64)
        self.eval()
        with torch.inference_mode():
            return self(torch.from_numpy(np.ascontiguousarray(X))).double().numpy()


def _infer_config(state: dict[str, torch.Tensor], path: str) -> HeadConfig:
    if set(state) == {"weight", "bias"}:  # a bare nn.Linear (LAION-Aesthetics V1)
        return HeadConfig("linear", int(state["weight"].shape[1]))
    w = {k: v for k, v in state.items() if k.startswith("layers.") and k.endswith(".weight")}
    idx = sorted(int(k.split(".")[1]) for k in w)
    shapes = [tuple(w[f"layers.{i}.weight"].shape) for i in idx]
    if len(shapes) == 5 and [s[0] for s in shapes] == [*_LAION_WIDTHS, 1]:
        return HeadConfig("laion-mlp", int(shapes[0][1]))
    if len(shapes) == 1 and shapes[0][0] == 1:
        return HeadConfig("linear", int(shapes[0][1]))
    if len(shapes) == 2 and shapes[1][0] == 1:
        return HeadConfig("mlp", int(shapes[0][1]), hidden=int(shapes[0][0]))
    raise CheckpointError(f"aesthetic head {path}: not a LAION-style predictor (layer shapes {shapes or 'none'}; "
                          "expected the improved predictor's 5 linear layers 1024-128-64-16-1, one Linear(D, 1), or "
                          "imagerank's Linear(D, hidden)-Linear(hidden, 1))")


def load_head(path: str | os.PathLike[str]) -> AestheticHead:
    """Load a LAION-style aesthetic head from a local weights file (no download).

    Args:
        path: ``.pth`` / ``.pt`` (a state dict, read with ``torch.load(weights_only=True)``; a Lightning
            checkpoint's ``state_dict`` is accepted too) or ``.safetensors``. Get the published files from
            github.com/christophschuhmann/improved-aesthetic-predictor (``sac+logos+ava1-l14-linearMSE.pth``) or
            github.com/LAION-AI/aesthetic-predictor (``sa_0_4_vit_l_14_linear.pth``, ``sa_0_4_vit_b_32_linear.pth``).

    Returns:
        The head in eval mode on the CPU; ``head.config`` says its kind and input dimension.

    Raises:
        CheckpointError: missing, unreadable or truncated file, or a state dict that is not such a head.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"aesthetic head: no weights file at {p} (download the published head once, see "
                              "imagerank.autopick.scorer, and pass its path)")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(p))
        else:
            state = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as e:  # torch and safetensors raise many types for bad files
        raise CheckpointError(f"aesthetic head {p}: unreadable ({type(e).__name__}: {str(e)[:200]})") from e
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"aesthetic head {p}: expected a state dict of tensors, got {type(state).__name__}")
    cfg = _infer_config(state, str(p))
    head = AestheticHead(cfg)
    if cfg.kind == "linear" and "weight" in state:
        state = {f"layers.0.{k}": v for k, v in state.items()}
    try:
        head.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"aesthetic head {p}: weights do not fit a {cfg.kind} head ({str(e)[:200]})") from e
    return head.eval()


class ClipAestheticScorer:
    """CLIP image (and text) embeddings plus an :class:`AestheticHead`, on the CPU unless told otherwise.

    Args:
        clip: the open_clip model as ``"MODEL:PRETRAINED"`` or an :class:`EmbeddingSpec` (PRETRAINED a registry tag
            cached by open_clip, a local checkpoint, or ``none`` for seeded random weights in tests). The published
            LAION heads need ``ViT-L-14:openai`` (768 dims) or ``ViT-B-32:openai`` (512, the V1 linear head).
        head: an :class:`AestheticHead`, or a path for :func:`load_head`.
        device: torch device for the CLIP forward passes (default ``cpu``).

    Raises:
        CheckpointError: the head's input dimension differs from the CLIP model's embedding dimension.
        FeatureError: the CLIP weights are unavailable (see :func:`imagerank.features.embeddings.resolve_weights`).
    """

    def __init__(self, clip: str | EmbeddingSpec, head: AestheticHead | str | os.PathLike[str], *,
                 device: str = "cpu") -> None:
        from ..features.embeddings import load_encoder

        self.spec = parse_embedding_spec(clip)
        self.head = head if isinstance(head, AestheticHead) else load_head(head)
        self.model, self.preprocess, self.info = load_encoder(self.spec)
        self.device = torch.device(device)
        self.model = self.model.to(self.device).eval()
        if int(self.info["dim"]) != int(self.head.config.in_dim):
            raise CheckpointError(
                f"aesthetic head expects {self.head.config.in_dim}-dim embeddings but {self.spec.model} gives "
                f"{self.info['dim']}; use the CLIP model the head was trained on (ViT-L-14:openai for the LAION "
                "768-dim heads, ViT-B-32:openai for 512)")
        self._tokenizer: Any = None

    @property
    def name(self) -> str:
        """``<model>__<tag>`` of the CLIP model (stored with every candidate embedding)."""
        return self.spec.sidecar_name.split("/", 1)[1]

    def embed(self, images: Sequence[Image.Image], *, batch_size: int = 32) -> np.ndarray:
        """(N, D) float32 L2-normalised CLIP image embeddings of in-memory RGB images (N may be 0)."""
        out = []
        with torch.inference_mode():
            for s in range(0, len(images), batch_size):
                x = torch.stack([self.preprocess(im.convert("RGB")) for im in images[s:s + batch_size]])
                f = self.model.encode_image(x.to(self.device)).float()  # type: ignore[operator]
                out.append(torch.nn.functional.normalize(f, dim=-1).cpu().numpy())
        dim = int(self.info["dim"])
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, dim), np.float32)

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """(M, D) float32 L2-normalised CLIP text embeddings (open_clip's tokenizer for the model).

        Raises:
            FeatureError: the model has no text tower.
        """
        import open_clip

        if not hasattr(self.model, "encode_text"):
            raise FeatureError(f"{self.spec.model} has no text tower; text-image similarity needs a CLIP model")
        if self._tokenizer is None:
            self._tokenizer = open_clip.get_tokenizer(self.spec.model)
        with torch.inference_mode():
            f = self.model.encode_text(self._tokenizer(list(texts)).to(self.device)).float()  # type: ignore[operator]
            return torch.nn.functional.normalize(f, dim=-1).cpu().numpy().astype(np.float32)

    def aesthetic(self, X: np.ndarray) -> np.ndarray:
        """(N,) float64 aesthetic scores in [0, 10] of (N, D) embeddings."""
        return self.head.rating(X)

    def similarity(self, X: np.ndarray, text: str) -> np.ndarray:
        """(N,) float64 cosine similarity (-1..1) of (N, D) L2-normalised image embeddings to ``text``
        (CLIP's zero-shot image-text score; Radford et al. 2021)."""
        if not len(X):
            return np.zeros(0, np.float64)
        t = self.embed_text([text])[0]
        return (np.asarray(X, np.float32) @ t).astype(np.float64)


#: pyiqa metrics whose raw score range is known: name -> (low, high) mapped onto 0-10 (AVA's 1-10 scale).
PYIQA_RANGES: dict[str, tuple[float, float]] = {"topiq_iaa": (1.0, 10.0), "nima": (1.0, 10.0),
                                                "laion_aes": (1.0, 10.0), "musiq-ava": (1.0, 10.0)}


class PyiqaScorer:
    """An aesthetic metric of ``pyiqa`` (Chen et al., IQA-PyTorch) scoring images 0-10, used only when the package
    and the metric's weights file are present (nothing is downloaded unless ``allow_download``).

    Args:
        metric: a pyiqa metric name, e.g. ``topiq_iaa`` or ``nima``.
        weights: the metric's local weights file (``pretrained_model_path``); None only with ``allow_download``.
        score_range: the metric's raw (low, high), mapped linearly onto 0-10 (and clamped); default from
            :data:`PYIQA_RANGES`.
        device: torch device.

    Raises:
        FeatureError: pyiqa is not installed, the weights file is missing, or the metric cannot be built.
        InvalidArgumentError: an unknown metric range and no ``score_range``.
    """

    def __init__(self, metric: str, weights: str | os.PathLike[str] | None = None, *,
                 score_range: tuple[float, float] | None = None, device: str = "cpu",
                 allow_download: bool = False) -> None:
        try:
            import pyiqa
        except ImportError as e:
            raise FeatureError("the pyiqa scorer needs the pyiqa package (pip install pyiqa); the CLIP head "
                               "scorer works without it") from e
        rng = score_range or PYIQA_RANGES.get(metric)
        if rng is None or not rng[1] > rng[0]:
            raise InvalidArgumentError(f"score_range: expected (low, high) with high > low for pyiqa metric "
                                       f"{metric!r}, got {rng!r}")
        if weights is None and not allow_download:
            raise FeatureError(f"pyiqa metric {metric!r}: pass its local weights file (weights=...), or "
                               "allow_download=True to let pyiqa fetch it")
        if weights is not None and not Path(weights).is_file():
            raise FeatureError(f"pyiqa metric {metric!r}: no weights file at {weights}")
        kwargs: dict[str, Any] = {"device": torch.device(device)}
        if weights is not None:
            kwargs["pretrained_model_path"] = str(weights)
        try:
            self.metric = pyiqa.create_metric(metric, **kwargs)
        except Exception as e:  # pyiqa raises plain exceptions for unknown names and bad files
            raise FeatureError(f"pyiqa metric {metric!r}: {type(e).__name__}: {str(e)[:200]}") from e
        self.name = f"pyiqa:{metric}"
        self.low, self.high = float(rng[0]), float(rng[1])
        self.lower_better = bool(getattr(self.metric, "lower_better", False))

    def score(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(N,) float64 scores in [0, 10] of RGB images (higher is better whatever the metric's direction)."""
        out = []
        with torch.inference_mode():
            for im in images:
                x = torch.from_numpy(np.asarray(im.convert("RGB"), np.float32) / 255.0).permute(2, 0, 1)[None]
                raw = float(torch.as_tensor(self.metric(x)).reshape(-1)[0])
                s = 10.0 * (raw - self.low) / (self.high - self.low)
                out.append(10.0 - s if self.lower_better else s)
        return np.clip(np.asarray(out, np.float64), 0.0, 10.0)
