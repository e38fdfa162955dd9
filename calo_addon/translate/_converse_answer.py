"""Converse answers <-> neutral responses: the message, stop reason and usage.

Converse counts `inputTokens` WITHOUT the prompt tokens read from or written to the cache
(`cacheReadInputTokens`, `cacheWriteInputTokens`), as Anthropic does; the neutral input count
includes them. An answer carries no id and no model name.
"""

from __future__ import annotations

from typing import Any

from . import neutral
from ._converse_blocks import WriteContext, read_blocks, write_part
from .neutral import (
    Media,
    Response,
    StopReason,
    Text,
    Thinking,
    ToolCall,
    TranslationError,
    Usage,
    int_or_none,
)

STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "guardrail_intervened": "refusal",
    "content_filtered": "refusal",
    "model_context_window_exceeded": "max_tokens",
    "malformed_model_output": "error",
    "malformed_tool_use": "error",
}
_WRITTEN_STOP_REASONS = {"refusal": "content_filtered", "error": "malformed_model_output"}


def read_stop_reason(value: Any) -> StopReason | None:
    return STOP_REASONS.get(value) if isinstance(value, str) else None


def write_stop_reason(value: StopReason | None) -> str:
    return _WRITTEN_STOP_REASONS.get(value or "end_turn", value or "end_turn")


def stop_sequence(fields: Any) -> str | None:
    """Claude's matched stop sequence, when the request asked for /stop_sequence back."""
    value = fields.get("stop_sequence") if isinstance(fields, dict) else None
    return value if isinstance(value, str) else None


def read_usage(data: Any) -> Usage:
    """Converse usage in the neutral convention: cache reads and writes join the input."""
    if not isinstance(data, dict):
        return Usage()
    prompt = int_or_none(data.get("inputTokens"))
    read = int_or_none(data.get("cacheReadInputTokens"))
    written = int_or_none(data.get("cacheWriteInputTokens"))
    counts = [c for c in (prompt, read, written) if c is not None]
    return Usage(
        input_tokens=sum(counts) if counts else None,
        output_tokens=int_or_none(data.get("outputTokens")),
        cached_input_tokens=read,
        cache_write_tokens=written,
    )


def write_usage(usage: Usage) -> dict[str, int]:
    """Neutral usage as Converse counts it: inputTokens without the cached part."""
    read, written = usage.cached_input_tokens or 0, usage.cache_write_tokens or 0
    prompt = max(0, (usage.input_tokens or 0) - read - written)
    output = usage.output_tokens or 0
    data = {"inputTokens": prompt, "outputTokens": output, "totalTokens": prompt + read + written}
    data["totalTokens"] += output
    if usage.cached_input_tokens is not None:
        data["cacheReadInputTokens"] = read
    if usage.cache_write_tokens is not None:
        data["cacheWriteInputTokens"] = written
    return data


# ---------------------------------------------------------------- whole answers


def read_response(payload: Any) -> Response:
    """A Converse answer (upstream role). Converse gives no id: one is made."""
    if not isinstance(payload, dict) or not isinstance(payload.get("output"), dict):
        raise TranslationError("a Converse answer needs an output object", "output")
    message = payload["output"].get("message")
    if not isinstance(message, dict):
        raise TranslationError("a Converse answer needs output.message", "output.message")
    parts = read_blocks(message.get("content") or [], [], "output.message.content")
    return Response(
        id=neutral.new_message_id(),
        model=None,
        parts=[p for p in parts if isinstance(p, Text | Thinking | ToolCall | Media)],
        stop_reason=read_stop_reason(payload.get("stopReason")),
        stop_sequence=stop_sequence(payload.get("additionalModelResponseFields")),
        usage=read_usage(payload.get("usage")),
    )


def write_response(response: Response) -> dict[str, Any]:
    """A neutral answer as Converse's (client role)."""
    ctx = WriteContext(model=None, dropped=[])
    content = [block for part in response.parts if (block := _answer_block(part, ctx))]
    body: dict[str, Any] = {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": write_stop_reason(response.stop_reason),
        "usage": write_usage(response.usage),
        "metrics": {"latencyMs": 0},
    }
    if response.stop_sequence is not None:
        body["additionalModelResponseFields"] = {"stop_sequence": response.stop_sequence}
    return body


def _answer_block(part: Any, ctx: WriteContext) -> dict[str, Any] | None:
    """Reasoning is written as the model gave it, signed or not (Gemini's signatures too, with
    empty text), so the client can send back all it got. Media Converse cannot carry (a URL)
    is left out rather than failing a finished answer."""
    if isinstance(part, Thinking):
        if part.redacted:
            return {"reasoningContent": {"redactedContent": part.signature or ""}}
        text: dict[str, Any] = {"text": part.text or "".join(part.summary or [])}
        if part.signature:
            text["signature"] = part.signature
        return {"reasoningContent": {"reasoningText": text}}
    if isinstance(part, Text):
        return {"text": part.text}
    if isinstance(part, Media) and part.data is None:
        return None
    return write_part(part, ctx)
