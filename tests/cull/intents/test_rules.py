"""The rule parser on a table of documented phrasings (each with its expected plan), and what it refuses."""

from __future__ import annotations

from datetime import datetime

import pytest

from imagerank.config import CullSettings
from imagerank.cull.intents import parse_rules
from imagerank.cull.intents.schema import Cull, Export, Label, Limit, Select, Sort, Vote
from imagerank.errors import InvalidArgumentError


def keep(**kw):
    return Select(mode="keep", **kw)


def drop(**kw):
    return Select(mode="drop", **kw)


SAT = datetime(2024, 6, 1)
TABLE = [
    # the example
    ("keep the sharpest frame of each burst from Saturday afternoon, drop anything with closed eyes, at most 200, "
     "hardlink them to ~/picks",
     [keep(hour_from=12, hour_to=18, weekdays=[5]), drop(eyes_closed=True), Sort(by="sharpness"),
      Limit(n=1, per="burst"), Limit(n=200), Export(destination="~/picks", mode="hardlink")]),
    # time
    ("photos from saturday", [keep(weekdays=[5])]),
    ("on sundays", [keep(weekdays=[6])]),
    ("weekend shots", [keep(weekdays=[5, 6])]),
    ("weekdays only", [keep(weekdays=[0, 1, 2, 3, 4])]),
    ("in the morning", [keep(hour_from=6, hour_to=12)]),
    ("evening frames", [keep(hour_from=18, hour_to=24)]),
    ("between 2pm and 5pm", [keep(hour_from=14, hour_to=17)]),
    ("between 14:00 and 16:00", [keep(hour_from=14, hour_to=16)]),
    ("after 3pm", [keep(hour_from=15, hour_to=24)]),
    ("before 10am", [keep(hour_from=0, hour_to=10)]),
    ("on 2024-06-01", [keep(time_from=SAT, time_to=datetime(2024, 6, 2))]),
    ("from 2024-06-01 to 2024-06-03", [keep(time_from=SAT, time_to=datetime(2024, 6, 4))]),
    ("between 2024-06-01 and 2024-06-02 after 14h", [keep(time_from=SAT, time_to=datetime(2024, 6, 3), hour_from=14,
                                                       hour_to=24)]),
    ("since 2024-06-01", [keep(time_from=SAT)]),
    ("before 2024-06-01", [keep(time_to=SAT)]),
    ("until 2024-06-01", [keep(time_to=datetime(2024, 6, 2))]),
    # camera and lens
    ("shot with the x100v", [keep(camera="x100v")]),
    ("camera nikon", [keep(camera="nikon")]),
    ("from the z8 camera", [keep(camera="z8")]),
    ("with the 85mm lens", [keep(lens="85mm")]),
    ("lens 24-70", [keep(lens="24-70")]),
    # quality
    ("only sharp ones", [keep(min_sharpness=15.0)]),
    ("drop blurry shots", [drop(max_sharpness=15.0)]),
    ("sharpness over 200", [keep(min_sharpness=200.0)]),
    ("sharpness under 50", [keep(max_sharpness=50.0)]),
    ("no clipped frames", [keep(max_clip=0.5)]),
    ("clipping under 5%", [keep(max_clip=0.05)]),
    ("noise under 4", [keep(max_noise=4.0)]),
    ("without closed eyes", [drop(eyes_closed=True)]),
    ("eyes open", [drop(eyes_closed=True)]),
    # buckets, bursts, duplicates
    ("the best bucket", [keep(bucket=["best"])]),
    ("keepers", [keep(bucket=["best", "good"])]),
    ("ignore the trash", [drop(bucket=["trash"])]),
    ("maybe", [keep(bucket=["maybe"])]),
    ("best of each burst", [Sort(by="score"), Limit(n=1, per="burst")]),
    ("top 2 of each cluster", [Sort(by="score"), Limit(n=2, per="cluster")]),
    ("burst picks", [keep(burst_role=["pick"])]),
    ("single frames", [keep(burst_role=["single"])]),
    ("drop burst rejects", [drop(burst_role=["other"])]),
    ("no duplicates", [drop(duplicate_role=["duplicate"])]),
    ("exclude near-duplicates", [drop(duplicate_role=["duplicate"])]),
    ("unique shots", [keep(duplicate_role=["unique"])]),
    # rating and labels
    ("rating above 20", [keep(min_ordinal=20.0)]),
    ("ordinal below -1.5", [keep(max_ordinal=-1.5)]),
    ("unrated images", [keep(max_comparisons=0)]),
    ("voted on", [keep(min_comparisons=1)]),
    ("at least 3 comparisons", [keep(min_comparisons=3)]),
    ("flagged", [keep(labels=["flag"])]),
    ("not flagged", [drop(labels=["flag"])]),
    ("labelled good", [keep(labels=["good"])]),
    # folders
    ("in folder day1", [keep(folder="day1/*")]),
    ("from folder 'day 2/*.jpg'", [keep(folder="day 2/*.jpg")]),
    ("in trip/iceland/", [keep(folder="trip/iceland/*")]),
    # sort and limit
    ("top 50", [Sort(by="score"), Limit(n=50)]),
    ("top 10 by rating", [Sort(by="ordinal"), Limit(n=10)]),
    ("best 5 by sharpness", [Sort(by="sharpness"), Limit(n=5)]),
    ("at most 20", [Limit(n=20)]),
    ("no more than 7", [Limit(n=7)]),
    ("sort by time", [Sort(by="capture_time", descending=False)]),
    ("newest first", [Sort(by="capture_time", descending=True)]),
    ("chronologically", [Sort(by="capture_time", descending=False)]),
    # actions
    ("flagged, label them good", [keep(labels=["flag"]), Label(label="good")]),
    ("mark as bad the blurry ones", [keep(max_sharpness=15.0), Label(label="bad")]),
    ("flag them", [Label(label="flag")]),
    ("keepers, start a voting session", [keep(bucket=["best", "good"]), Vote()]),
    ("compare them", [Vote()]),
    ("copy to picks", [Export(destination="picks", mode="copy")]),
    ("symlink them to /mnt/out", [Export(destination="/mnt/out", mode="symlink")]),
    ("export to 'my picks' with xmp", [Export(destination="my picks", mode="hardlink", xmp=True)]),
    # cull settings
    ("burst gap 1.5 s, burst picks", [Cull(burst_seconds=1.5), keep(burst_role=["pick"])]),
    ("hamming 8, no duplicates", [Cull(dedupe_hamming=8), drop(duplicate_role=["duplicate"])]),
    ("blur threshold 30, max clip 20%, keepers",
     [Cull(min_sharpness=30.0, max_clip=0.2), keep(bucket=["best", "good"])]),
]


@pytest.mark.parametrize(("text", "expected"), TABLE, ids=[t for t, _ in TABLE])
def test_phrasing_gives_its_plan(text, expected):
    r = parse_rules(text)
    assert r.not_understood == []
    assert r.ok
    assert r.plan is not None
    assert r.plan.steps == expected
    assert r.plan.intent == text
    assert parse_rules(text).plan == r.plan  # deterministic


def test_the_table_is_large_enough():
    assert len(TABLE) >= 40


@pytest.mark.parametrize(("text", "left"), [
    ("delete the blurry ones", ["delete"]),
    ("rm -rf / and copy to picks", ["rm", "-rf", "/"]),
    ("run bash -c 'curl evil'", ["run", "bash", "-c", "'curl", "evil'"]),
    ("make them prettier", ["make", "prettier"]),
    ("sharp photos from wednesday with a purple sky", ["purple", "sky"]),
])
def test_what_it_does_not_understand_is_said_and_nothing_runs(text, left):
    r = parse_rules(text)
    assert not r.ok
    assert r.not_understood == left


def test_nothing_at_all_gives_no_plan():
    r = parse_rules("please")
    assert r.plan is None
    assert not r.ok
    assert r.not_understood == []


def test_thresholds_come_from_the_settings():
    cfg = CullSettings(cull_min_sharpness=40.0, cull_max_clip=0.1)
    assert parse_rules("sharp, not clipped", cfg).plan.steps == [keep(min_sharpness=40.0, max_clip=0.1)]


@pytest.mark.parametrize("text", ["between 30 and 40h", "from 2024-13-01 to 2024-06-01", "hamming 99"])
def test_values_out_of_range_are_reported(text):
    r = parse_rules(text)
    assert r.plan is None
    assert len(r.not_understood) == 1


@pytest.mark.parametrize("bad", [None, 3, "x" * 4001])
def test_bad_intent_text(bad):
    with pytest.raises(InvalidArgumentError, match="intent: expected"):
        parse_rules(bad)
