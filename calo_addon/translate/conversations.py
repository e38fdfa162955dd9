"""Stored conversations, for clients that continue one by its last answer's id (OpenAI
Responses' `previous_response_id`).

The upstream keeps no state for a translated call, so the proxy keeps each answered
conversation (the request's messages and the answer) under the id the client was given, in
bounded memory (an LRU over the conversations' text size, with a time to live). A request that
names an id not (or no longer) kept is refused with a clear 400: the client can send the whole
conversation instead (`store: false` clients such as Codex always do).
"""

from __future__ import annotations

import json

from cachetools import TTLCache

from . import neutral

DEFAULT_BYTES = 64 * 1024 * 1024
DEFAULT_TTL = 3600.0


class ConversationMemory:
    def __init__(self, max_bytes: int = DEFAULT_BYTES, ttl: float = DEFAULT_TTL):
        self._cache: TTLCache[str, list[neutral.Message]] = TTLCache(
            maxsize=max_bytes, ttl=ttl, getsizeof=_size
        )

    def remember(self, answer_id: str, messages: list[neutral.Message]) -> None:
        if _size(messages) < self._cache.maxsize:
            self._cache[answer_id] = messages

    def recall(self, answer_id: str) -> list[neutral.Message] | None:
        return self._cache.get(answer_id)

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
            "for an hour, in memory): send the whole conversation in `input` instead",
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
