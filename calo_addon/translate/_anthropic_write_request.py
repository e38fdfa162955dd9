"""The neutral form written as an Anthropic Messages request (for the Anthropic API itself or,
reshaped by the Bedrock codec, for InvokeModel).

What the neutral form holds that Anthropic refuses is mapped rather than sent as is: consecutive
same-role turns merge, tool results lead their user message, unsigned thinking stays out,
tool ids are made Anthropic-safe, sampling settings thinking forbids are left out.
"""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from typing import Any

from . import neutral
from ._anthropic_answer import thinking_text
from ._anthropic_read_request import TOOL_CHOICE_IN
from ._anthropic_reasoning import write_reasoning
from .base import append_turn

_HOSTED = {"web_search": "web_search_20250305"}  # neutral hosted tool -> Anthropic server tool
_WEB_SEARCH_KEYS = ("allowed_domains", "blocked_domains", "max_uses", "user_location")
_TOOL_CHOICE_OUT = {mode: kind for kind, mode in TOOL_CHOICE_IN.items()}
_UNSAFE_ID = re.compile(r"[^a-zA-Z0-9_-]")


def write_request(request: neutral.Request) -> dict[str, Any]:
    """The Anthropic Messages body for a neutral request (model and stream included)."""
    body: dict[str, Any] = {}
    if request.model:
        body["model"] = request.model
    messages = _write_messages(request.messages)
    tools = [_write_tool(t) for t in request.tools] + _write_hosted(request.hosted_tools)
    tool_choice = _write_tool_choice(request.tool_choice) if tools else None
    forced = tool_choice is not None and tool_choice["type"] in ("any", "tool")
    thinking, effort, max_tokens = write_reasoning(request, forced_tool=forced)
    body["max_tokens"] = max_tokens
    system = [{"type": "text", "text": t.text} for t in request.system if t.text]
    if request.output_format is not None and request.output_format.schema is None:
        # Anthropic has no schemaless JSON mode: say it in the prompt rather than refuse.
        system.append({"type": "text", "text": "Answer with one JSON object and nothing else."})
    if system:
        body["system"] = system
    body["messages"] = messages
    if tools:
        body["tools"] = tools
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    if thinking is not None:
        body["thinking"] = thinking
    _write_sampling(
        request, body, thinking_on=thinking is not None and thinking["type"] != "disabled"
    )
    output_config = _write_output_config(request.output_format, effort)
    if output_config:
        body["output_config"] = output_config
    if request.stream:
        body["stream"] = True
    return body


def _write_sampling(request: neutral.Request, body: dict[str, Any], thinking_on: bool) -> None:
    """Sampling settings. With thinking on, Anthropic takes no temperature or top_k and only a
    top_p of 0.95 or more: those are left out rather than have the request refused."""
    if request.temperature is not None and not thinking_on:
        body["temperature"] = request.temperature
    if request.top_p is not None and (not thinking_on or request.top_p >= 0.95):
        body["top_p"] = request.top_p
    if request.top_k is not None and not thinking_on:
        body["top_k"] = request.top_k
    if request.stop:
        body["stop_sequences"] = list(request.stop)


def _write_output_config(fmt: neutral.OutputFormat | None, effort: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if effort is not None:
        out["effort"] = effort
    if fmt is not None and fmt.schema is not None:
        out["format"] = {"type": "json_schema", "schema": fmt.schema}
    return out


def _write_messages(messages: list[neutral.Message]) -> list[dict[str, Any]]:
    """Messages with consecutive same-role turns merged (parallel tool results then share one
    user message) and, in a user message, tool results first, as Anthropic requires."""
    out: list[dict[str, Any]] = []
    for message in messages:
        parts = _rejoin_thinking(message.parts)
        append_turn(
            out, message.role, [b for part in parts if (b := _write_part(part, message.role))]
        )
    for turn in out:
        if turn["role"] == "user":
            turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    return out


def _rejoin_thinking(parts: list[neutral.Part]) -> list[neutral.Part]:
    """Thought text followed by a signature that came apart from it is one thinking block
    again: a Chat client returns Anthropic's thinking as `reasoning_content` and its
    signature on the tool call, and Anthropic's signature covers that text."""
    out: list[neutral.Part] = []
    for part in parts:
        previous = out[-1] if out else None
        if (
            isinstance(part, neutral.Thinking)
            and part.signature
            and not part.text
            and not part.redacted
            and isinstance(previous, neutral.Thinking)
            and thinking_text(previous)
            and not previous.signature
            and not previous.redacted
        ):
            out[-1] = replace(previous, signature=part.signature, attached=False)
        else:
            out.append(part)
    return out


def _write_part(part: neutral.Part, role: str) -> dict[str, Any] | None:
    if isinstance(part, neutral.Text):
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, neutral.Media):
        return write_media(part) if role == "user" else None
    if isinstance(part, neutral.Thinking):
        return _write_thinking(part) if role == "assistant" else None
    if isinstance(part, neutral.ToolCall):
        return {
            "type": "tool_use",
            "id": safe_id(part.id),
            "name": part.name,
            "input": part.arguments,
        }
    return _write_tool_result(part)


def _write_thinking(part: neutral.Thinking) -> dict[str, Any] | None:
    """A thinking block goes back only with its signature (Anthropic refuses unsigned ones);
    an empty text with a signature still goes (a Gemini thought signature riding through)."""
    if part.redacted:
        return {"type": "redacted_thinking", "data": part.signature or ""}
    if not part.signature:
        return None
    return {"type": "thinking", "thinking": thinking_text(part), "signature": part.signature}


def _write_tool_result(part: neutral.ToolResult) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": safe_id(part.id)}
    content = [b for p in part.content if (b := _write_part(p, "user"))]
    if len(content) == 1 and content[0]["type"] == "text":
        block["content"] = content[0]["text"]
    elif content:
        block["content"] = content
    if part.is_error:
        block["is_error"] = True
    return block


def safe_id(call_id: str) -> str:
    """Anthropic tool ids match ^[a-zA-Z0-9_-]+$; other protocols' ids may not (the same id
    maps to the same safe id, so a call and its result still meet)."""
    return _UNSAFE_ID.sub("_", call_id) or "call"


def write_media(part: neutral.Media) -> dict[str, Any]:
    media_type = part.media_type or _guess_media_type(part.url)
    if part.data is None and not (part.url or "").startswith(("http://", "https://")):
        raise neutral.Unsupported("media url (Anthropic fetches only http(s) urls)")
    if media_type == "text/plain":
        if part.data is None:
            raise neutral.Unsupported("text document url")
        text = base64.b64decode(part.data).decode("utf-8", "replace")
        source: dict[str, Any] = {"type": "text", "media_type": "text/plain", "data": text}
        return _document(source, part.name)
    if part.data is not None:
        source = {"type": "base64", "media_type": media_type, "data": part.data}
    else:
        source = {"type": "url", "url": part.url}
    if media_type == "application/pdf":
        return _document(source, part.name)
    if media_type is None or media_type.startswith("image/"):
        return {"type": "image", "source": source}
    raise neutral.Unsupported(f"media type {media_type}")


def _document(source: dict[str, Any], title: str | None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "document", "source": source}
    if title:
        block["title"] = title
    return block


def _guess_media_type(url: str | None) -> str | None:
    path = (url or "").split("?")[0].lower()
    return "application/pdf" if path.endswith(".pdf") else None


def _write_tool(tool: neutral.Tool) -> dict[str, Any]:
    """A tool with its JSON Schema whole. A freeform (custom) tool becomes a function taking
    one string, `input`; the client's codec turns the call back into its custom call."""
    if tool.tool_kind == "custom":
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {"input": {"type": "string"}},
            "required": ["input"],
        }
    else:
        schema = tool.parameters or {"type": "object", "properties": {}}
        if "type" not in schema:  # Anthropic requires an object schema; add only the type
            schema = {"type": "object", **schema}
    out: dict[str, Any] = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    out["input_schema"] = schema
    if tool.strict is not None:
        out["strict"] = tool.strict
    return out


def _write_hosted(hosted: list[neutral.HostedTool]) -> list[dict[str, Any]]:
    """Server tools Anthropic has (web search, with the settings it knows); others have no
    equivalent and are left out."""
    out = []
    for tool in hosted:
        if tool.name in _HOSTED:
            config = {k: v for k, v in tool.config.items() if k in _WEB_SEARCH_KEYS}
            out.append({"type": _HOSTED[tool.name], "name": tool.name, **config})
    return out


def _write_tool_choice(choice: neutral.ToolChoice | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    out: dict[str, Any] = {"type": _TOOL_CHOICE_OUT[choice.mode]}
    if choice.mode == "tool":
        out["name"] = choice.name
    if choice.parallel is not None and choice.mode != "none":
        out["disable_parallel_tool_use"] = not choice.parallel
    return out
