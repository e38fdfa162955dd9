"""Gemini content parts <-> neutral parts, shared by requests, answers and streams.

Reading: a part's `thoughtSignature` becomes a `Thinking(signature, attached=True)` placed right
before the part that carried it (on a thought part it stays on that part's own `Thinking`).
Writing: every signature goes back onto a part Gemini will accept it on (see `write_parts`).
The API takes camelCase and snake_case field names alike (the Python SDK mixes them), so
readers look fields up with `get`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from . import neutral
from .media import data_url_parts, sniff_media_type
from .neutral import expect_dict, expect_list

# What a written functionResponse wraps the tool's text in; readers also accept the documented
# "output" key, and "error" marks a failed call.
RESULT_KEY = "result"
_RESULT_KEYS = ("result", "output")
# Part fields the neutral form carries; others (videoMetadata, mediaResolution ...) are named.
_PART_FIELDS = (
    "text",
    "thought",
    "thoughtSignature",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
)

# Gemini's own file URIs (Files API, Cloud Storage) go as fileData; so do other URLs, which
# Gemini may refuse (that refusal is the upstream's answer, not ours to guess).


def get(obj: dict[str, Any], camel: str, default: Any = None) -> Any:
    """A field by its camelCase name or its snake_case twin (the API accepts both)."""
    if camel in obj:
        return obj[camel]
    return obj.get(snake(camel), default)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


# ---------------------------------------------------------------- reading


class CallIds:
    """Tool-call ids for a conversation whose calls may have none.

    A call keeps its `id` if Gemini gave one, else gets a fresh one. A functionResponse takes
    the id it names, else the id of the first unanswered call of the same name in the latest
    model turn: Gemini matches results to calls by name and order.
    """

    def __init__(self) -> None:
        self._unanswered: list[tuple[str, str]] = []  # (id, name) of the latest model turn

    def new_turn(self) -> None:
        self._unanswered = []

    def for_call(self, call: dict[str, Any]) -> str:
        call_id = call.get("id") or neutral.new_call_id()
        self._unanswered.append((call_id, call.get("name", "")))
        return call_id

    def for_result(self, result: dict[str, Any]) -> str:
        wanted_id, name = result.get("id"), result.get("name")
        for position, (call_id, call_name) in enumerate(self._unanswered):
            if call_id == wanted_id or (wanted_id is None and call_name == name):
                del self._unanswered[position]
                return call_id
        return wanted_id or neutral.new_call_id()


def read_parts(
    parts: list[Any], ids: CallIds, dropped: list[str] | None = None, where: str = "parts"
) -> list[neutral.Part]:
    """A content's parts in neutral form; part kinds with no neutral place are named in
    `dropped` (when given) and left out."""
    out: list[neutral.Part] = []
    for number, part in enumerate(expect_list(parts, where)):
        out.extend(read_part(expect_dict(part, f"{where}[{number}]"), ids, dropped))
    return out


def read_part(
    part: dict[str, Any], ids: CallIds, dropped: list[str] | None = None
) -> list[neutral.Part]:
    signature = get(part, "thoughtSignature")
    if get(part, "thought"):
        return [neutral.Thinking(text=part.get("text") or "", signature=signature)]
    out: list[neutral.Part] = []
    if signature:
        out.append(neutral.Thinking(signature=signature, attached=True))
    if dropped is not None:
        dropped.extend(f"parts.{camel(key)}" for key in part if camel(key) not in _PART_FIELDS)
    content = _content(part, ids)
    if content is None:
        return out
    if isinstance(content, neutral.Text) and not content.text and not signature:
        return out  # an empty text part says nothing
    out.append(content)
    return out


def _content(part: dict[str, Any], ids: CallIds) -> neutral.Part | None:
    if "text" in part:
        return neutral.Text(part["text"] or "")
    if (inline := get(part, "inlineData")) is not None:
        return neutral.Media(media_type=get(inline, "mimeType"), data=inline.get("data"))
    if (file := get(part, "fileData")) is not None:
        return neutral.Media(media_type=get(file, "mimeType"), url=get(file, "fileUri"))
    if (call := get(part, "functionCall")) is not None:
        return _tool_call(expect_dict(call, "functionCall"), ids)
    if (result := get(part, "functionResponse")) is not None:
        return _tool_result(expect_dict(result, "functionResponse"), ids)
    if (code := code_text(part)) is not None:
        return neutral.Text(code)
    return None


def code_text(part: dict[str, Any]) -> str | None:
    """Code Gemini ran for itself (the codeExecution tool) and its output, as fenced text: the
    neutral form has no part for them, and the client should still see what happened."""
    if (code := get(part, "executableCode")) is not None:
        language = str(code.get("language") or "").lower().replace("language_unspecified", "")
        return f"\n```{language}\n{code.get('code', '')}\n```\n"
    if (outcome := get(part, "codeExecutionResult")) is not None:
        return f"\n```\n{outcome.get('output', '')}\n```\n"
    return None


def _tool_call(call: dict[str, Any], ids: CallIds) -> neutral.ToolCall:
    name = call.get("name")
    if not isinstance(name, str) or not name:
        raise neutral.TranslationError("functionCall without a name", "functionCall.name")
    args = call.get("args") or {}
    return neutral.ToolCall(id=ids.for_call(call), name=name, arguments=expect_dict(args, "args"))


def _tool_result(result: dict[str, Any], ids: CallIds) -> neutral.ToolResult:
    response = result.get("response") or {}
    is_error = isinstance(response, dict) and set(response) == {"error"}
    if is_error:
        value = response["error"]
    elif isinstance(response, dict) and len(response) == 1 and set(response) <= {*_RESULT_KEYS}:
        value = next(iter(response.values()))
    else:
        value = response
    content: list[neutral.Text | neutral.Media] = []
    if value not in ("", None):
        content.append(neutral.Text(value if isinstance(value, str) else json.dumps(value)))
    for part in result.get("parts") or []:  # multimodal function responses (Gemini 3)
        media = _content(expect_dict(part, "functionResponse.parts"), ids)
        if isinstance(media, neutral.Media):
            content.append(media)
    return neutral.ToolResult(
        id=ids.for_result(result), content=content, name=result.get("name"), is_error=is_error
    )


# ---------------------------------------------------------------- writing


@dataclass
class _Signature:
    """A thought signature waiting for the part it belongs on."""

    value: str


def write_parts(
    parts: list[neutral.Part],
    names: dict[str, str],
    *,
    keep_thoughts: bool = False,
    call_ids: bool = False,
) -> list[dict[str, Any]]:
    """A message's parts as Gemini parts.

    Gemini wants each thought signature back on the part that carried it. A `Thinking` with a
    signature puts it on the next non-thought part of the message (the functionCall or text it
    preceded); if none follows, on the previous one; failing both, on an empty text part, as
    Gemini itself sends one. Thought text goes back only with `keep_thoughts` (answers to a
    Gemini client); Gemini does not take thought text in requests, so there it is dropped. In an
    answer, a signed `Thinking` that has text and was not attached keeps its signature on its
    own thought part, where the reader found it.
    """
    items: list[dict[str, Any] | _Signature] = []
    for part in parts:
        if isinstance(part, neutral.Thinking):
            items.extend(_thinking(part, keep_thoughts))
        else:
            items.extend(_write_part(part, names, call_ids))
    return _place_signatures(items)


def _thinking(thinking: neutral.Thinking, keep_thoughts: bool) -> list[dict[str, Any] | _Signature]:
    signature: list[dict[str, Any] | _Signature] = (
        [_Signature(thinking.signature)] if thinking.signature else []
    )
    if not keep_thoughts or not thinking.text:
        return signature
    part: dict[str, Any] = {"text": thinking.text, "thought": True}
    if signature and not thinking.attached:
        part["thoughtSignature"] = thinking.signature
        return [part]
    return [part, *signature]


def _place_signatures(items: list[dict[str, Any] | _Signature]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    owed: list[tuple[str, int]] = []  # (signature, index of the part that follows it)
    for item in items:
        if isinstance(item, _Signature):
            owed.append((item.value, len(parts)))
        else:
            parts.append(item)
    # Last first, so an inserted empty part never shifts a position still to be used.
    for signature, position in reversed(owed):
        target = _free_part(parts, range(position, len(parts)))
        if target is None:
            target = _free_part(parts, range(position - 1, -1, -1))
        if target is None:
            parts.insert(position, {"text": ""})
            target = position
        parts[target]["thoughtSignature"] = signature
    return [p for p in parts if p != {"text": ""}]  # Gemini refuses empty unsigned text


def _free_part(parts: list[dict[str, Any]], positions: range) -> int | None:
    for position in positions:
        part = parts[position]
        if not part.get("thought") and "thoughtSignature" not in part:
            return position
    return None


def _write_part(part: neutral.Part, names: dict[str, str], call_ids: bool) -> list[dict[str, Any]]:
    if isinstance(part, neutral.Text):
        return [{"text": part.text}]
    if isinstance(part, neutral.Media):
        return [media_part(part)]
    if isinstance(part, neutral.ToolCall):
        call: dict[str, Any] = {"name": part.name, "args": part.arguments}
        if call_ids:
            call["id"] = part.id
        return [{"functionCall": call}]
    if isinstance(part, neutral.ToolResult):
        return _function_response(part, names)
    raise neutral.TranslationError(f"no Gemini part for {type(part).__name__}", "parts")


def _function_response(result: neutral.ToolResult, names: dict[str, str]) -> list[dict[str, Any]]:
    """A functionResponse (Gemini matches it to its call by name and order, so no id), then the
    result's images as inlineData parts right after it in the same turn."""
    name = result.name or names.get(result.id)
    if not name:
        raise neutral.TranslationError(
            f"tool result {result.id!r} answers no known tool call", "messages"
        )
    text = neutral.text_of(list(result.content))
    response = {"error" if result.is_error else RESULT_KEY: text}
    media = [media_part(p) for p in result.content if isinstance(p, neutral.Media)]
    return [{"functionResponse": {"name": name, "response": response}}, *media]


def media_part(media: neutral.Media) -> dict[str, Any]:
    """inlineData for base64 data (a data: URL included), else fileData with the URL as
    fileUri: Gemini's own file URIs (gs://, generativelanguage Files API), and other http(s)
    URLs, which Gemini may refuse when they are not Google's; that is the upstream's answer."""
    data, mime = media.data, media.media_type
    if data is None and media.url and (inline := data_url_parts(media.url)):
        mime, data = mime or inline[0], inline[1]
    if data is not None:
        mime = mime or sniff_media_type(data) or "application/octet-stream"  # Gemini needs one
        return {"inlineData": {"mimeType": mime, "data": data}}
    if not media.url:
        raise neutral.TranslationError("media without data or url", "parts")
    file: dict[str, Any] = {"fileUri": media.url}
    if mime:
        file["mimeType"] = mime
    return {"fileData": file}
