"""Anthropic Messages, as the client's protocol and as the upstream's: `CODEC`.

Also `BEDROCK_CODEC`: the same Messages body as Bedrock's InvokeModel takes it for Claude
models (`anthropic_version` in the body, no model or stream: those are in the path), and
InvokeModelWithResponseStream's events, each an Anthropic stream event wrapped in base64.

The work is split by subject: requests (_anthropic_read_request, _anthropic_write_request),
thinking settings (_anthropic_reasoning), answers, usage and errors (_anthropic_answer),
streams (_anthropic_stream). This module puts them together behind the `Codec` interface.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from typing import Any

from . import neutral
from ._anthropic_answer import error_type, read_response, write_response
from ._anthropic_read_request import read_request
from ._anthropic_stream import AnthropicStreamReader, AnthropicStreamWriter
from ._anthropic_write_request import write_request
from .base import StreamReader

__all__ = ["BEDROCK_CODEC", "CODEC", "AnthropicCodec", "BedrockAnthropicCodec", "error_type"]

BEDROCK_VERSION = "bedrock-2023-05-31"
# Exceptions InvokeModelWithResponseStream sends in the stream, and their HTTP statuses.
_BEDROCK_EXCEPTIONS = {
    "throttlingException": 429,
    "validationException": 400,
    "accessDeniedException": 403,
    "resourceNotFoundException": 404,
    "modelTimeoutException": 408,
    "internalServerException": 500,
    "modelStreamErrorException": 500,
    "modelErrorException": 424,
    "serviceUnavailableException": 503,
    "modelNotReadyException": 503,
}


class AnthropicCodec:
    """Anthropic Messages (`POST /v1/messages`) in both roles."""

    name = "anthropic"

    # client role
    def read_request(self, body: Any) -> neutral.Request:
        return read_request(body)

    def write_response(self, response: neutral.Response) -> dict[str, Any]:
        return write_response(response)

    def stream_writer(self, request: neutral.Request) -> AnthropicStreamWriter:
        return AnthropicStreamWriter(request)

    # upstream role
    def write_request(self, request: neutral.Request) -> dict[str, Any]:
        return write_request(request)

    def read_response(self, payload: Any) -> neutral.Response:
        return read_response(payload)

    def stream_reader(self) -> StreamReader:
        """A reader of this codec's stream (Bedrock's wraps Anthropic's events: its own)."""
        return AnthropicStreamReader()

    def error_message(self, payload: Any) -> str | None:
        """Anthropic's {"type": "error", "error": {"type", "message"}}, or Bedrock's
        {"message"} (also "Message", as some AWS errors spell it)."""
        if not isinstance(payload, dict):
            return None
        error = payload.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        for key in ("message", "Message"):
            if isinstance(payload.get(key), str):
                return payload[key]
        return None


class BedrockAnthropicCodec(AnthropicCodec):
    """Anthropic Messages through Bedrock InvokeModel / InvokeModelWithResponseStream."""

    name = "bedrock-anthropic"

    def write_request(self, request: neutral.Request) -> dict[str, Any]:
        """The InvokeModel body. Beta features travel in the body here (`anthropic_beta`), not
        in a header: the pipeline puts the client's anthropic-beta values in
        `request.extra["anthropic_beta"]`. Server tools (web search) Bedrock does not run are
        left out."""
        body = write_request(_without_hosted_tools(request))
        body.pop("model", None)
        body.pop("stream", None)
        betas = _beta_list(request.extra.get("anthropic_beta"))
        out: dict[str, Any] = {"anthropic_version": BEDROCK_VERSION}
        if betas:
            out["anthropic_beta"] = betas
        return out | body

    def stream_reader(self) -> BedrockAnthropicStreamReader:
        return BedrockAnthropicStreamReader()


def _without_hosted_tools(request: neutral.Request) -> neutral.Request:
    return dataclasses.replace(request, hosted_tools=[]) if request.hosted_tools else request


def _beta_list(value: Any) -> list[str]:
    """anthropic-beta values as a list (a header value may hold several, comma-separated)."""
    if not value:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [b.strip() for item in items for b in str(item).split(",") if b.strip()]


class BedrockAnthropicStreamReader:
    """InvokeModelWithResponseStream events -> neutral events.

    Each `chunk` event holds {"bytes": base64 of one Anthropic stream event}; the last one
    also carries `amazon-bedrock-invocationMetrics`, the final token counts, which stand in
    for usage the message_delta lacked. Other event types are Bedrock exceptions.
    """

    def __init__(self) -> None:
        self._reader = AnthropicStreamReader()
        self._failed = False

    def feed(self, event_type: str | None, data: Any) -> list[neutral.Event]:
        if self._failed:
            return []
        if event_type in _BEDROCK_EXCEPTIONS or (event_type or "").endswith("Exception"):
            self._failed = True  # an exception ends the stream: nothing more is owed
            return [_bedrock_error(event_type or "", data)]
        if not isinstance(data, dict) or "bytes" not in data:
            return []  # initial-response and other bookkeeping events
        payload = _decode_chunk(data["bytes"])
        metrics = payload.pop("amazon-bedrock-invocationMetrics", None)
        if isinstance(metrics, dict):
            self._reader.add_totals(_metrics_usage(metrics))
        return self._reader.feed(payload.get("type"), payload)

    def close(self) -> list[neutral.Event]:
        return [] if self._failed else self._reader.close()


def _decode_chunk(raw: Any) -> dict[str, Any]:
    try:
        text = base64.b64decode(raw, validate=True) if isinstance(raw, str | bytes) else b""
        payload = json.loads(text)
    except (binascii.Error, ValueError) as e:
        raise neutral.TranslationError(f"unreadable Bedrock stream chunk: {e}", "bytes") from e
    if not isinstance(payload, dict):
        raise neutral.TranslationError("a Bedrock stream chunk must hold a JSON object", "bytes")
    return payload


def _metrics_usage(metrics: dict[str, Any]) -> dict[str, Any]:
    """Bedrock's invocation metrics in Anthropic's usage names (inputTokenCount, like
    Anthropic's input_tokens, leaves the cache reads and writes out)."""
    names = {
        "inputTokenCount": "input_tokens",
        "outputTokenCount": "output_tokens",
        "cacheReadInputTokenCount": "cache_read_input_tokens",
        "cacheWriteInputTokenCount": "cache_creation_input_tokens",
    }
    return {ours: metrics[theirs] for theirs, ours in names.items() if theirs in metrics}


def _bedrock_error(event_type: str, data: Any) -> neutral.StreamError:
    status = _BEDROCK_EXCEPTIONS.get(event_type, 500)
    message = ""
    if isinstance(data, dict):
        message = str(data.get("message") or data.get("Message") or "")
    return neutral.StreamError(status, message or event_type, event_type)


CODEC = AnthropicCodec()
BEDROCK_CODEC = BedrockAnthropicCodec()
