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

from .base import Operation, Usage, decode_model, int_or_none, json_response

name = "bedrock"
default_auth = "bedrock-passthrough"

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
