"""Per-route timeouts: on the wait for the response headers, and between stream chunks.

mitmproxy has no per-flow timeout and cannot kill a flow in transit (see the TODO in
`Flow.kill`, mitmproxy issue #4711). What an addon can do is close the flow's upstream
connection: mitmproxy then ends the flow (its `error` hook before headers, a cut stream
after) instead of leaving the client waiting forever. Before headers the client gets
mitmproxy's own 502 page (SPEC 4b); the log line says 504.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from mitmproxy import http

from .calllog import logger
from .mitm import close_upstream


class Deadline:
    """When a flow's upstream must have answered: its headers, or its next stream chunk.

    A deadline is a number, not a timer: one sweep a quarter second checks every flow under
    way, so arming it per request and per chunk costs a float (no timer churn on the loop).
    """

    __slots__ = ("expired", "expires", "seconds")

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expires: float | None = time.monotonic() + seconds
        self.expired = False

    def rearm(self, seconds: float | None = None) -> None:
        if seconds is not None:
            self.seconds = seconds
        self.expires = time.monotonic() + self.seconds

    def cancel(self) -> None:
        self.expires = None


SWEEP_EVERY = 0.25  # seconds


async def sweep(flows: Callable[[], Iterable[tuple[http.HTTPFlow, Deadline | None]]]) -> None:
    """Forever: close the upstream of every flow whose deadline has passed."""
    while True:
        await asyncio.sleep(SWEEP_EVERY)
        now = time.monotonic()
        for flow, deadline in list(flows()):
            if deadline is None or deadline.expires is None or deadline.expires > now:
                continue
            deadline.expires = None
            if flow.live and close_upstream(flow):
                deadline.expired = True
                phase = "between stream chunks" if flow.response else "waiting for headers"
                logger.warning(
                    "upstream %s timed out after %ss %s", flow.request.host, deadline.seconds, phase
                )
