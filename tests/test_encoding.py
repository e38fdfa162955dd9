"""Capped decoding: every encoding mitmproxy reads, a bomb refused without inflating it."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import brotli
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mitmproxy.test import tutils

from calo_addon.encoding import (
    Decoder,
    TooLarge,
    decode,
    decode_prefix,
    preview,
    supported,
    zstd,
)

BODY = b'{"contents": [{"parts": [{"text": "hello \xc3\xa9"}]}]}' * 50


def raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


ENCODERS = {
    "identity": lambda d: d,
    "none": lambda d: d,
    "": lambda d: d,
    "gzip": gzip.compress,
    "GZip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,  # RFC 9110: zlib-wrapped
    "deflateraw": raw_deflate,
    "br": lambda d: brotli.compress(d, quality=5),
    "zstd": zstd.compress,
    "gzip, br": lambda d: brotli.compress(gzip.compress(d)),
}
BOMB_ENCODERS = {
    "gzip": lambda d: gzip.compress(d, 9),
    "deflate": lambda d: zlib.compress(d, 9),
    "deflateraw": raw_deflate,
    "br": lambda d: brotli.compress(d, quality=5),
    "zstd": zstd.compress,
    "br, gzip": lambda d: gzip.compress(brotli.compress(d, quality=5)),
}


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("name", list(ENCODERS))
def test_every_encoding_decodes_whole_and_exactly_at_the_limit(name):
    encoded = ENCODERS[name](BODY)
    assert decode(encoded, name, len(BODY)) == BODY
    with pytest.raises(TooLarge):
        decode(encoded, name, len(BODY) - 1)


@pytest.mark.parametrize("name", list(ENCODERS))
def test_an_empty_body_decodes_to_nothing(name):
    assert decode(b"", name, 10) == b""


def test_deflate_without_its_zlib_wrapper_is_read_too():
    """Some servers send raw DEFLATE as `deflate`; mitmproxy reads it, so do we."""
    assert decode(raw_deflate(BODY), "deflate", len(BODY)) == BODY


def test_every_gzip_member_and_every_zstd_frame_is_read():
    assert decode(gzip.compress(b"ab") + gzip.compress(b"cd"), "gzip", 10) == b"abcd"
    assert decode(zstd.compress(b"ab") + zstd.compress(b"cd"), "zstd", 10) == b"abcd"
    with pytest.raises(TooLarge):
        decode(gzip.compress(b"ab") + gzip.compress(b"cd"), "gzip", 3)


@pytest.mark.parametrize("name", list(BOMB_ENCODERS))
def test_a_bomb_is_refused_without_allocating_past_the_cap(name):
    """64 MB of zeros, compressed to a few kilobytes, decoded with a 1 MB cap."""
    bomb = BOMB_ENCODERS[name](bytes(64 << 20))
    assert len(bomb) < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge):
            decode(bomb, name, 1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # counted before it is kept: less than the cap, not 64 MB


def test_a_body_within_the_limit_costs_about_its_size():
    body = b"y" * (1 << 20)
    encoded = gzip.compress(body)
    tracemalloc.start()
    try:
        assert decode(encoded, "gzip", 1 << 20) == body
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2.5 * (1 << 20)  # the pieces and the joined body


@pytest.mark.parametrize(
    "data, name",
    [
        (b"not gzip", "gzip"),
        (gzip.compress(BODY)[:-12], "gzip"),  # truncated
        (b"\x78\x9c garbage", "deflate"),
        (b"x", "deflate"),
        (b"not brotli", "br"),
        (brotli.compress(BODY)[:-3], "br"),
        (b"not zstd", "zstd"),
        (zstd.compress(BODY)[:-3], "zstd"),
        (BODY, "xz"),
        (BODY, "utf-8"),  # a text codec is not a content coding
        (BODY, "gzip, lzma"),
    ],
)
def test_what_does_not_decode_raises_value_error(data, name):
    with pytest.raises(ValueError):
        decode(data, name, 1 << 20)


def test_a_zstd_window_over_8_mb_is_refused():
    big_window = zstd.compress(bytes(20 << 20), options={zstd.CompressionParameter.window_log: 25})
    with pytest.raises(ValueError):
        decode(big_window, "zstd", 64 << 20)


def test_supported():
    assert supported("gzip") and supported("br, zstd") and supported("")
    assert not supported("xz") and not supported("gzip, compress")


@pytest.mark.parametrize("name", list(ENCODERS))
@given(size=st.integers(min_value=1, max_value=300))
def test_decoder_fed_in_pieces_gives_the_same_body(name, size):
    decoder = Decoder(name)
    out = b"".join(decoder.feed(p) for p in pieces(ENCODERS[name](BODY), size))
    assert out + decoder.flush() == BODY


@pytest.mark.parametrize("name", list(BOMB_ENCODERS))
def test_each_decoder_call_is_bounded(name):
    bomb = BOMB_ENCODERS[name](bytes(64 << 20))
    decoder = Decoder(name, max_output=1 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge):
            for piece in pieces(bomb, 1024):
                assert len(decoder.feed(piece)) <= 1 << 20
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 << 20


def test_decoder_flush_says_when_the_stream_was_cut_short():
    decoder = Decoder("gzip")
    decoder.feed(gzip.compress(BODY)[:-12])
    with pytest.raises(ValueError):
        decoder.flush()


def test_decoder_refuses_an_unsupported_encoding_at_once():
    with pytest.raises(ValueError):
        Decoder("compress")


@pytest.mark.parametrize("name", ["gzip", "br", "zstd", "identity"])
def test_decode_prefix_stops_at_the_limit(name):
    encoded = ENCODERS[name](BODY)
    assert decode_prefix(encoded, name, 10) == (BODY[:10], True)
    assert decode_prefix(encoded, name, len(BODY)) == (BODY, False)


def test_preview_of_a_bomb_decodes_only_what_it_shows():
    request = tutils.treq(content=b"")
    request.headers["content-encoding"] = "gzip"
    request.raw_content = gzip.compress(b"x" * (64 << 20), 9)
    tracemalloc.start()
    try:
        text = preview(request, 1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert text == "x" * 1000
    assert peak < 1 << 20


def test_preview_text_and_what_has_none():
    request = tutils.treq(content="héllo".encode("latin-1"))
    request.headers["content-type"] = "text/plain; charset=latin-1"
    assert preview(request, 100) == "héllo"
    request.headers["content-type"] = "application/json; charset=no-such-charset"
    assert preview(request, 100) == "h\ufffdllo"
    request.headers["content-encoding"] = "gzip"
    assert preview(request, 100) is None  # does not decode
    request.raw_content = None
    assert preview(request, 100) is None  # a streamed body, not kept


def test_preview_without_decoding_shows_plain_bodies_only():
    plain = tutils.treq(content=b'{"a": 1}')
    assert preview(plain, 100, decode=False) == '{"a": 1}'
    packed = tutils.treq(content=b"")
    packed.headers["content-encoding"] = "gzip"
    packed.raw_content = gzip.compress(b'{"a": 1}')
    assert preview(packed, 100, decode=False) is None
    assert preview(packed, 100) == '{"a": 1}'
