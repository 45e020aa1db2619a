"""A fake OpenAI-compatible chat server on 127.0.0.1 (aiohttp in a thread): answers queued replies, records requests."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web


class FakeChat:
    """``replies``: each a string (the message content), a dict ``{"status": int, "body": str}`` (raw HTTP), or
    ``{"sleep": seconds, "content": str}``. ``requests``: the JSON bodies received. ``url``: the API base."""

    def __init__(self) -> None:
        self.replies: list[Any] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(await request.json())
        self.headers.append(dict(request.headers))
        reply = self.replies.pop(0) if self.replies else "{}"
        if isinstance(reply, dict) and "status" in reply:
            return web.Response(status=reply["status"], text=reply["body"])
        if isinstance(reply, dict) and "sleep" in reply:
            await asyncio.sleep(reply["sleep"])
            reply = reply["content"]
        body = {"id": "x", "object": "chat.completion", "model": "fake",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": reply}}]}
        return web.json_response(body)


@contextmanager
def fake_chat_server() -> Iterator[FakeChat]:
    fake = FakeChat()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def start() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", fake.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        fake.url = f"http://127.0.0.1:{port}/v1"
        state["runner"] = runner
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    ready.wait(10)
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(state["runner"].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        t.join(10)


def plan_json(**over: Any) -> str:
    doc = {"version": 1, "intent": "x", "steps": [{"action": "select", "bucket": ["best"]},
                                                  {"action": "limit", "n": 3}]}
    doc.update(over)
    return json.dumps(doc)
