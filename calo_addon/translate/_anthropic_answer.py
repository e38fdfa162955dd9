"""Anthropic Messages answers: usage, stop reasons, errors and the assistant's content blocks.

Shared by the whole-answer codec methods and the stream reader and writer, so that both count
tokens and name stop reasons the same way.

Usage: Anthropic's `input_tokens` leaves out the tokens read from or written to the prompt
cache, which it reports beside them; the neutral form counts the whole prompt. Readers add the
three, writers subtract the cached parts again. `output_tokens` includes thinking on both sides.
"""

from __future__ import annotations

from typing import Any

from . import neutral
from .neutral import int_or_none

# Anthropic stop reasons the neutral form has no word for, and what they mean for a client.
_STOP_IN: dict[str, neutral.StopReason] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "refusal": "refusal",
    "pause_turn": "end_turn",  # a server tool paused the turn: the client sees a finished turn
    "model_context_window_exceeded": "max_tokens",
}
_STOP_OUT = {"error": "end_turn"}  # Anthropic has no error stop reason; the error event says it

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_ERROR_STATUS = {kind: status for status, kind in _ERROR_TYPES.items()}


# ---------------------------------------------------------------- usage


def read_usage(usage: Any) -> neutral.Usage:
    """Anthropic usage -> neutral (input grows by the cache reads and writes)."""
    if not isinstance(usage, dict):
        return neutral.Usage()
    uncached = int_or_none(usage.get("input_tokens"))
    cached = int_or_none(usage.get("cache_read_input_tokens"))
    written = int_or_none(usage.get("cache_creation_input_tokens"))
    total = None
    if uncached is not None or cached is not None or written is not None:
        total = (uncached or 0) + (cached or 0) + (written or 0)
    details = usage.get("output_tokens_details")
    reasoning = int_or_none(details.get("thinking_tokens")) if isinstance(details, dict) else None
    return neutral.Usage(
        input_tokens=total,
        output_tokens=int_or_none(usage.get("output_tokens")),
        cached_input_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=reasoning,
    )


def write_usage(usage: neutral.Usage) -> dict[str, Any]:
    """Neutral usage -> Anthropic: input_tokens without the cached parts, which go beside it."""
    cached = usage.cached_input_tokens or 0
    written = usage.cache_write_tokens or 0
    out: dict[str, Any] = {
        "input_tokens": max((usage.input_tokens or 0) - cached - written, 0),
        "output_tokens": usage.output_tokens or 0,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
    }
    if usage.reasoning_tokens is not None:
        out["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return out


# ---------------------------------------------------------------- stop reasons and errors


def read_stop(reason: Any) -> neutral.StopReason | None:
    if not isinstance(reason, str):
        return None
    return _STOP_IN.get(reason, "end_turn")


def write_stop(reason: neutral.StopReason | None) -> str:
    return _STOP_OUT.get(reason or "end_turn", reason or "end_turn")


def error_type(status: int, kind: str | None = None) -> str:
    """Anthropic's error type for a status (an Anthropic type given as `kind` is kept)."""
    if kind in _ERROR_STATUS:
        return kind
    if status in _ERROR_TYPES:
        return _ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_status(kind: Any) -> int:
    return _ERROR_STATUS.get(kind, 500) if isinstance(kind, str) else 500


def error_body(status: int, message: str, kind: str | None = None) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(status, kind), "message": message}}


# ---------------------------------------------------------------- assistant content blocks


def read_answer_block(block: Any) -> neutral.Part | None:
    """One content block of an answer; server-tool blocks the neutral form cannot carry -> None."""
    if not isinstance(block, dict):
        raise neutral.TranslationError("a content block must be an object", "content")
    kind = block.get("type")
    if kind == "text":
        return neutral.Text(block.get("text") or "")
    if kind == "thinking":
        return neutral.Thinking(block.get("thinking") or "", block.get("signature") or None)
    if kind == "redacted_thinking":
        return neutral.Thinking(signature=block.get("data"), redacted=True)
    if kind == "tool_use":
        return neutral.ToolCall(str(block.get("id")), str(block.get("name")), _input(block))
    return None  # server_tool_use, web_search_tool_result, ...: answered upstream, not portable


def _input(block: dict[str, Any]) -> dict[str, Any]:
    value = block.get("input")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise neutral.TranslationError("tool_use input must be an object", "content.input")
    return value


def thinking_text(part: neutral.Thinking) -> str:
    """The visible thinking: its text, else the summaries an OpenAI reasoning item carried."""
    return part.text or "\n\n".join(part.summary or [])


def write_answer_block(part: neutral.Part) -> dict[str, Any] | None:
    """One neutral part of an answer as an Anthropic content block (None: no place for it).

    A Thinking with an empty text and a signature is still a thinking block: Gemini's thought
    signatures ride through Anthropic clients this way and come back as they went.
    """
    if isinstance(part, neutral.Text):
        return {"type": "text", "text": part.text}
    if isinstance(part, neutral.Thinking):
        if part.redacted:
            return {"type": "redacted_thinking", "data": part.signature or ""}
        return {
            "type": "thinking",
            "thinking": thinking_text(part),
            "signature": part.signature or "",
        }
    if isinstance(part, neutral.ToolCall):
        return {"type": "tool_use", "id": part.id, "name": part.name, "input": part.arguments}
    return None  # Media in an answer (an image Gemini drew): an Anthropic answer cannot hold it


def _shown(part: neutral.Thinking) -> bool:
    return part.redacted or bool(thinking_text(part))


def read_response(payload: Any) -> neutral.Response:
    if not isinstance(payload, dict):
        raise neutral.TranslationError("an Anthropic message must be a JSON object")
    content = payload.get("content") or []
    if not isinstance(content, list):
        raise neutral.TranslationError("content must be a list", "content")
    parts = [part for part in map(read_answer_block, content) if part is not None]
    return neutral.Response(
        id=payload.get("id") or neutral.new_message_id(),
        model=payload.get("model"),
        parts=parts,
        stop_reason=read_stop(payload.get("stop_reason")),
        stop_sequence=payload.get("stop_sequence"),
        usage=read_usage(payload.get("usage")),
    )


def message_id(upstream_id: str | None) -> str:
    """Anthropic's message ids start with msg_: the upstream's id, kept for tracing, gets it."""
    if not upstream_id:
        return neutral.new_message_id()
    return upstream_id if upstream_id.startswith("msg_") else f"msg_{upstream_id}"


def write_response(response: neutral.Response) -> dict[str, Any]:
    """An Anthropic message, without the blocks the stream writer leaves out too: empty text
    (Anthropic refuses it when a client sends it back) and a signature-only thinking block that
    nothing follows (Gemini's signature after a text answer, which it does not require; as the
    last block it would be Claude Code's result)."""
    parts = [p for p in response.parts if not (isinstance(p, neutral.Text) and not p.text)]
    while parts and isinstance(parts[-1], neutral.Thinking) and not _shown(parts[-1]):
        parts.pop()
    return {
        "id": message_id(response.id),
        "type": "message",
        "role": "assistant",
        "model": response.model or "",
        "content": [b for b in map(write_answer_block, parts) if b is not None],
        "stop_reason": write_stop(response.stop_reason),
        "stop_sequence": response.stop_sequence,
        "usage": write_usage(response.usage),
    }
