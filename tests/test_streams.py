"""Stream tap units: bytes pass unchanged, events are read beside them whatever the chunking,
in linear time and with at most one unfinished event held; translation replaces the bytes."""

from __future__ import annotations

import gzip
import itertools
import json
import tracemalloc
import zlib

import brotli
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from calo_addon import streams
from calo_addon.encoding import zstd
from calo_addon.streams import (
    EVENTSTREAM,
    JSON_ARRAY,
    MAX_PENDING,
    SSE,
    SseReader,
    StreamTap,
    Transcoder,
    sse_event,
    stream_format,
)
from tests.fake_bedrock import encode_event

EVENTS = [{"n": i, "text": f"chunk {i} ünïcødé ✓"} for i in range(5)]
SSE_BYTES = "".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in EVENTS).encode()
TYPED = [(None, e) for e in EVENTS]


def run(fmt: str, chunks: list[bytes], encoding: str = "") -> tuple[list, list[bytes], StreamTap]:
    """Feed `chunks` then the end-of-stream b""; returns ((type, data) events, bytes passed, tap)."""
    events: list = []
    tap = StreamTap(fmt, encoding, lambda kind, data: events.append((kind, data)))
    passed = [tap(chunk) for chunk in [*chunks, b""]]
    return events, passed, tap


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


class CountingPattern:
    """Stands in for a compiled pattern and counts the bytes each search really walks over."""

    def __init__(self, pattern):
        self.pattern = pattern
        self.scanned = 0

    def search(self, string, pos=0):
        found = self.pattern.search(string, pos)
        self.scanned += (found.end() if found else len(string)) - pos
        return found

    def finditer(self, string, pos=0):
        self.scanned += len(string) - pos
        return self.pattern.finditer(string, pos)


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


# ---------------------------------------------------------------- SSE


def test_sse_events_carry_their_type_and_done_as_text():
    data = b'event: message_start\ndata: {"a": 1}\n\ndata: {"b": 2}\n\ndata: [DONE]\n\n'
    events, _, _ = run(SSE, [data])
    assert events == [("message_start", {"a": 1}), (None, {"b": 2}), (None, "[DONE]")]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_sse_split_at_every_byte_boundary(newline):
    data = (SSE_BYTES + b"event: end\ndata: [DONE]\n\n").replace(b"\n", newline)
    expected = [*TYPED, ("end", "[DONE]")]
    for cut in range(len(data) + 1):
        events, passed, _ = run(SSE, [data[:cut], data[cut:]])
        assert events == expected, cut
        assert b"".join(passed) == data
    events, _, _ = run(SSE, pieces(data, 1))
    assert events == expected


@given(st.lists(st.integers(min_value=0), max_size=12), st.sampled_from([b"\n", b"\r\n", b"\r"]))
def test_sse_split_anywhere_emits_each_event_once(cuts, newline):
    data = SSE_BYTES.replace(b"\n", newline)
    events, _, _ = run(SSE, split(data, cuts))
    assert events == TYPED


def test_sse_comments_ids_retries_and_multiline_data():
    data = b': ping\n\nevent: message\nid: 7\ndata: {"a":\ndata:  1}\n\nretry: 10\n\n'
    events, _, _ = run(SSE, [data])
    assert events == [("message", {"a": 1})]


def test_sse_multiline_text_keeps_its_lines_and_one_leading_space_is_removed():
    events, _, _ = run(SSE, [b"data:  two spaces\ndata\ndata:x\n\n"])
    assert events == [(None, " two spaces\n\nx")]


def test_sse_event_without_data_is_not_dispatched_and_its_type_does_not_leak():
    events, _, _ = run(SSE, [b'event: ping\n\ndata: {"a": 1}\n\n'])
    assert events == [(None, {"a": 1})]


def test_sse_last_event_without_blank_line_is_read_at_the_end():
    events, _, _ = run(SSE, [b'data: {"a": 1}\n\ndata: {"b": 2}'])
    assert events == [(None, {"a": 1}), (None, {"b": 2})]


def test_multibyte_character_split_across_chunks():
    data = 'data: {"t": "€😀"}\n\n'.encode()
    cut = data.index("😀".encode()) + 2  # inside the 4-byte emoji
    events, _, _ = run(SSE, [data[:cut], data[cut:]])
    assert events == [(None, {"t": "€😀"})]


def test_invalid_utf8_in_one_event_does_not_stop_the_reading():
    """A stray non-UTF-8 byte is that event's problem (it reads as text), not the stream's."""
    chunks = [b'data: {"a": 1}\n\n', b"data: \xff\n\n", b'data: {"b": 2}\n\n']
    events, passed, tap = run(SSE, chunks)
    assert passed == [*chunks, b""]
    assert events == [(None, {"a": 1}), (None, "\ufffd"), (None, {"b": 2})]
    assert not tap.broken


def test_json_that_only_the_standard_library_reads():
    events, _, _ = run(SSE, [b'data: {"n": NaN, "big": 123456789012345678901234567890}\n\n'])
    ((_, data),) = events
    assert data["big"] == 123456789012345678901234567890 and data["n"] != data["n"]


def test_unterminated_8mb_sse_event_costs_linear_work(monkeypatch):
    """The issue's case: one 8 MB event that never ends, in 4 KB chunks. Every byte is scanned
    once (a rescanning parser walks about 8 GB here)."""
    counter = CountingPattern(streams.LINE_END)
    monkeypatch.setattr(streams, "LINE_END", counter)
    body = b"data: " + b"x" * (8_000_000 - 6)
    events, passed, tap = run(SSE, pieces(body, 4096))
    assert counter.scanned <= len(body)
    assert not tap.broken and events == [(None, "x" * (8_000_000 - 6))]  # read at the end
    assert b"".join(passed) == body


def test_many_data_lines_without_a_blank_line_cost_linear_work(monkeypatch):
    counter = CountingPattern(streams.LINE_END)
    monkeypatch.setattr(streams, "LINE_END", counter)
    body = b"data: 0123456789\n" * 200_000  # 3.4 MB, one event
    run(SSE, pieces(body, 4096))
    assert counter.scanned <= len(body)


def test_an_event_over_max_pending_breaks_the_tap_not_the_stream():
    chunks = [b"data: " + b"x" * 4096] * (MAX_PENDING // 4096 + 2) + [b'\n\ndata: {"a": 1}\n\n']
    events, passed, tap = run(SSE, chunks)
    assert tap.broken and "over" in tap.reason
    assert passed == [*chunks, b""] and events == []


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


# ---------------------------------------------------------------- JSON array (Gemini)

GEMINI_ARRAY = (
    "[" + ",\r\n".join(json.dumps(e, ensure_ascii=False) for e in EVENTS) + "]"
).encode()


@given(st.lists(st.integers(min_value=0), max_size=12))
def test_gemini_json_array_streamed_in_pieces(cuts):
    events, passed, _ = run(JSON_ARRAY, split(GEMINI_ARRAY, cuts))
    assert events == TYPED
    assert b"".join(passed) == GEMINI_ARRAY


def test_json_array_split_at_every_byte_boundary_with_tricky_strings():
    elements = [{"s": 'a "quoted" ] } [ { \\ string \\"'}, {"nested": [[1], {"x": "]"}]}, []]
    data = json.dumps(elements).encode()
    for cut in range(len(data) + 1):
        events, _, _ = run(JSON_ARRAY, [data[:cut], data[cut:]])
        assert [e for _, e in events] == elements, cut
    events, _, _ = run(JSON_ARRAY, pieces(data, 1))
    assert [e for _, e in events] == elements


def test_a_bare_object_is_one_event():
    events, _, _ = run(JSON_ARRAY, [b'{"a": 1}', b' {"b": 2}'])
    assert events == [(None, {"a": 1}), (None, {"b": 2})]


def test_unterminated_8mb_json_element_costs_linear_work(monkeypatch):
    counters = [CountingPattern(streams.JSON_STRUCTURE), CountingPattern(streams.JSON_STRING_END)]
    monkeypatch.setattr(streams, "JSON_STRUCTURE", counters[0])
    monkeypatch.setattr(streams, "JSON_STRING_END", counters[1])
    body = b'[{"text": "' + b"x" * 8_000_000
    _, _, tap = run(JSON_ARRAY, pieces(body, 4096))
    assert sum(c.scanned for c in counters) <= len(body)
    assert not tap.broken


def test_json_array_of_many_small_events_costs_linear_work(monkeypatch):
    counters = [CountingPattern(streams.JSON_STRUCTURE), CountingPattern(streams.JSON_STRING_END)]
    monkeypatch.setattr(streams, "JSON_STRUCTURE", counters[0])
    monkeypatch.setattr(streams, "JSON_STRING_END", counters[1])
    body = b"[" + b",".join(b'{"i": %d, "t": "abc"}' % i for i in range(50_000)) + b"]"
    events, _, _ = run(JSON_ARRAY, pieces(body, 4096))
    assert len(events) == 50_000
    assert sum(c.scanned for c in counters) <= len(body)


def test_json_element_over_max_pending_breaks_the_tap():
    chunks = [b'[{"t": "'] + [b"x" * 65536] * (MAX_PENDING // 65536 + 1)
    _, passed, tap = run(JSON_ARRAY, chunks)
    assert tap.broken and passed == [*chunks, b""]


# ---------------------------------------------------------------- AWS event stream


FRAMES = [
    encode_event({"bytes": "eyJhIjogMX0="}, "chunk"),
    encode_event({"usage": {"inputTokens": 3}}, "metadata"),
    encode_event({"message": "slow down"}, "throttlingException", "exception"),
]


def test_event_stream_frames_with_their_types_split_at_every_byte_boundary():
    data = b"".join(FRAMES)
    expected = [
        ("chunk", {"bytes": "eyJhIjogMX0="}),
        ("metadata", {"usage": {"inputTokens": 3}}),
        ("throttlingException", {"message": "slow down"}),
    ]
    for cut in range(len(data) + 1):
        events, passed, tap = run(EVENTSTREAM, [data[:cut], data[cut:]])
        assert events == expected, cut
        assert tap.exceptions == ['throttlingException: {"message": "slow down"}']
        assert b"".join(passed) == data


def test_event_stream_big_frame_is_handed_to_botocore_once(monkeypatch):
    """botocore's buffer copies itself on every add: it gets whole frames only."""
    adds = []
    real = streams.EventStreamBuffer.add_data
    monkeypatch.setattr(
        streams.EventStreamBuffer, "add_data", lambda self, d: adds.append(len(d)) or real(self, d)
    )
    frame = encode_event({"text": "x" * 4_000_000}, "chunk")
    events, _, _ = run(EVENTSTREAM, pieces(frame, 4096))
    assert adds == [len(frame)] and events[0][1]["text"] == "x" * 4_000_000


def test_event_stream_frame_declared_over_max_pending_is_refused_at_its_prelude():
    prelude = (MAX_PENDING + 1).to_bytes(4, "big") + (0).to_bytes(4, "big")
    prelude += zlib.crc32(prelude).to_bytes(4, "big")
    _, _, tap = run(EVENTSTREAM, [prelude + b"x" * 100])
    assert tap.broken and "over" in tap.reason


def test_event_stream_garbage_breaks_the_tap_at_once():
    _, passed, tap = run(EVENTSTREAM, [b"HTTP/1.1 garbage here", b"more"])
    assert tap.broken and passed == [b"HTTP/1.1 garbage here", b"more", b""]


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


# ---------------------------------------------------------------- writing SSE


def test_sse_event_framing():
    assert sse_event(None, {"a": "é"}) == 'data: {"a":"é"}\n\n'.encode()
    assert sse_event("message_stop", {"type": "message_stop"}) == (
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    assert sse_event(None, "[DONE]") == b"data: [DONE]\n\n"
    assert sse_event("x", "two\nlines") == b"event: x\ndata: two\ndata: lines\n\n"
    assert sse_event(None, 2**70) == b"data: 1180591620717411303424\n\n"
    with pytest.raises(ValueError):
        sse_event("a\nb", {})


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@given(
    st.lists(
        st.tuples(
            st.none() | st.text(alphabet=st.characters(blacklist_characters="\r\n")),
            st.dictionaries(st.text(), JSON_VALUES, max_size=3),
        ),
        max_size=5,
    ),
    st.lists(st.integers(min_value=0), max_size=6),
)
def test_what_sse_event_writes_the_reader_reads_back(written, cuts):
    data = b"".join(sse_event(kind, value) for kind, value in written)
    events: list = []
    reader = SseReader(lambda kind, value: events.append((kind, value)))
    for chunk in split(data, cuts):
        reader.feed(chunk)
    reader.end()
    assert events == written


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
