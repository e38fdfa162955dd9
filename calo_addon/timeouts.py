"""Per-route timeouts on the wait for an upstream's response headers.

mitmproxy has no per-flow timeout and cannot kill a flow in transit (see the TODO in
`Flow.kill`, mitmproxy issue #4711). What an addon can do is close the flow's upstream
connection: mitmproxy then ends the flow through its `error` hook and answers the client
itself with its 502 page (SPEC 4b), instead of leaving the client waiting forever.
"""

from __future__ import annotations

import asyncio
import logging

from mitmproxy import ctx, http

logger = logging.getLogger(__name__)


def close_upstream(flow: http.HTTPFlow) -> bool:
    """Close the flow's server connection; True if one was open."""
    proxyserver = ctx.master.addons.get("proxyserver")
    handler = proxyserver.connections.get(flow.client_conn.id) if proxyserver else None
    io = handler.transports.get(flow.server_conn) if handler else None
    if io is None or io.writer is None:
        return False
    io.writer.close()
    return True


class Deadline:
    """Fires `close_upstream` unless cancelled (response headers arrived) within `seconds`."""

    def __init__(self, flow: http.HTTPFlow, seconds: float):
        self.expired = False
        self.seconds = seconds
        self._flow = flow
        self._timer = asyncio.get_running_loop().call_later(seconds, self._expire)

    def _expire(self) -> None:
        if self._flow.response is not None or not self._flow.live:
            return
        self.expired = close_upstream(self._flow)
        if self.expired:
            logger.warning("upstream %s timed out after %ss", self._flow.request.host, self.seconds)

    def cancel(self) -> None:
        self._timer.cancel()
