"""Request bodies: a size limit mitmproxy enforces while reading, and the JSON read at most once.

Size. mitmproxy reads a whole request body into memory before the `request` hook, and a
response set in `requestheaders` is only sent once the body is read, so no hook can stop a
2 GB upload. mitmproxy's own `body_size_limit` can: it is checked on the declared
Content-Length before a byte of the body is read, and on the running total of a chunked body
as each piece arrives; past it mitmproxy answers 413 and closes the connection.
`limit_mitmproxy_bodies` sets it to `max_body_bytes` unless the user chose their own.

JSON. Features read and change `JsonBody.value`; `write_back` puts the bytes back only if
something changed, so an untouched body leaves byte-identical. The body is decoded with
a cap (`encoding.decode`), never with mitmproxy's `get_content`, which inflates a gzip bomb
whole. orjson parses a 200 KB chat body about four times faster than the standard library;
what it refuses (NaN, integers past 64 bits) gets a second chance with `json`, so the two
accept the same bodies.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from mitmproxy import ctx, http

from . import encoding
from .calllog import CallLog, now_iso
from .dialects import Refusal, dialect_for_path
from .inbound_auth import take_client_credentials
from .mitm import close_after_cut

# flow.error.msg when mitmproxy's body_size_limit cut a request (mitmproxy/proxy/layers/http)
REQUEST_OVER_LIMIT = "Request body exceeds mitmproxy's body_size_limit."
_UNSET = object()


class JsonBody:
    def __init__(self, request: http.Request, limit: int):
        self._request = request
        self._limit = limit
        self._value: Any = _UNSET
        self.changed = False

    @property
    def value(self) -> Any:
        if self._value is _UNSET:
            self._value = _parse(self._decoded())
        return self._value

    def _decoded(self) -> bytes:
        request = self._request
        try:
            raw = encoding.decode(
                request.raw_content or b"",
                request.headers.get("content-encoding", ""),
                self._limit,
            )
        except encoding.TooLarge:
            raise Refusal(413, f"request body over {self._limit} bytes once decoded") from None
        except ValueError:
            raise Refusal(400, "request body cannot be decoded") from None
        if not raw or raw.isspace():
            raise Refusal(400, "request body must be JSON, got an empty body")
        return raw

    def replace(self, value: Any) -> None:
        """A new body altogether (a translated request)."""
        self._value = value
        self.changed = True

    def mark_changed(self) -> None:
        self.changed = True

    def write_back(self) -> None:
        """Re-encoded in the request's Content-Encoding (mitmproxy drops one it cannot write)."""
        if self.changed:
            try:
                self._request.content = orjson.dumps(self._value)
            except TypeError:  # what only `json` could read, only `json` writes
                self._request.content = json.dumps(self._value, ensure_ascii=False).encode()
            self.changed = False


def _parse(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, ValueError) as e:
            raise Refusal(400, f"request body is not valid JSON: {e}") from None


def limit_mitmproxy_bodies(options: Any, max_body_bytes: int, ours: str | None) -> str | None:
    """Set mitmproxy's `body_size_limit` to `max_body_bytes`, unless the user set their own.

    `ours` is what an earlier call set (None at first): a value still equal to it follows a
    new `max_body_bytes`; any other value is the user's and stays. Returns what to pass as
    `ours` next time.
    """
    current = getattr(options, "body_size_limit", _UNSET)
    if current is _UNSET:
        return None  # options without mitmproxy's proxy core (some unit tests)
    if current is not None and current != ours:
        return None
    wanted = str(max_body_bytes)
    if current != wanted:
        options.body_size_limit = wanted
    return wanted


def cut_by_mitmproxy(flow: http.HTTPFlow) -> bool:
    """Whether mitmproxy's body_size_limit refused this request (it answered 413 itself)."""
    return flow.error is not None and flow.error.msg == REQUEST_OVER_LIMIT


def after_cut(flow: http.HTTPFlow, log: CallLog | None) -> None:
    """What the addon still owes a request mitmproxy refused for its size: the connection
    closed, and for an API call, a log line and a stored flow without the client's key."""
    close_after_cut(flow)
    if log is None:
        return  # not an API call (explicit proxy): not ours to touch
    take_client_credentials(flow.request)
    record = oversize_record(flow, getattr(ctx.options, "body_size_limit", None))
    log.write(record)
    flow.comment = f"calo: refused: {record['refused']}"
    flow.marked = ":red_circle:"


def oversize_record(flow: http.HTTPFlow, limit: str | None) -> dict[str, Any]:
    """The log line of a request mitmproxy refused for its size: no hook after
    `requestheaders` ran, so there is no call to describe, only what the headers say."""
    path = flow.request.path.partition("?")[0]
    return {
        "time": now_iso(),
        "kind": "call",
        "api": dialect_for_path(path).name,
        "operation": None,
        "method": flow.request.method,
        "path": path,
        "status": 413,
        "refused": f"request body over {limit} bytes (body_size_limit)",
        "declared_length": flow.request.headers.get("content-length"),
    }
