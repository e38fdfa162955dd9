"""Responses request body <-> neutral Request: settings, tools and tool choice.

The conversation items themselves are converted in _responses_items.py.
"""

from __future__ import annotations

from typing import Any

from . import neutral
from ._responses_custom import read_custom_tool
from ._responses_items import note, read_items, write_input_items

# Fields naming state stored at OpenAI: without it the answer would be wrong.
STORED_STATE = ("conversation", "prompt")
# Every other field is advisory (store, prompt_cache_key, client_metadata, metadata, user,
# service_tier, truncation, ...): dropped and named in Request.dropped.
_HANDLED = (
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning",
    "max_output_tokens",
    "temperature",
    "top_p",
    "text",
    "stream",
    "previous_response_id",
    "include",
)
_EFFORTS: dict[str, neutral.Effort] = {
    "minimal": "minimal",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
}
DEFAULT_SCHEMA_NAME = "output"


# ---------------------------------------------------------------- read


def read_request(body: Any) -> neutral.Request:
    """A Responses request body (as the openai SDK or Codex sends it) -> neutral Request."""
    if not isinstance(body, dict):
        raise neutral.TranslationError("the request body must be a JSON object")
    request = neutral.Request(model=body.get("model"), stream=bool(body.get("stream")))
    for name in STORED_STATE:
        if body.get(name) is not None:
            raise neutral.TranslationError(f"{name} needs state stored at OpenAI", name)
    for name in body:
        if name not in _HANDLED:
            note(request.dropped, name)
    _read_conversation(body, request)
    _read_tools(body.get("tools") or [], request)
    request.tool_choice = _read_tool_choice(body, request.dropped)
    request.reasoning = _read_reasoning(body.get("reasoning"), request.dropped)
    request.output_format = _read_text(body.get("text"), request.dropped)
    request.max_tokens = body.get("max_output_tokens")
    request.temperature = body.get("temperature")
    request.top_p = body.get("top_p")
    for name in ("previous_response_id", "include"):
        if body.get(name) is not None:
            request.extra[name] = body[name]
    if body.get("store") is False:  # nothing to keep for a later previous_response_id
        request.extra["store"] = False
    return request


def _read_conversation(body: dict[str, Any], request: neutral.Request) -> None:
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        request.system.append(neutral.Text(instructions))
    elif instructions is not None and not isinstance(instructions, str):
        raise neutral.TranslationError("instructions must be a string", "instructions")
    items = body.get("input", [])
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    if not isinstance(items, list):
        raise neutral.TranslationError("input must be a string or a list of items", "input")
    request.messages = read_items(items, request.system, request.dropped)


def _read_tools(tools: Any, request: neutral.Request) -> None:
    if not isinstance(tools, list):
        raise neutral.TranslationError("tools must be a list", "tools")
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function":
            request.tools.append(_read_function(tool, f"tools[{i}]", request.dropped))
        elif kind == "custom":
            request.tools.append(_read_custom(tool, f"tools[{i}]", request.dropped))
        elif kind in ("web_search", "web_search_preview"):
            config = {k: v for k, v in tool.items() if k != "type"}
            request.hosted_tools.append(neutral.HostedTool("web_search", config))
        else:
            note(request.dropped, f"tools.{kind}")


def _tool_name(tool: dict[str, Any], field: str) -> str:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise neutral.TranslationError(f"{field}.name is required", field)
    return name


def _note_extra_keys(tool: dict[str, Any], known: tuple[str, ...], dropped: list[str]) -> None:
    for key in tool:
        if key not in known:
            note(dropped, f"tools.{key}")


def _read_function(tool: dict[str, Any], field: str, dropped: list[str]) -> neutral.Tool:
    _note_extra_keys(tool, ("type", "name", "description", "parameters", "strict"), dropped)
    return neutral.Tool(
        name=_tool_name(tool, field),
        description=tool.get("description"),
        parameters=tool.get("parameters"),
        strict=tool.get("strict"),
    )


def _read_custom(tool: dict[str, Any], field: str, dropped: list[str]) -> neutral.Tool:
    _note_extra_keys(tool, ("type", "name", "description", "format"), dropped)
    return read_custom_tool(tool, _tool_name(tool, field))


def _read_tool_choice(body: dict[str, Any], dropped: list[str]) -> neutral.ToolChoice | None:
    choice, parallel = body.get("tool_choice"), body.get("parallel_tool_calls")
    if choice is None and parallel is None:
        return None
    result = neutral.ToolChoice(parallel=parallel)
    if choice in ("auto", "none", "required"):
        result.mode = choice
    elif isinstance(choice, dict) and choice.get("type") in ("function", "custom"):
        if not isinstance(choice.get("name"), str):
            raise neutral.TranslationError("tool_choice.name is required", "tool_choice")
        result.mode, result.name = "tool", choice["name"]
    elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        result.mode = "required" if choice.get("mode") == "required" else "auto"
        note(dropped, "tool_choice.allowed_tools")
    elif choice is not None:
        kind = choice.get("type") if isinstance(choice, dict) else choice
        note(dropped, f"tool_choice.{kind}")
    return result


def _read_reasoning(value: Any, dropped: list[str]) -> neutral.Reasoning | None:
    if not isinstance(value, dict):
        return None
    summary = value.get("summary", value.get("generate_summary"))
    reasoning = neutral.Reasoning(include_thoughts=summary not in (None, "none"))
    effort = value.get("effort")
    if effort == "none":
        reasoning.enabled = False
    elif effort in _EFFORTS:
        reasoning.effort = _EFFORTS[effort]
    elif effort is not None:
        note(dropped, "reasoning.effort")
    return reasoning


def _read_text(value: Any, dropped: list[str]) -> neutral.OutputFormat | None:
    if not isinstance(value, dict):
        return None
    if value.get("verbosity") is not None:
        note(dropped, "text.verbosity")
    fmt = value.get("format") or {}
    kind = fmt.get("type")
    if kind == "json_object":
        return neutral.OutputFormat(None)
    if kind == "json_schema":
        if not isinstance(fmt.get("schema"), dict):
            raise neutral.TranslationError("text.format.schema is required", "text.format")
        return neutral.OutputFormat(fmt["schema"], fmt.get("name"), fmt.get("strict"))
    return None


# ---------------------------------------------------------------- write


def write_request(request: neutral.Request) -> dict[str, Any]:
    """A neutral Request -> a Responses body that carries the whole history (store false)."""
    body: dict[str, Any] = {"model": request.model}
    if request.system:
        body["instructions"] = request.system[0].text
    extra_system = [
        {
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": t.text}],
        }
        for t in request.system[1:]
    ]
    body["input"] = extra_system + write_input_items(request.messages)
    tools = write_tools(request)
    if tools:
        body["tools"] = tools
    if request.tool_choice is not None:
        body["tool_choice"] = write_tool_choice(request)
        if request.tool_choice.parallel is not None:
            body["parallel_tool_calls"] = request.tool_choice.parallel
    reasoning = write_reasoning_config(request.reasoning)
    if reasoning is not None:
        body["reasoning"] = reasoning
    _write_sampling(request, body)
    body["include"] = _includes(request)
    body["store"] = False
    if request.stream:
        body["stream"] = True
    return body


def _write_sampling(request: neutral.Request, body: dict[str, Any]) -> None:
    for key, value in (
        ("max_output_tokens", request.max_tokens),
        ("temperature", request.temperature),
        ("top_p", request.top_p),
    ):
        if value is not None:
            body[key] = value
    if request.output_format is not None:
        body["text"] = {"format": write_format(request.output_format)}


def _includes(request: neutral.Request) -> list[str]:
    """Encrypted reasoning comes back only when asked: ask whenever reasoning is in play."""
    includes = [i for i in request.extra.get("include") or [] if isinstance(i, str)]
    signed = any(
        isinstance(p, neutral.Thinking) and p.signature for m in request.messages for p in m.parts
    )
    wanted = "reasoning.encrypted_content"
    if (signed or request.reasoning is not None) and wanted not in includes:
        includes.append(wanted)
    return includes


def write_tools(request: neutral.Request) -> list[dict[str, Any]]:
    """Function and custom tools (strict false unless asked: Responses defaults to strict),
    then the hosted web search."""
    tools: list[dict[str, Any]] = []
    for tool in request.tools:
        out: dict[str, Any]
        if tool.tool_kind == "custom":
            out = {"type": "custom", "name": tool.name}
            if tool.description is not None:
                out["description"] = tool.description
            if tool.format is not None:
                out["format"] = tool.format
        else:
            out = {"type": "function", "name": tool.name, "description": tool.description}
            out["parameters"] = tool.parameters or {"type": "object", "properties": {}}
            out["strict"] = bool(tool.strict)
        tools.append(out)
    for hosted in request.hosted_tools:
        if hosted.name == "web_search":
            known = ("filters", "search_context_size", "user_location")
            tools.append(
                {"type": "web_search", **{k: v for k, v in hosted.config.items() if k in known}}
            )
    return tools


def write_tool_choice(request: neutral.Request) -> str | dict[str, Any]:
    choice = request.tool_choice or neutral.ToolChoice()
    if choice.mode != "tool":
        return choice.mode
    custom = any(t.name == choice.name and t.tool_kind == "custom" for t in request.tools)
    return {"type": "custom" if custom else "function", "name": choice.name}


def write_reasoning_config(reasoning: neutral.Reasoning | None) -> dict[str, Any] | None:
    """Effort from the level or the budget; turned off, the model's default applies (the
    levels that switch reasoning off differ between models)."""
    if reasoning is None or reasoning.enabled is False or reasoning.budget_tokens == 0:
        return None
    out: dict[str, Any] = {}
    effort = reasoning.effort
    if effort is None and reasoning.budget_tokens:
        effort = neutral.effort_for(reasoning.budget_tokens)
    if effort is not None:
        out["effort"] = effort
    if reasoning.include_thoughts:
        out["summary"] = "auto"
    return out


def write_format(output_format: neutral.OutputFormat) -> dict[str, Any]:
    if output_format.schema is None:
        return {"type": "json_object"}
    out: dict[str, Any] = {
        "type": "json_schema",
        "name": output_format.name or DEFAULT_SCHEMA_NAME,
        "schema": output_format.schema,
    }
    if output_format.strict is not None:
        out["strict"] = output_format.strict
    return out
