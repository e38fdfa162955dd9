"""Anthropic Messages streams: events in, neutral events out (reader), and back (writer).

The event sequence, per Anthropic's streaming reference: message_start, then per content
block content_block_start / content_block_delta... / content_block_stop, then message_delta
(stop reason, cumulative usage) and message_stop; `ping` may come anywhere and `error` ends
the stream. The writer emits exactly that, so the official SDKs' accumulators build the
right message; its wire events are `(data["type"], data)`.
"""

from __future__ import annotations

import json
from typing import Any, TypeGuard

from . import neutral
from ._anthropic_answer import (
    error_body,
    error_status,
    message_id,
    read_answer_block,
    read_stop,
    read_usage,
    thinking_text,
    write_answer_block,
    write_stop,
    write_usage,
)
from .base import WireEvent

# ================================================================ reader

_HANDLERS = {
    "message_start": "_message_start",
    "content_block_start": "_block_start",
    "content_block_delta": "_block_delta",
    "content_block_stop": "_block_stop",
    "message_delta": "_message_delta",
    "message_stop": "_message_stop",
    "error": "_error",
}


class AnthropicStreamReader:
    """Anthropic stream events -> neutral events, each as it comes.

    Blocks the neutral form cannot carry (server tool calls and their results) are skipped,
    so the reader numbers the remaining parts itself. A tool call whose arguments never
    arrived gets "{}" so that its fragments always join into a JSON object.
    """

    def __init__(self) -> None:
        self._parts: dict[int, int] = {}  # Anthropic block index -> neutral part index
        self._next = 0
        self._open: dict[int, bool] = {}  # open neutral part -> is a tool call without args
        self._start_usage: dict[str, Any] = {}
        self._totals: dict[str, Any] = {}  # final counts from elsewhere (Bedrock metrics)
        self._delta: dict[str, Any] = {}
        self._stop_reason: Any = None
        self._stop_sequence: str | None = None
        self._started = False
        self._finished = False

    def add_totals(self, usage: dict[str, Any]) -> None:
        """Final usage known outside the events (Anthropic names); message_delta's wins."""
        self._totals.update(usage)

    def feed(self, event_type: str | None, data: Any) -> list[neutral.Event]:
        if not isinstance(data, dict):
            return []
        handler = _HANDLERS.get(data.get("type") or event_type or "")
        return getattr(self, handler)(data) if handler else []  # ping, unknown events: nothing

    def close(self) -> list[neutral.Event]:
        if not self._started or self._finished:
            return []
        return self._message_stop({})

    def _message_start(self, data: dict[str, Any]) -> list[neutral.Event]:
        message = data.get("message") or {}
        self._started = True
        self._start_usage = dict(message.get("usage") or {})
        return [
            neutral.MessageStart(
                id=message.get("id") or neutral.new_message_id(),
                model=message.get("model"),
                usage=read_usage(self._start_usage),
            )
        ]

    def _block_start(self, data: dict[str, Any]) -> list[neutral.Event]:
        block = data.get("content_block") or {}
        part = read_answer_block(block)
        if part is None:
            return []
        index = self._next
        self._next += 1
        self._parts[data.get("index", index)] = index
        self._open[index] = isinstance(part, neutral.ToolCall)
        return [neutral.PartStart(index, _emptied(part)), *_content_deltas(index, part)]

    def _part_of(self, data: dict[str, Any]) -> int | None:
        """The neutral index of the block an event names (None: a block not read, or none)."""
        block = data.get("index")
        return self._parts.get(block) if isinstance(block, int) else None

    def _block_delta(self, data: dict[str, Any]) -> list[neutral.Event]:
        index = self._part_of(data)
        delta = data.get("delta") or {}
        if index is None or index not in self._open:
            return []
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [neutral.PartDelta(index, text=delta["text"])]
        if kind == "thinking_delta" and delta.get("thinking"):
            return [neutral.PartDelta(index, thinking=delta["thinking"])]
        if kind == "signature_delta" and delta.get("signature"):
            return [neutral.PartDelta(index, signature=delta["signature"])]
        if kind == "input_json_delta" and delta.get("partial_json"):
            self._open[index] = False
            return [neutral.PartDelta(index, arguments=delta["partial_json"])]
        return []  # citations and empty deltas

    def _block_stop(self, data: dict[str, Any]) -> list[neutral.Event]:
        index = self._part_of(data)
        if index is None or index not in self._open:
            return []
        return self._stop_part(index)

    def _stop_part(self, index: int) -> list[neutral.Event]:
        no_arguments = self._open.pop(index)
        events: list[neutral.Event] = (
            [neutral.PartDelta(index, arguments="{}")] if no_arguments else []
        )
        return [*events, neutral.PartStop(index)]

    def _message_delta(self, data: dict[str, Any]) -> list[neutral.Event]:
        delta = data.get("delta") or {}
        self._stop_reason = delta.get("stop_reason")
        self._stop_sequence = delta.get("stop_sequence")
        usage = data.get("usage") or {}
        self._delta.update({k: v for k, v in usage.items() if v is not None})
        return []

    def _message_stop(self, data: dict[str, Any]) -> list[neutral.Event]:
        events = [e for index in list(self._open) for e in self._stop_part(index)]
        self._finished = True
        usage = read_usage({**self._start_usage, **self._totals, **self._delta})
        stop = neutral.MessageStop(read_stop(self._stop_reason), usage, self._stop_sequence)
        return [*events, stop]

    def _error(self, data: dict[str, Any]) -> list[neutral.Event]:
        error = data.get("error") or {}
        kind = error.get("type")
        self._finished = True
        return [neutral.StreamError(error_status(kind), str(error.get("message", "")), kind)]


def _emptied(part: neutral.Part) -> neutral.Text | neutral.Thinking | neutral.ToolCall:
    """The part as a PartStart carries it: content comes as deltas."""
    if isinstance(part, neutral.Text):
        return neutral.Text("")
    if isinstance(part, neutral.Thinking):
        return neutral.Thinking(
            signature=part.signature if part.redacted else None, redacted=part.redacted
        )
    assert isinstance(part, neutral.ToolCall)
    return neutral.ToolCall(part.id, part.name, {})


def _content_deltas(index: int, part: neutral.Part) -> list[neutral.PartDelta]:
    """Content a content_block_start already carried (rare), as deltas."""
    if isinstance(part, neutral.Text) and part.text:
        return [neutral.PartDelta(index, text=part.text)]
    if isinstance(part, neutral.Thinking) and not part.redacted:
        text = thinking_text(part)
        deltas = [neutral.PartDelta(index, thinking=text)] if text else []
        if part.signature:
            deltas.append(neutral.PartDelta(index, signature=part.signature))
        return deltas
    if isinstance(part, neutral.ToolCall) and part.arguments:
        return [neutral.PartDelta(index, arguments=json.dumps(part.arguments))]
    return []


# ================================================================ writer


def _event(data: dict[str, Any]) -> WireEvent:
    return (data["type"], data)


class AnthropicStreamWriter:
    """Neutral events -> Anthropic stream events (Anthropic's own event names and order).

    Some blocks wait before they start. A text part starts with its first text, so one that
    never gets any (Gemini ends a text answer with an empty part carrying its signature) sends
    no block: Anthropic refuses empty text blocks when a client sends them back. A thinking
    part that has only a signature (Gemini's, on the part that follows it) starts right before
    the next block; none follows, and it is left out: Anthropic puts thinking before what it
    explains, and Claude Code takes the last block as its answer, so a trailing thinking block
    would empty the result. Gemini checks the signatures of function calls, which always
    follow theirs; the one after a text answer it does not require.
    """

    def __init__(self, request: neutral.Request) -> None:
        self._model = request.model
        self._blocks: dict[int, int] = {}  # neutral part index -> Anthropic block index
        self._open: set[int] = set()
        self._waiting: dict[int, neutral.Text | neutral.Thinking] = {}  # no block yet
        self._signatures: dict[int, str] = {}  # signatures of waiting thinking parts
        self._signed: list[int] = []  # stopped signature-only parts waiting for the next block
        self._started = False
        self._ended = False

    def ping(self) -> list[WireEvent]:
        """A keep-alive the client ignores, for when the upstream is slow to say anything."""
        return [_event({"type": "ping"})]

    def write(self, event: neutral.Event) -> list[WireEvent]:
        if self._ended:
            return []
        if isinstance(event, neutral.StreamError):
            self._ended = True
            return [_event(error_body(event.status, event.message, event.kind))]
        if isinstance(event, neutral.MessageStart):
            return self._start(event)
        out = self._start(None)
        if isinstance(event, neutral.PartStart):
            return out + self._part_start(event)
        if isinstance(event, neutral.PartDelta):
            return out + self._part_delta(event)
        if isinstance(event, neutral.PartStop):
            return out + self._part_stop(event.index)
        return out + self._finish(event)

    def close(self) -> list[WireEvent]:
        """A stream that ended without its stop still ends as Anthropic streams end."""
        if self._ended or not self._started:
            return []
        return self._finish(neutral.MessageStop("end_turn"))

    def _start(self, event: neutral.MessageStart | None) -> list[WireEvent]:
        if self._started:
            return []
        self._started = True
        start = event or neutral.MessageStart(neutral.new_message_id(), self._model)
        message: dict[str, Any] = {
            "id": message_id(start.id),
            "type": "message",
            "role": "assistant",
            "model": start.model or self._model or "",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": write_usage(start.usage),
        }
        return [_event({"type": "message_start", "message": message})]

    def _part_start(self, event: neutral.PartStart) -> list[WireEvent]:
        if event.index in self._blocks or event.index in self._waiting:
            return []
        out = [e for index in sorted(self._open) for e in self._part_stop(index)]
        if _contentless(event.part):
            self._waiting[event.index] = event.part
            if isinstance(event.part, neutral.Thinking) and event.part.signature:
                self._signatures[event.index] = event.part.signature
            return out
        return out + self._block_start(event)

    def _block_start(self, event: neutral.PartStart) -> list[WireEvent]:
        """The signature-only thinking blocks that precede this block, then its start."""
        signed, self._signed = self._signed, []
        out = [e for index in signed for e in self._release(index)]
        block = write_answer_block(event.part)
        if block is None:
            return out
        index = self._blocks[event.index] = len(self._blocks)
        self._open.add(event.index)
        start = dict(block)
        if block["type"] == "text":
            start["text"] = ""
        elif block["type"] == "thinking":
            start.update(thinking="", signature="")
        elif block["type"] == "tool_use":
            start["input"] = {}
        out.append(_event({"type": "content_block_start", "index": index, "content_block": start}))
        for delta in _content_deltas(event.index, event.part):
            out += self._part_delta(delta)
        return out

    def _release(self, index: int) -> list[WireEvent]:
        signature = self._signatures.pop(index)
        start = self._block_start(neutral.PartStart(index, neutral.Thinking(signature=signature)))
        return start + self._part_stop(index)

    def _wake(self, event: neutral.PartDelta) -> list[WireEvent]:
        """A delta for a part whose block waits: content starts the block; a signature waits."""
        index = event.index
        if event.signature:
            self._signatures[index] = self._signatures.get(index, "") + event.signature
        if isinstance(self._waiting[index], neutral.Text) and event.text:
            part: neutral.Text | neutral.Thinking = neutral.Text(event.text)
        elif isinstance(self._waiting[index], neutral.Thinking) and event.thinking:
            part = neutral.Thinking(event.thinking, self._signatures.pop(index, None))
        else:
            return []
        del self._waiting[index]
        return self._block_start(neutral.PartStart(index, part))

    def _part_delta(self, event: neutral.PartDelta) -> list[WireEvent]:
        if event.index in self._waiting:
            return self._wake(event)
        if event.index not in self._open:
            return []
        index = self._blocks[event.index]
        deltas = []
        if event.text:
            deltas.append({"type": "text_delta", "text": event.text})
        if event.thinking:
            deltas.append({"type": "thinking_delta", "thinking": event.thinking})
        if event.signature:
            deltas.append({"type": "signature_delta", "signature": event.signature})
        if event.arguments:
            deltas.append({"type": "input_json_delta", "partial_json": event.arguments})
        return [
            _event({"type": "content_block_delta", "index": index, "delta": delta})
            for delta in deltas
        ]

    def _part_stop(self, index: int) -> list[WireEvent]:
        if self._waiting.pop(index, None) is not None and index in self._signatures:
            self._signed.append(index)
        if index not in self._open:
            return []
        self._open.discard(index)
        return [_event({"type": "content_block_stop", "index": self._blocks[index]})]

    def _finish(self, event: neutral.MessageStop) -> list[WireEvent]:
        out = [e for index in sorted(self._open) for e in self._part_stop(index)]
        self._ended = True
        delta = {"stop_reason": write_stop(event.stop_reason), "stop_sequence": event.stop_sequence}
        out.append(
            _event({"type": "message_delta", "delta": delta, "usage": _delta_usage(event.usage)})
        )
        out.append(_event({"type": "message_stop"}))
        return out


def _contentless(part: neutral.Part) -> TypeGuard[neutral.Text | neutral.Thinking]:
    """A part whose block waits (see AnthropicStreamWriter): empty text, unredacted thinking
    without text."""
    if isinstance(part, neutral.Text):
        return not part.text
    return isinstance(part, neutral.Thinking) and not part.redacted and not thinking_text(part)


def _delta_usage(usage: neutral.Usage) -> dict[str, Any]:
    """message_delta usage: cumulative, and only the counts known (a count given overwrites
    the one message_start gave, so an unknown input count must not be sent as 0)."""
    full = write_usage(usage)
    out = {"output_tokens": full["output_tokens"]}
    if usage.input_tokens is not None:
        out |= {
            k: full[k]
            for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        }
    if "output_tokens_details" in full:
        out["output_tokens_details"] = full["output_tokens_details"]
    return out
