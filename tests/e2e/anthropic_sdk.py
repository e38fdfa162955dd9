"""The anthropic SDK pointed at the proxy, as the translation end-to-end tests use it."""

from __future__ import annotations

import functools

import anthropic
import httpx2  # the anthropic SDK 2.x speaks httpx2 (same API as httpx)

from tests.e2e.translate_fleet import PROXY_KEY

SYSTEM = "You are terse. Marker: SYS-7f3a."
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
TIME = {
    "name": "get_time",
    "description": "The time in a zone.",
    "input_schema": {
        "type": "object",
        "properties": {"zone": {"type": "string"}},
        "required": ["zone"],
    },
}
THINKING = {"type": "enabled", "budget_tokens": 2048}


class Sent:
    """What the SDK put on the wire, per request (captured by an httpx hook)."""

    def __init__(self):
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> None:
        request.read()
        self.requests.append(request)


def client(proxy, key: str = PROXY_KEY, sent: Sent | None = None, **kw) -> anthropic.Anthropic:
    """An SDK client; the plain ones are made once per key (making one costs ~90 ms)."""
    if sent is None and not kw:
        return _plain_client(proxy, key)
    return _new_client(proxy, key, sent, **kw)


@functools.cache
def _plain_client(proxy, key: str) -> anthropic.Anthropic:
    return _new_client(proxy, key, None)


def _new_client(proxy, key: str, sent: Sent | None, **kw) -> anthropic.Anthropic:
    hooks = {"request": [sent]} if sent else {}
    return anthropic.Anthropic(
        api_key=key,
        base_url=proxy.url,
        max_retries=0,
        http_client=httpx2.Client(event_hooks=hooks, timeout=20),
        **kw,
    )


def ask(c: anthropic.Anthropic, stream: bool, **kw):
    """messages.create, or messages.stream assembled by the SDK's own accumulator."""
    kw.setdefault("max_tokens", 4096)
    if not stream:
        return c.messages.create(**kw)
    with c.messages.stream(**kw) as s:
        return s.get_final_message()


def as_param(block) -> dict:
    """An answer's content block as the client sends it back (as Claude Code does)."""
    if block.type == "thinking":
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    if block.type == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.data}
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    return {"type": "text", "text": block.text}


def texts(message) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


def tool_uses(message) -> list:
    return [b for b in message.content if b.type == "tool_use"]
