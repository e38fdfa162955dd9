"""AWS Bedrock Converse / ConverseStream as a translation protocol (codec name "converse").

Upstream role: Anthropic, Chat and Responses clients served by Bedrock models. Client role: a
boto3 `converse` / `converse_stream` caller served by another upstream.

What the form does not carry one to one, and what is done about it:
- The model id is in the URL path: `write_request` never puts it in the body, `read_request`
  leaves `Request.model` None. The writer still reads `Request.model` to choose features:
  Claude ("anthropic." or "claude" in the id) takes thinking ({"thinking": {"type": "enabled",
  "budget_tokens": N}}, N >= 1024, maxTokens raised above N when needed) and top_k in
  `additionalModelRequestFields`, signed reasoning in the history, and `toolResult.status`
  (Nova too). Nova 2 thinks by effort level ({"reasoningConfig": {"type": "enabled",
  "maxReasoningEffort": "low" | "medium" | "high"}}, a budget mapped to the smallest level that
  covers it; at "high" it takes no maxTokens, which is left out and named). Other families
  drop them (named in `Request.dropped`).
- Images and documents travel as base64 bytes or s3:// locations; an http(s) URL raises
  `Unsupported("image url")` (Converse cannot fetch it). Video and audio are unsupported.
- A conversation must open with a user turn: one opening with the assistant gets a user turn
  "(continued)" before it (the least surprising fix: nothing the client sent is lost).
  Consecutive turns of one role merge; a turn's tool results go together, first, in call order.
- Reasoning without a signature and Gemini's attached signatures are not Bedrock's: left out
  of requests. Thinking is dropped (named "reasoning") when the request continues a tool loop
  whose assistant turn has no signed reasoning, which Claude would refuse.
- tool_choice "none": Converse has none. Without tool turns in the history the tools are left
  out; with them Bedrock requires toolConfig, so the tools stay and "tool_choice" is dropped.
- A JSON-schema output goes in `outputConfig.textFormat` (Bedrock structured output); a
  schema-less JSON output raises `Unsupported("output_format")`.
- Usage: Converse inputTokens exclude cache reads and writes; the neutral input includes them.
- Answers have no id: one is made with `neutral.new_message_id()`.
"""

from __future__ import annotations

from typing import Any

from . import neutral
from ._converse_answer import read_response, write_response
from ._converse_request import write_request
from ._converse_request_read import read_request
from ._converse_stream import ConverseStreamReader, ConverseStreamWriter


class ConverseCodec:
    """Bedrock Converse, both roles (see the module docstring for the mapping's choices)."""

    name = "converse"

    # client role
    def read_request(self, body: Any) -> neutral.Request:
        return read_request(body)

    def write_response(self, response: neutral.Response) -> dict[str, Any]:
        return write_response(response)

    def stream_writer(self, request: neutral.Request) -> ConverseStreamWriter:
        return ConverseStreamWriter()

    # upstream role
    def write_request(self, request: neutral.Request) -> dict[str, Any]:
        return write_request(request)

    def read_response(self, payload: Any) -> neutral.Response:
        return read_response(payload)

    def stream_reader(self) -> ConverseStreamReader:
        return ConverseStreamReader()

    def error_message(self, payload: Any) -> str | None:
        """Bedrock errors are {"message": ...} ({"Message": ...} from some services)."""
        if not isinstance(payload, dict):
            return None
        message = payload.get("message", payload.get("Message"))
        return message if isinstance(message, str) else None


CODEC = ConverseCodec()
