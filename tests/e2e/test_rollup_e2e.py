"""Rollup through the real proxy with boto3: the upstream receives the rolled-up body.

Bedrock Anthropic invoke (system as a string) and Converse (system as [{text}]), streamed
and not; the summariser is called through the proxy's own routing and keys; the rolled-up
body is what got SigV4-signed.
"""

from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.config import Config

from tests.fake_bedrock import FakeBedrock

AKID, SECRET = "AKIDROLLUPPROXY", "rollup-proxy-secret"
REAL_AKID, REAL_SECRET = "AKIDROLLUPREAL", "rollup-real-secret"
CLAUDE = "anthropic.claude-3-5-sonnet-20241022-v2:0"


@pytest.fixture(scope="module")
def fake():
    with FakeBedrock({REAL_AKID: REAL_SECRET}) as fake:
        yield fake


def start(tmp_path, fake, proxy_launcher, rollup="on"):
    (tmp_path / "calo.yaml").write_text(
        f"""
api_keys: [summary-key-1, summary-key-2]
proxy_aws_credentials: {{{AKID}: {SECRET}}}
rollup: {{enabled: {rollup}, threshold: 300, summarizer_model: gemini-summarizer}}
model_routes:
  "anthropic.*":
    url: {fake.url}
    auth: sigv4
    aws: {{access_key: {REAL_AKID}, secret_key: {REAL_SECRET}, region: us-east-1}}
  "gemini-summarizer":
    url: {fake.url}
    api_keys: [summary-key-1, summary-key-2]
    auth: x-goog-api-key
"""
    )
    return proxy_launcher(tmp_path, {}, f"reverse:{fake.url}")


def client(proxy):
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=proxy.url,
        region_name="us-east-1",
        aws_access_key_id=AKID,
        aws_secret_access_key=SECRET,
        config=Config(retries={"max_attempts": 1}),
    )


LONG = "Please remember these facts about the project. " * 4


def converse_turns(c, stream: bool, turns: int = 4):
    """A multi-turn Converse conversation; returns the upstream bodies the fake received."""
    messages = []
    for i in range(turns):
        messages.append({"role": "user", "content": [{"text": f"turn {i}: {LONG}"}]})
        if stream:
            events = list(c.converse_stream(modelId=CLAUDE, messages=messages)["stream"])
            text = "".join(
                e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e
            )
        else:
            out = c.converse(modelId=CLAUDE, messages=messages)
            text = out["output"]["message"]["content"][0]["text"]
        messages.append({"role": "assistant", "content": [{"text": text}]})
        time.sleep(0.3)  # the summary is computed in the background, ready for the next turn
    return messages


@pytest.mark.parametrize("stream", [False, True])
def test_converse_conversation_is_rolled_up(tmp_path, fake, proxy_launcher, stream):
    proxy = start(tmp_path, fake, proxy_launcher)
    fake.clear()
    converse_turns(client(proxy), stream)
    conversation = [r for r in fake.requests if "/converse" in r.path]
    summaries = [r for r in fake.requests if ":generateContent" in r.path]
    assert summaries, "the summariser was never called"
    assert summaries[0].path == "/v1beta/models/gemini-summarizer:generateContent"
    assert [r.headers["x-goog-api-key"] for r in summaries[:2]] == [
        "summary-key-1",
        "summary-key-2",
    ][: len(summaries[:2])]
    bodies = [json.loads(r.body) for r in conversation]
    assert [len(b["messages"]) for b in bodies[:2]] == [1, 3]  # first turns go verbatim
    last = bodies[-1]
    assert len(last["messages"]) < 7, "the rolled-up body must be shorter than the transcript"
    assert last["system"][0]["text"].startswith("Summary of the earlier part of this conversation:")
    assert "SUMMARY#" in last["system"][0]["text"]
    assert last["messages"][0]["role"] == "user"
    assert all(r.signature_ok for r in conversation), "the rolled-up body is what got signed"
    used = [
        line["rollup_applied"] for line in proxy.api_log_lines() if "converse" in line["operation"]
    ]
    assert "summary" in used


def test_anthropic_invoke_gets_string_system(tmp_path, fake, proxy_launcher):
    proxy = start(tmp_path, fake, proxy_launcher)
    fake.clear()
    c = client(proxy)
    messages = []
    for i in range(4):
        messages.append({"role": "user", "content": f"turn {i}: {LONG}"})
        body = {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 64,
            "system": "Be brief.",
            "messages": messages,
        }
        out = json.loads(c.invoke_model(modelId=CLAUDE, body=json.dumps(body))["body"].read())
        messages.append({"role": "assistant", "content": out["content"]})
        time.sleep(0.3)
    last = json.loads([r for r in fake.requests if r.path.endswith("/invoke")][-1].body)
    assert isinstance(last["system"], str)
    assert last["system"].startswith("Summary of the earlier part") and last["system"].endswith(
        "Be brief."
    )
    assert len(last["messages"]) < len(messages) - 1


def test_turn_that_crosses_the_threshold_is_not_delayed(tmp_path, fake, proxy_launcher):
    proxy = start(tmp_path, fake, proxy_launcher)
    fake.clear()
    fake.summarizer_fails = False
    c = client(proxy)
    messages = [{"role": "user", "content": [{"text": LONG * 3}]}]
    c.converse(modelId=CLAUDE, messages=messages)
    # the reply reached the client; the summariser call may only come after it
    first = next(i for i, r in enumerate(fake.requests) if "/converse" in r.path)
    assert all(":generateContent" not in r.path for r in fake.requests[: first + 1])


def test_summariser_failure_falls_back_to_verbatim(tmp_path, fake, proxy_launcher):
    proxy = start(tmp_path, fake, proxy_launcher)
    fake.clear()
    fake.summarizer_fails = True
    try:
        messages = converse_turns(client(proxy), stream=False, turns=3)
    finally:
        fake.summarizer_fails = False
    bodies = [json.loads(r.body) for r in fake.requests if "/converse" in r.path]
    assert len(bodies[-1]["messages"]) == len(messages) - 1  # verbatim, nothing lost
    assert "system" not in bodies[-1]
    assert any("summariser failed" in line for line in proxy.output)


def test_rollup_off_leaves_bodies_byte_identical(tmp_path, fake, proxy_launcher):
    proxy = start(tmp_path, fake, proxy_launcher, rollup="off")
    fake.clear()
    c = client(proxy)
    sent = []
    c.meta.events.register("before-send.*", lambda request, **kw: sent.append(request.body))
    converse_turns(c, stream=False, turns=3)
    received = [r.body for r in fake.requests if "/converse" in r.path]
    assert received == sent and not [r for r in fake.requests if ":generateContent" in r.path]


# ---------------------------------------------------------------- OpenAI and Gemini shapes


def _llm_proxy(tmp_path, proxy_launcher, fake):
    env = {
        "GEMINI_CALO_API_KEYS": "sum-key-1,sum-key-2",
        "GEMINI_CALO_BASE_URL": fake.url,
        "GEMINI_CALO_CONVERSATION_SIZE_SUMMARIZATION_THRESHOLD": "300",
    }
    return proxy_launcher(tmp_path, env, f"reverse:{fake.url}")


@pytest.mark.parametrize("stream", [False, True])
def test_openai_conversation_is_rolled_up(tmp_path, proxy_launcher, stream):
    import openai

    from tests.fake_llm import FakeLLM

    with FakeLLM() as fake:
        proxy = _llm_proxy(tmp_path, proxy_launcher, fake)
        client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="x", max_retries=0)
        messages = [{"role": "system", "content": "You are terse."}]
        for i in range(4):
            messages.append({"role": "user", "content": f"turn {i}: {LONG}"})
            if stream:
                chunks = client.chat.completions.create(
                    model="gpt-x", messages=messages, stream=True
                )
                text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            else:
                text = (
                    client.chat.completions.create(model="gpt-x", messages=messages)
                    .choices[0]
                    .message.content
                )
            messages.append({"role": "assistant", "content": text})
            time.sleep(0.3)
        chats = [r for r in fake.requests if r.path.endswith("/chat/completions")]
        summaries = [r for r in fake.requests if r.path.endswith(":generateContent")]
        assert summaries and summaries[0].path == "/v1beta/models/gemini-2.5-flash:generateContent"
        assert summaries[0].headers["x-goog-api-key"] in ("sum-key-1", "sum-key-2")
        last = chats[-1].json()["messages"]
        assert len(last) < len(messages) - 1
        assert last[0] == {"role": "system", "content": "You are terse."}
        assert last[1]["role"] == "system" and last[1]["content"].startswith(
            "Summary of the earlier"
        )
        assert last[2]["role"] == "user"


def test_gemini_conversation_is_rolled_up_into_system_instruction(tmp_path, proxy_launcher):
    import httpx

    from tests.fake_llm import FakeLLM

    with FakeLLM() as fake:
        proxy = _llm_proxy(tmp_path, proxy_launcher, fake)
        contents = []
        url = f"{proxy.url}/v1beta/models/gemini-2.5-flash:generateContent"
        for i in range(4):
            contents.append({"role": "user", "parts": [{"text": f"turn {i}: {LONG}"}]})
            answer = httpx.post(url, json={"contents": contents}).json()
            contents.append(answer["candidates"][0]["content"])
            time.sleep(0.3)
        calls = [
            r.json()
            for r in fake.requests
            if r.json()
            .get("contents", [{}])[0]
            .get("parts", [{}])[0]
            .get("text", "")
            .startswith("turn")
        ]
        last = calls[-1]
        assert len(last["contents"]) < len(contents) - 1
        assert last["system_instruction"]["parts"][0]["text"].startswith("Summary of the earlier")


def test_tool_calls_are_never_split_from_their_results(tmp_path, proxy_launcher):
    """A reply that asks for a tool is no turn boundary: nothing is remembered there."""
    import openai

    from tests.fake_llm import FakeLLM

    with FakeLLM() as fake:
        proxy = _llm_proxy(tmp_path, proxy_launcher, fake)
        client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="x", max_retries=0)
        call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        messages = [
            {"role": "user", "content": LONG * 2},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": LONG},
        ]
        for _ in range(3):
            client.chat.completions.create(model="gpt-x", messages=messages)
            time.sleep(0.3)
        # the fake always answers text, so prefixes end after an assistant text reply only;
        # every request starts with the same untouched user + tool call + tool result
        for r in [r for r in fake.requests if r.path.endswith("/chat/completions")]:
            sent = r.json()["messages"]
            assert [m["role"] for m in sent[:3]] == ["user", "assistant", "tool"]
