"""Connect first (calo_addon/connect.py): a refused or silent upstream is answered in the
caller's shape, 502 or 504, with retries logged; a kept-alive client connects once."""

from __future__ import annotations

import socket
import time

import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors

from tests.e2e.launch import free_port
from tests.fake_llm import FakeLLM

GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"


@pytest.fixture
def silent_port():
    """A port that listens but never accepts: its backlog is full, so a connect hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.1)
    probe = socket.socket()
    probe.settimeout(0.3)
    try:
        probe.connect(("127.0.0.1", port))
        hangs = False
    except TimeoutError:
        hangs = True
    except OSError:
        hangs = False
    finally:
        probe.close()
    if not hangs:  # a kernel that resets instead of dropping (tcp_abort_on_overflow=1)
        for s in (*fillers, server):
            s.close()
        pytest.skip("a full listen backlog does not make connects hang on this kernel")
    yield port
    for s in (*fillers, server):
        s.close()


def start(tmp_path, proxy_launcher, url: str, extra: str = ""):
    (tmp_path / "calo.yaml").write_text(
        f"base_url: {url}\napi_keys: [real-key-1]\nproxy_api_keys: [pk]\n{extra}"
    )
    return proxy_launcher(tmp_path, {}, f"reverse:{url}")


def test_refused_connection_is_retried_then_answered_in_shape(tmp_path, proxy_launcher):
    dead = f"127.0.0.1:{free_port()}"
    proxy = start(tmp_path, proxy_launcher, f"http://{dead}", "max_retries: 2\n")
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="pk", max_retries=0)
    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.status_code == 502
    message = raised.value.body["message"]
    assert dead in message and "refused" in message.lower() and "real-key-1" not in message
    line = proxy.api_log_lines()[-1]
    assert line["status"] == 502 and line["retries"] == ["connect: Connection refused"] * 2

    # the next request meets the health record: answered at once, in Gemini's shape this time
    keep = genai.Client(api_key="pk", http_options=genai.types.HttpOptions(base_url=proxy.url))
    with pytest.raises(genai_errors.ServerError) as raised:
        keep.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert raised.value.code == 502 and dead in raised.value.message


def test_connect_timeout_gives_504_in_shape(tmp_path, proxy_launcher, silent_port):
    url = f"http://127.0.0.1:{silent_port}"
    proxy = start(tmp_path, proxy_launcher, url, "connect_timeout: 0.5\n")
    started = time.monotonic()
    response = httpx.post(f"{proxy.url}{GENERATE}?key=pk", json={"contents": []}, timeout=10)
    elapsed = time.monotonic() - started
    assert response.status_code == 504 and elapsed < 3  # not the operating system's minutes
    error = response.json()["error"]
    assert error["code"] == 504 and "0.5s" in error["message"]
    line = proxy.api_log_lines()[-1]
    assert line["status"] == 504 and "retries" not in line  # the timeout bounds the wait


def test_route_connect_timeout_overrides_the_global_one(tmp_path, proxy_launcher, silent_port):
    with FakeLLM() as fake:
        routes = (
            "connect_timeout: 30\nmodel_routes:\n"
            f'  "slow-*": {{url: "http://127.0.0.1:{silent_port}", api_keys: [k], api: gemini, '
            "connect_timeout: 0.3}\n"
        )
        proxy = start(tmp_path, proxy_launcher, fake.url, routes)
        started = time.monotonic()
        response = httpx.post(
            f"{proxy.url}/v1beta/models/slow-1:generateContent?key=pk", json={}, timeout=10
        )
        assert response.status_code == 504 and time.monotonic() - started < 3
        assert "0.3s" in response.json()["error"]["message"]


def test_a_kept_alive_client_connection_connects_upstream_once(tmp_path, proxy_launcher):
    with FakeLLM() as fake:
        proxy = start(tmp_path, proxy_launcher, fake.url)
        with httpx.Client(base_url=proxy.url) as client:
            for _ in range(5):
                r = client.post(f"{GENERATE}?key=pk", json={"contents": []})
                assert r.status_code == 200
        # one check by the addon, then mitmproxy's own connection, reused for all five
        assert fake.connections == 2 and len(fake.requests) == 5
