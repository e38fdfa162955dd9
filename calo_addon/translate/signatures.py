"""Thought signatures kept by tool-call id, so a client that drops them still works.

Gemini's thinking models sign the function calls they make (`thoughtSignature`) and refuse a
later turn whose call comes back without that signature. Clients carry it in their own
protocol's place (an Anthropic thinking block, Chat's extra_content, a Responses reasoning
item) when they keep what they got; many drop it. So every signature that precedes a tool
call in an answer is remembered by the call's id, in bounded memory (LRU with a time to live),
and put back before a request whose call lacks one goes upstream.

Shared (`share`, with state.redis_url): a signature remembered by one process is sent to the
others as it is remembered, so the next turn may go to any of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cachetools import TTLCache

from . import neutral

if TYPE_CHECKING:
    from ..state import SharedState, Space

DEFAULT_SIZE = 10_000
DEFAULT_TTL = 24 * 3600.0


class SignatureMemory:
    def __init__(self, size: int = DEFAULT_SIZE, ttl: float = DEFAULT_TTL):
        self._cache: TTLCache[str, str] = TTLCache(maxsize=size, ttl=ttl)
        self._ttl = ttl
        self._space: Space | None = None

    def remember(self, call_id: str, signature: str) -> None:
        if self._cache.get(call_id) == signature:
            return
        self._cache[call_id] = signature
        if self._space is not None:
            self._space.put(call_id, signature, self._ttl)

    def share(self, state: SharedState) -> None:
        self._space = state.space("signatures")
        self._space.watch(self._remembered_elsewhere)

    def _remembered_elsewhere(self, call_id: str, signature: Any) -> None:
        if isinstance(signature, str):
            self._cache[call_id] = signature

    def recall(self, call_id: str) -> str | None:
        return self._cache.get(call_id)

    def __len__(self) -> int:
        return len(self._cache)


def remember_from(parts: Iterable[neutral.Part], memory: SignatureMemory) -> None:
    """Remember each signed Thinking by the id of the tool call that follows it."""
    pending: str | None = None
    for part in parts:
        if isinstance(part, neutral.Thinking) and part.signature and not part.redacted:
            pending = part.signature
        elif isinstance(part, neutral.ToolCall):
            if pending:
                memory.remember(part.id, pending)
            pending = None
        elif not isinstance(part, neutral.Thinking):
            pending = None


def restore(request: neutral.Request, memory: SignatureMemory) -> int:
    """Put remembered signatures back before tool calls that come without one; returns how
    many were restored."""
    restored = 0
    for message in request.messages:
        if message.role != "assistant":
            continue
        parts: list[neutral.Part] = []
        signed = False
        for part in message.parts:
            if isinstance(part, neutral.ToolCall) and not signed:
                signature = memory.recall(part.id)
                if signature:
                    parts.append(neutral.Thinking(signature=signature, attached=True))
                    restored += 1
            parts.append(part)
            signed = isinstance(part, neutral.Thinking) and bool(part.signature)
        message.parts = parts
    return restored
