"""The plan schema: only whitelisted actions and fields, versioned, cull first, relative folder globs, clear errors."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from imagerank.cull.intents import PLAN_VERSION, Plan, PlanError, parse_plan, parse_rules, plan_json_schema
from imagerank.cull.intents.rules import EXAMPLES
from imagerank.cull.intents.schema import ACTIONS, Select, describe_step
from imagerank.errors import ImagerankError, InvalidArgumentError


def doc(*steps, **top):
    return {"version": 1, "steps": list(steps), **top}


def test_round_trip_and_schema():
    p = parse_plan(doc({"action": "select", "bucket": ["best"], "time_from": "2024-06-01T10:00:00"},
                       {"action": "sort", "by": "sharpness"}, {"action": "limit", "n": 5, "per": "burst"},
                       {"action": "label", "label": "flag"}, {"action": "vote"},
                       {"action": "export", "destination": "picks", "xmp": True}))
    assert parse_plan(p.model_dump_json()) == p
    assert p.version == PLAN_VERSION == 1
    schema = plan_json_schema()
    assert schema == Plan.model_json_schema()
    names = {v["properties"]["action"]["const"] for v in schema["$defs"].values() if "action" in v["properties"]}
    assert names == set(ACTIONS)
    assert p.describe() == ["keep: time_from=2024-06-01 10:00:00, bucket=best", "sort by sharpness (highest first)",
                            "limit to 5 per burst", "label flag", "start a voting session on the selection",
                            "export (hardlink) to picks with XMP sidecars"]


@pytest.mark.parametrize(("data", "match"), [
    ("{not json", "Invalid JSON"),
    ([1, 2], "expected a JSON object"),
    (doc(), "steps: List should have at least 1 item"),
    (doc({"action": "select", "bucket": ["best"]}, version=2), "version"),
    (doc({"action": "shell", "command": "ls"}), "does not match any of the expected tags"),
    (doc({"action": "delete"}), "does not match any of the expected tags"),
    (doc({"action": "select", "bucket": ["best"], "where": "1=1"}), "Extra inputs are not permitted"),
    (doc({"action": "select"}), "at least one criterion"),
    (doc({"action": "select", "bucket": ["gold"]}), "bucket"),
    (doc({"action": "select", "folder": "../x/*"}), "relative to an image folder"),
    (doc({"action": "select", "folder": "/abs/*"}), "relative to an image folder"),
    (doc({"action": "select", "folder": "~/x"}), "relative to an image folder"),
    (doc({"action": "select", "folder": "C:/x"}), "relative to an image folder"),
    (doc({"action": "select", "time_from": "2024-06-02T00:00:00", "time_to": "2024-06-01T00:00:00"}),
     "is not before"),
    (doc({"action": "select", "time_from": "2024-06-01T00:00:00+02:00"}), "no UTC offset"),
    (doc({"action": "select", "min_ordinal": float("nan")}), "finite|Invalid JSON"),
    (doc({"action": "select", "hour_from": 25}), "hour_from"),
    (doc({"action": "limit", "n": 0}), "greater than or equal to 1"),
    (doc({"action": "sort", "by": "random()"}), "by"),
    (doc({"action": "export", "destination": "x", "mode": "move"}), "mode"),
    (doc({"action": "export", "destination": "a\nb"}), "control characters"),
    (doc({"action": "select", "bucket": ["best"]}, {"action": "cull", "burst_seconds": 1}), "cull settings step"),
    (doc({"action": "cull", "dedupe_hamming": 65}), "dedupe_hamming"),
    (doc(*[{"action": "vote"}] * 51), "at most 50"),
])
def test_invalid_plans_are_refused_with_the_reason(data, match):  # as JSON text (what a model sends)
    with pytest.raises(PlanError, match=match) as e:
        parse_plan(json.dumps(data) if isinstance(data, dict) else data)
    assert isinstance(e.value, InvalidArgumentError)
    assert isinstance(e.value, ImagerankError)


def test_step_models_are_frozen_and_compare_by_value():
    a = Select(bucket=["best"])
    assert a == Select(bucket=["best"], mode="keep")
    with pytest.raises(Exception, match="frozen"):
        a.mode = "drop"  # type: ignore[misc]
    assert describe_step(Select(mode="drop", time_to=datetime(2024, 1, 1))) == "drop: time_to=2024-01-01 00:00:00"
    with pytest.raises(Exception, match="no UTC offset"):
        Select(time_from=datetime(2024, 1, 1, tzinfo=timezone.utc))


@pytest.mark.parametrize("text", [  # the README's examples parse completely
    "keep the sharpest frame of each burst from Saturday afternoon, drop anything with closed eyes, at most 200, "
    "hardlink them to picks",
    "keepers, no duplicates, top 50 by rating, start a voting session",
    "keepers, best of each burst, at most 20, copy to picks",
    "blown out", "mark as bad", "compare them", "best 2 of each burst", "from folder 'day 2/*.jpg'",
])
def test_readme_examples(text):
    r = parse_rules(text)
    assert r.ok, r.not_understood


@pytest.mark.parametrize("text", EXAMPLES)
def test_every_example_parses_completely(text):
    r = parse_rules(text)
    assert r.ok, r.not_understood
    assert len(r.understood) >= 3  # several phrasings in each


def test_a_dict_is_validated_too():
    with pytest.raises(PlanError, match="finite"):
        parse_plan(doc({"action": "select", "min_ordinal": float("nan")}))
