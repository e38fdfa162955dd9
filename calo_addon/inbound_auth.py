"""Inbound authentication: the client must present one of the proxy keys.

The key may come as `Authorization: Bearer`, `x-goog-api-key`, `x-api-key` or the `key` query
parameter. Keys compare in constant time. A client that signs with SigV4 (boto3 with ordinary
AWS credentials) instead has its signature checked against the proxy's AWS credentials. Every client credential is stripped before the
request leaves, so the proxy key never reaches an upstream.
"""

from __future__ import annotations

import hmac

from mitmproxy import http

from . import aws
from .dialects import Refusal

CLIENT_CREDENTIAL_HEADERS = ("authorization", "x-goog-api-key", "x-api-key")
CLIENT_CREDENTIAL_PREFIX = "x-aws-"


def _may_hold_key(path: str) -> bool:
    """Whether parsing the query could find `key` (also percent-encoded, as in `%6Bey=`)."""
    query = path.partition("?")[2]
    return "key" in query or "%" in query


def presented_key(request: http.Request) -> tuple[str | None, str | None]:
    """(key, where it came from) for the first credential the client sent."""
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip(), "authorization"
    for name in ("x-goog-api-key", "x-api-key"):
        if name in request.headers:
            return request.headers[name].strip(), name
    if _may_hold_key(request.path) and "key" in request.query:
        return request.query["key"], "query"
    return None, None


class ProxyKeyCheck:
    def __init__(self, proxy_keys: tuple[str, ...], aws_secrets: tuple[tuple[str, str], ...] = ()):
        self._keys = tuple(k.encode() for k in proxy_keys)
        self._sigv4 = aws.SigV4Verifier(dict(aws_secrets))

    @property
    def enabled(self) -> bool:
        return bool(self._keys or self._sigv4)

    def check(self, request: http.Request, presented: str | None) -> None:
        """`presented`: the key `presented_key` found (read once per flow)."""
        if not self.enabled:
            return
        if aws.is_sigv4(request):
            if not self._sigv4:
                raise Refusal(
                    403, "SigV4 is not accepted here: use a proxy key", "AccessDeniedException"
                )
            self._sigv4.verify(request)
            return
        if not self._keys:
            raise Refusal(401, "missing SigV4 signature")
        key = presented
        if not key:
            raise Refusal(401, "missing proxy API key")
        given = key.encode()
        # compare against every key, so timing says nothing about which one (or none) matched
        matched = False
        for expected in self._keys:
            matched |= hmac.compare_digest(given, expected)
        if not matched:
            raise Refusal(401, "invalid proxy API key")


_STRIPPED = frozenset(name.encode() for name in CLIENT_CREDENTIAL_HEADERS)


def strip_client_credentials(request: http.Request) -> dict[str, str]:
    """Remove every client credential in one pass; returns the X-AWS-* values it removed."""
    fields = request.headers.fields
    kept, aws = [], {}
    for name, value in fields:
        lower = name.lower()
        if lower.startswith(b"x-aws-"):
            aws[lower.decode("latin-1")] = value.decode("latin-1")
        elif lower not in _STRIPPED:
            kept.append((name, value))
    if len(kept) != len(fields):
        request.headers.fields = tuple(kept)
    if _may_hold_key(request.path) and "key" in request.query:
        request.query.pop("key")
    return aws
