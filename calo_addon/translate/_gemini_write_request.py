"""The neutral Request -> a Gemini generateContent body (the upstream role).

The model goes in the URL, never in the body; `write_request` reads `Request.model` only to
choose how to say the reasoning setting (Gemini 3 levels or earlier models' budgets).
"""

from __future__ import annotations

from typing import Any

from . import neutral
from ._gemini_parts import write_parts
from ._gemini_read_request import GENERATION_FIELDS
from .base import append_turn

# Neutral hosted tools -> Gemini tools; one with no Gemini equivalent is dropped and named.
_HOSTED_WRITE = {
    "web_search": "googleSearch",
    "code_execution": "codeExecution",
    "url_context": "urlContext",
    "google_maps": "googleMaps",
}
_MODES_WRITE = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}
# A custom (freeform) tool becomes a function taking its raw text as one string argument.
_CUSTOM_INPUT = "input"


def write_request(request: neutral.Request) -> dict[str, Any]:
    """A generateContent body (no model: it goes in the URL). Hosted tools and settings Gemini
    has no place for are appended to `request.dropped`."""
    body: dict[str, Any] = {"contents": contents(request.messages)}
    if request.system:
        body["systemInstruction"] = {"parts": [{"text": t.text} for t in request.system]}
    if tools := _write_tools(request):
        body["tools"] = tools
    if request.tools and (tool_config := _tool_config(request)):
        body["toolConfig"] = tool_config
    if generation := _generation_config(request):
        body["generationConfig"] = generation
    return body


def contents(messages: list[neutral.Message]) -> list[dict[str, Any]]:
    """Messages as Gemini contents: roles user/model, consecutive same-role turns merged, and
    the results of one model turn's calls in one user turn in call order."""
    names = {p.id: p.name for m in messages for p in m.parts if isinstance(p, neutral.ToolCall)}
    out: list[dict[str, Any]] = []
    call_order: list[str] = []
    for message in _merged(messages):
        parts = message.parts
        if message.role == "assistant":
            call_order = [p.id for p in parts if isinstance(p, neutral.ToolCall)]
        else:
            parts = _results_first_in_call_order(parts, call_order)
        role = "model" if message.role == "assistant" else "user"
        append_turn(out, role, write_parts(parts, names), key="parts")
    return out


def _merged(messages: list[neutral.Message]) -> list[neutral.Message]:
    merged: list[neutral.Message] = []
    for message in messages:
        if merged and merged[-1].role == message.role:
            merged[-1] = neutral.Message(message.role, [*merged[-1].parts, *message.parts])
        else:
            merged.append(message)
    return merged


def _results_first_in_call_order(
    parts: list[neutral.Part], call_order: list[str]
) -> list[neutral.Part]:
    results = [p for p in parts if isinstance(p, neutral.ToolResult)]
    others = [p for p in parts if not isinstance(p, neutral.ToolResult)]
    rank = {call_id: position for position, call_id in enumerate(call_order)}
    results.sort(key=lambda result: rank.get(result.id, len(rank)))
    return [*results, *others]


def _write_tools(request: neutral.Request) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    if request.tools:
        tools.append({"functionDeclarations": [_declaration(t) for t in request.tools]})
    for hosted in request.hosted_tools:
        key = _HOSTED_WRITE.get(hosted.name)
        # Gemini before 3 refuses a built-in tool beside function declarations ("Tool use
        # with function calling is unsupported"): the functions are what the client runs.
        mixed = bool(request.tools) and not _is_gemini3(request.model)
        if key is None or mixed:
            request.dropped.append(f"tools.{hosted.name}")
            continue
        # Other protocols' settings for search or code mean nothing to Gemini.
        native = hosted.name not in ("web_search", "code_execution")
        tools.append({key: dict(hosted.config) if native else {}})
    return tools


def _declaration(tool: neutral.Tool) -> dict[str, Any]:
    """A function declaration whose JSON Schema goes whole as `parametersJsonSchema` (never the
    OpenAPI-subset `parameters`, which would need the schema cut down)."""
    declaration: dict[str, Any] = {"name": tool.name}
    if tool.description:
        declaration["description"] = tool.description
    schema = _custom_input_schema(tool) if tool.tool_kind == "custom" else tool.parameters
    if schema is not None:
        declaration["parametersJsonSchema"] = schema
    return declaration


def _custom_input_schema(tool: neutral.Tool) -> dict[str, Any]:
    """A freeform tool as a function of one string; its grammar, if declared, is described to
    the model there, since Gemini cannot constrain the text to it."""
    described: dict[str, Any] = {"type": "string"}
    if tool.format and tool.format.get("definition"):
        syntax = tool.format.get("syntax") or "grammar"
        described["description"] = (
            f"The raw input, following this {syntax} grammar:\n{tool.format['definition']}"
        )
    return {"type": "object", "properties": {_CUSTOM_INPUT: described}, "required": [_CUSTOM_INPUT]}


def _tool_config(request: neutral.Request) -> dict[str, Any] | None:
    choice = request.tool_choice
    if choice is None:
        return None
    if choice.parallel is False:
        request.dropped.append("tool_choice.parallel")  # Gemini has no such switch
    calling: dict[str, Any] = {"mode": _MODES_WRITE[choice.mode]}
    if choice.mode == "tool" and choice.name:
        calling["allowedFunctionNames"] = [choice.name]
    return {"functionCallingConfig": calling}


def _generation_config(request: neutral.Request) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for field, attribute in GENERATION_FIELDS.items():
        if (value := getattr(request, attribute)) is not None:
            config[field] = value
    if request.stop:
        config["stopSequences"] = list(request.stop)
    if request.output_format is not None:
        config["responseMimeType"] = "application/json"
        if request.output_format.schema is not None:
            config["responseJsonSchema"] = request.output_format.schema
    if request.reasoning is not None and (thinking := thinking_config(request)):
        config["thinkingConfig"] = thinking
    return config


def thinking_config(request: neutral.Request) -> dict[str, Any]:
    """The reasoning setting in Gemini's terms, which depend on the model generation.

    Gemini 3 models take `thinkingLevel` (the effort as given) and cannot turn thinking off:
    a request to disable it asks for the lowest level, "low". Earlier models take a
    `thinkingBudget` (the effort's budget from the shared table; 0 disables, -1 lets the
    model decide). Gemini refuses both keys at once, so only one is written. An explicit
    budget is passed as a budget on every model.
    """
    reasoning = request.reasoning
    assert reasoning is not None
    gemini3 = _is_gemini3(request.model)
    if reasoning.enabled is False or reasoning.budget_tokens == 0:
        return {"thinkingLevel": "low"} if gemini3 else {"thinkingBudget": 0}
    config: dict[str, Any] = {}
    if reasoning.budget_tokens is not None:
        config["thinkingBudget"] = reasoning.budget_tokens
    elif reasoning.effort is not None:
        if gemini3:
            config["thinkingLevel"] = reasoning.effort
        else:
            config["thinkingBudget"] = neutral.budget_for(reasoning.effort)
    elif reasoning.enabled and not gemini3:
        config["thinkingBudget"] = -1
    if reasoning.include_thoughts:
        config["includeThoughts"] = True
    return config


def _is_gemini3(model: str | None) -> bool:
    return model is not None and model.removeprefix("models/").startswith("gemini-3")
