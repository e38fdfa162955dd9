"""The Calo addon driven through mitmproxy's taddons: what each kind of request turns into."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from mitmproxy import http
from mitmproxy.exceptions import OptionsError
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import taddons, tflow, tutils

from calo_addon import Calo, RouteConfig

GENERATE = b"/v1beta/models/gemini-2.5-flash:generateContent"
CHAT = b"/v1/chat/completions"
PROXY_KEY = [(b"x-goog-api-key", b"pk")]
REVERSE = ProxyMode.parse("reverse:http://127.0.0.1:9")


@pytest.fixture(autouse=True)
def clean_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no calo.yaml or .env of the repository
    for name in list(os.environ):
        if name.startswith("GEMINI_CALO_"):
            monkeypatch.delenv(name)


def calo(tmp_path, **settings) -> Calo:
    given = {
        "api_keys": ["r1", "r2"],
        "proxy_api_keys": ["pk"],
        "base_url": "http://127.0.0.1:9",
        "log_file": str(tmp_path / "c.log"),
    }
    return Calo(**{**given, **settings})


def flow(path=GENERATE, method=b"POST", headers=PROXY_KEY, content=b"{}", reverse=True):
    f = tflow.tflow(req=tutils.treq(method=method, path=path, headers=headers, content=content))
    if reverse:
        f.client_conn.proxy_mode = REVERSE
    return f


def run(addon: Calo, body=None, *flows: http.HTTPFlow):
    """Configure `addon` in a taddons context, send each flow's request, then await body(tctx)."""

    async def main():
        with taddons.context(addon) as tctx:
            try:
                tctx.configure(addon)
                for f in flows:
                    await addon.request(f)
                return await body(tctx) if body else None
            finally:
                addon.done()
                tctx.master._legacy_log_events.uninstall()  # taddons binds it to this loop

    return asyncio.run(main())


def send(addon: Calo, *flows: http.HTTPFlow) -> None:
    run(addon, None, *flows)


def error_body(f: http.HTTPFlow, status: int) -> dict:
    assert f.response is not None and f.response.status_code == status
    assert f.response.headers["content-type"] == "application/json"
    return json.loads(f.response.content)


def wire(f: http.HTTPFlow) -> http.Headers:
    """The request's headers as the bytes sent upstream carry them (credentials real)."""
    lines = bytes(f.request.headers).split(b"\r\n")
    return http.Headers([tuple(line.split(b": ", 1)) for line in lines if line])


def assert_not_forwarded(f: http.HTTPFlow) -> None:
    assert (f.request.host, f.request.port) == ("address", 22)
    assert not {"r1", "r2", "pk"} & set(f.request.headers.values())


# ---------------------------------------------------------------- forwarding


def test_gemini_call_goes_to_base_url_with_rotating_real_keys(tmp_path):
    flows = [flow(headers=[*PROXY_KEY, (b"x-keep", b"yes")]) for _ in range(3)]
    send(calo(tmp_path), *flows)
    for f, key in zip(flows, ["r1", "r2", "r1"]):
        assert f.response is None
        assert (f.request.scheme, f.request.host, f.request.port, f.request.path) == (
            "http",
            "127.0.0.1",
            9,
            GENERATE.decode(),
        )
        assert wire(f).get_all("x-goog-api-key") == [key]
        assert f.request.headers["x-goog-api-key"] == f"[calo: default#{key[1]}]"  # stored
        assert f.request.headers["x-keep"] == "yes" and f.request.content == b"{}"


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ([(b"authorization", b"Bearer pk")], b"?alt=sse"),
        ([(b"x-api-key", b"pk")], b"?alt=sse"),
        ([], b"?key=pk&alt=sse"),
    ],
)
def test_proxy_key_never_leaves(tmp_path, headers, query):
    f = flow(path=GENERATE + query, headers=headers)
    send(calo(tmp_path), f)
    assert f.response is None
    assert f.request.path == GENERATE.decode() + "?alt=sse"
    assert "authorization" not in wire(f) and "x-api-key" not in wire(f)
    assert wire(f)["x-goog-api-key"] == "r1"


def test_openai_call_is_bearer_keyed_and_mapped_to_googles_openai_layer(tmp_path):
    body = b'{"model": "gpt-4o", "messages": []}'
    f = flow(path=CHAT, headers=[(b"authorization", b"Bearer pk")], content=body)
    send(calo(tmp_path), f)
    assert f.response is None
    assert (f.request.host, f.request.path) == ("127.0.0.1", "/v1beta/openai/chat/completions")
    assert wire(f)["authorization"] == "Bearer r1" and f.request.content == body


def test_health_is_answered_without_auth(tmp_path):
    f = flow(path=b"/health", method=b"GET", headers=[], content=b"")
    send(calo(tmp_path), f)
    assert error_body(f, 200) == {"status": "ok"}


def test_explicit_mode_leaves_other_hosts_untouched(tmp_path):
    f = flow(path=GENERATE, headers=[(b"authorization", b"Bearer pk")], reverse=False)
    f.request.host = "example.com"
    before = f.request.get_state()
    send(calo(tmp_path), f)
    assert f.response is None and f.request.get_state() == before


def test_explicit_mode_serves_the_gemini_host(tmp_path):
    f = flow(reverse=False)
    f.request.host, f.request.port = "generativelanguage.googleapis.com", 443
    send(calo(tmp_path), f)
    assert f.response is None
    assert (f.request.host, wire(f)["x-goog-api-key"]) == ("127.0.0.1", "r1")


# ---------------------------------------------------------------- refusals, in the caller's shape


def test_missing_key_is_401_in_gemini_shape(tmp_path):
    f = flow(headers=[])
    send(calo(tmp_path), f)
    assert error_body(f, 401)["error"]["status"] == "UNAUTHENTICATED"
    assert_not_forwarded(f)


def test_wrong_key_is_401_in_openai_shape_and_stripped(tmp_path):
    f = flow(path=CHAT, headers=[(b"authorization", b"Bearer nope")], content=b'{"model": "m"}')
    send(calo(tmp_path), f)
    error = error_body(f, 401)["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")
    assert_not_forwarded(f)
    assert "authorization" not in f.request.headers


@pytest.mark.parametrize(
    ("path", "content", "status", "shape"),
    [
        (CHAT, b"[]", 400, "openai"),
        (CHAT, b"not json", 400, "openai"),
        (b"/v1beta/models/%2e%2e:generateContent", b"{}", 400, "gemini"),
        (b"/v1beta/models/m:deleteEverything", b"{}", 404, "gemini"),
        (b"/v1/assistants", b"{}", 404, "openai"),
        (b"/admin", b"{}", 404, "gemini"),
    ],
)
def test_bad_requests_are_answered_by_the_proxy(tmp_path, path, content, status, shape):
    f = flow(path=path, content=content)
    send(calo(tmp_path), f)
    error = error_body(f, status)["error"]
    assert ("status" in error) is (shape == "gemini") and ("type" in error) is (shape == "openai")
    assert_not_forwarded(f)


def test_upstream_known_down_is_502_without_trying(tmp_path, monkeypatch):
    tried = []

    async def connect(host, port, timeout):
        tried.append((host, port))

    monkeypatch.setattr("calo_addon.connect.try_connect", connect)
    addon = calo(tmp_path)
    addon.health.mark_down("127.0.0.1:9", "connection refused")
    f = flow()
    send(addon, f)
    assert error_body(f, 502)["error"]["status"] == "UNAVAILABLE"
    assert tried == []  # not even a connect
    assert_not_forwarded(f)


def test_connect_check_only_for_a_direct_connection_not_yet_open(tmp_path, monkeypatch):
    """Refused connect: 502 in shape, nothing forwarded. Not checked again once mitmproxy holds
    a connection to that upstream for this client, nor through an upstream proxy."""
    import calo_addon.connect as connect_module
    from calo_addon.connect import ConnectFailed

    tried = []

    async def refused(host, port, timeout):
        tried.append((host, port))
        raise ConnectFailed("Connection refused")

    monkeypatch.setattr(connect_module, "try_connect", refused)
    first, upstream_mode, kept_alive = flow(), flow(), flow()
    upstream_mode.server_conn.via = ("http", ("10.0.0.9", 3128))
    addon = calo(tmp_path, max_retries=1)
    send(addon, first)
    assert error_body(first, 502)["error"]["message"] == "upstream 127.0.0.1:9: Connection refused"
    assert tried == [("127.0.0.1", 9)] * 2  # once, then one retry
    assert_not_forwarded(first)

    addon.health.mark_up("127.0.0.1:9")
    addon.connections.connected(kept_alive.client_conn.id, ("127.0.0.1", 9))
    send(addon, upstream_mode, kept_alive)
    assert upstream_mode.response is None and kept_alive.response is None
    assert tried == [("127.0.0.1", 9)] * 2


# ---------------------------------------------------------------- model override and routes


def test_fixed_model_override_rewrites_path_and_body(tmp_path):
    gemini = flow()
    openai = flow(path=CHAT, content=b'{"model": "gpt-4o", "messages": []}')
    send(calo(tmp_path, model_override="gemini-2.0-pro"), gemini, openai)
    assert gemini.request.path == "/v1beta/models/gemini-2.0-pro:generateContent"
    assert json.loads(openai.request.content) == {"model": "gemini-2.0-pro", "messages": []}


def test_model_transformer_and_routing_by_the_effective_model(tmp_path):
    routes = {
        "tuned-*": RouteConfig(url="http://10.0.0.2:8080", api_keys=["t1"], auth="x-goog-api-key")
    }
    f = flow()
    send(calo(tmp_path, model_routes=routes, model_transformer=lambda m: f"tuned-{m}"), f)
    assert f.request.path == "/v1beta/models/tuned-gemini-2.5-flash:generateContent"
    assert (f.request.host, f.request.port, wire(f)["x-goog-api-key"]) == (
        "10.0.0.2",
        8080,
        "t1",
    )


def test_openai_path_maps_back_to_v1_for_a_non_google_route(tmp_path):
    routes = {"gpt-*": RouteConfig(url="https://api.openai.com", api_keys=["o1"])}
    body = b'{"model": "gpt-4o", "messages": []}'
    f = flow(path=b"/v1beta/openai/chat/completions", content=body)
    send(calo(tmp_path, model_routes=routes), f)
    assert (f.request.scheme, f.request.host, f.request.port, f.request.path) == (
        "https",
        "api.openai.com",
        443,
        "/v1/chat/completions",
    )
    assert f.request.host_header == "api.openai.com"
    assert wire(f)["authorization"] == "Bearer o1"


def sync_auth(f: http.HTTPFlow) -> None:
    f.request.headers["x-custom-auth"] = f"sync {f.request.host}"


async def async_auth(f: http.HTTPFlow) -> None:
    await asyncio.sleep(0)
    f.request.headers["x-custom-auth"] = f"async {f.request.host}"


@pytest.mark.parametrize(("auth", "word"), [(sync_auth, "sync"), (async_auth, "async")])
def test_custom_auth_callable_sets_credentials_after_routing(tmp_path, auth, word):
    routes = {"custom-*": RouteConfig(url="http://10.0.0.1:8080/base", auth=auth, api="gemini")}
    f = flow(path=b"/v1beta/models/custom-1:generateContent")
    send(calo(tmp_path, model_routes=routes), f)
    assert f.response is None
    assert (f.request.host, f.request.port, f.request.path) == (
        "10.0.0.1",
        8080,
        "/base/v1beta/models/custom-1:generateContent",
    )
    assert wire(f)["x-custom-auth"] == f"{word} 10.0.0.1"
    assert f.request.headers["x-custom-auth"] == "[calo: custom-*:custom]"  # issue 10.6
    assert "x-goog-api-key" not in wire(f)


# ---------------------------------------------------------------- configuration


def test_invalid_config_at_startup_refuses_everything_with_503(tmp_path):
    addon = Calo(proxy_api_keys=["pk"], log_file=str(tmp_path / "c.log"))  # no api_keys anywhere
    f, health = flow(), flow(path=b"/health", method=b"GET", headers=[], content=b"")
    send(addon, f, health)
    assert addon.pipeline is None
    assert error_body(f, 503)["error"]["status"] == "UNAVAILABLE"
    assert_not_forwarded(f)
    assert health.response.status_code == 200


def bad_then_request(tmp_path, addon: Calo):
    bad = tmp_path / "bad.yaml"
    bad.write_text("bogus_key: 1\n")

    async def body(tctx):
        old = addon.pipeline
        with pytest.raises(OptionsError, match="bogus_key"):
            tctx.configure(addon, calo_config=str(bad))
        f = flow()
        await addon.request(f)
        return old, f

    first = flow()
    old, later = run(addon, body, first)
    return old, first, later


def test_bad_config_later_raises_and_keeps_the_configuration(tmp_path):
    addon = calo(tmp_path)
    old, _, later = bad_then_request(tmp_path, addon)
    assert addon.pipeline.settings == old.settings
    assert later.response is None and later.request.host == "127.0.0.1"


def test_bad_config_later_keeps_the_pipeline_and_its_key_rotation(tmp_path):
    """A refused change must not rebuild the pipeline: cooldowns, rotation and the rollup
    cache would be lost (mitmproxy's rollback re-sends the old option value)."""
    addon = calo(tmp_path)
    old, first, later = bad_then_request(tmp_path, addon)
    assert wire(first)["x-goog-api-key"] == "r1"
    assert wire(later)["x-goog-api-key"] == "r2"
    assert addon.pipeline is old


def test_good_config_file_later_adds_its_routes(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text('model_routes:\n  "gpt-*": {url: "http://10.0.0.3:1", api_keys: [o1]}\n')
    addon = calo(tmp_path)

    async def body(tctx):
        tctx.configure(addon, calo_config=str(good))
        f = flow(
            path=CHAT, headers=[(b"authorization", b"Bearer pk")], content=b'{"model": "gpt-4"}'
        )
        await addon.request(f)
        return f

    f = run(addon, body)
    assert (f.request.host, wire(f)["authorization"]) == ("10.0.0.3", "Bearer o1")


# ---------------------------------------------------------------- log and status


def test_one_json_line_per_api_flow(tmp_path):
    addon = calo(tmp_path)
    ok, refused, health = flow(), flow(headers=[]), flow(path=b"/health", method=b"GET")
    usage = {"usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4}}

    async def body(tctx):
        ok.response = http.Response.make(
            200, json.dumps(usage).encode(), {"content-type": "application/json"}
        )
        for f in (ok, refused, health):
            addon.responseheaders(f)
            await addon.response(f)

    run(addon, body, ok, refused, health)
    lines = [json.loads(line) for line in (tmp_path / "c.log").read_text().splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert first["api"] == "gemini" and first["operation"] == "generateContent"
    assert first["requested_model"] == first["effective_model"] == "gemini-2.5-flash"
    assert (first["route"], first["upstream_host"], first["key_label"]) == (
        "default",
        "127.0.0.1:9",
        "default#1",
    )
    assert first["status"] == 200
    assert first["usage"] == {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}
    assert first["kind"] == "call" and first["time"].endswith("Z")
    assert second["status"] == 401 and second["refused"] == "missing proxy API key"
    assert ok.request.headers["x-goog-api-key"] == "[calo: default#1]"  # stored flow: a label


def test_status_shows_labels_and_no_secret(tmp_path):
    secrets = ["real-secret-1", "real-secret-2", "route-secret"]
    routes = {"gpt-*": RouteConfig(url="https://api.openai.com", api_keys=[secrets[2]])}
    addon = calo(tmp_path, api_keys=secrets[:2], model_routes=routes)

    async def body(tctx):
        return tctx.master.commands.call("calo.status")

    text = run(addon, body, flow())
    assert "default#1 uses=1" in text and "default#2 uses=0" in text and "gpt-*#1" in text
    assert not any(secret in text for secret in secrets)


def test_unknown_python_setting_is_a_type_error():
    with pytest.raises(TypeError, match="api_key"):
        Calo(api_key=["oops"])
