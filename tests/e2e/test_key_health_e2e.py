"""Key health through the real proxy: a refused key cools down, rotation skips it, and when
every key of a route cools the proxy answers 429 itself with Retry-After."""

from __future__ import annotations

import json

import httpx

from tests.fake_bedrock import FakeBedrock

URL = "/model/anthropic.claude-3-haiku-20240307-v1:0/invoke"
BODY = json.dumps({"messages": [{"role": "user", "content": "hi"}]})


def test_refused_keys_cool_and_all_cooling_gives_429(tmp_path, proxy_launcher):
    with FakeBedrock() as fake:
        (tmp_path / "calo.yaml").write_text(
            f"""
api_keys: [unused]
proxy_api_keys: [pk]
key_cooldown_max: 120
max_retries: 0
model_routes:
  "anthropic.*": {{url: "{fake.url}", api_keys: [key-one, key-two], auth: bearer, api: bedrock}}
"""
        )
        proxy = proxy_launcher(tmp_path, {}, f"reverse:{fake.url}")
        headers = {"Authorization": "Bearer pk"}

        def call():
            return httpx.post(proxy.url + URL, content=BODY, headers=headers)

        throttled = {"message": "Too many requests"}
        fake.scripted = [
            (429, {"Retry-After": "60", "x-amzn-ErrorType": "ThrottlingException"}, throttled)
        ]
        first = call()
        assert first.status_code == 429 and first.json() == throttled  # passes through unchanged
        assert call().status_code == 200 and call().status_code == 200
        used = [r.headers["authorization"] for r in fake.requests]
        assert used == ["Bearer key-one", "Bearer key-two", "Bearer key-two"]  # key-one rests

        fake.scripted = [(401, {}, {"message": "bad key"})]
        assert call().status_code == 401  # key-two now refused as well
        before = len(fake.requests)
        refused = call()
        assert refused.status_code == 429
        assert refused.headers["x-amzn-errortype"] == "ThrottlingException"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert "cooling" in refused.json()["message"] and "key-" not in refused.text
        assert len(fake.requests) == before  # nothing went upstream

        status = proxy.api_log_lines(count=2, where=lambda line: line.get("cooled"))
        assert [line["cooled"].split()[0] for line in status] == ["anthropic.*#1", "anthropic.*#2"]


def test_failover_retries_with_the_next_key(tmp_path, proxy_launcher):
    with FakeBedrock() as fake:
        (tmp_path / "calo.yaml").write_text(
            f"""
api_keys: [unused]
max_retries: 2
model_routes:
  "anthropic.*": {{url: "{fake.url}", api_keys: [key-a, key-b, key-c], auth: bearer, api: bedrock}}
"""
        )
        proxy = proxy_launcher(tmp_path, {}, f"reverse:{fake.url}")
        fake.scripted = [
            (500, {}, {"message": "internal"}),
            (429, {"Retry-After": "5"}, {"message": "slow down"}),
        ]
        response = httpx.post(proxy.url + URL, content=BODY)
        assert response.status_code == 200 and response.json()["usage"]["input_tokens"] == 12
        used = [r.headers["authorization"] for r in fake.requests]
        assert used == ["Bearer key-a", "Bearer key-b", "Bearer key-c"]
        (line,) = proxy.api_log_lines()
        assert line["retries"] == ["500 via anthropic.*#1", "429 via anthropic.*#2"]
        assert line["status"] == 200 and line["key_label"] == "anthropic.*#3"

        # out of retries: the last upstream answer reaches the client unchanged
        fake.clear()
        fake.scripted = [(503, {}, {"message": f"down {i}"}) for i in range(3)]
        response = httpx.post(proxy.url + URL, content=BODY)
        assert response.status_code == 503 and response.json() == {"message": "down 2"}
        assert len(fake.requests) == 3


def test_each_retry_is_signed_anew(tmp_path, proxy_launcher):
    with FakeBedrock({"AKIDRETRY": "retry-secret"}) as fake:
        (tmp_path / "calo.yaml").write_text(
            f"""
api_keys: [unused]
model_routes:
  "anthropic.*":
    url: "{fake.url}"
    auth: sigv4
    aws: {{access_key: AKIDRETRY, secret_key: retry-secret, region: us-east-1}}
"""
        )
        proxy = proxy_launcher(tmp_path, {}, f"reverse:{fake.url}")
        fake.scripted = [(503, {}, {"message": "busy"})]
        response = httpx.post(proxy.url + URL, content=BODY)
        assert response.status_code == 200
        assert len(fake.requests) == 2 and all(r.signature_ok for r in fake.requests)
        assert fake.requests[0].headers["x-amz-date"] <= fake.requests[1].headers["x-amz-date"]
