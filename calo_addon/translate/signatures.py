"""Signed thinking kept by tool-call id, so a client that drops it still works.

Thinking models sign what they think, and refuse a later tool turn that comes back without it:
Gemini signs the function calls it makes (`thoughtSignature`, opaque); Claude (Anthropic, or
Bedrock) signs each thinking block over its text, and wants the turn that called a tool to
open with those blocks, unchanged. Clients carry them in their own protocol's place (an
Anthropic thinking block, Chat's `reasoning_content` and extra_content, a Responses reasoning
item) when they keep what they got; many (LangChain, most Chat clients) keep only OpenAI's
fields. So the signed thinking of an answer that calls a tool is remembered by the call's id:
Gemini's signature (`attached`: it sat on the part that follows), Claude's blocks whole, text
included (they open the turn). In bounded memory (an LRU over their size, with a time to live),
and put back before a request whose turn lacks them goes upstream.

Shared (`share`, with state.redis_url): what one process remembers is sent to the others as
it is remembered, so the next turn may go to any of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from cachetools import TTLCache

from . import neutral

if TYPE_CHECKING:
    from ..state import SharedState, Space

DEFAULT_BYTES = 64 * 1024 * 1024
DEFAULT_TTL = 24 * 3600.0

Blocks = tuple[neutral.Thinking, ...]


class SignatureMemory:
    def __init__(self, max_bytes: int = DEFAULT_BYTES, ttl: float = DEFAULT_TTL):
        self._cache: TTLCache[str, Blocks] = TTLCache(maxsize=max_bytes, ttl=ttl, getsizeof=_size)
        self._ttl = ttl
        self._space: Space | None = None

    def remember(self, call_id: str, blocks: Iterable[neutral.Thinking] | str) -> None:
        """`blocks`: the signed thinking before call `call_id` (a str: one Gemini signature)."""
        kept = _blocks(blocks)
        if not kept or self._cache.get(call_id) == kept or _size(kept) >= self._cache.maxsize:
            return
        self._cache[call_id] = kept
        if self._space is not None:
            self._space.put(call_id, [_shared(b) for b in kept], self._ttl)

    def share(self, state: SharedState) -> None:
        self._space = state.space("signatures")
        self._space.watch(self._remembered_elsewhere)

    def _remembered_elsewhere(self, call_id: str, value: Any) -> None:
        kept = _from_shared(value)
        if kept and _size(kept) < self._cache.maxsize:
            self._cache[call_id] = kept

    def recall(self, call_id: str) -> Blocks | None:
        return self._cache.get(call_id)

    def __len__(self) -> int:
        return len(self._cache)


def _blocks(blocks: Iterable[neutral.Thinking] | str) -> Blocks:
    if isinstance(blocks, str):
        return (neutral.Thinking(signature=blocks, attached=True),) if blocks else ()
    return tuple(replace(b) for b in blocks if b.signature)


def _shared(block: neutral.Thinking) -> list[Any]:
    return [block.signature, block.text, block.redacted, block.attached]


def _from_shared(value: Any) -> Blocks:
    """Another process's entry (a bare string: one Gemini signature, as it was first shared)."""
    if isinstance(value, str):
        return _blocks(value)
    if not isinstance(value, list):
        return ()
    out = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 4 and isinstance(item[0], str)):
            return ()
        signature, text, redacted, attached = item
        if not signature or not isinstance(text, str):
            return ()
        out.append(neutral.Thinking(text, signature, bool(redacted), bool(attached)))
    return tuple(out)


def _size(blocks: Blocks) -> int:
    return sum(64 + len(b.signature or "") + len(b.text) for b in blocks)


def remember_from(parts: Iterable[neutral.Part], memory: SignatureMemory) -> None:
    """Remember an answer's signed thinking by the id of the tool call it leads to: the
    turn's own blocks (Claude: text may come between them and the call) and a signature
    attached to the call itself (Gemini)."""
    own: list[neutral.Thinking] = []
    attached: neutral.Thinking | None = None
    for part in parts:
        if isinstance(part, neutral.Thinking):
            if part.signature and part.attached:
                attached = part
            elif part.signature:
                own.append(part)
            continue
        if isinstance(part, neutral.ToolCall):
            blocks = [*own, *([attached] if attached else [])]
            if blocks:
                memory.remember(part.id, blocks)
            own = []
        attached = None


def restore(request: neutral.Request, memory: SignatureMemory) -> int:
    """Put remembered thinking back into assistant turns that come without it: a Gemini
    signature right before its call (unless the call has one), Claude's blocks at the start
    of the turn (unless it has signed blocks of its own). Returns how many calls got theirs."""
    restored = 0
    for message in request.messages:
        if message.role != "assistant":
            continue
        has_own = any(
            isinstance(p, neutral.Thinking) and p.signature and not p.attached
            for p in message.parts
        )
        lead: list[neutral.Part] = []
        parts: list[neutral.Part] = []
        signed = False
        for part in message.parts:
            if isinstance(part, neutral.ToolCall):
                blocks = memory.recall(part.id) or ()
                own = [replace(b) for b in blocks if not b.attached and not has_own]
                attached = [replace(b) for b in blocks if b.attached and not signed]
                lead += own
                has_own = has_own or bool(own)
                parts += attached
                restored += bool(own or attached)
            parts.append(part)
            signed = isinstance(part, neutral.Thinking) and bool(part.signature)
        message.parts = lead + parts
    return restored
