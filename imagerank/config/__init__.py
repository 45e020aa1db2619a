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
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, overload

import tomli_w

from ..errors import ConfigError, StorageError
from .sections import (
    _FIELDS,
    _FLAT,
    _HEADER,
    _LEGACY_TABLE,
    _T,
    CONFIG_NAME,
    DEFAULT_EXTENSIONS,
    ENV_PREFIX,
    SECTIONS,
    AutopickSettings,
    CoreSettings,
    CullSettings,
    FeatureSettings,
    GenerationSettings,
    PairingSettings,
    _fields_of,
    _known,
    _make_section,
    _section_changes,
    _validate,
)

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
        pairing: :class:`PairingSettings` (strategy, topk, skip_as_draw, prior_refit_every, prior_features,
            posterior).
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
    posterior = _Flat[str]("pairing")
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
