"""Workspace settings: a frozen dataclass read from ``imagerank.toml`` with documented defaults.

Precedence (lowest to highest): the defaults below, ``imagerank.toml`` in the workspace, environment variables
``IMAGERANK_<FIELD>`` (upper case), then explicit keyword overrides (what the CLI passes).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["CONFIG_NAME", "DEFAULT_EXTENSIONS", "Settings", "load_settings", "write_settings"]

CONFIG_NAME = "imagerank.toml"
DEFAULT_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp")


@dataclass(frozen=True)
class Settings:
    """Settings of one workspace.

    Attributes:
        roots: image folders, absolute paths (strings). Default: none.
        recursive: walk sub-folders of every root. Default True.
        extensions: lower-case file suffixes that count as images. Default ``.jpg .jpeg .png .webp``.
        host: address the lab / app servers bind to. Default ``127.0.0.1`` (never all interfaces by default).
        port: port for ``imagerank lab``. Default 8888.
        skip_as_draw: a skipped pair is rated as a draw (the seed allowed this). Default False: skips are
            recorded but do not change ratings.
        strategy: default pairing strategy name. Default ``active``.
        thumb_size: longest side of cached thumbnails, pixels. Default 512.
        max_image_pixels: decompression-bomb guard; images above this many pixels get status ``corrupt``.
            Default 178,956,970 (Pillow's own limit, 2x ``Image.MAX_IMAGE_PIXELS``).
        topk: the k of "top-k" in stability estimates and the active strategy. Default 100.
        phash_threshold: Hamming distance (bits, 0–64) under which two images are near-duplicates. Default 8.
        cosine_threshold: cosine similarity above which two embeddings are near-duplicates. Default 0.95.
        blur_threshold: Laplacian variance under which ``too_blurry`` is flagged. Default 100.0.
        dark_threshold: mean luma (0–255) under which ``too_dark`` is flagged. Default 40.0.
        bright_threshold: mean luma (0–255) above which ``too_bright`` is flagged. Default 215.0.
        clip_fraction_threshold: fraction of pixels at 255 above which ``clipped_highlights`` is flagged.
            Default 0.05.
        burst_gap_s: seconds between capture times that still belong to one burst. Default 2.0.
        prior_refit_every: refit the live prior (a linear Bradley-Terry ranker on ``prior_features``, calibrated on
            held-out votes, as every image's OpenSkill prior) after this many rated votes in a process; 0 turns
            it off. Default 250 (what ``benchmarks/ranking_sim.py`` measures).
        prior_features: the feature set of the live prior: ``auto`` (newest CLIP embeddings, else cached cheap
            features), ``cheap`` or ``embeddings:<model>__<pretrained>``. Default ``auto``.
    """

    roots: tuple[str, ...] = ()
    recursive: bool = True
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS
    host: str = "127.0.0.1"
    port: int = 8888
    skip_as_draw: bool = False
    strategy: str = "active"
    thumb_size: int = 512
    max_image_pixels: int = 178_956_970
    topk: int = 100
    phash_threshold: int = 8
    cosine_threshold: float = 0.95
    blur_threshold: float = 100.0
    dark_threshold: float = 40.0
    bright_threshold: float = 215.0
    clip_fraction_threshold: float = 0.05
    burst_gap_s: float = 2.0
    prior_refit_every: int = 250
    prior_features: str = "auto"
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.recursive, bool):
            raise ConfigError(f"recursive: expected true or false, got {self.recursive!r}")
        if not (0 < int(self.port) < 65536):
            raise ConfigError(f"port: expected 1..65535, got {self.port!r}")
        if self.thumb_size < 16:
            raise ConfigError(f"thumb_size: expected >= 16 pixels, got {self.thumb_size!r}")
        if not 0 <= self.phash_threshold <= 64:
            raise ConfigError(f"phash_threshold: expected 0..64 bits, got {self.phash_threshold!r}")
        if int(self.prior_refit_every) < 0:
            raise ConfigError(f"prior_refit_every: expected >= 0 votes (0 = off), got {self.prior_refit_every!r}")
        if not (self.prior_features in ("auto", "cheap", "cheap-v1", "cheap-v1+quality")
                or str(self.prior_features).startswith("embeddings:")):
            raise ConfigError(f"prior_features: expected auto, cheap or embeddings:<model>__<pretrained>, "
                              f"got {self.prior_features!r}")
        exts = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in self.extensions)
        object.__setattr__(self, "extensions", exts)
        object.__setattr__(self, "roots", tuple(str(r) for r in self.roots))

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with ``changes`` applied (validated like the constructor)."""
        return dataclasses.replace(self, **changes)


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "extra"}


def _coerce(name: str, value: Any) -> Any:
    default = _FIELDS[name].default
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() in {"1", "true", "yes", "on"}:
                    return True
                if value.lower() in {"0", "false", "no", "off"}:
                    return False
                raise ValueError(value)
            return bool(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            return tuple(value)
        return value
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{name}: expected a value like {default!r}, got {value!r}") from e


def load_settings(workspace: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Read settings for ``workspace`` (defaults, then its ``imagerank.toml``, then env, then ``overrides``).

    Raises:
        ConfigError: the TOML file is malformed or a value has the wrong type; unknown keys are kept in
            ``Settings.extra`` rather than rejected, so newer files open in older code.
    """
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    if workspace is not None:
        path = Path(workspace) / CONFIG_NAME
        if path.exists():
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
                raise ConfigError(f"{path}: not valid TOML ({e})") from e
            section = data.get("imagerank", data)
            for key, value in section.items():
                if key in _FIELDS:
                    values[key] = _coerce(key, value)
                else:
                    extra[key] = value
    for name in _FIELDS:
        env = os.environ.get(f"IMAGERANK_{name.upper()}")
        if env is not None:
            values[name] = _coerce(name, env)
    for key, value in overrides.items():
        if key not in _FIELDS:
            raise ConfigError(f"unknown setting {key!r}; known: {', '.join(sorted(_FIELDS))}")
        if value is not None:
            values[key] = _coerce(key, value)
    return Settings(**values, extra=extra)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    s = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def write_settings(workspace: str | os.PathLike[str], settings: Settings) -> Path:
    """Write ``settings`` to ``workspace/imagerank.toml`` (every field, so the file documents itself)."""
    lines = ["# imagerank workspace settings; see imagerank.config.Settings for what each means.", "[imagerank]"]
    for name in _FIELDS:
        lines.append(f"{name} = {_toml_value(getattr(settings, name))}")
    path = Path(workspace) / CONFIG_NAME
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
