"""Anthropic Messages wire format (api.anthropic.com; Claude Code and the anthropic SDK).

Paths: POST /v1/messages (streamed when the body says "stream": true) and
/v1/messages/count_tokens; a query string is allowed (Claude Code sends `?beta=true`). The
model lives in the body. Errors: {"type": "error", "error": {"type", "message"}}. Usage:
`usage` in the answer, `message_start` and `message_delta` in a stream.
"""

from __future__ import annotations

from typing import Any

from mitmproxy import http

from ..translate import anthropic as anthropic_codec
from ..translate.neutral import Usage, int_or_none
from .base import (
    ModelInBody,
    Operation,
    Turn,
    block_boundary,
    block_turn,
    json_response,
    listed_turns,
)

ANTHROPIC_HOST = "api.anthropic.com"
API_VERSION = "2023-06-01"  # the Messages API version a translated request asks for


def anthropic_usage(data: Any) -> Usage | None:
    """Anthropic counts input without cache reads and writes; the neutral form with them."""
    if not isinstance(data, dict):
        return None
    read = int_or_none(data.get("cache_read_input_tokens"))
    written = int_or_none(data.get("cache_creation_input_tokens"))
    given = int_or_none(data.get("input_tokens"))
    return Usage(
        input_tokens=None if given is None else given + (read or 0) + (written or 0),
        output_tokens=int_or_none(data.get("output_tokens")),
        cached_input_tokens=read,
        cache_write_tokens=written,
    )


class Anthropic(ModelInBody):
    name = "anthropic"
    hosts = (ANTHROPIC_HOST,)
    default_auth = "x-api-key"

    def recognise(self, method: str, path: str, key_source: str | None) -> Operation | None:
        if method != "POST":
            return None
        if path in ("/v1/messages", "/v1/messages/"):
            return Operation(dialect=self, name="messages", needs_body=True, conversation=True)
        if path.rstrip("/") == "/v1/messages/count_tokens":
            return Operation(
                dialect=self,
                name="messages.count_tokens",
                needs_body=True,
                counts_tokens=True,
            )
        return None

    def claims_path(self, path: str) -> bool:
        return path.startswith("/v1/messages")

    def error(self, status: int, message: str, code: str | None = None) -> http.Response:
        kind = anthropic_codec.error_type(status, code)
        return json_response(status, {"type": "error", "error": {"type": kind, "message": message}})

    def usage(self, event_type: str | None, payload: Any) -> Usage | None:
        if not isinstance(payload, dict):
            return None
        if payload.get("type") == "message_start" and isinstance(payload.get("message"), dict):
            payload = payload["message"]
        return anthropic_usage(payload.get("usage"))

    def finished(self, event_type: str | None, payload: Any) -> bool:
        return isinstance(payload, dict) and payload.get("type") == "message_stop"

    # ------------------------------------------------------------ conversation

    def turns(self, op: Operation, body: Any) -> list | None:
        messages = listed_turns(op, body)
        if messages is None:
            return None
        # Claude Code puts system turns inside messages: they are not conversation turns
        return [m for m in messages if not (isinstance(m, dict) and m.get("role") == "system")]

    def canonical(self, message: Any) -> Turn:
        return block_turn(message, _tool_id)

    def is_boundary(self, message: Any) -> bool:
        return block_boundary(message, lambda block: block.get("type") == "tool_use")

    def inject(self, op: Operation, body: Any, remaining: list, context: str) -> None:
        system_turns = [
            m for m in body["messages"] if isinstance(m, dict) and m.get("role") == "system"
        ]
        body["messages"] = [*system_turns, *remaining]
        existing = body.get("system")
        if isinstance(existing, list):
            body["system"] = [{"type": "text", "text": context}, *existing]
        elif isinstance(existing, str) and existing:
            body["system"] = f"{context}\n\n{existing}"
        else:
            body["system"] = context

    def reply(self, op: Operation, payload: Any) -> dict | None:
        if isinstance(payload, dict) and isinstance(payload.get("content"), list):
            return {"role": "assistant", "content": payload["content"]}
        return None

    # ------------------------------------------------------------ translation

    def codec(self, op: Operation | None = None, model: str | None = None):
        return anthropic_codec.CODEC

    def translated_path(self, model: str, streaming: bool) -> str:
        return "/v1/messages"

    def count_request(self, request: Any, model: str):
        codec = self.codec()
        body = codec.write_request(request)
        kept = ("model", "messages", "system", "tools", "tool_choice", "thinking")
        return codec, "/v1/messages/count_tokens", {k: body[k] for k in kept if k in body}

    def count_answer_tokens(self, payload: Any) -> int | None:
        return int_or_none(payload.get("input_tokens")) if isinstance(payload, dict) else None

    def count_answer(self, tokens: int) -> dict[str, Any]:
        return {"input_tokens": tokens}

    def translated_headers(self) -> dict[str, str]:
        return {"anthropic-version": API_VERSION}  # required by every Messages call


def _tool_id(block: dict) -> str | None:
    if block.get("type") in ("tool_use", "tool_result"):
        return block.get("id") or block.get("tool_use_id") or ""
    return None


ANTHROPIC = Anthropic()
