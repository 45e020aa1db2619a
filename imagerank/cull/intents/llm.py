"""The optional LLM intent parser: any OpenAI-compatible chat endpoint (llama.cpp server, Ollama, vLLM, a hosted
one) translates an intent into a plan; it never runs anything.

One ``POST {llm_url}/chat/completions`` with the plan's JSON Schema as structured output (``response_format``
``json_schema``; servers that ignore it still get the schema in the system message), ``temperature`` 0. The
reply's ``choices[0].message.content`` is validated against :class:`~.schema.Plan`; on a validation error the
problems are sent back once (one repair round) and the second reply is validated the same way. The plan's
``intent`` is always the user's text, never the model's. Only the intent goes to the model: no file name, EXIF
field or catalog content, so nothing inside the collection can steer what the plan does.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ...errors import ImagerankError, InvalidArgumentError
from .rules import ParseResult
from .schema import ACTIONS, Plan, PlanError, parse_plan, plan_json_schema

__all__ = ["SYSTEM_PROMPT", "LLMError", "LLMParser"]

SYSTEM_PROMPT = (
    "You translate a photographer's request about their photo collection into a plan: one JSON object that "
    "validates against the JSON Schema below, and nothing else (no prose, no code fences). Only these actions "
    f"exist: {', '.join(ACTIONS)}. Steps run in order; a cull step may only come first. Select criteria that the "
    "request does not mention stay out. You cannot delete files, run commands or touch paths other than an export "
    "destination. Capture times are camera wall-clock ISO-8601 without an offset; weekdays are 0 = Monday.\n\n"
    "JSON Schema:\n"
)


class LLMError(ImagerankError):
    """The chat endpoint could not be reached, timed out, or answered something that is not a chat completion."""


class LLMParser:
    """Intent → plan through an OpenAI-compatible chat endpoint.

    Args:
        url: the API base (``http://127.0.0.1:8080/v1``); ``/chat/completions`` is appended.
        model: the model name. api_key: a bearer key (empty: none sent). timeout_s: seconds per request (> 0).
        transport: an ``httpx`` transport (tests), default the network.

    Raises:
        InvalidArgumentError: an empty or non-http(s) URL, an empty model, a timeout <= 0.
    """

    name = "llm"

    def __init__(self, url: str, model: str, api_key: str = "", *, timeout_s: float = 60.0,
                 transport: Any = None) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidArgumentError(f"llm_url: expected an http(s) URL, got {url!r}")
        if not model:
            raise InvalidArgumentError(f"llm_model: expected a model name, got {model!r}")
        if not timeout_s > 0:
            raise InvalidArgumentError(f"llm_timeout_s: expected seconds > 0, got {timeout_s!r}")
        self.url = url.rstrip("/") + "/chat/completions"
        self.model, self.api_key, self.timeout_s, self.transport = model, api_key, float(timeout_s), transport

    def _chat(self, messages: list[dict[str, str]], schema: dict[str, Any] | None) -> str:
        import httpx

        body: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": 0}
        if schema is not None:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "plan", "schema": schema, "strict": False}}
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            with httpx.Client(timeout=self.timeout_s, transport=self.transport) as client:
                r = client.post(self.url, json=body, headers=headers)
        except httpx.TimeoutException:
            raise LLMError(f"llm: no reply from {self.url} within {self.timeout_s:g} s (llm_timeout_s)") from None
        except httpx.HTTPError as e:
            raise LLMError(f"llm: cannot reach {self.url}: {e}") from None
        if r.status_code != 200:
            raise LLMError(f"llm: expected HTTP 200 from {self.url}, got {r.status_code}: {r.text[:200]!r}")
        try:
            content = r.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise LLMError(f"llm: expected a chat completion (choices[0].message.content), got "
                           f"{r.text[:200]!r}") from None
        if not isinstance(content, str):
            raise LLMError(f"llm: expected text content, got {type(content).__name__}")
        return content

    def parse(self, text: str) -> ParseResult:
        """Translate ``text`` into a validated plan (one repair round on a validation error).

        Returns:
            a :class:`~.rules.ParseResult` (``parser="llm"``): the plan, or ``plan`` None with the validation
            problems of the repaired reply in ``not_understood``.

        Raises:
            InvalidArgumentError: ``text`` is empty or over 4,000 characters.
            LLMError: the endpoint failed, timed out, or did not answer a chat completion.
        """
        if not isinstance(text, str) or not text.strip() or len(text) > 4000:
            raise PlanError(f"intent: expected a non-empty text of at most 4000 characters, got {str(text)[:60]!r}")
        schema = plan_json_schema()
        messages = [{"role": "system", "content": SYSTEM_PROMPT + json.dumps(schema, separators=(",", ":"))},
                    {"role": "user", "content": text}]
        problems = ""
        for round_ in range(2):
            reply = self._chat(messages, schema)
            try:
                plan = _validated(reply, text)
                return ParseResult(plan, [], [f"llm reply (round {round_ + 1})"], self.name)
            except PlanError as e:
                problems = str(e)
                messages += [{"role": "assistant", "content": reply[:8000]},
                             {"role": "user", "content": f"That reply is not a valid plan: {problems}. Reply with "
                                                         "only the corrected JSON plan."}]
        return ParseResult(None, [problems], [], self.name)

    def polish(self, sentence: str) -> str:
        """Rephrase an explanation ``sentence`` for people (the facts are never sent or changed; see
        :func:`~.explain.polish_sentence`, which checks the reply keeps every number).

        Raises:
            LLMError: as :meth:`parse`.
        """
        return self._chat([{"role": "system", "content": "Rephrase the user's sentence about one photo in plain, "
                                                         "friendly words. Keep every number and file name exactly. "
                                                         "Reply with the sentence only."},
                           {"role": "user", "content": sentence}], None).strip()


def _validated(reply: str, text: str) -> Plan:
    body = reply.strip()
    fence = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", body, flags=re.S)
    if fence:
        body = fence.group(1)
    try:
        data = json.loads(body)
    except ValueError as e:
        raise PlanError(f"plan: expected JSON, got {body[:80]!r} ({e})") from None
    if isinstance(data, dict):
        data = {**data, "intent": text}
    return parse_plan(data)
