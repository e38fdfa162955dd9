"""The openai and google-genai SDKs, unchanged, through the real proxy with a proxy key.

The fake upstream sees only real keys, rotated in order; the proxy key never reaches it.
Streams arrive chunk by chunk: the client holds the first chunk while the upstream still
holds back its last.
"""

from __future__ import annotations

import json
import threading

import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors

from tests.e2e.launch import wait_for
from tests.fake_llm import FakeLLM
from tests.fake_openai import default_reply

PROXY_KEY = "proxy-key-a"
REAL = ["real-key-1", "real-key-2", "real-key-3"]


@pytest.fixture(scope="module")
def fake():
    with FakeLLM() as fake:
        yield fake


@pytest.fixture(scope="module")
def proxy(fake, tmp_path_factory, proxy_launcher):
    env = {
        "GEMINI_CALO_API_KEYS": ",".join(REAL),
        "GEMINI_CALO_PROXY_API_KEYS": PROXY_KEY,
        "GEMINI_CALO_BASE_URL": fake.url,
        "GEMINI_CALO_ROLLUP": "off",
    }
    return proxy_launcher(tmp_path_factory.mktemp("sdks"), env, f"reverse:{fake.url}")


@pytest.fixture(autouse=True)
def fresh(fake):
    fake.clear()
    fake.hold_last_chunk = False


def openai_client(proxy, key=PROXY_KEY):
    return openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0)


_clients = []  # google-genai closes its HTTP client when the Client is collected


def genai_client(proxy, key=PROXY_KEY, api_version=None):
    options = genai.types.HttpOptions(base_url=proxy.url, api_version=api_version)
    _clients.append(genai.Client(api_key=key, http_options=options))
    return _clients[-1]


def assert_rotated_real_keys(fake, header):
    sent = [r.headers.get(header, "") for r in fake.requests]
    values = [v.removeprefix("Bearer ") for v in sent]
    start = REAL.index(values[0])
    assert values == [REAL[(start + i) % 3] for i in range(len(values))]
    assert PROXY_KEY not in json.dumps([r.headers for r in fake.requests])
    assert not any(PROXY_KEY.encode() in r.body for r in fake.requests)
    assert not any("key" in r.query for r in fake.requests)


def test_openai_sdk_chat_stream_embeddings_models(proxy, fake):
    client = openai_client(proxy)
    chat = client.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}]
    )
    assert chat.choices[0].message.content == "hello from fake"
    stream = client.chat.completions.create(
        model="gemini-2.5-flash",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "chunk 0 chunk 1 chunk 2 "
    assert client.embeddings.create(model="text-embedding-004", input="x").data[0].embedding == [
        0.1,
        0.2,
    ]
    assert [m.id for m in client.models.list()] == ["gpt-4o"]

    # Google's OpenAI layer lives under /v1beta/openai/ on the default (Gemini) upstream
    assert [r.path for r in fake.requests] == [
        "/v1beta/openai/chat/completions",
        "/v1beta/openai/chat/completions",
        "/v1beta/openai/embeddings",
        "/v1beta/openai/models",
    ]
    assert_rotated_real_keys(fake, "authorization")
    chats = proxy.api_log_lines(count=2, where=lambda line: line["operation"] == "chat.completions")
    usage = [line["usage"] for line in chats]
    assert usage[-2:] == [{"input_tokens": 9, "output_tokens": 3, "total_tokens": 12}] * 2


def test_genai_sdk_generate_stream_embed_count(proxy, fake):
    client = genai_client(proxy)
    assert (
        client.models.generate_content(model="gemini-2.5-flash", contents="hi").text
        == "hello from fake"
    )
    chunks = [
        c.text
        for c in client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi")
    ]
    assert chunks == ["chunk 0 ", "chunk 1 ", "chunk 2 "]
    embedded = client.models.embed_content(model="text-embedding-004", contents="x")
    assert embedded.embeddings[0].values[:2] == [0.1, 0.2]
    assert client.models.count_tokens(model="gemini-2.5-flash", contents="hi").total_tokens == 42
    ops = [r.path.rsplit(":", 1)[1] for r in fake.requests]
    assert ops[:2] == ["generateContent", "streamGenerateContent"] and ops[3] == "countTokens"
    assert ops[2] in ("embedContent", "batchEmbedContents")  # the SDK picks per version
    assert_rotated_real_keys(fake, "x-goog-api-key")
    generated = proxy.api_log_lines(
        count=2, where=lambda x: x["operation"] in ("generateContent", "streamGenerateContent")
    )
    lines = {line["operation"]: line for line in generated}
    assert lines["streamGenerateContent"]["usage"]["total_tokens"] == 12
    assert lines["generateContent"]["key_label"].startswith("default#")
    for key in (*REAL, PROXY_KEY):
        assert key not in proxy.log_path.read_text()


@pytest.mark.parametrize("api_version", ["v1", "v1beta"])
def test_genai_paths_per_api_version_and_model_listing(proxy, fake, api_version):
    """Both API versions pass through as sent; GET /vN/models with x-goog-api-key is Gemini's
    listing, not OpenAI's (SPEC 3), and an OpenAI client's embeddings body is left as sent."""
    client = genai_client(proxy, api_version=api_version)
    assert client.models.get(model="gemini-2.5-flash").name == "models/gemini-2.5-flash"
    assert [m.name for m in client.models.list()] == ["models/gemini-2.5-flash"]
    client.models.embed_content(model="text-embedding-004", contents=["a", "b"])
    prefix = f"/{api_version}/models"
    assert [(r.method, r.path) for r in fake.requests] == [
        ("GET", f"{prefix}/gemini-2.5-flash"),
        ("GET", prefix),
        ("POST", f"{prefix}/text-embedding-004:batchEmbedContents"),
    ]
    assert_rotated_real_keys(fake, "x-goog-api-key")
    fake.clear()
    openai_client(proxy).embeddings.create(model="text-embedding-004", input="x")
    assert fake.requests[0].json()["encoding_format"] == "base64"  # the SDK's own default


def _first_chunk_before_last_is_sent(fake, first_chunk):
    got = first_chunk()
    assert got, "no first chunk"
    held = not fake.last_chunk_sent.is_set()
    fake.release.set()
    return held


def test_openai_stream_is_incremental(proxy, fake):
    fake.hold_last_chunk = True
    stream = openai_client(proxy).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert _first_chunk_before_last_is_sent(fake, lambda: next(iter(stream)))
    assert len(list(stream)) >= 1


def test_genai_stream_is_incremental(proxy, fake):
    fake.hold_last_chunk = True
    stream = genai_client(proxy).models.generate_content_stream(
        model="gemini-2.5-flash", contents="hi"
    )
    assert _first_chunk_before_last_is_sent(fake, lambda: next(iter(stream)).text)
    assert [c.text for c in stream] == ["chunk 1 ", "chunk 2 "]


@pytest.mark.parametrize("alt", ["?alt=sse", ""])
def test_raw_gemini_streams_are_incremental(proxy, fake, alt):
    url = f"{proxy.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent{alt}"
    fake.hold_last_chunk = True
    with httpx.stream(
        "POST", url, headers={"x-goog-api-key": PROXY_KEY}, json={"contents": []}
    ) as r:
        pieces = r.iter_raw()
        first = next(pieces)
        assert b"chunk 0" in first and not fake.last_chunk_sent.is_set()
        fake.release.set()
        rest = b"".join(pieces)
    assert b"chunk 2" in rest


def test_sdk_errors_in_their_own_shape(proxy, fake):
    with pytest.raises(openai.AuthenticationError) as err:
        openai_client(proxy, "wrong").chat.completions.create(model="m", messages=[])
    assert err.value.body["code"] == "invalid_api_key"
    with pytest.raises(genai_errors.ClientError) as gerr:
        genai_client(proxy, "wrong").models.generate_content(model="gemini-2.5-flash", contents="x")
    assert gerr.value.code == 401 and gerr.value.status == "UNAUTHENTICATED"
    assert fake.requests == []


@pytest.mark.parametrize(
    "how",
    [
        {"headers": {"authorization": f"Bearer {PROXY_KEY}"}},
        {"headers": {"x-goog-api-key": PROXY_KEY}},
        {"headers": {"x-api-key": PROXY_KEY}},
        {"params": {"key": PROXY_KEY}},
    ],
)
def test_proxy_key_from_each_of_the_four_places(proxy, fake, how):
    r = httpx.post(f"{proxy.url}/v1beta/models/gemini-2.5-flash:countTokens", json={}, **how)
    assert r.status_code == 200 and r.json() == {"totalTokens": 42}
    (seen,) = fake.requests
    assert seen.headers["x-goog-api-key"] in REAL and "authorization" not in seen.headers
    assert "x-api-key" not in seen.headers and seen.query == {}


@pytest.mark.parametrize(
    ("path", "body", "status", "shape"),
    [
        ("/v1beta/models/gemini-2.5-flash:generateContent", b"{}", 401, "gemini"),
        ("/v1/chat/completions", b"{}", 401, "openai"),
        ("/etc/passwd", b"", 404, "gemini"),
        ("/v2/whatever", b"{}", 404, "gemini"),
    ],
)
def test_bad_requests_without_key_or_path(proxy, fake, path, body, status, shape):
    r = httpx.post(f"{proxy.url}{path}", content=body) if body else httpx.get(f"{proxy.url}{path}")
    assert r.status_code == status
    error = r.json()["error"]
    assert set(error) == (
        {"code", "message", "status"} if shape == "gemini" else {"message", "type", "param", "code"}
    )
    assert fake.requests == []


@pytest.mark.parametrize(
    "path", ["/v1/chat/completions", "/v1beta/models/gemini-2.5-flash:generateContent"]
)
def test_malformed_json_gets_400_and_nothing_upstream(proxy, fake, path):
    r = httpx.post(
        f"{proxy.url}{path}", content=b"{not json", headers={"x-goog-api-key": PROXY_KEY}
    )
    assert r.status_code == 400 and "not valid JSON" in r.text
    assert fake.requests == []


def test_health_needs_no_key_and_is_never_forwarded(proxy, fake):
    r = httpx.get(f"{proxy.url}/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"} and fake.requests == []


def test_upstream_errors_pass_through_unchanged(proxy, fake):
    body = b'{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}'
    fake.scripted = [(400, body)]
    r = httpx.post(
        f"{proxy.url}/v1beta/models/gemini-2.5-flash:generateContent",
        headers={"x-goog-api-key": PROXY_KEY},
        json={"contents": []},
    )
    assert r.status_code == 400 and r.content == body


def test_gzip_upstream_is_decoded_by_the_clients(tmp_path, proxy_launcher):
    with FakeLLM(gzip_json=True) as fake:
        env = {"GEMINI_CALO_API_KEYS": "k", "GEMINI_CALO_BASE_URL": fake.url}
        proxy = proxy_launcher(tmp_path, env, f"reverse:{fake.url}")
        chat = openai.OpenAI(
            base_url=f"{proxy.url}/v1", api_key="x", max_retries=0
        ).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert chat.choices[0].message.content == "hello from fake"
        assert (
            genai_client(proxy, "x").models.generate_content(model="g", contents="hi").text
            == "hello from fake"
        )
        usage = [line["usage"] for line in proxy.api_log_lines(count=2)]
        assert usage[-2:] == [
            {"input_tokens": 9, "output_tokens": 3, "total_tokens": 12},
            {"input_tokens": 7, "output_tokens": 5, "total_tokens": 12},
        ]


def test_model_override_and_routes(tmp_path, proxy_launcher):
    with FakeLLM() as base, FakeLLM() as other:
        (tmp_path / "calo.yaml").write_text(
            f"""
base_url: {base.url}
api_keys: [base-key]
model_routes:
  "gpt-4*": {{url: "{other.url}", api_keys: [route-key-1, route-key-2], auth: bearer}}
  "gemini-route-*": {{url: "{other.url}", api_keys: [goog-route-key], auth: x-goog-api-key}}
"""
        )
        proxy = proxy_launcher(tmp_path, {}, f"reverse:{base.url}")
        client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="x", max_retries=0)
        for _ in range(2):
            client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
            )
        client.chat.completions.create(
            model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}]
        )
        genai_client(proxy, "x").models.generate_content(model="gemini-route-1", contents="hi")
        assert [(r.path, r.headers.get("authorization")) for r in other.requests[:2]] == [
            ("/v1/chat/completions", "Bearer route-key-1"),
            ("/v1/chat/completions", "Bearer route-key-2"),
        ]
        assert other.requests[2].headers["x-goog-api-key"] == "goog-route-key"
        assert [r.path for r in base.requests] == ["/v1beta/openai/chat/completions"]

    with FakeLLM() as fake:
        env = {
            "GEMINI_CALO_API_KEYS": "k",
            "GEMINI_CALO_BASE_URL": fake.url,
            "GEMINI_CALO_MODEL_OVERRIDE": "gemini-override",
        }
        proxy = proxy_launcher(
            tmp_path / "override" if (tmp_path / "override").mkdir() is None else tmp_path,
            env,
            f"reverse:{fake.url}",
        )
        genai_client(proxy, "x").models.generate_content(model="gemini-2.5-flash", contents="hi")
        openai.OpenAI(
            base_url=f"{proxy.url}/v1", api_key="x", max_retries=0
        ).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert fake.requests[0].path.endswith("/models/gemini-override:generateContent")
        assert fake.requests[1].json()["model"] == "gemini-override"
        line = proxy.api_log_lines(count=2)[-1]
        assert (line["requested_model"], line["effective_model"]) == ("gpt-4o", "gemini-override")


def test_concurrent_clients_each_get_their_own_stream(proxy, fake, monkeypatch):
    """Eight streams under way at once (the fake holds each one's last chunk until all have
    begun), each asking its own question: each gets the echo of its own, whole."""
    monkeypatch.setattr(fake, "chat_default_reply", lambda body, stream: default_reply(body))
    fake.hold_last_chunk = True
    results, errors = {}, []

    def run(i):
        try:
            question = f"question {i}: " + "why " * i
            stream = openai_client(proxy).chat.completions.create(
                model="m", messages=[{"role": "user", "content": question}], stream=True
            )
            results[i] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    assert wait_for(lambda: len(fake.requests) == 8)  # every stream has begun
    fake.release.set()
    for t in threads:
        t.join()
    assert errors == []
    assert results == {i: f"echo: question {i}: " + "why " * i for i in range(8)}


def test_debug_log_has_headers_and_bodies_with_secrets_redacted(tmp_path, proxy_launcher):
    with FakeLLM() as fake:
        env = {
            "GEMINI_CALO_API_KEYS": "real-debug-key",
            "GEMINI_CALO_PROXY_API_KEYS": "proxy-debug-key",
            "GEMINI_CALO_BASE_URL": fake.url,
            "GEMINI_CALO_LOG_LEVEL": "DEBUG",
        }
        proxy = proxy_launcher(tmp_path, env, f"reverse:{fake.url}")
        client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="proxy-debug-key", max_retries=0)
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "say real-debug-key"}]
        )
        (line,) = proxy.api_log_lines()
        assert line["request"]["headers"]["authorization"] == "[REDACTED]"
        assert "say [REDACTED]" in line["request"]["body"]  # a key inside a body is scrubbed too
        assert "hello from fake" in line["response"]["body"]
        text = proxy.log_path.read_text()
        assert "real-debug-key" not in text and "proxy-debug-key" not in text
