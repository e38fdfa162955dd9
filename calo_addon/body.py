"""A request's JSON body, parsed at most once per flow and serialised at most once.

Features read and change `value`; `write_back` puts the bytes back only if something changed,
so an untouched body leaves byte-identical. orjson parses a 200 KB chat body about four times
faster than the standard library; what it refuses (NaN, integers past 64 bits) gets a second
chance with `json`, so the two accept the same bodies.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from mitmproxy import http

from .dialects import Refusal

_UNSET = object()


class JsonBody:
    def __init__(self, request: http.Request):
        self._request = request
        self._value: Any = _UNSET
        self.changed = False

    @property
    def value(self) -> Any:
        if self._value is _UNSET:
            try:
                raw = self._request.get_content(strict=True) or b""
            except ValueError:
                raise Refusal(400, "request body cannot be decoded") from None
            if not raw or raw.isspace():
                raise Refusal(400, "request body must be JSON, got an empty body")
            try:
                self._value = orjson.loads(raw)
            except orjson.JSONDecodeError:
                try:
                    self._value = json.loads(raw)
                except (UnicodeDecodeError, ValueError) as e:
                    raise Refusal(400, f"request body is not valid JSON: {e}") from None
        return self._value

    def replace(self, value: Any) -> None:
        """A new body altogether (a translated request)."""
        self._value = value
        self.changed = True

    def mark_changed(self) -> None:
        self.changed = True

    def write_back(self) -> None:
        if self.changed:
            try:
                self._request.content = orjson.dumps(self._value)
            except TypeError:  # what only `json` could read, only `json` writes
                self._request.content = json.dumps(self._value, ensure_ascii=False).encode()
            self.changed = False
