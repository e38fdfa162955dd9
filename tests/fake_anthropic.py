"""A fake Anthropic Messages API on loopback, strict enough to be the oracle of translations.

``FakeAnthropic(keys=None, key_headers=("x-api-key", "authorization"),
strict_alternation=True, check_signatures=True, gzip_json=False)``, a context manager:

- POST ``/v1/messages`` (JSON, or SSE when ``stream: true``) and ``/v1/messages/count_tokens``
  (``{"input_tokens": N}``, N = ``token_count`` of the text of system and messages); a query
  string such as ``?beta=true`` is fine. Anything else: 404 ``not_found_error``.
- Auth: the key in one of ``key_headers`` (``authorization`` means ``Bearer <key>``), else 401
  ``authentication_error``; if ``keys`` is a set, the key must be in it. ``anthropic-version``
  is required (400).
- Validation (fake_anthropic_check.py), 400 ``invalid_request_error`` in Anthropic's shape:
  unknown top-level field, missing model / max_tokens, empty messages, a role other than
  user/assistant/system (``system`` messages, text only, may sit among the turns, as Claude
  Code sends them), first turn not user, turns not alternating (``strict_alternation``; the
  real API now merges same-role turns, set it False to allow that), empty text blocks, bad
  images, tool_result not answering a tool_use of the previous message (or a tool_use left
  unanswered, or not first in its message), duplicate tool ids, bad tool names or schemas,
  thinking budget < 1024 or >= max_tokens, temperature/top_k/forced tool_choice with
  thinking, and (``check_signatures``) a thinking block whose signature this fake never issued
  for that text; with thinking enabled, the assistant turn being answered with tool results
  must start with its thinking block.
- Answers: ``scripted`` ``Reply`` / ``Fail`` (tests/fake_server.py), else a default: text
  ``"echo: <last user text>"``, or ``"results: <r1> | <r2>"`` after tool results, with a
  thinking block when the request enables thinking (empty text, signature kept, when
  ``display`` is ``omitted``). Tool calls get distinct ``toolu_`` ids; a scripted call to a
  tool the request does not declare is refused (400 starting "fake:"): the tool was lost.
- Streams: message_start, ping, content_block_start / deltas (text_delta; input_json_delta in
  several fragments; thinking_delta then signature_delta) / content_block_stop, message_delta
  (stop_reason, output usage), message_stop, one event per HTTP chunk. ``Fail(mid_stream=True)``
  sends an ``error`` event after the first delta.
- Records: ``requests``; ``tool_schemas`` (one dict per messages call: tool name -> the
  ``input_schema`` as JSON text, key order kept); ``issued_signatures`` (signature -> thinking
  text); ``tool_ids`` (every tool_use id issued).
"""

from __future__ import annotations

import json
from typing import Any

from tests.fake_anthropic_check import COUNT_FIELDS, Refused, check_body
from tests.fake_server import (
    Fail,
    FakeServer,
    Recorded,
    Reply,
    Usage,
    Wire,
    default_usage,
    joined,
    new_id,
    new_signature,
    pieces,
    token_count,
)

KINDS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def error_body(kind: str, message: str) -> dict:
    return {"type": "error", "error": {"type": kind, "message": message}}


def anthropic_usage(usage: Usage | dict) -> dict:
    if isinstance(usage, dict):
        return usage
    return {
        "input_tokens": usage.prompt - usage.cached,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": usage.cached,
        "output_tokens": usage.output + usage.thoughts,
    }


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content or [] if isinstance(b, dict))


def prompt_text(body: dict) -> str:
    """The text the fake tokenizer counts: system and the text of every message."""
    texts = [_text(body.get("system"))]
    for message in body.get("messages") or []:
        content = message.get("content")
        texts.append(content if isinstance(content, str) else "")
        texts += [b.get("text", "") for b in content or [] if isinstance(b, dict)]
    return "".join(t for t in texts if isinstance(t, str))


def thinking_wanted(body: dict) -> bool:
    return (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")


def default_reply(body: dict) -> Reply:
    """Echo the last user turn, or list the tool results it carries."""
    last = [m for m in body["messages"] if m.get("role") != "system"][-1]
    blocks = last.get("content")
    results = [
        _text(b.get("content"))
        for b in blocks or []
        if isinstance(b, dict) and b.get("type") == "tool_result"
    ]
    text = "results: " + " | ".join(results) if results else f"echo: {_text(blocks)[:200]}"
    thinking = "Let me think about this." if thinking_wanted(body) else None
    return Reply(text=text, thinking=thinking)


def undeclared_tool(reply: Reply, declared: list[str]) -> str | None:
    return next((name for name, _ in reply.tool_calls if name not in declared), None)


class Rendered:
    """A reply made concrete: content blocks with their stream deltas, ids and signature."""

    def __init__(self, reply: Reply, omit_thinking: bool = False):
        self.reply = reply
        self.blocks: list[tuple[dict, list[dict], dict]] = []  # start, deltas, final
        self.signature: str | None = None
        self.tool_ids: list[str] = []
        if reply.thinking is not None:
            self._thinking(reply.thinking, omit_thinking)
        if reply.text is not None:
            parts = pieces(reply.text)
            deltas = [{"type": "text_delta", "text": p} for p in parts]
            final = {"type": "text", "text": joined(reply.text)}
            self.blocks.append(({"type": "text", "text": ""}, deltas, final))
        for name, arguments in reply.tool_calls:
            self._tool_use(name, arguments)

    def _thinking(self, thinking: str | list[str], omit: bool) -> None:
        self.signature = new_signature()
        parts = [] if omit else pieces(thinking)
        deltas = [{"type": "thinking_delta", "thinking": p} for p in parts]
        deltas.append({"type": "signature_delta", "signature": self.signature})
        final = {"type": "thinking", "thinking": "".join(parts), "signature": self.signature}
        start = {"type": "thinking", "thinking": "", "signature": ""}
        self.blocks.append((start, deltas, final))

    def _tool_use(self, name: str, arguments: dict) -> None:
        tool_id = new_id("toolu_01")
        self.tool_ids.append(tool_id)
        text = json.dumps(arguments)
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces(text, 4)]
        start = {"type": "tool_use", "id": tool_id, "name": name, "input": {}}
        final = {"type": "tool_use", "id": tool_id, "name": name, "input": arguments}
        self.blocks.append((start, deltas, final))

    def message(self, model: str, usage: dict, stop_sequence: str | None = None) -> dict:
        return {
            "id": new_id("msg_01"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [final for _, _, final in self.blocks],
            "stop_reason": self.reply.stop_reason,
            "stop_sequence": stop_sequence,
            "usage": usage,
        }

    def events(
        self, model: str, usage: dict, stop_sequence: str | None = None, fail: Fail | None = None
    ) -> list[dict]:
        """The official event sequence; with ``fail``, an error event after the first delta."""
        start = {**self.message(model, usage), "content": [], "stop_reason": None}
        start["usage"] = {**usage, "output_tokens": 1}
        events: list[dict] = [{"type": "message_start", "message": start}, {"type": "ping"}]
        for index, (block, deltas, _) in enumerate(self.blocks):
            events.append({"type": "content_block_start", "index": index, "content_block": block})
            for delta in deltas:
                events.append({"type": "content_block_delta", "index": index, "delta": delta})
                if fail:
                    kind = fail.kind or KINDS.get(fail.status, "api_error")
                    return [*events, error_body(kind, fail.message)]
            events.append({"type": "content_block_stop", "index": index})
        if fail:
            return [
                *events,
                error_body(fail.kind or KINDS.get(fail.status, "api_error"), fail.message),
            ]
        delta = {"stop_reason": self.reply.stop_reason, "stop_sequence": stop_sequence}
        output = {"output_tokens": usage.get("output_tokens", 0)}
        events.append({"type": "message_delta", "delta": delta, "usage": output})
        events.append({"type": "message_stop"})
        return events


def sse(event: dict) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


class FakeAnthropic(FakeServer):
    def __init__(
        self,
        keys: set[str] | None = None,
        key_headers: tuple[str, ...] = ("x-api-key", "authorization"),
        strict_alternation: bool = True,
        check_signatures: bool = True,
        gzip_json: bool = False,
    ):
        super().__init__(gzip_json)
        self.keys = keys
        self.key_headers = key_headers
        self.strict_alternation = strict_alternation
        self.check_signatures = check_signatures
        self.tool_schemas: list[dict[str, str]] = []
        self.issued_signatures: dict[str, str] = {}
        self.tool_ids: list[str] = []

    def error(self, wire: Wire, status: int, message: str, kind: str | None = None, headers=None):
        body = {**error_body(kind or KINDS.get(status, "api_error"), message)}
        body["request_id"] = new_id("req_011")
        wire.json(body, status, {"request-id": body["request_id"], **(headers or {})})

    def key_of(self, request: Recorded) -> str | None:
        for name in self.key_headers:
            value = request.headers.get(name, "")
            if name == "authorization":
                value = value[7:] if value.lower().startswith("bearer ") else ""
            if value:
                return value
        return None

    def handle(self, request: Recorded, wire: Wire) -> None:
        operation = {"/v1/messages": "messages", "/v1/messages/count_tokens": "count"}
        if request.method != "POST" or request.path not in operation:
            return self.error(wire, 404, f"Not found: {request.path}")
        key = self.key_of(request)
        if not key or (self.keys is not None and key not in self.keys):
            return self.error(wire, 401, "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return self.error(wire, 400, "anthropic-version: header is required")
        try:
            body = json.loads(request.body)
            if operation[request.path] == "count":
                check_body(body, COUNT_FIELDS, required=("model", "messages"))
                return wire.json({"input_tokens": token_count(prompt_text(body))})
            signatures = self.issued_signatures if self.check_signatures else None
            check_body(body, signatures=signatures, strict_alternation=self.strict_alternation)
        except json.JSONDecodeError:
            return self.error(wire, 400, "There was an error parsing the body of your request")
        except Refused as refused:
            return self.error(wire, refused.status, refused.message, refused.kind)
        self._answer(body, wire)

    def _answer(self, body: dict, wire: Wire) -> None:
        tools = body.get("tools") or []
        self.tool_schemas.append(
            {t["name"]: json.dumps(t["input_schema"]) for t in tools if "input_schema" in t}
        )
        script = self.next_script(Reply, Fail)
        stream = body.get("stream") is True
        if isinstance(script, Fail) and not (script.mid_stream and stream):
            headers = {"retry-after": script.retry_after} if script.retry_after else {}
            return self.error(wire, script.status, script.message, script.kind, headers)
        reply = script if isinstance(script, Reply) else default_reply(body)
        if name := undeclared_tool(reply, [t.get("name") for t in tools]):
            return self.error(wire, 400, f"fake: scripted call to '{name}', not in the tools")
        omit = (body.get("thinking") or {}).get("display") == "omitted"
        rendered = Rendered(reply, omit_thinking=omit)
        if rendered.signature:
            self.issued_signatures[rendered.signature] = "" if omit else joined(reply.thinking)
        self.tool_ids += rendered.tool_ids
        usage = anthropic_usage(reply.usage or default_usage(reply, prompt_text(body)))
        stop = (body.get("stop_sequences") or [None])[0] if reply.stop == "stop_sequence" else None
        model = body["model"]
        request_id = {"request-id": new_id("req_011")}
        if not stream:
            return wire.json(rendered.message(model, usage, stop), headers=request_id)
        fail = script if isinstance(script, Fail) else None
        events = rendered.events(model, usage, stop, fail)
        wire.stream("text/event-stream", [sse(e) for e in events], request_id)
