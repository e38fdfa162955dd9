"""Refuses a Gemini generateContent body the way the real API does (400 INVALID_ARGUMENT),
including a Gemini 3 model's demand for its thought signatures, for FakeGemini.

Field names are accepted in camelCase and snake_case, as Google's JSON parser does.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import Counter
from typing import Any

from tests.fake_server import words

REQUEST = words(
    "contents tools toolConfig safetySettings systemInstruction generationConfig "
    "cachedContent labels model serviceTier"
)
GENERATION = words(
    "stopSequences responseMimeType responseSchema responseJsonSchema responseModalities "
    "candidateCount maxOutputTokens temperature topP topK seed presencePenalty frequencyPenalty "
    "responseLogprobs logprobs enableEnhancedCivicAnswers speechConfig thinkingConfig "
    "mediaResolution imageConfig audioTimestamp"
)
THINKING = frozenset({"includeThoughts", "thinkingBudget", "thinkingLevel"})
PART_DATA = tuple(
    words(
        "text inlineData fileData functionCall functionResponse executableCode codeExecutionResult"
    )
)
PART = frozenset(
    [*PART_DATA, "thought", "thoughtSignature", "videoMetadata", "mediaResolution", "partMetadata"]
)
TOOL = words(
    "functionDeclarations googleSearch googleSearchRetrieval codeExecution urlContext "
    "computerUse fileSearch googleMaps"
)
DECLARATION = words(
    "name description parameters parametersJsonSchema response responseJsonSchema behavior"
)
SCHEMA = words(
    "type format title description nullable enum maxItems minItems properties required "
    "minProperties maxProperties minLength maxLength pattern example anyOf propertyOrdering "
    "default items minimum maximum"
)
FUNCTION_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$")
DUMMY_SIGNATURES = frozenset(
    {"skip_thought_signature_validator", "context_engineering_is_the_way_to_go"}
)
MISSING_SIGNATURE = (
    "Function call is missing a thought_signature in functionCall parts. This is required "
    "for tools to work correctly, and missing thought_signature may lead to degraded model "
    "performance. Additional data, function call `default_api:{name}` , position {position}. "
    "Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
)


class Invalid(Exception):
    """A refusal: HTTP ``status`` with Google's ``code`` name."""

    def __init__(self, message: str, status: int = 400, code: str = "INVALID_ARGUMENT"):
        super().__init__(message)
        self.message, self.status, self.code = message, status, code


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def pick(value: dict, name: str) -> Any:
    """A field by its camelCase name, written in either case."""
    snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)
    return value.get(name, value.get(snake))


def _known(value: Any, allowed: frozenset[str], where: str) -> dict:
    if not isinstance(value, dict):
        raise Invalid(f"Invalid value at '{where}': expected an object")
    for name in value:
        if camel(name) not in allowed:
            raise Invalid(
                f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': "
                "Cannot find field."
            )
    return value


def check_request(body: Any) -> None:
    """Raise ``Invalid`` for a request the real generateContent refuses."""
    _known(body, REQUEST, "")
    check_contents(pick(body, "contents"))
    system = pick(body, "systemInstruction")
    if system is not None:
        for j, part in enumerate(pick(system, "parts") or []):
            _check_part(part, f"system_instruction.parts[{j}]")
    generation = _known(pick(body, "generationConfig") or {}, GENERATION, "generation_config")
    _known(pick(generation, "thinkingConfig") or {}, THINKING, "generation_config.thinking_config")
    limit = pick(generation, "maxOutputTokens")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise Invalid("max_output_tokens must be a positive integer")
    temperature = pick(generation, "temperature")
    if temperature is not None and not 0 <= temperature <= 2:
        raise Invalid("temperature must be in [0.0, 2.0]")
    names = _check_tools(pick(body, "tools") or [])
    _check_tool_config(pick(body, "toolConfig"), names)


def check_contents(contents: Any) -> None:
    if not isinstance(contents, list) or not contents:
        raise Invalid("* GenerateContentRequest.contents: contents is not specified")
    for i, content in enumerate(contents):
        where = f"contents[{i}]"
        if not isinstance(content, dict):
            raise Invalid(f"Invalid value at '{where}': expected an object")
        if content.get("role") not in (None, "user", "model"):
            raise Invalid("Please use a valid role: user, model.")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            raise Invalid(
                f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty."
            )
        for j, part in enumerate(parts):
            _check_part(part, f"{where}.parts[{j}]")
    _check_function_turns(contents)


def _check_part(part: Any, where: str) -> None:
    _known(part, PART, where)
    data = [camel(k) for k in part if camel(k) in PART_DATA]
    if not data:
        raise Invalid(
            f"* {where}.data: required oneof field 'data' must have one initialized field"
        )
    if len(data) > 1:
        raise Invalid(
            f"Invalid value at '{where}' (oneof), oneof field 'data' is already set. "
            f"Cannot set '{data[1]}'"
        )
    inline = pick(part, "inlineData")
    if inline is not None:
        try:
            base64.b64decode(pick(inline, "data") or "", validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise Invalid(f"Invalid value at '{where}.inline_data.data' (TYPE_BYTES)") from None
        if not pick(inline, "mimeType"):
            raise Invalid(f"* {where}.inline_data.mime_type: mime_type must be set")
    call = pick(part, "functionCall")
    if call is not None and not (isinstance(call, dict) and call.get("name")):
        raise Invalid(f"* {where}.function_call.name: Name cannot be empty.")
    response = pick(part, "functionResponse")
    if response is not None and not (
        isinstance(response, dict)
        and response.get("name")
        and isinstance(response.get("response"), dict)
    ):
        raise Invalid(f"Invalid value at '{where}.function_response': name and response needed")


def calls(content: dict) -> list[dict]:
    return [pick(p, "functionCall") for p in content["parts"] if pick(p, "functionCall")]


def responses(content: dict) -> list[dict]:
    return [pick(p, "functionResponse") for p in content["parts"] if pick(p, "functionResponse")]


def _check_function_turns(contents: list[dict]) -> None:
    """A function-call turn follows a user or function-response turn; a function-response
    turn follows a function-call turn and answers each of its calls, by name."""
    for i, content in enumerate(contents):
        role = content.get("role") or "user"
        previous = contents[i - 1] if i else None
        if calls(content):
            if role != "model":
                raise Invalid("Function calls are only allowed in model turns.")
            if previous is None or (previous.get("role") or "user") != "user":
                raise Invalid(
                    "Please ensure that function call turn comes immediately after a user "
                    "turn or after a function response turn."
                )
        answered = responses(content)
        if not answered:
            continue
        asked = calls(previous) if previous and previous.get("role") == "model" else []
        if not asked:
            raise Invalid(
                "Please ensure that function response turn comes immediately after a "
                "function call turn."
            )
        if len(answered) != len(asked):
            raise Invalid(
                "Please ensure that the number of function response parts is equal to the "
                "number of function call parts of the function call turn."
            )
        if Counter(r["name"] for r in answered) != Counter(c["name"] for c in asked):
            raise Invalid(
                "Please ensure that the function response names match the function call "
                "names of the function call turn."
            )


def _check_schema(schema: Any, where: str) -> None:
    """``parameters`` is Google's OpenAPI subset: JSON Schema keys such as ``$schema`` or
    ``additionalProperties`` are unknown fields there (they belong in parametersJsonSchema)."""
    _known(schema, SCHEMA, where)
    for name, inner in (schema.get("properties") or {}).items():
        _check_schema(inner, f"{where}.properties[{name}].value")
    if "items" in schema:
        _check_schema(schema["items"], f"{where}.items")
    for k, inner in enumerate(pick(schema, "anyOf") or []):
        _check_schema(inner, f"{where}.any_of[{k}]")


def _check_tools(tools: Any) -> list[str]:
    names: list[str] = []
    for t, tool in enumerate(tools):
        _known(tool, TOOL, f"tools[{t}]")
        for d, declaration in enumerate(pick(tool, "functionDeclarations") or []):
            where = f"tools[{t}].function_declarations[{d}]"
            _known(declaration, DECLARATION, where)
            name = declaration.get("name")
            if not (isinstance(name, str) and FUNCTION_NAME.match(name)):
                raise Invalid(
                    f"* GenerateContentRequest.{where}.name: Invalid function name. Must start "
                    "with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), "
                    "underscores (_), dots (.), colons (:), or dashes (-), with a maximum "
                    "length of 64."
                )
            if name in names:
                raise Invalid(f"Duplicate function declaration found: {name}")
            names.append(name)
            schema, json_schema = (
                pick(declaration, "parameters"),
                pick(declaration, "parametersJsonSchema"),
            )
            if schema is not None and json_schema is not None:
                raise Invalid(
                    f"* GenerateContentRequest.{where}: parameters and parameters_json_schema "
                    "cannot both be set."
                )
            if schema is not None:
                _check_schema(schema, f"{where}.parameters")
    return names


def _check_tool_config(config: Any, names: list[str]) -> None:
    calling = pick(config or {}, "functionCallingConfig") or {}
    mode = str(calling.get("mode") or "AUTO").upper()
    if mode not in ("AUTO", "ANY", "NONE", "VALIDATED", "MODE_UNSPECIFIED"):
        raise Invalid(f"Invalid value at 'tool_config.function_calling_config.mode': {mode}")
    allowed = pick(calling, "allowedFunctionNames")
    if allowed and mode not in ("ANY", "VALIDATED"):
        raise Invalid(
            "* GenerateContentRequest.tool_config.function_calling_config.allowed_function_"
            "names: allowed_function_names can only be set when mode is ANY."
        )
    for name in allowed or []:
        if name not in names:
            raise Invalid(f"allowed_function_names: function {name} is not declared")


def decode_signature(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value.replace("-", "+").replace("_", "/") + "==", validate=False)
    except (binascii.Error, ValueError):
        return None


def check_signatures(
    contents: list[dict], issued: dict[bytes, Any], scope: str = "current", dummies: bool = False
) -> None:
    """Gemini 3: the first functionCall part of each model step must carry, unchanged, the
    signature issued with it. ``scope`` "current" checks the steps since the last user text
    (what the real API enforces), "all" every step."""
    start = 0
    if scope == "current":
        for i, content in enumerate(contents):
            if (content.get("role") or "user") == "user" and not responses(content):
                start = i
    for content in contents[start:]:
        if content.get("role") != "model":
            continue
        for position, part in enumerate(content["parts"], start=1):
            call = pick(part, "functionCall")
            if not call:
                continue
            signature = pick(part, "thoughtSignature")
            if not signature:
                raise Invalid(MISSING_SIGNATURE.format(name=call["name"], position=position))
            if dummies and signature in DUMMY_SIGNATURES:
                break
            expected = issued.get(decode_signature(signature) or b"")
            if expected != (call["name"], call.get("args") or {}):
                raise Invalid("Corrupted thought signature.")
            break
