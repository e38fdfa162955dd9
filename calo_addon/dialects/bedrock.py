"""AWS Bedrock runtime wire format: InvokeModel and Converse.

Paths: POST /model/{modelId}/{invoke,invoke-with-response-stream,converse,converse-stream};
modelId is percent-encoded (ARNs with `/`, versions with `:`). The streaming operations answer
with the binary AWS event stream. Errors: header `x-amzn-ErrorType` plus {"message": ...},
from which boto3 raises a ClientError with that code. Usage: Converse `usage`, Anthropic
`usage`, the stream's `metadata` event or `amazon-bedrock-invocationMetrics`.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import quote

import orjson
from mitmproxy import http

from ..translate import anthropic as anthropic_codec
from ..translate import converse as converse_codec
from ..translate.neutral import Usage, int_or_none
from .anthropic import anthropic_usage
from .base import (
    Dialect,
    Operation,
    Turn,
    block_boundary,
    block_turn,
    decode_model,
    json_response,
    listed_turns,
)

_PATH = re.compile(
    r"^/model/([^/]+)/(invoke|invoke-with-response-stream|converse|converse-stream)$"
)
_STREAMING = ("invoke-with-response-stream", "converse-stream")
_ERROR_TYPES = {
    400: "ValidationException",
    401: "UnrecognizedClientException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    413: "ValidationException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    502: "ServiceUnavailableException",
    503: "ServiceUnavailableException",
    504: "ModelTimeoutException",
}
_HOST = re.compile(r"^bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com$")


def region_from_host(host: str) -> str | None:
    match = _HOST.match(host)
    return match.group(1) if match else None


def quote_model_id(model: str) -> str:
    """As botocore encodes a non-greedy label, so SigV4's canonical path matches AWS's."""
    return quote(model, safe="-_.~")


def is_anthropic_model(model: str | None) -> bool:
    """Bedrock model ids (and ARNs, inference profiles) of Anthropic's models."""
    return model is not None and ("anthropic." in model or "claude" in model.lower())


def unwrap_chunk(payload: Any) -> Any:
    """invoke-with-response-stream wraps each Anthropic event as {"bytes": base64(JSON)}."""
    if isinstance(payload, dict) and isinstance(payload.get("bytes"), str):
        try:
            return orjson.loads(base64.b64decode(payload["bytes"]))
        except ValueError:
            return None
    return payload


class Bedrock(Dialect):
    name = "bedrock"
    default_auth = "bedrock-passthrough"
    own_auth = ("sigv4", "bedrock-passthrough")
    plain_turn = ("role", "content")  # Anthropic invoke, string content

    def owns_host(self, host: str) -> bool:
        return _HOST.match(host) is not None

    def recognise(self, method: str, path: str, key_source: str | None) -> Operation | None:
        m = _PATH.match(path)
        if method != "POST" or not m:
            return None
        segment, call = m.groups()
        return Operation(
            dialect=self,
            name=call,
            path_model=decode_model(segment, allow_slash=True),
            needs_body=True,
            path_streams=call in _STREAMING,
            conversation=True,
        )

    def claims_path(self, path: str) -> bool:
        return path.startswith("/model/")

    def set_model(self, op: Operation, request: http.Request, body: Any, model: str) -> bool:
        _, sep, query = request.path.partition("?")
        request.path = f"/model/{quote_model_id(model)}/{op.name}{sep}{query}"
        return False

    def default_url(self, region: str) -> str:
        return f"https://bedrock-runtime.{region}.amazonaws.com"

    def error(self, status: int, message: str, code: str | None = None) -> http.Response:
        kind = code or _ERROR_TYPES.get(status, "InternalServerException")
        return json_response(status, {"message": message}, {"x-amzn-ErrorType": kind})

    def usage(self, event_type: str | None, payload: Any) -> Usage | None:
        payload = unwrap_chunk(payload)
        if not isinstance(payload, dict):
            return None
        if payload.get("type") == "message_start" and isinstance(payload.get("message"), dict):
            payload = payload["message"]  # Anthropic's first stream event carries input tokens
        metrics = payload.get("amazon-bedrock-invocationMetrics")
        if isinstance(metrics, dict):
            return Usage(
                int_or_none(metrics.get("inputTokenCount")),
                int_or_none(metrics.get("outputTokenCount")),
            )
        data = payload.get("usage")
        if isinstance(payload.get("metadata"), dict):  # a metadata event wrapped by its type
            data = payload["metadata"].get("usage")
        if not isinstance(data, dict):
            return None
        if "inputTokens" in data:  # Converse: input excludes cache reads and writes
            read = int_or_none(data.get("cacheReadInputTokens"))
            written = int_or_none(data.get("cacheWriteInputTokens"))
            return Usage(
                _plus(int_or_none(data.get("inputTokens")), read, written),
                int_or_none(data.get("outputTokens")),
                cached_input_tokens=read,
                cache_write_tokens=written,
            )
        if "input_tokens" in data or "output_tokens" in data:  # Anthropic (InvokeModel)
            return anthropic_usage(data)
        return None

    def finished(self, event_type: str | None, payload: Any) -> bool:
        if event_type == "metadata":
            return True
        inner = unwrap_chunk(payload)
        return isinstance(inner, dict) and inner.get("type") == "message_stop"

    def error_message(self, payload: Any) -> str | None:
        if isinstance(payload, dict):
            message = payload.get("message", payload.get("Message"))
            return str(message) if message is not None else None
        return None

    # ------------------------------------------------------------ conversation

    def turns(self, op: Operation, body: Any) -> list | None:
        return listed_turns(op, body)

    def canonical(self, message: Any) -> Turn:
        return block_turn(message, _tool_id)

    def is_boundary(self, message: Any) -> bool:  # Converse blocks, or InvokeModel's Anthropic
        return block_boundary(message, lambda b: b.get("type") == "tool_use" or "toolUse" in b)

    def inject(self, op: Operation, body: Any, remaining: list, context: str) -> None:
        body["messages"] = remaining
        existing = body.get("system")
        if op.name.startswith("invoke") and "anthropic_version" in body:  # a string `system`
            body["system"] = (
                f"{context}\n\n{existing}" if isinstance(existing, str) and existing else context
            )
        else:  # Converse and Nova take [{text}]
            body["system"] = [{"text": context}, *(existing if isinstance(existing, list) else [])]

    def reply(self, op: Operation, payload: Any) -> dict | None:
        if not isinstance(payload, dict):
            return None
        if isinstance(payload.get("output"), dict):  # Converse
            message = payload["output"].get("message")
            return message if isinstance(message, dict) else None
        if isinstance(payload.get("content"), list):  # Anthropic InvokeModel
            return {"role": "assistant", "content": payload["content"]}
        return None

    # ------------------------------------------------------------ translation

    def codec(self, op: Operation | None = None, model: str | None = None):
        """Converse for Converse calls and for every model a translated call reaches through
        Converse; InvokeModel's Anthropic body for Anthropic models called by invoke."""
        if op is not None and op.name.startswith("invoke"):
            return anthropic_codec.BEDROCK_CODEC if is_anthropic_model(op.path_model) else None
        return converse_codec.CODEC

    def upstream_for(self, client: Dialect, model: str, streaming: bool):
        """Anthropic clients reach Anthropic models through InvokeModel (Bedrock takes the
        Messages body there, nothing lost); everything else through Converse."""
        if client.name == "anthropic" and is_anthropic_model(model):
            operation = "invoke-with-response-stream" if streaming else "invoke"
            return anthropic_codec.BEDROCK_CODEC, f"/model/{quote_model_id(model)}/{operation}"
        return super().upstream_for(client, model, streaming)

    streams_translated = False  # a client's event stream would need AWS framing written

    def count_request(self, request: Any, model: str):
        """Bedrock's CountTokens, with the Converse shape of the conversation."""
        body = converse_codec.CODEC.write_request(request)
        kept = {k: body[k] for k in ("messages", "system", "toolConfig") if k in body}
        return (
            converse_codec.CODEC,
            f"/model/{quote_model_id(model)}/count-tokens",
            {"input": {"converse": kept}},
        )

    def count_answer_tokens(self, payload: Any) -> int | None:
        return int_or_none(payload.get("inputTokens")) if isinstance(payload, dict) else None

    def translated_path(self, model: str, streaming: bool) -> str:
        operation = "converse-stream" if streaming else "converse"
        return f"/model/{quote_model_id(model)}/{operation}"


def _tool_id(block: dict) -> str | None:
    """Anthropic's tool blocks (InvokeModel) and Converse's."""
    if block.get("type") in ("tool_use", "tool_result"):
        return block.get("id") or block.get("tool_use_id") or ""
    tool = block.get("toolUse") or block.get("toolResult")
    return tool.get("toolUseId", "") if isinstance(tool, dict) else None


def _plus(base: int | None, *parts: int | None) -> int | None:
    if base is None:
        return None
    return base + sum(p or 0 for p in parts)


BEDROCK = Bedrock()
