"""Hostile or odd input meets a strict proxy (issue 10, items 11-15): SigV4 bound to the body
and to Bedrock's scope; API hosts recognised in any spelling in explicit mode; a key that is
not UTF-8; a malformed message the rollup cannot read; turns that differ only by an image."""

from __future__ import annotations

import base64
import hashlib
import json
import socket

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.e2e.launch import Proxy, free_port, wait_for
from tests.fake_bedrock import FakeBedrock
from tests.fake_llm import FakeLLM
from tests.fake_openai import FakeOpenAI

PROXY_KEY = "proxy-key-strict-0001"
REAL_GEMINI, REAL_OPENAI = "real-gemini-strict-aaaa", "real-openai-strict-bbbb"
PROXY_AKID, PROXY_SECRET = "AKIDSTRICTPROXY", "strict-proxy-aws-secret"
REAL_AKID, REAL_SECRET = "AKIDSTRICTREAL", "strict-real-aws-secret"
CLAUDE = "anthropic.claude-strict"
CONVERSE = f"/model/{CLAUDE}/converse"
SUMMARY = "Summary of the earlier part of this conversation:"


@pytest.fixture(scope="module")
def fakes():
    with (
        FakeLLM() as llm,
        FakeOpenAI(keys={REAL_OPENAI}) as openai,
        FakeBedrock({REAL_AKID: REAL_SECRET}) as bedrock,
    ):
        yield llm, openai, bedrock


@pytest.fixture(scope="module")
def proxy(fakes, tmp_path_factory, proxy_launcher) -> Proxy:
    llm, openai, bedrock = fakes
    tmp = tmp_path_factory.mktemp("strict")
    (tmp / "calo.yaml").write_text(
        f"""
base_url: {llm.url}
api_keys: [{REAL_GEMINI}]
proxy_api_keys: [{PROXY_KEY}]
proxy_aws_credentials: {{{PROXY_AKID}: {PROXY_SECRET}}}
rollup: {{enabled: true, threshold: 200}}
model_routes:
  "anthropic.*":
    url: {bedrock.url}
    auth: sigv4
    aws: {{access_key: {REAL_AKID}, secret_key: {REAL_SECRET}, region: us-east-1}}
  "gpt-*": {{url: "http://127.0.0.1:{openai.port}", api_keys: [{REAL_OPENAI}], auth: bearer}}
"""
    )
    return proxy_launcher(tmp, {}, [f"reverse:{llm.url}@{free_port()}", f"regular@{free_port()}"])


# ---------------------------------------------------------------- 11. SigV4


def signed(proxy, body: bytes, service: str = "bedrock", content_sha: str | None = None):
    """A Converse request signed with the proxy's AWS credentials as botocore signs it; with
    `content_sha`, X-Amz-Content-SHA256 is set to it and signed too."""
    headers = {"content-type": "application/json"}
    if content_sha is not None:
        headers["x-amz-content-sha256"] = content_sha
    request = AWSRequest("POST", f"{proxy.url}{CONVERSE}", headers=headers, data=body)
    SigV4Auth(Credentials(PROXY_AKID, PROXY_SECRET), service, "us-east-1").add_auth(request)
    return dict(request.headers.items())


def converse_body(text: str) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": [{"text": text}]}]}).encode()


def test_sigv4_is_bound_to_the_body_and_to_bedrocks_scope(proxy, fakes):
    """Item 11: the signed payload hash must be the body's (a swapped body and UNSIGNED-PAYLOAD
    are refused), and the scope must be bedrock's (s3, sts refused); all with 403 and nothing
    sent upstream. A request signed as AWS clients do passes."""
    _, _, bedrock = fakes
    body, swapped = converse_body("the signed body"), converse_body("another body")
    bedrock.clear()
    ok = httpx.post(f"{proxy.url}{CONVERSE}", headers=signed(proxy, body), content=body)
    assert ok.status_code == 200, ok.text
    assert bedrock.last_call().signature_ok is True

    refused = {
        "swapped body": (
            signed(proxy, body, content_sha=hashlib.sha256(body).hexdigest()),
            swapped,
        ),
        "unsigned payload": (signed(proxy, swapped, content_sha="UNSIGNED-PAYLOAD"), swapped),
        "s3 scope": (signed(proxy, body, "s3"), body),
        "sts scope": (signed(proxy, body, "sts"), body),
    }
    bedrock.clear()
    statuses = {
        case: httpx.post(f"{proxy.url}{CONVERSE}", headers=headers, content=content).status_code
        for case, (headers, content) in refused.items()
    }
    assert statuses == dict.fromkeys(refused, 403)
    assert bedrock.requests == []


# ---------------------------------------------------------------- raw requests


def raw_request(port: int, head: bytes, body: bytes) -> tuple[int, bytes]:
    """(status, body) of one raw HTTP/1.1 request (connection: close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(
            head
            + b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body)
            + b"connection: close\r\n\r\n"
            + body
        )
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer.partition(b"\r\n\r\n")[2]


# ---------------------------------------------------------------- 12. explicit mode's hosts


def through_proxy(proxy, host: str, model: str) -> tuple[int, bytes]:
    """A chat call to http://{host} through the explicit listener, the host spelt exactly as
    given (SDKs lower-case it; a hand-made request need not)."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()
    head = (
        f"POST http://{host}/v1/chat/completions HTTP/1.1\r\nhost: {host}\r\n"
        f"authorization: Bearer {PROXY_KEY}\r\n"
    ).encode()
    return raw_request(proxy.ports[1], head, body)


@pytest.mark.parametrize("host", ["API.OPENAI.COM", "api.openai.com.", "localhost:{port}"])
def test_explicit_mode_knows_api_hosts_in_any_spelling(proxy, fakes, host):
    """Item 12: a host compares case-insensitively, without a trailing dot, and `localhost`
    is the route named `127.0.0.1`: the call is authenticated and routed (the real key goes
    out, the proxy key never does). An unrouted call to api.openai.com needs a route for that
    host: without one it is refused in OpenAI's shape."""
    _, openai, _ = fakes
    openai.clear()
    target = host.format(port=openai.port)
    status, answer = through_proxy(proxy, target, "gpt-4o")
    assert status == 200, answer
    assert [r.headers["authorization"] for r in openai.requests] == [f"Bearer {REAL_OPENAI}"]
    if "openai" in target.lower():
        status, answer = through_proxy(proxy, target, "o3")
        assert status == 404, answer
        assert "route" in json.loads(answer)["error"]["message"]
    assert all(PROXY_KEY not in json.dumps(r.headers) for r in openai.requests)


# ---------------------------------------------------------------- 13. a key that is not UTF-8


def test_a_proxy_key_that_is_not_utf8_gets_401(proxy, fakes):
    """Item 13: 401, not 500, whichever way the key comes; nothing goes upstream."""
    llm, _, _ = fakes
    llm.clear()
    body = json.dumps({"contents": [{"parts": [{"text": "hi"}]}]}).encode()
    path = b"POST /v1beta/models/gemini-x:generateContent"
    heads = [
        path + b" HTTP/1.1\r\nhost: x\r\nx-goog-api-key: \xff\xfe" + PROXY_KEY.encode() + b"\r\n",
        path + b" HTTP/1.1\r\nhost: x\r\nauthorization: Bearer \xc3\x28\xff\r\n",
        path + b"?key=%FF%FE" + PROXY_KEY.encode() + b" HTTP/1.1\r\nhost: x\r\n",
    ]
    assert [raw_request(proxy.port, head, body)[0] for head in heads] == [401, 401, 401]
    assert llm.requests == []


# ---------------------------------------------------------------- 14, 15. the rollup


def chat(proxy, model: str, messages: list) -> httpx.Response:
    return httpx.post(
        f"{proxy.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {PROXY_KEY}"},
        json={"model": model, "messages": messages},
        timeout=20,
    )


def test_malformed_message_answered_200_still_writes_its_log_line(proxy, fakes):
    """Item 14: `"tool_calls": 5` is the client's business; the upstream answered 200, so the
    client gets that answer and the call its log line, whatever the rollup makes of it."""
    messages = [
        {"role": "user", "content": "first " * 50},
        {"role": "assistant", "content": "ok", "tool_calls": 5},
        {"role": "user", "content": "second " * 50},
    ]
    answer = chat(proxy, "toolcalls-five", messages)
    assert answer.status_code == 200, answer.text

    def logged():
        return [x for x in proxy.api_log_lines() if x.get("requested_model") == "toolcalls-five"]

    assert wait_for(logged)
    assert logged()[0]["status"] == 200


def image(color: bytes) -> dict:
    """A data-URL image part; `color` makes it distinct."""
    data = base64.b64encode(b"\x89PNG\r\n\x1a\n" + color * 16).decode()
    return {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}


def test_turns_that_differ_only_by_an_image_do_not_match(proxy, fakes):
    """Item 15: a conversation with image A is remembered and summarised; the same text with
    image B is another conversation: not rolled up, and image B reaches the upstream."""
    llm, _, _ = fakes
    text = "Describe this picture in detail, please. " * 8
    first = {"role": "user", "content": [{"type": "text", "text": text}, image(b"A")]}
    assert chat(proxy, "rollup-images", [first]).status_code == 200
    reply = {"role": "assistant", "content": "hello from fake"}
    follow_up = {"role": "user", "content": "and the colours?"}

    def summary_used() -> bool:  # the same conversation, image A: rolled up once summarised
        llm.clear()
        assert chat(proxy, "rollup-images", [first, reply, follow_up]).status_code == 200
        (sent,) = [r for r in llm.requests if r.path.endswith("/chat/completions")]
        return SUMMARY in json.dumps(sent.json()["messages"])

    assert wait_for(summary_used), "the conversation with image A was never rolled up"
    llm.clear()
    other = {"role": "user", "content": [{"type": "text", "text": text}, image(b"B")]}
    assert chat(proxy, "rollup-images", [other, reply, follow_up]).status_code == 200
    (sent,) = [r for r in llm.requests if r.path.endswith("/chat/completions")]
    messages = sent.json()["messages"]
    assert SUMMARY not in json.dumps(messages)
    assert messages[0]["content"][1] == image(b"B")
