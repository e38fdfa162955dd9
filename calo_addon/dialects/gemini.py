"""Google Gemini (generativelanguage) wire format.

Paths: POST /{v1beta,v1}/models/{model}:{generateContent,streamGenerateContent,embedContent,
batchEmbedContents,countTokens}; GET /{v}/models and /{v}/models/{model}. The model lives in
the path; `streamGenerateContent` streams (SSE with `alt=sse`, else a JSON array sent in pieces).
Errors: {"error": {"code", "message", "status"}}. Usage: `usageMetadata`.
"""

from __future__ import annotations

import re
import sys
from typing import Any
from urllib.parse import quote

from mitmproxy import http

from .base import Operation, Turn, Usage, decode_model, int_or_none, json_response

name = "gemini"
default_auth = "x-goog-api-key"
plain_turn = None  # parts are always a list

_METHODS = {
    "generateContent": True,  # value: carries a conversation
    "streamGenerateContent": True,
    "embedContent": False,
    "batchEmbedContents": False,
    "countTokens": False,
}
_CALL = re.compile(r"^/(v1beta|v1)/models/(.+):([A-Za-z]+)$")  # the model is checked when decoded
_MODELS = re.compile(r"^/(v1beta|v1)/models(?:/([^/:]+))?/?$")

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# Gemini claims the shared GET /v1/models only when the key came the way Google's SDKs send it.
GEMINI_KEY_SOURCES = ("x-goog-api-key", "query")


def recognise(method: str, path: str, key_source: str | None) -> Operation | None:
    me = sys.modules[__name__]
    if method == "POST" and (m := _CALL.match(path)):
        version, segment, call = m.groups()
        if call not in _METHODS:
            return None
        return Operation(
            dialect=me,
            name=call,
            path_model=decode_model(segment),
            needs_body=True,
            path_streams=call == "streamGenerateContent",
            version=version,
            conversation=_METHODS[call],
        )
    if method == "GET" and (m := _MODELS.match(path)):
        version, segment = m.groups()
        if version == "v1" and segment is None and key_source not in GEMINI_KEY_SOURCES:
            return None  # OpenAI's GET /v1/models
        return Operation(
            dialect=me,
            name="models.get" if segment else "models.list",
            path_model=decode_model(segment) if segment else None,
            version=version,
        )
    return None


def model(op: Operation, body: Any) -> str | None:
    return op.path_model


def set_model(op: Operation, request: http.Request, body: Any, new_model: str) -> bool:
    path, sep, query = request.path.partition("?")
    head, _, tail = path.rpartition("/models/")
    rest = tail.split(":", 1)
    suffix = f":{rest[1]}" if len(rest) == 2 else ""
    request.path = f"{head}/models/{quote(new_model, safe='-._~@')}{suffix}{sep}{query}"
    return False


def streams(op: Operation, request: http.Request, body: Any) -> bool:
    return op.path_streams


def upstream_path(op: Operation, path: str, upstream_is_google: bool) -> str:
    return path


def default_url(region: str) -> str | None:
    return None  # base_url


def error(status: int, message: str, code: str | None = None) -> http.Response:
    return json_response(
        status,
        {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}},
    )


def usage(payload: Any) -> Usage | None:
    meta = payload.get("usageMetadata") if isinstance(payload, dict) else None
    if not isinstance(meta, dict):
        return None
    return Usage(
        input_tokens=int_or_none(meta.get("promptTokenCount")),
        output_tokens=int_or_none(meta.get("candidatesTokenCount")),
        total_tokens=int_or_none(meta.get("totalTokenCount")),
    )


def claims_path(path: str) -> bool:
    return path.startswith(("/v1beta/", "/v1/models"))


# ---------------------------------------------------------------- conversation (rollup)


def turns(op: Operation, body: Any) -> list | None:
    contents = body.get("contents") if isinstance(body, dict) else None
    return contents if isinstance(contents, list) and op.conversation else None


def canonical(message: Any) -> Turn:
    if not isinstance(message, dict):
        return ("?", repr(message), ())
    text, tools = [], []
    for part in message.get("parts") or []:
        if not isinstance(part, dict):
            continue
        text.append(part.get("text", ""))
        for kind in ("functionCall", "function_call", "functionResponse", "function_response"):
            if isinstance(part.get(kind), dict):
                tools.append(f"{kind}:{part[kind].get('name', '')}")
    return (message.get("role") or "user", "".join(text), tuple(tools))


def is_boundary(message: Any) -> bool:
    if not isinstance(message, dict) or message.get("role") != "model":
        return False
    parts = message.get("parts") or []
    return not any(
        isinstance(p, dict) and ("functionCall" in p or "function_call" in p) for p in parts
    )


def inject(op: Operation, body: Any, remaining: list, context: str) -> None:
    body["contents"] = remaining
    key = "systemInstruction" if "systemInstruction" in body else "system_instruction"
    existing = body.get(key)
    if isinstance(existing, dict) and isinstance(existing.get("parts"), list):
        existing["parts"].insert(0, {"text": context})
    else:
        body[key] = {"parts": [{"text": context}]}


def reply(op: Operation, payload: Any) -> dict | None:
    try:
        content = payload["candidates"][0]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return {"role": "model", **content} if isinstance(content, dict) else None


def reply_from_events(op: Operation, events: list) -> dict | None:
    parts = []
    for event in events:
        message = reply(op, event)
        parts += message.get("parts") or [] if message else []
    if not parts:
        return None
    text = "".join(p.get("text", "") for p in parts if isinstance(p, dict) and "text" in p)
    calls = [
        p for p in parts if isinstance(p, dict) and ("functionCall" in p or "function_call" in p)
    ]
    return {"role": "model", "parts": [{"text": text}, *calls]}


def summary_request(model: str, prompt: str) -> tuple[str, dict]:
    """The summariser call, in this dialect (the rollup's summariser speaks Gemini)."""
    path = f"/v1beta/models/{quote(model, safe='-._~@')}:generateContent"
    return path, {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}


def summary_text(payload: Any) -> str | None:
    message = reply(None, payload)  # type: ignore[arg-type]
    if not message:
        return None
    text = "".join(p.get("text", "") for p in message.get("parts") or [] if isinstance(p, dict))
    return text.strip() or None
