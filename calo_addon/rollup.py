"""Rollup: a long conversation's earlier turns are replaced by a summary of them.

After a response completes, the whole conversation so far (the request's turns plus the reply)
is remembered under a hash of that prefix, if it is longer than the threshold and ends at a
turn boundary the API accepts (an assistant reply with no pending tool call). Its summary is
computed in the background, through the proxy's own routing and keys; the turn that crossed
the threshold is never delayed. A later request that starts with a remembered prefix whose
summary is ready has that prefix replaced by the summary, injected in the dialect's own
system-prompt field. Until the summary is ready, or if it failed, turns go verbatim.

Prefixes are found in one pass: a rolling SHA-256 over each turn's canonical form (role, text,
tool ids), so a 200-turn conversation costs 200 hash steps, not 200 serialisations of prefixes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cachetools import LRUCache, TTLCache

from .config import RollupSettings
from .dialects import Operation

logger = logging.getLogger(__name__)

SUMMARY_PREAMBLE = "Summary of the earlier part of this conversation:"
PROMPT = (
    "Summarise the conversation below for the assistant that continues it. Keep every fact, "
    "decision, name, number, open question and instruction the user gave; drop pleasantries. "
    "Write plain prose.\n\n"
)


@dataclass
class Context:
    """What a remembered prefix is replaced by: its summary, with its verbatim turns kept."""

    verbatim: tuple[str, ...]
    summary: str | None = None
    failed: bool = False
    created: float = field(default_factory=time.monotonic)

    @property
    def size(self) -> int:
        return sum(map(len, self.verbatim)) + len(self.summary or "")


@dataclass
class Plan:
    """One request's rollup: its turns as sent by the client, their prefix hashes, what was used."""

    turns: list
    canonical: list[str]
    hashes: list[bytes]
    used: str | None = None  # "summary" | "verbatim" | None
    cut: int = 0  # leading turns replaced by the summary
    base: Context | None = None


def chain(previous: bytes, canonical: str) -> bytes:
    return hashlib.sha256(previous + canonical.encode("utf-8", "surrogatepass")).digest()


class Rollup:
    def __init__(self, settings: RollupSettings, summarize: Callable[[str], Awaitable[str]]):
        self.settings = settings
        self._summarize = summarize
        common = {"maxsize": settings.max_bytes, "getsizeof": lambda c: c.size + 1}
        self.cache: LRUCache = (
            TTLCache(ttl=settings.ttl, **common) if settings.ttl else LRUCache(**common)
        )
        self._tasks: set[asyncio.Task] = set()

    def plan(self, op: Operation, body: Any) -> Plan | None:
        """Find the longest remembered prefix with a ready summary and apply it to `body`."""
        turns = op.dialect.turns(op, body)
        if not turns:
            return None
        canonical = [op.dialect.canonical(t) for t in turns]
        hashes, h = [], b""
        for text in canonical:
            h = chain(h, text)
            hashes.append(h)
        plan = Plan(list(turns), canonical, hashes)
        for k in range(len(hashes) - 2, -1, -1):  # something must remain after the prefix
            context = self.cache.get(hashes[k])
            if context is None:
                continue
            if context.summary is None:
                plan.used = plan.used or "verbatim"  # summary pending or failed: keep looking
                continue
            op.dialect.inject(op, body, turns[k + 1 :], f"{SUMMARY_PREAMBLE}\n{context.summary}")
            plan.used, plan.cut, plan.base = "summary", k + 1, context
            break
        return plan

    def remember(self, op: Operation, plan: Plan, reply: Any) -> None:
        """After a response: remember the conversation so far, and summarise it beside."""
        if reply is None or not op.dialect.is_boundary(reply):
            return
        reply_text = op.dialect.canonical(reply)
        verbatim = (*plan.canonical, reply_text)
        if sum(map(len, verbatim)) < self.settings.threshold:
            return
        key = chain(plan.hashes[-1], reply_text)
        if key in self.cache:
            return
        context = Context(verbatim)
        self.cache[key] = context
        while len(self.cache) > self.settings.cache_size:
            self.cache.popitem()
        # summarise incrementally: the summary already used, plus what came after it
        earlier = [f"{SUMMARY_PREAMBLE} {plan.base.summary}"] if plan.base else []
        transcript = "\n".join([*earlier, *verbatim[plan.cut :]])
        task = asyncio.get_running_loop().create_task(self._fill(context, transcript))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fill(self, context: Context, transcript: str) -> None:
        try:
            summary = await self._summarize(PROMPT + transcript)
        except Exception as e:  # noqa: BLE001 - never fails the user's request
            context.failed = True
            logger.warning("rollup: summariser failed (%s); those turns stay verbatim", e)
            return
        context.summary = summary

    async def settle(self) -> None:
        """Wait for summaries under way (tests, shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def stats(self) -> dict[str, int]:
        ready = sum(1 for c in self.cache.values() if c.summary)
        return {"entries": len(self.cache), "ready": ready, "bytes": int(self.cache.currsize)}
