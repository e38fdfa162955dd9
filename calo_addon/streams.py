"""Streamed responses: read event by event as the bytes pass, in bounded memory and linear time.

`StreamTap` is the callable mitmproxy's `flow.response.stream` takes. It returns every chunk
unchanged (the client gets the upstream's bytes as they come) and, beside them, undoes the
Content-Encoding (`encoding.Decoder`) and cuts the stream into events (`framing`) for usage
accounting. `Transcoder` is the same reader whose callable returns bytes of its own instead:
each event goes through a `translate(event_type, data)` function, for answering in another
protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .encoding import Decoder, TooLarge
from .framing import (  # noqa: F401 - also imported from here by the addon and the tests
    EVENTSTREAM,
    JSON_ARRAY,
    MAX_PENDING,
    SSE,
    EventSink,
    TooBig,
    reader_for,
    sse_event,
    stream_format,
)


class StreamTap:
    """Passes every chunk unchanged and reads its events beside it.

    Anything that goes wrong beside (an encoding that does not decode, an event over
    `limit`, a callback error) stops the reading, never the stream: `broken` is set and
    `reason` says why.
    """

    def __init__(
        self, fmt: str, content_encoding: str, on_event: EventSink, limit: int = MAX_PENDING
    ):
        self.exceptions: list[str] = []  # exception events inside a 200 event stream
        self.chunks = 0
        self.broken = False
        self.reason: str | None = None
        self.on_chunk: Callable[[], None] | None = None  # e.g. re-arm an idle timeout
        self.limit = limit  # bytes of one event, and of what one chunk decodes to
        self._reader = reader_for(fmt, on_event, self.exceptions, limit)
        self._decoder: Decoder | None = None
        try:
            if content_encoding.strip().lower() not in ("", "identity"):
                self._decoder = Decoder(content_encoding, limit)
        except ValueError as e:
            self._stop(str(e))
        if self._reader is None:
            self._stop(f"no reader for stream format {fmt!r}")

    def __call__(self, chunk: bytes) -> bytes:
        self._count(chunk)
        self._read(chunk)
        return chunk

    def _count(self, chunk: bytes) -> None:
        if chunk:
            self.chunks += 1
            if self.on_chunk is not None:
                self.on_chunk()

    def _read(self, chunk: bytes) -> None:
        """Feed one chunk (b"" at the end) to the decoder and the reader."""
        reader = self._reader
        if self.broken or reader is None:
            return
        try:
            if chunk:
                data = self._decoder.feed(chunk) if self._decoder else chunk
                if data:
                    reader.feed(data)
            else:
                if self._decoder and (tail := self._decoder.flush()):
                    reader.feed(tail)
                reader.end()
        except (TooBig, TooLarge):
            self._stop(f"an event or a chunk over {self.limit} bytes")
        except Exception as e:  # noqa: BLE001 - reading beside must never hurt the stream
            self._stop(f"{type(e).__name__}: {e}"[:200])

    def _stop(self, reason: str) -> None:
        self.broken, self.reason = True, reason


class Transcoder(StreamTap):
    """A StreamTap whose callable returns `translate(event_type, data)` for each event read,
    instead of the upstream's bytes: always identity-encoded, whatever the upstream's
    Content-Encoding (the caller drops that header).

    `finish()` may add closing bytes at the end of a stream read whole; when the upstream's
    stream cannot be read, `fail(reason)` gives the client its error event, once, and nothing
    more is sent.
    """

    def __init__(
        self,
        fmt: str,
        content_encoding: str,
        translate: Callable[[str | None, Any], bytes],
        finish: Callable[[], bytes] | None = None,
        fail: Callable[[str], bytes] | None = None,
        limit: int = MAX_PENDING,
    ):
        self._out: list[bytes] = []
        self._translate, self._finish, self._fail = translate, finish, fail
        super().__init__(fmt, content_encoding, self._translated, limit)
        self._failed = False

    def _translated(self, event_type: str | None, data: Any) -> None:
        self._out.append(self._translate(event_type, data))

    def __call__(self, chunk: bytes) -> bytes:
        self._count(chunk)
        self._read(chunk)
        if not chunk and not self.broken and self._finish is not None:
            try:
                self._out.append(self._finish())
            except Exception as e:  # noqa: BLE001 - the client gets an error event instead
                self._stop(f"{type(e).__name__}: {e}"[:200])
        if self.broken and not self._failed:
            self._failed = True
            if self._fail is not None:
                self._out.append(self._fail(self.reason or "stream unreadable"))
        out = b"".join(self._out)
        self._out.clear()
        return out
