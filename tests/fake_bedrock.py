"""A fake bedrock-runtime on loopback that records requests and checks their SigV4 signatures.

``FakeBedrock(secrets=None, stream_gate=False, strict=False, check_signatures=True)``, a
context manager. ``secrets`` maps access-key ids to secret keys: every request signed with
SigV4 has its signature recomputed with botocore from exactly what arrived, and the record
says whether it matched (``signature_ok``, None when unsigned; ``access_key``).

Operations: ``/model/{id}/converse``, ``converse-stream``, ``invoke``,
``invoke-with-response-stream`` (streams as real AWS event-stream frames, one per HTTP chunk);
it also answers Gemini ``generateContent`` (the rollup's summariser) with "SUMMARY#n ...".

- Lenient (default, what the older tests rely on): no validation, canned answers ("hello",
  "hel"+"lo", "hello from fake bedrock") unless a ``Reply`` / ``Fail`` is scripted.
- ``strict=True`` validates like Bedrock (fake_bedrock_check.py; 400 ``ValidationException``
  with ``x-amzn-ErrorType``):
  Converse: unknown top-level field (``model`` included), messages not starting with user or
  not alternating, empty or blank content, a toolResult with no matching toolUse in the
  previous assistant message (or a toolUse left unanswered), toolUse/toolResult without
  ``toolConfig``, an ``inputSchema.json`` that is not an object schema, bad images, thinking
  budgets, Nova 2's ``reasoningConfig`` (no other model takes it; no maxTokens at "high"
  effort), and (``check_signatures``) reasoningContent whose signature this fake never issued
  for that text. InvokeModel on anthropic models: ``anthropic_version`` must be
  "bedrock-2023-05-31", no ``model`` / ``stream`` / unknown key, ``max_tokens`` required, then
  every Anthropic rule of fake_anthropic_check.py. Unscripted answers echo the last user text
  (or list the tool results), with reasoning when thinking is enabled.
- Scripted ``Reply`` (tests/fake_server.py): Converse toolUse blocks with distinct
  ``tooluse_`` ids, ``reasoningContent.reasoningText {text, signature}``, usage with
  ``cacheReadInputTokens``; streamed as contentBlockStart / contentBlockDelta (text, toolUse
  input in several fragments, reasoningContent text then signature) / contentBlockStop,
  messageStop, metadata. Invoke answers Anthropic JSON, or ``chunk`` frames whose payload is
  ``{"bytes": base64(event JSON)}``, the last carrying ``amazon-bedrock-invocationMetrics``.
  ``Fail`` answers the JSON error with ``x-amzn-ErrorType`` (and ``retry-after``), or with
  ``mid_stream`` an exception frame after the first delta.
- Older knobs: ``scripted`` also takes raw ``(status, headers, body_dict)`` tuples;
  ``stream_gate`` (alias of ``hold_last_chunk``) with ``release`` / ``last_frame_sent``;
  ``stream_exception`` (a throttlingException frame inside the 200 stream); ``bad_gzip``;
  ``summarizer_fails``; the faults of tests/fake_server.py.
- Records: ``requests``; ``tool_schemas`` (per call: tool name -> JSON text of its schema);
  ``issued_signatures`` (signature -> reasoning text); ``tool_ids``.
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.fake_anthropic import Rendered, anthropic_usage, default_reply, prompt_text
from tests.fake_anthropic_check import Refused
from tests.fake_bedrock_api import (
    EXCEPTIONS,
    ConverseAnswer,
    converse_default_reply,
    converse_prompt_text,
    encode_event,
    invoke_frames,
)
from tests.fake_bedrock_check import check_converse, check_invoke, check_model_fields
from tests.fake_server import Fail, FakeServer, Recorded, Reply, Wire, default_usage

__all__ = ["FakeBedrock", "Recorded", "encode_event"]

_AUTH = re.compile(
    r"Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, ?SignedHeaders=([^,]+), ?Signature=(\w+)"
)
ROUTE = re.compile(r"^/model/([^/]+)/([a-z-]+)$")
SUMMARY = re.compile(r"^/v1beta/models/[^/]+:generateContent$")
EVENTS = "application/vnd.amazon.eventstream"


def anthropic_stream_frames() -> list[bytes]:
    events = [
        {"type": "message_start", "message": {"usage": {"input_tokens": 11, "output_tokens": 1}}},
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "hel"}},
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "lo"}},
        {
            "type": "message_stop",
            "amazon-bedrock-invocationMetrics": {"inputTokenCount": 11, "outputTokenCount": 4},
        },
    ]
    return [
        encode_event({"bytes": base64.b64encode(json.dumps(e).encode()).decode()}, "chunk")
        for e in events
    ]


def converse_stream_frames() -> list[bytes]:
    return [
        encode_event({"role": "assistant"}, "messageStart"),
        encode_event({"contentBlockIndex": 0, "delta": {"text": "hel"}}, "contentBlockDelta"),
        encode_event({"contentBlockIndex": 0, "delta": {"text": "lo"}}, "contentBlockDelta"),
        encode_event({"stopReason": "end_turn"}, "messageStop"),
        encode_event(
            {
                "usage": {"inputTokens": 9, "outputTokens": 2, "totalTokens": 11},
                "metrics": {"latencyMs": 5},
            },
            "metadata",
        ),
    ]


CANNED_CONVERSE = {
    "output": {"message": {"role": "assistant", "content": [{"text": "hello"}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 8, "outputTokens": 3, "totalTokens": 11},
    "metrics": {"latencyMs": 5},
}


def canned_invoke(model: str) -> dict:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "hello from fake bedrock"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 12, "output_tokens": 6},
    }


class FakeBedrock(FakeServer):
    def __init__(
        self,
        secrets: dict[str, str] | None = None,
        stream_gate: bool = False,
        strict: bool = False,
        check_signatures: bool = True,
    ):
        super().__init__()
        self.secrets = dict(secrets or {})
        self.hold_last_chunk = stream_gate
        self.strict, self.check_signatures = strict, check_signatures
        self.stream_exception = False  # put an exception frame inside the 200 stream
        self.bad_gzip = False  # an invoke answer that claims gzip but is not
        self.summaries = 0
        self.summarizer_fails = False
        self.tool_schemas: list[dict[str, str]] = []
        self.issued_signatures: dict[str, str] = {}
        self.tool_ids: list[str] = []

    @property
    def stream_gate(self) -> bool:
        return self.hold_last_chunk

    @stream_gate.setter
    def stream_gate(self, value: bool) -> None:
        self.hold_last_chunk = value

    @property
    def last_frame_sent(self):
        return self.last_chunk_sent

    # ------------------------------------------------------------ SigV4

    def record(self, handler, body: bytes) -> Recorded:
        recorded = super().record(handler, body)
        recorded.signature_ok, recorded.access_key = self._verify(handler, body)
        return recorded

    def _verify(self, handler, body: bytes) -> tuple[bool | None, str | None]:
        match = _AUTH.search(handler.headers.get("authorization", ""))
        if not match:
            return None, None
        key_id, _date, region, service, signed, signature = match.groups()
        secret = self.secrets.get(key_id)
        if secret is None:
            return False, key_id
        headers = {name: handler.headers.get(name, "") for name in signed.split(";")}
        request = AWSRequest(
            method=handler.command,
            url=f"http://{handler.headers['host']}{handler.path}",
            headers=headers,
            data=body,
        )
        request.context["timestamp"] = handler.headers.get("x-amz-date", "")
        auth = SigV4Auth(Credentials(key_id, secret), service, region)
        expected = auth.signature(
            auth.string_to_sign(request, auth.canonical_request(request)), request
        )
        return expected == signature, key_id

    # ------------------------------------------------------------ answers

    def error(self, wire: Wire, status: int, message: str, kind: str | None = None, headers=None):
        kind = kind or EXCEPTIONS.get(status, "InternalServerException")
        wire.json({"message": message}, status, {"x-amzn-ErrorType": kind, **(headers or {})})

    def handle(self, request: Recorded, wire: Wire) -> None:
        if SUMMARY.match(request.path):
            return self._summary(request, wire)
        if raw := self.next_script(tuple):
            status, headers, payload = raw
            return wire.json(payload, status, headers)
        match = ROUTE.match(request.path)
        if not match:
            return self.error(wire, 404, "no such route", "ResourceNotFoundException")
        model, operation = unquote(match.group(1)), match.group(2)
        if operation == "invoke" and self.bad_gzip:
            return wire.send(200, b"not-gzip!", "application/json", {"content-encoding": "gzip"})
        if operation == "count-tokens":
            return self._count_tokens(wire, request.body)
        try:
            body = json.loads(request.body or b"{}")
            if self.strict:
                self._validate(model, operation, body)
        except json.JSONDecodeError:
            return self.error(wire, 400, "Malformed input request, please reformat your input.")
        except Refused as refused:
            return self.error(wire, refused.status, refused.message)
        script = self.next_script(Reply, Fail)
        if script is None and not self.strict:
            return self._canned(wire, model, operation)
        stream = operation.endswith("stream")
        if isinstance(script, Fail) and not (script.mid_stream and stream):
            headers = {"retry-after": script.retry_after} if script.retry_after else {}
            return self.error(wire, script.status, script.message, script.kind, headers)
        fail = script if isinstance(script, Fail) else None
        reply = script if isinstance(script, Reply) else None
        if operation.startswith("converse"):
            return self._converse(wire, body, reply, fail, stream)
        return self._invoke(wire, model, body, reply, fail, stream)

    def _count_tokens(self, wire: Wire, raw: bytes) -> None:
        """CountTokens: {"input": {"converse": {messages, system?, toolConfig?}}} (checked as
        a Converse body) or {"input": {"invokeModel": {"body": "<JSON text>"}}}."""
        try:
            given = json.loads(raw or b"{}")["input"]
            (kind,) = given.keys()
            if kind == "converse":
                body = given["converse"]
                if self.strict:
                    check_converse({**body, "inferenceConfig": {}}, None)
                text = converse_prompt_text(body)
            elif kind == "invokeModel":
                text = given["invokeModel"]["body"]
            else:
                raise KeyError(kind)
        except (ValueError, KeyError, TypeError, Refused) as e:
            return self.error(wire, 400, f"Malformed CountTokens input: {e}")
        wire.json({"inputTokens": max(1, len(text) // 4)})

    def _validate(self, model: str, operation: str, body) -> None:
        signatures = self.issued_signatures if self.check_signatures else None
        if operation.startswith("converse"):
            check_converse(body, signatures)
            return check_model_fields(model, body)
        if "anthropic." not in model:
            raise Refused(f"fake: InvokeModel is only faked for anthropic models, not {model}")
        check_invoke(body, signatures)

    def _summary(self, request: Recorded, wire: Wire) -> None:
        self.summaries += 1
        if self.summarizer_fails:
            return wire.json({"error": {"code": 500, "message": "boom"}}, 500)
        text = f"SUMMARY#{self.summaries} of {len(request.body)} bytes"
        wire.json({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}}]})

    def _canned(self, wire: Wire, model: str, operation: str) -> None:
        if operation == "invoke":
            return wire.json(canned_invoke(model))
        if operation == "converse":
            return wire.json(CANNED_CONVERSE)
        if operation == "invoke-with-response-stream":
            return self._frames(wire, anthropic_stream_frames())
        self._frames(wire, converse_stream_frames())

    def _frames(self, wire: Wire, frames: list[bytes]) -> None:
        if self.stream_exception:
            message = {"message": "model is overloaded"}
            frames.insert(2, encode_event(message, "throttlingException", "exception"))
        wire.stream(EVENTS, frames)

    def _undeclared(self, wire: Wire, reply: Reply, declared: dict) -> bool:
        missing = [name for name, _ in reply.tool_calls if name not in declared]
        if missing:
            self.error(wire, 400, f"fake: scripted call to '{missing[0]}', not in the tools")
        return bool(missing)

    def _converse(self, wire: Wire, body: dict, reply, fail, stream: bool) -> None:
        specs = [
            t["toolSpec"]
            for t in (body.get("toolConfig") or {}).get("tools") or []
            if "toolSpec" in t
        ]
        declared = {
            s.get("name"): json.dumps((s.get("inputSchema") or {}).get("json")) for s in specs
        }
        self.tool_schemas.append(declared)
        reply = reply or converse_default_reply(body)
        if self.strict and self._undeclared(wire, reply, declared):
            return None
        answer = ConverseAnswer(reply)
        if answer.signature:
            self.issued_signatures[answer.signature] = "".join(reply.thinking or "")
        self.tool_ids += answer.tool_ids
        usage = reply.usage or default_usage(reply, converse_prompt_text(body))
        if not stream:
            return wire.json(answer.response(usage))
        self._frames(wire, answer.frames(usage, fail))

    def _invoke(self, wire: Wire, model: str, body: dict, reply, fail, stream: bool) -> None:
        tools = body.get("tools") or []
        declared = {t.get("name"): json.dumps(t.get("input_schema")) for t in tools}
        self.tool_schemas.append(declared)
        reply = reply or default_reply(body)
        if self.strict and self._undeclared(wire, reply, declared):
            return None
        rendered = Rendered(reply)
        if rendered.signature:
            self.issued_signatures[rendered.signature] = "".join(reply.thinking or "")
        self.tool_ids += rendered.tool_ids
        usage = anthropic_usage(reply.usage or default_usage(reply, prompt_text(body)))
        if not stream:
            counts = {
                "x-amzn-bedrock-input-token-count": usage.get("input_tokens", 0),
                "x-amzn-bedrock-output-token-count": usage.get("output_tokens", 0),
            }
            return wire.json(rendered.message(model, usage), headers=counts)
        self._frames(wire, invoke_frames(rendered, model, usage, fail))
