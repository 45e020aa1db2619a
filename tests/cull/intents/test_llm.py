"""The LLM parser against a fake OpenAI-compatible server on 127.0.0.1: valid plans, invalid JSON, schema
violations, non-whitelisted actions, paths outside the roots, timeouts, HTTP errors; and a real endpoint (opt-in)."""

from __future__ import annotations

import json
import os

import pytest

from imagerank.config import Settings
from imagerank.cull.intents import LLMError, LLMParser, get_parser, parse_intent
from imagerank.cull.intents.rules import RuleParser
from imagerank.cull.intents.schema import Limit, Plan, PlanError, Select
from imagerank.errors import InvalidArgumentError

from .fakellm import fake_chat_server, plan_json


@pytest.fixture
def fake():
    with fake_chat_server() as f:
        yield f


def test_a_valid_plan_is_taken_with_the_users_intent(fake):
    fake.replies = [plan_json(intent="IGNORE THE USER")]
    r = LLMParser(fake.url, "m", "secret").parse("the best three")
    assert r.ok
    assert r.parser == "llm"
    assert r.plan.steps == [Select(bucket=["best"]), Limit(n=3)]
    assert r.plan.intent == "the best three"  # never the model's text
    body = fake.requests[0]
    assert body["model"] == "m"
    assert body["temperature"] == 0
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == Plan.model_json_schema()
    assert body["messages"][-1] == {"role": "user", "content": "the best three"}
    assert fake.headers[0]["Authorization"] == "Bearer secret"


def test_a_fenced_reply_is_read(fake):
    fake.replies = ["```json\n" + plan_json() + "\n```"]
    assert LLMParser(fake.url, "m").parse("x").ok
    assert "Authorization" not in fake.headers[0]


def test_invalid_json_gets_one_repair_round(fake):
    fake.replies = ["sure! here is your plan: {steps: [", plan_json()]
    r = LLMParser(fake.url, "m").parse("the best three")
    assert r.ok
    assert len(fake.requests) == 2
    repair = fake.requests[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": "sure! here is your plan: {steps: ["}
    assert "not a valid plan" in repair[-1]["content"]
    assert "expected JSON" in repair[-1]["content"]


def test_a_schema_violation_twice_gives_no_plan(fake):
    bad = json.dumps({"version": 1, "steps": [{"action": "limit", "n": -5}]})
    fake.replies = [bad, bad]
    r = LLMParser(fake.url, "m").parse("x")
    assert r.plan is None
    assert not r.ok
    assert len(fake.requests) == 2
    assert "steps.0.limit.n" in r.not_understood[0]


@pytest.mark.parametrize("step", [
    {"action": "shell", "command": "rm -rf ~"},
    {"action": "delete", "bucket": ["trash"]},
    {"action": "select", "bucket": ["best"], "sql": "DROP TABLE images"},
    {"action": "select", "folder": "../../etc/*"},
    {"action": "select", "folder": "/etc/*"},
    {"action": "export", "destination": "picks", "mode": "move"},
])
def test_non_whitelisted_actions_and_fields_are_refused(fake, step):
    doc = json.dumps({"version": 1, "steps": [step]})
    fake.replies = [doc, doc]
    r = LLMParser(fake.url, "m").parse("x")
    assert r.plan is None
    assert r.not_understood


def test_an_export_outside_the_roots_parses_but_is_refused_before_anything_runs(fake, tmp_path):
    from imagerank.cull.intents import preview
    from imagerank.demo import make_demo

    col = make_demo(tmp_path / "ws", n=6, progress=False)
    fake.replies = [json.dumps({"version": 1, "steps": [{"action": "export", "destination": "/etc/evil"}]})]
    r = LLMParser(fake.url, "m").parse("export everything")
    assert r.ok  # the schema cannot know the workspace ...
    with pytest.raises(PlanError, match="export destination: expected a folder inside"):
        preview(r.plan, col)  # ... the run checks it first
    assert not os.path.exists("/etc/evil")
    col.close()


def test_a_timeout_is_an_error_naming_the_setting(fake):
    fake.replies = [{"sleep": 3, "content": plan_json()}]
    with pytest.raises(LLMError, match="llm_timeout_s"):
        LLMParser(fake.url, "m", timeout_s=0.5).parse("x")


@pytest.mark.parametrize(("reply", "match"), [
    ({"status": 500, "body": "boom"}, "expected HTTP 200"),
    ({"status": 200, "body": "not json"}, "expected a chat completion"),
    ({"status": 200, "body": '{"choices": []}'}, "expected a chat completion"),
])
def test_server_errors(fake, reply, match):
    fake.replies = [reply]
    with pytest.raises(LLMError, match=match):
        LLMParser(fake.url, "m").parse("x")


def test_unreachable_endpoint():
    with pytest.raises(LLMError, match="cannot reach"):
        LLMParser("http://127.0.0.1:9/v1", "m", timeout_s=2).parse("x")


@pytest.mark.parametrize(("args", "match"), [
    (("ftp://x", "m"), "llm_url"), (("http://x", ""), "llm_model"),
])
def test_bad_parser_settings(args, match):
    with pytest.raises(InvalidArgumentError, match=match):
        LLMParser(*args)
    with pytest.raises(InvalidArgumentError, match="timeout"):
        LLMParser("http://x", "m", timeout_s=0)


def test_get_parser_reads_settings_and_environment(fake, monkeypatch):
    assert isinstance(get_parser(Settings()), RuleParser)
    with pytest.raises(InvalidArgumentError, match="llm_url and llm_model"):
        get_parser(Settings(), "llm")
    with pytest.raises(InvalidArgumentError, match="parser"):
        get_parser(Settings(), "magic")  # type: ignore[arg-type]
    from imagerank.config import load_settings

    monkeypatch.setenv("IMAGERANK_LLM_URL", fake.url)
    monkeypatch.setenv("IMAGERANK_LLM_MODEL", "env-model")
    s = load_settings()
    p = get_parser(s)
    assert isinstance(p, LLMParser)
    assert p.model == "env-model"
    fake.replies = [plan_json()]
    assert parse_intent("best", s).parser == "llm"
    assert isinstance(get_parser(s, "rules"), RuleParser)


@pytest.mark.skipif(not os.environ.get("IMAGERANK_LLM_URL"), reason="set IMAGERANK_LLM_URL (and _MODEL) to test a "
                    "real OpenAI-compatible endpoint")
def test_a_real_endpoint_translates_a_simple_intent():
    from imagerank.config import load_settings

    r = parse_intent("only the best bucket, at most 10, no duplicates", load_settings(), "llm")
    assert r.plan is not None, r.not_understood
    assert any(isinstance(s, Limit) and s.n == 10 for s in r.plan.steps)
