"""What every API dialect provides, and the per-request facts recognition produces.

A dialect is one module that knows one wire format: which paths are its own, where the model
lives, whether a request streams, how its errors and usage look. Features ask the dialect;
they never branch on the API themselves.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote

from mitmproxy import http


class Refusal(Exception):
    """The proxy answers this request itself, with an error in the caller's API shape."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code  # an API-specific error code, where the dialect's shape has one
        self.headers = headers or {}


Turn = tuple[str, str, tuple[str, ...]]  # (role, text, tool ids): what identifies a turn


@dataclass(frozen=True)
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None

    def as_dict(self) -> dict[str, int | None]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class Operation:
    """One recognised API call: which dialect, which operation, and the model if the path has it."""

    dialect: Dialect
    name: str
    path_model: str | None = None  # decoded model id from the path, None when it lives in the body
    needs_body: bool = False  # a JSON body the proxy must read (model, stream flag, rollup)
    path_streams: bool = False  # the path alone says the response streams
    version: str = ""  # API version segment, e.g. v1beta
    conversation: bool = False  # carries messages the rollup may touch


class Dialect(Protocol):
    name: str
    default_auth: str  # how the global api_keys are sent to the default upstream
    # keys of a turn that is only a role and a text, whose canonical form is (role, text, ()):
    # lets the rollup compare many such turns in C; None when the dialect has no such shape
    plain_turn: tuple[str, str] | None

    def recognise(self, method: str, path: str, key_source: str | None) -> Operation | None: ...

    def model(self, op: Operation, body: Any) -> str | None: ...

    def set_model(self, op: Operation, request: http.Request, body: Any, model: str) -> bool:
        """Rewrite the model; True when the JSON body changed."""
        ...

    def streams(self, op: Operation, request: http.Request, body: Any) -> bool: ...

    def upstream_path(self, op: Operation, path: str, upstream_is_google: bool) -> str: ...

    def default_url(self, region: str) -> str | None:
        """Where an unrouted call goes; None for the configured base_url."""
        ...

    def error(self, status: int, message: str, code: str | None = None) -> http.Response: ...

    def usage(self, payload: Any) -> Usage | None: ...

    def claims_path(self, path: str) -> bool:
        """Whether an unrecognised path looks like this API's (to pick the 404's shape)."""
        ...


_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


def decode_model(segment: str, allow_slash: bool = False) -> str:
    """Percent-decode a model id from a path segment; refuse ids that try to leave the segment."""
    model = unquote(segment)
    bad = (
        not model
        or _CONTROL.search(model)
        or ".." in model
        or model == "."
        or (not allow_slash and "/" in model)
    )
    if bad:
        raise Refusal(400, f"invalid model name {model!r}")
    return model


def json_response(
    status: int, payload: Any, headers: dict[str, str] | None = None
) -> http.Response:
    return http.Response.make(
        status,
        json.dumps(payload).encode(),
        {"content-type": "application/json", **(headers or {})},
    )


def int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
