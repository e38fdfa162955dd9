"""Rollup: a long conversation's earlier turns are replaced by a summary of them.

After a response completes, the whole conversation so far (the request's turns plus the reply)
is remembered, if it is longer than the threshold and ends at a turn boundary the API accepts
(an assistant reply with no pending tool call). Its summary is computed in the background,
through the proxy's own routing and keys; the turn that crossed the threshold is never delayed.
A later request that starts with a remembered conversation whose summary is ready has those
turns replaced by the summary, injected in the dialect's own system-prompt field. Until the
summary is ready, or if it failed, turns go verbatim.

Finding a remembered prefix costs nothing per turn. A remembered conversation of L turns is
filed under (L, its last turn, its first turn, its middle turn), each turn in its canonical form
(role, text, tool ids). A request of N turns looks up only the lengths the cache holds below N,
each with three turns of its own; a request that continues no remembered conversation touches
none of its text. A key that matches is then verified turn by turn, in C (tuple equality), so
two conversations never mix, whatever they share. The seed instead serialised and hashed every
prefix messages[:i], quadratic in the length of the conversation.

Shared (`share`, with state.redis_url): a summary made by one process is sent to the others
with the turns it summarises (canonical turns are the same in every process), so the next
turn of that conversation is rolled up whichever process it reaches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from cachetools import Cache, LRUCache, TTLCache

from .calllog import logger
from .dialects import Operation
from .dialects.base import Turn, digest
from .settings import RollupSettings

if TYPE_CHECKING:
    from .state import SharedState, Space

SHARED_TTL = 24 * 3600.0  # seconds a shared summary lives when rollup.ttl is unset
SUMMARY_PREAMBLE = "Summary of the earlier part of this conversation:"
PROMPT = (
    "Summarise the conversation below for the assistant that continues it. Keep every fact, "
    "decision, name, number, open question and instruction the user gave; drop pleasantries. "
    "Write plain prose.\n\n"
)


@dataclass
class Context:
    """What a remembered conversation is replaced by: its summary, with its verbatim turns kept."""

    turns: tuple[Turn, ...]  # canonical, in order: each turn recoverable beside the summary
    size: int  # characters of text in the turns and the summary
    summary: str | None = None
    failed: bool = False
    roles: tuple = ()  # the turns' roles and texts apart, when no turn has tools (plain)
    texts: tuple = ()

    def __post_init__(self) -> None:
        if not any(tools for _, _, tools in self.turns):
            self.roles = tuple(role for role, _, _ in self.turns)
            self.texts = tuple(text for _, text, _ in self.turns)

    def starts(self, op: Operation, turns: list) -> bool:
        """Whether `turns` begins with this conversation, turn for turn (canonical forms)."""
        prefix = turns[: len(self.turns)]
        plain = op.dialect.plain_turn
        if plain and self.roles:  # in C: every turn a {role, text} pair equal to ours
            try:
                if (
                    set(map(len, prefix)) == {2}
                    and tuple(map(itemgetter(plain[1]), prefix)) == self.texts
                    and tuple(map(itemgetter(plain[0]), prefix)) == self.roles
                ):
                    return True
            except (KeyError, TypeError):
                pass
        return self.turns == tuple(map(op.dialect.canonical, prefix))


@dataclass
class Plan:
    """One request's rollup: its turns as the client sent them, and what was used."""

    turns: list
    used: str | None = None  # "summary" | "verbatim" | None
    cut: int = 0  # leading turns replaced by the summary
    base: Context | None = None
    saved: int = 0  # bytes of text the summary replaced, less the summary's own


Key = tuple[int, Turn, Turn, Turn]


def key(length: int, turn_at: Callable[[int], Turn]) -> Key:
    """Where a conversation of `length` turns is filed: its length, last, first, middle turn."""
    return (length, turn_at(length - 1), turn_at(0), turn_at((length - 1) // 2))


def as_text(turn: Turn) -> str:
    role, text, tools = turn
    return f"{role}: {text}" + (f" [tools {' '.join(tools)}]" if tools else "")


class Rollup:
    def __init__(self, settings: RollupSettings, summarize: Callable[[str], Awaitable[str]]):
        self.settings = settings
        self._summarize = summarize
        common: dict[str, Any] = {"maxsize": settings.max_bytes, "getsizeof": lambda c: c.size + 1}
        self.cache: Cache = (
            TTLCache(ttl=settings.ttl, **common) if settings.ttl else LRUCache(**common)
        )
        # the lengths of the remembered conversations (a superset: evictions prune it lazily)
        self._lengths: set[int] = set()
        self._inserts = 0
        self._tasks: set[asyncio.Task] = set()
        self._space: Space | None = None

    def plan(self, op: Operation, body: Any) -> Plan | None:
        """Find the longest remembered prefix with a ready summary and apply it to `body`."""
        turns = op.dialect.turns(op, body)
        if not turns:
            return None
        plan = Plan(turns)
        n = len(turns)
        candidates = sorted((x for x in self._lengths if x < n), reverse=True)
        if not candidates:
            return plan  # the common case: no remembered conversation is short enough
        turn_at = _canonical_at(op, turns)
        for length in candidates:  # something must remain after the prefix: length < n
            context = self.cache.get(key(length, turn_at))
            if context is None or not context.starts(op, turns):
                continue
            if context.summary is None:
                plan.used = plan.used or "verbatim"  # summary pending or failed: keep looking
                continue
            op.dialect.inject(op, body, turns[length:], f"{SUMMARY_PREAMBLE}\n{context.summary}")
            plan.used, plan.cut, plan.base = "summary", length, context
            replaced = sum(len(text.encode()) for _, text, _ in context.turns)
            plan.saved = max(0, replaced - len(context.summary.encode()))
            break
        return plan

    def remember(self, op: Operation, plan: Plan, reply: Any) -> None:
        """After a response: remember the conversation so far, and summarise it beside."""
        if reply is None or not op.dialect.is_boundary(reply):
            return
        reply_turn = op.dialect.canonical(reply)
        n = len(plan.turns) + 1
        request_turn_at = _canonical_at(op, plan.turns)

        def turn_at(i: int) -> Turn:
            return reply_turn if i == n - 1 else request_turn_at(i)

        where = key(n, turn_at)
        if where in self.cache:
            return  # remembered already (or a conversation filed alike: it keeps its place)
        if len(self._tasks) >= self.settings.cache_size:
            return  # summaries are queued beyond what the cache can keep: don't pile up more
        turns = tuple(map(turn_at, range(n)))
        size = sum(len(text) for _, text, _ in turns)
        if size < self.settings.threshold:
            return
        context = Context(turns, size)
        self.cache[where] = context
        while len(self.cache) > self.settings.cache_size:
            self.cache.popitem()
        self._lengths.add(n)
        self._inserts += 1
        if self._inserts > 2 * self.settings.cache_size:  # drop lengths no longer remembered
            self._lengths, self._inserts = {k[0] for k in list(self.cache.keys())}, 0
        # summarise incrementally: the summary already used, plus what came after it
        earlier = [f"{SUMMARY_PREAMBLE} {plan.base.summary}"] if plan.base else []
        transcript = "\n".join([*earlier, *map(as_text, turns[plan.cut :])])
        task = asyncio.get_running_loop().create_task(self._fill(where, context, transcript))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fill(self, where: Key, context: Context, transcript: str) -> None:
        try:
            summary = await self._summarize(PROMPT + transcript)
        except Exception as e:  # noqa: BLE001 - never fails the user's request
            context.failed = True
            logger.warning("rollup: summariser failed (%s); those turns stay verbatim", e)
            return
        context.summary = summary
        context.size += len(summary)
        if self.cache.get(where) is context:
            self.cache[where] = context  # counted again, with its summary, against max_bytes
        if self._space is not None:
            shared = {"turns": context.turns, "summary": summary}
            self._space.put(digest(where), shared, self.settings.ttl or SHARED_TTL)

    # ------------------------------------------------------------ shared (state.py)

    def share(self, state: SharedState) -> None:
        self._space = state.space("rollup")
        self._space.watch(self._summarised_elsewhere)

    def _summarised_elsewhere(self, _: str, shared: Any) -> None:
        """Another process's summary, with its turns: remembered as if made here."""
        try:
            turns = tuple(
                (str(r), str(t), tuple(map(str, tools))) for r, t, tools in shared["turns"]
            )
            summary = str(shared["summary"])
        except (KeyError, TypeError, ValueError):
            return
        if not turns or not summary:
            return
        where = key(len(turns), turns.__getitem__)
        known = self.cache.get(where)
        if known is not None and known.summary is not None:
            return
        size = sum(len(text) for _, text, _ in turns) + len(summary)
        try:
            self.cache[where] = Context(turns, size, summary)
        except ValueError:  # larger than rollup.max_bytes
            return
        while len(self.cache) > self.settings.cache_size:
            self.cache.popitem()
        self._lengths.add(len(turns))

    async def settle(self) -> None:
        """Wait for summaries under way (tests, shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def stats(self) -> dict[str, int]:
        ready = sum(1 for c in self.cache.values() if c.summary)
        return {"entries": len(self.cache), "ready": ready, "bytes": int(self.cache.currsize)}


def _canonical_at(op: Operation, turns: list) -> Callable[[int], Turn]:
    """turn i's canonical form, computed once per turn and only for the turns asked for."""
    identify, seen = op.dialect.canonical, {}

    def turn_at(i: int) -> Turn:
        if i not in seen:
            seen[i] = identify(turns[i])
        return seen[i]

    return turn_at
