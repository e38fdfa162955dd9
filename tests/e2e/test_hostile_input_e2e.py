"""Hostile input gets a clear refusal in the caller's shape, and nothing goes upstream."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from tests.fake_bedrock import FakeBedrock

PROXY_KEY = "proxy-key-hostile"
REAL_KEY = "real-key-hostile-123"


@pytest.fixture(scope="module")
def fake():
    with FakeBedrock() as fake:
        yield fake


@pytest.fixture(scope="module")
def proxy(fake, tmp_path_factory, proxy_launcher):
    tmp = tmp_path_factory.mktemp("hostile")
    env = {
        "GEMINI_CALO_API_KEYS": REAL_KEY,
        "GEMINI_CALO_PROXY_API_KEYS": PROXY_KEY,
        "GEMINI_CALO_BASE_URL": fake.url,
        "GEMINI_CALO_MAX_BODY_BYTES": "4096",
    }
    return proxy_launcher(tmp, env, f"reverse:{fake.url}")


def raw_request(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(request)  # "connection: close": the proxy closes after its answer
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


@pytest.mark.parametrize(
    "segment",
    ["..%2F..%2Fetc", "%2e%2e", "gemini%2Fother", "gemini%00x", "gemini%0d%0aX-Evil:1", "a..b"],
)
def test_model_names_that_leave_their_segment_get_400(proxy, fake, segment):
    fake.clear()
    response = httpx.post(
        f"{proxy.url}/v1beta/models/{segment}:generateContent",
        headers={"x-goog-api-key": PROXY_KEY},
        json={"contents": []},
    )
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert fake.requests == []


def test_bedrock_model_id_with_traversal_gets_400_in_bedrock_shape(proxy, fake):
    fake.clear()
    response = httpx.post(
        f"{proxy.url}/model/..%2F..%2Fadmin/invoke",
        headers={"authorization": f"Bearer {PROXY_KEY}"},
        content=b"{}",
    )
    assert response.status_code == 400
    assert response.headers["x-amzn-errortype"] == "ValidationException"
    assert fake.requests == []


def test_host_and_forwarded_headers_cannot_steer_the_upstream(proxy, fake):
    fake.clear()
    body = json.dumps({"contents": []}).encode()
    answer = raw_request(
        proxy.port,
        b"POST /v1beta/models/gemini-x:generateContent HTTP/1.1\r\n"
        b"Host: evil.example:8443\r\nX-Forwarded-Host: evil.example\r\n"
        b"X-Forwarded-Proto: https\r\nForwarded: host=evil.example\r\n"
        + f"x-goog-api-key: {PROXY_KEY}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
        + body,
    )
    assert answer.startswith(b"HTTP/1.1 200")
    (seen,) = fake.requests
    assert seen.headers["host"] == f"127.0.0.1:{fake.port}"
    assert seen.headers["x-goog-api-key"] == REAL_KEY


def test_oversized_body_gets_413(proxy, fake):
    fake.clear()
    response = httpx.post(
        f"{proxy.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {PROXY_KEY}"},
        content=b'{"model": "m", "pad": "' + b"x" * 5000 + b'"}',
    )
    assert response.status_code == 413  # mitmproxy's body_size_limit, before reading the body
    assert fake.requests == []


def test_no_key_in_errors_logs_or_comments(proxy, fake):
    fake.clear()
    wrong = httpx.post(
        f"{proxy.url}/v1beta/models/gemini-x:generateContent",
        headers={"x-goog-api-key": "guessed-" + PROXY_KEY},
        json={"contents": []},
    )
    assert wrong.status_code == 401 and PROXY_KEY not in wrong.text
    ok = httpx.post(
        f"{proxy.url}/v1beta/models/gemini-x:generateContent?key={PROXY_KEY}", json={"contents": []}
    )
    assert ok.status_code == 200 and "key=" not in fake.last_call().path
    # both calls' lines reach the file a moment after their answers: wait for them
    assert [line["status"] for line in proxy.api_log_lines(count=2)] == [401, 200]
    log = proxy.log_path.read_text()
    assert PROXY_KEY not in log and REAL_KEY not in log
    assert PROXY_KEY not in "".join(proxy.output) and REAL_KEY not in "".join(proxy.output)
