"""Workspace settings: ``imagerank.toml`` read into frozen dataclasses, one per section, with documented defaults.

A :class:`Settings` holds six sections, each a frozen dataclass whose docstring lists its fields (units, ranges,
defaults): :class:`CoreSettings` ``core`` (folders, server, thumbnails), :class:`FeatureSettings` ``features``
(duplicate and quality thresholds), :class:`PairingSettings` ``pairing`` (strategy, live prior),
:class:`CullSettings` ``cull``, :class:`GenerationSettings` ``generation`` and :class:`AutopickSettings`
``autopick``. Read a value as ``settings.features.blur_threshold``; the flat ``settings.blur_threshold`` still works
(a read-only shortcut for every field, whose names are unique across sections), and so do ``Settings(**flat)`` and
``settings.replace(blur_threshold=..., pairing=PairingSettings(...))``.

On disk (written with ``tomli_w``; every field, so the file documents itself)::

    [core]
    roots = ["/photos/shoot"]
    port = 8888
    ...
    [features]
    blur_threshold = 100.0
    ...

Older files still load: every field under one ``[imagerank]`` table (the format before sections), or as top-level
keys; rewriting such a workspace writes the sections. Unknown keys (a newer imagerank's) are kept in
:attr:`Settings.extra` and written back where they were, so newer files open in older code.

Precedence (lowest to highest): the defaults, ``imagerank.toml`` in the workspace, environment variables
``IMAGERANK_<FIELD>`` (``IMAGERANK_PORT``) or ``IMAGERANK_<SECTION>__<FIELD>`` (``IMAGERANK_CORE__PORT``, which wins
over the flat one), then explicit keyword overrides (what the CLI passes). The environment applies to one run only:
:func:`load_settings` with ``env=False`` gives what belongs in the file. Every value is validated; a bad one raises
:class:`~imagerank.errors.ConfigError` naming the field (``core.port``), what was expected and what came.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar, overload

import tomli_w

from .errors import ConfigError, StorageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "CONFIG_NAME",
    "DEFAULT_EXTENSIONS",
    "ENV_PREFIX",
    "SECTIONS",
    "AutopickSettings",
    "CoreSettings",
    "CullSettings",
    "FeatureSettings",
    "GenerationSettings",
    "PairingSettings",
    "Settings",
    "load_settings",
    "write_settings",
]

CONFIG_NAME = "imagerank.toml"
ENV_PREFIX = "IMAGERANK_"
DEFAULT_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp")
_LEGACY_TABLE = "imagerank"  # the single table of files written before sections
_HEADER = (
    "# imagerank workspace settings: see imagerank.config (one section class per table) for each field's meaning,\n"
    "# units, range and default. IMAGERANK_<FIELD> environment variables override them for a run, never here.\n\n"
)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_T = TypeVar("_T")


# ---------------------------------------------------------------------------------------------- field checks
def _setting(default: Any, expect: str, ok: Callable[[Any], bool] | None = None,
             norm: Callable[[Any], Any] | None = None) -> Any:
    """A section field: its default (whose type is the field's: bool, int, float, str or tuple of str), what a
    valid value is (for messages), a range check ``ok`` and a normaliser ``norm`` (may raise ``ValueError``)."""
    return field(default=default, metadata={"expect": expect, "ok": ok, "norm": norm})


def _extensions(v: tuple[str, ...]) -> tuple[str, ...]:
    out = tuple(e.strip().lower() if e.strip().startswith(".") else "." + e.strip().lower() for e in v)
    if any(len(e) < 2 or any(c in "/\\" or c.isspace() for c in e) for e in out):
        raise ValueError(v)
    return out


def _prior_features(v: str) -> bool:
    return v in ("auto", "cheap", "cheap-v1", "cheap-v1+quality") or (v.startswith("embeddings:") and len(v) > 11)


def _convert(where: str, name: str, value: Any, default: Any, expect: str) -> Any:
    """``value`` as the type of ``default``; strings (environment, CLI) are parsed: lists from one string split on
    commas, roots on ``os.pathsep`` (paths may hold commas). Raises ConfigError."""
    text = value.strip() if isinstance(value, str) else None
    try:
        if isinstance(default, bool):
            if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
                return bool(value)
            if text is not None and text.lower() in _TRUE | _FALSE:
                return text.lower() in _TRUE
        elif isinstance(value, bool):
            pass  # never a number, a string or a list
        elif isinstance(default, int):
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if text is not None:
                return int(text)
        elif isinstance(default, float):
            if isinstance(value, (int, float)):
                return float(value)
            if text is not None:
                return float(text)
        elif isinstance(default, tuple):
            if text is not None:
                value = [p.strip() for p in text.split(os.pathsep if name == "roots" else ",") if p.strip()]
            items = [value] if isinstance(value, os.PathLike) else value
            if isinstance(items, (list, tuple)):
                out = tuple(os.fspath(i) if isinstance(i, os.PathLike) else i for i in items)
                if all(isinstance(i, str) for i in out):
                    return out
        elif isinstance(value, str):
            return value
    except ValueError:
        pass
    raise ConfigError(f"{where}: expected {expect}, got {value!r}")


def _validate(section: str, f: dataclasses.Field[Any], value: Any) -> Any:
    """``value`` converted and checked for field ``f`` of ``section``; raises ConfigError naming ``section.field``."""
    where, expect = f"{section}.{f.name}", f.metadata["expect"]
    value = _convert(where, f.name, value, f.default, expect)
    ok, norm = f.metadata["ok"], f.metadata["norm"]
    try:
        value = norm(value) if norm is not None else value
        if ok is None or ok(value):  # a failed range check (NaN included) falls through
            return value
    except ValueError:
        pass
    raise ConfigError(f"{where}: expected {expect}, got {value!r}")


class _Section:
    """Base of the section dataclasses: validates and normalises every field on construction."""

    section: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            object.__setattr__(self, f.name, _validate(self.section, f, getattr(self, f.name)))


# ---------------------------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class CoreSettings(_Section):
    """``[core]``: the image folders, the servers and the thumbnails.

    Attributes:
        roots: image folders, absolute paths (strings). Default: none. From the environment, separated by
            ``os.pathsep`` (``:`` on POSIX).
        recursive: walk sub-folders of every root. Default True.
        extensions: lower-case file suffixes that count as images, each starting with ``.`` (a missing dot is
            added, upper case is lowered). Default ``.jpg .jpeg .png .webp``.
        host: address the lab / app servers bind to. Default ``127.0.0.1`` (never all interfaces by default).
        port: port for ``imagerank lab``, 1–65535. Default 8888.
        thumb_size: longest side of cached thumbnails, pixels, >= 16. Default 512.
        max_image_pixels: decompression-bomb guard; images above this many pixels get status ``corrupt``; >= 1.
            Default 178,956,970 (Pillow's own limit, 2x ``Image.MAX_IMAGE_PIXELS``).
    """

    section = "core"
    roots: tuple[str, ...] = _setting((), "a list of folder paths (non-empty strings)",
                                      lambda v: all(r.strip() for r in v))
    recursive: bool = _setting(True, "true or false")
    extensions: tuple[str, ...] = _setting(
        DEFAULT_EXTENSIONS, 'a list of file suffixes starting with "." (like ".jpg")', norm=_extensions
    )
    host: str = _setting("127.0.0.1", "a host name or address without spaces",
                         lambda v: bool(v) and not any(c.isspace() for c in v))
    port: int = _setting(8888, "a port number 1..65535", lambda v: 1 <= v <= 65535)
    thumb_size: int = _setting(512, "an integer >= 16 (pixels)", lambda v: v >= 16)
    max_image_pixels: int = _setting(178_956_970, "an integer >= 1 (pixels)", lambda v: v >= 1)


@dataclass(frozen=True)
class FeatureSettings(_Section):
    """``[features]``: near-duplicate and quality-flag thresholds (flags are re-derived when read, so changing one
    needs no recompute).

    Attributes:
        phash_threshold: Hamming distance (bits, 0–64) under which two images are near-duplicates. Default 8.
        cosine_threshold: cosine similarity (-1–1) above which two embeddings are near-duplicates. Default 0.95.
        blur_threshold: Laplacian variance (>= 0) under which ``too_blurry`` is flagged. Default 100.0.
        dark_threshold: mean luma (0–255) under which ``too_dark`` is flagged. Default 40.0.
        bright_threshold: mean luma (0–255) above which ``too_bright`` is flagged. Default 215.0.
        clip_fraction_threshold: fraction (0–1) of pixels at 255 above which ``clipped_highlights`` is flagged.
            Default 0.05.
    """

    section = "features"
    phash_threshold: int = _setting(8, "an integer 0..64 (bits)", lambda v: 0 <= v <= 64)
    cosine_threshold: float = _setting(0.95, "a number in [-1, 1] (cosine similarity)", lambda v: -1 <= v <= 1)
    blur_threshold: float = _setting(100.0, "a number >= 0 (Laplacian variance)", lambda v: v >= 0)
    dark_threshold: float = _setting(40.0, "a number 0..255 (mean luma)", lambda v: 0 <= v <= 255)
    bright_threshold: float = _setting(215.0, "a number 0..255 (mean luma)", lambda v: 0 <= v <= 255)
    clip_fraction_threshold: float = _setting(0.05, "a fraction 0..1", lambda v: 0 <= v <= 1)


@dataclass(frozen=True)
class PairingSettings(_Section):
    """``[pairing]``: which pairs are shown, how votes count, and the live prior.

    Attributes:
        strategy: default pairing strategy name (a registered strategy; checked when a session starts).
            Default ``active``.
        topk: the k of "top-k" in stability estimates and the active strategy, >= 1. Default 100.
        skip_as_draw: a skipped pair is rated as a draw (the seed allowed this). Default False: skips are
            recorded but do not change ratings.
        prior_refit_every: refit the live prior (a linear Bradley-Terry ranker on ``prior_features``, calibrated on
            held-out votes, as every image's OpenSkill prior) after this many rated votes in a process; >= 0, and 0
            turns it off. Default 250 (what ``benchmarks/ranking_sim.py`` measures).
        prior_features: the feature set of the live prior: ``auto`` (newest CLIP embeddings, else cached cheap
            features), ``cheap`` or ``embeddings:<model>__<pretrained>``. Default ``auto``.
    """

    section = "pairing"
    strategy: str = _setting("active", "a strategy name (a non-empty string)", lambda v: bool(v.strip()))
    topk: int = _setting(100, "an integer >= 1", lambda v: v >= 1)
    skip_as_draw: bool = _setting(False, "true or false")
    prior_refit_every: int = _setting(250, "an integer >= 0 (votes; 0 = off)", lambda v: v >= 0)
    prior_features: str = _setting("auto", "auto, cheap or embeddings:<model>__<pretrained>", _prior_features)


@dataclass(frozen=True)
class CullSettings(_Section):
    """``[cull]``: grouping and culling a shoot (:func:`imagerank.cull.cull`; the weights are printed in
    ``summary.json``). Score = sum of the parts in ``imagerank.cull.passes`` (each part 0–1 before its weight).

    Attributes:
        burst_gap_s: seconds (> 0) between capture times that still belong to one burst. Default 2.0.
        cull_dedupe_hamming: dHash Hamming distance (bits, 0–64) at or under which two frames are near-duplicates.
            Default 6.
        cull_min_sharpness: Laplacian variance (>= 0, on the 512-px preview) under which a frame is trashed as
            blurry; 0 turns it off. Default 15.0.
        cull_max_clip: fraction (0–1) of clipped pixels (shadows + highlights) over which a frame is trashed.
            Default 0.5.
        cull_best_fraction: fraction (0–1) of the kept frames (ranked by score) that go to ``best``. Default 0.2.
        cull_w_sharpness: weight (>= 0) of the sharpness base, ``log10(1 + laplacian_var) / 3``. Default 1.0.
        cull_w_clip: weight (>= 0) of the clipping penalty (clipped fraction). Default 1.0.
        cull_w_noise: weight (>= 0) of the noise penalty, ``min(noise_sigma / 20, 1)``. Default 0.5.
        cull_w_exposure: weight (>= 0) of the mid-exposure tie-breaker, ``1 - |luma_mean - 128| / 128``.
            Default 0.1.
        cull_w_unique: weight (>= 0) of the non-duplicate tie-breaker (1 when alone in its cluster). Default 0.05.
        cull_w_saliency: weight (>= 0) of the saliency proxy (how much sharper the sharpest tile is than the
            frame). Default 0.2.
        cull_w_eyes: weight (>= 0) of the closed-eyes penalty (only with ``cull_faces``). Default 0.5.
        cull_faces: run the optional face / closed-eyes check (OpenCV Haar cascades, ``[cull]`` extra). Default
            False.
        plan_export_roots: folders (besides the workspace's ``exports/``) a plan may export into
            (:mod:`imagerank.cull.intents`); ``~`` is expanded. Default: none.
        plan_sample: files a plan preview lists (>= 0). Default 10.
        llm_url: base URL of an OpenAI-compatible chat endpoint for the optional LLM intent parser (``http://...
            /v1``); empty = rule parser only. Default empty.
        llm_model: the model name sent to it. Default empty.
        llm_api_key: its bearer key (better given as ``IMAGERANK_LLM_API_KEY`` than written here). Default empty.
        llm_timeout_s: seconds (> 0) to wait for one reply. Default 60.0.
    """

    section = "cull"
    burst_gap_s: float = _setting(2.0, "a number of seconds > 0", lambda v: v > 0)
    cull_dedupe_hamming: int = _setting(6, "an integer 0..64 (bits)", lambda v: 0 <= v <= 64)
    cull_min_sharpness: float = _setting(15.0, "a number >= 0 (Laplacian variance)", lambda v: v >= 0)
    cull_max_clip: float = _setting(0.5, "a fraction 0..1", lambda v: 0 <= v <= 1)
    cull_best_fraction: float = _setting(0.2, "a fraction 0..1", lambda v: 0 <= v <= 1)
    cull_w_sharpness: float = _setting(1.0, "a weight >= 0", lambda v: v >= 0)
    cull_w_clip: float = _setting(1.0, "a weight >= 0", lambda v: v >= 0)
    cull_w_noise: float = _setting(0.5, "a weight >= 0", lambda v: v >= 0)
    cull_w_exposure: float = _setting(0.1, "a weight >= 0", lambda v: v >= 0)
    cull_w_unique: float = _setting(0.05, "a weight >= 0", lambda v: v >= 0)
    cull_w_saliency: float = _setting(0.2, "a weight >= 0", lambda v: v >= 0)
    cull_w_eyes: float = _setting(0.5, "a weight >= 0", lambda v: v >= 0)
    cull_faces: bool = _setting(False, "true or false")
    plan_export_roots: tuple[str, ...] = _setting((), "a list of folder paths (non-empty strings)",
                                                  lambda v: all(r.strip() for r in v))
    plan_sample: int = _setting(10, "an integer >= 0 (files)", lambda v: v >= 0)
    llm_url: str = _setting("", "an http(s) URL or empty", lambda v: v == "" or v.startswith(("http://", "https://")))
    llm_model: str = _setting("", "a model name or empty")
    llm_api_key: str = _setting("", "a key or empty")
    llm_timeout_s: float = _setting(60.0, "a number of seconds > 0", lambda v: v > 0)


@dataclass(frozen=True)
class GenerationSettings(_Section):
    """``[generation]``: the generation tree driven on ComfyUI servers (:mod:`imagerank.generation`).

    Attributes:
        max_children: N, the most children one candidate may have (jobs in flight count), >= 1. Default 3.
        target_finals: T, active candidates wanted in the final step; base jobs stop when there are this many
            and no candidate can take another child, >= 1. Default 4.
        job_policy: how ``next_job`` picks a parent inside the highest eligible step: ``raffle`` (tickets from the
            rating, the seed's rule), ``thompson`` (posterior sampling) or ``uniform`` (the baseline of the
            simulation benchmark). Default ``raffle``.
        job_seed: seed of the job RNG (with the database state it makes ``next_job`` deterministic), >= 0.
            Default 0.
        comfy_retries: attempts per request to a ComfyUI server on connection errors (exponential backoff),
            >= 1. Default 5.
        comfy_job_timeout_s: seconds (> 0) a submitted job may take before it is marked failed. Default 3600.
        comfy_poll_s: seconds (> 0) between polls of a running job (the websocket only wakes the poll early).
            Default 1.0.
    """

    section = "generation"
    max_children: int = _setting(3, "an integer >= 1 (children per candidate)", lambda v: v >= 1)
    target_finals: int = _setting(4, "an integer >= 1 (final images)", lambda v: v >= 1)
    job_policy: str = _setting("raffle", "raffle, thompson or uniform",
                               lambda v: v in ("raffle", "thompson", "uniform"))
    job_seed: int = _setting(0, "an integer >= 0", lambda v: v >= 0)
    comfy_retries: int = _setting(5, "an integer >= 1 (attempts)", lambda v: v >= 1)
    comfy_job_timeout_s: float = _setting(3600.0, "a number of seconds > 0", lambda v: v > 0)
    comfy_poll_s: float = _setting(1.0, "a number of seconds > 0", lambda v: v > 0)


@dataclass(frozen=True)
class AutopickSettings(_Section):
    """``[autopick]``: automatic picks. No fields yet; the table is written (empty) and keys a newer imagerank put
    there are kept."""

    section = "autopick"


SECTIONS: dict[str, type[_Section]] = {
    "core": CoreSettings,
    "features": FeatureSettings,
    "pairing": PairingSettings,
    "cull": CullSettings,
    "generation": GenerationSettings,
    "autopick": AutopickSettings,
}
"""Section name (the TOML table and the :class:`Settings` attribute) -> its dataclass, in file order."""

_FIELDS: dict[str, dict[str, dataclasses.Field[Any]]] = {
    name: {f.name: f for f in dataclasses.fields(cls)} for name, cls in SECTIONS.items()  # type: ignore[arg-type]
}
_FLAT: dict[str, str] = {name: section for section, names in _FIELDS.items() for name in names}  # -> section
if len(_FLAT) != sum(map(len, _FIELDS.values())) or set(_FLAT) & set(SECTIONS):  # pragma: no cover
    raise RuntimeError("setting names must be unique across sections (the flat names and the environment use them)")


def _known() -> str:
    return ", ".join(sorted(_FLAT))


def _fields_of(obj: _Section) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}  # type: ignore[arg-type]


def _section_changes(name: str, changes: Mapping[str, Any]) -> dict[str, Any]:
    """``changes`` to section ``name``, checked for unknown field names."""
    unknown = sorted(set(changes) - set(_FIELDS[name]))
    if unknown:
        raise ConfigError(f"{name}: unknown field(s) {', '.join(map(repr, unknown))}; "
                          f"known: {', '.join(_FIELDS[name]) or 'none'}")
    return dict(changes)


def _make_section(name: str, given: Any, changes: Mapping[str, Any]) -> Any:
    """Section ``name`` from ``given`` (None = defaults, a section object, or a mapping of its fields) with
    ``changes`` (a mapping of its fields) on top."""
    cls = SECTIONS[name]
    changes = _section_changes(name, changes)
    if given is None:
        base: dict[str, Any] = {}
    elif isinstance(given, cls):
        if not changes:
            return given
        base = _fields_of(given)
    elif isinstance(given, Mapping):
        base = _section_changes(name, given)
    else:
        raise ConfigError(f"{name}: expected a {cls.__name__} or a mapping of its fields, got {given!r}")
    return cls(**{**base, **changes})


class _Flat(Generic[_T]):
    """A read-only :class:`Settings` attribute forwarding to a section's field of the same name."""

    def __init__(self, section: str) -> None:
        self.section = section
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.__doc__ = f"Shortcut for ``settings.{self.section}.{name}`` (read-only)."

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _Flat[_T]: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> _T: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return getattr(getattr(obj, self.section), self.name)


# ---------------------------------------------------------------------------------------------- Settings
@dataclass(frozen=True, init=False)
class Settings:
    """Settings of one workspace: six sections (see each class for its fields) and the unknown keys of its file.

    Construct with sections and/or flat field names: ``Settings()``, ``Settings(blur_threshold=50.0)``,
    ``Settings(core=CoreSettings(port=9000), pairing={"topk": 20})``; flat names are applied on top of the
    sections given. Every field is also readable flat (``settings.port`` is ``settings.core.port``).

    Attributes:
        core: :class:`CoreSettings` (roots, recursive, extensions, host, port, thumb_size, max_image_pixels).
        features: :class:`FeatureSettings` (phash/cosine duplicate thresholds, blur/dark/bright/clip flags).
        pairing: :class:`PairingSettings` (strategy, topk, skip_as_draw, prior_refit_every, prior_features).
        cull: :class:`CullSettings` (burst_gap_s, cull_* thresholds and score weights, plan_* and llm_* for plans).
        generation: :class:`GenerationSettings` (max_children N, target_finals T, job_policy, job_seed, comfy_*).
        autopick: :class:`AutopickSettings` (no fields yet).
        extra: the file's keys this version does not know, shaped as in the file (``{"core": {"new_key": 1},
            "new_table": {...}}``), written back by :func:`write_settings`; not compared.

    Raises:
        ConfigError: an unknown name or a bad value (the message names the field, e.g. ``core.port``).
    """

    core: CoreSettings = field(default_factory=CoreSettings)
    features: FeatureSettings = field(default_factory=FeatureSettings)
    pairing: PairingSettings = field(default_factory=PairingSettings)
    cull: CullSettings = field(default_factory=CullSettings)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    autopick: AutopickSettings = field(default_factory=AutopickSettings)
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    # Flat read-only shortcuts (the names code used before sections); see the section classes for meanings.
    roots = _Flat[tuple[str, ...]]("core")
    recursive = _Flat[bool]("core")
    extensions = _Flat[tuple[str, ...]]("core")
    host = _Flat[str]("core")
    port = _Flat[int]("core")
    thumb_size = _Flat[int]("core")
    max_image_pixels = _Flat[int]("core")
    phash_threshold = _Flat[int]("features")
    cosine_threshold = _Flat[float]("features")
    blur_threshold = _Flat[float]("features")
    dark_threshold = _Flat[float]("features")
    bright_threshold = _Flat[float]("features")
    clip_fraction_threshold = _Flat[float]("features")
    strategy = _Flat[str]("pairing")
    topk = _Flat[int]("pairing")
    skip_as_draw = _Flat[bool]("pairing")
    prior_refit_every = _Flat[int]("pairing")
    prior_features = _Flat[str]("pairing")
    burst_gap_s = _Flat[float]("cull")
    max_children = _Flat[int]("generation")
    target_finals = _Flat[int]("generation")
    job_policy = _Flat[str]("generation")
    job_seed = _Flat[int]("generation")
    comfy_retries = _Flat[int]("generation")
    comfy_job_timeout_s = _Flat[float]("generation")
    comfy_poll_s = _Flat[float]("generation")
    cull_dedupe_hamming = _Flat[int]("cull")
    cull_min_sharpness = _Flat[float]("cull")
    cull_max_clip = _Flat[float]("cull")
    cull_best_fraction = _Flat[float]("cull")
    cull_w_sharpness = _Flat[float]("cull")
    cull_w_clip = _Flat[float]("cull")
    cull_w_noise = _Flat[float]("cull")
    cull_w_exposure = _Flat[float]("cull")
    cull_w_unique = _Flat[float]("cull")
    cull_w_saliency = _Flat[float]("cull")
    cull_w_eyes = _Flat[float]("cull")
    cull_faces = _Flat[bool]("cull")
    plan_export_roots = _Flat[tuple[str, ...]]("cull")
    plan_sample = _Flat[int]("cull")
    llm_url = _Flat[str]("cull")
    llm_model = _Flat[str]("cull")
    llm_api_key = _Flat[str]("cull")
    llm_timeout_s = _Flat[float]("cull")

    def __init__(
        self,
        *,
        core: CoreSettings | Mapping[str, Any] | None = None,
        features: FeatureSettings | Mapping[str, Any] | None = None,
        pairing: PairingSettings | Mapping[str, Any] | None = None,
        cull: CullSettings | Mapping[str, Any] | None = None,
        generation: GenerationSettings | Mapping[str, Any] | None = None,
        autopick: AutopickSettings | Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
        **flat: Any,
    ) -> None:
        given = {"core": core, "features": features, "pairing": pairing, "cull": cull,
                 "generation": generation, "autopick": autopick}
        changes: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
        for key, value in flat.items():
            if key not in _FLAT:
                raise ConfigError(f"unknown setting {key!r}; known: {_known()}")
            changes[_FLAT[key]][key] = value
        for name in SECTIONS:
            object.__setattr__(self, name, _make_section(name, given[name], changes[name]))
        if extra is not None and not isinstance(extra, Mapping):
            raise ConfigError(f"extra: expected a mapping of unknown keys, got {extra!r}")
        object.__setattr__(self, "extra", copy.deepcopy(dict(extra or {})))

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied, validated like the constructor.

        ``changes`` may name flat fields (``prior_refit_every=0``), whole sections (``pairing=PairingSettings(...)``,
        or a mapping of some of that section's fields to change), and ``extra``; flat names win over a section
        given in the same call.
        """
        sections: dict[str, Any] = {name: getattr(self, name) for name in SECTIONS}
        extra = changes.pop("extra", self.extra)
        flat: dict[str, Any] = {}
        for key, value in changes.items():
            if key in SECTIONS:
                # A mapping changes some fields of the current section; a section object replaces it.
                sections[key] = _make_section(key, sections[key], value) if isinstance(value, Mapping) else value
            else:
                flat[key] = value
        return Settings(**sections, extra=extra, **flat)

    def to_dict(self, *, flat: bool = False) -> dict[str, Any]:
        """The known fields: ``{"core": {"roots": (...), ...}, "features": {...}, ...}``, or with ``flat=True``
        ``{"roots": (...), "port": 8888, ...}`` (what ``Settings(**d)`` accepts). ``extra`` is not included."""
        nested = {name: _fields_of(getattr(self, name)) for name in SECTIONS}
        if flat:
            return {k: v for table in nested.values() for k, v in table.items()}
        return nested


# ---------------------------------------------------------------------------------------------- reading
def _read_file(path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The known values of ``path`` by section (validated) and its unknown keys (shaped as in the file)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from e
    legacy: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    nested: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    extra: dict[str, Any] = {}

    def flat_key(key: str, value: Any, unknown: dict[str, Any]) -> None:
        if key in _FLAT:
            section = _FLAT[key]
            legacy[section][key] = _validate(section, _FIELDS[section][key], value)
        else:
            unknown[key] = value

    try:
        for key, value in data.items():
            if key in SECTIONS:
                if not isinstance(value, dict):
                    raise ConfigError(f"[{key}]: expected a table of settings, got {value!r}")
                for k, v in value.items():
                    if k in _FIELDS[key]:
                        nested[key][k] = _validate(key, _FIELDS[key][k], v)
                    else:
                        extra.setdefault(key, {})[k] = v
            elif key == _LEGACY_TABLE and isinstance(value, dict):
                unknown: dict[str, Any] = {}
                for k, v in value.items():
                    flat_key(k, v, unknown)
                if unknown:
                    extra[_LEGACY_TABLE] = unknown
            else:
                flat_key(key, value, extra)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e
    # Sections win over the old flat form when a file has both.
    return {name: {**legacy[name], **nested[name]} for name in SECTIONS}, extra


def _read_env() -> dict[str, dict[str, Any]]:
    """Values from ``IMAGERANK_<FIELD>`` then ``IMAGERANK_<SECTION>__<FIELD>`` (validated)."""
    values: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for name, section in _FLAT.items():
        for var in (f"{ENV_PREFIX}{name.upper()}", f"{ENV_PREFIX}{section.upper()}__{name.upper()}"):
            text = os.environ.get(var)
            if text is not None:
                try:
                    values[section][name] = _validate(section, _FIELDS[section][name], text)
                except ConfigError as e:
                    raise ConfigError(f"{e} (from the environment variable {var})") from e
    return values


def load_settings(
    workspace: str | os.PathLike[str] | None = None, *, env: bool = True, **overrides: Any
) -> Settings:
    """Read settings for ``workspace``: the defaults, then its ``imagerank.toml`` (sections, or the older flat
    ``[imagerank]`` table / top-level keys), then the environment, then ``overrides``.

    Args:
        workspace: the workspace folder; None reads no file.
        env: apply ``IMAGERANK_<FIELD>`` / ``IMAGERANK_<SECTION>__<FIELD>`` variables. ``env=False`` gives what
            belongs in the file (the environment is for one run, never written).
        **overrides: flat field names (``thumb_size=256``; None values are ignored) or whole sections
            (``features=FeatureSettings(...)`` or a mapping of some of its fields).

    Raises:
        ConfigError: the TOML file is malformed, a value has the wrong type or range (the message names the field
            and where it came from), or an override names no setting. Unknown keys in the file are kept in
            :attr:`Settings.extra` rather than rejected, so newer files open in older code.
    """
    values: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    extra: dict[str, Any] = {}
    if workspace is not None:
        path = Path(workspace) / CONFIG_NAME
        if path.exists():
            from_file, extra = _read_file(path)
            for name in SECTIONS:
                values[name].update(from_file[name])
    if env:
        for name, from_env in _read_env().items():
            values[name].update(from_env)
    for key, value in overrides.items():
        if value is None:
            continue
        if key in SECTIONS:
            if isinstance(value, SECTIONS[key]):
                values[key].update(_fields_of(value))
            elif isinstance(value, Mapping):
                values[key].update({k: _validate(key, _FIELDS[key][k], v)
                                    for k, v in _section_changes(key, value).items()})
            else:
                raise ConfigError(f"{key}: expected a {SECTIONS[key].__name__} or a mapping of its fields, "
                                  f"got {value!r}")
        elif key in _FLAT:
            section = _FLAT[key]
            values[section][key] = _validate(section, _FIELDS[section][key], value)
        else:
            raise ConfigError(f"unknown setting {key!r}; known: {_known()}")
    sections: dict[str, Any] = {name: SECTIONS[name](**values[name]) for name in SECTIONS}
    return Settings(**sections, extra=extra)


# ---------------------------------------------------------------------------------------------- writing
def _toml_doc(settings: Settings) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    extra = dict(settings.extra)
    for name in SECTIONS:
        table: dict[str, Any] = {k: list(v) if isinstance(v, tuple) else v
                                 for k, v in _fields_of(getattr(settings, name)).items()}
        kept = extra.pop(name, None)
        if isinstance(kept, Mapping):
            table.update({k: v for k, v in kept.items() if k not in table})
        doc[name] = table
    for key, value in extra.items():  # unknown top-level keys and tables (an old [imagerank] table's leftovers)
        if key not in doc and key not in _FLAT:
            doc[key] = value
    return doc


def write_settings(workspace: str | os.PathLike[str], settings: Settings) -> Path:
    """Write ``settings`` to ``workspace/imagerank.toml`` as ``[core]``, ``[features]``, ... tables (every field, so
    the file documents itself; unknown keys from :attr:`Settings.extra` where they were). Written atomically.

    Raises:
        ConfigError: an ``extra`` value TOML cannot hold. StorageError: the file cannot be written (disk full,
            I/O error, no permission: the reason is in the message); the previous file is left as it was.
    """
    try:
        text = tomli_w.dumps(_toml_doc(settings))
    except TypeError as e:
        raise ConfigError(f"cannot write the settings as TOML: {e}") from e
    path = Path(workspace) / CONFIG_NAME
    tmp = path.with_name(f".{CONFIG_NAME}.{os.getpid()}.tmp")
    try:  # a temporary file renamed over the old one: never a half-written imagerank.toml
        tmp.write_text(_HEADER + text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        err = StorageError(f"cannot write the settings {path}: {e.strerror or e}; the previous file is unchanged")
        err.errno = e.errno
        raise err from e
    return path
