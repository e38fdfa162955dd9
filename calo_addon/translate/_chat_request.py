"""Client role: a Chat Completions request (as the openai SDK, opencode, aider or LangChain send
it) read into the neutral form.

Messages become neutral turns: system and developer messages join `Request.system` in order;
consecutive `tool` (and legacy `function`) messages become one user turn of ToolResults;
an assistant's `reasoning_content` becomes a Thinking part and a tool call's
`extra_content.google.thought_signature` a signed Thinking right before that call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import neutral
from ._chat_common import (
    optional_int,
    parse_arguments,
    reasoning_text,
    signature_of,
    signed_thinking,
)
from ._chat_settings import read_settings
from .media import guess_media_type, parse_data_url, url_media
from .neutral import Unsupported, expect_dict, expect_list, expect_str


def read_request(body: Any) -> neutral.Request:
    body = expect_dict(body, "body")
    model = body.get("model")
    request = neutral.Request(
        model=expect_str(model, "model") if model is not None else None,
        stream=body.get("stream") is True,
    )
    if optional_int(body, "n") not in (None, 1):
        raise Unsupported("more than one choice ('n') is not supported here", "n")
    _read_messages(expect_list(body.get("messages"), "messages"), request)
    read_settings(body, request)
    return request


# ---------------------------------------------------------------- messages


class _History:
    """Reading state across messages: the user turn tool results gather into, and legacy
    `function_call`s still waiting for their `function` result (they have no ids)."""

    def __init__(self, request: neutral.Request):
        self.request = request
        self.results: neutral.Message | None = None
        self.unanswered: dict[str, list[str]] = {}
        self.seen_conversation = False

    def add(self, message: neutral.Message) -> None:
        self.results = None
        self.seen_conversation = True
        self.request.messages.append(message)

    def add_user(self, parts: Sequence[neutral.Part]) -> None:
        """A user message right after tool results joins their turn, as Anthropic and Gemini
        keep it (results, then what the user adds)."""
        if self.results is not None:
            self.results.parts.extend(parts)
            self.results = None
        else:
            self.add(neutral.Message("user", list(parts)))

    def add_result(self, result: neutral.ToolResult) -> None:
        if self.results is None:
            self.add(neutral.Message("user"))
            self.results = self.request.messages[-1]
        self.results.parts.append(result)


def _read_messages(messages: list[Any], request: neutral.Request) -> None:
    history = _History(request)
    for i, message in enumerate(messages):
        field = f"messages[{i}]"
        message = expect_dict(message, field)
        role = message.get("role")
        if role in ("system", "developer"):
            _read_system(message, field, history)
        elif role == "user":
            history.add_user(_content_parts(message.get("content"), field))
        elif role == "assistant":
            history.add(neutral.Message("assistant", _assistant_parts(message, field, history)))
        elif role == "tool":
            history.add_result(_tool_result(message, field))
        elif role == "function":
            history.add_result(_function_result(message, field, history))
        else:
            raise neutral.TranslationError(f"'{field}.role' is not a known role", f"{field}.role")
        if message.get("name") is not None and role != "function":
            _drop(request, "messages[].name")  # a participant's name: advisory
    neutral.fill_tool_names(request.messages)


def _read_system(message: dict[str, Any], field: str, history: _History) -> None:
    """System and developer text joins the system prompt in order; one that came after the
    conversation started is moved there, and `extra["moved_system"]` says which."""
    parts = _content_parts(message.get("content"), field, text_only=True)
    history.request.system.extend(p for p in parts if isinstance(p, neutral.Text))
    if history.seen_conversation:
        history.request.extra.setdefault("moved_system", []).append(field)


def _drop(request: neutral.Request, name: str) -> None:
    if name not in request.dropped:
        request.dropped.append(name)


# ---------------------------------------------------------------- content

_EMPTY = neutral.Text("")


def _content_parts(
    content: Any, field: str, text_only: bool = False
) -> list[neutral.Text | neutral.Media]:
    """A message's content: a string, or a list of typed parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [neutral.Text(content)]
    parts = expect_list(content, f"{field}.content")
    return [
        _content_part(expect_dict(part, f"{field}.content[{j}]"), f"{field}.content[{j}]")
        for j, part in enumerate(parts)
        if not (text_only and isinstance(part, dict) and part.get("type") != "text")
    ]


def _content_part(part: dict[str, Any], field: str) -> neutral.Text | neutral.Media:
    kind = part.get("type")
    if kind == "text":
        return neutral.Text(expect_str(part.get("text"), f"{field}.text"))
    if kind == "refusal":  # an assistant's refusal sent back in history
        return neutral.Text(expect_str(part.get("refusal"), f"{field}.refusal"))
    if kind == "image_url":
        return _image(expect_dict(part.get("image_url"), f"{field}.image_url"), field)
    if kind == "file":
        return _file(expect_dict(part.get("file"), f"{field}.file"), field)
    if kind == "input_audio":
        raise Unsupported("audio input is not supported by this route", f"{field}.input_audio")
    raise neutral.TranslationError(f"'{field}.type' is not a known content type", f"{field}.type")


def _image(image: dict[str, Any], field: str) -> neutral.Media:
    url = expect_str(image.get("url"), f"{field}.image_url.url")
    return url_media(url, image.get("detail"), f"{field}.image_url.url")


def _file(file: dict[str, Any], field: str) -> neutral.Media:
    """Inline files only: a `file_id` names an upload in OpenAI's storage, out of reach."""
    name = file.get("filename")
    if file.get("file_data") is None:
        raise Unsupported("uploaded files ('file_id') are not supported", f"{field}.file.file_id")
    data = expect_str(file.get("file_data"), f"{field}.file.file_data")
    if data.startswith("data:"):
        media_type, data = parse_data_url(data, f"{field}.file.file_data")
    else:  # raw base64, as some clients send it
        media_type = guess_media_type(name, data)
    return neutral.Media(media_type=media_type, data=data, name=name)


# ---------------------------------------------------------------- assistant turns


def _assistant_parts(message: dict[str, Any], field: str, history: _History) -> list[neutral.Part]:
    """Reasoning first (it came first), then text, then each tool call after its signature.
    A signature on the message itself (Google's, when no tool call carried it) signs the
    reasoning if there is some, else stands alone before the text."""
    parts: list[neutral.Part] = []
    reasoning, signature = reasoning_text(message), signature_of(message)
    if reasoning is not None or signature is not None:
        parts.append(
            neutral.Thinking(text=reasoning or "", signature=signature, attached=reasoning is None)
        )
    # clients send `content: ""` beside tool calls; an empty text part means nothing (and
    # Anthropic refuses empty text blocks)
    parts.extend(p for p in _content_parts(message.get("content"), field) if p != _EMPTY)
    calls = message.get("tool_calls")
    if calls is not None:
        for k, call in enumerate(expect_list(calls, f"{field}.tool_calls")):
            parts.extend(_tool_call(expect_dict(call, f"{field}.tool_calls[{k}]"), field, k))
    if message.get("function_call") is not None:
        parts.append(_legacy_call(message["function_call"], f"{field}.function_call", history))
    return parts


def _tool_call(call: dict[str, Any], field: str, k: int) -> list[neutral.Part]:
    field = f"{field}.tool_calls[{k}]"
    call_id = expect_str(call.get("id"), f"{field}.id")
    if call.get("type") == "custom":
        custom = expect_dict(call.get("custom"), f"{field}.custom")
        tool_call = neutral.ToolCall(
            id=call_id,
            name=expect_str(custom.get("name"), f"{field}.custom.name"),
            arguments={"input": expect_str(custom.get("input"), f"{field}.custom.input")},
            tool_kind="custom",
        )
    else:
        function = expect_dict(call.get("function"), f"{field}.function")
        tool_call = neutral.ToolCall(
            id=call_id,
            name=expect_str(function.get("name"), f"{field}.function.name"),
            arguments=parse_arguments(function.get("arguments"), f"{field}.function.arguments"),
        )
    signature = signature_of(call)
    return [signed_thinking(signature), tool_call] if signature else [tool_call]


def _legacy_call(value: Any, field: str, history: _History) -> neutral.ToolCall:
    function = expect_dict(value, field)
    name = expect_str(function.get("name"), f"{field}.name")
    call = neutral.ToolCall(
        id=neutral.new_call_id(),
        name=name,
        arguments=parse_arguments(function.get("arguments", ""), f"{field}.arguments"),
    )
    history.unanswered.setdefault(name, []).append(call.id)
    return call


# ---------------------------------------------------------------- tool results


def _tool_result(message: dict[str, Any], field: str) -> neutral.ToolResult:
    return neutral.ToolResult(
        id=expect_str(message.get("tool_call_id"), f"{field}.tool_call_id"),
        content=_result_content(message, field),
    )


def _result_content(message: dict[str, Any], field: str) -> list[neutral.Text | neutral.Media]:
    """A tool's output; an empty one is no content rather than an empty text part."""
    return [p for p in _content_parts(message.get("content"), field) if p != _EMPTY]


def _function_result(message: dict[str, Any], field: str, history: _History) -> neutral.ToolResult:
    """A legacy `function` message answers the oldest unanswered call of that name."""
    name = expect_str(message.get("name"), f"{field}.name")
    waiting = history.unanswered.get(name)
    call_id = waiting.pop(0) if waiting else neutral.new_call_id()
    return neutral.ToolResult(id=call_id, name=name, content=_result_content(message, field))
