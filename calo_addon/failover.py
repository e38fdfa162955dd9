"""Failover inside the call: a request whose upstream answered 429, 500, 502, 503 or 504 is
sent again with the next healthy key, up to `max_retries` times, while no byte has reached
the client.

The request is kept as it was prepared (model override, routing, rollup and translation
done): a retry is a copy of it whose credentials alone are attached again (a fresh key from
the rotation, a new SigV4 signature), sent through the proxy by `mitm.send`. Its answer is
read into the one call, so the call's log line has the final key, status and usage.

When no key of the route is ready (each cooling after a 429), retrying cannot help: the
client gets the upstream's last answer as it came (status, headers, body). A stream is
retried only if its upstream failed before the first byte: an error status arrives before
any body, and error bodies are buffered instead of streamed. The retried answer reaches the
client whole. A refused *connection* is retried before the request leaves, by the connect
check (connect.py).
"""

from __future__ import annotations

from typing import TypeGuard

from mitmproxy import http

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
PREPARED = "calo"  # flow.metadata key: how the stored request was prepared (no secret in it)


def retryable(response: http.Response | None) -> TypeGuard[http.Response]:
    """An answer worth sending again (so, an answer: the type checker knows it after)."""
    return response is not None and response.status_code in RETRY_STATUSES


def prepared_copy(flow: http.HTTPFlow, kind: str) -> http.HTTPFlow:
    """A copy of `flow`'s prepared request, to send again (its stored credentials are labels:
    the copy gets fresh ones when it passes the addon)."""
    copy = flow.copy()
    copy.response = None
    copy.error = None
    copy.comment = ""
    copy.marked = ""
    copy.metadata[PREPARED] = {**flow.metadata.get(PREPARED, {}), "kind": kind, "of": flow.id}
    return copy


def is_prepared(flow: http.HTTPFlow) -> bool:
    """A request the addon prepared already (a retry, a summary, a stored upstream request
    replayed from mitmweb): it only needs credentials again."""
    return PREPARED in flow.metadata
