"""The Responses answer object (the `response` of a create call and of stream lifecycle
events): building it from the neutral form and reading it back, usage and status included."""

from __future__ import annotations

import time
from typing import Any

from . import neutral
from ._responses_items import read_output
from ._responses_request import write_format, write_tool_choice, write_tools

# stop reason -> (status, incomplete_details.reason)
_STATUS: dict[str | None, tuple[str, str | None]] = {
    "max_tokens": ("incomplete", "max_output_tokens"),
    "refusal": ("incomplete", "content_filter"),
    "error": ("failed", None),
}
# error status -> the error code Responses clients act on (Codex retries rate limits)
_ERROR_CODES = {429: "rate_limit_exceeded", 400: "invalid_prompt"}


def response_id(upstream_id: str | None) -> str:
    """The answer id keeps the upstream's id for tracing, with Responses' prefix."""
    if not upstream_id:
        return neutral.new_message_id("resp_")
    return upstream_id if upstream_id.startswith("resp_") else "resp_" + upstream_id


def status_of(stop_reason: str | None) -> tuple[str, dict[str, str] | None]:
    """(status, incomplete_details) for a stop reason."""
    status, reason = _STATUS.get(stop_reason, ("completed", None))
    return status, ({"reason": reason} if reason else None)


def error_code(status: int) -> str:
    return _ERROR_CODES.get(status, "server_error")


# ---------------------------------------------------------------- usage


def write_usage(usage: neutral.Usage) -> dict[str, Any]:
    """Responses counts like the neutral form: cached inside input, reasoning inside output."""
    return {
        "input_tokens": usage.input_tokens or 0,
        "input_tokens_details": {
            "cached_tokens": usage.cached_input_tokens or 0,
            "cache_write_tokens": usage.cache_write_tokens or 0,
        },
        "output_tokens": usage.output_tokens or 0,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens or 0},
        "total_tokens": usage.total_tokens or 0,
    }


def read_usage(value: Any) -> neutral.Usage:
    if not isinstance(value, dict):
        return neutral.Usage()
    inputs = value.get("input_tokens_details") or {}
    outputs = value.get("output_tokens_details") or {}
    return neutral.Usage(
        input_tokens=value.get("input_tokens"),
        output_tokens=value.get("output_tokens"),
        cached_input_tokens=inputs.get("cached_tokens"),
        cache_write_tokens=inputs.get("cache_write_tokens") or None,
        reasoning_tokens=outputs.get("reasoning_tokens"),
    )


def answer_object(
    answer_id: str,
    model: str | None,
    output: list[dict[str, Any]],
    *,
    status: str,
    created_at: int | None = None,
    usage: neutral.Usage | None = None,
    incomplete: dict[str, str] | None = None,
    error: dict[str, str] | None = None,
    request: neutral.Request | None = None,
) -> dict[str, Any]:
    """Every field the openai SDK's Response model requires, echoing the request's settings
    where it is known (stream writer) and defaults otherwise."""
    now = int(time.time())
    answer: dict[str, Any] = {
        "id": answer_id,
        "object": "response",
        "created_at": created_at or now,
        "status": status,
        "model": model or "",
        "output": output,
        "usage": write_usage(usage) if usage is not None else None,
        "incomplete_details": incomplete,
        "error": error,
        "completed_at": now if status == "completed" else None,
        "instructions": None,
        "metadata": {},
        "background": False,
        "service_tier": "default",
        "truncation": "disabled",
        "user": None,
    }
    answer.update(_echo_settings(request or neutral.Request()))
    return answer


def _echo_settings(request: neutral.Request) -> dict[str, Any]:
    choice = request.tool_choice
    reasoning = request.reasoning
    fmt = write_format(request.output_format) if request.output_format else {"type": "text"}
    return {
        "parallel_tool_calls": choice.parallel if choice and choice.parallel is not None else True,
        "tool_choice": write_tool_choice(request),
        "tools": write_tools(request),
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_output_tokens": request.max_tokens,
        "previous_response_id": request.extra.get("previous_response_id"),
        "text": {"format": fmt},
        "reasoning": {
            "effort": reasoning.effort if reasoning else None,
            "summary": "auto" if reasoning and reasoning.include_thoughts else None,
        },
    }


# ---------------------------------------------------------------- reading an answer


def read_answer(payload: Any) -> neutral.Response:
    """A Responses answer object -> neutral Response (stop reason from status and items)."""
    if not isinstance(payload, dict) or payload.get("object", "response") != "response":
        raise neutral.TranslationError("not a Responses answer object")
    if "output" not in payload and isinstance(payload.get("error"), dict):
        raise neutral.TranslationError("the upstream answered with an error, not an answer")
    output = payload.get("output") or []
    parts = read_output(output)
    return neutral.Response(
        id=payload.get("id") or neutral.new_message_id("resp_"),
        model=payload.get("model"),
        parts=parts,
        stop_reason=stop_reason_of(
            payload,
            called=any(isinstance(p, neutral.ToolCall) for p in parts),
            refused=_refused(output),
        ),
        usage=read_usage(payload.get("usage")),
    )


def _refused(output: list[Any]) -> bool:
    return any(
        isinstance(part, dict) and part.get("type") == "refusal"
        for item in output
        if isinstance(item, dict) and item.get("type") == "message"
        for part in item.get("content") or []
    )


def stop_reason_of(answer: dict[str, Any], *, called: bool, refused: bool) -> neutral.StopReason:
    """Responses has statuses, not stop reasons: derive one the neutral form knows."""
    status = answer.get("status")
    if status == "failed":
        return "error"
    if status == "incomplete":
        reason = (answer.get("incomplete_details") or {}).get("reason")
        return "refusal" if reason == "content_filter" else "max_tokens"
    if refused:
        return "refusal"
    if called:
        return "tool_use"
    return "end_turn"
