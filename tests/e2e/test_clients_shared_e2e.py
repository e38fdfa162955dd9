"""Client limits shared by two instances on one real Redis (issue 15, SPEC 12): one rpm
budget and one token budget whichever instance a client's calls reach."""

from __future__ import annotations

import time

import httpx
import pytest
import redis

from tests.e2e.launch import free_port, wait_for
from tests.e2e.scrape import wait_metric
from tests.fake_llm import FakeLLM

pytestmark = pytest.mark.timeout(180)

GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"
CONFIG = """
api_keys: [real-key]
base_url: {url}
clients:
  alice: {{key: alice-key, rpm: 3}}
  bob: {{key: bob-key, tokens_per_day: 10}}
"""


@pytest.fixture
def pair(tmp_path, redis_server, proxy_launcher):
    with FakeLLM() as llm:
        urls = []
        for name in ("a", "b"):
            cwd = tmp_path / name
            cwd.mkdir()
            (cwd / "calo.yaml").write_text(CONFIG.format(url=llm.url))
            metrics = f"127.0.0.1:{free_port()}"
            env = {
                "GEMINI_CALO_REDIS_URL": redis_server.url,
                "GEMINI_CALO_METRICS_LISTEN": metrics,
                "GEMINI_CALO_USAGE_DB": str(cwd / "usage.db"),
            }
            urls.append(proxy_launcher(cwd, env, f"reverse:{llm.url}").url)
            wait_metric(metrics, "calo_shared_state_up", 1, backend="redis")
        yield urls, llm


def call(url: str, key: str) -> httpx.Response:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    return httpx.post(url + GENERATE, json=body, headers={"x-goog-api-key": key})


def test_one_rpm_budget_over_two_instances(pair):
    (a, b), llm = pair
    statuses = [call(url, "alice-key").status_code for url in (a, b, a)]
    assert statuses == [200, 200, 200]
    refused = call(b, "alice-key")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "rpm" in refused.json()["error"]["message"]
    assert len(llm.requests) == 3  # the refused call never went upstream


def test_tokens_spent_on_one_instance_block_the_other(pair, redis_server):
    (a, b), _ = pair
    assert call(a, "bob-key").status_code == 200  # FakeLLM reports 12 tokens: over 10
    counter = f"calo:n:client:bob:day:{time.strftime('%Y-%m-%d', time.gmtime())}"
    with redis.Redis.from_url(redis_server.url) as r:  # A charges Redis a moment after answering
        assert wait_for(lambda: int(r.get(counter) or 0) >= 10)
    refused = call(b, "bob-key")  # B's first call for bob: only the shared count can refuse it
    assert refused.status_code == 429 and "tokens_per_day" in refused.json()["error"]["message"]
