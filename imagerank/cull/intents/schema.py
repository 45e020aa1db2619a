"""The plan language: a versioned, ordered list of whitelisted actions (pydantic v2 models).

A :class:`Plan` is what a parser (:mod:`.rules` or :mod:`.llm`) makes of a sentence and what :mod:`.run` executes.
Only these actions exist (the ``action`` field is the discriminator; any other value, or any unknown field, is a
validation error):

- ``cull``: the cull settings the selection is computed with (``burst_seconds``, ``dedupe_hamming``,
  ``min_sharpness``, ``max_clip``); at most one, and first.
- ``select``: keep (``mode="keep"``) or drop (``mode="drop"``) the files that match *every* given criterion: capture
  time range / hours of the day / weekdays, camera, lens, quality thresholds (sharpness as Laplacian variance,
  clipping fraction, noise sigma, closed eyes), cull bucket, burst role, near-duplicate role, rating (ordinal
  ``mu - 3 sigma``, comparisons), labels and a folder glob.
- ``sort``: order the selection by one key.
- ``limit``: keep the first ``n`` (overall, or per burst / cluster / folder / day / camera).
- ``label``: attach ``good``, ``bad`` or ``flag`` to every selected image.
- ``vote``: start a voting session restricted to the selection.
- ``export``: place the selection under a destination inside the allowed export roots (copy, symlink, hard link;
  XMP sidecars beside the exported files).

Nothing else is expressible: no shell, no deletes, no path outside the workspace's image folders (``folder`` is a
relative glob) and the export roots (checked against the workspace by :func:`imagerank.cull.intents.run.check_plan`).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ...errors import InvalidArgumentError

__all__ = [
    "ACTIONS",
    "BURST_ROLES",
    "DUPLICATE_ROLES",
    "GROUP_KEYS",
    "PLAN_VERSION",
    "SORT_KEYS",
    "Cull",
    "Export",
    "Label",
    "Limit",
    "Plan",
    "PlanError",
    "Select",
    "Sort",
    "Step",
    "Vote",
    "parse_plan",
    "plan_json_schema",
]

#: The plan format's version (``Plan.version``); a plan of another version is refused.
PLAN_VERSION = 1
#: The whitelisted actions.
ACTIONS: tuple[str, ...] = ("cull", "select", "sort", "limit", "label", "vote", "export")
#: Burst roles: ``single`` (a burst of one), ``pick`` (the cull's pick of its near-duplicate cluster inside a burst
#: of two or more), ``other`` (a burst member that is not a pick).
BURST_ROLES: tuple[str, ...] = ("single", "pick", "other")
#: Near-duplicate roles: ``unique`` (alone in its cluster, no byte-identical copy), ``pick`` (the kept frame of a
#: cluster of two or more), ``duplicate`` (a near-duplicate that lost, or a byte-identical later copy).
DUPLICATE_ROLES: tuple[str, ...] = ("unique", "pick", "duplicate")
#: Sort keys (see :data:`imagerank.cull.intents.run.SORT_COLUMNS` for the column each reads).
SORT_KEYS: tuple[str, ...] = ("score", "sharpness", "ordinal", "capture_time", "noise", "clipping", "path")
#: Groups a ``limit`` can apply per.
GROUP_KEYS: tuple[str, ...] = ("burst", "cluster", "folder", "day", "camera")

Bucket = Literal["best", "good", "maybe", "trash"]
LabelName = Literal["good", "bad", "flag"]


class PlanError(InvalidArgumentError):
    """A plan that is not valid: not the schema, a path outside the allowed roots, an intent not understood."""


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _finite(v: float | None) -> float | None:
    if v is not None and not math.isfinite(v):
        raise ValueError(f"expected a finite number, got {v!r}")
    return v


class Cull(_Step):
    """Cull settings for this plan (override ``[cull]``): ``burst_seconds`` (> 0, s), ``dedupe_hamming``
    (0–64 bits), ``min_sharpness`` (>= 0, Laplacian variance), ``max_clip`` (0–1 fraction)."""

    action: Literal["cull"] = "cull"
    burst_seconds: float | None = Field(None, gt=0, le=3600)
    dedupe_hamming: int | None = Field(None, ge=0, le=64)
    min_sharpness: float | None = Field(None, ge=0)
    max_clip: float | None = Field(None, ge=0, le=1)

    _f = field_validator("burst_seconds", "min_sharpness", "max_clip")(_finite)


class Select(_Step):
    """Keep (``mode="keep"``) or drop (``mode="drop"``) the files matching every criterion given (None = any).

    Attributes:
        time_from, time_to: capture time (camera wall clock, naive ISO-8601), inclusive from, exclusive to.
        hour_from, hour_to: hours of the day (0–24), ``hour_from <= hour < hour_to``.
        weekdays: 0 = Monday ... 6 = Sunday.
        camera, lens: case-insensitive substrings of ``camera_make camera_model`` / ``lens_model``.
        min_sharpness, max_sharpness: Laplacian variance of the 512-px preview (>= 0), ``min <= v < max``.
        max_clip: clipped fraction (shadows + highlights, 0–1). max_noise: noise sigma (8-bit levels, >= 0).
        eyes_closed: the face check saw closed eyes (True) or did not (False).
        bucket: cull buckets. burst_role: :data:`BURST_ROLES`. duplicate_role: :data:`DUPLICATE_ROLES`.
        min_ordinal, max_ordinal: the rating ordinal ``mu - 3 sigma``. min_comparisons, max_comparisons: rated
            comparisons (>= 0).
        labels: has any of these labels. folder: a glob (``fnmatch``) on the path relative to its image folder,
            ``/``-separated; relative, no ``..``.
    """

    action: Literal["select"] = "select"
    mode: Literal["keep", "drop"] = "keep"
    time_from: datetime | None = None
    time_to: datetime | None = None
    hour_from: int | None = Field(None, ge=0, le=24)
    hour_to: int | None = Field(None, ge=0, le=24)
    weekdays: list[Annotated[int, Field(ge=0, le=6)]] | None = Field(None, min_length=1, max_length=7)
    camera: str | None = Field(None, min_length=1, max_length=120)
    lens: str | None = Field(None, min_length=1, max_length=120)
    min_sharpness: float | None = Field(None, ge=0)
    max_sharpness: float | None = Field(None, ge=0)
    max_clip: float | None = Field(None, ge=0, le=1)
    max_noise: float | None = Field(None, ge=0)
    eyes_closed: bool | None = None
    bucket: list[Bucket] | None = Field(None, min_length=1)
    burst_role: list[Literal["single", "pick", "other"]] | None = Field(None, min_length=1)
    duplicate_role: list[Literal["unique", "pick", "duplicate"]] | None = Field(None, min_length=1)
    min_ordinal: float | None = None
    max_ordinal: float | None = None
    min_comparisons: int | None = Field(None, ge=0)
    max_comparisons: int | None = Field(None, ge=0)
    labels: list[LabelName] | None = Field(None, min_length=1)
    folder: str | None = Field(None, min_length=1, max_length=300)

    _f = field_validator("min_sharpness", "max_sharpness", "max_clip", "max_noise", "min_ordinal",
                         "max_ordinal")(_finite)

    @field_validator("folder")
    @classmethod
    def _relative_glob(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = v.replace("\\", "/").split("/")
        if v.startswith(("/", "~", "\\")) or re.match(r"^[A-Za-z]:", v) or ".." in parts or "\x00" in v:
            raise ValueError(f"folder: expected a glob relative to an image folder, without '..', got {v!r}")
        return v.replace("\\", "/")

    @model_validator(mode="after")
    def _criteria(self) -> Select:
        given = [k for k in type(self).model_fields if k not in ("action", "mode") and getattr(self, k) is not None]
        if not given:
            raise ValueError("select: expected at least one criterion, got none")
        if self.time_from and self.time_to and self.time_from >= self.time_to:
            raise ValueError(f"select: time_from {self.time_from} is not before time_to {self.time_to}")
        if (self.time_from and self.time_from.tzinfo is not None) or (self.time_to and self.time_to.tzinfo is not None):
            raise ValueError("select: capture times are camera wall-clock times, expected no UTC offset")
        return self


class Sort(_Step):
    """Order the selection by ``by`` (:data:`SORT_KEYS`), best first unless ``descending`` is False; missing values
    last."""

    action: Literal["sort"] = "sort"
    by: Literal["score", "sharpness", "ordinal", "capture_time", "noise", "clipping", "path"]
    descending: bool = True


class Limit(_Step):
    """Keep the first ``n`` (1–1,000,000) of the selection in its current order, overall or ``per`` group."""

    action: Literal["limit"] = "limit"
    n: int = Field(ge=1, le=1_000_000)
    per: Literal["burst", "cluster", "folder", "day", "camera"] | None = None


class Label(_Step):
    """Attach ``label`` to every selected image (catalog ``labels``, source ``plan``)."""

    action: Literal["label"] = "label"
    label: LabelName


class Vote(_Step):
    """Start a voting session restricted to the selection (``strategy``: a registered pairing strategy name)."""

    action: Literal["vote"] = "vote"
    strategy: Literal["random", "spec", "active"] | None = None


class Export(_Step):
    """Place the selection under ``destination`` (a folder inside the export roots; relative = under the
    workspace's ``exports/``) by ``mode``; ``xmp`` writes an XMP sidecar beside each exported file."""

    action: Literal["export"] = "export"
    destination: str = Field(min_length=1, max_length=1000)
    mode: Literal["copy", "symlink", "hardlink"] = "hardlink"
    xmp: bool = False

    @field_validator("destination")
    @classmethod
    def _no_nul(cls, v: str) -> str:
        if "\x00" in v or any(ord(c) < 32 for c in v):
            raise ValueError("destination: expected a folder path without control characters")
        return v


Step = Annotated[Cull | Select | Sort | Limit | Label | Vote | Export, Field(discriminator="action")]


class Plan(BaseModel):
    """A plan: ``version`` (:data:`PLAN_VERSION`), the ``intent`` it came from (text, for people only: never
    executed) and 1–50 ``steps`` run in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: Literal[1] = 1
    intent: str = Field("", max_length=4000)
    steps: list[Step] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _cull_first(self) -> Plan:
        culls = [i for i, s in enumerate(self.steps) if isinstance(s, Cull)]
        if culls and culls != [0]:
            raise ValueError("steps: the cull settings step may appear once, as the first step")
        return self

    def describe(self) -> list[str]:
        """One line per step in plain words (deterministic), e.g. ``keep: camera ~ 'x100', hours 12–18``."""
        return [describe_step(s) for s in self.steps]


def describe_step(s: Any) -> str:
    """One plan step in plain words (deterministic; the same step gives the same line)."""
    fields = {k: v for k, v in s.model_dump(exclude_none=True).items() if k not in ("action", "mode")}
    if isinstance(s, Select):
        return f"{s.mode}: " + ", ".join(f"{k}={_short(v)}" for k, v in fields.items())
    if isinstance(s, Sort):
        return f"sort by {s.by} ({'highest' if s.descending else 'lowest'} first)"
    if isinstance(s, Limit):
        return f"limit to {s.n}" + (f" per {s.per}" if s.per else "")
    if isinstance(s, Label):
        return f"label {s.label}"
    if isinstance(s, Vote):
        return "start a voting session on the selection" + (f" ({s.strategy})" if s.strategy else "")
    if isinstance(s, Export):
        return f"export ({s.mode}) to {s.destination}" + (" with XMP sidecars" if s.xmp else "")
    return "cull settings: " + ", ".join(f"{k}={_short(v)}" for k, v in fields.items())


def _short(v: Any) -> str:
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, list):
        return "|".join(map(str, v))
    return repr(v) if isinstance(v, str) else str(v)


def parse_plan(data: str | bytes | dict[str, Any]) -> Plan:
    """Validate ``data`` (a JSON text or a dict) as a :class:`Plan`.

    Raises:
        PlanError: not JSON, or not the schema; the message lists each problem (location: what was wrong).
    """
    try:
        if isinstance(data, str | bytes):
            return Plan.model_validate_json(data)
        if not isinstance(data, dict):
            raise PlanError(f"plan: expected a JSON object, got {type(data).__name__}")
        return Plan.model_validate(data)
    except ValidationError as e:
        raise PlanError("plan: not a valid plan: " + format_errors(e)) from None


def format_errors(e: ValidationError, limit: int = 8) -> str:
    """A pydantic validation error as one line: ``loc: message; ...`` (at most ``limit`` problems)."""
    out = []
    for err in e.errors()[:limit]:
        loc = ".".join(str(x) for x in err.get("loc", ())) or "plan"
        out.append(f"{loc}: {err.get('msg', 'invalid')}")
    more = len(e.errors()) - limit
    return "; ".join(out) + (f"; and {more} more" if more > 0 else "")


def plan_json_schema() -> dict[str, Any]:
    """The plan's JSON Schema (draft 2020-12, as pydantic writes it), for structured output of an LLM."""
    return Plan.model_json_schema()
