"""OpenAI Responses wire format (Codex, the openai SDK's `client.responses`).

Path: POST /v1/responses (streamed when the body says "stream": true). The model lives in the
body. Errors: OpenAI's {"error": {...}}. Usage: `usage` in the answer; in a stream, the
`response.completed` (or `.incomplete` / `.failed`) event's response.
"""

from __future__ import annotations

from typing import Any

from mitmproxy import http

from ..translate import responses as responses_codec
from ..translate.neutral import Usage
from .base import Dialect, ModelInBody, Operation
from .openai import openai_error, openai_usage

_FINAL = ("response.completed", "response.incomplete", "response.failed")


class Responses(ModelInBody):
    name = "responses"
    default_auth = "bearer"

    def recognise(self, method: str, path: str, key_source: str | None) -> Operation | None:
        if method == "POST" and path.rstrip("/") in ("/v1/responses", "/v1beta/openai/responses"):
            return Operation(dialect=self, name="responses", needs_body=True, conversation=True)
        return None

    def claims_path(self, path: str) -> bool:
        return path.startswith("/v1/responses")

    def upstream_path(self, op: Operation, path: str, upstream: Dialect) -> str:
        return "/v1/responses"

    def error(self, status: int, message: str, code: str | None = None) -> http.Response:
        return openai_error(status, message, code)

    def usage(self, event_type: str | None, payload: Any) -> Usage | None:
        if not isinstance(payload, dict):
            return None
        if isinstance(payload.get("response"), dict):  # a stream event wrapping the response
            payload = payload["response"]
        return openai_usage(payload.get("usage"))

    def finished(self, event_type: str | None, payload: Any) -> bool:
        return isinstance(payload, dict) and payload.get("type") in _FINAL

    # ------------------------------------------------------------ translation

    def codec(self, op: Operation | None = None, model: str | None = None):
        return responses_codec.CODEC

    def translated_path(self, model: str, streaming: bool) -> str:
        return "/v1/responses"


RESPONSES = Responses()
