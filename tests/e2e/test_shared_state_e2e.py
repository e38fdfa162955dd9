"""Two proxies sharing one real Redis act as one (SPEC 11): a key cooled by a 429 on one is
skipped by the other, a rollup summary made by one is used by the other, a thought signature
remembered by one is restored by the other, a Responses conversation answered by one is
continued on the other by its id, and Redis stopped mid-run changes nothing but the
sharing, which resumes when it is back. The upstream is tests/fake_gemini.py (it validates
thought signatures); each proxy's /metrics tells when the other's change has arrived."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import openai
import pytest

from tests.e2e.launch import free_port, wait_for
from tests.e2e.scrape import metric, scrape, wait_metric
from tests.fake_gemini import FakeGemini
from tests.fake_server import Fail, Reply

pytestmark = pytest.mark.timeout(180)

GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"
LONG = "Please remember every fact of this project in detail. " * 8  # over the threshold
CONFIG = """
api_keys: [k1, k2]
proxy_api_keys: [pk]
base_url: {url}
rollup: {{threshold: 300, summarizer_model: gemini-2.5-flash}}
model_routes:
  "tools-*": {{url: "{url}", api: gemini, api_keys: [k1, k2], model: gemini-2.5-flash}}
"""


class Instance:
    """One proxy of the pair: its URL, its metrics address and its log."""

    def __init__(self, proxy, metrics: str):
        self.proxy, self.metrics, self.url = proxy, metrics, proxy.url

    def gemini(self, contents: list) -> httpx.Response:
        return httpx.post(
            self.url + GENERATE, json={"contents": contents}, headers={"x-goog-api-key": "pk"}
        )

    def chat(self, body: dict) -> httpx.Response:
        headers = {"authorization": "Bearer pk"}
        return httpx.post(self.url + "/v1/chat/completions", json=body, headers=headers)

    def diagnostics(self, text: str) -> list[str]:
        lines = self.proxy.read_log_lines()
        return [
            x["message"] for x in lines if x.get("kind") == "diagnostic" and text in x["message"]
        ]


@pytest.fixture
def fake():
    with FakeGemini(keys={"k1", "k2"}) as fake:
        yield fake


@pytest.fixture
def pair(tmp_path, fake, redis_server, proxy_launcher):
    """Two proxies, A and B, on one Redis and one upstream."""
    instances = []
    for name in ("a", "b"):
        cwd = tmp_path / name
        cwd.mkdir()
        (cwd / "calo.yaml").write_text(CONFIG.format(url=fake.url))
        metrics = f"127.0.0.1:{free_port()}"
        env = {"GEMINI_CALO_REDIS_URL": redis_server.url, "GEMINI_CALO_METRICS_LISTEN": metrics}
        instance = Instance(proxy_launcher(cwd, env, f"reverse:{fake.url}"), metrics)
        wait_metric(metrics, "calo_shared_state_up", 1, backend="redis")
        instances.append(instance)
    return instances


def keys_used(fake: FakeGemini, since: int = 0) -> list[str]:
    return [r.headers.get("x-goog-api-key") for r in fake.requests[since:]]


def cool_k1_on(instance: Instance, fake: FakeGemini) -> None:
    """A 429 for k1 on `instance`: it cools k1 and answers with k2 (a retry inside the call)."""
    before = len(fake.requests)
    fake.scripted = [Fail(429, "quota", retry_after=120)]
    answer = instance.gemini([{"role": "user", "parts": [{"text": "hi"}]}])
    assert answer.status_code == 200, answer.text
    assert keys_used(fake, before) == ["k1", "k2"]


def test_a_key_cooled_by_a_429_on_one_instance_is_skipped_by_the_other(pair, fake):
    a, b = pair
    cool_k1_on(a, fake)
    wait_metric(b.metrics, "calo_keys_cooling", 1, route="default")
    before = len(fake.requests)
    for _ in range(4):
        assert b.gemini([{"role": "user", "parts": [{"text": "hi"}]}]).status_code == 200
    assert keys_used(fake, before) == ["k2"] * 4


def test_a_rollup_summary_made_by_one_instance_is_used_by_the_other(pair, fake):
    a, b = pair
    first = [{"role": "user", "parts": [{"text": LONG}]}]
    answer = a.gemini(first)
    assert answer.status_code == 200
    reply = answer.json()["candidates"][0]["content"]
    wait_metric(a.metrics, "calo_rollup_summaries_cached", 1)
    wait_metric(b.metrics, "calo_rollup_summaries_cached", 1)
    summaries = [r for r in fake.requests if b"Summarise the conversation" in r.body]
    assert len(summaries) == 1  # made once, by A; B has it without asking

    follow = [*first, reply, {"role": "user", "parts": [{"text": "What did I ask?"}]}]
    assert b.gemini(follow).status_code == 200
    wait_metric(b.metrics, "calo_rollup_summaries_cached", 2)  # B summarises the longer one
    sent = json.loads(fake.last_call().body)  # after B's summary request: the call itself
    assert sent["contents"] == [follow[-1]]  # the first two turns: replaced by the summary
    instruction = sent["system_instruction"]["parts"][0]["text"]
    assert instruction.startswith("Summary of the earlier part of this conversation:")
    (line,) = [x for x in b.proxy.api_log_lines() if x["operation"] == "generateContent"]
    assert line["rollup_applied"] == "summary" and line["rollup_saved_bytes"] > 0


def tool_call_turn(instance: Instance, fake: FakeGemini) -> tuple[dict, dict]:
    """A Chat client's first turn on `instance`: the model calls a tool. Returns the request
    and the assistant message, as a client that drops thought signatures keeps it."""
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    body = {
        "model": "tools-model",
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": tools,
    }
    fake.scripted = [Reply(tool_calls=[("get_weather", {"city": "Paris"})])]
    answer = instance.chat(body)
    assert answer.status_code == 200, answer.text
    message = answer.json()["choices"][0]["message"]
    calls = [
        {"id": c["id"], "type": "function", "function": c["function"]}  # extra_content dropped
        for c in message["tool_calls"]
    ]
    return body, {"role": "assistant", "content": None, "tool_calls": calls}


def test_a_thought_signature_remembered_by_one_instance_is_restored_by_the_other(pair, fake):
    a, b = pair
    body, assistant = tool_call_turn(a, fake)
    wait_metric(b.metrics, "calo_thought_signatures_remembered", 1)
    call_id = assistant["tool_calls"][0]["id"]
    result = {"role": "tool", "tool_call_id": call_id, "content": '{"sky": "clear"}'}
    body["messages"] += [assistant, result]
    answer = b.chat(body)
    assert answer.status_code == 200, answer.text  # the fake refuses a call without its signature
    sent = json.loads(fake.last_call().body)
    (call_part,) = [p for p in sent["contents"][1]["parts"] if "functionCall" in p]
    assert base64.b64decode(call_part["thoughtSignature"]) in fake.issued_signatures


def test_a_responses_conversation_answered_by_one_instance_is_continued_on_the_other(pair, fake):
    """`previous_response_id` across processes (`--workers N` spreads a client's calls): A
    answers with a tool call, B gets the tool's result by A's answer id. The fake refuses the
    call without its thought signature, so the conversation came whole through Redis."""
    a, b = (openai.OpenAI(base_url=i.url + "/v1", api_key="pk", max_retries=0) for i in pair)
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
    fake.scripted = [Reply(tool_calls=[("get_weather", {"city": "Paris"})])]
    first = a.responses.create(model="tools-model", input="Weather in Paris?", tools=tools)
    (call,) = [item for item in first.output if item.type == "function_call"]
    result = {"type": "function_call_output", "call_id": call.call_id, "output": "clear"}
    second = b.responses.create(
        model="tools-model", input=[result], tools=tools, previous_response_id=first.id
    )
    assert second.status == "completed"
    contents = fake.last_call().json()["contents"]
    assert [turn["role"] for turn in contents] == ["user", "model", "user"]
    assert contents[0]["parts"] == [{"text": "Weather in Paris?"}]
    (call_part,) = [p for p in contents[1]["parts"] if "functionCall" in p]
    assert base64.b64decode(call_part["thoughtSignature"]) in fake.issued_signatures
    with pytest.raises(openai.BadRequestError, match="previous_response_id"):
        b.responses.create(model="tools-model", input="hi", previous_response_id="resp_unknown")


def test_redis_stopped_mid_run(pair, fake, redis_server):
    """Requests keep succeeding, the log says so once, and sharing resumes when it is back."""
    a, b = pair
    redis_server.stop()
    for instance in pair:
        wait_metric(instance.metrics, "calo_shared_state_up", 0, backend="redis")
    for _ in range(10):
        for instance in pair:
            assert instance.gemini([{"role": "user", "parts": [{"text": "hi"}]}]).status_code == 200
    redis_server.start()
    for instance in pair:
        wait_metric(instance.metrics, "calo_shared_state_up", 1, backend="redis")
    for instance in pair:
        # the lines reach the file a moment after the metric changes (the log is flushed late)
        assert wait_for(lambda i=instance: i.diagnostics("reachable again; sharing resumed"))
        (down,) = instance.diagnostics("is unreachable")
        assert f"Redis at 127.0.0.1:{redis_server.port}" in down
        assert "serving on this process's own state" in down
        assert len(instance.diagnostics("reachable again; sharing resumed")) == 1

    cool_k1_on(a, fake)  # sharing again
    wait_metric(b.metrics, "calo_keys_cooling", 1, route="default")
    before = len(fake.requests)
    assert b.gemini([{"role": "user", "parts": [{"text": "hi"}]}]).status_code == 200
    assert keys_used(fake, before) == ["k2"]


def test_a_key_cooled_while_redis_was_down_is_shared_when_it_is_back(pair, fake, redis_server):
    a, b = pair
    redis_server.stop()
    wait_metric(a.metrics, "calo_shared_state_up", 0, backend="redis")
    cool_k1_on(a, fake)
    assert metric(scrape(b.metrics), "calo_keys_cooling", route="default") == 0
    redis_server.start()
    wait_metric(b.metrics, "calo_keys_cooling", 1, route="default")


def test_a_late_instance_learns_what_the_others_did(
    tmp_path, pair, fake, redis_server, proxy_launcher
):
    a, _ = pair
    cool_k1_on(a, fake)
    cwd: Path = tmp_path / "late"
    cwd.mkdir()
    (cwd / "calo.yaml").write_text(CONFIG.format(url=fake.url))
    metrics = f"127.0.0.1:{free_port()}"
    env = {"GEMINI_CALO_REDIS_URL": redis_server.url, "GEMINI_CALO_METRICS_LISTEN": metrics}
    proxy_launcher(cwd, env, f"reverse:{fake.url}")
    wait_metric(metrics, "calo_keys_cooling", 1, route="default")
