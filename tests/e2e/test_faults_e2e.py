"""A fault-injecting upstream: hang, slow drip, stall, cut stream, bad gzip, refused connect.
Each outcome is asserted: status, shape, what was logged, and that nothing else was lost."""

from __future__ import annotations

import json
import time

import boto3
import botocore.exceptions
import httpx
import pytest
import urllib3
from botocore.config import Config

from tests.e2e.launch import free_port
from tests.fake_bedrock import FakeBedrock

CUT = (
    botocore.exceptions.BotoCoreError,
    botocore.exceptions.ClientError,
    urllib3.exceptions.ProtocolError,
)
CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
BODY = json.dumps({"messages": [{"role": "user", "content": "hi"}]})


@pytest.fixture(scope="module")
def fake():
    with FakeBedrock() as fake:
        yield fake


@pytest.fixture(scope="module")
def proxy(fake, tmp_path_factory, proxy_launcher):
    tmp = tmp_path_factory.mktemp("faults")
    (tmp / "calo.yaml").write_text(
        f"""
api_keys: [unused]
max_retries: 0
stream_idle_timeout: 1
model_routes:
  "anthropic.*": {{url: "{fake.url}", api_keys: [k1], auth: bearer, api: bedrock, timeout: 1}}
"""
    )
    return proxy_launcher(tmp, {}, f"reverse:{fake.url}")


@pytest.fixture(autouse=True)
def reset(fake):
    fake.clear()
    yield
    fake.delay_headers = fake.frame_delay = 0.0
    fake.stall_after = fake.cut_after = None
    fake.bad_gzip = False


def client(proxy):
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=proxy.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(retries={"max_attempts": 1}, read_timeout=15),
    )


def last_line(proxy, operation):
    return proxy.api_log_lines(where=lambda x: x["operation"] == operation)[-1]


def test_hung_upstream_times_out_at_the_route_timeout(proxy, fake):
    fake.delay_headers = 3
    started = time.monotonic()
    response = httpx.post(f"{proxy.url}/model/{CLAUDE}/invoke", content=BODY, timeout=10)
    elapsed = time.monotonic() - started
    assert response.status_code == 502 and elapsed < 2.9  # cut at the 1 s timeout, not at 3 s
    line = last_line(proxy, "invoke")
    assert line["status"] == 504 and line["error"] == "upstream timed out after 1s"


def test_slow_drip_stream_is_not_cut_by_a_total_cap(proxy, fake):
    fake.frame_delay = 0.4  # 5 frames: 2 s in all, over the 1 s idle timeout, never idle 1 s
    events = list(
        client(proxy).converse_stream(
            modelId=CLAUDE, messages=[{"role": "user", "content": [{"text": "x"}]}]
        )["stream"]
    )
    assert "metadata" in events[-1]
    line = last_line(proxy, "converse-stream")
    assert line["status"] == 200 and line["usage"]["total_tokens"] == 11 and "error" not in line


def test_stalled_stream_is_cut_by_the_idle_timeout(proxy, fake):
    fake.stall_after = 2
    started = time.monotonic()
    with pytest.raises(CUT):
        list(
            client(proxy).converse_stream(
                modelId=CLAUDE, messages=[{"role": "user", "content": [{"text": "x"}]}]
            )["stream"]
        )
    assert time.monotonic() - started < 4.5  # the stall lasts 5 s
    line = last_line(proxy, "converse-stream")
    assert line["error"] == "upstream timed out after 1s"


def test_truncated_stream_is_logged_as_an_error(proxy, fake):
    fake.cut_after = 2
    with pytest.raises(CUT):
        list(
            client(proxy).converse_stream(
                modelId=CLAUDE, messages=[{"role": "user", "content": [{"text": "x"}]}]
            )["stream"]
        )
    line = last_line(proxy, "converse-stream")
    assert line["error"] and line["status"] == 200  # the status the client was sent, then cut


def test_malformed_gzip_passes_through_as_sent(proxy, fake):
    fake.bad_gzip = True
    with (
        httpx.Client() as c,
        c.stream("POST", f"{proxy.url}/model/{CLAUDE}/invoke", content=BODY) as r,
    ):
        raw = b"".join(r.iter_raw())
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert raw == b"not-gzip!"  # what the upstream sent, byte for byte
    line = last_line(proxy, "invoke")
    assert line["status"] == 200 and line["usage"] is None


def test_refused_connection_then_answered_in_shape(tmp_path, proxy_launcher):
    dead = f"http://127.0.0.1:{free_port()}"
    (tmp_path / "calo.yaml").write_text(
        f"""
api_keys: [unused]
model_routes:
  "anthropic.*": {{url: "{dead}", api_keys: [secret-key-value], auth: bearer, api: bedrock}}
"""
    )
    proxy = proxy_launcher(tmp_path, {}, f"reverse:{dead}")
    for _ in range(2):  # the addon's connect check, then its health record (upstream_health)
        answer = httpx.post(f"{proxy.url}/model/{CLAUDE}/invoke", content=BODY)
        assert answer.status_code == 502
        assert answer.headers["x-amzn-errortype"] == "ServiceUnavailableException"
        message = answer.json()["message"]
        assert dead.removeprefix("http://") in message and "secret-key-value" not in message
