"""Client limits shared by several processes (state.redis_url): one budget for every instance.

`SharedUsage` keeps the limits in counters of the shared state (state.py; Redis), so N
instances behind a balancer admit what one would:
- `rpm`: a counter per client and UTC minute, admitted atomically (add one if under the
  limit, in one Redis script), so 50 concurrent requests over any instances admit exactly N;
  Retry-After is the rest of the minute.
- `tpm`, `tokens_per_day`, `tokens_per_month`: counters of the tokens calls reported, per
  minute, UTC day and month; a request is admitted while they are under the limit (as in one
  process, calls already running finish and are charged).
The counters expire with their window. The instance's own store (`LocalUsage`: its memory and
SQLite file) still records what this instance served, for `calo.usage` and across restarts.
With Redis unreachable the shared state counts locally, so each instance enforces the limits
on its own until it is back (state.py says so in the log and in metrics).
"""

from __future__ import annotations

import asyncio
import math

from .state import SharedState
from .usage import (
    ClientUsage,
    Limits,
    LocalUsage,
    Over,
    UsageStore,
    day_period,
    month_period,
    seconds_to_next_day,
    seconds_to_next_month,
)
from .usage_db import Counts

MINUTE = 60.0
DAY_TTL = 2 * 86400.0
MONTH_TTL = 32 * 86400.0


class SharedUsage:
    """A `UsageStore` whose limits hold across every process that shares `state`."""

    def __init__(self, local: UsageStore, state: SharedState):
        self.local = local
        self.state = state
        self._tasks: set[asyncio.Task] = set()

    @property
    def path(self) -> str | None:
        return getattr(self.local, "path", None)

    async def admit(self, client: str, limits: Limits, now: float) -> Over | None:
        minute = int(now // MINUTE)
        rest_of_minute = MINUTE - now % MINUTE
        checks = (
            ("tpm", limits.tpm, f"tpm:{minute}", MINUTE, rest_of_minute),
            ("tokens_per_day", limits.tokens_per_day, day_period(now), DAY_TTL,
             seconds_to_next_day(now)),
            ("tokens_per_month", limits.tokens_per_month, month_period(now),
             MONTH_TTL, seconds_to_next_month(now)),
        )  # fmt: skip
        for name, limit, counter, ttl, frees_in in checks:
            if limit is not None and await self._read(client, counter, ttl) >= limit:
                return Over(name, limit, frees_in)
        if limits.rpm is not None:
            admitted = await self.state.admit(
                self._name(client, f"rpm:{minute}"), 1, limits.rpm, math.ceil(rest_of_minute)
            )
            if not admitted:
                return Over("rpm", limits.rpm, rest_of_minute)
        return await self.local.admit(client, Limits(), now)  # counted here, never refused

    def charge(self, client: str, counts: Counts, now: float) -> None:
        self.local.charge(client, counts, now)
        if not counts.tokens:
            return
        minute = int(now // MINUTE)
        counters = (
            (f"tpm:{minute}", MINUTE),
            (day_period(now), DAY_TTL),
            (month_period(now), MONTH_TTL),
        )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (tests): nothing can be sent
            return
        for counter, ttl in counters:
            task = loop.create_task(
                self.state.incr(self._name(client, counter), counts.tokens, ttl)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def usage(self, client: str, now: float) -> ClientUsage:
        return self.local.usage(client, now)

    def close(self) -> None:
        self.local.close()

    async def settle(self) -> None:
        """Wait for charges under way (tests)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _read(self, client: str, counter: str, ttl: float) -> int:
        return await self.state.incr(self._name(client, counter), 0, ttl)

    @staticmethod
    def _name(client: str, counter: str) -> str:
        return f"client:{client}:{counter}"


def shared(store: UsageStore | None, state: SharedState | None) -> UsageStore | None:
    """`store`, its limits shared through `state` when state is shared between processes."""
    if store is None or state is None or state.backend == "memory":
        return store
    if isinstance(store, SharedUsage):
        return store if store.state is state else SharedUsage(store.local, state)
    return SharedUsage(store, state)


__all__ = ["LocalUsage", "SharedUsage", "shared"]
