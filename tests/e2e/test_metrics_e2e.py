"""/metrics of a real proxy after a mix of calls (whole and streamed, an error, a retry, a
rollup and its summary), parsed with prometheus_client's parser and checked against the calls'
own log lines; and a metrics port already taken."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.launch import free_port, wait_for
from tests.e2e.scrape import metric, scrape, wait_metric
from tests.fake_gemini import FakeGemini
from tests.fake_server import Fail

pytestmark = pytest.mark.timeout(180)

MODEL = "gemini-2.5-flash"
LONG = "Please remember every fact of this project in detail. " * 8


@pytest.fixture
def setup(tmp_path, proxy_launcher):
    with FakeGemini(keys={"k1", "k2"}) as fake:
        (tmp_path / "calo.yaml").write_text(
            f"api_keys: [k1, k2]\nproxy_api_keys: [pk]\n"
            f"rollup: {{threshold: 300, summarizer_model: {MODEL}}}\n"
        )
        address = f"127.0.0.1:{free_port()}"
        env = {"GEMINI_CALO_BASE_URL": fake.url, "GEMINI_CALO_METRICS_LISTEN": address}
        yield proxy_launcher(tmp_path, env, f"reverse:{fake.url}"), address, fake


def call(proxy, contents, method="generateContent", query=""):
    return httpx.post(
        f"{proxy.url}/v1beta/models/{MODEL}:{method}{query}",
        json={"contents": contents},
        headers={"x-goog-api-key": "pk"},
        timeout=30,
    )


def user(text: str) -> dict:
    return {"role": "user", "parts": [{"text": text}]}


def test_metrics_after_a_mix_of_calls_agree_with_the_log(setup):
    proxy, address, fake = setup
    assert call(proxy, [user("hi")]).status_code == 200
    streamed = call(proxy, [user("stream please")], "streamGenerateContent", "?alt=sse")
    assert streamed.status_code == 200 and streamed.text.count("data: ") > 1
    fake.scripted = [Fail(400, "bad request")]
    assert call(proxy, [user("refused")]).status_code == 400
    fake.scripted = [Fail(503, "busy")]
    assert call(proxy, [user("retried")]).status_code == 200
    first = [user(LONG)]
    reply = call(proxy, first).json()["candidates"][0]["content"]
    wait_metric(address, "calo_rollup_summaries_cached", 1)
    rolled = call(proxy, [*first, reply, user("and then?")])
    assert rolled.status_code == 200
    wait_metric(address, "calo_rollup_summaries_total", 2, outcome="ok")  # the longer one too

    lines = proxy.api_log_lines(count=8)
    assert len(lines) == 8  # six calls and two summaries
    found = scrape(address)
    assert metric(found, "calo_requests_total") == 8
    assert metric(found, "calo_requests_total", api="gemini", route="default", client="") == 8
    assert metric(found, "calo_requests_total", status_class="2xx") == 7
    assert metric(found, "calo_requests_total", status_class="4xx") == 1
    for kind, field in (("input", "input_tokens"), ("output", "output_tokens")):
        logged = sum(x["usage"][field] for x in lines if x.get("usage"))
        assert logged > 0
        sum_name = "gen_ai_client_token_usage_sum"
        assert metric(found, sum_name, gen_ai_token_type=kind) == logged, kind
        with_usage = sum(1 for x in lines if x.get("usage"))
        count = metric(found, "gen_ai_client_token_usage_count", gen_ai_token_type=kind)
        assert count == with_usage
    reasoning = sum(x["usage"].get("reasoning_tokens", 0) for x in lines if x.get("usage"))
    assert reasoning > 0  # the fake thinks: Gemini's thoughtsTokenCount
    assert (
        metric(found, "gen_ai_client_token_usage_sum", gen_ai_token_type="reasoning") == reasoning
    )

    duration = "gen_ai_server_request_duration_seconds_count"
    assert metric(found, duration) == 8
    assert metric(found, duration, error_type="400") == 1
    assert metric(found, duration, gen_ai_operation_name="generate_content") == 8
    assert metric(found, duration, gen_ai_provider_name="gcp.gemini") == 8
    assert metric(found, duration, gen_ai_request_model=MODEL, gen_ai_response_model=MODEL) == 8
    assert metric(found, "gen_ai_server_time_to_first_token_seconds_count") == 7
    logged_seconds = sum(x["latency_ms"] for x in lines) / 1000
    summed = metric(found, "gen_ai_server_request_duration_seconds_sum")
    assert summed == pytest.approx(logged_seconds, abs=0.01)

    assert metric(found, "calo_retries_total", route="default") == 1
    assert metric(found, "calo_rollup_applied_total", route="default") == 1
    (rolled_line,) = [x for x in lines if x.get("rollup_applied") == "summary"]
    saved = metric(found, "calo_rollup_saved_bytes_total", route="default")
    assert saved == rolled_line["rollup_saved_bytes"] > 0
    assert metric(found, "calo_rollup_summaries_total", outcome="ok") == 2
    assert metric(found, "calo_key_cooldowns_total", route="default") == 0  # a 503 cools none
    assert metric(found, "calo_upstream_up", upstream=f"127.0.0.1:{fake.port}") == 1
    assert metric(found, "calo_shared_state_up", backend="memory") == 1


def test_a_429_shows_as_a_cooldown_and_a_cooling_key(setup):
    proxy, address, fake = setup
    fake.scripted = [Fail(429, "quota", retry_after=60)]
    assert call(proxy, [user("hi")]).status_code == 200  # the retry used the other key
    found = scrape(address)
    assert metric(found, "calo_key_cooldowns_total", route="default") == 1
    assert metric(found, "calo_keys_cooling", route="default") == 1
    assert metric(found, "calo_retries_total", route="default") == 1


def test_metrics_port_taken_the_proxy_serves_and_says_so_once(setup, tmp_path, proxy_launcher):
    _, address, fake = setup
    other = tmp_path / "other"
    other.mkdir()
    env = {
        "GEMINI_CALO_API_KEYS": "k1",
        "GEMINI_CALO_BASE_URL": fake.url,
        "GEMINI_CALO_METRICS_LISTEN": address,
    }
    second = proxy_launcher(other, env, f"reverse:{fake.url}")
    said = f"calo_addon: metrics are off: cannot listen on {address} (Address already in use)"
    assert wait_for(lambda: any(said in line for line in second.output))
    assert httpx.get(second.url + "/health").json() == {"status": "ok"}
    assert call(second, [user("hi")]).status_code == 200
    assert sum("metrics are off" in line for line in second.output) == 1
    assert [line.strip().endswith(said) for line in second.output if said in line] == [True]


def test_metrics_off(tmp_path, proxy_launcher):
    with FakeGemini() as fake:
        env = {
            "GEMINI_CALO_API_KEYS": "k1",
            "GEMINI_CALO_BASE_URL": fake.url,
            "GEMINI_CALO_METRICS_LISTEN": "off",
        }
        proxy = proxy_launcher(tmp_path, env, f"reverse:{fake.url}")
        assert call(proxy, [user("hi")]).status_code == 200
        assert not any("calo_addon: metrics" in line for line in proxy.output), proxy.output
