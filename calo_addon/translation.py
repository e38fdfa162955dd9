"""The pipeline's translate step: a call whose client and upstream speak different APIs.

The client's request is read into the neutral form by the client API's codec and written out
by the upstream's; the answer comes back the other way, whole or event by event (never
buffered to the end). Thought signatures are remembered from answers and restored in requests
(translate/signatures.py). Errors keep the upstream's status and text, in the client's shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import streams
from .dialects import Dialect, Operation, Refusal
from .translate import neutral
from .translate.accumulate import Accumulator
from .translate.base import Codec, StreamReader, StreamWriter
from .translate.signatures import SignatureMemory, remember_from, restore


@dataclass
class Translation:
    client: Dialect
    wire: Dialect
    client_codec: Codec
    upstream_codec: Codec
    request: neutral.Request
    path: str
    signatures: SignatureMemory
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
        signatures: SignatureMemory,
    ) -> tuple[Translation, dict[str, Any]]:
        """The translation of this call, and the body to send upstream."""
        client_codec = op.dialect.codec(op)
        if client_codec is None or not op.conversation:
            raise Refusal(
                400,
                f"{op.dialect.name} {op.name} cannot be sent to an upstream that speaks "
                f"{wire.name}",
            )
        upstream_codec, path = wire.upstream_for(op.dialect, model, streaming)
        try:
            request = client_codec.read_request(payload)
            request.model, request.stream = model, streaming
            restore(request, signatures)
            body = upstream_codec.write_request(request)
        except neutral.TranslationError as e:
            raise Refusal(400, str(e)) from None
        translation = cls(
            op.dialect,
            wire,
            client_codec,
            upstream_codec,
            request,
            path,
            signatures,
            list(request.dropped),
        )
        return translation, body

    # ------------------------------------------------------------ whole answers

    def answer(self, status: int, payload: Any) -> tuple[dict[str, Any] | None, str | None]:
        """(the client's answer body, or None for an error; the upstream's error text)."""
        if status >= 400:
            return None, self.wire.error_message(payload) or f"upstream answered {status}"
        try:
            response = self.upstream_codec.read_response(payload)
        except (neutral.TranslationError, KeyError, TypeError, ValueError) as e:
            return None, f"the upstream's answer could not be read: {e}"
        response.model = response.model or self.request.model
        remember_from(response.parts, self.signatures)
        return self.client_codec.write_response(response), None

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

    def _emit(self, events: list[neutral.Event]) -> bytes:
        self.reply.feed(events)
        out = []
        for event in events:
            if isinstance(event, neutral.MessageStop):
                self.finished = True
                self.on_usage(event.usage)
                remember_from(self.reply.response.parts, self.translation.signatures)
            elif isinstance(event, neutral.MessageStart):
                self.on_usage(event.usage)
            elif isinstance(event, neutral.StreamError):
                self.errors.append(f"{event.status}: {event.message}")
            out.append(self._frame(self.writer.write(event)))
        return b"".join(out)

    @staticmethod
    def _frame(wire_events) -> bytes:
        return b"".join(streams.sse_event(kind, data) for kind, data in wire_events)
