"""Usage per client: admission against its limits, and the tokens its calls used.

A `UsageStore` is the one place client limits and usage live. `admit` decides and reserves in
one step (a request slot is taken when the request is admitted, not when it completes), so N
concurrent requests against `rpm: N` admit exactly N. Tokens are known only once the upstream
reports them, so `charge` adds them when a call ends; token limits (`tpm`, `tokens_per_day`,
`tokens_per_month`) admit a request while the tokens already reported are under the limit.
Calls in flight when a limit is reached still finish and are charged: a token limit can be
passed by what those calls use, never by a call that starts afterwards.

Windows: `rpm` and `tpm` count the last 60 seconds (a sliding window, so Retry-After is when
the oldest counted request or tokens leave it); `tokens_per_day` and `tokens_per_month` count
the UTC calendar day and month (Retry-After: until the next one begins).

`LocalUsage` keeps everything in memory and, given a `UsageFile` (usage_db.py), adds every change to an
SQLite file (standard library sqlite3) a moment later, off the event loop, in batches; on
start it reads back the current day's, month's and all-time counts. The sliding windows live
in memory only: a restart forgets the last minute, never the day's or month's tokens.
A shared implementation (Redis, for several processes) provides the same four methods.
"""

from __future__ import annotations

import asyncio
import datetime
import math
import sqlite3
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from .calllog import logger
from .usage_db import Counts, UsageFile

WINDOW = 60.0  # seconds counted by rpm and tpm
TOTAL = "total"


@dataclass(frozen=True)
class Limits:
    rpm: int | None = None
    tpm: int | None = None
    tokens_per_day: int | None = None
    tokens_per_month: int | None = None


@dataclass(frozen=True)
class Over:
    """A limit a request would pass: which, its value, and seconds until the window frees."""

    limit: str  # "rpm" | "tpm" | "tokens_per_day" | "tokens_per_month"
    value: int
    retry_after: float

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after)))


@dataclass(frozen=True)
class ClientUsage:
    """One client's usage as `calo.usage` shows it."""

    last_minute_requests: int
    last_minute_tokens: int
    today: Counts
    month: Counts
    total: Counts


class UsageStore(Protocol):
    """What client enforcement needs from wherever usage lives (this process, or Redis)."""

    async def admit(self, client: str, limits: Limits, now: float) -> Over | None:
        """Atomically: None and one request counted (rpm window, day, month, total) when every
        limit holds; else the first limit passed, and nothing counted."""

    def charge(self, client: str, counts: Counts, now: float) -> None:
        """Add the tokens a finished call used (day, month, total, tpm window). Never blocks."""

    def usage(self, client: str, now: float) -> ClientUsage: ...

    def close(self) -> None:
        """Write what is pending; the store is not used afterwards."""


# ---------------------------------------------------------------- calendar windows


def _utc(now: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(now, datetime.UTC)


def day_period(now: float) -> str:
    return "day:" + _utc(now).strftime("%Y-%m-%d")


def month_period(now: float) -> str:
    return "month:" + _utc(now).strftime("%Y-%m")


def seconds_to_next_day(now: float) -> float:
    moment = _utc(now)
    start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return (start + datetime.timedelta(days=1)).timestamp() - now


def seconds_to_next_month(now: float) -> float:
    moment = _utc(now)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return datetime.datetime(year, month, 1, tzinfo=datetime.UTC).timestamp() - now


# ---------------------------------------------------------------- this process's store


@dataclass
class _Client:
    """One client's counters in memory."""

    requests: deque[float] = field(default_factory=deque)  # admitted in the last WINDOW
    tokens: deque[tuple[float, int]] = field(default_factory=deque)  # (when, tokens)
    tokens_in_window: int = 0
    periods: dict[str, Counts] = field(default_factory=dict)  # "total", day and month

    def prune(self, now: float) -> None:
        while self.requests and self.requests[0] <= now - WINDOW:
            self.requests.popleft()
        while self.tokens and self.tokens[0][0] <= now - WINDOW:
            self.tokens_in_window -= self.tokens.popleft()[1]

    def period(self, name: str) -> Counts:
        return self.periods.setdefault(name, Counts())

    def roll(self, now: float) -> tuple[str, str]:
        """The current day and month, forgetting earlier ones."""
        day, month = day_period(now), month_period(now)
        for name in [p for p in self.periods if p not in (TOTAL, day, month)]:
            del self.periods[name]
        return day, month

    def tpm_frees_in(self, limit: int, now: float) -> float:
        """Seconds until the tokens in the window drop under `limit`."""
        left = self.tokens_in_window
        for when, tokens in self.tokens:
            left -= tokens
            if left < limit:
                return when + WINDOW - now
        return WINDOW


class LocalUsage:
    """The store of one process: memory, and an SQLite file when given one."""

    FLUSH_AFTER = 0.2  # seconds: changes made meanwhile are written in one transaction

    def __init__(self, file: UsageFile | None = None, now: float | None = None):
        self.file = file
        self._clients: dict[str, _Client] = {}
        self._pending: dict[tuple[str, str], Counts] = {}
        self._flush_scheduled = False
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="calo-usage")
        if file is not None:
            self._read_back(file, time.time() if now is None else now)

    @property
    def path(self) -> str | None:
        return self.file.path if self.file else None

    def _read_back(self, file: UsageFile, now: float) -> None:
        for (client, period), counts in file.read(
            (TOTAL, day_period(now), month_period(now))
        ).items():
            self._client(client).periods[period] = counts

    def _client(self, name: str) -> _Client:
        return self._clients.setdefault(name, _Client())

    async def admit(self, client: str, limits: Limits, now: float) -> Over | None:
        return self.admit_now(client, limits, now)

    def admit_now(self, client: str, limits: Limits, now: float) -> Over | None:
        """`admit`, without awaiting anything: check and count happen in one step."""
        state = self._client(client)
        state.prune(now)
        day, month = state.roll(now)
        over = _first_over(state, limits, now, day, month)
        if over is not None:
            return over
        state.requests.append(now)
        self._add(client, state, (TOTAL, day, month), Counts(requests=1))
        return None

    def charge(self, client: str, counts: Counts, now: float) -> None:
        state = self._client(client)
        state.prune(now)
        day, month = state.roll(now)
        if counts.tokens:
            state.tokens.append((now, counts.tokens))
            state.tokens_in_window += counts.tokens
        self._add(client, state, (TOTAL, day, month), counts)

    def usage(self, client: str, now: float) -> ClientUsage:
        state = self._client(client)
        state.prune(now)
        day, month = state.roll(now)
        day_counts, month_counts, total = (
            Counts(**vars(state.period(name))) for name in (day, month, TOTAL)
        )
        return ClientUsage(
            len(state.requests), state.tokens_in_window, day_counts, month_counts, total
        )

    def _add(self, client: str, state: _Client, periods, counts: Counts) -> None:
        for period in periods:
            state.period(period).add(counts)
            if self.file is not None:
                self._pending.setdefault((client, period), Counts()).add(counts)
        if self.file is not None:
            self._schedule_flush()

    # ------------------------------------------------------------ writing the file

    def _schedule_flush(self) -> None:
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (startup, tests): write now
            self.flush()
            return
        self._flush_scheduled = True
        loop.call_later(self.FLUSH_AFTER, self._flush_later)

    def _flush_later(self) -> None:
        self._flush_scheduled = False
        batch, self._pending = self._pending, {}
        if batch and self.file is not None:
            self._writer.submit(self._write, self.file, batch)  # in order, off the event loop

    def flush(self) -> None:
        """Write what is pending now, from the caller's thread, after writes under way."""
        batch, self._pending = self._pending, {}
        if batch and self.file is not None:
            self._writer.submit(self._write, self.file, batch).result()

    @staticmethod
    def _write(file: UsageFile, batch: dict[tuple[str, str], Counts]) -> None:
        try:
            file.add(batch)
        except sqlite3.Error as e:  # usage stays counted in memory; say it, keep serving
            logger.error("calo_addon: usage not written to %s (%s)", file.path, e)

    def close(self) -> None:
        """Write what is pending, wait for writes under way, and close the file."""
        self.flush()
        self._writer.shutdown(wait=True)
        if self.file is not None:
            self.file.close()
            self.file = None


def _first_over(state: _Client, limits: Limits, now: float, day: str, month: str) -> Over | None:
    """The first limit this client is at, in the order a user can act on soonest."""
    if limits.rpm is not None and len(state.requests) >= limits.rpm:
        return Over("rpm", limits.rpm, state.requests[0] + WINDOW - now)
    if limits.tpm is not None and state.tokens_in_window >= limits.tpm:
        return Over("tpm", limits.tpm, state.tpm_frees_in(limits.tpm, now))
    per_day, per_month = limits.tokens_per_day, limits.tokens_per_month
    if per_day is not None and state.period(day).tokens >= per_day:
        return Over("tokens_per_day", per_day, seconds_to_next_day(now))
    if per_month is not None and state.period(month).tokens >= per_month:
        return Over("tokens_per_month", per_month, seconds_to_next_month(now))
    return None
