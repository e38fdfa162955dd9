"""Upstream role: an OpenAI-compatible server's stream chunks read into neutral events, as
they come.

The neutral stream has one part open at a time; Chat chunks do not promise that, so this
reader serialises:
- text (`content`, and `refusal`), thinking (`reasoning_content` or `reasoning`) and tool
  calls each open a part, closing the one before;
- tool calls are tracked by their `index` (a new `id` at a known index, as some servers send,
  is a new call); id and name arrive first, then argument fragments, each passed on as a
  PartDelta the moment it arrives while its call is the open part;
- a server that interleaves two calls' fragments: the later call's fragments are buffered
  until the earlier call stops, which is when its arguments parse as a whole JSON value (no
  fragment can follow that) or the choice finishes; then the later call opens with its
  buffered text as one fragment and streams on live;
- Google's `extra_content.google.thought_signature` becomes a signed Thinking: on a tool
  call, its own part right before that call; on the message delta, the open thinking part's
  signature, else its own part before what follows.
The MessageStop waits for the usage chunk (`choices: []`, sent after the finish reason when
`stream_options.include_usage` was asked) or "[DONE]" or the end of the stream.
An `{"error": ...}` event becomes a StreamError and ends the stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import neutral
from ._chat_common import error_status, read_usage, reasoning_text, signature_of, stop_reason


@dataclass
class _Call:
    id: str
    id_given: bool  # False: made here (the legacy `function_call` has none)
    name: str
    kind: neutral.ToolKind
    signature: str | None = None
    fragments: list[str] = field(default_factory=list)
    index: int | None = None  # its neutral part index once started
    stopped: bool = False

    def complete(self) -> bool:
        try:
            json.loads("".join(self.fragments))
        except ValueError:
            return False
        return True


class ChatStreamReader:
    def __init__(self) -> None:
        self._started = False
        self._ended = False
        self._next_index = 0
        self._open: str | _Call | None = None  # "text" | "thinking" | the open call
        self._open_index = 0
        self._calls: dict[int, _Call] = {}  # by upstream index
        self._waiting: list[_Call] = []  # seen, not yet opened
        self._any_call = False
        self._refusal = False
        self._finish: str | None = None
        self._usage: neutral.Usage | None = None

    def feed(self, event_type: str | None, data: Any) -> list[neutral.Event]:
        if self._ended:
            return []
        if isinstance(data, str):
            return self._end() if data.strip() == "[DONE]" else []
        if not isinstance(data, dict):
            return []
        if data.get("error") or data.get("object") == "error":
            self._ended = True
            return [_stream_error(data)]
        out = [] if self._started else self._start(data)
        if isinstance(data.get("usage"), dict):
            self._usage = read_usage(data["usage"])
        for choice in data.get("choices") or []:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                out += self._choice(choice)
        if self._finish is not None and self._usage is not None:
            out += self._end()
        return out

    def close(self) -> list[neutral.Event]:
        return self._end() if self._started and not self._ended else []

    # ------------------------------------------------------------ chunks

    def _start(self, data: dict[str, Any]) -> list[neutral.Event]:
        self._started = True
        message_id = data.get("id") or neutral.new_message_id("chatcmpl-")
        return [neutral.MessageStart(id=message_id, model=data.get("model"))]

    def _choice(self, choice: dict[str, Any]) -> list[neutral.Event]:
        delta = choice.get("delta")
        out = self._delta(delta) if isinstance(delta, dict) else []
        if choice.get("finish_reason"):
            self._finish = choice["finish_reason"]
            out += self._flush()
        return out

    def _delta(self, delta: dict[str, Any]) -> list[neutral.Event]:
        out: list[neutral.Event] = []
        reasoning = reasoning_text(delta)
        if reasoning:
            out += self._open_part("thinking", neutral.Thinking())
            out.append(neutral.PartDelta(self._open_index, thinking=reasoning))
        signature = signature_of(delta)
        if signature:
            out += self._message_signature(signature)
        for key in ("content", "refusal"):
            text = delta.get(key)
            if isinstance(text, str) and text:
                self._refusal = self._refusal or key == "refusal"
                out += self._open_part("text", neutral.Text(""))
                out.append(neutral.PartDelta(self._open_index, text=text))
        calls = delta.get("tool_calls")
        if isinstance(delta.get("function_call"), dict):  # legacy: one call, no id
            calls = [{"index": 0, "function": delta["function_call"]}]
        for position, entry in enumerate(calls if isinstance(calls, list) else []):
            if isinstance(entry, dict):
                out += self._call_delta(entry, position)
        return out

    def _message_signature(self, signature: str) -> list[neutral.Event]:
        if self._open == "thinking":
            out: list[neutral.Event] = [neutral.PartDelta(self._open_index, signature=signature)]
            return out + self._close()
        out = self._open_part("signature", neutral.Thinking(attached=True))
        out.append(neutral.PartDelta(self._open_index, signature=signature))
        return out + self._close()

    # ------------------------------------------------------------ tool calls

    def _call_delta(self, entry: dict[str, Any], position: int) -> list[neutral.Event]:
        index = entry.get("index", position)
        call = self._calls.get(index)
        given_id = entry.get("id") if isinstance(entry.get("id"), str) else None
        if call is None or (given_id and call.id_given and given_id != call.id):
            call = self._new_call(entry, given_id)
            self._calls[index] = call
        elif given_id and not call.id_given and call.index is None:
            call.id, call.id_given = given_id, True  # the id came after the name: not opened yet
        fragment = _fragment(entry)
        out: list[neutral.Event] = []
        if fragment and not call.stopped:
            call.fragments.append(fragment)
            if self._open is call:
                out.append(neutral.PartDelta(self._open_index, arguments=fragment))
        return out + self._advance()

    def _new_call(self, entry: dict[str, Any], given_id: str | None) -> _Call:
        kind: neutral.ToolKind = "custom" if entry.get("type") == "custom" else "function"
        given = entry.get(kind)
        body = given if isinstance(given, dict) else {}
        call = _Call(
            id=given_id or neutral.new_call_id(),
            id_given=bool(given_id),
            name=body.get("name") or "",
            kind=kind,
            signature=signature_of(entry),
        )
        self._waiting.append(call)
        self._any_call = True
        return call

    def _advance(self) -> list[neutral.Event]:
        """Open waiting calls in order, once the open call (if any) is complete."""
        out: list[neutral.Event] = []
        while self._waiting:
            if isinstance(self._open, _Call) and not self._open.complete():
                break
            out += self._open_call(self._waiting.pop(0))
        return out

    def _open_call(self, call: _Call) -> list[neutral.Event]:
        out = self._close()
        if call.signature:
            out += self._open_part("signature", neutral.Thinking(attached=True))
            out.append(neutral.PartDelta(self._open_index, signature=call.signature))
            out += self._close()
        tool_call = neutral.ToolCall(id=call.id, name=call.name, tool_kind=call.kind)
        out += self._open_part(call, tool_call)
        call.index = self._open_index
        if call.fragments:
            out.append(neutral.PartDelta(self._open_index, arguments="".join(call.fragments)))
        return out

    # ------------------------------------------------------------ parts

    def _open_part(
        self, kind: str | _Call, part: neutral.Text | neutral.Thinking | neutral.ToolCall
    ) -> list[neutral.Event]:
        if self._open == kind and not isinstance(kind, _Call):
            return []
        out = self._close()
        self._open, self._open_index = kind, self._next_index
        self._next_index += 1
        return out + [neutral.PartStart(self._open_index, part)]

    def _close(self) -> list[neutral.Event]:
        if self._open is None:
            return []
        if isinstance(self._open, _Call):
            self._open.stopped = True
        self._open = None
        return [neutral.PartStop(self._open_index)]

    def _flush(self) -> list[neutral.Event]:
        """The choice finished: every call is whole now."""
        out: list[neutral.Event] = []
        while self._waiting:
            out += self._open_call(self._waiting.pop(0))
        return out + self._close()

    def _end(self) -> list[neutral.Event]:
        out = [] if self._started else self._start({})
        out += self._flush()
        self._ended = True
        reason = stop_reason(self._finish, self._any_call)
        if self._refusal and reason == "end_turn":
            reason = "refusal"
        return out + [neutral.MessageStop(reason, self._usage or neutral.Usage())]


def _fragment(entry: dict[str, Any]) -> str | None:
    """An argument fragment: Chat's JSON text. A custom call's input is raw text, taken whole
    as the JSON of {"input": ...} (this codec declares custom tools to upstreams as functions,
    so only a server that was sent custom tools some other way answers with one)."""
    if entry.get("type") == "custom" and isinstance(entry.get("custom"), dict):
        text = entry["custom"].get("input")
        return json.dumps({"input": text}) if isinstance(text, str) else None
    function = entry.get("function")
    arguments = function.get("arguments") if isinstance(function, dict) else None
    if isinstance(arguments, dict):  # a server that sends the object itself
        return json.dumps(arguments)
    return arguments if isinstance(arguments, str) else None


def _stream_error(data: dict[str, Any]) -> neutral.StreamError:
    error = data.get("error")
    if isinstance(error, str):
        error = {"message": error}
    if not isinstance(error, dict):
        error = data  # vLLM's older shape: {"object": "error", "message", "type", "code"}
    kind = error.get("type") or error.get("status") or error.get("code")
    return neutral.StreamError(
        status=error_status(error),
        message=str(error.get("message") or "upstream error"),
        kind=str(kind) if kind is not None else None,
    )
