"""Event framing: SSE, JSON-array and AWS event-stream readers give the same events however
the bytes are cut, scan each byte once, and what `sse_event` writes reads back the same."""

from __future__ import annotations

import itertools
import json
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calo_addon import framing
from calo_addon.framing import (
    EVENTSTREAM,
    JSON_ARRAY,
    MAX_PENDING,
    SSE,
    SseReader,
    sse_event,
)
from calo_addon.streams import StreamTap
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
    counter = CountingPattern(framing.LINE_END)
    monkeypatch.setattr(framing, "LINE_END", counter)
    body = b"data: " + b"x" * (8_000_000 - 6)
    events, passed, tap = run(SSE, pieces(body, 4096))
    assert counter.scanned <= len(body)
    assert not tap.broken and events == [(None, "x" * (8_000_000 - 6))]  # read at the end
    assert b"".join(passed) == body


def test_many_data_lines_without_a_blank_line_cost_linear_work(monkeypatch):
    counter = CountingPattern(framing.LINE_END)
    monkeypatch.setattr(framing, "LINE_END", counter)
    body = b"data: 0123456789\n" * 200_000  # 3.4 MB, one event
    run(SSE, pieces(body, 4096))
    assert counter.scanned <= len(body)


def test_an_event_over_max_pending_breaks_the_tap_not_the_stream():
    chunks = [b"data: " + b"x" * 4096] * (MAX_PENDING // 4096 + 2) + [b'\n\ndata: {"a": 1}\n\n']
    events, passed, tap = run(SSE, chunks)
    assert tap.broken and "over" in tap.reason
    assert passed == [*chunks, b""] and events == []


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
    counters = [CountingPattern(framing.JSON_STRUCTURE), CountingPattern(framing.JSON_STRING_END)]
    monkeypatch.setattr(framing, "JSON_STRUCTURE", counters[0])
    monkeypatch.setattr(framing, "JSON_STRING_END", counters[1])
    body = b'[{"text": "' + b"x" * 8_000_000
    _, _, tap = run(JSON_ARRAY, pieces(body, 4096))
    assert sum(c.scanned for c in counters) <= len(body)
    assert not tap.broken


def test_json_array_of_many_small_events_costs_linear_work(monkeypatch):
    counters = [CountingPattern(framing.JSON_STRUCTURE), CountingPattern(framing.JSON_STRING_END)]
    monkeypatch.setattr(framing, "JSON_STRUCTURE", counters[0])
    monkeypatch.setattr(framing, "JSON_STRING_END", counters[1])
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
    real = framing.EventStreamBuffer.add_data
    monkeypatch.setattr(
        framing.EventStreamBuffer, "add_data", lambda self, d: adds.append(len(d)) or real(self, d)
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
            # an event type as any upstream or writer has it: UTF-8 text, one line
            st.none() | st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n")),
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
