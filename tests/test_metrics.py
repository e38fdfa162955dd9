"""Metrics units: each call's record into the series, bounded and secret-free labels, the live
values, the listener (and a port in use), and the workers' mirror. Exposition is read back
with prometheus_client's own parser."""

from __future__ import annotations

import logging

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from calo_addon import config as cfg
from calo_addon import metrics
from calo_addon.metrics_live import Live, Mirror, families
from calo_addon.pipeline import Pipeline
from calo_addon.state import SharedState
from calo_addon.translate.signatures import SignatureMemory
from calo_addon.upstream_health import UpstreamHealth
from tests.e2e.launch import free_port


def record(**fields) -> dict:
    base = {
        "kind": "call",
        "api": "gemini",
        "operation": "generateContent",
        "requested_model": "gemini-2.5-flash",
        "effective_model": "gemini-2.5-flash",
        "route": "default",
        "upstream_host": "generativelanguage.googleapis.com:443",
        "status": 200,
        "latency_ms": 120.0,
        "ttfb_ms": 30.0,
        "streaming": False,
        "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
        "rollup_applied": None,
    }
    return base | fields


def samples(registry) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value, parsed from the exposition text."""
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict, name: str, **labels) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    return sum(v for (n, ls), v in found.items() if n == name and set(labels.items()) <= set(ls))


def new_metrics() -> metrics.Metrics:
    live = live_pipeline()[0]
    return metrics.Metrics(None, lambda: live)


def test_a_mix_of_calls_counts_and_sums_right():
    m = new_metrics()
    m.observe(record())
    m.observe(
        record(streaming=True, operation="streamGenerateContent", usage=None, latency_ms=2000)
    )
    m.observe(
        record(
            api="openai",
            operation="chat.completions",
            upstream_api="gemini",
            requested_model="gpt-x",
            upstream_model="gemini-2.5-pro",
            usage={"input_tokens": 7, "output_tokens": 3, "total_tokens": 10,
                   "cached_input_tokens": 4, "reasoning_tokens": 2},
            retries=["503 via default#1", "429 via default#2"],
        )
    )  # fmt: skip
    m.observe(record(status=429, usage=None, ttfb_ms=None, error=None))
    m.observe(record(status=None, usage=None, ttfb_ms=None, error="connection refused"))
    m.observe(record(status=200, error="stream cut", streaming=True))
    m.observe(record(rollup_applied="summary", rollup_saved_bytes=5000))
    m.observe(record(operation="rollup.summary", status=200))
    m.observe(record(operation="rollup.summary", status=500, usage=None))
    found = samples(m.registry)

    assert value(found, "calo_requests_total") == 9
    assert value(found, "calo_requests_total", status_class="2xx") == 6
    assert value(found, "calo_requests_total", status_class="4xx") == 1
    assert value(found, "calo_requests_total", status_class="5xx") == 1
    assert value(found, "calo_requests_total", status_class="none") == 1
    assert value(found, "calo_requests_total", api="openai", route="default") == 1
    input_sum = value(found, "gen_ai_client_token_usage_sum", gen_ai_token_type="input")
    assert input_sum == 10 * 4 + 7  # four records carry the default usage
    assert value(found, "gen_ai_client_token_usage_sum", gen_ai_token_type="output") == 5 * 4 + 3
    assert value(found, "gen_ai_client_token_usage_sum", gen_ai_token_type="cached_input") == 4
    assert value(found, "gen_ai_client_token_usage_count", gen_ai_token_type="reasoning") == 1
    assert value(found, "gen_ai_server_request_duration_seconds_count") == 9
    assert value(found, "gen_ai_server_request_duration_seconds_count", error_type="429") == 1
    assert value(found, "gen_ai_server_request_duration_seconds_count", error_type="500") == 1
    errors = ("connection_error", "stream_error")
    for kind in errors:
        assert value(found, "gen_ai_server_request_duration_seconds_count", error_type=kind) == 1
    assert value(found, "gen_ai_server_time_to_first_token_seconds_count") == 5
    assert value(found, "calo_retries_total", route="default") == 2
    assert value(found, "calo_rollup_applied_total") == 1
    assert value(found, "calo_rollup_saved_bytes_total") == 5000
    assert value(found, "calo_rollup_summaries_total", outcome="ok") == 1
    assert value(found, "calo_rollup_summaries_total", outcome="failed") == 1
    translated = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "gcp.gemini",  # Google's host, whatever the client spoke
        "gen_ai_request_model": "gpt-x",
        "gen_ai_response_model": "gemini-2.5-pro",
    }
    assert value(found, "gen_ai_server_request_duration_seconds_count", **translated) == 1
    slow = value(
        found,
        "gen_ai_server_request_duration_seconds_bucket",
        gen_ai_operation_name="generate_content",
        le="2.56",
    )
    fast = value(
        found,
        "gen_ai_server_request_duration_seconds_bucket",
        gen_ai_operation_name="generate_content",
        le="1.28",
    )
    assert slow - fast == 1  # the 2 s stream, in the conventions' buckets


def test_buckets_are_the_conventions_ones():
    m = new_metrics()
    m.observe(record())
    found = samples(m.registry)
    bounds = {
        name: sorted(float(dict(ls)["le"]) for n, ls in found if n == f"{name}_bucket")
        for name in (
            "gen_ai_client_token_usage",
            "gen_ai_server_request_duration_seconds",
            "gen_ai_server_time_to_first_token_seconds",
        )
    }
    token_kinds = 2  # input and output
    assert bounds["gen_ai_client_token_usage"][::token_kinds][:-1] == list(metrics.TOKEN_BUCKETS)
    assert bounds["gen_ai_server_request_duration_seconds"][:-1] == list(metrics.DURATION_BUCKETS)
    assert bounds["gen_ai_server_time_to_first_token_seconds"][:-1] == list(metrics.TTFT_BUCKETS)


def test_provider_by_host_else_by_protocol():
    m = new_metrics()
    m.observe(
        record(api="openai", operation="chat.completions", upstream_host="api.openai.com:443")
    )
    m.observe(record(api="anthropic", operation="messages", upstream_host="127.0.0.1:8080"))
    m.observe(record(api="bedrock", operation="converse", upstream_host=None, route=None))
    providers = {dict(ls)["gen_ai_provider_name"] for n, ls in samples(m.registry) if "gen_ai" in n}
    assert providers == {"openai", "anthropic", "aws.bedrock"}


def test_model_labels_are_bounded_and_never_hold_a_secret():
    m = new_metrics()
    m.scrub = lambda text: text.replace("sk-SECRET", "[redacted]")
    names = [f"model-{i}" for i in range(metrics.LABEL_CAP + 20)]
    for name in names:
        m.observe(record(requested_model=name, effective_model="gemini-2.5-flash"))
    m.observe(record(requested_model="sk-SECRET", client="team sk-SECRET"))
    m.observe(record(requested_model='a model\nwith {braces}"', client="ci"))
    text = generate_latest(m.registry).decode()
    models = {
        s.labels[label]
        for family in text_string_to_metric_families(text)
        for s in family.samples
        for label in ("gen_ai_request_model", "gen_ai_response_model")
        if label in s.labels
    }
    assert len(models) == metrics.LABEL_CAP + 1 and "other" in models
    assert "sk-SECRET" not in text and "braces" not in text
    assert 'client="other"' in text  # a client name holding a secret: "other" as well


def test_error_type_and_status_class():
    assert metrics.error_type(200, False) == "" and metrics.error_type(503, False) == "503"
    assert metrics.error_type(None, True) == "connection_error"
    assert metrics.error_type(200, True) == "stream_error"
    assert metrics.status_class(None) == "none" and metrics.status_class(201) == "2xx"


# ---------------------------------------------------------------- live values


def live_pipeline() -> tuple[Live, Pipeline, UpstreamHealth]:
    env = {"GEMINI_CALO_API_KEYS": "k1,k2,k3"}
    settings = cfg.load_settings(None, env)
    pipeline = Pipeline.build(settings, None)
    health = UpstreamHealth()
    return Live(pipeline, health, SharedState(), SignatureMemory()), pipeline, health


def test_live_values_come_from_the_objects_at_scrape_time():
    live, pipeline, health = live_pipeline()
    m = metrics.Metrics("127.0.0.1:0", lambda: live)
    pool = pipeline.router.pools()[0]
    pool.cool(pool.keys[0], "60")
    pool.cool(pool.keys[1], "0")  # rests no time: counted, not cooling
    health.mark_down("generativelanguage.googleapis.com:443", "refused")
    live.signatures.remember("c1", "sig")
    found = samples(m.registry)
    assert value(found, "calo_keys_cooling", route="default") == 1
    assert value(found, "calo_key_cooldowns_total", route="default") == 2
    assert value(found, "calo_upstream_up", upstream="generativelanguage.googleapis.com:443") == 0
    assert value(found, "calo_shared_state_up", backend="memory") == 1
    assert value(found, "calo_thought_signatures_remembered") == 1
    assert value(found, "calo_rollup_summaries_cached") == 0
    health.mark_up("generativelanguage.googleapis.com:443")
    found = samples(m.registry)
    assert value(found, "calo_upstream_up", upstream="generativelanguage.googleapis.com:443") == 1


def test_mirror_copies_gauges_and_adds_counter_increments():
    live, pipeline, _ = live_pipeline()
    registry = CollectorRegistry()
    mirror = Mirror(registry)
    pool = pipeline.router.pools()[0]
    pool.cool(pool.keys[0], "60")
    mirror.copy(families(live))
    pool.cool(pool.keys[1], "60")
    mirror.copy(families(live))
    mirror.copy(families(live))  # nothing new: nothing added
    found = samples(registry)
    assert value(found, "calo_key_cooldowns_total") == 2
    assert value(found, "calo_keys_cooling") == 2
    pool.cooldowns = 1  # a reload made a new pool: its count starts again
    mirror.copy(families(live))
    assert value(samples(registry), "calo_key_cooldowns_total") == 3


# ---------------------------------------------------------------- the listener


def test_metrics_on_their_own_port_and_a_port_in_use_turns_them_off(caplog):
    live, _, _ = live_pipeline()
    address = f"127.0.0.1:{free_port()}"
    first = metrics.Metrics(address, lambda: live)
    second = metrics.Metrics(address, lambda: live)
    caplog.set_level(logging.WARNING, logger="calo_addon")
    try:
        first.start()
        second.start()
        answer = httpx.get(f"http://{address}/metrics", timeout=10)
        assert answer.status_code == 200 and "calo_keys_cooling" in answer.text
        lines = [r.getMessage() for r in caplog.records]
        assert lines == [
            f"calo_addon: metrics are off: cannot listen on {address} (Address already in use)"
        ]
    finally:
        first.stop()
        second.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://{address}/metrics", timeout=5)


def test_configure_follows_the_setting():
    live, pipeline, _ = live_pipeline()
    address = f"127.0.0.1:{free_port()}"
    m = metrics.configure(None, address, pipeline.scrub, lambda: live)
    assert m is not None and m.address == address and m.scrub is pipeline.scrub
    m.start()
    moved = f"127.0.0.1:{free_port()}"
    assert metrics.configure(m, moved, pipeline.scrub, lambda: live) is m
    assert httpx.get(f"http://{moved}/metrics", timeout=10).status_code == 200
    assert metrics.configure(m, None, pipeline.scrub, lambda: live) is None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://{moved}/metrics", timeout=5)
