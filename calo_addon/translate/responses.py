"""The OpenAI Responses API (`POST /v1/responses`) as a codec, in both roles.

Client role: Codex and the openai SDK's `client.responses` served by any upstream. Their
requests are read into the neutral form (custom freeform tools such as Codex's apply_patch
become a function with one string argument, `input`); answers and streams are written back
as Responses objects and events, with Gemini thought signatures in reasoning items'
`encrypted_content`, so the next turn brings them back.

Upstream role: a neutral request becomes a Responses body carrying the whole history
(`store: false`, encrypted reasoning asked for), and the answer or its stream is read back.

The pieces: _responses_request.py (settings, tools), _responses_custom.py (freeform tools),
_responses_items.py (conversation items), _responses_content.py (content parts, reasoning),
_responses_answer.py (the answer object), _responses_stream_writer.py and
_responses_stream_reader.py (events).
"""

from __future__ import annotations

from typing import Any

from . import neutral
from ._responses_answer import answer_object, read_answer, response_id, status_of
from ._responses_items import output_item
from ._responses_request import read_request, write_request
from ._responses_stream_reader import ResponsesStreamReader
from ._responses_stream_writer import ResponsesStreamWriter


class ResponsesCodec:
    """Reads and writes the OpenAI Responses protocol (see the module docstring)."""

    name = "responses"

    # ------------------------------------------------------------ client role

    def answer_id(self, upstream_id: str | None) -> str:
        """The id the client is given for an answer whose upstream id is `upstream_id` (as the
        writers give it): what `previous_response_id` names later."""
        return response_id(upstream_id)

    def read_request(self, body: Any) -> neutral.Request:
        return read_request(body)

    def write_response(self, response: neutral.Response) -> dict[str, Any]:
        """A whole answer as a Responses object. Calls to custom tools must carry
        `tool_kind="custom"` (the stream writer also knows them from the request). Empty text
        makes no message item, as in streams."""
        parts = [p for p in response.parts if not (isinstance(p, neutral.Text) and not p.text)]
        output = [item for part in parts if (item := output_item(part, set())) is not None]
        status, incomplete = status_of(response.stop_reason)
        error = {"code": "server_error", "message": "the model stopped with an error"}
        return answer_object(
            response_id(response.id),
            response.model,
            output,
            status=status,
            usage=response.usage,
            incomplete=incomplete,
            error=error if status == "failed" else None,
        )

    def stream_writer(self, request: neutral.Request) -> ResponsesStreamWriter:
        return ResponsesStreamWriter(request)

    # ------------------------------------------------------------ upstream role

    def write_request(self, request: neutral.Request) -> dict[str, Any]:
        return write_request(request)

    def read_response(self, payload: Any) -> neutral.Response:
        return read_answer(payload)

    def stream_reader(self) -> ResponsesStreamReader:
        return ResponsesStreamReader()

    def error_message(self, payload: Any) -> str | None:
        """`{"error": {"message": ...}}` (also what a failed answer carries)."""
        error = payload.get("error") if isinstance(payload, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        return message if isinstance(message, str) else None


CODEC = ResponsesCodec()
