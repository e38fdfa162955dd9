"""Rollup: a long conversation's earlier turns are replaced by a summary of them.

After a response completes, the whole conversation so far (the request's turns plus the reply)
is remembered under a hash of that prefix, if it is longer than the threshold and ends at a
turn boundary the API accepts (an assistant reply with no pending tool call). Its summary is
computed in the background, through the proxy's own routing and keys; the turn that crossed
the threshold is never delayed. A later request that starts with a remembered prefix whose
summary is ready has that prefix replaced by the summary, injected in the dialect's own
system-prompt field. Until the summary is ready, or if it failed, turns go verbatim.

Prefixes are found in one pass: a rolling hash over each turn's canonical form (role, text,
tool ids), so a 200-turn conversation costs 200 hash steps, not 200 serialisations of prefixes.
The hash is Python's own (SipHash, keyed at random per process): the cache lives in this
process only, so nothing outside can predict it, and it runs about ten times faster than
SHA-256 over the same text, which keeps a 200 KB conversation cheap on every request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cachetools import LRUCache, TTLCache

from .config import RollupSettings
from .dialects import Operation
from .dialects.base import Turn

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

    verbatim: tuple[str, ...]  # the turns as text, kept beside the summary
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
    canonical: list[Turn]
    hashes: list[int]
    used: str | None = None  # "summary" | "verbatim" | None
    cut: int = 0  # leading turns replaced by the summary
    size: int = 0  # characters of text in the turns
    base: Context | None = None


def chain(previous: int, turn: Turn) -> int:
    return hash((previous, turn))


def as_text(turn: Turn) -> str:
    role, text, tools = turn
    return f"{role}: {text}" + (f" [tools {' '.join(tools)}]" if tools else "")


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
        identify, canonical, hashes, h, size = op.dialect.canonical, [], [], 0, 0
        for turn in turns:  # the one pass: identity, rolling hash and size of every turn
            ident = identify(turn)
            h = hash((h, ident))  # == chain(h, ident), inlined: this loop runs on every turn
            canonical.append(ident)
            hashes.append(h)
            size += len(ident[1])
        plan = Plan(turns, canonical, hashes, size=size)
        if not self.cache or self.cache.keys().isdisjoint(hashes):
            return plan  # the common case, in one C-level set check
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
        reply_turn = op.dialect.canonical(reply)
        if plan.size + len(reply_turn[1]) < self.settings.threshold:
            return
        turns = (*plan.canonical, reply_turn)
        key = chain(plan.hashes[-1] if plan.hashes else 0, reply_turn)
        if key in self.cache:
            return
        if len(self._tasks) >= self.settings.cache_size:
            return  # summaries are queued beyond what the cache can keep: don't pile up more
        verbatim = tuple(map(as_text, turns))
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
