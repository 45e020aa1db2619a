"""The model registry: ``<workspace>/models/<name>/`` holds ``model.safetensors`` (the state dict, tensors only,
no pickle) and ``meta.json`` (kind, feature set and dimension, network config, data size, split seed, metrics,
versions of imagerank / torch / lightning / open_clip, time).

Loading checks what it reads: an unreadable or truncated checkpoint, a state dict that does not fit the network
the metadata describes, or a feature set other than the one asked for raise :class:`CheckpointError` with the
reason. Models load onto the best device available (cuda, then mps, then cpu) unless told otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalog import CatalogLike, as_catalog
from ..errors import CheckpointError, InvalidArgumentError, NotFoundError

if TYPE_CHECKING:
    import pandas as pd


__all__ = ["list_models", "load_model", "model_dir", "save_model"]

WEIGHTS = "model.safetensors"
META = "meta.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _root(col: CatalogLike | str | os.PathLike[str]) -> Path:
    return Path(col) / "models" if isinstance(col, (str, os.PathLike)) else as_catalog(col).models_dir


def model_dir(col: CatalogLike | str | os.PathLike[str], name: str) -> Path:
    """``<workspace>/models/<name>``.

    Raises:
        InvalidArgumentError: ``name`` is not a plain folder name (letters, digits, ``._-``, no path separators).
    """
    if not _NAME.match(name or "") or name in (".", ".."):
        raise InvalidArgumentError(f"name: expected a plain model name (letters, digits, '._-'), got {name!r}")
    return _root(col) / name


def _jsonable(obj: Any) -> Any:
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def save_model(col: CatalogLike | str | os.PathLike[str], name: str, model: Any) -> Path:
    """Write ``model`` (a :class:`~imagerank.training.ranker.Ranker` or
    :class:`~imagerank.training.crops.CropModel`) to ``models/<name>/``, replacing an earlier model of that name
    atomically (written to a temporary folder, then renamed).

    Returns:
        The model folder.
    """
    from safetensors.torch import save_file

    dest = model_dir(col, name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    state = {k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}
    save_file(state, str(tmp / WEIGHTS))
    meta = dict(model.metadata)
    meta["name"] = name
    meta.setdefault("kind", "ranker")
    meta["saved_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    meta["history"] = getattr(model, "history", [])[-2000:]
    (tmp / META).write_text(json.dumps(_jsonable(meta), indent=1))
    old = dest.with_name(f".{name}.old")
    if old.exists():
        shutil.rmtree(old)
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    if old.exists():
        shutil.rmtree(old)
    model.name = name
    return dest


def read_meta(col: CatalogLike | str | os.PathLike[str], name: str) -> dict[str, Any]:
    """The ``meta.json`` of model ``name``.

    Raises:
        NotFoundError: no such model. CheckpointError: the JSON is unreadable.
    """
    d = model_dir(col, name)
    if not (d / META).exists():
        known = ", ".join(sorted(p.name for p in _root(col).iterdir() if (p / META).exists())) if _root(
            col).is_dir() else ""
        raise NotFoundError(f"no model {name!r} in {_root(col)} (known: {known or 'none'})")
    try:
        meta = json.loads((d / META).read_text())
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"model {name!r}: {d / META} is unreadable ({e})") from e
    if not isinstance(meta, dict):
        raise CheckpointError(f"model {name!r}: {d / META} is unreadable (not a JSON object)")
    return meta


def load_model(
    col: CatalogLike | str | os.PathLike[str],
    name: str = "ranker",
    *,
    features: str | None = None,
    device: str | None = None,
) -> Any:
    """Load model ``name`` from ``models/`` as a Ranker or CropModel.

    Args:
        features: the feature set the caller will score with; when given and different from the model's,
            :class:`CheckpointError` (a ranker trained on CLIP embeddings cannot score cheap features).
        device: ``cuda``, ``mps``, ``cpu``; default the best available.

    Raises:
        NotFoundError: no such model.
        CheckpointError: corrupt or truncated weights, unreadable metadata, weights that do not fit the network
            the metadata describes, or a different feature set than ``features``.
    """
    from safetensors.torch import load_file

    meta = read_meta(col, name)
    kind = meta.get("kind", "ranker")
    if features is not None and kind == "ranker" and meta.get("feature_set") != features:
        raise CheckpointError(
            f"model {name!r} was trained on feature set {meta.get('feature_set')!r} "
            f"({meta.get('feature_dim')} dims), not {features!r}; retrain it with features={features!r} "
            "or score with its own feature set"
        )
    path = model_dir(col, name) / WEIGHTS
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for bad headers / truncation
        raise CheckpointError(f"model {name!r}: {path} is corrupt or unreadable ({type(e).__name__}: {e})") from e
    import torch

    from .._util.torch import resolve_accelerator

    dev = torch.device(resolve_accelerator(device))
    try:
        if kind == "ranker":
            from .ranker import NetConfig, Ranker, build_ranker_net

            cfg = NetConfig(**meta["net"])
            net = build_ranker_net(cfg)
            net.load_state_dict(state, strict=True)
            model: Any = Ranker(net.to(dev).eval(), cfg, meta["feature_set"], meta, meta.get("history", []), name)
        elif kind == "crop":
            from .crops import CropModel

            model = CropModel.from_state(state, meta, device=dev)
            model.name = name
        else:
            raise CheckpointError(f"model {name!r}: unknown kind {kind!r} in {META}")
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(
            f"model {name!r}: the weights do not fit the network described in {META} ({type(e).__name__}: "
            f"{str(e)[:300]})"
        ) from e
    return model


def list_models(col: CatalogLike | str | os.PathLike[str]) -> pd.DataFrame:
    """Every model in ``models/``: name, kind, feature_set, feature_dim, saved_at, key metrics."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    root = _root(col)
    if root.is_dir():
        for d in sorted(root.iterdir()):
            if not (d / META).exists() or d.name.startswith("."):
                continue
            try:
                m = read_meta(col, d.name)
            except CheckpointError as e:
                rows.append({"name": d.name, "kind": "unreadable", "error": str(e)})
                continue
            met = m.get("metrics", {})
            rows.append({"name": d.name, "kind": m.get("kind"), "feature_set": m.get("feature_set"),
                         "feature_dim": m.get("feature_dim"), "saved_at": m.get("saved_at"),
                         **{k: v for k, v in met.items() if isinstance(v, (int, float))}})
    return pd.DataFrame(rows)
