"""Streamed responses pass to the client chunk by chunk; a tap beside them reads events.

`StreamTap` is the callable mitmproxy's `flow.response.stream` takes: it returns every chunk
unchanged (so the client gets the upstream's bytes as they come) and feeds a decoder that
turns them into JSON events for usage accounting. It holds at most one unfinished event.
"""

from __future__ import annotations

import codecs
import json
import zlib
from collections.abc import Callable
from typing import Any

from botocore.eventstream import EventStreamBuffer

SSE = "sse"
JSON_ARRAY = "json-array"
EVENTSTREAM = "eventstream"  # AWS binary event stream (Bedrock), framed by botocore
MAX_PENDING = 8 * 1024 * 1024  # an event larger than this is not parsed (the bytes still pass)


def stream_format(content_type: str) -> str | None:
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == "text/event-stream":
        return SSE
    if ctype == "application/json":
        return JSON_ARRAY
    if ctype == "application/vnd.amazon.eventstream":
        return EVENTSTREAM
    return None


def _decompressor(encoding: str):
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    raise ValueError(encoding)


class StreamTap:
    def __init__(self, fmt: str, content_encoding: str, on_event: Callable[[Any], None]):
        self._on_event = on_event
        self._parse = {SSE: self._sse, JSON_ARRAY: self._json_array}.get(fmt)
        self._frames = EventStreamBuffer() if fmt == EVENTSTREAM else None
        self.exceptions: list[str] = []  # exception events inside a 200 event stream
        self._buffer = ""
        # bytes -> text across chunk boundaries; a stray invalid byte becomes U+FFFD, not a stall
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.chunks = 0
        self.broken = False
        self.on_chunk: Callable[[], None] | None = None  # e.g. re-arm an idle timeout
        try:
            self._inflate = _decompressor(content_encoding)
        except ValueError:
            self.broken = True  # an encoding we cannot read beside: pass bytes, skip events

    def __call__(self, chunk: bytes) -> bytes:
        if chunk:
            self.chunks += 1
            if self.on_chunk is not None:
                self.on_chunk()
        if not self.broken:
            try:
                self._feed(chunk)
            except Exception:  # noqa: BLE001 - the tap must never hurt the stream
                self.broken = True
        return chunk

    def _feed(self, chunk: bytes) -> None:
        if self._frames is not None:
            self._feed_frames(chunk)
            return
        data = self._inflate.decompress(chunk) if self._inflate and chunk else chunk
        self._buffer += self._text.decode(data, final=not chunk)
        if len(self._buffer) > MAX_PENDING:
            self.broken = True
            return
        self._parse(final=not chunk)

    def _feed_frames(self, chunk: bytes) -> None:
        self._frames.add_data(chunk)
        for message in self._frames:
            kind = message.headers.get(":message-type")
            if kind == "event":
                try:
                    self._on_event(json.loads(message.payload))
                except ValueError:
                    pass
            elif kind in ("exception", "error"):
                name = message.headers.get(":exception-type") or message.headers.get(":error-code")
                self.exceptions.append(f"{name}: {message.payload[:500].decode(errors='replace')}")

    def _emit(self, text: str) -> None:
        try:
            event = json.loads(text)
        except ValueError:
            return
        self._on_event(event)

    def _sse(self, final: bool) -> None:
        buffer = self._buffer.replace("\r\n", "\n")
        *events, rest = buffer.split("\n\n")
        if final and rest.strip():
            events.append(rest)
            rest = ""
        self._buffer = rest
        for event in events:
            data = "\n".join(
                line[5:].lstrip(" ") for line in event.split("\n") if line.startswith("data:")
            )
            if data and data != "[DONE]":
                self._emit(data)

    def _json_array(self, final: bool) -> None:
        decoder = json.JSONDecoder()
        buffer, pos = self._buffer, 0
        while True:
            while pos < len(buffer) and buffer[pos] in " \t\r\n,[]":
                pos += 1
            if pos >= len(buffer):
                break
            try:
                event, end = decoder.raw_decode(buffer, pos)
            except ValueError:
                break  # incomplete: wait for more bytes
            self._on_event(event)
            pos = end
        self._buffer = buffer[pos:]
