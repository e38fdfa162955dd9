"""AWS Bedrock runtime wire format: InvokeModel and Converse.

Paths: POST /model/{modelId}/{invoke,invoke-with-response-stream,converse,converse-stream};
modelId is percent-encoded (ARNs with `/`, versions with `:`). The streaming operations answer
with the binary AWS event stream. Errors: header `x-amzn-ErrorType` plus {"message": ...},
from which boto3 raises a ClientError with that code. Usage: Converse `usage`, Anthropic
`usage`, the stream's `metadata` event or `amazon-bedrock-invocationMetrics`.
"""

from __future__ import annotations

import base64
import json
import re
import sys
from typing import Any
from urllib.parse import quote

from mitmproxy import http

from .base import Operation, Turn, Usage, decode_model, int_or_none, json_response

name = "bedrock"
default_auth = "bedrock-passthrough"
plain_turn = ("role", "content")  # Anthropic invoke, string content

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
EVENTSTREAM = "application/vnd.amazon.eventstream"


def recognise(method: str, path: str, key_source: str | None) -> Operation | None:
    m = _PATH.match(path)
    if method != "POST" or not m:
        return None
    segment, call = m.groups()
    return Operation(
        dialect=sys.modules[__name__],
        name=call,
        path_model=decode_model(segment, allow_slash=True),
        needs_body=True,
        path_streams=call in _STREAMING,
        conversation=True,
    )


def model(op: Operation, body: Any) -> str | None:
    return op.path_model


def set_model(op: Operation, request: http.Request, body: Any, new_model: str) -> bool:
    _, sep, query = request.path.partition("?")
    # encode as botocore does for a non-greedy label, so SigV4's canonical path matches AWS's
    request.path = f"/model/{quote(new_model, safe='-_.~')}/{op.name}{sep}{query}"
    return False


def streams(op: Operation, request: http.Request, body: Any) -> bool:
    return op.path_streams


def upstream_path(op: Operation, path: str, upstream_is_google: bool) -> str:
    return path


def default_url(region: str) -> str:
    return f"https://bedrock-runtime.{region}.amazonaws.com"


def error(status: int, message: str, code: str | None = None) -> http.Response:
    kind = code or _ERROR_TYPES.get(status, "InternalServerException")
    return json_response(status, {"message": message}, {"x-amzn-ErrorType": kind})


def usage(payload: Any) -> Usage | None:
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("bytes"), str):  # invoke-with-response-stream wraps each chunk
        try:
            payload = json.loads(base64.b64decode(payload["bytes"]))
        except ValueError:
            return None
        return usage(payload)
    if payload.get("type") == "message_start" and isinstance(payload.get("message"), dict):
        payload = payload["message"]  # Anthropic's first stream event carries input tokens
    metrics = payload.get("amazon-bedrock-invocationMetrics")
    if isinstance(metrics, dict):
        return Usage(
            int_or_none(metrics.get("inputTokenCount")),
            int_or_none(metrics.get("outputTokenCount")),
        )
    data = payload.get("usage")
    if isinstance(payload.get("metadata"), dict):  # converse-stream's metadata event
        data = payload["metadata"].get("usage")
    if not isinstance(data, dict):
        return None
    if "inputTokens" in data:  # Converse
        return Usage(
            int_or_none(data.get("inputTokens")),
            int_or_none(data.get("outputTokens")),
            int_or_none(data.get("totalTokens")),
        )
    if "input_tokens" in data or "output_tokens" in data:  # Anthropic
        return Usage(int_or_none(data.get("input_tokens")), int_or_none(data.get("output_tokens")))
    return None


def claims_path(path: str) -> bool:
    return path.startswith("/model/")


# ---------------------------------------------------------------- conversation (rollup)


def turns(op: Operation, body: Any) -> list | None:
    messages = body.get("messages") if isinstance(body, dict) else None
    return messages if isinstance(messages, list) else None


def _blocks(message: dict) -> list:
    content = message.get("content")
    if isinstance(content, str):
        return [{"text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


def canonical(message: Any) -> Turn:
    if not isinstance(message, dict):
        return ("?", repr(message), ())
    text, tools = [], []
    for block in _blocks(message):
        text.append(block.get("text", "") if isinstance(block.get("text"), str) else "")
        if block.get("type") in ("tool_use", "tool_result"):
            tools.append(block.get("id") or block.get("tool_use_id") or "")
        for kind in ("toolUse", "toolResult"):
            if isinstance(block.get(kind), dict):
                tools.append(block[kind].get("toolUseId", ""))
    return (message.get("role") or "", "".join(text), tuple(tools))


def is_boundary(message: Any) -> bool:
    if not isinstance(message, dict) or message.get("role") != "assistant":
        return False
    return not any(b.get("type") == "tool_use" or "toolUse" in b for b in _blocks(message))


def _string_system(op: Operation, body: dict) -> bool:
    """Anthropic's InvokeModel body takes `system` as a string; Converse and Nova as [{text}]."""
    return op.name.startswith("invoke") and "anthropic_version" in body


def inject(op: Operation, body: Any, remaining: list, context: str) -> None:
    body["messages"] = remaining
    existing = body.get("system")
    if _string_system(op, body):
        body["system"] = (
            f"{context}\n\n{existing}" if isinstance(existing, str) and existing else context
        )
    else:
        body["system"] = [{"text": context}, *(existing if isinstance(existing, list) else [])]


def reply(op: Operation, payload: Any) -> dict | None:
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("output"), dict):  # Converse
        message = payload["output"].get("message")
        return message if isinstance(message, dict) else None
    if isinstance(payload.get("content"), list):  # Anthropic InvokeModel
        return {"role": "assistant", "content": payload["content"]}
    return None


def reply_from_events(op: Operation, events: list) -> dict | None:
    text, tool = [], False
    for event in events:
        if isinstance(event, dict) and isinstance(event.get("bytes"), str):
            try:
                event = json.loads(base64.b64decode(event["bytes"]))
            except ValueError:
                continue
        if not isinstance(event, dict):
            continue
        delta = event.get("delta")
        if isinstance(delta, dict):
            text.append(delta.get("text") or "")
            tool = tool or "toolUse" in delta or delta.get("type") == "input_json_delta"
        start = event.get("start") or event.get("content_block") or {}
        tool = tool or "toolUse" in start or start.get("type") == "tool_use"
    if not text and not tool:
        return None
    content = [{"type": "tool_use"}] if tool else []
    return {"role": "assistant", "content": [{"type": "text", "text": "".join(text)}, *content]}
