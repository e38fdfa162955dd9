"""Gemini generateContent request bodies -> the neutral Request (the client role).

The model is in the URL path (`/v1beta/models/{model}:generateContent`), never in the body:
`read_request` leaves `Request.model` None (and `Request.stream` False) for the pipeline to fill.
"""

from __future__ import annotations

from typing import Any

from . import neutral
from ._gemini_parts import CallIds, camel, get, read_parts
from .neutral import expect_dict, expect_list

# Fields read into the neutral form; any other field only tunes the answer (safetySettings,
# cachedContent, labels, seed, penalties ...): it is dropped and named in `Request.dropped`.
_READ_BODY = ("contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "model")
_READ_GENERATION = (
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "stopSequences",
    "candidateCount",
    "responseModalities",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "thinkingConfig",
)
GENERATION_FIELDS = {
    "maxOutputTokens": "max_tokens",
    "temperature": "temperature",
    "topP": "top_p",
    "topK": "top_k",
}
# Gemini hosted tools -> neutral HostedTool names (others are dropped and named).
_HOSTED_READ = {
    "googleSearch": "web_search",
    "googleSearchRetrieval": "web_search",
    "codeExecution": "code_execution",
    "urlContext": "url_context",
    "googleMaps": "google_maps",
}
_MODES_READ: dict[str, neutral.ToolChoiceMode] = {
    "AUTO": "auto",
    "VALIDATED": "auto",
    "NONE": "none",
    "ANY": "required",
}
_ROLES: dict[str, neutral.Role] = {"user": "user", "function": "user", "model": "assistant"}
_SCHEMA_VALUE_KEYS = ("enum", "default", "example", "const")
_OPENAPI_TYPES = ("STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL")


def read_request(body: Any) -> neutral.Request:
    body = expect_dict(body, "body")
    request = neutral.Request()
    request.messages = _messages(get(body, "contents"), request.dropped)
    neutral.fill_tool_names(request.messages)
    request.system = _system(get(body, "systemInstruction"))
    _read_tools(get(body, "tools") or [], request)
    request.tool_choice = _tool_choice(get(body, "toolConfig"), request.dropped)
    _read_generation(expect_dict(get(body, "generationConfig") or {}, "generationConfig"), request)
    request.dropped.extend(_unread(body, _READ_BODY, ""))
    request.dropped[:] = dict.fromkeys(request.dropped)  # each name once
    return request


def _messages(contents: Any, dropped: list[str]) -> list[neutral.Message]:
    if contents is None:
        raise neutral.TranslationError("contents is required", "contents")
    ids = CallIds()
    messages = []
    for number, content in enumerate(expect_list(contents, "contents")):
        content = expect_dict(content, f"contents[{number}]")
        role = _ROLES.get(content.get("role") or "user")
        if role is None:
            raise neutral.TranslationError(
                f"contents[{number}].role must be user or model", f"contents[{number}].role"
            )
        if role == "assistant":
            ids.new_turn()
        parts = read_parts(content.get("parts") or [], ids, dropped, f"contents[{number}].parts")
        messages.append(neutral.Message(role=role, parts=parts))
    return messages


def _system(instruction: Any) -> list[neutral.Text]:
    if instruction is None:
        return []
    if isinstance(instruction, str):
        return [neutral.Text(instruction)]
    parts = expect_list(
        expect_dict(instruction, "systemInstruction").get("parts") or [], "systemInstruction"
    )
    return [neutral.Text(p["text"]) for p in parts if isinstance(p, dict) and p.get("text")]


def _read_tools(tools: Any, request: neutral.Request) -> None:
    for number, tool in enumerate(expect_list(tools, "tools")):
        for key, value in expect_dict(tool, f"tools[{number}]").items():
            name = camel(key)
            if name == "functionDeclarations":
                request.tools.extend(
                    _function(d) for d in expect_list(value, "functionDeclarations")
                )
            elif name in _HOSTED_READ:
                config = value if isinstance(value, dict) else {}
                request.hosted_tools.append(neutral.HostedTool(_HOSTED_READ[name], config))
            else:
                request.dropped.append(f"tools.{name}")


def _function(declaration: Any) -> neutral.Tool:
    declaration = expect_dict(declaration, "functionDeclarations")
    name = declaration.get("name")
    if not isinstance(name, str) or not name:
        raise neutral.TranslationError("a function declaration needs a name", "tools")
    schema = get(declaration, "parametersJsonSchema")
    if schema is None and (openapi := declaration.get("parameters")) is not None:
        schema = json_schema_from_openapi(openapi)
    return neutral.Tool(name=name, description=declaration.get("description"), parameters=schema)


def json_schema_from_openapi(schema: Any) -> Any:
    """Gemini's older `parameters`/`responseSchema` (an OpenAPI subset) as JSON Schema: types
    in lower case ("OBJECT" -> "object") and `nullable: true` as a "null" type. Everything else
    passes through."""
    if isinstance(schema, list):
        return [json_schema_from_openapi(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        key: value if key in _SCHEMA_VALUE_KEYS else json_schema_from_openapi(value)
        for key, value in schema.items()
        if key != "nullable"
    }
    kind = out.get("type")
    if isinstance(kind, str) and kind.upper() in _OPENAPI_TYPES:
        out["type"] = kind.lower()
        if schema.get("nullable") is True:
            out["type"] = [kind.lower(), "null"]
    return out


def _tool_choice(config: Any, dropped: list[str]) -> neutral.ToolChoice | None:
    if config is None:
        return None
    config = expect_dict(config, "toolConfig")
    if get(config, "retrievalConfig") is not None:
        dropped.append("toolConfig.retrievalConfig")
    calling = get(config, "functionCallingConfig")
    if calling is None:
        return None
    calling = expect_dict(calling, "functionCallingConfig")
    mode = _MODES_READ.get(str(calling.get("mode") or "AUTO").upper(), "auto")
    allowed = get(calling, "allowedFunctionNames") or []
    if mode == "required" and len(allowed) == 1:
        return neutral.ToolChoice(mode="tool", name=allowed[0])
    if allowed:
        dropped.append("toolConfig.functionCallingConfig.allowedFunctionNames")
    return neutral.ToolChoice(mode=mode)


def _read_generation(config: dict[str, Any], request: neutral.Request) -> None:
    for field, attribute in GENERATION_FIELDS.items():
        if (value := get(config, field)) is not None:
            setattr(request, attribute, value)
    request.stop = list(get(config, "stopSequences") or [])
    if (get(config, "candidateCount") or 1) != 1:
        raise neutral.Unsupported(
            "generationConfig.candidateCount: one candidate only", "generationConfig.candidateCount"
        )
    modalities = [str(m).upper() for m in get(config, "responseModalities") or []]
    if any(m != "TEXT" for m in modalities):
        raise neutral.Unsupported(
            "generationConfig.responseModalities: text answers only",
            "generationConfig.responseModalities",
        )
    request.output_format = _output_format(config)
    request.reasoning = _reasoning(get(config, "thinkingConfig"))
    request.dropped.extend(_unread(config, _READ_GENERATION, "generationConfig."))


def _output_format(config: dict[str, Any]) -> neutral.OutputFormat | None:
    mime = get(config, "responseMimeType")
    schema = get(config, "responseJsonSchema")
    if schema is None and (openapi := get(config, "responseSchema")) is not None:
        schema = json_schema_from_openapi(openapi)
    if mime in (None, "text/plain") and schema is None:
        return None
    if mime not in (None, "application/json"):
        raise neutral.Unsupported(
            f"generationConfig.responseMimeType {mime!r}", "generationConfig.responseMimeType"
        )
    return neutral.OutputFormat(schema=schema)


def _reasoning(config: Any) -> neutral.Reasoning | None:
    if config is None:
        return None
    config = expect_dict(config, "thinkingConfig")
    reasoning = neutral.Reasoning(include_thoughts=bool(get(config, "includeThoughts")))
    budget = get(config, "thinkingBudget")
    if budget == -1:  # dynamic: the model decides how much to think
        reasoning.enabled = True
    elif budget is not None:
        reasoning.budget_tokens = budget
        reasoning.enabled = budget != 0
    if (level := get(config, "thinkingLevel")) is not None:
        reasoning.effort = neutral.effort_named(str(level).lower())
    return reasoning


def _unread(fields: dict[str, Any], read: tuple[str, ...], prefix: str) -> list[str]:
    """The names of the fields this reader has no place for (the model, which belongs in the
    URL, is ignored rather than named)."""
    return [prefix + camel(key) for key in fields if camel(key) not in read]
