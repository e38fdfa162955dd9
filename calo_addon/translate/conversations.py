"""Stored conversations, for clients that continue one by its last answer's id (OpenAI
Responses' `previous_response_id`).

The upstream keeps no state for a translated call, so the proxy keeps each answered
conversation (the request's messages and the answer) under the id the client was given, in
bounded memory (an LRU over the conversations' text size, with a time to live). With shared
state (Redis, `--workers N`), each is also stored there as the Responses input items a client
would send (`Space.keep`: not copied to every process), and a process asked to continue one it
does not hold reads it with one GET. A request that names an id not (or no longer) kept is
refused with a clear 400: the client can send the whole conversation instead (`store: false`
clients such as Codex always do).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from cachetools import TTLCache

from . import neutral
from ._responses_items import read_items, write_input_items

if TYPE_CHECKING:
    from ..state import SharedState, Space

DEFAULT_BYTES = 64 * 1024 * 1024
DEFAULT_TTL = 3600.0
FETCH_AGAIN_AFTER = (0.0, 0.2)  # seconds before each read of the shared store


class ConversationMemory:
    def __init__(self, max_bytes: int = DEFAULT_BYTES, ttl: float = DEFAULT_TTL):
        self._cache: TTLCache[str, list[neutral.Message]] = TTLCache(
            maxsize=max_bytes, ttl=ttl, getsizeof=_size
        )
        self._ttl = ttl
        self._space: Space | None = None

    def share(self, state: SharedState) -> None:
        if state.backend != "memory":  # one process: nothing to store for the others
            self._space = state.space("conversations")

    def remember(self, answer_id: str, messages: list[neutral.Message]) -> None:
        if _size(messages) < self._cache.maxsize:
            self._cache[answer_id] = messages
            if self._space is not None:
                self._space.keep(answer_id, write_input_items(messages), self._ttl)

    def recall(self, answer_id: str) -> list[neutral.Message] | None:
        return self._cache.get(answer_id)

    async def fetch_continued(self, payload: Any) -> None:
        """Before a Responses request is read: bring in the conversation it continues
        (`previous_response_id`) from the shared state, when another process answered it. The
        store is written a moment after the answer went out, so a miss is asked again once."""
        answer_id = payload.get("previous_response_id") if isinstance(payload, dict) else None
        if self._space is None or not isinstance(answer_id, str) or answer_id in self._cache:
            return
        for delay in FETCH_AGAIN_AFTER:
            await asyncio.sleep(delay)
            items = await self._space.fetch(answer_id)
            if isinstance(items, list):
                try:
                    messages = read_items(items, [], [])
                except neutral.TranslationError:
                    return  # not one we wrote: the id stays unknown
                if _size(messages) < self._cache.maxsize:
                    self._cache[answer_id] = messages
                return

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
