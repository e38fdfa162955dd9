"""Event framing of streamed bodies: SSE, a JSON array (Gemini), the AWS event stream.

Readers cut bytes into events, `(event_type, data)`: event_type is the SSE `event:` field,
the AWS event stream's `:event-type` (`:exception-type` for exceptions), or None (JSON-array
events); data is the parsed JSON, or the text when it is not JSON (e.g. "[DONE]"). Each reader
scans only the bytes it has not scanned before and holds at most one unfinished event (`limit`
bytes), so an endless event or a million events cost memory for one and time for each.
`sse_event` writes an SSE event: the one place SSE is framed.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable
from typing import Any

import orjson
from botocore.eventstream import EventStreamBuffer

SSE = "sse"
JSON_ARRAY = "json-array"
EVENTSTREAM = "eventstream"  # AWS binary event stream (Bedrock)
MAX_PENDING = 8 * 1024 * 1024  # default limit: a larger event is not read (the bytes still pass)

EventSink = Callable[[str | None, Any], None]

# what the readers scan for; module level so tests can count the bytes scanned
LINE_END = re.compile(rb"\r\n|\r|\n")
JSON_STRUCTURE = re.compile(rb'["{}\[\]]')
JSON_STRING_END = re.compile(rb'["\\]')
_NEWLINE = re.compile(r"\r\n|\r|\n")


class TooBig(Exception):
    """One event holds more than the reader's limit."""


def stream_format(content_type: str) -> str | None:
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == "text/event-stream":
        return SSE
    if ctype == "application/json":
        return JSON_ARRAY
    if ctype == "application/vnd.amazon.eventstream":
        return EVENTSTREAM
    return None


def sse_event(event_type: str | None, data: Any) -> bytes:
    """One server-sent event as written on the wire: the one place SSE is framed.

    JSON goes out compact via orjson; a str (such as "[DONE]") is sent as it is, one `data:`
    line per line of it. The `event:` line appears only when event_type is given.
    """
    head = b""
    if event_type is not None:
        if _NEWLINE.search(event_type):
            raise ValueError("an SSE event type cannot hold a line break")
        head = b"event: " + event_type.encode() + b"\n"
    if isinstance(data, str):
        lines = [line.encode() for line in _NEWLINE.split(data)]
    else:
        lines = [_dumps(data)]
    return head + b"".join(b"data: " + line + b"\n" for line in lines) + b"\n"


def _dumps(data: Any) -> bytes:
    try:
        return orjson.dumps(data)
    except TypeError:  # what only `json` can write (integers past 64 bits)
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def parse(raw: bytes) -> Any:
    """JSON if it is JSON (orjson, then `json` for NaN and big integers), else the text."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


# ---------------------------------------------------------------- readers, one per format


class SseReader:
    """Server-sent events (WHATWG HTML, "event stream interpretation"), line by line.

    Lines end in CRLF, LF or CR; a blank line dispatches the event. Held: the unfinished line
    and the current event's data lines, never the text already read.
    """

    def __init__(self, emit: EventSink, limit: int = MAX_PENDING):
        self._emit, self._limit = emit, limit
        self._line = bytearray()
        self._data: list[bytes] = []
        self._size = 0
        self._type: str | None = None
        self._after_cr = False  # the last chunk ended in CR: a leading LF completes it

    def feed(self, chunk: bytes) -> None:
        pos = 1 if self._after_cr and chunk[:1] == b"\n" else 0
        self._after_cr = chunk[-1:] == b"\r"
        for end in LINE_END.finditer(chunk, pos):
            if self._line:
                self._line += chunk[pos : end.start()]
                line = bytes(self._line)
                self._line.clear()
            else:
                line = chunk[pos : end.start()]
            self._on_line(line)
            pos = end.end()
        self._line += chunk[pos:]
        if self._size + len(self._line) > self._limit:
            raise TooBig

    def end(self) -> None:
        """A last event without its blank line is still read (usage often comes last)."""
        if self._line:
            self._on_line(bytes(self._line))
            self._line.clear()
        self._dispatch()

    def _on_line(self, line: bytes) -> None:
        if not line:
            self._dispatch()
            return
        if line[:1] == b":":
            return  # a comment (keep-alive pings)
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
            self._size += len(value) + 1
        elif name == b"event":
            self._type = value.decode("utf-8", "replace")

    def _dispatch(self) -> None:
        raw = b"\n".join(self._data)
        event_type = self._type
        self._data, self._size, self._type = [], 0, None
        if raw:
            self._emit(event_type, parse(raw))


class JsonArrayReader:
    """The elements of a JSON array as it arrives (Gemini's stream without alt=sse).

    Tracks bracket depth and strings over the new bytes only; a complete element is parsed
    once. A bare object (no enclosing array) is read as one event.
    """

    def __init__(self, emit: EventSink, limit: int = MAX_PENDING):
        self._emit, self._limit = emit, limit
        self._buf = bytearray()
        self._pos = 0  # scanned up to here
        self._start: int | None = None  # where the element in progress begins
        self._depth = 0
        self._base: int | None = None  # 1 inside the outer array, 0 for bare values
        self._in_string = False

    def feed(self, chunk: bytes) -> None:
        self._buf += chunk
        self._scan()
        done = min(self._pos if self._start is None else self._start, len(self._buf))
        if done:
            del self._buf[:done]
            self._pos -= done
            if self._start is not None:
                self._start -= done
        if len(self._buf) > self._limit:
            raise TooBig

    def end(self) -> None:
        pass  # an unfinished element carries nothing we can read

    def _scan(self) -> None:
        buf, pos = self._buf, self._pos
        while pos < len(buf):
            if self._in_string:
                found = JSON_STRING_END.search(buf, pos)
                if found is None:
                    pos = len(buf)
                elif found.group() == b"\\":
                    pos = found.end() + 1  # skip the escaped byte, even in the next chunk
                else:
                    self._in_string, pos = False, found.end()
                continue
            found = JSON_STRUCTURE.search(buf, pos)
            if found is None:
                pos = len(buf)
                continue
            pos = found.end()
            self._structure(buf[found.start()], found.start(), pos)
        self._pos = pos

    def _structure(self, char: int, at: int, after: int) -> None:
        if char == 0x22:  # '"'
            self._in_string = True
        elif char in b"{[":
            if self._base is None:
                self._base = 1 if char == 0x5B else 0
                if self._base:
                    self._depth = 1
                    return
            if self._depth == self._base:
                self._start = at
            self._depth += 1
        else:
            self._depth -= 1
            if self._depth == self._base and self._start is not None:
                self._emit(None, parse(bytes(self._buf[self._start : after])))
                self._start = None
            elif self._base is None or self._depth < self._base:  # the array closed
                self._depth, self._base = 0, None


class EventStreamReader:
    """AWS event stream frames (Bedrock): framed here by their length, parsed by botocore.

    botocore's buffer copies its whole buffer on every chunk; fed one complete frame at a time
    it costs one copy per frame.
    """

    PRELUDE = 12  # total length, headers length, prelude CRC

    def __init__(self, emit: EventSink, exceptions: list[str], limit: int = MAX_PENDING):
        self._emit, self._limit = emit, limit
        self._exceptions = exceptions
        self._buf = bytearray()
        self._frames = EventStreamBuffer()

    def feed(self, chunk: bytes) -> None:
        self._buf += chunk
        while len(self._buf) >= self.PRELUDE:
            total = int.from_bytes(self._buf[:4], "big")
            if zlib.crc32(self._buf[:8]) != int.from_bytes(self._buf[8:12], "big"):
                raise ValueError("event stream prelude checksum mismatch")
            if total > self._limit:
                raise TooBig
            if len(self._buf) < total:
                return
            self._frames.add_data(bytes(self._buf[:total]))
            del self._buf[:total]
            for message in self._frames:
                self._on_message(message.headers, message.payload)

    def end(self) -> None:
        pass

    def _on_message(self, headers: dict, payload: bytes) -> None:
        kind = headers.get(":message-type")
        if kind == "event":
            self._emit(headers.get(":event-type"), parse(payload))
        elif kind in ("exception", "error"):
            name = headers.get(":exception-type") or headers.get(":error-code")
            text = payload[:500].decode(errors="replace") or headers.get(":error-message", "")
            self._exceptions.append(f"{name}: {text}")
            self._emit(name, parse(payload) if payload else text)


def reader_for(
    fmt: str, emit: EventSink, exceptions: list[str], limit: int = MAX_PENDING
) -> SseReader | JsonArrayReader | EventStreamReader | None:
    """The reader of a stream format (None for one we do not read); `exceptions` collects
    the AWS event stream's exception messages."""
    if fmt == SSE:
        return SseReader(emit, limit)
    if fmt == JSON_ARRAY:
        return JsonArrayReader(emit, limit)
    if fmt == EVENTSTREAM:
        return EventStreamReader(emit, exceptions, limit)
    return None
