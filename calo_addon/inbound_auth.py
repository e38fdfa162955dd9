"""Inbound authentication: the client must present one of the proxy keys (or a SigV4
signature made with the proxy's own AWS credentials).

Every credential a client sends is taken out of the request the moment its headers arrive
(`take_client_credentials`, from the `requestheaders` hook): the proxy key, whichever way it
came (`Authorization: Bearer`, `x-goog-api-key`, `x-api-key`, the `key` query parameter), a
SigV4 signature and session token, and the `X-AWS-*` credentials for Bedrock passthrough. So
nothing the client presented is ever in the flow that mitmweb, `-w`, HAR or other addons see,
even for a request that is cut off before its body ends, and nothing of it goes upstream.

The check itself runs once the body is in (`ProxyKeyCheck.check`): a valid proxy key
authenticates the request (a SigV4 signature beside it is just a client credential, stripped);
with no proxy key, a SigV4 signature must verify against the proxy's AWS credentials, bound to
the body received. Keys compare in constant time, against every key.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from mitmproxy import http

from . import aws
from .dialects import Refusal

CLIENT_AWS_PREFIX = b"x-aws-"
_TAKEN = frozenset({b"authorization", b"x-goog-api-key", b"x-api-key", b"x-amz-security-token"})


@dataclass
class Presented:
    """What the client presented, kept beside the flow (never in it)."""

    key: str | None = None
    source: str | None = None  # "authorization" | "x-goog-api-key" | "x-api-key" | "query"
    client_aws: dict[str, str] = field(default_factory=dict)  # X-AWS-* by lower-case name
    signed_fields: tuple[tuple[bytes, bytes], ...] = ()  # the head as signed, for SigV4

    @property
    def sigv4(self) -> bool:
        return bool(self.signed_fields)


def _may_hold_key(path: str) -> bool:
    """Whether parsing the query could find `key` (also percent-encoded, as in `%6Bey=`)."""
    query = path.partition("?")[2]
    return "key" in query or "%" in query


def take_client_credentials(request: http.Request) -> Presented:
    """Read every client credential and remove it from `request`, in one pass."""
    presented = Presented()
    fields = request.headers.fields
    kept = []
    for name, value in fields:
        lower = name.lower()
        if lower.startswith(CLIENT_AWS_PREFIX):
            presented.client_aws[lower.decode("latin-1")] = value.decode("latin-1")
        elif lower in _TAKEN:
            _read(presented, lower, value, fields)
        else:
            kept.append((name, value))
    if len(kept) != len(fields):
        request.headers.fields = tuple(kept)
    if _may_hold_key(request.path) and "key" in request.query:
        key = request.query.pop("key")
        if presented.key is None:
            presented.key, presented.source = key.strip(), "query"
    return presented


def _read(presented: Presented, name: bytes, value: bytes, fields) -> None:
    text = value.decode("utf-8", "surrogateescape").strip()
    if name == b"authorization":
        if text[:7].lower() == "bearer " and text[7:].strip():
            presented.key, presented.source = text[7:].strip(), "authorization"
        elif text.startswith("AWS4-HMAC-SHA256"):
            presented.signed_fields = tuple(fields)
    elif name != b"x-amz-security-token" and text and presented.source in (None, "query"):
        presented.key, presented.source = text, name.decode()


class ProxyKeyCheck:
    def __init__(self, proxy_keys: tuple[str, ...], aws_secrets: tuple[tuple[str, str], ...] = ()):
        self._keys = tuple(k.encode() for k in proxy_keys)
        self._sigv4 = aws.SigV4Verifier(dict(aws_secrets))

    @property
    def enabled(self) -> bool:
        return bool(self._keys or self._sigv4)

    def check(self, request: http.Request, presented: Presented) -> None:
        """Raise Refusal unless `presented` authenticates `request` (its body read)."""
        if not self.enabled:
            return
        if presented.key is not None:
            if not self._matches(presented.key):
                raise Refusal(401, "invalid proxy API key")
            return
        if presented.sigv4:
            if not self._sigv4:
                raise Refusal(
                    403, "SigV4 is not accepted here: use a proxy key", "AccessDeniedException"
                )
            self._sigv4.verify(request, presented.signed_fields)
            return
        raise Refusal(401, "missing proxy API key" if self._keys else "missing SigV4 signature")

    def _matches(self, key: str) -> bool:
        given = key.encode("utf-8", "surrogateescape")
        # compare against every key, so timing says nothing about which one (or none) matched
        matched = False
        for expected in self._keys:
            matched |= hmac.compare_digest(given, expected)
        return matched and bool(given)
