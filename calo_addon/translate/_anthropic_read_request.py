"""Anthropic Messages requests read into the neutral form.

Reading keeps everything the neutral form has a place for and names the rest in
`Request.dropped` (advisory: prompt-cache hints, metadata, context management, server tools
other than web search ...). A few Anthropic-only details ride in `Request.extra` so that an
Anthropic (or Bedrock InvokeModel) upstream gets them back: `anthropic_thinking` ("adaptive"),
`anthropic_display` (thinking display), `anthropic_effort` (output_config.effort as sent);
`system_messages` counts the `role: system` turns that joined the system prompt.
"""

from __future__ import annotations

import base64
from typing import Any

from . import neutral
from ._anthropic_reasoning import read_reasoning

_HANDLED = {
    "model",
    "messages",
    "system",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "stream",
    "tools",
    "tool_choice",
    "thinking",
    "output_format",
    "output_config",
}
# Keys of a custom tool the neutral form keeps; any other is advisory and named when dropped.
_TOOL_KEYS = {"name", "description", "input_schema", "type", "strict"}
TOOL_CHOICE_IN: dict[str, neutral.ToolChoiceMode] = {
    "auto": "auto",
    "any": "required",
    "tool": "tool",
    "none": "none",
}


class _Dropped(list[str]):
    def add(self, name: str) -> None:
        if name not in self:
            self.append(name)


def read_request(body: Any) -> neutral.Request:
    if not isinstance(body, dict):
        raise neutral.TranslationError("an Anthropic request must be a JSON object")
    dropped = _Dropped()
    request = neutral.Request(
        model=body.get("model"),
        max_tokens=body.get("max_tokens"),
        temperature=body.get("temperature"),
        top_p=body.get("top_p"),
        top_k=body.get("top_k"),
        stop=list(body.get("stop_sequences") or []),
        stream=bool(body.get("stream")),
    )
    request.system = _read_system(body.get("system"), dropped)
    request.messages = _read_messages(body.get("messages"), request, dropped)
    _read_tools(body.get("tools"), request, dropped)
    request.tool_choice = _read_tool_choice(body.get("tool_choice"))
    output_config = body.get("output_config") or {}
    if not isinstance(output_config, dict):
        raise neutral.TranslationError("output_config must be an object", "output_config")
    request.reasoning = read_reasoning(body.get("thinking"), output_config, request.extra)
    request.output_format = _read_output_format(body.get("output_format"), output_config)
    for key in output_config:
        if key not in ("effort", "format"):
            dropped.add(f"output_config.{key}")
    for key in body:
        if key not in _HANDLED:
            dropped.add(key)
    request.dropped = list(dropped)
    return request


def _read_system(system: Any, dropped: _Dropped) -> list[neutral.Text]:
    if system is None:
        return []
    if isinstance(system, str):
        return [neutral.Text(system)] if system else []
    if not isinstance(system, list):
        raise neutral.TranslationError("system must be a string or text blocks", "system")
    texts: list[neutral.Text] = []
    for block in system:
        parts = _read_block(block, dropped, "system")
        texts.extend(p for p in parts if isinstance(p, neutral.Text))
    return texts


def _read_messages(messages: Any, request: neutral.Request, dropped: _Dropped) -> list:
    """Messages in order; `role: system` turns (Claude Code sends one) join the system prompt."""
    if not isinstance(messages, list):
        raise neutral.TranslationError("messages must be a list", "messages")
    out: list[neutral.Message] = []
    for message in messages:
        if not isinstance(message, dict):
            raise neutral.TranslationError("a message must be an object", "messages")
        role = message.get("role")
        if role == "system":
            request.system.extend(_read_system(message.get("content"), dropped))
            request.extra["system_messages"] = request.extra.get("system_messages", 0) + 1
            continue
        if role not in ("user", "assistant"):
            raise neutral.TranslationError(f"unknown message role {role!r}", "messages.role")
        out.append(neutral.Message(role, _read_content(message.get("content"), dropped)))
    neutral.fill_tool_names(out)
    return out


def _read_content(content: Any, dropped: _Dropped) -> list[neutral.Part]:
    if isinstance(content, str):
        return [neutral.Text(content)]
    if not isinstance(content, list):
        raise neutral.TranslationError("content must be a string or blocks", "messages.content")
    return [part for block in content for part in _read_block(block, dropped, "messages")]


def _read_block(block: Any, dropped: _Dropped, where: str) -> list[neutral.Part]:
    """One content block -> its neutral parts (none for a block only Anthropic understands)."""
    if not isinstance(block, dict):
        raise neutral.TranslationError("a content block must be an object", f"{where}.content")
    if "cache_control" in block:
        dropped.add("cache_control")
    if block.get("citations"):
        dropped.add("citations")
    kind = block.get("type")
    if kind == "text":
        return [neutral.Text(str(block.get("text", "")))]
    if kind == "image":
        return [_read_source(block.get("source"), "image")]
    if kind == "document":
        return _read_document(block, dropped)
    if kind == "tool_use":
        args = block.get("input") or {}
        if not isinstance(args, dict):
            raise neutral.TranslationError("tool_use input must be an object", "tool_use.input")
        return [neutral.ToolCall(str(block.get("id")), str(block.get("name")), args)]
    if kind == "tool_result":
        return [_read_tool_result(block, dropped)]
    if kind == "thinking":
        return [neutral.Thinking(block.get("thinking") or "", block.get("signature") or None)]
    if kind == "redacted_thinking":
        return [neutral.Thinking(signature=block.get("data"), redacted=True)]
    dropped.add(str(kind))  # server_tool_use, web_search_tool_result, search_result, ...
    return []


def _read_source(source: Any, kind: str) -> neutral.Media:
    if not isinstance(source, dict):
        raise neutral.TranslationError(f"{kind} needs a source", f"{kind}.source")
    source_type = source.get("type")
    if source_type == "base64":
        return neutral.Media(media_type=source.get("media_type"), data=source.get("data"))
    if source_type == "url":
        media_type = "application/pdf" if kind == "document" else None
        return neutral.Media(media_type=media_type, url=source.get("url"))
    if source_type == "text":  # a plain-text document: neutral media data is base64
        data = base64.b64encode(str(source.get("data", "")).encode()).decode()
        return neutral.Media(media_type=source.get("media_type") or "text/plain", data=data)
    raise neutral.TranslationError(
        f"{kind} source type {source_type!r} cannot be translated", f"{kind}.source.type"
    )


def _read_document(block: dict[str, Any], dropped: _Dropped) -> list[neutral.Part]:
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "content":  # custom-content document
        return _read_content(source.get("content"), dropped)
    if block.get("context"):
        dropped.add("document.context")
    media = _read_source(source, "document")
    media.name = block.get("title")
    return [media]


def _read_tool_result(block: dict[str, Any], dropped: _Dropped) -> neutral.ToolResult:
    content = block.get("content")
    if content is None or content == "":
        parts = []
    else:
        parts = [
            p
            for p in _read_content(content, dropped)
            if isinstance(p, neutral.Text | neutral.Media)
        ]
    return neutral.ToolResult(
        id=str(block.get("tool_use_id")), content=parts, is_error=bool(block.get("is_error"))
    )


def _read_tools(tools: Any, request: neutral.Request, dropped: _Dropped) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise neutral.TranslationError("tools must be a list", "tools")
    for tool in tools:
        if not isinstance(tool, dict) or not tool.get("name"):
            raise neutral.TranslationError("a tool needs a name", "tools.name")
        kind = tool.get("type")
        if kind not in (None, "custom"):  # a server tool
            _read_server_tool(tool, request, dropped)
            continue
        for key in tool:
            if key not in _TOOL_KEYS:
                dropped.add(key)  # cache_control, defer_loading, input_examples, ...
        request.tools.append(
            neutral.Tool(
                name=tool["name"],
                description=tool.get("description"),
                parameters=tool.get("input_schema"),
                strict=tool.get("strict"),
            )
        )


def _read_server_tool(tool: dict[str, Any], request: neutral.Request, dropped: _Dropped) -> None:
    kind = str(tool["type"])
    if not kind.startswith("web_search_"):
        dropped.add(kind)
        return
    if "cache_control" in tool:
        dropped.add("cache_control")
    config = {k: v for k, v in tool.items() if k not in ("type", "name", "cache_control")}
    request.hosted_tools.append(neutral.HostedTool("web_search", config))


def _read_tool_choice(choice: Any) -> neutral.ToolChoice | None:
    if choice is None:
        return None
    if not isinstance(choice, dict) or choice.get("type") not in TOOL_CHOICE_IN:
        raise neutral.TranslationError("tool_choice type must be auto|any|tool|none", "tool_choice")
    disable = choice.get("disable_parallel_tool_use")
    return neutral.ToolChoice(
        mode=TOOL_CHOICE_IN[choice["type"]],
        name=choice.get("name"),
        parallel=None if disable is None else not disable,
    )


def _read_output_format(legacy: Any, output_config: dict[str, Any]) -> neutral.OutputFormat | None:
    """Structured output: `output_config.format` (GA) or the older beta `output_format`."""
    spec = output_config.get("format") or legacy
    if spec is None:
        return None
    if not isinstance(spec, dict) or spec.get("type") != "json_schema":
        raise neutral.TranslationError("output format type must be json_schema", "output_format")
    return neutral.OutputFormat(schema=spec.get("schema"))
