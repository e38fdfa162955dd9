"""The pipeline's translate step: a call whose client and upstream speak different APIs.

The client's request is read into the neutral form by the client API's codec and written out
by the upstream's; the answer comes back the other way, whole or event by event (never
buffered to the end). Thought signatures are remembered from answers and restored in requests
(translate/signatures.py); conversations are kept for clients that continue one by the last
answer's id (translate/conversations.py). Errors keep the upstream's status and text, in the
client's shape. Token counts use the upstream's own count API, or are estimated by the proxy
where the upstream has none (the log line says so).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mitmproxy import http

from . import streams
from .dialects import Dialect, Operation, Refusal
from .dialects.base import json_response
from .translate import neutral
from .translate.accumulate import Accumulator
from .translate.base import Codec, StreamReader, StreamWriter
from .translate.conversations import CONTINUED_TURNS, ConversationMemory, answered, continued
from .translate.signatures import SignatureMemory, remember_from, restore


@dataclass
class Memory:
    """What translated calls remember across calls (kept across config reloads)."""

    signatures: SignatureMemory = field(default_factory=SignatureMemory)
    conversations: ConversationMemory = field(default_factory=ConversationMemory)


class Answered(Exception):
    """The proxy answers this request itself, successfully (e.g. an estimated token count)."""

    def __init__(self, response: http.Response, note: str):
        super().__init__(note)
        self.response = response
        self.note = note


@dataclass
class Translation:
    client: Dialect
    wire: Dialect
    client_codec: Codec
    upstream_codec: Codec
    request: neutral.Request
    path: str
    memory: Memory
    counting: bool = False  # a token count: the answer is a number
    dropped: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The log line's `translated` field, e.g. "anthropic -> gemini"."""
        return f"{self.client.name} -> {self.wire.name}"

    @classmethod
    def start(
        cls,
        op: Operation,
        wire: Dialect,
        payload: Any,
        model: str,
        streaming: bool,
        memory: Memory,
        headers: http.Headers,
    ) -> tuple[Translation, dict[str, Any]]:
        """The translation of this call, and the body to send upstream."""
        client_codec = op.dialect.codec(op)
        if client_codec is None or not (op.conversation or op.counts_tokens):
            raise Refusal(
                400,
                f"{op.dialect.name} {op.name} cannot be sent to an upstream that speaks "
                f"{wire.name}",
            )
        if streaming and not op.dialect.streams_translated:
            raise Refusal(400, f"a streamed {op.dialect.name} call cannot be translated")
        request = _read(client_codec, payload, model, streaming, headers)
        if op.counts_tokens:
            return cls._count(op, wire, client_codec, request, model, memory)
        upstream_codec, path = wire.upstream_for(op.dialect, model, streaming)
        try:
            continued(request, memory.conversations)
            restore(request, memory.signatures)
            body = upstream_codec.write_request(request)
        except neutral.TranslationError as e:
            raise Refusal(400, str(e)) from None
        translation = cls(op.dialect, wire, client_codec, upstream_codec, request, path, memory)
        translation.dropped = list(dict.fromkeys(request.dropped))
        return translation, body

    @classmethod
    def _count(cls, op, wire, client_codec, request, model, memory):
        """A token count: the upstream's own count API, else the proxy's estimate."""
        counted = wire.count_request(request, model)
        if counted is None:
            tokens = estimate_tokens(request)
            raise Answered(
                json_response(200, op.dialect.count_answer(tokens)),
                f"token count estimated by the proxy ({wire.name} has no count API)",
            )
        upstream_codec, path, body = counted
        translation = cls(op.dialect, wire, client_codec, upstream_codec, request, path, memory)
        translation.counting = True
        return translation, body

    # ------------------------------------------------------------ whole answers

    def answer(self, status: int, payload: Any) -> tuple[dict[str, Any] | None, str | None]:
        """(the client's answer body, or None for an error; the upstream's error text)."""
        if status >= 400:
            return None, self.wire.error_message(payload) or f"upstream answered {status}"
        if self.counting:
            tokens = self.wire.count_answer_tokens(payload)
            if tokens is None:
                return None, "the upstream's token count could not be read"
            return self.client.count_answer(tokens), None
        try:
            response = self.upstream_codec.read_response(payload)
        except (neutral.TranslationError, KeyError, TypeError, ValueError) as e:
            return None, f"the upstream's answer could not be read: {e}"
        response.model = response.model or self.request.model
        self._settle(response)
        return self.client_codec.write_response(response), None

    def _settle(self, response: neutral.Response) -> None:
        """Before the client sees an answer: its id, the custom tools it calls, and what the
        proxy remembers of it (signatures; the conversation, for clients that continue it)."""
        response.id = response.id or neutral.new_message_id()
        custom = {t.name for t in self.request.tools if t.tool_kind == "custom"}
        for part in response.parts:
            if isinstance(part, neutral.ToolCall) and part.name in custom:
                part.tool_kind = "custom"
        remember_from(response.parts, self.memory.signatures)
        answer_id = getattr(self.client_codec, "answer_id", None)
        if answer_id is not None and self.request.extra.get("store") is not False:
            self.memory.conversations.remember(
                answer_id(response.id),
                answered(self.request, response),
                self.request.extra.get("previous_response_id"),
                self.request.extra.get(CONTINUED_TURNS, 0),
            )

    # ------------------------------------------------------------ streams

    def transcoder(self, on_usage) -> StreamTranslator:
        return StreamTranslator(self, on_usage)


class StreamTranslator:
    """Upstream stream events in, the client's stream bytes out, one event at a time."""

    def __init__(self, translation: Translation, on_usage):
        self.translation = translation
        self.reader: StreamReader = translation.upstream_codec.stream_reader()
        self.writer: StreamWriter = translation.client_codec.stream_writer(translation.request)
        self.reply = Accumulator()
        self.on_usage = on_usage
        self.finished = False
        self.errors: list[str] = []

    def __call__(self, event_type: str | None, data: Any) -> bytes:
        return self._emit(self.reader.feed(event_type, data))

    def close(self) -> bytes:
        return self._emit(self.reader.close()) + self._frame(self.writer.close())

    def fail(self, reason: str) -> bytes:
        """The upstream's stream could not be read: the client's error event, once."""
        return self._emit([neutral.StreamError(502, f"the upstream's stream broke: {reason}")])

    def _emit(self, events: list[neutral.Event]) -> bytes:
        out = []
        for event in events:
            if isinstance(event, neutral.MessageStart):
                event.id = event.id or neutral.new_message_id()
                self.on_usage(event.usage)
            self.reply.feed([event])
            if isinstance(event, neutral.MessageStop):
                self.finished = True
                self.on_usage(event.usage)
                if not self.reply.overflow:
                    self.translation._settle(self.reply.response)
            elif isinstance(event, neutral.StreamError):
                self.errors.append(f"{event.status}: {event.message}")
            out.append(self._frame(self.writer.write(event)))
        return b"".join(out)

    @staticmethod
    def _frame(wire_events) -> bytes:
        return b"".join(streams.sse_event(kind, data) for kind, data in wire_events)


def _read(codec: Codec, payload: Any, model: str, streaming: bool, headers) -> neutral.Request:
    try:
        request = codec.read_request(payload)
    except neutral.TranslationError as e:
        raise Refusal(400, str(e)) from None
    request.model, request.stream = model, streaming
    betas = [b.strip() for b in ",".join(headers.get_all("anthropic-beta")).split(",")]
    if any(betas):
        request.extra["anthropic_beta"] = [b for b in betas if b]
    return request


def estimate_tokens(request: neutral.Request) -> int:
    """About four characters a token, over everything the model would read."""
    chars = sum(len(t.text) for t in request.system)
    for message in request.messages:
        for part in message.parts:
            if isinstance(part, neutral.Text | neutral.Thinking):
                chars += len(part.text)
            elif isinstance(part, neutral.ToolCall):
                chars += len(json.dumps(part.arguments)) + len(part.name)
            elif isinstance(part, neutral.ToolResult):
                chars += sum(len(c.text) for c in part.content if isinstance(c, neutral.Text))
            else:
                chars += 1000  # an image or a document: a rough share
    chars += sum(
        len(json.dumps(t.parameters or {})) + len(t.description or "") for t in request.tools
    )
    return max(1, chars // 4)
