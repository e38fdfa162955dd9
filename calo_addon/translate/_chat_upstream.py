"""Upstream role: the neutral request written for an OpenAI-compatible server (vLLM, Ollama,
llama.cpp, Google's /v1beta/openai/ layer, OpenAI itself).

What every such server takes, and nothing more:
- one system message, first (the `developer` role is not universally supported);
- tool results as `tool` messages, one per result in order, right after the assistant's
  tool calls; images a tool returned (tool messages carry text only) follow in one user
  message;
- thinking is not sent back (DeepSeek refuses `reasoning_content` in requests), except a
  Gemini-style signature (a Thinking marked `attached`) on the tool call that follows it,
  as `extra_content.google.thought_signature`, Google's own convention;
- custom (freeform) tools become functions with one string parameter `input`;
- `max_completion_tokens` (OpenAI's reasoning models refuse `max_tokens`);
- reasoning as `reasoning_effort`; thinking switched off sends nothing, since models without
  reasoning refuse the parameter;
- hosted tools and `top_k` have no Chat equivalent: they are left out and named in
  `Request.dropped`.
"""

from __future__ import annotations

from typing import Any

from . import neutral
from ._chat_common import dump_arguments, signature_field
from .media import data_url

_IMAGE_PREFIX = "image/"


def write_request(request: neutral.Request) -> dict[str, Any]:
    body: dict[str, Any] = {"model": request.model, "messages": _messages(request)}
    if request.tools:
        body["tools"] = [_tool(tool) for tool in request.tools]
        _write_tool_choice(request.tool_choice, body)
    for hosted in request.hosted_tools:
        _drop(request, f"hosted_tools.{hosted.name}")
    _write_limits(request, body)
    effort = _effort(request.reasoning)
    if effort:
        body["reasoning_effort"] = effort
    if request.output_format is not None:
        body["response_format"] = _response_format(request.output_format)
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}  # else no usage comes back
    return body


def _drop(request: neutral.Request, name: str) -> None:
    if name not in request.dropped:
        request.dropped.append(name)


# ---------------------------------------------------------------- messages


def _messages(request: neutral.Request) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append(
            {"role": "system", "content": "\n\n".join(part.text for part in request.system)}
        )
    for message in request.messages:
        if message.role == "assistant":
            messages.append(_assistant(message.parts))
        else:
            messages.extend(_user(message.parts))
    return messages


def _user(parts: list[neutral.Part]) -> list[dict[str, Any]]:
    """Tool results first (Chat wants them right after the calls), then the rest."""
    out: list[dict[str, Any]] = []
    rest: list[neutral.Part] = []
    for part in parts:
        if isinstance(part, neutral.ToolResult):
            out.append(_tool_message(part))
            rest.extend(p for p in part.content if isinstance(p, neutral.Media))
        elif isinstance(part, neutral.Text | neutral.Media):
            rest.append(part)
    if rest:
        out.append({"role": "user", "content": _content(rest)})
    return out


def _tool_message(result: neutral.ToolResult) -> dict[str, Any]:
    text = "\n".join(p.text for p in result.content if isinstance(p, neutral.Text))
    return {"role": "tool", "tool_call_id": result.id, "content": text}


def _content(parts: list[neutral.Part]) -> str | list[dict[str, Any]]:
    """A lone text as a plain string (every server takes that), else typed parts."""
    if len(parts) == 1 and isinstance(parts[0], neutral.Text):
        return parts[0].text
    return [_content_part(part) for part in parts if isinstance(part, neutral.Text | neutral.Media)]


def _content_part(part: neutral.Text | neutral.Media) -> dict[str, Any]:
    if isinstance(part, neutral.Text):
        return {"type": "text", "text": part.text}
    is_image = part.media_type is None or part.media_type.startswith(_IMAGE_PREFIX)
    if part.data is not None and not is_image:
        extension = part.media_type.rsplit("/", 1)[-1] if part.media_type else "bin"
        return {
            "type": "file",
            "file": {
                "file_data": data_url(part.media_type, part.data, "image/png"),
                "filename": part.name or f"file.{extension}",
            },
        }
    if part.data is None and not is_image:
        raise neutral.Unsupported(
            "a document by URL cannot be sent to an OpenAI-compatible upstream", "document.url"
        )
    image: dict[str, Any] = {
        "url": data_url(part.media_type, part.data, "image/png")
        if part.data is not None
        else part.url
    }
    if part.detail:
        image["detail"] = part.detail
    return {"type": "image_url", "image_url": image}


def _assistant(parts: list[neutral.Part]) -> dict[str, Any]:
    text = "".join(p.text for p in parts if isinstance(p, neutral.Text))
    calls = []
    for i, part in enumerate(parts):
        if isinstance(part, neutral.ToolCall):
            call = _tool_call(part)
            previous = parts[i - 1] if i else None
            if isinstance(previous, neutral.Thinking) and previous.attached and previous.signature:
                call.update(signature_field(previous.signature))
            calls.append(call)
    message: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_call(call: neutral.ToolCall) -> dict[str, Any]:
    """A custom tool's call goes back as the function it was declared as (see `_tool`)."""
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": dump_arguments(call.arguments)},
    }


# ---------------------------------------------------------------- tools and settings


def _tool(tool: neutral.Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description:
        function["description"] = tool.description
    if tool.tool_kind == "custom":
        function["parameters"] = _custom_parameters(tool)
    else:
        function["parameters"] = tool.parameters or {"type": "object", "properties": {}}
        if tool.strict is not None:
            function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _custom_parameters(tool: neutral.Tool) -> dict[str, Any]:
    """A freeform tool as a function of one string, `input`; a grammar the client declared
    (Codex's apply_patch is lark) is told to the model in the parameter's description."""
    prop: dict[str, Any] = {"type": "string"}
    grammar = (tool.format or {}).get("grammar") or {}
    if isinstance(grammar, dict) and grammar.get("definition"):
        syntax = grammar.get("syntax", "grammar")
        prop["description"] = f"Follows this {syntax} grammar:\n{grammar['definition']}"
    return {
        "type": "object",
        "properties": {"input": prop},
        "required": ["input"],
        "additionalProperties": False,
    }


def _write_tool_choice(choice: neutral.ToolChoice | None, body: dict[str, Any]) -> None:
    if choice is None:
        return
    if choice.mode == "tool":
        body["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    else:
        body["tool_choice"] = choice.mode
    if choice.parallel is not None:
        body["parallel_tool_calls"] = choice.parallel


def _write_limits(request: neutral.Request, body: dict[str, Any]) -> None:
    if request.max_tokens is not None:
        body["max_completion_tokens"] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.top_k is not None:
        _drop(request, "top_k")
    if request.stop:
        body["stop"] = list(request.stop)


def _effort(reasoning: neutral.Reasoning | None) -> str | None:
    if reasoning is None or reasoning.enabled is False or reasoning.budget_tokens == 0:
        return None
    if reasoning.effort:
        return reasoning.effort
    if reasoning.budget_tokens:
        return neutral.effort_for(reasoning.budget_tokens)
    return None  # on, at the model's own depth


def _response_format(output: neutral.OutputFormat) -> dict[str, Any]:
    if output.schema is None:
        return {"type": "json_object"}
    spec: dict[str, Any] = {"name": output.name or "output", "schema": output.schema}
    if output.strict is not None:
        spec["strict"] = output.strict
    return {"type": "json_schema", "json_schema": spec}
