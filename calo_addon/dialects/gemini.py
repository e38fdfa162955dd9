"""Google Gemini (generativelanguage) wire format.

Paths: POST /{v1beta,v1}/models/{model}:{generateContent,streamGenerateContent,embedContent,
batchEmbedContents,countTokens}; GET /{v}/models and /{v}/models/{model}. The model lives in
the path; `streamGenerateContent` streams (SSE with `alt=sse`, else a JSON array sent in pieces).
Errors: {"error": {"code", "message", "status"}}. Usage: `usageMetadata`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from mitmproxy import http

from ..translate import gemini as gemini_codec
from ..translate.neutral import Usage, int_or_none
from .base import (
    Dialect,
    Operation,
    Turn,
    decode_model,
    digest,
    json_response,
    listed_turns,
)

GOOGLE_HOST = "generativelanguage.googleapis.com"

_METHODS = {
    "generateContent": True,  # value: carries a conversation
    "streamGenerateContent": True,
    "embedContent": False,
    "batchEmbedContents": False,
    "countTokens": False,
}
_CALL = re.compile(r"^/(v1beta|v1)/models/(.+):([A-Za-z]+)$")  # the model is checked when decoded
_MODELS = re.compile(r"^/(v1beta|v1)/models(?:/([^/:]+))?/?$")

# Gemini claims the shared GET /v1/models only when the key came the way Google's SDKs send it.
GEMINI_KEY_SOURCES = ("x-goog-api-key", "query")
_FUNCTION_KINDS = ("functionCall", "function_call", "functionResponse", "function_response")


def quote_model(model: str) -> str:
    return quote(model, safe="-._~@")


class Gemini(Dialect):
    name = "gemini"
    hosts = (GOOGLE_HOST,)
    default_auth = "x-goog-api-key"
    also_serves = ("openai",)  # under /v1beta/openai/
    own_auth = ("x-goog-api-key",)

    def recognise(self, method: str, path: str, key_source: str | None) -> Operation | None:
        if method == "POST" and (m := _CALL.match(path)):
            _, segment, call = m.groups()
            if call not in _METHODS:
                return None
            return Operation(
                dialect=self,
                name=call,
                path_model=decode_model(segment),
                needs_body=True,
                path_streams=call == "streamGenerateContent",
                conversation=_METHODS[call],
                counts_tokens=call == "countTokens",
            )
        if method == "GET" and (m := _MODELS.match(path)):
            version, segment = m.groups()
            if version == "v1" and segment is None and key_source not in GEMINI_KEY_SOURCES:
                return None  # OpenAI's GET /v1/models
            return Operation(
                dialect=self,
                name="models.get" if segment else "models.list",
                path_model=decode_model(segment) if segment else None,
            )
        return None

    def claims_path(self, path: str) -> bool:
        return path.startswith(("/v1beta/", "/v1/models"))

    def set_model(self, op: Operation, request: http.Request, body: Any, model: str) -> bool:
        path, sep, query = request.path.partition("?")
        head, _, tail = path.rpartition("/models/")
        rest = tail.split(":", 1)
        suffix = f":{rest[1]}" if len(rest) == 2 else ""
        request.path = f"{head}/models/{quote_model(model)}{suffix}{sep}{query}"
        return False

    def error(self, status: int, message: str, code: str | None = None) -> http.Response:
        return json_response(status, gemini_codec.error_payload(status, message))

    def usage(self, event_type: str | None, payload: Any) -> Usage | None:
        meta = payload.get("usageMetadata") if isinstance(payload, dict) else None
        if not isinstance(meta, dict):
            return None
        thoughts = int_or_none(meta.get("thoughtsTokenCount"))
        candidates = int_or_none(meta.get("candidatesTokenCount"))
        output = (
            None if candidates is None and thoughts is None else (candidates or 0) + (thoughts or 0)
        )
        return Usage(
            input_tokens=int_or_none(meta.get("promptTokenCount")),
            output_tokens=output,
            cached_input_tokens=int_or_none(meta.get("cachedContentTokenCount")),
            reasoning_tokens=thoughts,
        )

    def finished(self, event_type: str | None, payload: Any) -> bool:
        try:
            return bool(payload["candidates"][0].get("finishReason"))
        except (KeyError, IndexError, TypeError, AttributeError):
            return False

    # ------------------------------------------------------------ conversation

    def turns(self, op: Operation, body: Any) -> list | None:
        return listed_turns(op, body, "contents")

    def canonical(self, message: Any) -> Turn:
        if not isinstance(message, dict):
            return ("?", repr(message), ())
        text, tools = [], []
        for part in message.get("parts") or []:
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str):
                text.append(part["text"])
            kinds = [k for k in _FUNCTION_KINDS if isinstance(part.get(k), dict)]
            tools += [f"{k}:{part[k].get('name', '')}" for k in kinds]
            if not kinds and not isinstance(part.get("text"), str):
                tools.append(digest(part))  # an image, a file: identity beyond text
        return (message.get("role") or "user", "".join(text), tuple(tools))

    def is_boundary(self, message: Any) -> bool:
        if not isinstance(message, dict) or message.get("role") != "model":
            return False
        parts = message.get("parts") or []
        return not any(
            isinstance(p, dict) and ("functionCall" in p or "function_call" in p) for p in parts
        )

    def inject(self, op: Operation, body: Any, remaining: list, context: str) -> None:
        body["contents"] = remaining
        key = "systemInstruction" if "systemInstruction" in body else "system_instruction"
        existing = body.get(key)
        if isinstance(existing, dict) and isinstance(existing.get("parts"), list):
            existing["parts"].insert(0, {"text": context})
        else:
            body[key] = {"parts": [{"text": context}]}

    def reply(self, op: Operation, payload: Any) -> dict | None:
        try:
            content = payload["candidates"][0]["content"]
        except (KeyError, IndexError, TypeError):
            return None
        return {"role": "model", **content} if isinstance(content, dict) else None

    # ------------------------------------------------------------ translation

    def codec(self, op: Operation | None = None, model: str | None = None):
        return gemini_codec.CODEC

    def translated_path(self, model: str, streaming: bool) -> str:
        method = "streamGenerateContent?alt=sse" if streaming else "generateContent"
        return f"/v1beta/models/{quote_model(model)}:{method}"

    def count_request(self, request: Any, model: str):
        codec = self.codec()
        body = {
            "generateContentRequest": {"model": f"models/{model}", **codec.write_request(request)}
        }
        return codec, f"/v1beta/models/{quote_model(model)}:countTokens", body

    def count_answer_tokens(self, payload: Any) -> int | None:
        return int_or_none(payload.get("totalTokens")) if isinstance(payload, dict) else None

    def count_answer(self, tokens: int) -> dict[str, Any]:
        return {"totalTokens": tokens}


GEMINI = Gemini()
