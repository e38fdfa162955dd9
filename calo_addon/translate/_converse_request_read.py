"""Reading Converse request bodies (client role: a boto3 converse / converse_stream caller).

The model id is in the URL path, not the body: `Request.model` stays None. Model-specific
fields the neutral form knows (Claude's thinking and top_k, reasoning_effort, outputConfig's
effort and JSON schema) are read; everything else is named in `Request.dropped`.
"""

from __future__ import annotations

import json
from typing import Any

from . import neutral
from ._converse_blocks import note, read_blocks
from .neutral import Message, Reasoning, Request, Text, Tool, ToolChoice, TranslationError

_ADVISORY = (
    "additionalModelResponseFieldPaths",
    "guardrailConfig",
    "performanceConfig",
    "promptVariables",
    "requestMetadata",
    "serviceTier",
)
_KNOWN = (
    "modelId",
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "additionalModelRequestFields",
    "outputConfig",
)


def read_request(body: Any) -> Request:
    """A Converse body as a neutral request; `model` stays None (it is in the path)."""
    if not isinstance(body, dict):
        raise TranslationError("the request body must be a JSON object")
    request = Request()
    for key in body:
        if key in _ADVISORY or key not in _KNOWN:
            note(request.dropped, key)
    request.messages = _read_messages(body.get("messages") or [], request.dropped)
    request.system = _read_system(body.get("system") or [], request.dropped)
    _read_inference(body.get("inferenceConfig") or {}, request)
    _read_tool_config(body.get("toolConfig"), request)
    _read_additional(body.get("additionalModelRequestFields"), request)
    _read_output_config(body.get("outputConfig"), request)
    neutral.fill_tool_names(request.messages)
    return request


def _read_messages(messages: Any, dropped: list[str]) -> list[Message]:
    if not isinstance(messages, list):
        raise TranslationError("messages must be a list", "messages")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise TranslationError(f"messages[{i}] needs role user or assistant", "messages")
        parts = read_blocks(message.get("content"), dropped, f"messages[{i}].content")
        out.append(Message(role=message["role"], parts=parts))
    return out


def _read_system(system: Any, dropped: list[str]) -> list[Text]:
    return [p for p in read_blocks(system, dropped, "system") if isinstance(p, Text)]


def _read_inference(config: Any, request: Request) -> None:
    if not isinstance(config, dict):
        raise TranslationError("inferenceConfig must be an object", "inferenceConfig")
    request.max_tokens = config.get("maxTokens")
    request.temperature = config.get("temperature")
    request.top_p = config.get("topP")
    request.stop = list(config.get("stopSequences") or [])


def _read_tool_config(config: Any, request: Request) -> None:
    if not isinstance(config, dict):
        return
    for tool in config.get("tools") or []:
        if not isinstance(tool, dict):
            raise TranslationError("toolConfig.tools holds a tool that is not an object", "tools")
        if isinstance(tool.get("toolSpec"), dict):
            request.tools.append(_read_tool_spec(tool["toolSpec"]))
        elif isinstance(tool.get("systemTool"), dict):
            request.hosted_tools.append(neutral.HostedTool(name=tool["systemTool"].get("name")))
        else:
            note(request.dropped, next(iter(tool), "toolConfig.tools"))
    choice = config.get("toolChoice")
    if isinstance(choice, dict):
        request.tool_choice = _read_tool_choice(choice)


def _read_tool_spec(spec: dict[str, Any]) -> Tool:
    schema = spec.get("inputSchema")
    if not isinstance(schema, dict) or "json" not in schema:
        raise TranslationError("toolSpec.inputSchema needs a json schema", "toolSpec.inputSchema")
    parameters = schema["json"]
    if isinstance(parameters, str):  # some SDKs send the schema as JSON text
        parameters = json.loads(parameters)
    return Tool(
        name=spec.get("name") or "",
        description=spec.get("description"),
        parameters=parameters,
        strict=spec.get("strict"),
    )


def _read_tool_choice(choice: dict[str, Any]) -> ToolChoice:
    if isinstance(choice.get("tool"), dict):
        return ToolChoice(mode="tool", name=choice["tool"].get("name"))
    if "any" in choice:
        return ToolChoice(mode="required")
    return ToolChoice(mode="auto")


def _read_additional(fields: Any, request: Request) -> None:
    """Model-specific fields: Claude's thinking and top_k, Nova 2's reasoningConfig,
    OpenAI-style reasoning_effort; the rest is named in `dropped` (as
    additionalModelRequestFields.<key>)."""
    if not isinstance(fields, dict):
        return
    for key, value in fields.items():
        if key == "reasoningConfig" and isinstance(value, dict):
            request.reasoning = _reasoning_from_config(value)
        elif key in ("thinking", "reasoning_config") and isinstance(value, dict):
            request.reasoning = _reasoning_from_thinking(value)
        elif key == "reasoning_effort" and isinstance(value, str):
            request.reasoning = _reasoning_from_effort(value)
        elif key == "top_k" and isinstance(value, int):
            request.top_k = value
        else:
            note(request.dropped, f"additionalModelRequestFields.{key}")


def _reasoning_from_thinking(thinking: dict[str, Any]) -> Reasoning:
    if thinking.get("type") == "disabled":
        return Reasoning(enabled=False, budget_tokens=0)
    budget = thinking.get("budget_tokens")
    return Reasoning(enabled=True, budget_tokens=budget if isinstance(budget, int) else None)


def _reasoning_from_config(config: dict[str, Any]) -> Reasoning:
    """Nova 2's {"type": "enabled", "maxReasoningEffort": "low" | "medium" | "high"}."""
    if config.get("type") != "enabled":
        return Reasoning(enabled=False, budget_tokens=0)
    effort = config.get("maxReasoningEffort")
    return _reasoning_from_effort(effort) if isinstance(effort, str) else Reasoning(enabled=True)


def _reasoning_from_effort(effort: str) -> Reasoning:
    if effort == "none":
        return Reasoning(enabled=False)
    # xhigh, max: the highest level we have
    return Reasoning(effort=neutral.effort_named(effort) or "high")


def _read_output_config(config: Any, request: Request) -> None:
    if not isinstance(config, dict):
        return
    if isinstance(config.get("effort"), str):
        effort = _reasoning_from_effort(config["effort"]).effort
        request.reasoning = request.reasoning or Reasoning()
        request.reasoning.effort = effort
    text_format = config.get("textFormat")
    if isinstance(text_format, dict):
        structure = (text_format.get("structure") or {}).get("jsonSchema") or {}
        schema = structure.get("schema")
        request.output_format = neutral.OutputFormat(
            schema=json.loads(schema) if isinstance(schema, str) else schema,
            name=structure.get("name"),
            strict=True,
        )
