"""OpenAI Chat Completions, both roles: the protocol of the openai SDK's
`chat.completions`, opencode, aider and LangChain (client role), and of OpenAI-compatible
servers such as vLLM, Ollama, llama.cpp, Google's /v1beta/openai/ layer and OpenAI itself
(upstream role).

The pieces live in private modules: `_chat_request` and `_chat_settings` read requests,
`_chat_upstream` writes them, `_chat_answer` writes and reads whole answers, and
`_chat_stream_write` / `_chat_stream_read` do the same for streams.
"""

from __future__ import annotations

from typing import Any

from . import neutral
from ._chat_answer import read_response as _read_response
from ._chat_answer import write_response as _write_response
from ._chat_request import read_request as _read_request
from ._chat_stream_read import ChatStreamReader
from ._chat_stream_write import ChatStreamWriter
from ._chat_upstream import write_request as _write_request


class ChatCodec:
    name = "chat"

    # client role
    def read_request(self, body: Any) -> neutral.Request:
        return _read_request(body)

    def write_response(self, response: neutral.Response) -> dict[str, Any]:
        return _write_response(response)

    def stream_writer(self, request: neutral.Request) -> ChatStreamWriter:
        return ChatStreamWriter(request)

    # upstream role
    def write_request(self, request: neutral.Request) -> dict[str, Any]:
        return _write_request(request)

    def read_response(self, payload: Any) -> neutral.Response:
        return _read_response(payload)

    def stream_reader(self) -> ChatStreamReader:
        return ChatStreamReader()

    def error_message(self, payload: Any) -> str | None:
        """`{"error": {"message"}}`; also what compatible servers send instead: a bare
        `{"error": "text"}` (Ollama), a one-item list (Google's layer), vLLM's older
        `{"object": "error", "message"}`."""
        if isinstance(payload, list) and payload:
            payload = payload[0]
        if not isinstance(payload, dict):
            return None
        error = payload.get("error")
        if isinstance(error, str):
            return error
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if payload.get("object") == "error" and isinstance(payload.get("message"), str):
            return payload["message"]
        return None


CODEC = ChatCodec()
