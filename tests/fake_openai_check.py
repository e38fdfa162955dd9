"""Refuses an OpenAI Chat Completions body the way the real API does (400
invalid_request_error), for FakeOpenAI. Messages follow the real API's wording where known."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from tests.fake_server import words

FIELDS = words(
    "model messages audio frequency_penalty function_call functions logit_bias logprobs "
    "max_completion_tokens max_tokens metadata modalities n parallel_tool_calls prediction "
    "presence_penalty prompt_cache_key reasoning_effort response_format safety_identifier seed "
    "service_tier stop store stream stream_options temperature tool_choice tools top_logprobs "
    "top_p user verbosity web_search_options extra_body moderation prompt_cache_options "
    "prompt_cache_retention"
)
PART_TYPES = ("text", "image_url", "input_audio", "file", "refusal")
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class Refused(Exception):
    def __init__(self, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


def check_chat(body: Any) -> None:
    """Raise ``Refused`` for what the real Chat Completions API refuses."""
    if not isinstance(body, dict):
        raise Refused("The request body must be a JSON object.")
    for name in body:
        if name not in FIELDS:
            raise Refused(f"Unrecognized request argument supplied: {name}")
    if not body.get("model"):
        raise Refused("you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list):
        kind = type(messages).__name__
        raise Refused(
            f"Invalid type for 'messages': expected an array of objects, but got {kind} instead.",
            "messages",
            "invalid_type",
        )
    if not messages:
        raise Refused(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got "
            "an empty array instead.",
            "messages",
            "empty_array",
        )
    _check_messages(messages)
    _check_tools(body.get("tools") or [])
    if "stream_options" in body and not body.get("stream"):
        raise Refused(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        )
    temperature = body.get("temperature")
    if temperature is not None and not 0 <= temperature <= 2:
        raise Refused(f"Invalid 'temperature': Expected a value <= 2, but got {temperature}.")


def _check_messages(messages: list) -> None:
    pending: list[str] = []  # tool call ids the next tool messages must answer
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            raise Refused(f"Invalid value: '{role}'. Supported values are: {ROLES}.")
        _check_parts(i, message.get("content"))
        if role == "tool":
            if message.get("tool_call_id") not in pending:
                raise Refused(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    f"messages.[{i}].role",
                )
            pending.remove(message["tool_call_id"])
            continue
        if pending:
            raise Refused(
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(pending)}",
                f"messages.[{i}].role",
            )
        for k, call in enumerate(message.get("tool_calls") or [] if role == "assistant" else []):
            arguments = (call.get("function") or {}).get("arguments")
            if not isinstance(arguments, str):
                raise Refused(
                    f"Invalid type for 'messages[{i}].tool_calls[{k}].function.arguments': "
                    "expected a string, but got an object instead.",
                    f"messages[{i}].tool_calls[{k}].function.arguments",
                    "invalid_type",
                )
            pending.append(call.get("id"))
    if pending:
        raise Refused(
            "An assistant message with 'tool_calls' must be followed by tool messages "
            "responding to each 'tool_call_id'. The following tool_call_ids did not have "
            f"response messages: {', '.join(pending)}",
            "messages",
        )


def _check_parts(i: int, content: Any) -> None:
    """Content parts: known types; an image given inline is a base64 data URL."""
    for j, part in enumerate(content if isinstance(content, list) else []):
        kind = part.get("type") if isinstance(part, dict) else None
        where = f"messages[{i}].content[{j}]"
        if kind not in PART_TYPES:
            raise Refused(f"Invalid value: '{kind}'. Supported values are: {PART_TYPES}.", where)
        url = (part.get("image_url") or {}).get("url", "") if kind == "image_url" else ""
        if url.startswith("data:") and not _is_base64_image(url):
            raise Refused(
                f"Invalid '{where}.image_url.url'. Expected a base64-encoded data URL with an "
                "image MIME type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU=').",
                f"{where}.image_url.url",
                "invalid_image_url",
            )


def _is_base64_image(url: str) -> bool:
    head, _, data = url.partition(",")
    if not (head.startswith("data:image/") and head.endswith(";base64")):
        return False
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _check_tools(tools: list) -> None:
    for k, tool in enumerate(tools):
        if tool.get("type") == "custom":
            continue
        function = tool.get("function") or {}
        name = function.get("name")
        if tool.get("type") != "function" or not (isinstance(name, str) and TOOL_NAME.match(name)):
            raise Refused(
                f"Invalid 'tools[{k}].function.name': string does not match pattern. Expected "
                "a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                f"tools[{k}].function.name",
            )
        schema = function.get("parameters")
        if schema is not None and (not isinstance(schema, dict) or schema.get("type") != "object"):
            got = schema.get("type") if isinstance(schema, dict) else schema
            raise Refused(
                f"Invalid schema for function '{name}': schema must be a JSON Schema of "
                f"'type: \"object\"', got 'type: \"{got}\"'.",
                f"tools[{k}].function.parameters",
                "invalid_function_parameters",
            )
