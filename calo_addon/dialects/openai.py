"""OpenAI-compatible wire format (api.openai.com and Google's /v1beta/openai/ layer).

Paths: POST /v1/chat/completions, /v1/embeddings; GET /v1/models; the same under
/v1beta/openai/. The model and the stream flag live in the JSON body.
Errors: {"error": {"message", "type", "param", "code"}}. Usage: `usage`.
"""

from __future__ import annotations

import re
import sys
from operator import itemgetter
from typing import Any

from mitmproxy import http

from .base import Operation, Refusal, Turn, Usage, int_or_none, json_response

name = "openai"
default_auth = "bearer"
plain_turn = ("role", "content")

_PATH = re.compile(r"^/(v1|v1beta/openai)/(chat/completions|embeddings|models)/?$")
_OPERATIONS = {
    ("POST", "chat/completions"): "chat.completions",
    ("POST", "embeddings"): "embeddings",
    ("GET", "models"): "models.list",
}
_TYPES = {
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", "forbidden"),
    404: ("invalid_request_error", "not_found"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


def recognise(method: str, path: str, key_source: str | None) -> Operation | None:
    m = _PATH.match(path)
    if not m or (method, m.group(2)) not in _OPERATIONS:
        return None
    operation = _OPERATIONS[(method, m.group(2))]
    return Operation(
        dialect=sys.modules[__name__],
        name=operation,
        needs_body=method == "POST",
        version=m.group(1),
        conversation=operation == "chat.completions",
    )


def _body_dict(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Refusal(400, "request body must be a JSON object")
    return body


def model(op: Operation, body: Any) -> str | None:
    if not op.needs_body:
        return None
    value = _body_dict(body).get("model")
    if value is not None and not isinstance(value, str):
        raise Refusal(400, "'model' must be a string")
    return value


def set_model(op: Operation, request: http.Request, body: Any, new_model: str) -> bool:
    _body_dict(body)["model"] = new_model
    return True


def streams(op: Operation, request: http.Request, body: Any) -> bool:
    return op.needs_body and _body_dict(body).get("stream") is True


def upstream_path(op: Operation, path: str, upstream_is_google: bool) -> str:
    """Google serves this API under /v1beta/openai/; everyone else under /v1/."""
    if upstream_is_google and path.startswith("/v1/"):
        return "/v1beta/openai/" + path[len("/v1/") :]
    if not upstream_is_google and path.startswith("/v1beta/openai/"):
        return "/v1/" + path[len("/v1beta/openai/") :]
    return path


def default_url(region: str) -> str | None:
    return None  # base_url


def error(status: int, message: str, code: str | None = None) -> http.Response:
    fallback = ("server_error" if status >= 500 else "invalid_request_error", None)
    kind, default_code = _TYPES.get(status, fallback)
    return json_response(
        status,
        {"error": {"message": message, "type": kind, "param": None, "code": code or default_code}},
    )


def usage(payload: Any) -> Usage | None:
    data = payload.get("usage") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        return None
    return Usage(
        input_tokens=int_or_none(data.get("prompt_tokens")),
        output_tokens=int_or_none(data.get("completion_tokens")),
        total_tokens=int_or_none(data.get("total_tokens")),
    )


def claims_path(path: str) -> bool:
    return path.startswith(("/v1beta/openai/", "/v1/chat", "/v1/embeddings", "/v1/"))


# ---------------------------------------------------------------- conversation (rollup)


def turns(op: Operation, body: Any) -> list | None:
    """The conversation's turns: its messages without the system (and developer) ones."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        return None
    return _split_system(messages)[1]


def _split_system(messages: list) -> tuple[list, list]:
    """(system messages, the other messages), each in order."""
    lead = 0
    while lead < len(messages) and _is_system(messages[lead]):
        lead += 1
    try:  # the common case, in C: no system message after the leading ones
        if set(map(_ROLE, messages[lead:])).isdisjoint(_SYSTEM_ROLES):
            return messages[:lead], messages[lead:]
    except (KeyError, TypeError):  # a message without a role, or not an object
        pass
    return [m for m in messages if _is_system(m)], [m for m in messages if not _is_system(m)]


_SYSTEM_ROLES = ("system", "developer")
_ROLE = itemgetter("role")


def _is_system(message: Any) -> bool:
    return isinstance(message, dict) and message.get("role") in _SYSTEM_ROLES


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def canonical(message: Any) -> Turn:
    if not isinstance(message, dict):
        return ("?", repr(message), ())
    content = message.get("content")
    if type(content) is str and "tool_calls" not in message and "tool_call_id" not in message:
        return (message.get("role") or "", content, ())  # the common case: no copy of the text
    tools = [c.get("id", "") for c in message.get("tool_calls") or [] if isinstance(c, dict)]
    tools += [message["tool_call_id"]] if message.get("tool_call_id") else []
    return (message.get("role") or "", _text(content), tuple(tools))


def is_boundary(message: Any) -> bool:
    return (
        isinstance(message, dict)
        and message.get("role") == "assistant"
        and not message.get("tool_calls")
    )


def inject(op: Operation, body: Any, remaining: list, context: str) -> None:
    system = _split_system(body["messages"])[0]
    body["messages"] = [*system, {"role": "system", "content": context}, *remaining]


def reply(op: Operation, payload: Any) -> dict | None:
    try:
        return payload["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        return None


def reply_from_events(op: Operation, events: list) -> dict | None:
    text, tool_calls = [], []
    for event in events:
        for choice in event.get("choices") or [] if isinstance(event, dict) else []:
            delta = choice.get("delta") or {}
            text.append(delta.get("content") or "")
            tool_calls += delta.get("tool_calls") or []
    if not text and not tool_calls:
        return None
    return {"role": "assistant", "content": "".join(text), "tool_calls": tool_calls or None}
