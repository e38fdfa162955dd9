"""Neutral events -> the Responses stream a client expects (the official event sequence).

Every event is `{"type": ..., "sequence_number": n, ...}`, sent with the SSE event name
equal to its type. A part of the answer is one output item: added, its deltas, its `.done`
events, then `response.output_item.done` with the whole item; `response.completed` (or
`.incomplete`, `.failed`) carries the whole answer object at the end.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from . import neutral
from ._responses_answer import answer_object, error_code, response_id, status_of
from ._responses_content import write_reasoning
from ._responses_custom import CustomInputStream
from ._responses_items import message_item, output_text
from .base import WireEvent


@dataclass
class _Open:
    """The output item being streamed."""

    kind: str  # "message" | "reasoning" | "function_call" | "custom_tool_call"
    index: int
    item: dict[str, Any]
    text: str = ""  # text, thinking or arguments so far
    signature: str | None = None
    redacted: bool = False
    summary_open: bool = False
    custom: CustomInputStream = field(default_factory=CustomInputStream)


class ResponsesStreamWriter:
    """Neutral events -> Responses stream events, for a client using the Responses API.

    A message item opens with its first text: a text part that gets none (Gemini ends a text
    answer with an empty part carrying its signature) sends no item, since Codex takes the
    last message as the agent's answer. The signature still goes out, on its reasoning item.
    """

    def __init__(self, request: neutral.Request):
        self._request = request
        self._custom_names = {t.name for t in request.tools if t.tool_kind == "custom"}
        self._sequence = 0
        self._id: str | None = None
        self._model = request.model
        self._created_at = int(time.time())
        self._early_usage = neutral.Usage()
        self._output: list[dict[str, Any]] = []
        self._open: _Open | None = None
        self._text_waits = False  # a text part started without text: its item is not open yet
        self._finished = False

    def write(self, event: neutral.Event) -> list[WireEvent]:
        if self._finished:
            return []
        if isinstance(event, neutral.MessageStart):
            return self._start(event.id, event.model, event.usage)
        out = self._start(None, None, None)
        if isinstance(event, neutral.PartStart):
            out += self._finish_item()
            self._text_waits = isinstance(event.part, neutral.Text) and not event.part.text
            out += [] if self._text_waits else self._open_item(event.part)
        elif isinstance(event, neutral.PartDelta):
            if self._text_waits and event.text:
                self._text_waits = False
                return out + self._open_item(neutral.Text(event.text))
            out += self._delta(event)
        elif isinstance(event, neutral.PartStop):
            self._text_waits = False
            out += self._finish_item()
        elif isinstance(event, neutral.MessageStop):
            out += self._finish_item() + self._complete(event)
        elif isinstance(event, neutral.StreamError):
            out += self._fail(error_code(event.status), event.message)
        return out

    def close(self) -> list[WireEvent]:
        """A stream that ended without a stop fails, so the client does not wait for more."""
        if self._finished:
            return []
        return self._start(None, None, None) + self._fail("server_error", "the stream ended early")

    # ------------------------------------------------------------ lifecycle

    def _event(self, kind: str, **fields: Any) -> WireEvent:
        data = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return kind, data

    def _answer(self, status: str, **extra: Any) -> dict[str, Any]:
        assert self._id is not None
        return answer_object(
            self._id,
            self._model,
            list(self._output),
            status=status,
            created_at=self._created_at,
            request=self._request,
            **extra,
        )

    def _start(
        self, upstream_id: str | None, model: str | None, usage: neutral.Usage | None
    ) -> list[WireEvent]:
        if self._id is not None:
            return []
        self._id = response_id(upstream_id)
        self._model = model or self._model
        self._early_usage = usage or neutral.Usage()
        answer = self._answer("in_progress")
        return [
            self._event("response.created", response=answer),
            self._event("response.in_progress", response=answer),
        ]

    def _complete(self, stop: neutral.MessageStop) -> list[WireEvent]:
        self._finished = True
        status, incomplete = status_of(stop.stop_reason)
        usage = self._early_usage.merged(stop.usage)
        if status == "failed":
            return self._fail("server_error", "the model stopped with an error")
        answer = self._answer(status, usage=usage, incomplete=incomplete)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return [self._event(kind, response=answer)]

    def _fail(self, code: str, message: str) -> list[WireEvent]:
        self._finished = True
        error = {"code": code, "message": message}
        return [
            self._event("error", code=code, message=message, param=None),
            self._event("response.failed", response=self._answer("failed", error=error)),
        ]

    # ------------------------------------------------------------ items

    def _open_item(
        self, part: neutral.Text | neutral.Thinking | neutral.ToolCall
    ) -> list[WireEvent]:
        index = len(self._output)
        if isinstance(part, neutral.Text):
            item = message_item(neutral.new_message_id("msg_"), None, "in_progress")
            self._open = _Open("message", index, item)
            added = self._event("response.output_item.added", output_index=index, item=item)
            content = self._event(
                "response.content_part.added",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=output_text(""),
            )
            return [added, content] + self._delta(neutral.PartDelta(index, text=part.text or None))
        if isinstance(part, neutral.Thinking):
            item = {"type": "reasoning", "id": neutral.new_message_id("rs_"), "summary": []}
            self._open = _Open("reasoning", index, item, signature=part.signature)
            self._open.redacted = part.redacted
            added = self._event("response.output_item.added", output_index=index, item=item)
            return [added] + self._delta(neutral.PartDelta(index, thinking=part.text or None))
        custom = part.tool_kind == "custom" or part.name in self._custom_names
        kind = "custom_tool_call" if custom else "function_call"
        item_id = neutral.new_message_id("ctc_" if custom else "fc_")
        item = {
            "type": kind,
            "id": item_id,
            "call_id": part.id,
            "name": part.name,
            "status": "in_progress",
        }
        item["input" if custom else "arguments"] = ""
        self._open = _Open(kind, index, item)
        added = self._event("response.output_item.added", output_index=index, item=dict(item))
        arguments = json.dumps(part.arguments) if part.arguments else None
        return [added] + self._delta(neutral.PartDelta(index, arguments=arguments))

    def _delta(self, delta: neutral.PartDelta) -> list[WireEvent]:
        item = self._open
        if item is None:
            return []
        where = {"item_id": item.item["id"], "output_index": item.index}
        if item.kind == "message" and delta.text:
            item.text += delta.text
            return [
                self._event(
                    "response.output_text.delta",
                    **where,
                    content_index=0,
                    delta=delta.text,
                    logprobs=[],
                )
            ]
        if item.kind == "reasoning":
            return self._thinking_delta(item, delta, where)
        if item.kind == "function_call" and delta.arguments:
            item.text += delta.arguments
            return [
                self._event(
                    "response.function_call_arguments.delta", **where, delta=delta.arguments
                )
            ]
        if item.kind == "custom_tool_call" and delta.arguments:
            raw = item.custom.feed(delta.arguments)
            if raw:
                return [self._event("response.custom_tool_call_input.delta", **where, delta=raw)]
        return []

    def _thinking_delta(
        self, item: _Open, delta: neutral.PartDelta, where: dict[str, Any]
    ) -> list[WireEvent]:
        if delta.signature:
            item.signature = delta.signature  # a signature comes whole
        if not delta.thinking:
            return []
        out = []
        if not item.summary_open:
            item.summary_open = True
            part = {"type": "summary_text", "text": ""}
            out.append(
                self._event(
                    "response.reasoning_summary_part.added", **where, summary_index=0, part=part
                )
            )
        item.text += delta.thinking
        out.append(
            self._event(
                "response.reasoning_summary_text.delta",
                **where,
                summary_index=0,
                delta=delta.thinking,
            )
        )
        return out

    def _finish_item(self) -> list[WireEvent]:
        item, self._open = self._open, None
        if item is None:
            return []
        where = {"item_id": item.item["id"], "output_index": item.index}
        out, done = self._item_done_events(item, where)
        self._output.append(done)
        return out + [self._event("response.output_item.done", output_index=item.index, item=done)]

    def _item_done_events(
        self, item: _Open, where: dict[str, Any]
    ) -> tuple[list[WireEvent], dict[str, Any]]:
        if item.kind == "message":
            part = output_text(item.text)
            return [
                self._event(
                    "response.output_text.done",
                    **where,
                    content_index=0,
                    text=item.text,
                    logprobs=[],
                ),
                self._event("response.content_part.done", **where, content_index=0, part=part),
            ], {**item.item, "status": "completed", "content": [part]}
        if item.kind == "reasoning":
            return self._reasoning_done(item, where)
        if item.kind == "function_call":
            done = {**item.item, "arguments": item.text or "{}", "status": "completed"}
            event = self._event(
                "response.function_call_arguments.done", **where, arguments=done["arguments"]
            )
            return [event], done
        rest, whole = item.custom.finish()
        out = (
            [self._event("response.custom_tool_call_input.delta", **where, delta=rest)]
            if rest
            else []
        )
        out.append(self._event("response.custom_tool_call_input.done", **where, input=whole))
        return out, {**item.item, "input": whole, "status": "completed"}

    def _reasoning_done(
        self, item: _Open, where: dict[str, Any]
    ) -> tuple[list[WireEvent], dict[str, Any]]:
        out = []
        if item.summary_open:
            part = {"type": "summary_text", "text": item.text}
            out += [
                self._event(
                    "response.reasoning_summary_text.done", **where, summary_index=0, text=item.text
                ),
                self._event(
                    "response.reasoning_summary_part.done", **where, summary_index=0, part=part
                ),
            ]
        thinking = neutral.Thinking(item.text, item.signature, redacted=item.redacted)
        return out, write_reasoning(thinking, item.item["id"])
