"""Request bodies: decoded with a cap (413 past it), parsed once, and mitmproxy's own
body_size_limit following max_body_bytes unless the user set it."""

from __future__ import annotations

import asyncio
import gzip
import os
import tracemalloc
from types import SimpleNamespace

import orjson
import pytest
from mitmproxy import flow as mflow
from mitmproxy.addons import proxyserver
from mitmproxy.test import taddons, tflow, tutils

from calo_addon import Calo
from calo_addon.body import (
    REQUEST_OVER_LIMIT,
    JsonBody,
    after_cut,
    close_after_cut,
    cut_by_mitmproxy,
    limit_mitmproxy_bodies,
    oversize_record,
)
from calo_addon.dialects import Refusal

PAYLOAD = {"model": "m", "messages": [{"role": "user", "content": "héllo"}]}


def request(content: bytes, encoding: str | None = None):
    req = tutils.treq(content=b"")
    if encoding:
        req.headers["content-encoding"] = encoding
    req.raw_content = content
    return req


def refusal(body: JsonBody) -> Refusal:
    with pytest.raises(Refusal) as caught:
        _ = body.value
    return caught.value


# ---------------------------------------------------------------- JsonBody


def test_gzip_body_is_read_and_left_byte_identical_when_untouched():
    raw = gzip.compress(orjson.dumps(PAYLOAD))
    req = request(raw, "gzip")
    body = JsonBody(req, 1 << 20)
    assert body.value == PAYLOAD
    body.write_back()
    assert req.raw_content == raw


def test_a_changed_body_is_written_back_in_its_encoding():
    req = request(gzip.compress(orjson.dumps(PAYLOAD)), "gzip")
    body = JsonBody(req, 1 << 20)
    body.value["model"] = "other"
    body.mark_changed()
    body.write_back()
    assert req.headers["content-encoding"] == "gzip"
    assert orjson.loads(gzip.decompress(req.raw_content))["model"] == "other"


def test_an_encoding_mitmproxy_cannot_write_goes_back_plain():
    req = request(gzip.compress(orjson.dumps(PAYLOAD)), "x-gzip")
    body = JsonBody(req, 1 << 20)
    body.value["model"] = "other"
    body.mark_changed()
    body.write_back()
    assert "content-encoding" not in req.headers
    assert orjson.loads(req.raw_content)["model"] == "other"


def test_a_gzip_bomb_is_refused_413_without_inflating_it():
    """64 KB of gzip that would be 64 MB: refused at the 1 MB cap."""
    bomb = gzip.compress(b'{"pad": "' + b" " * (64 << 20), 9)
    body = JsonBody(request(bomb, "gzip"), 1 << 20)
    tracemalloc.start()
    try:
        refused = refusal(body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.status == 413 and "1048576" in refused.message
    assert peak < 3 << 20


def test_a_body_exactly_at_the_limit_is_read():
    raw = orjson.dumps(PAYLOAD)
    assert JsonBody(request(gzip.compress(raw), "gzip"), len(raw)).value == PAYLOAD
    assert refusal(JsonBody(request(gzip.compress(raw), "gzip"), len(raw) - 1)).status == 413


@pytest.mark.parametrize(
    "raw, encoding, message",
    [
        (b"\x1f\x8b broken", "gzip", "cannot be decoded"),
        (b"{}", "compress", "cannot be decoded"),
        (b"  \n", None, "empty body"),
        (b"", None, "empty body"),
        (b"{nope", None, "not valid JSON"),
    ],
)
def test_bodies_that_cannot_be_read_get_400(raw, encoding, message):
    refused = refusal(JsonBody(request(raw, encoding), 1 << 20))
    assert refused.status == 400 and message in refused.message


def test_json_only_the_standard_library_reads():
    assert JsonBody(request(b'{"a": NaN}'), 100).value["a"] != 0


# ---------------------------------------------------------------- mitmproxy's body_size_limit


def test_limit_is_set_when_unset_and_follows_max_body_bytes():
    options = SimpleNamespace(body_size_limit=None)
    ours = limit_mitmproxy_bodies(options, 1000, None)
    assert options.body_size_limit == ours == "1000"
    ours = limit_mitmproxy_bodies(options, 2000, ours)
    assert options.body_size_limit == ours == "2000"


def test_a_limit_the_user_set_stays():
    options = SimpleNamespace(body_size_limit="5m")
    assert limit_mitmproxy_bodies(options, 1000, None) is None
    assert options.body_size_limit == "5m"
    options.body_size_limit = "7m"  # changed by the user after we set ours
    assert limit_mitmproxy_bodies(options, 1000, "1000") is None
    assert options.body_size_limit == "7m"


def test_no_such_option_no_change():
    assert limit_mitmproxy_bodies(SimpleNamespace(), 1000, None) is None


def test_the_addon_sets_it_and_a_reload_moves_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("GEMINI_CALO_")]:
        monkeypatch.delenv(name)
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(f"api_keys: [k]\nmax_body_bytes: 1000\nlog: {{file: {tmp_path / 'c.log'}}}\n")
    second.write_text(f"api_keys: [k]\nmax_body_bytes: 2000\nlog: {{file: {tmp_path / 'c.log'}}}\n")

    async def go():
        addon = Calo()
        with taddons.context(proxyserver.Proxyserver(), addon) as tctx:
            tctx.configure(addon, calo_config=str(first))
            assert tctx.options.body_size_limit == "1000"
            tctx.configure(addon, calo_config=str(second))
            assert tctx.options.body_size_limit == "2000"
            tctx.options.body_size_limit = "9k"  # the user's choice from now on
            tctx.configure(addon, calo_config=str(first))
            assert tctx.options.body_size_limit == "9k"
            addon.done()
            tctx.master._legacy_log_events.uninstall()

    asyncio.run(go())


def test_a_request_mitmproxy_cut_is_recognised_and_logged_from_its_headers():
    f = tflow.tflow(req=tutils.treq(path=b"/v1/chat/completions?key=secret"))
    f.request.headers["content-length"] = str(2 << 30)
    assert not cut_by_mitmproxy(f)
    f.error = mflow.Error(REQUEST_OVER_LIMIT)
    assert cut_by_mitmproxy(f)
    record = oversize_record(f, "1000")
    assert record["status"] == 413 and record["api"] == "openai"
    assert record["path"] == "/v1/chat/completions"  # no query: it may hold a key
    assert record["refused"] == "request body over 1000 bytes (body_size_limit)"
    assert record["declared_length"] == str(2 << 30)


class FakeLog:
    def __init__(self):
        self.records: list[dict] = []

    def write(self, record: dict) -> None:
        self.records.append(record)


def cut_flow():
    f = tflow.tflow(req=tutils.treq(path=b"/v1beta/models/g:generateContent?key=client-key"))
    f.request.headers["x-goog-api-key"] = "client-key"
    f.error = mflow.Error(REQUEST_OVER_LIMIT)
    return f


def test_after_cut_logs_an_api_call_and_keeps_no_client_key():
    async def go():
        with taddons.context(proxyserver.Proxyserver()) as tctx:
            tctx.options.body_size_limit = "1000"
            f, log = cut_flow(), FakeLog()
            after_cut(f, log)
            return f, log

    f, log = asyncio.run(go())
    assert "x-goog-api-key" not in f.request.headers and "key" not in f.request.query
    (record,) = log.records
    assert record["api"] == "gemini" and "1000" in record["refused"]
    assert f.comment.startswith("calo: refused: request body over 1000") and f.marked


def test_after_cut_leaves_a_flow_that_is_not_ours_alone():
    async def go():
        with taddons.context():
            f = cut_flow()
            after_cut(f, None)
            return f

    assert asyncio.run(go()).request.headers["x-goog-api-key"] == "client-key"


class FakeWriter:
    def __init__(self, closing: bool = False):
        self.closed = closing

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


class Proxyserver:
    """Stands in for mitmproxy's proxyserver addon: the attributes close_after_cut reads."""

    def __init__(self, flow, task, writer):
        client = object()
        handler = SimpleNamespace(
            client=client, transports={client: SimpleNamespace(handler=task, writer=writer)}
        )
        self.connections = {flow.client_conn.id: handler}


@pytest.mark.parametrize("already_closing", [False, True])
def test_close_after_cut_closes_what_mitmproxy_left_open(already_closing):
    """mitmproxy's connection task ends without closing its writer (the race in server.py):
    the writer is closed once the task is over, and only then."""

    async def go():
        f, writer, release = cut_flow(), FakeWriter(already_closing), asyncio.Event()
        task = asyncio.get_running_loop().create_task(release.wait())
        with taddons.context(Proxyserver(f, task, writer)):
            close_after_cut(f)
            await asyncio.sleep(0)
            open_while_running = not writer.closed
            release.set()
            for _ in range(10):
                await asyncio.sleep(0)
        return open_while_running or already_closing, writer.closed

    assert asyncio.run(go()) == (True, True)


def test_close_after_cut_does_nothing_without_mitmproxys_internals():
    async def go():
        with taddons.context():
            close_after_cut(cut_flow())

    asyncio.run(go())
