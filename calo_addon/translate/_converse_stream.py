"""ConverseStream events <-> neutral stream events.

Events are `(event_type, data)`: the event stream's `:event-type` (or `:exception-type`)
header and its JSON payload. A stream runs messageStart, then per content block an optional
contentBlockStart (tool use only: text and reasoning blocks open with their first delta),
contentBlockDelta events and a contentBlockStop, then messageStop {stopReason} and, last,
metadata {usage, metrics}. Errors arrive as exception events with {"message"}.
"""

from __future__ import annotations

import json
from typing import Any

from . import neutral
from ._converse_answer import (
    read_stop_reason,
    read_usage,
    stop_sequence,
    write_stop_reason,
    write_usage,
)
from .base import WireEvent
from .neutral import (
    Event,
    MessageStart,
    MessageStop,
    PartDelta,
    PartStart,
    PartStop,
    StreamError,
    Text,
    Thinking,
    ToolCall,
)

# exception event -> HTTP status it stands for
EXCEPTIONS = {
    "internalServerException": 500,
    "modelStreamErrorException": 500,
    "throttlingException": 429,
    "validationException": 400,
    "serviceUnavailableException": 503,
}
_EXCEPTION_FOR_STATUS = {429: "throttlingException", 400: "validationException"}
_EXCEPTION_FOR_STATUS |= {503: "serviceUnavailableException"}
_EVENT_NAMES = {"messageStart", "contentBlockStart", "contentBlockDelta", "contentBlockStop"}
_EVENT_NAMES |= {"messageStop", "metadata", *EXCEPTIONS}


class ConverseStreamReader:
    """Upstream role: ConverseStream events in, neutral events out as they come.

    Converse sends blocks one after the other, so one part is open at a time; its block index
    maps to the next neutral index. The stop reason (messageStop) comes before the usage
    (metadata): MessageStop is emitted at metadata, or at close() if metadata never comes."""

    def __init__(self) -> None:
        self._started = False
        self._block: int | None = None  # the open Converse block index
        self._part: Text | Thinking | ToolCall | None = None
        self._arguments_seen = False
        self._next_index = 0
        self._stop: dict[str, Any] | None = None
        self._usage = neutral.Usage()
        self._usage_seen = False
        self._finished = False

    def feed(self, event_type: str | None, data: Any) -> list[Event]:
        event_type, data = _unwrap(event_type, data)
        if self._finished or event_type is None:
            return []
        if event_type in EXCEPTIONS:
            return self._error(event_type, data)
        if not isinstance(data, dict):
            return []
        handler = getattr(self, f"_on_{event_type}", None)
        events = [] if self._started or event_type == "messageStart" else self._start()
        return events + (handler(data) if handler else [])

    def close(self) -> list[Event]:
        if self._finished:
            return []
        events = ([] if self._started else self._start()) + self._close_part()
        return events + self._finish()

    # ------------------------------------------------------------ events

    def _on_messageStart(self, data: dict[str, Any]) -> list[Event]:
        return [] if self._started else self._start()

    def _on_contentBlockStart(self, data: dict[str, Any]) -> list[Event]:
        start = data.get("start") or {}
        tool = start.get("toolUse")
        if not isinstance(tool, dict):
            return []
        call_id = tool.get("toolUseId") or neutral.new_call_id("tooluse_")
        call = ToolCall(id=call_id, name=tool.get("name") or "")
        return self._open(data.get("contentBlockIndex"), call)

    def _on_contentBlockDelta(self, data: dict[str, Any]) -> list[Event]:
        delta = data.get("delta") or {}
        block = data.get("contentBlockIndex")
        events: list[Event] = []
        if block != self._block or self._part is None:
            events += self._open(block, _part_for(delta))
        index = self._next_index - 1
        if isinstance(delta.get("text"), str):
            events.append(PartDelta(index, text=delta["text"]))
        elif isinstance(delta.get("toolUse"), dict):
            fragment = delta["toolUse"].get("input")
            if isinstance(fragment, str) and fragment:
                self._arguments_seen = True
                events.append(PartDelta(index, arguments=fragment))
        elif isinstance(delta.get("reasoningContent"), dict):
            events += _reasoning_delta(index, delta["reasoningContent"])
        return events

    def _on_contentBlockStop(self, data: dict[str, Any]) -> list[Event]:
        return self._close_part()

    def _on_messageStop(self, data: dict[str, Any]) -> list[Event]:
        self._stop = data
        events = self._close_part()
        return events + (self._finish() if self._usage_seen else [])

    def _on_metadata(self, data: dict[str, Any]) -> list[Event]:
        self._usage, self._usage_seen = read_usage(data.get("usage")), True
        return self._finish() if self._stop is not None else []

    # ------------------------------------------------------------ state

    def _start(self) -> list[Event]:
        self._started = True
        return [MessageStart(id=neutral.new_message_id(), model=None)]

    def _open(self, block: Any, part: Text | Thinking | ToolCall) -> list[Event]:
        events = self._close_part()
        self._block, self._part, self._arguments_seen = block, part, False
        self._next_index += 1
        if isinstance(part, Thinking) and part.redacted:  # the data comes with its delta
            return events + [PartStart(self._next_index - 1, Thinking(redacted=True))]
        return events + [PartStart(self._next_index - 1, part)]

    def _close_part(self) -> list[Event]:
        if self._part is None:
            return []
        index = self._next_index - 1
        events: list[Event] = []
        if isinstance(self._part, ToolCall) and not self._arguments_seen:
            events.append(PartDelta(index, arguments="{}"))  # a call without arguments
        self._block, self._part = None, None
        return events + [PartStop(index)]

    def _finish(self) -> list[Event]:
        self._finished = True
        stop = self._stop or {}
        return [
            MessageStop(
                stop_reason=read_stop_reason(stop.get("stopReason")),
                usage=self._usage,
                stop_sequence=stop_sequence(stop.get("additionalModelResponseFields")),
            )
        ]

    def _error(self, event_type: str, data: Any) -> list[Event]:
        self._finished = True
        message = data.get("message") or data.get("Message") if isinstance(data, dict) else None
        status = EXCEPTIONS[event_type]
        original = data.get("originalStatusCode") if isinstance(data, dict) else None
        if isinstance(original, int) and 400 <= original < 600:
            status = original
        return [StreamError(status, str(message or event_type), kind=event_type)]


def _unwrap(event_type: str | None, data: Any) -> tuple[str | None, Any]:
    """Accept boto3's parsed form ({"messageStart": {...}}, no type) and exception types as
    the `:exception-type` header spells them ("ThrottlingException")."""
    if event_type is None and isinstance(data, dict) and len(data) == 1:
        ((key, value),) = data.items()
        if key in _EVENT_NAMES:
            return key, value
    if event_type and event_type[:1].isupper():
        event_type = event_type[0].lower() + event_type[1:]
    return event_type, data


def _part_for(delta: dict[str, Any]) -> Text | Thinking | ToolCall:
    """The part a block opened by its first delta is (text and reasoning have no start)."""
    reasoning = delta.get("reasoningContent")
    if isinstance(reasoning, dict):
        return Thinking(redacted="redactedContent" in reasoning)
    if isinstance(delta.get("toolUse"), dict):
        return ToolCall(id=neutral.new_call_id("tooluse_"), name="")
    return Text("")


def _reasoning_delta(index: int, reasoning: dict[str, Any]) -> list[Event]:
    if isinstance(reasoning.get("text"), str):
        return [PartDelta(index, thinking=reasoning["text"])]
    if isinstance(reasoning.get("signature"), str):
        return [PartDelta(index, signature=reasoning["signature"])]
    if isinstance(reasoning.get("redactedContent"), str):  # the opaque data of a redacted part
        return [PartDelta(index, signature=reasoning["redactedContent"])]
    return []


class ConverseStreamWriter:
    """Client role: neutral events in, ConverseStream events out (what boto3's
    converse_stream yields). Only tool-use blocks get a contentBlockStart; metadata (usage,
    metrics) comes last, right after messageStop."""

    def __init__(self) -> None:
        self._kinds: dict[int, str] = {}  # neutral index -> "text" | "thinking" | "redacted" ...
        self._arguments_written: set[int] = set()

    def write(self, event: Event) -> list[WireEvent]:
        if isinstance(event, MessageStart):
            return [("messageStart", {"role": "assistant"})]
        if isinstance(event, PartStart):
            return self._start(event)
        if isinstance(event, PartDelta):
            return self._delta(event)
        if isinstance(event, PartStop):
            return self._stop(event.index)
        if isinstance(event, MessageStop):
            return _message_stop(event)
        return [_exception(event)]

    def close(self) -> list[WireEvent]:
        return []

    def _start(self, event: PartStart) -> list[WireEvent]:
        part = event.part
        if isinstance(part, ToolCall):
            self._kinds[event.index] = "tool"
            tool = {"toolUseId": part.id, "name": part.name}
            start = _block(event.index, start={"toolUse": tool})
            arguments = PartDelta(event.index, arguments=json.dumps(part.arguments))
            return [("contentBlockStart", start)] + (
                self._delta(arguments) if part.arguments else []
            )
        if isinstance(part, Thinking):
            self._kinds[event.index] = "redacted" if part.redacted else "thinking"
            first = PartDelta(event.index, thinking=part.text or None, signature=part.signature)
            return self._delta(first)
        self._kinds[event.index] = "text"
        return self._delta(PartDelta(event.index, text=part.text or None))

    def _delta(self, event: PartDelta) -> list[WireEvent]:
        deltas: list[dict[str, Any]] = []
        if event.text:
            deltas.append({"text": event.text})
        if event.arguments:
            self._arguments_written.add(event.index)
            deltas.append({"toolUse": {"input": event.arguments}})
        if event.thinking:
            deltas.append({"reasoningContent": {"text": event.thinking}})
        if event.signature:
            key = "redactedContent" if self._kinds.get(event.index) == "redacted" else "signature"
            deltas.append({"reasoningContent": {key: event.signature}})
        return [("contentBlockDelta", _block(event.index, delta=d)) for d in deltas]

    def _stop(self, index: int) -> list[WireEvent]:
        events: list[WireEvent] = []
        if self._kinds.get(index) == "tool" and index not in self._arguments_written:
            events += self._delta(PartDelta(index, arguments="{}"))
        return events + [("contentBlockStop", _block(index))]


def _block(index: int, **fields: Any) -> dict[str, Any]:
    return {"contentBlockIndex": index, **fields}


def _message_stop(event: MessageStop) -> list[WireEvent]:
    stop: dict[str, Any] = {"stopReason": write_stop_reason(event.stop_reason)}
    if event.stop_sequence is not None:
        stop["additionalModelResponseFields"] = {"stop_sequence": event.stop_sequence}
    metadata = {"usage": write_usage(event.usage), "metrics": {"latencyMs": 0}}
    return [("messageStop", stop), ("metadata", metadata)]


def _exception(error: StreamError) -> WireEvent:
    """An exception event (the framer writes it with :message-type exception)."""
    name = error.kind if error.kind in EXCEPTIONS else None
    name = name or _EXCEPTION_FOR_STATUS.get(error.status, "internalServerException")
    return (name, {"message": error.message})
