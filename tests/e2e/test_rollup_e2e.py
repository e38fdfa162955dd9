"""Rollup through the real proxy with boto3: the upstream receives the rolled-up body.

Bedrock Anthropic invoke (system as a string) and Converse (system as [{text}]), streamed
and not; the summariser is called through the proxy's own routing and keys; the rolled-up
body is what got SigV4-signed.

A summary is computed after its turn's answer has gone. Each test waits for the summaries it
expects (their calls' log lines) before the next turn, never a guessed time: with LONG turns
and a threshold of 300 characters, the conversation after turn i (from 0) has i summaries.
"""

from __future__ import annotations

import itertools
import json
import time

import boto3
import pytest
from botocore.config import Config

from tests.e2e.launch import wait_for
from tests.fake_bedrock import FakeBedrock
from tests.fake_llm import FakeLLM
from tests.fake_server import Reply

AKID, SECRET = "AKIDROLLUPPROXY", "rollup-proxy-secret"
REAL_AKID, REAL_SECRET = "AKIDROLLUPREAL", "rollup-real-secret"
CLAUDE = "anthropic.claude-3-5-sonnet-20241022-v2:0"


@pytest.fixture(scope="module")
def fake():
    with FakeBedrock({REAL_AKID: REAL_SECRET}) as fake:
        yield fake


def start(tmp_path, fake, proxy_launcher, rollup="on", summarizer_url=None):
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
    url: {summarizer_url or fake.url}
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


def summaries_done(proxy, count: int) -> None:
    """Wait until `count` summaries are done (their calls logged): the next turn can use them."""
    proxy.api_log_lines(count, where=lambda line: line["operation"] == "rollup.summary")


def converse_turns(c, proxy, stream: bool, turns: int = 4, rollup: bool = True):
    """A multi-turn Converse conversation (summarised when `rollup`); returns its messages."""
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
        summaries_done(proxy, i if rollup else 0)
    return messages


@pytest.mark.parametrize("stream", [False, True])
def test_converse_conversation_is_rolled_up(tmp_path, fake, proxy_launcher, stream):
    proxy = start(tmp_path, fake, proxy_launcher)
    fake.clear()
    converse_turns(client(proxy), proxy, stream)
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
        summaries_done(proxy, i)
    last = json.loads([r for r in fake.requests if r.path.endswith("/invoke")][-1].body)
    assert isinstance(last["system"], str)
    assert last["system"].startswith("Summary of the earlier part") and last["system"].endswith(
        "Be brief."
    )
    assert len(last["messages"]) < len(messages) - 1


SLOW_SUMMARY = 3.0  # seconds the summariser takes


def test_turn_that_crosses_the_threshold_is_not_delayed(tmp_path, fake, proxy_launcher):
    """The client's wait, measured against a summariser that takes 3 s: its answer does not
    wait for the summary that its turn asks for."""
    with FakeLLM() as summariser:
        summariser.delay_headers = SLOW_SUMMARY
        proxy = start(tmp_path, fake, proxy_launcher, summarizer_url=summariser.url)
        fake.clear()
        c = client(proxy)
        # below the threshold: the connections open, nothing is summarised
        c.converse(modelId=CLAUDE, messages=[{"role": "user", "content": [{"text": "hi"}]}])
        started = time.monotonic()
        c.converse(modelId=CLAUDE, messages=[{"role": "user", "content": [{"text": LONG * 3}]}])
        waited = time.monotonic() - started
        assert wait_for(lambda: summariser.requests, SLOW_SUMMARY + 10), "no summary asked for"
        assert waited < 1.0, f"the client waited {waited:.2f} s for its answer"


def test_summariser_failure_falls_back_to_verbatim(tmp_path, fake, proxy_launcher):
    proxy = start(tmp_path, fake, proxy_launcher)
    fake.clear()
    fake.summarizer_fails = True
    try:
        messages = converse_turns(client(proxy), proxy, stream=False, turns=3)
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
    converse_turns(c, proxy, stream=False, turns=3, rollup=False)
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
            summaries_done(proxy, i)
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

    with FakeLLM() as fake:
        proxy = _llm_proxy(tmp_path, proxy_launcher, fake)
        contents = []
        url = f"{proxy.url}/v1beta/models/gemini-2.5-flash:generateContent"
        for i in range(4):
            contents.append({"role": "user", "parts": [{"text": f"turn {i}: {LONG}"}]})
            answer = httpx.post(url, json={"contents": contents}).json()
            contents.append(answer["candidates"][0]["content"])
            summaries_done(proxy, i)
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
    """A reply that asks for a tool is no turn boundary: nothing is remembered there, so no
    later request has a tool result cut from the call it answers. The conversation grows past
    such a reply, so a conversation wrongly remembered there would be the longest match."""
    import openai

    with FakeLLM() as fake:
        proxy = _llm_proxy(tmp_path, proxy_launcher, fake)
        client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="x", max_retries=0)

        def ask(messages: list[dict]) -> dict:
            message = client.chat.completions.create(model="gpt-x", messages=messages)
            return message.choices[0].message.model_dump(
                include={"role", "content", "tool_calls"}, exclude_none=True
            )

        def summary_asked(marker: str) -> bool:
            return any(marker.encode() in r.body for r in fake.requests if ":generate" in r.path)

        messages = [{"role": "user", "content": f"turn 0: {LONG * 2}"}]
        messages.append(ask(messages))  # over the threshold, a text reply: summarised
        summaries_done(proxy, 1)
        messages.append({"role": "user", "content": f"turn 1: {LONG}"})
        fake.scripted.append(Reply(tool_calls=[("lookup", {"q": "facts"})]))
        call = ask(messages)  # a tool call: nothing may be remembered here
        messages.append({"role": "assistant", "content": None, "tool_calls": call["tool_calls"]})
        # an unrelated conversation's summary is asked for after anything the tool call
        # started; once it is, every summary asked for so far is done before the next turn
        ask([{"role": "user", "content": f"other: {LONG * 2}"}])
        assert wait_for(lambda: summary_asked("other: "))
        asked = sum(1 for r in fake.requests if ":generate" in r.path)
        summaries_done(proxy, asked)
        messages.append(
            {"role": "tool", "tool_call_id": call["tool_calls"][0]["id"], "content": LONG}
        )
        ask(messages)

        chats = [r.json()["messages"] for r in fake.requests if r.path.endswith("/completions")]
        assert len(chats) == 4
        for sent in chats:
            for before, message in itertools.pairwise(sent):
                if message["role"] == "tool":
                    ids = [c["id"] for c in before.get("tool_calls") or []]
                    assert message["tool_call_id"] in ids, f"a tool result cut off: {sent}"
        assert chats[-1][0]["content"].startswith("Summary of the earlier")  # turns 0 rolled up
