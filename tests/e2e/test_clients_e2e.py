"""Client keys with limits through the real proxy: each refusal reaches the openai,
google-genai, anthropic and boto3 SDKs as their usual exception (403, 429 with Retry-After,
401), nothing refused reaches an upstream, limits hold under 50 concurrent requests, a stream's
tokens spend the budget, usage survives a restart, and a reload keeps usage while a changed
limit applies to the next request. Every client has its own name, so tests do not share usage.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import anthropic
import boto3
import botocore.exceptions
import httpx
import openai
import pytest
from botocore.config import Config
from google import genai
from google.genai import errors as genai_errors

from tests.e2e.launch import free_port, wait_for
from tests.fake_anthropic import FakeAnthropic
from tests.fake_bedrock import FakeBedrock
from tests.fake_llm import FakeLLM

REAL_AKID, REAL_SECRET = "AKIDREALROUTE", "real-route-secret-value"
TEAM_AKID, TEAM_SECRET = "AKIDTEAMCLIENT", "team-client-secret"
CLAUDE_BEDROCK = "anthropic.claude-3-5-sonnet-20241022-v2:0"
UNRESTRICTED = "unrestricted-key"
YESTERDAY = datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=1)
CLIENTS = {  # name -> (key, settings)
    "oa": ("key-oa", "models: ['gemini-*', 'claude-*'], rpm: 1"),
    "gg": ("key-gg", "models: ['gemini-*'], rpm: 1"),
    "an": ("key-an", "models: ['claude-*'], rpm: 1"),
    "bb": ("key-bb", "models: ['anthropic.*'], rpm: 1"),
    "translated": ("key-tr", "models: ['gemini-*'], rpm: 1"),
    "expired": ("key-expired", f"expires: {YESTERDAY}"),
    "burst": ("key-burst", "rpm: 10"),
    "streamer": ("key-streamer", "tokens_per_day: 10"),
}


@pytest.fixture(scope="module")
def fakes():
    with FakeLLM() as llm, FakeAnthropic() as claude, FakeBedrock({REAL_AKID: REAL_SECRET}) as br:
        yield llm, claude, br


def config(llm, claude, bedrock, api_key: str = "gemini-real", rpm_team: int = 1) -> str:
    clients = "\n".join(f"  {n}: {{key: {k}, {rest}}}" for n, (k, rest) in CLIENTS.items())
    return f"""
api_keys: [{api_key}]
base_url: {llm.url}
proxy_api_keys: [{UNRESTRICTED}]
rollup: {{enabled: false}}
model_routes:
  "claude-*": {{url: "{claude.url}", api_keys: [anthropic-real], api: anthropic}}
  "anthropic.*":
    url: {bedrock.url}
    auth: sigv4
    aws: {{access_key: {REAL_AKID}, secret_key: {REAL_SECRET}, region: us-west-2}}
clients:
{clients}
  team: {{aws: {{access_key: {TEAM_AKID}, secret_key: {TEAM_SECRET}}}, models: ["anthropic.*"], rpm: {rpm_team}}}
"""


@pytest.fixture(scope="module")
def proxy(fakes, tmp_path_factory, proxy_launcher):
    tmp = tmp_path_factory.mktemp("clients")
    (tmp / "calo.yaml").write_text(config(*fakes))
    reverse, explicit = free_port(), free_port()
    return proxy_launcher(tmp, {}, [f"reverse:{fakes[0].url}@{reverse}", f"regular@{explicit}"])


def sent_upstream(fakes) -> int:
    return sum(len(fake.requests) for fake in fakes)


def log_for(proxy, client: str, count: int = 0) -> list[dict]:
    """The client's log lines, once there are at least `count` (lines are flushed a moment
    after each call ends)."""
    lines: list[dict] = []

    def enough() -> bool:
        lines[:] = [line for line in proxy.api_log_lines() if line.get("client") == client]
        return len(lines) >= count

    assert wait_for(enough), lines
    return lines


def openai_client(proxy, key):
    return openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0)


_genai_clients = []  # google-genai closes its HTTP client when the Client is collected


def genai_client(proxy, key):
    options = genai.types.HttpOptions(
        base_url=proxy.url, retry_options=genai.types.HttpRetryOptions(attempts=1)
    )
    _genai_clients.append(genai.Client(api_key=key, http_options=options))
    return _genai_clients[-1]


def anthropic_client(proxy, key):
    return anthropic.Anthropic(base_url=proxy.url, api_key=key, max_retries=0)


def bedrock_client(proxy, *, akid=None, secret=None):
    """SigV4 with `akid`/`secret`, else the bearer key from AWS_BEARER_TOKEN_BEDROCK (TLS)."""
    config = Config(retries={"max_attempts": 1}, read_timeout=20)
    if akid:
        return boto3.client(
            "bedrock-runtime",
            endpoint_url=proxy.url,
            region_name="us-west-2",
            aws_access_key_id=akid,
            aws_secret_access_key=secret,
            config=config,
        )
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=f"https://localhost:{proxy.port}",
        verify=str(proxy.ca_cert),
        region_name="us-west-2",
        config=config,
    )


def chat(client, model="gemini-2.5-flash", **kw):
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], **kw
    )


def converse(client, model=CLAUDE_BEDROCK):
    return client.converse(modelId=model, messages=[{"role": "user", "content": [{"text": "hi"}]}])


def converse_refused(client, model=CLAUDE_BEDROCK) -> dict:
    """boto3's parsed error response to a converse call the proxy refuses."""
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        converse(client, model)
    return refused.value.response


def assert_retry_after(headers, at_most: float = 60) -> None:
    assert 1 <= int(headers["retry-after"]) <= at_most


# ---------------------------------------------------------------- each SDK, each refusal


def test_openai_sdk_403_429_401(proxy, fakes):
    client = openai_client(proxy, "key-oa")
    before = sent_upstream(fakes)
    with pytest.raises(openai.PermissionDeniedError) as denied:
        chat(client, "gpt-4o")
    assert "'gpt-4o'" in denied.value.message
    assert chat(client).choices[0].message.content == "hello from fake"
    with pytest.raises(openai.RateLimitError) as limited:
        chat(client)
    assert_retry_after(limited.value.response.headers)
    with pytest.raises(openai.AuthenticationError, match="expired"):
        chat(openai_client(proxy, "key-expired"))
    assert sent_upstream(fakes) == before + 1  # only the admitted call
    lines = log_for(proxy, "oa", 3)
    assert [line["status"] for line in lines] == [403, 200, 429]
    assert "key-oa" not in json.dumps(proxy.read_log_lines())


def test_genai_sdk_403_429_401(proxy, fakes):
    client = genai_client(proxy, "key-gg")
    before = sent_upstream(fakes)
    with pytest.raises(genai_errors.ClientError) as denied:
        client.models.generate_content(model="gemma-3", contents="hi")
    assert denied.value.code == 403 and denied.value.status == "PERMISSION_DENIED"
    assert "'gemma-3'" in denied.value.message
    assert client.models.generate_content(model="gemini-2.5-flash", contents="hi").text
    with pytest.raises(genai_errors.ClientError) as limited:
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert limited.value.code == 429 and limited.value.status == "RESOURCE_EXHAUSTED"
    assert_retry_after(limited.value.response.headers)
    with pytest.raises(genai_errors.ClientError) as expired:
        genai_client(proxy, "key-expired").models.generate_content(model="g", contents="hi")
    assert expired.value.code == 401 and "expired" in expired.value.message
    assert sent_upstream(fakes) == before + 1


def test_anthropic_sdk_403_429_401(proxy, fakes):
    client = anthropic_client(proxy, "key-an")
    before = sent_upstream(fakes)

    def create(model="claude-sonnet-4-6", key_client=client):
        return key_client.messages.create(
            model=model, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )

    with pytest.raises(anthropic.PermissionDeniedError, match="gemini-2.5-flash"):
        create("gemini-2.5-flash")
    assert create().content[0].text == "echo: hi"
    with pytest.raises(anthropic.RateLimitError) as limited:
        create()
    assert_retry_after(limited.value.response.headers)
    with pytest.raises(anthropic.AuthenticationError, match="expired"):
        create(key_client=anthropic_client(proxy, "key-expired"))
    assert sent_upstream(fakes) == before + 1


def test_boto3_bearer_403_429_401(proxy, fakes, monkeypatch):
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "key-bb")
    client = bedrock_client(proxy)
    before = sent_upstream(fakes)
    denied = converse_refused(client, "amazon.nova-lite-v1:0")
    assert denied["Error"]["Code"] == "AccessDeniedException"
    assert converse(client)["usage"]["totalTokens"] == 11
    limited = converse_refused(client)
    assert limited["Error"]["Code"] == "ThrottlingException"
    assert_retry_after(limited["ResponseMetadata"]["HTTPHeaders"])
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "key-expired")
    expired = converse_refused(bedrock_client(proxy))
    assert expired["Error"]["Code"] == "UnrecognizedClientException"
    assert sent_upstream(fakes) == before + 1


def test_boto3_sigv4_id_of_a_client_gets_its_limits(proxy, fakes):
    """The client `team` is known by its SigV4 access-key id: its models and rpm apply."""
    client = bedrock_client(proxy, akid=TEAM_AKID, secret=TEAM_SECRET)
    before = sent_upstream(fakes)
    denied = converse_refused(client, "amazon.nova-lite-v1:0")
    assert denied["Error"]["Code"] == "AccessDeniedException"
    assert converse(client)["usage"]["totalTokens"] == 11
    assert converse_refused(client)["Error"]["Code"] == "ThrottlingException"
    assert sent_upstream(fakes) == before + 1
    (ok,) = [line for line in log_for(proxy, "team", 3) if line["status"] == 200]
    assert ok["usage"]["total_tokens"] == 11
    assert fakes[2].last_call().access_key == REAL_AKID  # re-signed for the upstream


def test_a_translated_call_is_admitted_and_charged_like_any_other(proxy, fakes):
    """Anthropic Messages from the client, Gemini upstream (base_url): the same rules."""
    client = anthropic_client(proxy, "key-tr")

    def create(model="gemini-2.5-flash"):
        return client.messages.create(
            model=model, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )

    assert create().content[0].text == "hello from fake"
    with pytest.raises(anthropic.RateLimitError):
        create()
    with pytest.raises(anthropic.PermissionDeniedError):
        create("claude-sonnet-4-6")
    ok, *refused = log_for(proxy, "translated", 3)
    assert ok["translated"] and ok["usage"]["total_tokens"] == 12
    assert [line["status"] for line in refused] == [429, 403]


def test_explicit_proxy_mode_enforces_the_same_rules(proxy, fakes):
    url = "https://generativelanguage.googleapis.com/v1beta/models/{}:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    before = sent_upstream(fakes)
    with httpx.Client(proxy=f"http://127.0.0.1:{proxy.ports[1]}", verify=str(proxy.ca_cert)) as c:
        denied = c.post(url.format("gpt-4o"), json=body, headers={"x-goog-api-key": "key-gg"})
        expired = c.post(
            url.format("gemini-x"), json=body, headers={"x-goog-api-key": "key-expired"}
        )
    assert denied.status_code == 403 and denied.json()["error"]["status"] == "PERMISSION_DENIED"
    assert expired.status_code == 401
    assert sent_upstream(fakes) == before


# ---------------------------------------------------------------- concurrency and tokens


def test_fifty_concurrent_requests_against_rpm_10_admit_exactly_10(proxy, fakes):
    before = sent_upstream(fakes)
    url = f"{proxy.url}/v1beta/models/gemini-2.5-flash:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    start = threading.Barrier(50)

    def call(_):
        with httpx.Client(timeout=30) as c:
            start.wait()
            return c.post(url, json=body, headers={"x-goog-api-key": "key-burst"})

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(call, range(50)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 10 + [429] * 40
    assert all(1 <= int(a.headers["retry-after"]) <= 60 for a in answers if a.status_code == 429)
    assert sent_upstream(fakes) == before + 10


def test_a_token_budget_spent_by_a_stream_blocks_the_next_call(proxy, fakes):
    client = openai_client(proxy, "key-streamer")
    # the client does not ask for usage; with a token budget, the proxy asks the upstream
    stream = chat(client, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    sent = fakes[0].last_call().json()
    assert sent["stream_options"] == {"include_usage": True}
    # the call is charged when it ends: its log line is written right after
    log_for(proxy, "streamer", 1)
    with pytest.raises(openai.RateLimitError, match="tokens_per_day") as limited:
        chat(client)
    wait = int(limited.value.response.headers["retry-after"])
    assert 0 < wait <= 86400  # until the next UTC day
    (streamed,) = [line for line in log_for(proxy, "streamer") if line["status"] == 200]
    assert streamed["streaming"] and streamed["usage"]["total_tokens"] == 12


# ---------------------------------------------------------------- restart and reload


def test_usage_survives_a_restart(fakes, tmp_path, proxy_launcher):
    llm = fakes[0]
    (tmp_path / "calo.yaml").write_text(
        f"api_keys: [r]\nbase_url: {llm.url}\n"
        "clients: {budget: {key: key-budget, tokens_per_day: 12}}\n"
    )
    first = proxy_launcher(tmp_path, {}, f"reverse:{llm.url}")
    assert chat(openai_client(first, "key-budget")).usage.total_tokens == 12
    db = tmp_path / "calo-usage.db"

    def written() -> bool:
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT tokens FROM usage WHERE client = 'budget'").fetchall()
        return [tokens for (tokens,) in rows] == [12, 12, 12]  # day, month, total

    assert wait_for(written)
    first.stop()
    second = proxy_launcher(tmp_path, {}, f"reverse:{llm.url}")
    with pytest.raises(openai.RateLimitError, match="tokens_per_day"):
        chat(openai_client(second, "key-budget"))


def test_reload_keeps_usage_and_applies_a_changed_limit(fakes, tmp_path, proxy_launcher):
    llm, claude, bedrock = fakes
    yaml_file = tmp_path / "calo.yaml"
    yaml_file.write_text(config(llm, claude, bedrock, api_key="before"))
    proxy = proxy_launcher(tmp_path, {}, f"reverse:{llm.url}")
    client = bedrock_client(proxy, akid=TEAM_AKID, secret=TEAM_SECRET)
    converse(client)
    with pytest.raises(botocore.exceptions.ClientError, match="ThrottlingException"):
        converse(client)

    yaml_file.write_text(config(llm, claude, bedrock, api_key="after", rpm_team=2))
    probe = openai_client(proxy, UNRESTRICTED)

    def reloaded() -> bool:  # the new api_keys are in use: the new configuration is
        chat(probe)
        return llm.last_call().headers["authorization"] == "Bearer after"

    assert wait_for(reloaded)
    converse(client)  # rpm 2 now, and the first call still counts
    with pytest.raises(botocore.exceptions.ClientError, match="ThrottlingException"):
        converse(client)
