"""Client role: neutral stream events written as Chat Completions chunks, the sequence the
openai SDK's accumulators (`chat.completions.stream`, and any `delta` merger) assemble into
the same message `write_response` would have given.

Chunks all carry the same id, created and model. The first has `delta {role: assistant,
content: ""}`; text deltas go out as `content`, thinking as `reasoning_content`; a tool call
opens with `{index, id, type: function, function {name, arguments: ""}}` (and Google's
`extra_content` when a signature precedes it), then one chunk per argument fragment. A
custom tool's call goes out whole when it ends, since its `input` is a plain string inside
the JSON fragments the upstream streamed. The last choice chunk has an empty delta and the
finish reason; with `stream_options.include_usage` a chunk with no choices and the usage
follows; `close()` ends with "[DONE]". An error mid-stream is an `{"error": ...}` event, as
vLLM and OpenAI send it, and nothing follows it (no "[DONE]": the answer did not complete).
"""

from __future__ import annotations

import time
from typing import Any

from . import neutral
from ._chat_answer import chat_id, custom_input
from ._chat_common import answer_arguments, error_type, finish_reason, signature_field, write_usage
from .base import WireEvent


class ChatStreamWriter:
    def __init__(self, request: neutral.Request):
        self._include_usage = bool(request.extra.get("include_usage"))
        self._custom_tools = {t.name for t in request.tools if t.tool_kind == "custom"}
        self._id: str | None = None
        self._model = request.model
        self._created = int(time.time())
        self._start_usage = neutral.Usage()
        self._calls: dict[int, tuple[int, neutral.ToolCall]] = {}  # part index -> (i, call)
        self._custom: dict[int, list[str]] = {}  # part index -> input fragments (custom calls)
        self._custom_signature: str | None = None
        self._signature: str | None = None  # from a thinking part, for what follows it
        self._message_signed = False
        self._failed = False

    def write(self, event: neutral.Event) -> list[WireEvent]:
        if self._failed:
            return []
        if isinstance(event, neutral.StreamError):
            self._failed = True
            return [(None, _error(event))]
        if isinstance(event, neutral.MessageStart):
            return self._start(event)
        out = [] if self._id is not None else self._start(neutral.MessageStart("", None))
        if isinstance(event, neutral.PartStart):
            out += self._part_start(event)
        elif isinstance(event, neutral.PartDelta):
            out += self._part_delta(event)
        elif isinstance(event, neutral.PartStop):
            out += self._part_stop(event)
        elif isinstance(event, neutral.MessageStop):
            out += self._stop(event)
        return out

    def close(self) -> list[WireEvent]:
        return [] if self._failed else [(None, "[DONE]")]

    # ------------------------------------------------------------ events

    def _start(self, event: neutral.MessageStart) -> list[WireEvent]:
        self._id = chat_id(event.id)
        self._model = event.model or self._model
        self._start_usage = event.usage
        return [self._chunk({"role": "assistant", "content": ""})]

    def _part_start(self, event: neutral.PartStart) -> list[WireEvent]:
        part = event.part
        if isinstance(part, neutral.ToolCall):
            return self._call_start(event.index, part)
        out = self._loose_signature()
        if isinstance(part, neutral.Thinking):
            self._signature = part.signature
            if part.text:
                out.append(self._chunk({"reasoning_content": part.text}))
        elif part.text:
            out.append(self._chunk({"content": part.text}))
        return out

    def _call_start(self, index: int, call: neutral.ToolCall) -> list[WireEvent]:
        i = len(self._calls)
        self._calls[index] = (i, call)
        signature, self._signature = self._signature, None
        # custom: declared so by the upstream, or by the client and served as a function
        if call.tool_kind == "custom" or call.name in self._custom_tools:
            self._custom[index] = []
            self._custom_signature = signature
            return []
        opening: dict[str, Any] = {
            "index": i,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        if signature:
            opening.update(signature_field(signature))
        return [self._chunk({"tool_calls": [opening]})]

    def _part_delta(self, event: neutral.PartDelta) -> list[WireEvent]:
        if event.signature:
            self._signature = event.signature
        if event.thinking:
            return [self._chunk({"reasoning_content": event.thinking})]
        if event.text:
            return [self._chunk({"content": event.text})]
        if event.arguments and event.index in self._calls:
            if event.index in self._custom:
                self._custom[event.index].append(event.arguments)
                return []
            i, _ = self._calls[event.index]
            fragment = {"index": i, "function": {"arguments": event.arguments}}
            return [self._chunk({"tool_calls": [fragment]})]
        return []

    def _part_stop(self, event: neutral.PartStop) -> list[WireEvent]:
        fragments = self._custom.pop(event.index, None)
        if fragments is None:
            return []
        i, call = self._calls[event.index]
        arguments = answer_arguments("".join(fragments)) if fragments else call.arguments
        whole: dict[str, Any] = {
            "index": i,
            "id": call.id,
            "type": "custom",
            "custom": {"name": call.name, "input": custom_input(arguments)},
        }
        if self._custom_signature:
            whole.update(signature_field(self._custom_signature))
        return [self._chunk({"tool_calls": [whole]})]

    def _stop(self, event: neutral.MessageStop) -> list[WireEvent]:
        out = self._loose_signature()
        out.append(self._chunk({}, finish_reason(event.stop_reason)))
        if self._include_usage:
            chunk = self._envelope([])
            chunk["usage"] = write_usage(_merge(self._start_usage, event.usage))
            out.append((None, chunk))
        return out

    def _loose_signature(self) -> list[WireEvent]:
        """A signature no tool call took rides on the message, once (see `_place_signatures`)."""
        signature, self._signature = self._signature, None
        if not signature or self._message_signed:
            return []
        self._message_signed = True
        return [self._chunk(signature_field(signature))]

    # ------------------------------------------------------------ framing

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> WireEvent:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return (None, self._envelope([choice]))

    def _envelope(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }


def _merge(start: neutral.Usage, stop: neutral.Usage) -> neutral.Usage:
    """Usage the upstream gave at the start (input) completed by what it gave at the end."""
    fields = ("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens")
    merged = neutral.Usage(reasoning_tokens=stop.reasoning_tokens or start.reasoning_tokens)
    for name in fields:
        value = getattr(stop, name)
        setattr(merged, name, value if value is not None else getattr(start, name))
    return merged


def _error(event: neutral.StreamError) -> dict[str, Any]:
    return {
        "error": {
            "message": event.message,
            "type": error_type(event.status),
            "code": event.kind or event.status,
        }
    }
