"""Stream tap units: bytes pass unchanged, events are read beside them through every content
encoding with bounded memory, and a Transcoder replaces the bytes with its translation."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import brotli
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from calo_addon.encoding import zstd
from calo_addon.streams import (
    EVENTSTREAM,
    JSON_ARRAY,
    MAX_PENDING,
    SSE,
    StreamTap,
    Transcoder,
    sse_event,
    stream_format,
)
from tests.fake_bedrock import encode_event
from tests.test_framing import EVENTS, FRAMES, GEMINI_ARRAY, SSE_BYTES, TYPED, pieces, run, split

# ---------------------------------------------------------------- passthrough


@given(
    st.lists(st.binary(max_size=40), max_size=8), st.sampled_from([SSE, JSON_ARRAY, EVENTSTREAM])
)
def test_every_chunk_is_returned_unchanged_whatever_it_holds(chunks, fmt):
    _, passed, _ = run(fmt, chunks)
    assert passed == [*chunks, b""]


def test_chunks_are_counted_and_on_chunk_called():
    calls = []
    tap = StreamTap(SSE, "", lambda kind, data: None)
    tap.on_chunk = lambda: calls.append(1)
    for chunk in (b"a", b"b", b""):
        tap(chunk)
    assert tap.chunks == 2 and len(calls) == 2


def test_stream_format():
    assert stream_format("text/event-stream; charset=utf-8") == SSE
    assert stream_format("application/json") == JSON_ARRAY
    assert stream_format("application/vnd.amazon.eventstream") == EVENTSTREAM
    assert stream_format("text/html") is None


@pytest.mark.parametrize("fmt", [SSE, JSON_ARRAY, EVENTSTREAM])
def test_a_caller_may_set_a_smaller_limit(fmt):
    event = {
        SSE: sse_event(None, {"t": "x" * 2000}),
        JSON_ARRAY: b'[{"t": "' + b"x" * 2000 + b'"}]',
        EVENTSTREAM: encode_event({"t": "x" * 2000}, "chunk"),
    }[fmt]
    events: list = []
    tap = StreamTap(fmt, "", lambda kind, data: events.append(data), limit=1000)
    assert [tap(c) for c in (event[:1500], event[1500:], b"")] == [event[:1500], event[1500:], b""]
    assert tap.broken and "1000" in tap.reason and events == []
    gzipped = StreamTap(SSE, "gzip", lambda kind, data: None, limit=1000)
    gzipped(gzip.compress(b"data: " + b"x" * 5000))
    assert gzipped.broken


def test_the_tap_holds_at_most_one_unfinished_event():
    """40,000 events through the tap: its own memory stays that of one event."""
    data = b"".join(sse_event(None, {"i": i, "text": "y" * 100}) for i in range(2000))
    chunks = pieces(data, 4096)
    tap = StreamTap(SSE, "", lambda kind, data: None)
    tracemalloc.start()
    try:
        for _ in range(20):
            for chunk in chunks:
                tap(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 and not tap.broken


# ---------------------------------------------------------------- content encodings

COMPRESSORS = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": lambda d: brotli.compress(d, quality=5),
    "zstd": zstd.compress,
    "gzip, br": lambda d: brotli.compress(gzip.compress(d)),
}


@pytest.mark.parametrize("encoding", list(COMPRESSORS))
def test_compressed_stream_is_decoded_beside_and_passed_compressed(encoding):
    compressed = COMPRESSORS[encoding](SSE_BYTES)
    for size in (1, 7, 64, len(compressed)):
        events, passed, tap = run(SSE, pieces(compressed, size), encoding)
        assert events == TYPED and not tap.broken, (encoding, size)
        assert b"".join(passed) == compressed


@given(st.lists(st.integers(min_value=0), max_size=10))
def test_gzip_stream_split_anywhere(cuts):
    compressed = gzip.compress(SSE_BYTES)
    events, passed, _ = run(SSE, split(compressed, cuts), "gzip")
    assert events == TYPED
    assert b"".join(passed) == compressed


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
def test_a_compressed_bomb_breaks_the_tap_within_bounded_memory(encoding):
    compressed = COMPRESSORS[encoding](b"data: " + b"0" * (64 << 20))
    tracemalloc.start()
    try:
        _, passed, tap = run(SSE, pieces(compressed, 16384), encoding)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert tap.broken and b"".join(passed) == compressed
    assert peak < 3 * MAX_PENDING


def test_unknown_encoding_passes_bytes_and_reads_no_events():
    chunks = [b"\x1b\x00compressed", b"lzma bytes"]
    events, passed, tap = run(SSE, chunks, "xz")
    assert events == [] and tap.broken and "xz" in tap.reason
    assert passed == [*chunks, b""]


def test_undecodable_gzip_breaks_the_tap_only():
    chunks = [b"\x1f\x8b not gzip at all"]
    _, passed, tap = run(SSE, chunks, "gzip")
    assert tap.broken and passed == [*chunks, b""]


def test_a_callback_error_breaks_the_tap_only():
    def boom(kind, data):
        raise KeyError("bug")

    tap = StreamTap(SSE, "", boom)
    assert tap(b'data: {"a": 1}\n\n') == b'data: {"a": 1}\n\n'
    assert tap.broken and "KeyError" in tap.reason


# ---------------------------------------------------------------- translating


def upper_text(kind, data):
    return sse_event(kind, {"TEXT": data["text"].upper()}) if isinstance(data, dict) else b""


def test_transcoder_returns_translated_bytes_whatever_the_chunking():
    expected = b"".join(upper_text(None, e) for e in EVENTS)
    for size in (1, 5, len(SSE_BYTES)):
        tap = Transcoder(SSE, "", upper_text)
        out = [tap(chunk) for chunk in [*pieces(SSE_BYTES, size), b""]]
        assert b"".join(out) == expected


def test_transcoder_output_is_identity_even_when_the_upstream_compresses():
    tap = Transcoder(JSON_ARRAY, "gzip", upper_text, finish=lambda: b"data: [DONE]\n\n")
    out = b"".join(tap(c) for c in [*pieces(gzip.compress(GEMINI_ARRAY), 10), b""])
    assert out == b"".join(upper_text(None, e) for e in EVENTS) + b"data: [DONE]\n\n"


def test_transcoder_sends_one_error_event_when_the_upstream_cannot_be_read():
    tap = Transcoder(SSE, "xz", upper_text, fail=lambda reason: sse_event("error", reason))
    assert tap(b"lzma bytes") == sse_event("error", "unsupported content-encoding: 'xz'")
    assert tap(b"more") == b"" and tap(b"") == b""


def test_transcoder_error_event_follows_what_was_already_translated():
    tap = Transcoder(
        SSE, "", upper_text, fail=lambda reason: sse_event("error", {"message": reason})
    )
    out = tap(b'data: {"text": "a"}\n\ndata: {"text": 1}\n\n')  # the second breaks translate
    assert out.startswith(upper_text(None, {"text": "a"}))
    assert b"event: error" in out and tap.broken
    assert tap(b'data: {"text": "b"}\n\n') == b"" and tap(b"") == b""


def test_transcoder_gets_event_stream_types():
    tap = Transcoder(EVENTSTREAM, "", lambda kind, data: orjson.dumps([kind, data]))
    out = b"".join(tap(c) for c in [*pieces(b"".join(FRAMES), 3), b""])
    assert out == b"".join(
        orjson.dumps(pair)
        for pair in [
            ["chunk", {"bytes": "eyJhIjogMX0="}],
            ["metadata", {"usage": {"inputTokens": 3}}],
            ["throttlingException", {"message": "slow down"}],
        ]
    )
