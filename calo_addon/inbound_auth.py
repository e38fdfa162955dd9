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
from .dialects.base import CLIENT_AWS_PREFIX, CREDENTIAL_HEADERS
from .settings import Settings

_AWS_PREFIX = CLIENT_AWS_PREFIX.encode()
_TAKEN = frozenset(name.encode() for name in CREDENTIAL_HEADERS)


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
        if lower.startswith(_AWS_PREFIX):
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
    """Whether a request authenticates, and as whom: a client's name (`clients:`, by its key
    or its SigV4 access-key id), or None for an unrestricted key (`proxy_api_keys`,
    `proxy_aws_credentials`) or when no inbound auth is configured."""

    def __init__(
        self,
        proxy_keys: tuple[str, ...],
        aws_secrets: tuple[tuple[str, str], ...] = (),
        client_keys: tuple[tuple[str, str], ...] = (),
        client_aws: tuple[tuple[str, str, str], ...] = (),
    ):
        """`client_keys`: (client name, key); `client_aws`: (client name, key id, secret)."""
        owned = [(k, None) for k in proxy_keys] + [(key, name) for name, key in client_keys]
        self._keys = tuple((k.encode(), owner) for k, owner in owned)
        self._aws_owner = {key_id: name for name, key_id, _ in client_aws}
        secrets = dict(aws_secrets) | {key_id: secret for _, key_id, secret in client_aws}
        self._sigv4 = aws.SigV4Verifier(secrets)

    @classmethod
    def from_settings(cls, settings: Settings) -> ProxyKeyCheck:
        """Unrestricted keys and access-key ids, then each client's key and id, by name."""
        clients = settings.clients
        return cls(
            settings.proxy_api_keys,
            settings.proxy_aws_credentials,
            tuple((name, c.key) for name, c in clients if c.key),
            tuple((name, c.aws.access_key, c.aws.secret_key) for name, c in clients if c.aws),
        )

    @property
    def enabled(self) -> bool:
        return bool(self._keys or self._sigv4)

    def check(self, request: http.Request, presented: Presented) -> str | None:
        """The client `presented` authenticates `request` as (its body read); raise Refusal
        unless it authenticates."""
        if not self.enabled:
            return None
        if presented.key is not None:
            matched, owner = self._matches(presented.key)
            if not matched:
                raise Refusal(401, "invalid proxy API key")
            return owner
        if presented.sigv4:
            if not self._sigv4:
                raise Refusal(
                    403, "SigV4 is not accepted here: use a proxy key", "AccessDeniedException"
                )
            key_id = self._sigv4.verify(request, presented.signed_fields)
            return self._aws_owner.get(key_id)
        raise Refusal(401, "missing proxy API key" if self._keys else "missing SigV4 signature")

    def _matches(self, key: str) -> tuple[bool, str | None]:
        given = key.encode("utf-8", "surrogateescape")
        # compare against every key, so timing says nothing about which one (or none) matched
        matched, owner = False, None
        for expected, name in self._keys:
            same = hmac.compare_digest(given, expected)
            matched |= same
            owner = name if same else owner
        return matched and bool(given), owner
