"""Content-Encoding decoding with a cap: the one place the addon decompresses a body.

mitmproxy's own decoding (`Message.get_content`, `.text`, `.json()`) inflates a whole body in
one call, so half a megabyte of gzip becomes half a gigabyte in memory before anyone can look
at its size. Here each decompressor is asked for STEP bytes at a time and the pieces counted,
so a bomb costs about the cap and is refused there (`TooLarge`).

Encodings: everything mitmproxy reads (identity/none, gzip, deflate, deflateraw, br, zstd)
plus `x-gzip`, and a comma list of them (applied in order, so undone right to left). gzip
reads every member (RFC 1952); zstd windows over 8 MB are refused (RFC 9659), which also keeps
the decompressor's own memory small.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

import brotli
from mitmproxy import http

if sys.version_info >= (3, 14):
    from compression import zstd
else:  # mitmproxy depends on the backport before 3.14
    from backports import zstd

DEFAULT_MAX_OUTPUT = 8 * 1024 * 1024  # per Decoder call: far above any honest chunk's growth
STEP = 64 * 1024  # decompressors are asked for this much at a time
ZSTD_WINDOW_LOG_MAX = 23  # 8 MB, RFC 9659 section 3
_GZIP_MAGIC = b"\x1f\x8b"
_ERRORS = (zlib.error, brotli.error, zstd.ZstdError, EOFError)


class TooLarge(Exception):
    """The decoded body would pass the cap; nothing past the cap was produced."""

    def __init__(self, limit: int):
        super().__init__(f"decoded body over {limit} bytes")
        self.limit = limit


# ---------------------------------------------------------------- one encoding each
#
# Each codec's `pieces(data)` yields the output for `data` in pieces of at most about STEP
# bytes, so whoever counts them can stop at a cap holding no more than the cap and a piece.
# `end()` checks the compressed stream was complete.


class _Identity:
    def pieces(self, data: bytes) -> Iterator[bytes]:
        yield data  # already in memory; its length is checked at once

    def end(self) -> None:
        pass


class _Zlib:
    """gzip (every member) or zlib-wrapped deflate; `wbits` says which header to expect."""

    def __init__(self, wbits: int, members: bool):
        self._wbits, self._members = wbits, members
        self._d = zlib.decompressobj(wbits)
        self._fed = False

    def pieces(self, data: bytes) -> Iterator[bytes]:
        self._fed = True
        while True:
            out = self._d.decompress(data, STEP)
            yield out
            data = self._d.unconsumed_tail
            if self._d.eof:
                rest = self._d.unused_data
                if not (self._members and rest[:2] == _GZIP_MAGIC):
                    return  # trailing bytes after the stream are ignored, as zlib does
                self._d, data = zlib.decompressobj(self._wbits), rest  # the next member
            elif not data and len(out) < STEP:
                return  # input used up and no output held back

    def end(self) -> None:
        if self._fed and not self._d.eof:
            raise ValueError("compressed body is truncated")


class _Deflate:
    """`deflate` as sent in practice: zlib-wrapped (RFC 9110) or raw, told apart by the header."""

    def __init__(self) -> None:
        self._head = b""
        self._codec: _Zlib | None = None

    def pieces(self, data: bytes) -> Iterator[bytes]:
        if self._codec is None:
            self._head += data
            if len(self._head) < 2:
                return
            cmf, flg = self._head[0], self._head[1]
            wrapped = cmf & 0x0F == 8 and (cmf << 8 | flg) % 31 == 0
            self._codec = _Zlib(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS, members=False)
            data, self._head = self._head, b""
        yield from self._codec.pieces(data)

    def end(self) -> None:
        if self._codec is not None:
            self._codec.end()
        elif self._head:
            raise ValueError("compressed body is truncated")


class _Brotli:
    def __init__(self) -> None:
        self._d = brotli.Decompressor()
        self._fed = False

    def pieces(self, data: bytes) -> Iterator[bytes]:
        self._fed = True
        yield self._d.process(data, output_buffer_limit=STEP)
        while not self._d.can_accept_more_data():  # output held back
            yield self._d.process(b"", output_buffer_limit=STEP)

    def end(self) -> None:
        if self._fed and not self._d.is_finished():
            raise ValueError("compressed body is truncated")


class _Zstd:
    def __init__(self) -> None:
        self._d = self._new()
        self._fed = False

    @staticmethod
    def _new():
        return zstd.ZstdDecompressor(
            options={zstd.DecompressionParameter.window_log_max: ZSTD_WINDOW_LOG_MAX}
        )

    def pieces(self, data: bytes) -> Iterator[bytes]:
        self._fed = True
        while True:
            yield self._d.decompress(data, STEP)
            data = b""
            if self._d.eof:
                if not self._d.unused_data:
                    return
                self._d, data = self._new(), self._d.unused_data  # the next frame
            elif self._d.needs_input:
                return

    def end(self) -> None:
        if self._fed and not self._d.eof:
            raise ValueError("compressed body is truncated")


class _Codec(Protocol):
    def pieces(self, data: bytes) -> Iterator[bytes]: ...

    def end(self) -> None: ...


_CODECS: dict[str, Callable[[], _Codec]] = {
    "": _Identity,
    "identity": _Identity,
    "none": _Identity,
    "gzip": lambda: _Zlib(32 + zlib.MAX_WBITS, members=True),  # gzip or zlib header, as mitmproxy
    "x-gzip": lambda: _Zlib(32 + zlib.MAX_WBITS, members=True),
    "deflate": _Deflate,
    "deflateraw": lambda: _Zlib(-zlib.MAX_WBITS, members=False),
    "br": _Brotli,
    "zstd": _Zstd,
}


def supported(encoding: str) -> bool:
    """Whether `encoding` (a Content-Encoding value) is one this module can undo."""
    return all(name in _CODECS for name in _names(encoding))


def _names(encoding: str) -> list[str]:
    return [name.strip().lower() for name in encoding.split(",")]


def _is_identity(encoding: str) -> bool:
    return all(_CODECS.get(name) is _Identity for name in _names(encoding))


# ---------------------------------------------------------------- public interface


class Decoder:
    """Undoes a Content-Encoding chunk by chunk, for a body that streams.

    `feed(chunk)` returns what that chunk decodes to and `flush()` the rest at the end; each
    raises `TooLarge` when its own output would pass `max_output` (memory stays bounded per
    call, however long the stream) and `ValueError` for bytes that do not decode. After
    either, the decoder is spent.
    """

    def __init__(self, encoding: str, max_output: int = DEFAULT_MAX_OUTPUT):
        if not supported(encoding):
            raise ValueError(f"unsupported content-encoding: {encoding!r}")
        # applied left to right by the sender, so undone right to left
        self._codecs = [_CODECS[name]() for name in reversed(_names(encoding))]
        self.max_output = max_output

    def feed(self, chunk: bytes) -> bytes:
        return self._checked(chunk, final=False)

    def flush(self) -> bytes:
        return self._checked(b"", final=True)

    def _checked(self, data: bytes, final: bool) -> bytes:
        parts, truncated = self._run(data, self.max_output, final)
        if truncated:
            raise TooLarge(self.max_output)
        return b"".join(parts)

    def _run(
        self, data: bytes, cap: int, final: bool, keep: bool = True
    ) -> tuple[list[bytes], bool]:
        """The output in pieces (none unless `keep`), stopped at the first piece that takes it
        past `cap` bytes (then True: the decoder is spent)."""
        parts, total = [], 0
        try:
            for piece in self._stream(data):
                if keep:
                    parts.append(piece)
                total += len(piece)
                if total > cap:
                    return parts, True
            if final:
                for codec in self._codecs:
                    codec.end()
        except _ERRORS as e:
            raise ValueError(f"body does not decode: {e}") from None
        return parts, False

    def _stream(self, data: bytes) -> Iterator[bytes]:
        """Each codec's pieces feed the next as they come: no stage holds more than a piece."""
        stream: Iterable[bytes] = (data,) if data else ()
        for codec in self._codecs:
            stream = _through(codec, stream)
        return iter(stream)


def _through(codec, pieces: Iterable[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        if piece:
            yield from codec.pieces(piece)


def decode(data: bytes, encoding: str, limit: int) -> bytes:
    """The whole decoded body; `TooLarge` past `limit` bytes, `ValueError` if it does not decode.

    Compressed data is first decoded only to be counted, so a bomb costs a piece of memory
    and the time to inflate `limit` bytes; a body within the limit is then decoded again."""
    if not encoding or _is_identity(encoding):
        if len(data) > limit:
            raise TooLarge(limit)
        return data
    _, truncated = Decoder(encoding, limit)._run(data, limit, final=True, keep=False)
    if truncated:
        raise TooLarge(limit)
    parts, truncated = Decoder(encoding, limit)._run(data, limit, final=True)
    if truncated:
        raise TooLarge(limit)
    return b"".join(parts)


def decode_prefix(data: bytes, encoding: str, limit: int) -> tuple[bytes, bool]:
    """At most the first `limit` decoded bytes, and whether the body goes on past them."""
    parts, truncated = Decoder(encoding, limit)._run(data, limit, final=False)
    return b"".join(parts)[:limit], truncated


def preview(message: http.Message, limit: int, decode: bool = True) -> str | None:
    """A text preview of a message's body for the debug log, decoding at most `limit` bytes.

    None when there is no body (a streamed one is not kept), it does not decode, or it is
    compressed and `decode` is False (for a refused request: not even a prefix is inflated).
    The text is cut at `limit` decoded bytes: a bomb is never inflated to see what it holds.
    """
    raw = message.raw_content
    if raw is None:
        return None
    encoding = message.headers.get("content-encoding", "")
    if not decode and not _is_identity(encoding):
        return None
    try:
        data, _ = decode_prefix(raw, encoding, limit)
    except ValueError:
        return None
    charset = http.infer_content_encoding(message.headers.get("content-type", ""), data)
    try:
        return data.decode(charset, "replace")
    except LookupError:  # a charset Python does not know
        return data.decode("utf-8", "replace")
