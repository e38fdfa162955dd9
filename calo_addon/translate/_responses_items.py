"""Responses items <-> neutral turns: the conversation items of `input` and `output`.

A Responses conversation is one flat list of items (messages, reasoning, function calls and
their outputs); the neutral form groups consecutive items of one side into a user or an
assistant turn. Content parts and reasoning items are converted in _responses_content.py.
"""

from __future__ import annotations

import json
from typing import Any

from . import neutral
from ._responses_content import (
    mark_attached,
    read_content,
    read_reasoning,
    write_content_part,
    write_reasoning,
)
from ._responses_custom import custom_input

_RESULT_ITEMS = ("function_call_output", "custom_tool_call_output")


# ---------------------------------------------------------------- tool calls


def parse_arguments(arguments: Any, field: str) -> dict[str, Any]:
    """A function call's JSON-text arguments -> a dict (empty text is no arguments)."""
    if isinstance(arguments, dict):
        return arguments
    if arguments in (None, ""):
        return {}
    try:
        value = json.loads(arguments)
    except (TypeError, ValueError):
        raise neutral.TranslationError(f"{field} is not valid JSON", field) from None
    if not isinstance(value, dict):
        raise neutral.TranslationError(f"{field} must be a JSON object", field)
    return value


def _read_call(item: dict[str, Any], field: str) -> neutral.ToolCall:
    call_id, name = item.get("call_id"), item.get("name")
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise neutral.TranslationError(f"{field} needs call_id and name", field)
    if item["type"] == "custom_tool_call":
        raw = item.get("input")
        if not isinstance(raw, str):
            raise neutral.TranslationError(f"{field}.input must be a string", field)
        return neutral.ToolCall(call_id, name, {"input": raw}, tool_kind="custom")
    return neutral.ToolCall(call_id, name, parse_arguments(item.get("arguments"), field))


def _read_result(item: dict[str, Any], field: str) -> neutral.ToolResult:
    call_id = item.get("call_id")
    if not isinstance(call_id, str):
        raise neutral.TranslationError(f"{field}.call_id is required", field)
    return neutral.ToolResult(call_id, read_content(item.get("output", ""), f"{field}.output"))


# ---------------------------------------------------------------- item lists (read)


def read_items(
    items: list[Any], system: list[neutral.Text], dropped: list[str]
) -> list[neutral.Message]:
    """Input (or output) items -> turns; system/developer messages join `system` in order."""
    messages: list[neutral.Message] = []
    for i, item in enumerate(items):
        field = f"input[{i}]"
        if not isinstance(item, dict):
            raise neutral.TranslationError(f"{field} must be an object", field)
        role, parts = _read_item(item, field, system, dropped)
        if not parts:
            continue
        if messages and messages[-1].role == role:
            messages[-1].parts.extend(parts)
        else:
            messages.append(neutral.Message(role, list(parts)))
    for message in messages:
        if message.role == "assistant":
            mark_attached(message.parts)
    neutral.fill_tool_names(messages)
    return messages


def _read_item(
    item: dict[str, Any], field: str, system: list[neutral.Text], dropped: list[str]
) -> tuple[neutral.Role, list[neutral.Part]]:
    kind = item.get("type", "message")
    if kind == "message":
        return _read_message(item, field, system)
    if kind in ("function_call", "custom_tool_call"):
        return "assistant", [_read_call(item, field)]
    if kind in _RESULT_ITEMS:
        return "user", [_read_result(item, field)]
    if kind == "reasoning":
        thinking = read_reasoning(item)
        empty = not thinking.text and thinking.signature is None  # nothing to pass on
        return "assistant", [] if empty else [thinking]
    if kind == "item_reference":
        raise neutral.TranslationError(
            f"{field}: item_reference needs items stored at OpenAI; send the items themselves",
            field,
        )
    note(dropped, f"input.{kind}")
    return "user", []


def _read_message(
    item: dict[str, Any], field: str, system: list[neutral.Text]
) -> tuple[neutral.Role, list[neutral.Part]]:
    role = item.get("role")
    parts = read_content(item.get("content", ""), f"{field}.content")
    if role in ("system", "developer"):
        if any(not isinstance(p, neutral.Text) for p in parts):
            raise neutral.TranslationError(f"{field}: {role} messages take text only", field)
        system.extend(p for p in parts if isinstance(p, neutral.Text))
        return "user", []
    if role not in ("user", "assistant"):
        raise neutral.TranslationError(f"{field}.role {role!r} is not supported", field)
    return role, list(parts)


def note(dropped: list[str], name: str) -> None:
    """Name a dropped field once."""
    if name not in dropped:
        dropped.append(name)


# ---------------------------------------------------------------- item lists (write, input)


def write_input_items(messages: list[neutral.Message]) -> list[dict[str, Any]]:
    """Turns -> input items, as a client sending its whole history (store false) does."""
    custom_ids = {
        p.id
        for m in messages
        for p in m.parts
        if isinstance(p, neutral.ToolCall) and p.tool_kind == "custom"
    }
    items: list[dict[str, Any]] = []
    for message in messages:
        pending: list[dict[str, Any]] = []
        for part in message.parts:
            if isinstance(part, neutral.Text | neutral.Media):
                pending.append(write_content_part(part, message.role))
                continue
            _flush(items, pending, message.role)
            item = _input_item(part, custom_ids)
            if item is not None:
                items.append(item)
        _flush(items, pending, message.role)
    return items


def _flush(items: list[dict[str, Any]], pending: list[dict[str, Any]], role: str) -> None:
    if pending:
        items.append({"type": "message", "role": role, "content": list(pending)})
        pending.clear()


def _input_item(part: neutral.Part, custom_ids: set[str]) -> dict[str, Any] | None:
    if isinstance(part, neutral.Thinking):
        # Reasoning without encrypted_content cannot be replayed with store false.
        return write_reasoning(part, None) if part.signature else None
    if isinstance(part, neutral.ToolCall):
        return write_call(part, None, custom=part.tool_kind == "custom", status=None)
    if isinstance(part, neutral.ToolResult):
        kind = "custom_tool_call_output" if part.id in custom_ids else "function_call_output"
        return {"type": kind, "call_id": part.id, "output": write_output(part.content)}
    return None


def write_output(content: list[neutral.Text | neutral.Media]) -> str | list[dict[str, Any]]:
    """A tool result's content: a string when it is text only, else a list of parts."""
    if all(isinstance(p, neutral.Text) for p in content):
        return neutral.text_of(list(content))
    return [write_content_part(p, "user") for p in content]


def write_call(
    call: neutral.ToolCall, item_id: str | None, *, custom: bool, status: str | None
) -> dict[str, Any]:
    """A ToolCall -> a function_call item, or a custom_tool_call item for a freeform tool."""
    item: dict[str, Any] = {"type": "custom_tool_call" if custom else "function_call"}
    if item_id is not None:
        item["id"] = item_id
    item["call_id"] = call.id
    item["name"] = call.name
    if custom:
        item["input"] = custom_input(call.arguments)
    else:
        item["arguments"] = json.dumps(call.arguments, ensure_ascii=False)
    if status is not None:
        item["status"] = status
    return item


# ---------------------------------------------------------------- answer output items


def output_item(part: neutral.Part, custom_names: set[str]) -> dict[str, Any] | None:
    """One answer part -> one output item (ids fresh; None for what an answer cannot hold)."""
    if isinstance(part, neutral.Text):
        return message_item(neutral.new_message_id("msg_"), part.text, "completed")
    if isinstance(part, neutral.Thinking):
        return write_reasoning(part, neutral.new_message_id("rs_"))
    if isinstance(part, neutral.ToolCall):
        custom = part.tool_kind == "custom" or part.name in custom_names
        item_id = neutral.new_message_id("ctc_" if custom else "fc_")
        return write_call(part, item_id, custom=custom, status="completed")
    if (
        isinstance(part, neutral.Media)
        and part.data
        and (part.media_type or "").startswith("image/")
    ):
        item_id = neutral.new_message_id("ig_")
        return {
            "type": "image_generation_call",
            "id": item_id,
            "status": "completed",
            "result": part.data,
        }
    return None


def message_item(item_id: str, text: str | None, status: str) -> dict[str, Any]:
    """An assistant message item; `text` None for the empty item a stream opens with."""
    content = [] if text is None else [output_text(text)]
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": content,
    }


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def read_output(items: list[Any]) -> list[neutral.Part]:
    """An answer's output items -> parts (images from image_generation_call included)."""
    parts: list[neutral.Part] = []
    for i, item in enumerate(items):
        field = f"output[{i}]"
        if not isinstance(item, dict):
            raise neutral.TranslationError(f"{field} must be an object", field)
        if item.get("type") == "image_generation_call":
            if isinstance(item.get("result"), str):
                parts.append(neutral.Media(media_type="image/png", data=item["result"]))
            continue
        parts.extend(_read_item(item, field, [], [])[1])
    mark_attached(parts)
    return parts
