"""Outbound: point the request at its upstream and attach the real credentials.

Auth kinds: `auto` (the protocol's own header: Gemini x-goog-api-key, OpenAI bearer, Anthropic
x-api-key), `bearer`, `x-goog-api-key` and `x-api-key` rotate the upstream's key pool; `none`
sends no credential; `sigv4` signs with the route's AWS credentials; `bedrock-passthrough` uses
what the client sent in X-AWS-* headers (bearer token, else SigV4 keys, else unsigned);
`custom` hands the flow to the user's provider (sync or async), which sets credentials itself.

Credentials go on the wire only (mitm.SentHeaders): the stored request holds a label such as
`[calo: default#2]` from the moment they are attached. What a custom provider changed is found
by comparing the request before and after it, so its credentials are labelled too, whatever
header it used. Runs after every other rewrite, so what is signed or keyed is what leaves.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from mitmproxy import http

from . import aws, mitm
from .dialects import Dialect, Operation
from .dialects.base import KEY_HEADER_OF_STYLE
from .dialects.bedrock import region_from_host
from .keypool import Key
from .routing import Upstream


@dataclass
class Sent:
    """The credential a request left with: a label for logs and flows, and the pool key."""

    label: str | None = None
    key: Key | None = None
    query_names: tuple[str, ...] = ()  # query parameters a custom provider set (labelled later)


def point_at(request: http.Request, upstream: Upstream, path: str) -> None:
    """Send the request to `upstream` at `path` (raw, query included)."""
    request.scheme = upstream.scheme
    # configured, plain ASCII: the setters' IDNA pass and Host/authority updates are skipped,
    # the Host header (and an HTTP/2 authority) is set once below
    request.data.host = upstream.host
    request.data.port = upstream.port
    request.path = f"{upstream.path_prefix}{path}"
    default_port = 443 if upstream.scheme == "https" else 80
    request.host_header = (
        upstream.host if upstream.port == default_port else f"{upstream.host}:{upstream.port}"
    )


def passthrough_path(request: http.Request, op: Operation, upstream: Upstream) -> str:
    """The client's own path (and query), on the upstream's layer for this API."""
    path, sep, query = request.path.partition("?")
    return f"{op.dialect.upstream_path(op, path, upstream.api)}{sep}{query}"


async def attach(
    flow: http.HTTPFlow, upstream: Upstream, wire: Dialect, client: aws.ClientAWS | None = None
) -> Sent:
    """Set the outbound credential; AllKeysCooling when every pool key rests."""
    request, kind = flow.request, upstream.credential_style(wire)
    if kind == "custom":
        return await _custom(flow, upstream)
    if kind == "sigv4":
        return _signed(request, upstream.auth.aws, f"{upstream.name}:sigv4")
    if kind == "bedrock-passthrough":
        return _passthrough(request, client or aws.ClientAWS())
    if kind == "none" or not upstream.keys:
        return Sent()
    key = upstream.keys.next()
    header = KEY_HEADER_OF_STYLE[kind]
    value = f"Bearer {key.secret}" if kind == "bearer" else key.secret
    mitm.attach_secrets(request, {header: value}, label(key.label))
    return Sent(key.label, key)


def label(name: str) -> str:
    return f"[calo: {name}]"


def _signed(request: http.Request, creds, name: str) -> Sent:
    headers = aws.sign(request, creds, region_from_host(request.host))
    request.headers["X-Amz-Date"] = headers.pop("X-Amz-Date")
    mitm.attach_secrets(request, headers, label(name))
    return Sent(name)


def _passthrough(request: http.Request, client: aws.ClientAWS) -> Sent:
    """The client's own Bedrock credentials: bearer token first, then SigV4 keys, else none."""
    if client.bearer_token:
        value = f"Bearer {client.bearer_token}"
        mitm.attach_secrets(request, {"authorization": value}, label("client:bearer"))
        return Sent("client:bearer")
    if client.credentials:
        return _signed(request, client.credentials, "client:sigv4")
    return Sent("client:unsigned")


async def _custom(flow: http.HTTPFlow, upstream: Upstream) -> Sent:
    """Run the user's provider, then move whatever it set into the wire-only secrets."""
    request = flow.request
    headers_before = set(request.headers.fields)
    query_before = set(request.query.items(multi=True))
    provider = upstream.auth.provider
    assert provider is not None  # the auth kind "custom" has one
    result = provider(flow)
    if inspect.isawaitable(result):
        await result
    name = f"{upstream.name}:custom"
    changed = {
        k.decode("latin-1"): v.decode("latin-1")
        for k, v in request.headers.fields
        if (k, v) not in headers_before and not v.startswith(b"[calo: ")
    }
    mitm.attach_secrets(request, changed, label(name))
    query_names = tuple(k for k, v in request.query.items(multi=True) if (k, v) not in query_before)
    return Sent(name, query_names=query_names)


def label_query(request: http.Request, sent: Sent) -> None:
    """Replace query credentials a custom provider set with the label (once sent): the URL
    itself cannot differ between the wire and the stored flow (README, known limits)."""
    if sent.query_names:
        for name in sent.query_names:
            if name in request.query:
                request.query[name] = label(sent.label or "credential")
