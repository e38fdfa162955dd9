"""Per-route timeouts: on the wait for the response headers, and between stream chunks.

mitmproxy has no per-flow timeout and cannot kill a flow in transit (see the TODO in
`Flow.kill`, mitmproxy issue #4711). What an addon can do is close the flow's upstream
connection: mitmproxy then ends the flow (its `error` hook before headers, a cut stream
after) instead of leaving the client waiting forever. Before headers the client gets
mitmproxy's own 502 page (SPEC 4b); the log line says 504.
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
    """Closes the upstream connection unless `rearm`ed or cancelled within `seconds`.

    Armed when the request leaves (for the response headers), re-armed by each stream chunk
    (an idle timeout, never a cap on a long generation), cancelled when the flow ends.
    """

    def __init__(self, flow: http.HTTPFlow, seconds: float):
        self.expired = False
        self.seconds = seconds
        self._flow = flow
        self._loop = asyncio.get_running_loop()
        self._timer = self._loop.call_later(seconds, self._expire)

    def rearm(self, seconds: float | None = None) -> None:
        self._timer.cancel()
        if seconds is not None:
            self.seconds = seconds
        self._timer = self._loop.call_later(self.seconds, self._expire)

    def _expire(self) -> None:
        if not self._flow.live:
            return
        self.expired = close_upstream(self._flow)
        if self.expired:
            phase = "between stream chunks" if self._flow.response else "waiting for headers"
            logger.warning(
                "upstream %s timed out after %ss %s", self._flow.request.host, self.seconds, phase
            )

    def cancel(self) -> None:
        self._timer.cancel()
