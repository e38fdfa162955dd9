"""What the proxy answers and records is what happened (issue 11, items 1-6): the upstream's
own last answer after failover; a proxy key beside a client's SigV4 signature; passthrough
signing for the configured default region; a stream closed right after [DONE] logged as sent;
summariser calls logged and counted; one log schema that jq can filter."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess

import httpx
import pytest
from anthropic import AnthropicBedrock

from tests.e2e.launch import Proxy, WebView, free_port, wait_for, web_args
from tests.fake_bedrock import FakeBedrock
from tests.fake_llm import FakeLLM
from tests.fake_server import FakeServer, Recorded, Wire

PROXY_KEY = "proxy-key-correct-0001"
REAL_1, REAL_2 = "real-gemini-correct-aaaa", "real-gemini-correct-bbbb"
EX_1, EX_2 = "real-exhausted-cccc", "real-exhausted-dddd"
REAL_AKID, REAL_SECRET = "AKIDCORRECTREAL", "correct-real-aws-secret"
PASS_AKID, PASS_SECRET = "AKIDCORRECTPASS", "correct-pass-aws-secret"
CLIENT_AKID, CLIENT_SECRET = "AKIDCLIENTOWN", "client-own-aws-secret"  # unknown to the proxy
REGION = "eu-central-1"  # GEMINI_CALO_BEDROCK_REGION
EXHAUSTED = {
    "error": {
        "code": 429,
        "message": "Resource has been exhausted (e.g. check quota).",
        "status": "RESOURCE_EXHAUSTED",
    }
}
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


class Exhausted(FakeServer):
    """A Gemini upstream that answers every call 429 RESOURCE_EXHAUSTED with its own headers."""

    def handle(self, request: Recorded, wire: Wire) -> None:
        headers = {"retry-after": "17", "x-upstream-own": "kept"}
        wire.json(EXHAUSTED, 429, headers)


class DoneThenWait(FakeServer):
    """An OpenAI stream whose body ends only after `release`: [DONE] reaches the client first,
    so the client always closes before the upstream's stream ends (the race, made certain)."""

    def handle(self, request: Recorded, wire: Wire) -> None:
        chunk = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "model": "done-race",
            "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}],
        }
        events = [b"data: %s\n\n" % json.dumps(chunk).encode(), b"data: [DONE]\n\n", b":\n\n"]
        wire.stream("text/event-stream", events)


@pytest.fixture(scope="module")
def fakes():
    with (
        FakeLLM() as llm,
        Exhausted() as exhausted,
        DoneThenWait() as done,
        FakeBedrock({REAL_AKID: REAL_SECRET, PASS_AKID: PASS_SECRET}) as bedrock,
    ):
        yield llm, exhausted, done, bedrock


@pytest.fixture(scope="module")
def web_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def proxy(fakes, web_port, tmp_path_factory, proxy_launcher) -> Proxy:
    llm, exhausted, done, bedrock = fakes
    tmp = tmp_path_factory.mktemp("correct")
    (tmp / "calo.yaml").write_text(
        f"""
base_url: {llm.url}
api_keys: [{REAL_1}, {REAL_2}]
proxy_api_keys: [{PROXY_KEY}]
rollup: {{enabled: true, threshold: 200, summarizer_model: gemini-summarizer}}
model_routes:
  "exhausted-*": {{url: "{exhausted.url}", api_keys: [{EX_1}, {EX_2}], auth: x-goog-api-key}}
  "done-race": {{url: "{done.url}", api_keys: [done-key], auth: bearer}}
  "anthropic.*":
    url: {bedrock.url}
    auth: sigv4
    aws: {{access_key: {REAL_AKID}, secret_key: {REAL_SECRET}, region: us-west-2}}
  "amazon.*": {{url: "{bedrock.url}", auth: bedrock-passthrough}}
"""
    )
    env = {"GEMINI_CALO_BEDROCK_REGION": REGION}
    return proxy_launcher(tmp, env, f"reverse:{llm.url}", web_args(web_port), tool="mitmweb")


def test_after_failover_the_client_gets_the_upstreams_last_answer(proxy, fakes):
    """Item 1: every key answers 429 with Retry-After: 17: each key is tried once, then the
    client gets the upstream's own status, headers and body, not the proxy's 429."""
    _, exhausted, _, _ = fakes
    exhausted.clear()
    answer = httpx.post(
        f"{proxy.url}/v1beta/models/exhausted-model:generateContent",
        headers={"x-goog-api-key": PROXY_KEY},
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    )
    assert answer.status_code == 429
    assert answer.json() == EXHAUSTED
    assert answer.headers["retry-after"] == "17"
    assert answer.headers["x-upstream-own"] == "kept"
    assert [r.headers["x-goog-api-key"] for r in exhausted.requests] == [EX_1, EX_2]


def test_proxy_key_beside_a_client_sigv4_signature_is_accepted(proxy, fakes):
    """Item 2: AnthropicBedrock signs with the client's own AWS keys (no proxy_aws_credentials
    here) and brings the proxy key as x-api-key: the proxy key authenticates; the signature is
    stripped and the route signs with its own credentials."""
    *_, bedrock = fakes
    bedrock.clear()
    client = AnthropicBedrock(
        aws_access_key=CLIENT_AKID,
        aws_secret_key=CLIENT_SECRET,
        aws_region="us-west-2",
        base_url=proxy.url,
        default_headers={"x-api-key": PROXY_KEY},
        max_retries=0,
    )
    message = client.messages.create(
        model="anthropic.claude-3-haiku-20240307-v1:0",
        max_tokens=64,
        messages=[{"role": "user", "content": "hi"}],
    )
    assert message.content[0].text == "hello from fake bedrock"
    (seen,) = bedrock.requests
    assert seen.access_key == REAL_AKID and seen.signature_ok is True
    assert CLIENT_AKID not in json.dumps(seen.headers) and PROXY_KEY not in json.dumps(seen.headers)


def test_passthrough_signs_for_the_configured_default_region(proxy, fakes):
    """Item 3: bedrock-passthrough to a non-AWS url, X-AWS-Access-Key/Secret-Key without
    X-AWS-Region: signed for GEMINI_CALO_BEDROCK_REGION, not us-east-1."""
    *_, bedrock = fakes
    bedrock.clear()
    answer = httpx.post(
        f"{proxy.url}/model/amazon.nova-correct/converse",
        headers={
            "authorization": f"Bearer {PROXY_KEY}",
            "x-aws-access-key": PASS_AKID,
            "x-aws-secret-key": PASS_SECRET,
        },
        json={"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
    )
    assert answer.status_code == 200, answer.text
    (seen,) = bedrock.requests
    assert seen.access_key == PASS_AKID and seen.signature_ok is True
    assert f"/{REGION}/bedrock/aws4_request" in seen.headers["authorization"]


def stream_until_done(port: int) -> None:
    """One streamed chat call on a raw socket, closed the moment [DONE] arrives."""
    body = json.dumps(
        {"model": "done-race", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
            + f"authorization: Bearer {PROXY_KEY}\r\n".encode()
            + b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
            + body
        )
        seen = b""
        while b"data: [DONE]" not in seen:
            chunk = s.recv(65536)
            assert chunk, "the stream ended before [DONE]"
            seen += chunk


def test_stream_closed_right_after_done_is_logged_as_sent(proxy, fakes):
    """Item 4: 60 clients close the moment [DONE] arrives; for every other one the upstream's
    stream ends only after that (the race made certain), for the rest right after [DONE]. Each
    call is logged with the status the client got (200) and no error."""
    _, _, done, _ = fakes
    runs = 60
    for i in range(runs):
        done.hold_last_chunk = i % 2 == 0
        done.release.clear()
        stream_until_done(proxy.port)
        done.release.set()

    def lines():
        return [x for x in proxy.api_log_lines() if x.get("requested_model") == "done-race"]

    assert wait_for(lambda: len(lines()) == runs)
    wrong = [x for x in lines() if x["status"] != 200 or x.get("error")]
    assert wrong == []


def test_summariser_calls_are_logged_and_counted(proxy, fakes, web_port):
    """Item 5: a summary is an API call: a log line with operation rollup.summary, its route,
    key label, usage and latency; and calo.status counts it."""
    text = "Remember every detail of this long request, please. " * 6
    answer = httpx.post(
        f"{proxy.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {PROXY_KEY}"},
        json={"model": "gemini-chat", "messages": [{"role": "user", "content": text}]},
    )
    assert answer.status_code == 200

    def summaries():
        return [x for x in proxy.api_log_lines() if x.get("operation") == "rollup.summary"]

    assert wait_for(summaries), "no log line for the summariser's call"
    line = summaries()[0]
    assert line["status"] == 200 and line["route"] == "default"
    assert line["key_label"].startswith("default#")
    assert line["usage"]["input_tokens"] == 7 and line["latency_ms"] > 0
    assert line["effective_model"] == "gemini-summarizer"
    status = WebView(web_port).command("calo.status")
    assert f"summariser calls: {len(summaries())}" in status


def test_every_log_line_has_kind_and_one_time_format(proxy):
    """Item 6: call lines and diagnostics alike carry "kind" and an ISO 8601 UTC time with
    milliseconds, so `jq 'select(.kind=="call")'` picks exactly the calls."""
    lines = proxy.read_log_lines()
    kinds = {line.get("kind") for line in lines}
    assert kinds == {"call", "diagnostic"}, kinds  # the tests above wrote both
    assert [line["time"] for line in lines if not TIME.match(line.get("time", ""))] == []
    calls = [line for line in lines if line["kind"] == "call"]
    assert all("api" in line for line in calls)
    jq = shutil.which("jq")
    if jq is None:
        return
    picked = subprocess.run(
        [jq, "-c", 'select(.kind=="call")', str(proxy.log_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert [json.loads(x) for x in picked] == calls
