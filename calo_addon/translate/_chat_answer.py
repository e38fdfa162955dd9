"""Whole Chat Completions answers: written for a Chat client (client role) and read from an
OpenAI-compatible server (upstream role).

The assistant message carries text in `content` (null when there are only tool calls),
reasoning text in `reasoning_content` (not in OpenAI's spec, but what vLLM and DeepSeek send
and what opencode and many clients read; the openai SDK keeps unknown fields), and Google's
thought signatures in `extra_content.google.thought_signature`: on the tool call a signature
precedes, else on the message itself.
"""

from __future__ import annotations

import time
from typing import Any

from . import neutral
from ._chat_common import (
    answer_arguments,
    dump_arguments,
    finish_reason,
    read_usage,
    reasoning_text,
    signature_field,
    signature_of,
    signed_thinking,
    stop_reason,
    write_usage,
)
from .neutral import expect_dict, expect_list

CHAT_ID_PREFIX = "chatcmpl-"


def chat_id(message_id: str | None) -> str:
    """Chat answer ids start with chatcmpl-; another protocol's id keeps its text after it."""
    if not message_id:
        return neutral.new_message_id(CHAT_ID_PREFIX)
    return message_id if message_id.startswith(CHAT_ID_PREFIX) else CHAT_ID_PREFIX + message_id


# ---------------------------------------------------------------- client role: write


def write_response(response: neutral.Response) -> dict[str, Any]:
    return {
        "id": chat_id(response.id),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": response.model,
        "choices": [
            {
                "index": 0,
                "message": assistant_message(response.parts),
                "logprobs": None,
                "finish_reason": finish_reason(response.stop_reason),
            }
        ],
        "usage": write_usage(response.usage),
    }


def assistant_message(parts: list[neutral.Part]) -> dict[str, Any]:
    text = "".join(p.text for p in parts if isinstance(p, neutral.Text))
    calls = [tool_call_object(p) for p in parts if isinstance(p, neutral.ToolCall)]
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text if text or not calls else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    reasoning = "".join(_thought_text(p) for p in parts if isinstance(p, neutral.Thinking))
    if reasoning:
        message["reasoning_content"] = reasoning
    _place_signatures(parts, message)
    return message


def _thought_text(thinking: neutral.Thinking) -> str:
    """The thought's text, else its summaries (what OpenAI Responses shows of reasoning)."""
    return thinking.text or "\n\n".join(thinking.summary or [])


def tool_call_object(call: neutral.ToolCall) -> dict[str, Any]:
    if call.tool_kind == "custom":
        return {
            "id": call.id,
            "type": "custom",
            "custom": {"name": call.name, "input": custom_input(call.arguments)},
        }
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": dump_arguments(call.arguments)},
    }


def custom_input(arguments: dict[str, Any] | str) -> str:
    """A freeform tool's input: the `input` string an upstream function call carried."""
    if isinstance(arguments, str):
        return arguments
    value = arguments.get("input", "")
    return value if isinstance(value, str) else dump_arguments(arguments)


def _place_signatures(parts: list[neutral.Part], message: dict[str, Any]) -> None:
    """A signature right before a tool call rides on that call; the first other one on the
    message (Google puts a text answer's signature there; one only, since a second would be
    glued onto the first by clients that accumulate stream deltas)."""
    calls = iter(message.get("tool_calls") or [])
    loose: str | None = None
    for i, part in enumerate(parts):
        if isinstance(part, neutral.ToolCall):
            call = next(calls)
            previous = parts[i - 1] if i else None
            if isinstance(previous, neutral.Thinking) and previous.signature:
                call.update(signature_field(previous.signature))
        elif isinstance(part, neutral.Thinking) and part.signature and loose is None:
            following = parts[i + 1] if i + 1 < len(parts) else None
            if not isinstance(following, neutral.ToolCall):
                loose = part.signature
    if loose is not None:
        message.update(signature_field(loose))


# ---------------------------------------------------------------- upstream role: read


def read_response(payload: Any) -> neutral.Response:
    payload = expect_dict(payload, "answer")
    choices = expect_list(payload.get("choices"), "choices")
    if not choices:
        raise neutral.TranslationError("the answer has no choices", "choices")
    choice = expect_dict(choices[0], "choices[0]")
    message = expect_dict(choice.get("message") or {}, "choices[0].message")
    parts = read_message(message)
    has_calls = any(isinstance(p, neutral.ToolCall) for p in parts)
    reason = stop_reason(choice.get("finish_reason"), has_calls)
    if message.get("refusal") and reason == "end_turn":
        reason = "refusal"
    return neutral.Response(
        id=payload.get("id") or neutral.new_message_id(CHAT_ID_PREFIX),
        model=payload.get("model"),
        parts=parts,
        stop_reason=reason,
        usage=read_usage(payload.get("usage")),
    )


def read_message(message: dict[str, Any]) -> list[neutral.Part]:
    parts: list[neutral.Part] = []
    reasoning = reasoning_text(message)
    if reasoning:
        parts.append(neutral.Thinking(text=reasoning))
    signature = signature_of(message)
    if signature:
        parts.append(signed_thinking(signature))
    parts.extend(_text_parts(message.get("content")))
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        parts.append(neutral.Text(message["refusal"]))
    for call in message.get("tool_calls") or []:
        if isinstance(call, dict):
            parts.extend(_read_call(call))
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        parts.extend(_read_call({"type": "function", "function": legacy}))
    return parts


def _text_parts(content: Any) -> list[neutral.Text]:
    if isinstance(content, str):
        return [neutral.Text(content)] if content else []
    if isinstance(content, list):  # some servers answer with text parts
        texts = (p.get("text") for p in content if isinstance(p, dict))
        return [neutral.Text(t) for t in texts if isinstance(t, str) and t]
    return []


def _read_call(call: dict[str, Any]) -> list[neutral.Part]:
    call_id = call.get("id") or neutral.new_call_id()
    if call.get("type") == "custom":
        custom = call.get("custom") or {}
        tool_call = neutral.ToolCall(
            id=call_id,
            name=custom.get("name", ""),
            arguments={"input": custom.get("input", "")},
            tool_kind="custom",
        )
    else:
        function = call.get("function") or {}
        tool_call = neutral.ToolCall(
            id=call_id,
            name=function.get("name", ""),
            arguments=answer_arguments(function.get("arguments")),
        )
    signature = signature_of(call)
    return [signed_thinking(signature), tool_call] if signature else [tool_call]
