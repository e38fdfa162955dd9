"""Writing Converse request bodies (upstream role: Bedrock serves Anthropic, Chat and Responses
clients). The model id goes in the URL path, never in the body; `Request.model` only chooses
model-family features (Claude's thinking and top_k, Nova 2's reasoning effort go in
`additionalModelRequestFields`).
"""

from __future__ import annotations

import json
from typing import Any

from . import neutral
from ._converse_blocks import WriteContext, is_claude, note, reasons_by_effort, write_part
from .base import append_turn
from .neutral import Message, Request, Tool, ToolChoice

CONTINUED = "(continued)"  # the user turn put before a conversation that opens with the assistant
ANSWER_ROOM = 4096  # output tokens left for the answer when thinking needs maxTokens raised
MIN_THINKING_BUDGET = 1024  # Claude's smallest thinking budget


def write_request(request: Request) -> dict[str, Any]:
    """The Converse body for `request` (the model id goes in the path, not here). Fields
    Converse or the model family lacks are named in `request.dropped`."""
    ctx = WriteContext(request.model, request.dropped)
    body: dict[str, Any] = {"messages": write_messages(request.messages, ctx)}
    system = [{"text": t.text} for t in request.system if t.text.strip()]
    if system:
        body["system"] = system
    thinking = _thinking(request, body["messages"], ctx)
    inference = _inference(request, thinking, ctx)
    if inference:
        body["inferenceConfig"] = inference
    tool_config = _tool_config(request, body["messages"], ctx)
    if tool_config:
        body["toolConfig"] = tool_config
    additional = _additional(request, thinking, ctx)
    if additional:
        body["additionalModelRequestFields"] = additional
    if request.stop and is_claude(request.model):
        body["additionalModelResponseFieldPaths"] = ["/stop_sequence"]  # which one stopped it
    if request.output_format is not None:
        body["outputConfig"] = _output_config(request.output_format)
    for hosted in request.hosted_tools:
        note(request.dropped, hosted.name)
    return body


def write_messages(messages: list[Message], ctx: WriteContext) -> list[dict[str, Any]]:
    """Converse wants alternating roles, a user turn first, no empty turns, and a turn's tool
    results together in one user message before any text, in the order of the calls."""
    out: list[dict[str, Any]] = []
    for message in messages:
        blocks = [b for part in message.parts if (b := write_part(part, ctx)) is not None]
        append_turn(out, message.role, blocks)
    for previous, turn in zip([None, *out], out, strict=False):
        if turn["role"] == "user":
            _order_tool_results(turn, previous)
    if out and out[0]["role"] == "assistant":
        out.insert(0, {"role": "user", "content": [{"text": CONTINUED}]})
    _trim_final_assistant(out)
    return out


def _order_tool_results(message: dict[str, Any], previous: dict[str, Any] | None) -> None:
    calls = [
        b["toolUse"]["toolUseId"] for b in (previous or {}).get("content", []) if "toolUse" in b
    ]

    def position(block: dict[str, Any]) -> tuple[int, int]:
        if "toolResult" not in block:
            return (1, 0)
        call_id = block["toolResult"]["toolUseId"]
        return (0, calls.index(call_id) if call_id in calls else len(calls))

    message["content"].sort(key=position)


def _trim_final_assistant(messages: list[dict[str, Any]]) -> None:
    """A prefilled final assistant turn may not end in whitespace (Claude rejects it)."""
    if not messages or messages[-1]["role"] != "assistant":
        return
    last = messages[-1]["content"][-1]
    if "text" in last:
        last["text"] = last["text"].rstrip()
        if not last["text"]:
            messages[-1]["content"].pop()
            if not messages[-1]["content"]:
                messages.pop()


def _thinking(
    request: Request, messages: list[dict[str, Any]], ctx: WriteContext
) -> dict[str, Any] | None:
    """The thinking setting: Claude's (a token budget) or Nova 2's (an effort level, as
    `maxReasoningEffort`), or None: off, or dropped (named "reasoning") for other model
    families and for a Claude tool loop without signed reasoning, which Claude would refuse."""
    reasoning = request.reasoning
    if reasoning is None or reasoning.enabled is False or reasoning.budget_tokens == 0:
        return None
    if not (reasoning.enabled or reasoning.budget_tokens or reasoning.effort):
        return None
    if reasons_by_effort(request.model):
        effort = reasoning.effort or (
            neutral.effort_for(reasoning.budget_tokens) if reasoning.budget_tokens else "medium"
        )
        return {"type": "enabled", "maxReasoningEffort": "low" if effort == "minimal" else effort}
    if not is_claude(request.model) or _unsigned_tool_loop(messages):
        note(ctx.dropped, "reasoning")
        return None
    budget = reasoning.budget_tokens or neutral.budget_for(reasoning.effort or "medium")
    return {"type": "enabled", "budget_tokens": max(MIN_THINKING_BUDGET, budget)}


def _unsigned_tool_loop(messages: list[dict[str, Any]]) -> bool:
    """The conversation continues a tool loop (the last user turn holds tool results) in which
    no assistant turn starts with a reasoning block: Claude wants the loop's signed reasoning
    back when thinking is on, and a client that never saw it (Chat, Gemini) cannot send it."""
    if not messages or not _has_results(messages[-1]):
        return False
    for message in reversed(messages):
        if message["role"] == "assistant":
            if "reasoningContent" in message["content"][0]:
                return False
        elif not _has_results(message):
            break
    return True


def _has_results(message: dict[str, Any]) -> bool:
    return message["role"] == "user" and any("toolResult" in b for b in message["content"])


def _inference(
    request: Request, thinking: dict[str, Any] | None, ctx: WriteContext
) -> dict[str, Any]:
    """Claude's thinking budget must fit under maxTokens (raised when needed); Nova 2 at high
    effort takes no maxTokens at all (named "max_tokens" in `dropped`)."""
    max_tokens = request.max_tokens
    budget = (thinking or {}).get("budget_tokens")
    if budget is not None and (max_tokens is None or max_tokens <= budget):
        max_tokens = budget + (max_tokens or ANSWER_ROOM)
    if (thinking or {}).get("maxReasoningEffort") == "high" and max_tokens is not None:
        note(ctx.dropped, "max_tokens")
        max_tokens = None
    values = {
        "maxTokens": max_tokens,
        "temperature": request.temperature,
        "topP": request.top_p,
        "stopSequences": list(request.stop) or None,
    }
    return {k: v for k, v in values.items() if v is not None}


def _tool_config(
    request: Request, messages: list[dict[str, Any]], ctx: WriteContext
) -> dict[str, Any] | None:
    """Tools and the choice. Converse has no "none": with no tool turns in the history the
    tools are left out (which is "none"); with tool turns Bedrock requires toolConfig, so the
    tools stay and "tool_choice" is named dropped. Tool turns without any declared tool get a
    bare declaration of each tool they name, for the same reason."""
    choice = request.tool_choice
    used = _tool_names_used(messages)
    if not request.tools:
        return {"tools": [_bare_tool(name) for name in used]} if used else None
    if choice and choice.mode == "none" and not used:
        return None
    if any(tool.strict for tool in request.tools):
        note(ctx.dropped, "tools.strict")
    config: dict[str, Any] = {"tools": [_tool_spec(tool) for tool in request.tools]}
    if choice is not None:
        written = _tool_choice(choice)
        if written is None:
            note(ctx.dropped, "tool_choice")
        else:
            config["toolChoice"] = written
        if choice.parallel is False:
            note(ctx.dropped, "tool_choice.parallel")
    return config


def _tool_names_used(messages: list[dict[str, Any]]) -> list[str]:
    """Tool names the history's calls use (Bedrock needs them declared to accept the turns)."""
    names: list[str] = []
    for message in messages:
        for block in message["content"]:
            if "toolUse" in block and block["toolUse"]["name"] not in names:
                names.append(block["toolUse"]["name"])
    return names


def _tool_spec(tool: Tool) -> dict[str, Any]:
    """The schema goes whole: Converse takes any JSON Schema object under inputSchema.json."""
    parameters = tool.parameters
    if parameters is None:
        if tool.tool_kind == "custom":  # a freeform tool: one string argument named input
            parameters = {
                "type": "object",
                "properties": {"input": {"type": "string"}},
                "required": ["input"],
            }
        else:
            parameters = {"type": "object", "properties": {}}
    spec: dict[str, Any] = {"name": tool.name, "inputSchema": {"json": parameters}}
    if tool.description:
        spec["description"] = tool.description
    return {"toolSpec": spec}


def _bare_tool(name: str) -> dict[str, Any]:
    return {"toolSpec": {"name": name, "inputSchema": {"json": {"type": "object"}}}}


def _tool_choice(choice: ToolChoice) -> dict[str, Any] | None:
    if choice.mode == "required":
        return {"any": {}}
    if choice.mode == "tool" and choice.name:
        return {"tool": {"name": choice.name}}
    if choice.mode == "none":
        return None
    return {"auto": {}}


def _additional(
    request: Request, thinking: dict[str, Any] | None, ctx: WriteContext
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if thinking:
        fields["reasoningConfig" if "maxReasoningEffort" in thinking else "thinking"] = thinking
    if request.top_k is not None:
        if is_claude(request.model):
            fields["top_k"] = request.top_k
        else:
            note(ctx.dropped, "top_k")
    return fields


def _output_config(output: neutral.OutputFormat) -> dict[str, Any]:
    """A JSON schema answer via outputConfig.textFormat (the schema travels as JSON text).
    Converse has no schema-less JSON mode, so plain JSON output cannot be promised."""
    if output.schema is None:
        raise neutral.Unsupported(
            "Bedrock Converse cannot promise JSON output without a JSON schema", "output_format"
        )
    schema: dict[str, Any] = {"schema": json.dumps(output.schema)}
    if output.name:
        schema["name"] = output.name
    return {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": schema}}}
