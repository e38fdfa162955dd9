"""Gemini GenerateContentResponse bodies <-> the neutral Response; finish reasons and usage,
shared with the stream reader and writer."""

from __future__ import annotations

from typing import Any

from . import neutral
from ._gemini_parts import CallIds, get, read_parts, write_parts
from .neutral import expect_dict

# Finish reasons that mean the answer was withheld: the client sees a refusal.
_BLOCKED = {
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
    "LANGUAGE",
}
_FINISH_WRITE = {
    "end_turn": "STOP",
    "tool_use": "STOP",  # Gemini says STOP after function calls too
    "stop_sequence": "STOP",
    "max_tokens": "MAX_TOKENS",
    "refusal": "SAFETY",
    "error": "OTHER",
}


def stop_reason(finish: str | None, called: bool) -> neutral.StopReason | None:
    """A Gemini finish reason in neutral terms. Function calls in the answer make it tool_use
    (Gemini says STOP); blocked answers are refusals; a malformed call or an unexplained end
    (OTHER, MALFORMED_FUNCTION_CALL ...) is an error."""
    if called:
        return "tool_use"
    if finish is None:
        return None
    if finish == "STOP":
        return "end_turn"
    if finish == "MAX_TOKENS":
        return "max_tokens"
    if finish in _BLOCKED:
        return "refusal"
    return "error"


def finish_reason(stop: neutral.StopReason | None) -> str | None:
    return _FINISH_WRITE.get(stop) if stop else None


def read_usage(metadata: Any) -> neutral.Usage:
    """usageMetadata in neutral terms: output counts the thoughts too; the cached part sits
    inside the prompt count, as the neutral form wants it."""
    if not isinstance(metadata, dict):
        return neutral.Usage()
    candidates = get(metadata, "candidatesTokenCount")
    thoughts = get(metadata, "thoughtsTokenCount")
    output = (
        None if candidates is None and thoughts is None else (candidates or 0) + (thoughts or 0)
    )
    return neutral.Usage(
        input_tokens=get(metadata, "promptTokenCount"),
        output_tokens=output,
        cached_input_tokens=get(metadata, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def write_usage(usage: neutral.Usage) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    if usage.input_tokens is not None:
        metadata["promptTokenCount"] = usage.input_tokens
    if usage.output_tokens is not None:
        metadata["candidatesTokenCount"] = usage.output_tokens - (usage.reasoning_tokens or 0)
    if usage.reasoning_tokens:
        metadata["thoughtsTokenCount"] = usage.reasoning_tokens
    if usage.cached_input_tokens:
        metadata["cachedContentTokenCount"] = usage.cached_input_tokens
    if usage.total_tokens is not None:
        metadata["totalTokenCount"] = usage.total_tokens
    return metadata


def read_response(payload: Any) -> neutral.Response:
    payload = expect_dict(payload, "response")
    if isinstance(payload.get("error"), dict):
        raise neutral.TranslationError(payload["error"].get("message") or "Gemini error", "error")
    response = neutral.Response(
        id=get(payload, "responseId") or neutral.new_message_id(),
        model=get(payload, "modelVersion"),
        usage=read_usage(get(payload, "usageMetadata")),
    )
    candidates = payload.get("candidates") or []
    if not candidates:
        feedback = get(payload, "promptFeedback") or {}
        response.stop_reason = "refusal" if get(feedback, "blockReason") else None
        return response
    candidate = expect_dict(candidates[0], "candidates[0]")
    content = candidate.get("content") or {}
    response.parts = read_parts(content.get("parts") or [], CallIds(), where="content.parts")
    called = any(isinstance(p, neutral.ToolCall) for p in response.parts)
    response.stop_reason = stop_reason(get(candidate, "finishReason"), called)
    return response


def write_response(response: neutral.Response) -> dict[str, Any]:
    """A GenerateContentResponse with one candidate. Thought text goes as thought parts (the
    client asked for it, or the upstream would not have sent it); call ids go along so a
    client that echoes them in its functionResponse keeps the exact ids."""
    candidate: dict[str, Any] = {
        "content": {
            "role": "model",
            "parts": write_parts(response.parts, {}, keep_thoughts=True, call_ids=True),
        },
        "index": 0,
    }
    if finish := finish_reason(response.stop_reason):
        candidate["finishReason"] = finish
    payload: dict[str, Any] = {"candidates": [candidate]}
    if usage := write_usage(response.usage):
        payload["usageMetadata"] = usage
    if response.model:
        payload["modelVersion"] = response.model
    payload["responseId"] = response.id
    return payload
