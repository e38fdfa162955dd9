"""A fake OpenAI Chat Completions API on loopback, strict enough to be an upstream of
translated calls (an "OpenAI-compatible" route).

``FakeOpenAI(keys=None, reasoning_field="reasoning_content", gzip_json=False)``, a context
manager. Under ``/v1`` and ``/v1beta/openai``: POST ``chat/completions`` (JSON, or SSE with
``stream: true``), POST ``embeddings``, GET ``models``.

- Auth: ``Authorization: Bearer <key>`` required (401 ``invalid_api_key``); if ``keys`` is a
  set, the key must be in it.
- Validation (fake_openai_check.py), 400 in OpenAI's shape ``{"error": {"message", "type",
  "param", "code"}}``:
  unknown top-level field ("Unrecognized request argument supplied"), missing model,
  ``messages`` not a list or empty, unknown role, tool-call arguments not a string, a ``tool``
  message whose ``tool_call_id`` answers no tool call of the assistant message before it, an
  assistant ``tool_calls`` message not followed by a tool message for each id, bad tool names,
  a tool's ``parameters`` not an object schema, ``stream_options`` without ``stream``, an
  unknown content part type or an inline image that is not a base64 ``data:image/...`` URL,
  temperature outside [0, 2]. (Google's literal ``extra_body`` field is accepted.)
- Answers: ``scripted`` ``Reply`` / ``Fail`` (tests/fake_server.py), else "echo: <last user
  text>", or "results: <r1> | <r2>" after tool messages. Tool calls get distinct ``call_`` ids;
  streamed, each call starts with its id and name and its arguments follow in several
  fragments. Thinking goes to ``reasoning_field`` (``reasoning_content`` as vLLM/DeepSeek
  servers do; None leaves it out). ``stream_options.include_usage`` adds the usage chunk
  (``choices: []``) and ``"usage": null`` on the others. ``Fail(mid_stream=True)`` sends a
  ``data: {"error": ...}`` event after the first content chunk.
- Records: ``requests``; ``tool_schemas`` (per chat call: function name -> JSON text of its
  ``parameters``); ``tool_ids`` (every call id issued).

``ChatAPI`` is the protocol itself, a mixin also used by fake_llm.FakeLLM (lenient, with its
historical canned answers).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from tests.fake_openai_check import Refused, check_chat
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
    pieces,
)

PATHS = re.compile(r"^/(v1|v1beta/openai)/(chat/completions|embeddings|models)$")
FINISH = {"max_tokens": "length", "tool_use": "tool_calls"}
TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 429: "requests"}


def error_body(message: str, kind: str, param: str | None = None, code: str | None = None):
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def openai_usage(usage: Usage | dict) -> dict:
    if isinstance(usage, dict):
        return usage
    completion = usage.output + usage.thoughts
    return {
        "prompt_tokens": usage.prompt,
        "completion_tokens": completion,
        "total_tokens": usage.prompt + completion,
        "prompt_tokens_details": {"cached_tokens": usage.cached},
        "completion_tokens_details": {"reasoning_tokens": usage.thoughts},
    }


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict))


def prompt_text(body: dict) -> str:
    return "".join(_text(m.get("content")) for m in body.get("messages") or [])


def default_reply(body: dict) -> Reply:
    messages = body["messages"]
    results = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.insert(0, _text(message.get("content")))
    if results:
        return Reply(text="results: " + " | ".join(results))
    return Reply(text="echo: " + _text(messages[-1].get("content"))[:200])


class ChatAPI:
    """The OpenAI protocol as a mixin of a FakeServer; ``chat_setup`` sets its knobs."""

    def chat_setup(
        self, *, strict: bool = True, keys=None, reasoning_field: str | None = "reasoning_content"
    ) -> None:
        self.chat_strict, self.chat_keys = strict, keys
        self.reasoning_field = reasoning_field
        self.tool_schemas: list[dict[str, str]] = []
        self.tool_ids: list[str] = []

    def chat_default_reply(self, body: dict, stream: bool) -> Reply:
        return default_reply(body)

    def chat_handle(self, request: Recorded, wire: Wire) -> bool:
        match = PATHS.match(request.path)
        if not match:
            return False
        key = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if self.chat_strict and (
            not key or (self.chat_keys is not None and key not in self.chat_keys)
        ):
            message = "Incorrect API key provided." if key else "You didn't provide an API key."
            wire.json(error_body(message, "invalid_request_error", None, "invalid_api_key"), 401)
            return True
        body = json.loads(request.body) if request.body else {}
        operation = match.group(2)
        if operation == "models":
            model = {"id": "gpt-4o", "object": "model", "created": 0, "owned_by": "fake"}
            wire.json({"object": "list", "data": [model]})
        elif operation == "embeddings":
            data = [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}]
            usage = {"prompt_tokens": 3, "total_tokens": 3}
            wire.json({"object": "list", "data": data, "model": body.get("model"), "usage": usage})
        else:
            self._chat(body, wire)
        return True

    def _chat(self, body: dict, wire: Wire) -> None:
        if self.chat_strict:
            try:
                check_chat(body)
            except Refused as refused:
                error = error_body(refused.message, "invalid_request_error", refused.param)
                error["error"]["code"] = refused.code
                return wire.json(error, 400)
        tools = [t.get("function") or {} for t in body.get("tools") or []]
        self.tool_schemas.append({f.get("name"): json.dumps(f.get("parameters")) for f in tools})
        stream = body.get("stream") is True
        script = self.next_script(Reply, Fail)
        if isinstance(script, Fail) and not (script.mid_stream and stream):
            headers = {"retry-after": script.retry_after} if script.retry_after else {}
            kind = script.kind or TYPES.get(script.status, "server_error")
            return wire.json(error_body(script.message, kind), script.status, headers)
        reply = script if isinstance(script, Reply) else self.chat_default_reply(body, stream)
        missing = [n for n, _ in reply.tool_calls if n not in [f.get("name") for f in tools]]
        if self.chat_strict and missing:
            return wire.json(error_body(f"fake: scripted call to '{missing[0]}'", "fake"), 400)
        ids = [new_id("call_") for _ in reply.tool_calls]
        self.tool_ids += ids
        usage = openai_usage(reply.usage or default_usage(reply, prompt_text(body)))
        answer = ChatAnswer(reply, ids, body.get("model"), self.reasoning_field)
        if not stream:
            return wire.json(answer.completion(usage))
        with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = answer.chunks(usage if with_usage else None, script)
        wire.stream("text/event-stream", [b"data: %s\n\n" % e for e in events])


class ChatAnswer:
    def __init__(self, reply: Reply, ids: list[str], model: str, reasoning_field: str | None):
        self.reply, self.ids, self.reasoning_field = reply, ids, reasoning_field
        self.base = {"id": new_id("chatcmpl-"), "created": int(time.time()), "model": model}
        self.finish = FINISH.get(reply.stop_reason, "stop")

    def completion(self, usage: dict) -> dict:
        message: dict[str, Any] = {"role": "assistant", "content": joined(self.reply.text)}
        message["refusal"] = None
        if self.reply.thinking is not None and self.reasoning_field:
            message[self.reasoning_field] = joined(self.reply.thinking)
        if self.reply.tool_calls:
            message["tool_calls"] = [
                {"id": i, "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
                for i, (n, a) in zip(self.ids, self.reply.tool_calls, strict=True)
            ]
        choice = {"index": 0, "message": message, "finish_reason": self.finish, "logprobs": None}
        return {**self.base, "object": "chat.completion", "choices": [choice], "usage": usage}

    def _deltas(self) -> list[dict]:
        deltas: list[dict] = [{"role": "assistant", "content": ""}]
        if self.reasoning_field:
            deltas += [{self.reasoning_field: p} for p in pieces(self.reply.thinking)]
        deltas += [{"content": p} for p in pieces(self.reply.text)]
        for index, (call_id, (name, args)) in enumerate(zip(self.ids, self.reply.tool_calls)):
            head = {"index": index, "id": call_id, "type": "function"}
            deltas.append({"tool_calls": [{**head, "function": {"name": name, "arguments": ""}}]})
            for fragment in pieces(json.dumps(args), 4):
                call = {"index": index, "function": {"arguments": fragment}}
                deltas.append({"tool_calls": [call]})
        return deltas

    def chunks(self, usage: dict | None, fail: Any) -> list[bytes]:
        def chunk(delta: dict | None, finish=None, **extra) -> bytes:
            choices = (
                [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
            )
            out = {**self.base, "object": "chat.completion.chunk", "choices": choices, **extra}
            if usage is not None:
                out.setdefault("usage", None)
            return json.dumps(out).encode()

        out = [chunk(delta) for delta in self._deltas()]
        if isinstance(fail, Fail):  # the error once the answer has begun
            error = error_body(fail.message, fail.kind or "server_error")
            return [*out[:2], json.dumps(error).encode()]
        out.append(chunk({}, self.finish))
        if usage is not None:
            out.append(chunk(None, usage=usage))
        return [*out, b"[DONE]"]


class FakeOpenAI(ChatAPI, FakeServer):
    def __init__(
        self,
        keys: set[str] | None = None,
        reasoning_field: str | None = "reasoning_content",
        gzip_json: bool = False,
    ):
        FakeServer.__init__(self, gzip_json)
        self.chat_setup(keys=keys, reasoning_field=reasoning_field)

    def handle(self, request: Recorded, wire: Wire) -> None:
        if not self.chat_handle(request, wire):
            wire.json(
                error_body(f"Unknown request URL: {request.path}", "invalid_request_error"), 404
            )
