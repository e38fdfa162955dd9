"""Client role: a Chat Completions request's settings (everything but `messages`) read into
the neutral Request: tools and tool choice, limits, sampling, reasoning (OpenAI's
`reasoning_effort` and Google's `thinking_config` convention), structured output, stream
options. Advisory fields are dropped and named in `Request.dropped`."""

from __future__ import annotations

from typing import Any

from . import neutral
from ._chat_common import (
    optional_int,
    optional_number,
)
from .neutral import TranslationError, Unsupported, expect_dict, expect_list, expect_str

# Read elsewhere (read_request) or below.
_HANDLED = {
    "model",
    "messages",
    "stream",
    "n",
    "tools",
    "functions",
    "tool_choice",
    "function_call",
    "parallel_tool_calls",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "reasoning_effort",
    "google",
    "extra_body",
    "response_format",
    "stream_options",
}

# Efforts beyond the neutral form's scale count as its top; "none" turns reasoning off.
_EFFORTS: dict[str, neutral.Effort] = {
    "minimal": "minimal",
    "low": "low",
    "medium": "medium",
    "high": "high",
}
_EFFORTS |= {"xhigh": "high", "max": "high"}


def read_settings(body: dict[str, Any], request: neutral.Request) -> None:
    request.tools = _tools(body)
    request.tool_choice = _tool_choice(body, request)
    request.max_tokens = optional_int(body, "max_completion_tokens")
    if request.max_tokens is None:
        request.max_tokens = optional_int(body, "max_tokens")
    request.temperature = optional_number(body, "temperature")
    request.top_p = optional_number(body, "top_p")
    request.top_k = optional_int(body, "top_k")  # vLLM's extra parameter
    request.stop = _stop(body.get("stop"))
    request.reasoning = _reasoning(body, request)
    request.output_format = _output_format(body.get("response_format"))
    _stream_options(body.get("stream_options"), request)
    for key in body:
        if key not in _HANDLED and key not in request.dropped:
            request.dropped.append(key)  # advisory: user, metadata, store, seed, ...


# ---------------------------------------------------------------- tools


def _tools(body: dict[str, Any]) -> list[neutral.Tool]:
    tools = [
        _tool(expect_dict(tool, f"tools[{i}]"), f"tools[{i}]")
        for i, tool in enumerate(expect_list(body.get("tools") or [], "tools"))
    ]
    for i, function in enumerate(expect_list(body.get("functions") or [], "functions")):
        tools.append(_function(expect_dict(function, f"functions[{i}]"), f"functions[{i}]"))
    return tools


def _tool(tool: dict[str, Any], field: str) -> neutral.Tool:
    kind = tool.get("type", "function")
    if kind == "function":
        return _function(
            expect_dict(tool.get("function"), f"{field}.function"), f"{field}.function"
        )
    if kind == "custom":
        custom = expect_dict(tool.get("custom"), f"{field}.custom")
        return neutral.Tool(
            name=expect_str(custom.get("name"), f"{field}.custom.name"),
            description=custom.get("description"),
            tool_kind="custom",
            format=custom.get("format"),
        )
    raise Unsupported(f"tools of type {kind!r} are not supported", f"{field}.type")


def _function(function: dict[str, Any], field: str) -> neutral.Tool:
    parameters = function.get("parameters")
    if parameters is not None:
        expect_dict(parameters, f"{field}.parameters")
    return neutral.Tool(
        name=expect_str(function.get("name"), f"{field}.name"),
        description=function.get("description"),
        parameters=parameters,  # whole: never sanitised
        strict=function.get("strict"),
    )


def _tool_choice(body: dict[str, Any], request: neutral.Request) -> neutral.ToolChoice | None:
    choice = _choice(body.get("tool_choice"), "tool_choice", request)
    if choice is None and "function_call" in body:
        choice = _choice(body["function_call"], "function_call", request)
    parallel = body.get("parallel_tool_calls")
    if parallel is not None:
        if not isinstance(parallel, bool):
            raise TranslationError("'parallel_tool_calls' must be a boolean", "parallel_tool_calls")
        choice = choice or neutral.ToolChoice("auto")
        choice.parallel = parallel
    return choice


def _choice(value: Any, field: str, request: neutral.Request) -> neutral.ToolChoice | None:
    if value is None:
        return None
    if value in ("auto", "none", "required"):
        return neutral.ToolChoice(value)
    if isinstance(value, str):
        raise TranslationError(f"'{field}' is not a known tool choice", field)
    value = expect_dict(value, field)
    kind = value.get("type")
    if kind == "allowed_tools":
        return _allowed_tools(
            expect_dict(value.get("allowed_tools"), f"{field}.allowed_tools"), request
        )
    holder = value.get(kind) if kind in ("function", "custom") else value  # legacy: {name}
    named = expect_dict(holder, f"{field}.{kind}" if kind else field)
    return neutral.ToolChoice("tool", name=expect_str(named.get("name"), f"{field}.name"))


def _allowed_tools(allowed: dict[str, Any], request: neutral.Request) -> neutral.ToolChoice:
    """`allowed_tools` narrows the tools the model may call this turn: the other tools are
    left out of the request, which says the same thing to any upstream."""
    mode = allowed.get("mode", "auto")
    if mode not in ("auto", "required"):
        raise TranslationError(
            "'tool_choice.allowed_tools.mode' must be auto or required",
            "tool_choice.allowed_tools.mode",
        )
    names = set()
    for i, tool in enumerate(expect_list(allowed.get("tools"), "tool_choice.allowed_tools.tools")):
        tool = expect_dict(tool, f"tool_choice.allowed_tools.tools[{i}]")
        named = tool.get(tool.get("type", "function")) or {}
        names.add(named.get("name") if isinstance(named, dict) else None)
    request.tools = [tool for tool in request.tools if tool.name in names]
    return neutral.ToolChoice(mode)


# ---------------------------------------------------------------- limits and formats


def _stop(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [expect_str(s, f"stop[{i}]") for i, s in enumerate(expect_list(value, "stop"))]


def _reasoning(body: dict[str, Any], request: neutral.Request) -> neutral.Reasoning | None:
    reasoning = None
    effort = body.get("reasoning_effort")
    if effort is not None:
        if effort == "none":
            reasoning = neutral.Reasoning(enabled=False, budget_tokens=0)
        elif effort in _EFFORTS:
            reasoning = neutral.Reasoning(effort=_EFFORTS[effort])
        else:
            raise TranslationError("'reasoning_effort' is not a known effort", "reasoning_effort")
    google = _google(body, request)
    config = google.get("thinking_config")
    if config is not None:
        reasoning = _thinking_config(expect_dict(config, "google.thinking_config"), reasoning)
    return reasoning


def _google(body: dict[str, Any], request: neutral.Request) -> dict[str, Any]:
    """Google's convention: `extra_body={"extra_body": {"google": {...}}}` in the openai SDK,
    so the wire has `"extra_body": {"google": ...}`; `extra_body={"google": ...}` puts
    `"google"` at the top. Both are read; its other keys (cached_content, ...) are dropped."""
    extra = body.get("extra_body")
    if extra is not None:
        extra = expect_dict(extra, "extra_body")
        request.dropped.extend(f"extra_body.{key}" for key in extra if key != "google")
    google = body.get("google") or (extra or {}).get("google") or {}
    google = expect_dict(google, "google")
    request.dropped.extend(f"google.{key}" for key in google if key != "thinking_config")
    return google


def _thinking_config(
    config: dict[str, Any], reasoning: neutral.Reasoning | None
) -> neutral.Reasoning:
    """thinking_budget: 0 turns thinking off, -1 lets the model decide, N caps it."""
    reasoning = reasoning or neutral.Reasoning()
    budget = config.get("thinking_budget")
    if budget is not None:
        if isinstance(budget, bool) or not isinstance(budget, int):
            raise TranslationError(
                "'thinking_budget' must be an integer", "google.thinking_config.thinking_budget"
            )
        reasoning.enabled = budget != 0
        reasoning.budget_tokens = budget if budget >= 0 else None
    level = config.get("thinking_level")
    if isinstance(level, str) and level.lower() in _EFFORTS:
        reasoning.effort = _EFFORTS[level.lower()]
    include = config.get("include_thoughts")
    if include is not None:
        reasoning.include_thoughts = bool(include)
    return reasoning


def _output_format(value: Any) -> neutral.OutputFormat | None:
    if value is None:
        return None
    value = expect_dict(value, "response_format")
    kind = value.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return neutral.OutputFormat()
    if kind == "json_schema":
        spec = expect_dict(value.get("json_schema"), "response_format.json_schema")
        schema = spec.get("schema")
        return neutral.OutputFormat(
            schema=expect_dict(schema, "response_format.json_schema.schema") if schema else None,
            name=spec.get("name"),
            strict=spec.get("strict"),
        )
    raise TranslationError("'response_format.type' is not a known format", "response_format.type")


def _stream_options(value: Any, request: neutral.Request) -> None:
    if value is None:
        return
    value = expect_dict(value, "stream_options")
    if value.get("include_usage") is True:
        request.extra["include_usage"] = True
    request.dropped.extend(f"stream_options.{k}" for k in value if k != "include_usage")
