"""What the proxy knows about upstreams that failed to connect.

After a failed connect (the addon's own check in connect.py, or mitmproxy's, which answers
with its own 502 page that no hook replaces), the proxy answers requests to that upstream
itself, in the caller's shape, until a short back-off has passed and one request may try again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

FIRST_BACKOFF = 2.0
MAX_BACKOFF = 30.0


@dataclass
class _Down:
    since: float
    retry_at: float
    backoff: float
    reason: str


class UpstreamHealth:
    def __init__(self, clock=time.monotonic):
        self._down: dict[str, _Down] = {}
        self._clock = clock

    def mark_down(self, address: str, reason: str) -> None:
        now = self._clock()
        previous = self._down.get(address)
        backoff = min(previous.backoff * 2, MAX_BACKOFF) if previous else FIRST_BACKOFF
        self._down[address] = _Down(
            previous.since if previous else now, now + backoff, backoff, reason
        )

    def mark_up(self, address: str) -> None:
        self._down.pop(address, None)

    def refusal_reason(self, address: str) -> str | None:
        """Why to refuse a request to `address` now, or None to let it try."""
        down = self._down.get(address)
        if down is None:
            return None
        now = self._clock()
        if now >= down.retry_at:
            down.retry_at = now + down.backoff  # one request tries; the others keep waiting
            return None
        return f"upstream {address} is unreachable ({down.reason}); retry in {down.retry_at - now:.0f}s"

    def snapshot(self) -> dict[str, str]:
        return {address: down.reason for address, down in self._down.items()}
