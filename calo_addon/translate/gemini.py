"""Google Gemini (generativelanguage, native `generateContent` / `streamGenerateContent`).

Upstream role: Anthropic, Chat and Responses clients are served from Gemini through this codec.
Client role: a Gemini request read, the answer and stream written back in Gemini's shape.

What Gemini needs that other protocols do not say, and where it is handled:
- every tool's JSON Schema goes whole as `parametersJsonSchema` (`_gemini_write_request`);
- function calls carry no ids: readers give them fresh ones (distinct even for two parallel
  calls of one function) and match functionResponses by name and order (`_gemini_parts`);
- thought signatures go back on exactly the part that carried them (`_gemini_parts`);
- the model is in the URL, so bodies carry none; the request writer still reads
  `Request.model` to choose `thinkingLevel` (Gemini 3) or `thinkingBudget` (earlier models).
"""

from __future__ import annotations

from typing import Any

from . import neutral
from ._gemini_answer import read_response, write_response
from ._gemini_read_request import read_request
from ._gemini_stream import GeminiStreamReader, GeminiStreamWriter, error_payload
from ._gemini_write_request import write_request

__all__ = ["CODEC", "GeminiCodec", "error_payload"]


class GeminiCodec:
    """Gemini's generateContent protocol in both roles (see the module docstring)."""

    name = "gemini"

    # client role
    def read_request(self, body: Any) -> neutral.Request:
        """A generateContent body; `Request.model` stays None (the model is in the URL) and
        `Request.stream` False (the method name says it; the pipeline fills both)."""
        return read_request(body)

    def write_response(self, response: neutral.Response) -> dict[str, Any]:
        return write_response(response)

    def stream_writer(self, request: neutral.Request) -> GeminiStreamWriter:
        return GeminiStreamWriter(request)

    # upstream role
    def write_request(self, request: neutral.Request) -> dict[str, Any]:
        return write_request(request)

    def read_response(self, payload: Any) -> neutral.Response:
        return read_response(payload)

    def stream_reader(self) -> GeminiStreamReader:
        return GeminiStreamReader()

    def error_message(self, payload: Any) -> str | None:
        """The message of `{"error": {"code", "message", "status"}}` (also as the first item of
        a JSON-array stream)."""
        if isinstance(payload, list) and payload:
            payload = payload[0]
        if isinstance(payload, dict) and isinstance(error := payload.get("error"), dict):
            message = error.get("message")
            return message if isinstance(message, str) else None
        return None


CODEC = GeminiCodec()
