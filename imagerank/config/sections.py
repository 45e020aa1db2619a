"""The sections of the workspace settings: one frozen dataclass per ``imagerank.toml`` table, each field with its
default, what it expects and its check (see :mod:`imagerank.config` for the file format and precedence).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from ..errors import ConfigError

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
        posterior: the consistent-judge mode (rank by the EP posterior of the whole log, pick with the boundary
            screen; :mod:`imagerank.pairing.posterior_view`): ``auto`` (on while the fitted judge noise is under
            0.75 x the skill SD), ``on`` or ``off``. Default ``auto``.
    """

    section = "pairing"
    strategy: str = _setting("active", "a strategy name (a non-empty string)", lambda v: bool(v.strip()))
    topk: int = _setting(100, "an integer >= 1", lambda v: v >= 1)
    skip_as_draw: bool = _setting(False, "true or false")
    prior_refit_every: int = _setting(250, "an integer >= 0 (votes; 0 = off)", lambda v: v >= 0)
    prior_features: str = _setting("auto", "auto, cheap or embeddings:<model>__<pretrained>", _prior_features)
    posterior: str = _setting("auto", "auto, on or off", lambda v: v in ("auto", "on", "off"),
                              lambda v: v.strip().lower())


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


