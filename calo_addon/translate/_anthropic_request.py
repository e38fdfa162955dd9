"""Anthropic Messages requests: read one into the neutral form, write the neutral form as one.

Reading keeps everything the neutral form has a place for and names the rest in
`Request.dropped` (advisory: prompt-cache hints, metadata, context management, server tools
other than web search ...). A few Anthropic-only details ride in `Request.extra` so that an
Anthropic (or Bedrock InvokeModel) upstream gets them back: `anthropic_thinking` ("adaptive"),
`anthropic_display` (thinking display), `anthropic_effort` (output_config.effort as sent).
"""

from __future__ import annotations

import base64
import re
from typing import Any

from . import neutral
from ._anthropic_answer import thinking_text
from ._anthropic_reasoning import read_reasoning, write_reasoning

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
_HOSTED = {"web_search": "web_search_20250305"}  # neutral hosted tool -> Anthropic server tool
_WEB_SEARCH_KEYS = ("allowed_domains", "blocked_domains", "max_uses", "user_location")
_TOOL_CHOICE_IN = {"auto": "auto", "any": "required", "tool": "tool", "none": "none"}
_TOOL_CHOICE_OUT = {mode: kind for kind, mode in _TOOL_CHOICE_IN.items()}
_UNSAFE_ID = re.compile(r"[^a-zA-Z0-9_-]")


class _Dropped(list[str]):
    def add(self, name: str) -> None:
        if name not in self:
            self.append(name)


# ================================================================ reading


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
    texts = []
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
    if not isinstance(choice, dict) or choice.get("type") not in _TOOL_CHOICE_IN:
        raise neutral.TranslationError("tool_choice type must be auto|any|tool|none", "tool_choice")
    disable = choice.get("disable_parallel_tool_use")
    return neutral.ToolChoice(
        mode=_TOOL_CHOICE_IN[choice["type"]],  # type: ignore[arg-type]
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


# ================================================================ writing


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
        blocks = [b for part in message.parts if (b := _write_part(part, message.role))]
        if not blocks:
            continue
        if out and out[-1]["role"] == message.role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": message.role, "content": blocks})
    for message in out:
        if message["role"] == "user":
            message["content"].sort(key=lambda block: block["type"] != "tool_result")
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
