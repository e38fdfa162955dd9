"""Stream tap units: bytes pass unchanged, events are read beside them whatever the chunking."""

from __future__ import annotations

import gzip
import itertools
import json

from hypothesis import given
from hypothesis import strategies as st

from calo_addon.streams import JSON_ARRAY, SSE, StreamTap, stream_format

EVENTS = [{"n": i, "text": f"chunk {i} ünïcødé ✓"} for i in range(5)]
SSE_BYTES = "".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in EVENTS).encode()


def run(fmt: str, chunks: list[bytes], encoding: str = "") -> tuple[list, list[bytes], StreamTap]:
    """Feed `chunks` then the end-of-stream b""; returns (events, bytes passed, tap)."""
    events: list = []
    tap = StreamTap(fmt, encoding, events.append)
    passed = [tap(chunk) for chunk in [*chunks, b""]]
    return events, passed, tap


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def test_every_chunk_is_returned_unchanged():
    chunks = [b'data: {"a"', b": 1}\n\n", b"event: x\n", b"\n"]
    events, passed, _ = run(SSE, chunks)
    assert passed == [*chunks, b""]
    assert events == [{"a": 1}]


def test_sse_in_one_chunk_with_done():
    events, _, _ = run(SSE, [SSE_BYTES + b"data: [DONE]\n\n"])
    assert events == EVENTS


@given(st.lists(st.integers(min_value=0), max_size=12))
def test_sse_split_anywhere_emits_each_event_once(cuts):
    chunks = split(SSE_BYTES + b"data: [DONE]\n\n", cuts)
    events, passed, _ = run(SSE, chunks)
    assert events == EVENTS
    assert b"".join(passed) == SSE_BYTES + b"data: [DONE]\n\n"


@given(st.lists(st.integers(min_value=0), max_size=8))
def test_sse_with_crlf_split_anywhere(cuts):
    data = SSE_BYTES.replace(b"\n", b"\r\n")
    events, _, _ = run(SSE, split(data, cuts))
    assert events == EVENTS


def test_sse_ignores_comments_and_other_fields_and_joins_data_lines():
    data = b': ping\n\nevent: message\nid: 7\ndata: {"a":\ndata:  1}\n\nretry: 10\n\n'
    events, _, _ = run(SSE, [data])
    assert events == [{"a": 1}]


def test_sse_last_event_without_blank_line_is_read_at_the_end():
    events, _, _ = run(SSE, [b'data: {"a": 1}\n\ndata: {"b": 2}'])
    assert events == [{"a": 1}, {"b": 2}]


def test_multibyte_character_split_across_chunks():
    data = 'data: {"t": "€😀"}\n\n'.encode()
    cut = data.index("😀".encode()) + 2  # inside the 4-byte emoji
    events, _, _ = run(SSE, [data[:cut], data[cut:]])
    assert events == [{"t": "€😀"}]


def test_invalid_utf8_in_one_event_does_not_stop_the_reading():
    """A stray non-UTF-8 byte (not a split character) must not hold every later byte back."""
    chunks = [b'data: {"a": 1}\n\n', b"data: \xff\n\n", b'data: {"b": 2}\n\n']
    events, passed, _ = run(SSE, chunks)
    assert passed == [*chunks, b""]
    assert events == [{"a": 1}, {"b": 2}]


GEMINI_ARRAY = (
    "[" + ",\r\n".join(json.dumps(e, ensure_ascii=False) for e in EVENTS) + "]"
).encode()


@given(st.lists(st.integers(min_value=0), max_size=12))
def test_gemini_json_array_streamed_in_pieces(cuts):
    events, passed, _ = run(JSON_ARRAY, split(GEMINI_ARRAY, cuts))
    assert events == EVENTS
    assert b"".join(passed) == GEMINI_ARRAY


@given(st.lists(st.integers(min_value=0), max_size=10))
def test_gzip_stream_is_decoded_beside_and_passed_compressed(cuts):
    compressed = gzip.compress(SSE_BYTES)
    chunks = split(compressed, cuts)
    events, passed, _ = run(SSE, chunks, "gzip")
    assert events == EVENTS
    assert b"".join(passed) == compressed


def test_unknown_encoding_passes_bytes_and_reads_no_events():
    chunks = [b"\x1b\x00compressed", b"brotli bytes"]
    events, passed, tap = run(SSE, chunks, "br")
    assert events == [] and tap.broken
    assert passed == [*chunks, b""]


def test_stream_format():
    assert stream_format("text/event-stream; charset=utf-8") == SSE
    assert stream_format("application/json") == JSON_ARRAY
    assert stream_format("application/vnd.amazon.eventstream") == "eventstream"
    assert stream_format("text/html") is None


def test_chunks_are_counted_and_on_chunk_called():
    calls = []
    tap = StreamTap(SSE, "", lambda e: None)
    tap.on_chunk = lambda: calls.append(1)
    for chunk in (b"a", b"b", b""):
        tap(chunk)
    assert tap.chunks == 2 and len(calls) == 2
