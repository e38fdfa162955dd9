"""Outbound: point the request at its upstream and attach the real credentials.

Auth styles: `bearer` and `x-goog-api-key` rotate the upstream's key pool; `none` sends no
credential; `sigv4` signs with the route's AWS credentials; `bedrock-passthrough` uses what the
client sent in X-AWS-* headers (bearer token, else SigV4 keys, else unsigned); a callable
(sync or async) is given the flow and sets credentials itself.
Runs after every other rewrite, so what is signed or keyed is what leaves.
"""

from __future__ import annotations

import inspect

from mitmproxy import http

from . import aws
from .dialects import Operation
from .keypool import Key
from .routing import Upstream


def point_at(request: http.Request, op: Operation, upstream: Upstream) -> None:
    """Send the request to `upstream`, keeping the path's raw bytes and the query as they are."""
    path, sep, query = request.path.partition("?")
    path = op.dialect.upstream_path(op, path, upstream.is_google)
    request.scheme = upstream.scheme
    request.data.host = upstream.host  # configured, plain ASCII: skip the setter's IDNA pass
    request.port = upstream.port
    request.path = f"{upstream.path_prefix}{path}{sep}{query}"
    default_port = 443 if upstream.scheme == "https" else 80
    request.host_header = (
        upstream.host if upstream.port == default_port else f"{upstream.host}:{upstream.port}"
    )


async def attach(
    flow: http.HTTPFlow, upstream: Upstream, client: aws.ClientAWS | None = None
) -> Key | str | None:
    """Set the outbound credential; returns the pool key used, or a label for other auth."""
    auth = upstream.auth
    if callable(auth):
        result = auth(flow)
        if inspect.isawaitable(result):
            await result
        return f"{upstream.name}:custom"
    if auth == "sigv4":
        aws.sign(flow.request, upstream.aws, aws.region_from_host(upstream.host))
        return f"{upstream.name}:sigv4"
    if auth == "bedrock-passthrough":
        return passthrough(flow.request, client or aws.ClientAWS())
    if auth == "none" or not upstream.keys:
        return None
    key = upstream.keys.next()
    if auth == "bearer":
        flow.request.headers["authorization"] = f"Bearer {key.secret}"
    elif auth == "x-goog-api-key":
        flow.request.headers["x-goog-api-key"] = key.secret
    else:
        raise ValueError(f"auth style {auth!r} is not available for this upstream")
    return key


def passthrough(request: http.Request, client: aws.ClientAWS) -> str:
    """The client's own Bedrock credentials: bearer token first, then SigV4 keys, else none."""
    if client.bearer_token:
        request.headers["authorization"] = f"Bearer {client.bearer_token}"
        return "client:bearer"
    if client.credentials:
        aws.sign(request, client.credentials, aws.region_from_host(request.host))
        return "client:sigv4"
    return "client:unsigned"


OUTBOUND_CREDENTIAL_HEADERS = frozenset(
    {b"authorization", b"x-goog-api-key", b"x-api-key", b"x-amz-security-token"}
)


def label_sent_credentials(request: http.Request, label: str | None) -> None:
    """Once the request has gone, keep only a label in the stored flow: `-w` files, HAR
    exports and mitmweb never hold a real key. A replay re-attaches fresh credentials."""
    fields = request.headers.fields
    if any(name.lower() in OUTBOUND_CREDENTIAL_HEADERS for name, _ in fields):
        text = f"[calo: {label or 'credential'}]".encode()
        request.headers.fields = tuple(
            (name, text if name.lower() in OUTBOUND_CREDENTIAL_HEADERS else value)
            for name, value in fields
        )
