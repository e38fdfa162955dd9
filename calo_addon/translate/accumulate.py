"""A whole answer assembled from neutral stream events, within a bound.

Used where the proxy needs an answer beside a stream (the rollup's view of the reply, a
Responses answer to remember for `previous_response_id`): text and arguments are joined as
they come, and past `limit` characters the accumulator stops collecting and says so, so a
stream of any length costs bounded memory.
"""

from __future__ import annotations

import json

from . import neutral


class Accumulator:
    def __init__(self, limit: int = 4 * 1024 * 1024):
        self.limit = limit
        self.size = 0
        self.overflow = False
        self.response = neutral.Response(id="", model=None)
        self._parts: dict[int, neutral.Part] = {}
        self._arguments: dict[int, list[str]] = {}

    def feed(self, events: list[neutral.Event]) -> None:
        for event in events:
            if not self.overflow:
                self._feed(event)

    def _feed(self, event: neutral.Event) -> None:
        response = self.response
        if isinstance(event, neutral.MessageStart):
            response.id, response.model = event.id, event.model
            response.usage = response.usage.merged(event.usage)
        elif isinstance(event, neutral.PartStart):
            part = _empty_copy(event.part)
            self._parts[event.index] = part
            response.parts.append(part)
        elif isinstance(event, neutral.PartDelta):
            self._delta(event)
        elif isinstance(event, neutral.PartStop):
            self._stop(event.index)
        elif isinstance(event, neutral.MessageStop):
            response.stop_reason = event.stop_reason
            response.stop_sequence = event.stop_sequence
            response.usage = response.usage.merged(event.usage)

    def _delta(self, event: neutral.PartDelta) -> None:
        part = self._parts.get(event.index)
        added = 0
        if isinstance(part, neutral.Text) and event.text:
            part.text += event.text
            added = len(event.text)
        elif isinstance(part, neutral.Thinking):
            if event.thinking:
                part.text += event.thinking
                added = len(event.thinking)
            if event.signature:
                part.signature = (part.signature or "") + event.signature
                added += len(event.signature)
        elif isinstance(part, neutral.ToolCall) and event.arguments:
            self._arguments.setdefault(event.index, []).append(event.arguments)
            added = len(event.arguments)
        self.size += added
        if self.size > self.limit:
            self.overflow = True

    def _stop(self, index: int) -> None:
        part = self._parts.get(index)
        if isinstance(part, neutral.ToolCall) and index in self._arguments:
            text = "".join(self._arguments.pop(index))
            try:
                value = json.loads(text) if text.strip() else {}
            except ValueError:
                value = {"_raw": text}
            part.arguments = value if isinstance(value, dict) else {"_value": value}


def _empty_copy(part: neutral.Part) -> neutral.Part:
    if isinstance(part, neutral.Text):
        return neutral.Text(part.text)
    if isinstance(part, neutral.Thinking):
        return neutral.Thinking(
            part.text, part.signature, part.redacted, part.attached, part.summary
        )
    if isinstance(part, neutral.ToolCall):
        arguments = part.arguments if isinstance(part.arguments, str) else dict(part.arguments)
        return neutral.ToolCall(part.id, part.name, arguments, part.tool_kind)
    return part
