"""Pieces the Chat Completions codec's readers and writers share: shape checks that name the
bad field, data URLs, finish reasons, usage, and Google's thought-signature convention
(`extra_content.google.thought_signature`, on a tool call or on the message itself)."""

from __future__ import annotations

import json
from typing import Any

from . import neutral
from .neutral import TranslationError, expect_str

# ---------------------------------------------------------------- shape checks


def optional_number(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TranslationError(f"'{key}' must be a number", key)
    return value


def optional_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TranslationError(f"'{key}' must be an integer", key)
    return value


def parse_arguments(text: Any, field: str) -> dict[str, Any]:
    """A request's tool-call arguments: a JSON object in a string (what the client sent is
    ours to refuse, with the field named, rather than to guess at)."""
    expect_str(text, field)
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise TranslationError(f"'{field}' is not valid JSON", field) from None
    if not isinstance(value, dict):
        raise TranslationError(f"'{field}' must be a JSON object", field)
    return value


def dump_arguments(arguments: dict[str, Any] | str) -> str:
    """Chat carries arguments as JSON text. A str is raw text an upstream sent that did not
    parse (see `answer_arguments`): it goes back exactly as it came."""
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))


def answer_arguments(text: Any) -> dict[str, Any] | str:
    """An upstream answer's tool-call arguments. Models sometimes emit JSON that does not parse;
    the answer is still the model's, so the raw text is kept (a str in `ToolCall.arguments`)
    for the client to see and handle, as streamed fragments would have shown it."""
    if isinstance(text, dict):
        return text  # some servers send the object itself
    if not isinstance(text, str) or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, dict) else text


# ---------------------------------------------------------------- finish reasons

_FINISH_TO_STOP: dict[str, neutral.StopReason] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

_STOP_TO_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "error": "stop",
}


def stop_reason(finish_reason: Any, has_tool_calls: bool) -> neutral.StopReason | None:
    """Some servers (Ollama, Gemini's layer) say "stop" after tool calls: the calls decide."""
    if finish_reason is None:
        return None
    reason = _FINISH_TO_STOP.get(finish_reason, "end_turn")
    if has_tool_calls and reason == "end_turn":
        return "tool_use"
    return reason


def finish_reason(stop: neutral.StopReason | None) -> str:
    return _STOP_TO_FINISH.get(stop or "end_turn", "stop")


# ---------------------------------------------------------------- usage


def read_usage(usage: Any) -> neutral.Usage:
    """Chat counts as the neutral form does: cached inside prompt, reasoning inside completion.
    DeepSeek's `prompt_cache_hit_tokens` stands in where `cached_tokens` is missing."""
    if not isinstance(usage, dict):
        return neutral.Usage()
    prompt = usage.get("prompt_tokens_details") or {}
    completion = usage.get("completion_tokens_details") or {}
    cached = prompt.get("cached_tokens")
    if cached is None:
        cached = usage.get("prompt_cache_hit_tokens")
    return neutral.Usage(
        input_tokens=usage.get("prompt_tokens"),
        output_tokens=usage.get("completion_tokens"),
        cached_input_tokens=cached,
        cache_write_tokens=prompt.get("cache_write_tokens"),
        reasoning_tokens=completion.get("reasoning_tokens"),
    )


def write_usage(usage: neutral.Usage) -> dict[str, Any]:
    prompt, completion = usage.input_tokens or 0, usage.output_tokens or 0
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    details = {
        key: value
        for key, value in (
            ("cached_tokens", usage.cached_input_tokens),
            ("cache_write_tokens", usage.cache_write_tokens),
        )
        if value is not None
    }
    if details:
        out["prompt_tokens_details"] = details
    if usage.reasoning_tokens is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return out


# ---------------------------------------------------------------- thought signatures


def signature_of(holder: Any) -> str | None:
    """Google's `extra_content.google.thought_signature` on a tool call or a message."""
    if not isinstance(holder, dict):
        return None
    extra = holder.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) and signature else None


def signature_field(signature: str) -> dict[str, Any]:
    return {"extra_content": {"google": {"thought_signature": signature}}}


def signed_thinking(signature: str) -> neutral.Thinking:
    """A signature that sat on the part after it, as the neutral form keeps Gemini's."""
    return neutral.Thinking(text="", signature=signature, attached=True)


def reasoning_text(holder: dict[str, Any]) -> str | None:
    """vLLM and DeepSeek say `reasoning_content`; newer vLLM and OpenRouter `reasoning` (some
    send both with the same text, so one is read, never both)."""
    for key in ("reasoning_content", "reasoning"):
        value = holder.get(key)
        if isinstance(value, str) and value:
            return value
    return None


# ---------------------------------------------------------------- errors

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}

_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "insufficient_quota": 429,
    "rate_limit_exceeded": 429,
}


def error_type(status: int) -> str:
    return _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


def error_status(error: dict[str, Any]) -> int:
    """The HTTP status an error event stands for: its numeric code (vLLM, Gemini's layer, Ollama
    send the status there), else what its type means, else 500."""
    code = error.get("code")
    if isinstance(code, int) and 400 <= code < 600:
        return code
    if isinstance(code, str) and code.isdigit() and 400 <= int(code) < 600:
        return int(code)
    for key in ("type", "code"):
        value = error.get(key)
        status = _TYPE_STATUS.get(value) if isinstance(value, str) else None
        if status:
            return status
    return 500
