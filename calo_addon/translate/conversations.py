"""Stored conversations, for clients that continue one by its last answer's id (OpenAI
Responses' `previous_response_id`).

The upstream keeps no state for a translated call, so the proxy keeps each answered
conversation (the request's messages and the answer) under the id the client was given, in
bounded memory (an LRU over the conversations' text size, with a time to live).

With shared state (Redis, `--workers N`) each answer is also stored there (`Space.keep`: not
copied to every process), as the Responses input items a client would send, so that any
process can continue it. An answer that continues a stored one stores only what it adds and a
link to the one before, and every CHECKPOINT_EVERY answers the whole conversation again: Redis
holds about 1/CHECKPOINT_EVERY of what whole copies would take, and a process that does not
hold a conversation reads it with at most CHECKPOINT_EVERY GETs (stopping early at one it
holds). A whole copy is also written when the last one is older than the time to live, and
entries live twice as long in Redis, so every link of a chain outlives the answers that need
it. A request that names an id not (or no longer) kept is refused with a clear 400: the
client can send the whole conversation instead (`store: false` clients such as Codex always
do).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cachetools import TTLCache

from . import neutral
from ._responses_items import read_items, write_input_items

if TYPE_CHECKING:
    from ..state import SharedState, Space

DEFAULT_BYTES = 64 * 1024 * 1024
DEFAULT_TTL = 3600.0
# seconds before each read of the shared store: an answer's entry is written a moment after
# it went out, later still under load (only an id nobody stored waits for them all)
FETCH_AGAIN_AFTER = (0.0, 0.1, 0.4, 1.0)
CHECKPOINT_EVERY = 16  # stored answers between two whole copies of a conversation
CONTINUED_TURNS = "_continued_turns"  # Request.extra: how many turns came from the stored one


@dataclass
class Kept:
    messages: list[neutral.Message]
    depth: int = 0  # links to the last whole copy in the shared store
    shared: bool = False  # stored in the shared store
    since: float = 0.0  # when that whole copy was stored (wall clock)


class ConversationMemory:
    def __init__(self, max_bytes: int = DEFAULT_BYTES, ttl: float = DEFAULT_TTL):
        self._cache: TTLCache[str, Kept] = TTLCache(
            maxsize=max_bytes, ttl=ttl, getsizeof=lambda kept: _size(kept.messages)
        )
        self._ttl = ttl
        self._space: Space | None = None

    def share(self, state: SharedState) -> None:
        if state.backend != "memory":  # one process: nothing to store for the others
            self._space = state.space("conversations")

    def remember(
        self,
        answer_id: str,
        messages: list[neutral.Message],
        previous: str | None = None,
        continued_turns: int = 0,
    ) -> None:
        """The conversation after answer `answer_id`; its first `continued_turns` turns came
        from the stored answer `previous` (the request's `previous_response_id`)."""
        if _size(messages) >= self._cache.maxsize:
            return
        kept = Kept(messages)
        self._cache[answer_id] = kept
        if self._space is None:
            return
        before = self._cache.get(previous) if previous else None
        now = time.time()
        if (
            before is not None
            and before.shared
            and before.depth + 1 < CHECKPOINT_EVERY
            and now - before.since < self._ttl
        ):
            kept.depth, kept.since = before.depth + 1, before.since
            items = write_input_items(messages[continued_turns:])
            entry: dict[str, Any] = {"prev": previous, "depth": kept.depth, "items": items}
        else:
            kept.since = now
            entry = {"depth": 0, "items": write_input_items(messages)}
        entry["since"] = kept.since
        kept.shared = self._space.keep(answer_id, entry, 2 * self._ttl)

    def recall(self, answer_id: str) -> list[neutral.Message] | None:
        kept = self._cache.get(answer_id)
        return kept.messages if kept is not None else None

    async def fetch_continued(self, payload: Any) -> None:
        """Before a Responses request is read: bring in the conversation it continues
        (`previous_response_id`) from the shared state, when another process answered it. The
        store is written a moment after the answer went out, so a miss is asked again, a few
        times over about 1.5 s."""
        answer_id = payload.get("previous_response_id") if isinstance(payload, dict) else None
        if self._space is None or not isinstance(answer_id, str) or answer_id in self._cache:
            return
        for delay in FETCH_AGAIN_AFTER:
            await asyncio.sleep(delay)
            kept = await self._read(answer_id)
            if kept is not None:
                if _size(kept.messages) < self._cache.maxsize:
                    self._cache[answer_id] = kept
                return

    async def _read(self, answer_id: str) -> Kept | None:
        """The conversation stored under `answer_id`: its links back to a whole copy (or to
        one this process holds), put together. None if a link is missing or not ours."""
        assert self._space is not None
        added: list[list[Any]] = []
        first: dict[str, Any] | None = None
        at, base = answer_id, []
        for _ in range(CHECKPOINT_EVERY):
            entry = await self._space.fetch(at)
            if not isinstance(entry, dict) or not isinstance(entry.get("items"), list):
                return None
            first = first or entry
            added.append(entry["items"])
            previous = entry.get("prev")
            if not previous:
                break
            held = self._cache.get(previous)
            if held is not None:
                base = held.messages
                break
            at = previous
        else:
            return None  # longer than any chain this proxy writes: not ours
        try:
            messages = read_items([item for items in reversed(added) for item in items], [], [])
        except neutral.TranslationError:
            return None
        assert first is not None
        depth, since = first.get("depth"), first.get("since")
        return Kept(
            [*base, *messages],
            depth if isinstance(depth, int) else CHECKPOINT_EVERY,  # unknown: never linked to
            shared=True,
            since=since if isinstance(since, int | float) else 0.0,
        )

    def __len__(self) -> int:
        return len(self._cache)


def continued(request: neutral.Request, memory: ConversationMemory) -> None:
    """Prepend the conversation `previous_response_id` names; TranslationError if unknown."""
    previous = request.extra.get("previous_response_id")
    if not previous:
        return
    history = memory.recall(str(previous))
    if history is None:
        raise neutral.TranslationError(
            f"previous_response_id {previous!r} is unknown to this proxy (it keeps answers "
            "for an hour): send the whole conversation in `input` instead",
            "previous_response_id",
        )
    request.messages = [*history, *request.messages]
    request.extra[CONTINUED_TURNS] = len(history)


def answered(request: neutral.Request, response: neutral.Response) -> list[neutral.Message]:
    """The conversation after this answer: the request's messages and the assistant's turn."""
    return [*request.messages, neutral.Message("assistant", list(response.parts))]


def _size(messages: list[neutral.Message]) -> int:
    size = 1
    for message in messages:
        for part in message.parts:
            if isinstance(part, neutral.Text):
                size += len(part.text)
            elif isinstance(part, neutral.ToolCall):
                size += len(json.dumps(part.arguments)) + len(part.name)
            elif isinstance(part, neutral.Thinking):
                size += len(part.text) + len(part.signature or "")
            else:
                size += 256
    return size
