"""What the proxy knows about upstreams that failed to connect.

After a failed connect (the addon's own check in connect.py, or mitmproxy's, which answers
with its own 502 page that no hook replaces), the proxy answers requests to that upstream
itself, in the caller's shape, until a short back-off has passed and one request may try again.

Shared (`share`, with state.redis_url): an upstream one process found down is down for all,
until one of them reaches it again. Each process still lets one request of its own try after
the back-off.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .state import SharedState, Space

FIRST_BACKOFF = 2.0
MAX_BACKOFF = 30.0
SHARED_FOR = 600.0  # seconds a shared "down" lives unless confirmed (nobody tried it since)


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
        self._space: Space | None = None

    def mark_down(self, address: str, reason: str) -> None:
        now = self._clock()
        previous = self._down.get(address)
        backoff = min(previous.backoff * 2, MAX_BACKOFF) if previous else FIRST_BACKOFF
        down = _Down(previous.since if previous else now, now + backoff, backoff, reason)
        self._down[address] = down
        if self._space is not None:
            wall = time.time() - now  # this clock -> wall clock
            shared = {"since": down.since + wall, "retry_at": down.retry_at + wall}
            self._space.put(address, {**shared, "backoff": backoff, "reason": reason}, SHARED_FOR)

    def mark_up(self, address: str) -> None:
        if self._down.pop(address, None) is not None and self._space is not None:
            self._space.delete(address)

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

    # ------------------------------------------------------------ shared (state.py)

    def share(self, state: SharedState) -> None:
        self._space = state.space("health")
        self._space.watch(self._seen_elsewhere)

    def _seen_elsewhere(self, address: str, down: Any) -> None:
        if not isinstance(down, dict):
            self._down.pop(address, None)  # another process reached it
            return
        try:
            here = self._clock() - time.time()  # wall clock -> this clock
            self._down[address] = _Down(
                float(down["since"]) + here,
                float(down["retry_at"]) + here,
                float(down["backoff"]),
                str(down["reason"]),
            )
        except (KeyError, TypeError, ValueError):
            return
