"""Gemini streams (`streamGenerateContent?alt=sse`: every event a GenerateContentResponse
chunk, no event type) <-> neutral stream events."""

from __future__ import annotations

import json
from typing import Any

from . import neutral
from ._gemini_answer import finish_reason, read_usage, stop_reason, write_usage
from ._gemini_parts import code_text, get
from .base import WireEvent
from .neutral import expect_dict

# google.rpc.Code names by HTTP status, as Gemini answers them
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error_payload(status: int, message: str, kind: str | None = None) -> dict[str, Any]:
    """An error in Gemini's shape (google.rpc.Status as JSON)."""
    return {
        "error": {
            "code": status,
            "message": message,
            "status": kind or _STATUS.get(status, "UNKNOWN"),
        }
    }


class GeminiStreamReader:
    """Gemini chunks in, neutral events out, as they come.

    Text and thought text stream as deltas on one open part; a functionCall arrives whole and
    becomes a ToolCall part with its arguments as one fragment; a part's thoughtSignature
    becomes a signed Thinking part (attached) right before that part. Usage is the latest
    chunk's; the finish reason is remembered for MessageStop at close().
    """

    def __init__(self) -> None:
        self._started = False
        self._failed = False
        self._open: tuple[int, str] | None = None  # (index, "text" | "thinking")
        self._next_index = 0
        self._usage = neutral.Usage()
        self._finish: str | None = None
        self._blocked = False
        self._called = False

    def feed(self, event_type: str | None, data: Any) -> list[neutral.Event]:
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError:
                raise neutral.TranslationError(
                    "a Gemini stream event is not JSON", "chunk"
                ) from None
        chunks = data if isinstance(data, list) else [data]  # without alt=sse: a JSON array
        return [event for chunk in chunks for event in self._chunk(expect_dict(chunk, "chunk"))]

    def close(self) -> list[neutral.Event]:
        if self._failed or not self._started:
            return []
        stop = "refusal" if self._blocked else stop_reason(self._finish, self._called)
        return [*self._close_part(), neutral.MessageStop(stop_reason=stop, usage=self._usage)]

    def _chunk(self, chunk: dict[str, Any]) -> list[neutral.Event]:
        if isinstance(error := chunk.get("error"), dict):
            self._failed = True
            code = error.get("code")
            status = code if isinstance(code, int) else 500
            return [neutral.StreamError(status, error.get("message") or "", error.get("status"))]
        if (metadata := get(chunk, "usageMetadata")) is not None:
            self._usage = read_usage(metadata)
        events: list[neutral.Event] = []
        if not self._started:
            self._started = True
            message_id = get(chunk, "responseId") or neutral.new_message_id()
            events.append(neutral.MessageStart(message_id, get(chunk, "modelVersion"), self._usage))
        candidates = chunk.get("candidates") or []
        if not candidates:
            self._blocked = self._blocked or bool(
                get(get(chunk, "promptFeedback") or {}, "blockReason")
            )
            return events
        candidate = expect_dict(candidates[0], "candidates[0]")
        for part in (candidate.get("content") or {}).get("parts") or []:
            events.extend(self._part(expect_dict(part, "part")))
        self._finish = get(candidate, "finishReason") or self._finish
        return events

    def _part(self, part: dict[str, Any]) -> list[neutral.Event]:
        signature = get(part, "thoughtSignature")
        if get(part, "thought"):
            return self._thought(part.get("text") or "", signature)
        events: list[neutral.Event] = []
        if signature:
            events += self._close_part()
            events += self._signed(signature)
        if "text" in part:
            events += self._text(part["text"] or "")
        elif (call := get(part, "functionCall")) is not None:
            events += self._call(expect_dict(call, "functionCall"))
        elif (code := code_text(part)) is not None:
            events += self._text(code)
        # Inline media from image models has no place in neutral stream events: left out.
        return events

    def _thought(self, text: str, signature: str | None) -> list[neutral.Event]:
        events = self._open_part("thinking", neutral.Thinking())
        index = self._open_index()
        if text:
            events.append(neutral.PartDelta(index, thinking=text))
        if signature:  # a signed thought is complete: the next thought starts a new part
            events.append(neutral.PartDelta(index, signature=signature))
            events += self._close_part()
        return events

    def _signed(self, signature: str) -> list[neutral.Event]:
        """A signature that sat on a non-thought part: its own Thinking, right before it."""
        index = self._take_index()
        return [
            neutral.PartStart(index, neutral.Thinking(attached=True)),
            neutral.PartDelta(index, signature=signature),
            neutral.PartStop(index),
        ]

    def _text(self, text: str) -> list[neutral.Event]:
        """Text deltas on the open Text part. An empty text part opens none, even when it
        carried a signature (Gemini's last chunk): a client would get an empty text block,
        which Anthropic refuses when it comes back; the Gemini writer puts a signature that
        nothing follows on the part before it."""
        if not text:
            return []
        events = self._open_part("text", neutral.Text(""))
        if text:
            events.append(neutral.PartDelta(self._open_index(), text=text))
        return events

    def _call(self, call: dict[str, Any]) -> list[neutral.Event]:
        self._called = True
        events = self._close_part()
        index = self._take_index()
        part = neutral.ToolCall(call.get("id") or neutral.new_call_id(), call.get("name") or "")
        arguments = json.dumps(call.get("args") or {})
        return [
            *events,
            neutral.PartStart(index, part),
            neutral.PartDelta(index, arguments=arguments),
            neutral.PartStop(index),
        ]

    def _open_part(self, kind: str, part: neutral.Text | neutral.Thinking) -> list[neutral.Event]:
        if self._open and self._open[1] == kind:
            return []
        events = self._close_part()
        index = self._take_index()
        self._open = (index, kind)
        return [*events, neutral.PartStart(index, part)]

    def _close_part(self) -> list[neutral.Event]:
        if self._open is None:
            return []
        index, self._open = self._open[0], None
        return [neutral.PartStop(index)]

    def _open_index(self) -> int:
        assert self._open is not None
        return self._open[0]

    def _take_index(self) -> int:
        index, self._next_index = self._next_index, self._next_index + 1
        return index


class GeminiStreamWriter:
    """Neutral events in, Gemini alt=sse chunks out: one chunk per delta, a functionCall whole
    when its part stops, usageMetadata and finishReason on the last chunk.

    A signature that belongs on the following part (an attached or textless Thinking) waits for
    that part's first chunk, or the last chunk as an empty signed text part, as Gemini sends it.
    A signed Thinking with text keeps its signature on a thought part of its own.
    """

    def __init__(self, request: neutral.Request) -> None:
        self._id = neutral.new_message_id()
        self._model = request.model
        self._parts: dict[int, neutral.Text | neutral.Thinking | neutral.ToolCall] = {}
        self._arguments: dict[int, list[str]] = {}
        self._signatures: dict[int, str] = {}
        self._thought_text: set[int] = set()
        self._owed: str | None = None

    def write(self, event: neutral.Event) -> list[WireEvent]:
        if isinstance(event, neutral.MessageStart):
            self._id, self._model = event.id, event.model or self._model
        elif isinstance(event, neutral.PartStart):
            self._parts[event.index] = event.part
            self._arguments[event.index] = []
        elif isinstance(event, neutral.PartDelta):
            return self._delta(event)
        elif isinstance(event, neutral.PartStop):
            return self._stop(event.index)
        elif isinstance(event, neutral.MessageStop):
            return [self._last(event)]
        elif isinstance(event, neutral.StreamError):
            return [(None, error_payload(event.status, event.message, event.kind))]
        return []

    def close(self) -> list[WireEvent]:
        return []

    def _delta(self, delta: neutral.PartDelta) -> list[WireEvent]:
        out: list[WireEvent] = []
        if delta.text:
            out.append(self._chunk([self._signed({"text": delta.text})]))
        if delta.thinking:
            self._thought_text.add(delta.index)
            out.append(self._chunk([{"text": delta.thinking, "thought": True}]))
        if delta.signature:
            self._signatures[delta.index] = self._signatures.get(delta.index, "") + delta.signature
        if delta.arguments:
            self._arguments.setdefault(delta.index, []).append(delta.arguments)
        return out

    def _stop(self, index: int) -> list[WireEvent]:
        part = self._parts.pop(index, None)
        if isinstance(part, neutral.ToolCall):
            call = {
                "name": part.name,
                "args": _arguments(self._arguments.pop(index, [])),
                "id": part.id,
            }
            return [self._chunk([self._signed({"functionCall": call})])]
        signature = self._signatures.pop(index, None)
        if not isinstance(part, neutral.Thinking) or not signature:
            return []
        if index in self._thought_text and not part.attached:
            return [self._chunk([{"text": "", "thought": True, "thoughtSignature": signature}])]
        # A signature already waiting (two in a row) goes out first, on an empty text part.
        earlier = [self._chunk([self._signed({"text": ""})])] if self._owed else []
        self._owed = signature
        return earlier

    def _last(self, stop: neutral.MessageStop) -> WireEvent:
        # Gemini's last chunk has content too (an empty text part, signed if a signature is
        # still owed); clients that read candidates[0].content.parts rely on it.
        parts = [self._signed({"text": ""})]
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish := finish_reason(stop.stop_reason):
            candidate["finishReason"] = finish
        chunk: dict[str, Any] = {"candidates": [candidate]}
        if usage := write_usage(stop.usage):
            chunk["usageMetadata"] = usage
        return (None, self._stamped(chunk))

    def _signed(self, part: dict[str, Any]) -> dict[str, Any]:
        if self._owed:
            part["thoughtSignature"], self._owed = self._owed, None
        return part

    def _chunk(self, parts: list[dict[str, Any]]) -> WireEvent:
        candidate = {"content": {"role": "model", "parts": parts}, "index": 0}
        return (None, self._stamped({"candidates": [candidate]}))

    def _stamped(self, chunk: dict[str, Any]) -> dict[str, Any]:
        if self._model:
            chunk["modelVersion"] = self._model
        chunk["responseId"] = self._id
        return chunk


def _arguments(fragments: list[str]) -> dict[str, Any]:
    text = "".join(fragments)
    if not text.strip():
        return {}
    try:
        arguments = json.loads(text)
    except json.JSONDecodeError as error:
        raise neutral.TranslationError(
            f"tool call arguments are not JSON: {error}", "args"
        ) from None
    if not isinstance(arguments, dict):
        raise neutral.TranslationError("tool call arguments must be a JSON object", "args")
    return arguments
