"""boto3 bedrock-runtime, unchanged, through the real proxy to a fake Bedrock that checks SigV4.

Both ways in (the bearer proxy key over TLS, and SigV4 with proxy credentials) and both ways
out (re-signed with the route's credentials, and the client's X-AWS-* header pass-through).
"""

from __future__ import annotations

import json
import os
import threading
from urllib.parse import quote

import boto3
import botocore.exceptions
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from tests.fake_bedrock import FakeBedrock, anthropic_stream_frames, converse_stream_frames

PROXY_KEY = "proxy-key-bedrock"
PROXY_AKID, PROXY_SECRET = "AKIDPROXYCLIENT", "proxy-client-secret"
REAL_AKID, REAL_SECRET = "AKIDREALROUTE", "real-route-secret-value"
PASS_AKID, PASS_SECRET = "AKIDPASSCLIENT", "pass-through-secret-value"
CLAUDE = "anthropic.claude-3-5-sonnet-20241022-v2:0"
NOVA = "amazon.nova-lite-v1:0"


@pytest.fixture(scope="module")
def fake():
    with FakeBedrock({REAL_AKID: REAL_SECRET, PASS_AKID: PASS_SECRET}, stream_gate=False) as fake:
        yield fake


@pytest.fixture(scope="module")
def proxy(fake, tmp_path_factory, proxy_launcher):
    tmp = tmp_path_factory.mktemp("bedrock")
    (tmp / "calo.yaml").write_text(
        f"""
api_keys: [gemini-real-key]
proxy_api_keys: [{PROXY_KEY}]
proxy_aws_credentials: {{{PROXY_AKID}: {PROXY_SECRET}}}
model_override: null
model_routes:
  "override-me":
    url: {fake.url}
    auth: sigv4
    aws: {{access_key: {REAL_AKID}, secret_key: {REAL_SECRET}, region: us-west-2}}
  "anthropic.*":
    url: {fake.url}
    auth: sigv4
    aws: {{access_key: {REAL_AKID}, secret_key: {REAL_SECRET}, region: us-west-2}}
  "amazon.*":
    url: {fake.url}
    auth: bedrock-passthrough
"""
    )
    yield proxy_launcher(tmp, {}, f"reverse:{fake.url}")


def client(proxy, how: str):
    kwargs = {
        "region_name": "us-west-2",
        "config": Config(retries={"max_attempts": 1}, read_timeout=20),
    }
    if how == "bearer":
        # as a user does: AWS_BEARER_TOKEN_BEDROCK=<proxy key>. boto3 sends a Bedrock API key
        # only over HTTPS, and the proxy's listener speaks TLS too.
        assert os.environ.get("AWS_BEARER_TOKEN_BEDROCK") == PROXY_KEY
        return boto3.client(
            "bedrock-runtime",
            endpoint_url=f"https://localhost:{proxy.port}",
            verify=str(proxy.ca_cert),
            **kwargs,
        )
    secret = PROXY_SECRET if how == "sigv4" else "not-the-secret"
    akid = "AKIDUNKNOWN" if how == "unknown" else PROXY_AKID
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=proxy.url,
        aws_access_key_id=akid,
        aws_secret_access_key=secret,
        **kwargs,
    )


def _pass_through_headers(request, **kwargs):
    request.headers["X-AWS-Access-Key"] = PASS_AKID
    request.headers["X-AWS-Secret-Key"] = PASS_SECRET
    request.headers["X-AWS-Region"] = "eu-west-1"


def _anthropic_body(text="hello"):
    return json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": text}],
        }
    )


@pytest.mark.parametrize("how", ["sigv4", "bearer"])
def test_invoke_and_converse_resigned_with_route_credentials(proxy, fake, how, monkeypatch):
    if how == "bearer":
        monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", PROXY_KEY)
    fake.clear()
    c = client(proxy, how)
    out = json.loads(c.invoke_model(modelId=CLAUDE, body=_anthropic_body())["body"].read())
    assert out["content"][0]["text"] == "hello from fake bedrock"
    conv = c.converse(modelId=CLAUDE, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    assert conv["usage"]["totalTokens"] == 11

    assert [r.path for r in fake.requests] == [
        "/model/anthropic.claude-3-5-sonnet-20241022-v2%3A0/invoke",
        "/model/anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse",
    ]
    for r in fake.requests:
        assert r.access_key == REAL_AKID and r.signature_ok is True
        assert "/us-west-2/bedrock/" in r.headers["authorization"]
        assert PROXY_KEY not in json.dumps(r.headers) and PROXY_AKID not in json.dumps(r.headers)


def test_header_pass_through_signs_with_client_keys(proxy, fake):
    fake.clear()
    c = client(proxy, "sigv4")
    c.meta.events.register("before-sign.*", _pass_through_headers, unique_id="pass")
    c.converse(modelId=NOVA, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    (r,) = fake.requests
    assert r.access_key == PASS_AKID and r.signature_ok is True
    assert "/eu-west-1/bedrock/" in r.headers["authorization"]
    assert not [h for h in r.headers if h.startswith("x-aws-")]


def signed_post(proxy, path: str, body: str) -> bytes:
    """The answer's bytes as they reached the client, for a request signed as boto3 signs it
    (botocore) with the proxy's credentials."""
    url = f"{proxy.url}{path}"
    request = AWSRequest("POST", url, data=body, headers={"content-type": "application/json"})
    SigV4Auth(Credentials(PROXY_AKID, PROXY_SECRET), "bedrock", "us-west-2").add_auth(request)
    answer = httpx.post(url, content=body, headers=dict(request.headers.items()), timeout=20)
    assert answer.status_code == 200, answer.text
    return answer.content


def test_streams_are_byte_identical_and_usage_logged(proxy, fake):
    fake.clear()
    model = quote(CLAUDE, safe="")
    invoked = signed_post(proxy, f"/model/{model}/invoke-with-response-stream", _anthropic_body())
    assert invoked == b"".join(anthropic_stream_frames())  # what the fake sent, to the byte
    messages = json.dumps({"messages": [{"role": "user", "content": [{"text": "x"}]}]})
    conversed = signed_post(proxy, f"/model/{model}/converse-stream", messages)
    assert conversed == b"".join(converse_stream_frames())
    assert all(r.signature_ok for r in fake.requests)
    lines = proxy.api_log_lines(count=2, where=lambda line: line.get("api") == "bedrock")
    streamed = [line for line in lines if line["operation"] == "converse-stream"]
    assert streamed and streamed[-1]["usage"]["input_tokens"] == 9
    invoked_lines = [line for line in lines if line["operation"] == "invoke-with-response-stream"]
    assert invoked_lines and invoked_lines[-1]["usage"] == {
        "input_tokens": 11,
        "output_tokens": 4,
        "total_tokens": 15,
    }


def test_event_stream_arrives_incrementally(proxy, fake):
    fake.clear()
    fake.stream_gate = True
    try:
        c = client(proxy, "sigv4")
        events = iter(
            c.converse_stream(
                modelId=CLAUDE, messages=[{"role": "user", "content": [{"text": "x"}]}]
            )["stream"]
        )
        first = next(events)
        # the client holds the first event while the upstream still withholds the last frame
        assert "messageStart" in first and not fake.last_frame_sent.is_set()
        fake.release.set()
        rest = list(events)
        assert "metadata" in rest[-1]
    finally:
        fake.stream_gate = False
        fake.release.set()


def test_exception_inside_200_stream_is_logged_and_marked(proxy, fake):
    fake.clear()
    fake.stream_exception = True
    try:
        c = client(proxy, "sigv4")
        with pytest.raises(botocore.exceptions.EventStreamError):
            list(
                c.converse_stream(
                    modelId=CLAUDE, messages=[{"role": "user", "content": [{"text": "x"}]}]
                )["stream"]
            )
    finally:
        fake.stream_exception = False
    line = proxy.api_log_lines(where=lambda entry: entry["operation"] == "converse-stream")[-1]
    assert "throttlingException" in line["error"]


@pytest.mark.parametrize("how", ["badsig", "unknown"])
def test_bad_signature_or_unknown_key_gets_403_and_nothing_upstream(proxy, fake, how):
    fake.clear()
    c = client(proxy, how)
    with pytest.raises(botocore.exceptions.ClientError) as err:
        c.invoke_model(modelId=CLAUDE, body=_anthropic_body())
    expected = "InvalidSignatureException" if how == "badsig" else "UnrecognizedClientException"
    assert err.value.response["Error"]["Code"] == expected
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert fake.requests == []


def test_tampered_body_after_signing_is_refused(proxy, fake):
    fake.clear()
    c = client(proxy, "sigv4")

    def tamper(request, **kwargs):
        request.body = request.body.replace(b"hello", b"HELLO")

    c.meta.events.register("before-send.*", tamper)
    with pytest.raises(botocore.exceptions.ClientError) as err:
        c.invoke_model(modelId=CLAUDE, body=_anthropic_body("hello"))
    assert err.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert fake.requests == []


def test_model_override_is_signed_over_the_final_path(fake, tmp_path, proxy_launcher):
    (tmp_path / "calo.yaml").write_text(
        f"""
api_keys: [k]
proxy_aws_credentials: {{{PROXY_AKID}: {PROXY_SECRET}}}
model_override: "anthropic.claude-3-haiku-20240307-v1:0"
model_routes:
  "anthropic.*":
    url: {fake.url}
    auth: sigv4
    aws: {{access_key: {REAL_AKID}, secret_key: {REAL_SECRET}, region: us-east-1}}
"""
    )
    proxy = proxy_launcher(tmp_path, {}, f"reverse:{fake.url}")
    fake.clear()
    client(proxy, "sigv4").invoke_model(modelId=NOVA, body=_anthropic_body())
    (r,) = fake.requests
    assert r.path == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke"
    assert r.signature_ok is True


def test_bedrock_error_shape_for_missing_key(proxy, fake):
    fake.clear()
    response = httpx.post(f"{proxy.url}/model/{CLAUDE}/invoke", content=_anthropic_body())
    assert response.status_code == 401
    assert response.headers["x-amzn-errortype"] == "UnrecognizedClientException"
    assert response.json() == {"message": "missing proxy API key"}
    assert fake.requests == []


def test_concurrent_signed_calls(proxy, fake):
    fake.clear()
    errors = []

    def call():
        try:
            client(proxy, "sigv4").invoke_model(modelId=CLAUDE, body=_anthropic_body())
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(fake.requests) == 6 and all(r.signature_ok for r in fake.requests)


def test_bedrock_headers_and_content_type_are_forwarded(proxy, fake):
    fake.clear()
    client(proxy, "sigv4").invoke_model(
        modelId=CLAUDE,
        body=_anthropic_body(),
        contentType="application/json",
        accept="application/json",
        trace="ENABLED",
        guardrailIdentifier="gr-1",
        guardrailVersion="2",
        performanceConfigLatency="optimized",
    )
    (r,) = fake.requests
    assert r.signature_ok is True
    assert r.headers["content-type"] == "application/json"
    assert r.headers["accept"] == "application/json"
    assert r.headers["x-amzn-bedrock-trace"] == "ENABLED"
    assert r.headers["x-amzn-bedrock-guardrailidentifier"] == "gr-1"
    assert r.headers["x-amzn-bedrock-guardrailversion"] == "2"
    assert r.headers["x-amzn-bedrock-performanceconfig-latency"] == "optimized"
