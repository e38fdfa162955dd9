"""Bedrock's answers for FakeBedrock: Converse and ConverseStream, InvokeModel for Anthropic
models (Anthropic answers in event-stream frames), and the AWS event-stream frame encoder.
Validation lives in fake_bedrock_check.py.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct

from tests.fake_anthropic import Rendered
from tests.fake_bedrock_check import blocks_of
from tests.fake_server import Fail, Reply, Usage, joined, new_id, new_signature, pieces

EXCEPTIONS = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


def encode_event(payload: dict, event_type: str, message_type: str = "event") -> bytes:
    """One AWS event-stream frame (prelude, string headers, payload, CRCs)."""

    def header(name: str, value: str) -> bytes:
        n, v = name.encode(), value.encode()
        return struct.pack("B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v

    type_header = ":exception-type" if message_type == "exception" else ":event-type"
    headers = (
        header(":message-type", message_type)
        + header(type_header, event_type)
        + header(":content-type", "application/json")
    )
    body = json.dumps(payload).encode()
    total = 12 + len(headers) + len(body) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    message = prelude + headers + body
    return message + struct.pack(">I", binascii.crc32(message))


def exception_frame(fail: Fail) -> bytes:
    kind = fail.kind or EXCEPTIONS.get(fail.status, "InternalServerException")
    return encode_event({"message": fail.message}, kind[0].lower() + kind[1:], "exception")


# ------------------------------------------------------------------ Converse: answers


def converse_usage(usage: Usage | dict) -> dict:
    if isinstance(usage, dict):
        return usage
    fresh, output = usage.prompt - usage.cached, usage.output + usage.thoughts
    return {
        "inputTokens": fresh,
        "outputTokens": output,
        "totalTokens": fresh + output + usage.cached,
        "cacheReadInputTokens": usage.cached,
        "cacheWriteInputTokens": 0,
    }


def converse_prompt_text(body: dict) -> str:
    texts = [b.get("text", "") for b in body.get("system") or []]
    texts += [b.get("text", "") for m in body.get("messages") or [] for b in m.get("content") or []]
    return "".join(t for t in texts if isinstance(t, str))


def converse_default_reply(body: dict) -> Reply:
    last = body["messages"][-1]
    results = blocks_of(last, "toolResult")
    if results:
        shown = [json.dumps(r.get("content")) for r in results]
        text = "results: " + " | ".join(shown)
    else:
        text = "echo: " + "".join(b.get("text", "") for b in last["content"])[:200]
    thinking = (body.get("additionalModelRequestFields") or {}).get("thinking") or {}
    return Reply(text=text, thinking="Let me think." if thinking.get("type") == "enabled" else None)


class ConverseAnswer:
    """A reply as Converse content blocks, whole or as ConverseStream frames."""

    def __init__(self, reply: Reply):
        self.reply = reply
        self.signature = new_signature() if reply.thinking is not None else None
        self.tool_ids = [new_id("tooluse_", 22) for _ in reply.tool_calls]

    def content(self) -> list[dict]:
        blocks = []
        if self.signature:
            text = {"text": joined(self.reply.thinking), "signature": self.signature}
            blocks.append({"reasoningContent": {"reasoningText": text}})
        if self.reply.text is not None:
            blocks.append({"text": joined(self.reply.text)})
        for tool_id, (name, args) in zip(self.tool_ids, self.reply.tool_calls, strict=True):
            blocks.append({"toolUse": {"toolUseId": tool_id, "name": name, "input": args}})
        return blocks

    def response(self, usage: Usage | dict) -> dict:
        return {
            "output": {"message": {"role": "assistant", "content": self.content()}},
            "stopReason": self.reply.stop_reason,
            "usage": converse_usage(usage),
            "metrics": {"latencyMs": 42},
        }

    def _blocks(self) -> list[tuple[dict | None, list[dict]]]:
        """Per content block: its contentBlockStart ``start`` (or None) and its deltas."""
        out: list[tuple[dict | None, list[dict]]] = []
        if self.signature:
            deltas = [{"reasoningContent": {"text": p}} for p in pieces(self.reply.thinking)]
            out.append((None, [*deltas, {"reasoningContent": {"signature": self.signature}}]))
        if self.reply.text is not None:
            out.append((None, [{"text": p} for p in pieces(self.reply.text)]))
        for tool_id, (name, args) in zip(self.tool_ids, self.reply.tool_calls, strict=True):
            fragments = [{"toolUse": {"input": p}} for p in pieces(json.dumps(args), 4)]
            out.append(({"toolUse": {"toolUseId": tool_id, "name": name}}, fragments))
        return out

    def frames(self, usage: Usage | dict, fail: Fail | None = None) -> list[bytes]:
        frames = [encode_event({"role": "assistant", "p": "abcd"}, "messageStart")]
        for index, (start, deltas) in enumerate(self._blocks()):
            if start:
                frames.append(
                    encode_event({"contentBlockIndex": index, "start": start}, "contentBlockStart")
                )
            for delta in deltas:
                frames.append(
                    encode_event({"contentBlockIndex": index, "delta": delta}, "contentBlockDelta")
                )
                if fail:
                    return [*frames, exception_frame(fail)]
            frames.append(encode_event({"contentBlockIndex": index}, "contentBlockStop"))
        if fail:
            return [*frames, exception_frame(fail)]
        frames.append(encode_event({"stopReason": self.reply.stop_reason}, "messageStop"))
        metadata = {"usage": converse_usage(usage), "metrics": {"latencyMs": 42}}
        return [*frames, encode_event(metadata, "metadata")]


# ------------------------------------------------------------------ InvokeModel (Anthropic)


def invoke_frames(
    rendered: Rendered, model: str, usage: dict, fail: Fail | None = None
) -> list[bytes]:
    """Anthropic SSE events as Bedrock sends them: {"bytes": base64(event JSON)} chunks, no
    pings, the last one carrying amazon-bedrock-invocationMetrics."""
    events = [e for e in rendered.events(model, usage, fail=fail) if e["type"] != "ping"]
    if events[-1]["type"] == "message_stop":
        events[-1]["amazon-bedrock-invocationMetrics"] = {
            "inputTokenCount": usage.get("input_tokens", 0),
            "outputTokenCount": usage.get("output_tokens", 0),
            "invocationLatency": 42,
            "firstByteLatency": 21,
        }
    elif fail:
        events.pop()  # Bedrock reports the failure as an exception frame
    frames = [
        encode_event({"bytes": base64.b64encode(json.dumps(e).encode()).decode()}, "chunk")
        for e in events
    ]
    return [*frames, exception_frame(fail)] if fail else frames
