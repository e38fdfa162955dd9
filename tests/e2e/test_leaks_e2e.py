"""No real or proxy key anywhere but on the wire to its upstream (issue 10, items 1-7 and 16):
mitmweb's live view, `-w` files, HAR exports, the console and the log file, whatever happens to
the call (in flight, at shutdown, cut off by the client, an internal error, a refused reload,
a custom auth provider, an upstream error that echoes a key, a refused request at DEBUG)."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import httpx
import pytest

from tests.e2e.launch import (
    Proxy,
    WebView,
    free_port,
    read_flows,
    secret_hits,
    stored_texts,
    wait_for,
    web_args,
)
from tests.fake_llm import FakeLLM

PROXY_KEY = "proxy-key-leaks-0001"
REAL_1, REAL_2 = "real-gemini-leaks-aaaa", "real-gemini-leaks-bbbb"
NEW_REAL = "real-gemini-leaks-new-cccc"  # only ever in a refused configuration
CUSTOM_HEADER_SECRET = "custom-provider-header-dddd"
CUSTOM_QUERY_SECRET = "custom-provider-query-eeee"
SECRETS = (PROXY_KEY, REAL_1, REAL_2, NEW_REAL, CUSTOM_HEADER_SECRET, CUSTOM_QUERY_SECRET)
HOLD = "hold-model"  # the fake holds a request that names this until its gate opens
GENERATE = "/v1beta/models/{}:generateContent"
BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}

PROVIDERS = f'''
"""Custom auth providers for the leak tests."""


def set_credentials(flow):
    flow.request.headers["api-key"] = "{CUSTOM_HEADER_SECRET}"
    flow.request.query["key"] = "{CUSTOM_QUERY_SECRET}"


def explode(flow):
    raise RuntimeError("the provider broke")
'''


SCRIPT = """\"\"\"calo_addon loaded as the Python API allows, with a model transformer that fails.\"\"\"
from calo_addon import Calo


def transform(model):
    if model == "transform-raise":
        raise RuntimeError("the transformer broke")
    return model


addons = [Calo(model_transformer=transform)]
"""


class GatedLLM(FakeLLM):
    """FakeLLM that holds every request naming HOLD (path or body) until `gate` opens, and
    counts them as they arrive: calls in flight, on a condition instead of a delay."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()
        self.held = 0

    def record(self, handler, body: bytes):
        request = super().record(handler, body)
        if HOLD in request.path or HOLD.encode() in body:
            self.held += 1
            self.gate.wait(20)
        return request

    def __exit__(self, *exc) -> None:
        self.gate.set()
        super().__exit__(*exc)


def config(fake, api_keys: str = f"[{REAL_1}, {REAL_2}]") -> str:
    return f"""
base_url: {fake.url}
api_keys: {api_keys}
proxy_api_keys: [{PROXY_KEY}]
rollup: {{enabled: false}}
model_routes:
  "custom-creds": {{url: "{fake.url}", auth: "calo_leak_providers:set_credentials"}}
  "custom-raise": {{url: "{fake.url}", auth: "calo_leak_providers:explode"}}
"""


def prepare(tmp: Path, fake, level: str = "INFO") -> dict[str, str]:
    """Write the configuration and the providers' module; the environment to start with."""
    (tmp / "calo_leak_providers.py").write_text(PROVIDERS)
    (tmp / "calo.yaml").write_text(config(fake))
    return {"GEMINI_CALO_LOG_LEVEL": level, "PYTHONPATH": str(tmp)}


def in_background(call) -> threading.Thread:
    """Run a client call that may hang or fail (the proxy stops under it)."""

    def run():
        try:
            call()
        except httpx.HTTPError:
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def generate(proxy, model: str, key_in: str = "header", timeout: float = 20) -> httpx.Response:
    url, headers = f"{proxy.url}{GENERATE.format(model)}", {}
    if key_in == "query":
        url += f"?key={PROXY_KEY}"
    else:
        headers["x-goog-api-key"] = PROXY_KEY
    return httpx.post(url, json=BODY, headers=headers, timeout=timeout)


# ---------------------------------------------------------------- 1. mitmweb's live view


def test_mitmweb_live_view_never_shows_a_key(tmp_path, proxy_launcher):
    """Item 1: while calls wait for their upstream, /flows, every body, /flows/dump and the
    /updates websocket (flows/add included) hold neither the proxy key nor a real key."""
    with GatedLLM() as fake:
        env, web_port = prepare(tmp_path, fake), free_port()
        proxy = proxy_launcher(
            tmp_path, env, f"reverse:{fake.url}", web_args(web_port), tool="mitmweb"
        )
        view = WebView(web_port)
        with view.updates() as updates:
            clients = [
                in_background(lambda: generate(proxy, HOLD, "header")),
                in_background(lambda: generate(proxy, HOLD, "query")),
                in_background(
                    lambda: httpx.post(
                        f"{proxy.url}/v1/chat/completions",
                        headers={"authorization": f"Bearer {PROXY_KEY}"},
                        json={"model": HOLD, "messages": [{"role": "user", "content": "hi"}]},
                        timeout=20,
                    )
                ),
            ]
            assert wait_for(lambda: fake.held == 3), "the calls never reached the upstream"
            in_flight = view.flows()
            assert len(in_flight) == 3 and not any(f.get("response") for f in in_flight)
            # each stored request already points upstream, a label where the key goes
            assert all("[calo: default#" in json.dumps(f["request"]) for f in in_flight)
            seen = view.texts()
            fake.gate.set()
            for client in clients:
                client.join(20)
            assert wait_for(lambda: all(f.get("response") for f in view.flows()))
            assert wait_for(lambda: sum("flows/update" in m for m in updates.messages) >= 3)
            seen += view.texts()
        assert any("flows/add" in m for m in updates.messages)
        assert secret_hits(SECRETS, seen + updates.messages) == []


# ---------------------------------------------------------------- a proxy with -w, HAR, DEBUG


@pytest.fixture(scope="module")
def fake():
    with GatedLLM() as fake:
        yield fake


@pytest.fixture(scope="module")
def proxy(fake, tmp_path_factory, proxy_launcher) -> Proxy:
    tmp = tmp_path_factory.mktemp("leaks")
    env = prepare(tmp, fake, "DEBUG")
    (tmp / "calo_with_transformer.py").write_text(SCRIPT)
    args = ["-w", str(tmp / "flows.mitm"), "--set", f"hardump={tmp / 'flows.har'}"]
    script = tmp / "calo_with_transformer.py"
    return proxy_launcher(tmp, env, f"reverse:{fake.url}", args, script=script)


def flows_of(proxy: Proxy) -> list:
    return read_flows(proxy.cwd / "flows.mitm")


def test_console_on_internal_error_prints_no_key(proxy, fake):
    """Item 4: the addon fails inside the request path (a model transformer raises before
    routing, a custom auth provider raises after it) on calls that brought the proxy key as
    ?key=: 500 each, and no key on the console or in the log."""

    def failures() -> int:
        return sum("calo_addon failed on" in line for line in proxy.output)

    for model in ("transform-raise", "custom-raise"):
        before = failures()
        assert generate(proxy, model, "query").status_code == 500
        assert wait_for(lambda: failures() > before)  # noqa: B023 - used at once
    assert secret_hits(SECRETS, ["".join(proxy.output), proxy.log_path.read_text()]) == []


def test_custom_provider_credentials_are_labelled_and_redacted(proxy, fake):
    """Item 6: what a `module:callable` provider sets (an `api-key` header, a `key=` query
    parameter) reaches the upstream, and is a label in the stored flow and the DEBUG log."""
    fake.clear()
    answer = httpx.post(
        f"{proxy.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {PROXY_KEY}"},
        json={"model": "custom-creds", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert answer.status_code == 200, answer.text
    (seen,) = fake.requests
    assert seen.headers["api-key"] == CUSTOM_HEADER_SECRET
    assert seen.query["key"] == [CUSTOM_QUERY_SECRET]

    def stored():
        return [f for f in flows_of(proxy) if b"custom-creds" in (f.request.raw_content or b"")]

    assert wait_for(stored)
    (flow,) = stored()
    assert flow.request.headers["api-key"].startswith("[calo: ")
    assert flow.request.query["key"].startswith("[calo: ")
    assert secret_hits(SECRETS, stored_texts(flow)) == []
    lines = [line for line in proxy.api_log_lines() if line.get("route") == "custom-creds"]
    assert lines and "headers" in lines[-1]["request"]  # the DEBUG dump is there
    assert secret_hits(SECRETS, [proxy.log_path.read_text()]) == []


def test_upstream_error_that_echoes_a_key_reaches_no_one(proxy, fake):
    """Item 7: an upstream error body that names the real keys is scrubbed for the client and
    in the stored flow; the rest of the body is the upstream's."""
    echo = {
        "error": {
            "code": 400,
            "message": f"API key not valid: {REAL_1} / {REAL_2}",
            "status": "INVALID_ARGUMENT",
        }
    }
    fake.scripted.append((400, json.dumps(echo).encode()))
    answer = generate(proxy, "echo-model")
    assert answer.status_code == 400
    assert answer.json()["error"]["message"].startswith("API key not valid: ")
    assert secret_hits(SECRETS, [answer.text]) == []

    def stored():
        return [f for f in flows_of(proxy) if "echo-model" in f.request.path]

    assert wait_for(stored)
    (flow,) = stored()
    assert flow.response.status_code == 400
    assert secret_hits(SECRETS, stored_texts(flow)) == []


def test_unauthenticated_body_is_logged_only_as_its_size(proxy, fake):
    """Item 16: at DEBUG, a refused request's body is logged as its size, never its text."""
    marker = "UNAUTHENTICATED-BODY-MARKER"
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": marker * 40}]})
    answer = httpx.post(
        f"{proxy.url}/v1/chat/completions",
        headers={"authorization": "Bearer not-the-proxy-key", "content-type": "application/json"},
        content=body,
    )
    assert answer.status_code == 401

    def refused():
        return [line for line in proxy.api_log_lines() if line.get("status") == 401]

    assert wait_for(refused)
    assert refused()[-1]["request"]["body_bytes"] == len(body)
    assert marker not in proxy.log_path.read_text()


def test_refused_reload_and_startup_error_name_no_key(proxy, fake, tmp_path):
    """Item 5: an invalid api_keys list is refused on reload (the old configuration stays)
    and at startup, naming the setting and the position, never a key."""
    bad_keys = f"[{NEW_REAL}, [{REAL_1}]]"
    yaml_file = proxy.cwd / "calo.yaml"
    good = yaml_file.read_text()
    yaml_file.write_text(config(fake, bad_keys))
    try:
        assert wait_for(lambda: any("config change refused" in line for line in proxy.output))
    finally:
        yaml_file.write_text(good)
    refused = [line for line in proxy.output if "config change refused" in line]
    assert "api_keys" in refused[0]
    assert secret_hits(SECRETS, ["".join(proxy.output), proxy.log_path.read_text()]) == []
    assert generate(proxy, "after-reload").status_code == 200  # the old configuration stays

    env = prepare(tmp_path, fake)
    (tmp_path / "calo.yaml").write_text(config(fake, bad_keys))
    try:
        started = Proxy(tmp_path, env, [f"reverse:{fake.url}"])
    except RuntimeError as failed:
        output = str(failed)
    else:
        started.stop()
        pytest.fail("mitmdump started with an invalid api_keys list")
    assert "api_keys" in output
    log = (tmp_path / "calo.log").read_text() if (tmp_path / "calo.log").exists() else ""
    assert secret_hits(SECRETS, [output, log]) == []


# ---------------------------------------------------------------- cut off, then shut down


def abort_mid_body(port: int, model: str, key_header: bytes, query: str = "") -> None:
    """Send a request's head with the proxy key and part of its body, then close."""
    head = (
        f"POST {GENERATE.format(model)}{query} HTTP/1.1\r\nhost: x\r\n".encode()
        + key_header
        + b"content-type: application/json\r\ncontent-length: 1000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(head + b'{"contents": [')


@pytest.fixture(scope="module")
def after_shutdown(proxy, fake):
    """Three requests cut off mid-body (the key as x-goog-api-key, Authorization, ?key=) and
    one call still waiting for its upstream when mitmdump stops (SIGTERM). Returns the -w
    flows, the HAR file's text and the console output."""
    abort_mid_body(proxy.port, "aborted-header", f"x-goog-api-key: {PROXY_KEY}\r\n".encode())
    abort_mid_body(proxy.port, "aborted-bearer", f"authorization: Bearer {PROXY_KEY}\r\n".encode())
    abort_mid_body(proxy.port, "aborted-query", b"", f"?key={PROXY_KEY}")

    def aborted():
        return [f for f in flows_of(proxy) if "aborted" in f.request.path and f.error]

    assert wait_for(lambda: len(aborted()) == 3), "the cut-off requests were not stored"
    fake.gate.clear()
    waiting = in_background(lambda: generate(proxy, HOLD))
    assert wait_for(lambda: fake.held >= 1), "the call never reached the upstream"
    proxy.stop()
    fake.gate.set()
    waiting.join(10)
    har = (proxy.cwd / "flows.har").read_text()
    return flows_of(proxy), har, "".join(proxy.output)


def test_aborted_requests_store_no_key(after_shutdown):
    """Item 3: requests cut off mid-body are in -w and HAR, and printed, without the key."""
    flows, har, output = after_shutdown
    aborted = [f for f in flows if "aborted" in f.request.path]
    assert len(aborted) == 3 and all(f.error for f in aborted)
    assert har.count("aborted-") == 3
    assert "aborted-query" in output  # the console printed the cut-off flow
    texts = [t for f in aborted for t in stored_texts(f)]
    assert secret_hits(SECRETS, [*texts, har, output]) == []


def test_in_flight_flow_at_shutdown_holds_no_key(after_shutdown):
    """Item 2: the call still waiting for its upstream when mitmdump stops is written by -w
    with labels where the real key went."""
    flows, har, _ = after_shutdown
    (waiting,) = [f for f in flows if HOLD in f.request.path]
    assert waiting.response is None
    assert waiting.request.headers["x-goog-api-key"].startswith("[calo: default#")
    assert secret_hits(SECRETS, [t for f in flows for t in stored_texts(f)] + [har]) == []
