"""OpenAI-compatible wire format (api.openai.com and Google's /v1beta/openai/ layer).

Paths: POST /v1/chat/completions, /v1/embeddings; GET /v1/models; the same under
/v1beta/openai/. The model and the stream flag live in the JSON body.
Errors: {"error": {"message", "type", "param", "code"}}. Usage: `usage`.
"""

from __future__ import annotations

import re
from operator import itemgetter
from typing import Any

from mitmproxy import http

from ..translate import chat as chat_codec
from ..translate.neutral import Usage, int_or_none
from .base import (
    Dialect,
    ModelInBody,
    Operation,
    Turn,
    json_response,
    listed_turns,
    text_of,
)

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
GOOGLE_LAYER = "/v1beta/openai/"


def openai_error(status: int, message: str, code: str | None = None) -> http.Response:
    fallback = ("server_error" if status >= 500 else "invalid_request_error", None)
    kind, default_code = _TYPES.get(status, fallback)
    return json_response(
        status,
        {"error": {"message": message, "type": kind, "param": None, "code": code or default_code}},
    )


def openai_usage(data: Any) -> Usage | None:
    """Chat (prompt/completion) and Responses (input/output) usage objects."""
    if not isinstance(data, dict):
        return None
    prompt = data.get("prompt_tokens", data.get("input_tokens"))
    completion = data.get("completion_tokens", data.get("output_tokens"))
    details_in = data.get("prompt_tokens_details") or data.get("input_tokens_details") or {}
    details_out = data.get("completion_tokens_details") or data.get("output_tokens_details") or {}
    return Usage(
        input_tokens=int_or_none(prompt),
        output_tokens=int_or_none(completion),
        cached_input_tokens=int_or_none(details_in.get("cached_tokens"))
        if isinstance(details_in, dict)
        else None,
        reasoning_tokens=int_or_none(details_out.get("reasoning_tokens"))
        if isinstance(details_out, dict)
        else None,
    )


class OpenAI(ModelInBody):
    name = "openai"
    hosts = ("api.openai.com",)
    default_auth = "bearer"
    plain_turn = ("role", "content")

    def recognise(self, method: str, path: str, key_source: str | None) -> Operation | None:
        m = _PATH.match(path)
        if not m or (method, m.group(2)) not in _OPERATIONS:
            return None
        operation = _OPERATIONS[(method, m.group(2))]
        return Operation(
            dialect=self,
            name=operation,
            needs_body=method == "POST",
            conversation=operation == "chat.completions",
        )

    def claims_path(self, path: str) -> bool:
        return path.startswith((GOOGLE_LAYER, "/v1/"))

    def ask_stream_usage(self, op: Operation, body: Any) -> bool:
        """Chat streams report usage only with `stream_options.include_usage` (a last chunk
        with `choices: []`)."""
        if not (op.conversation and isinstance(body, dict) and body.get("stream") is True):
            return False
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage") is True:
            return False
        body["stream_options"] = {**(options if isinstance(options, dict) else {}),
                                  "include_usage": True}  # fmt: skip
        return True

    def upstream_path(self, op: Operation, path: str, upstream: Dialect) -> str:
        """Google serves this API under /v1beta/openai/ (when the upstream is Gemini's host);
        everyone else under /v1/."""
        google = upstream.name == "gemini"
        if google and path.startswith("/v1/"):
            return GOOGLE_LAYER + path[len("/v1/") :]
        if not google and path.startswith(GOOGLE_LAYER):
            return "/v1/" + path[len(GOOGLE_LAYER) :]
        return path

    def error(self, status: int, message: str, code: str | None = None) -> http.Response:
        return openai_error(status, message, code)

    def usage(self, event_type: str | None, payload: Any) -> Usage | None:
        return openai_usage(payload.get("usage") if isinstance(payload, dict) else None)

    def finished(self, event_type: str | None, payload: Any) -> bool:
        return payload == "[DONE]"

    # ------------------------------------------------------------ conversation

    def turns(self, op: Operation, body: Any) -> list | None:
        """The conversation's turns: its messages without the system (and developer) ones."""
        messages = listed_turns(op, body)
        return None if messages is None else _split_system(messages)[1]

    def canonical(self, message: Any) -> Turn:
        if not isinstance(message, dict):
            return ("?", repr(message), ())
        content = message.get("content")
        if type(content) is str and "tool_calls" not in message and "tool_call_id" not in message:
            return (message.get("role") or "", content, ())  # the common case: no copy
        text, tools = text_of(content)
        calls = message.get("tool_calls")
        tools += (
            [c.get("id", "") for c in calls if isinstance(c, dict)]
            if isinstance(calls, list)
            else []
        )
        if message.get("tool_call_id"):
            tools.append(str(message["tool_call_id"]))
        return (message.get("role") or "", text, tuple(tools))

    def is_boundary(self, message: Any) -> bool:
        return (
            isinstance(message, dict)
            and message.get("role") == "assistant"
            and not message.get("tool_calls")
        )

    def inject(self, op: Operation, body: Any, remaining: list, context: str) -> None:
        system = _split_system(body["messages"])[0]
        body["messages"] = [*system, {"role": "system", "content": context}, *remaining]

    def reply(self, op: Operation, payload: Any) -> dict | None:
        try:
            return payload["choices"][0]["message"]
        except (KeyError, IndexError, TypeError):
            return None

    # ------------------------------------------------------------ translation

    def codec(self, op: Operation | None = None, model: str | None = None):
        return chat_codec.CODEC

    def translated_path(self, model: str, streaming: bool) -> str:
        return "/v1/chat/completions"


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


OPENAI = OpenAI()
