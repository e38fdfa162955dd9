"""The anthropic SDK, unchanged, through the real proxy to every upstream kind (SPEC 10).

One proxy in front of strict fakes (tests/e2e/translate_fleet.py): Anthropic itself
(passthrough), Bedrock InvokeModel for anthropic.* models and Converse for the others (SigV4
checked by the fake), Gemini 3-like (thought signatures checked), an OpenAI-compatible Chat
server, and unrouted calls to base_url (Gemini). Each fake refuses what its real API refuses,
so a translation that loses or misplaces something fails here.
"""

from __future__ import annotations

import functools
import json

import anthropic
import httpx  # the raw calls
import httpx2  # the anthropic SDK 2.x speaks httpx2 (same API as httpx)
import pytest

from tests.e2e.translate_fleet import (
    ANTHROPIC_KEY,
    GEMINI_MODEL,
    PROXY_KEY,
    arrived_first,
    hold_last_chunk,
    log_line_for,
    model_for,
    no_secret_leaked,
    release_later,
    shared,
)
from tests.fake_server import Fail, Reply, Usage

KINDS = ["anthropic", "bedrock-claude", "bedrock-nova", "gemini", "chat", "unrouted"]
SYSTEM = "You are terse. Marker: SYS-7f3a."
# a 1x1 PNG
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
TIME = {
    "name": "get_time",
    "description": "The time in a zone.",
    "input_schema": {
        "type": "object",
        "properties": {"zone": {"type": "string"}},
        "required": ["zone"],
    },
}
THINKING = {"type": "enabled", "budget_tokens": 2048}


@pytest.fixture(scope="module")
def fleet(request, tmp_path_factory):
    return shared(request, tmp_path_factory)[0]


@pytest.fixture(scope="module")
def proxy(request, tmp_path_factory):
    return shared(request, tmp_path_factory)[1]


@pytest.fixture(autouse=True)
def fresh(fleet):
    fleet.reset()
    yield
    no_secret_leaked(fleet)


class Sent:
    """What the SDK put on the wire, per request (captured by an httpx hook)."""

    def __init__(self):
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> None:
        request.read()
        self.requests.append(request)


def client(proxy, key: str = PROXY_KEY, sent: Sent | None = None, **kw) -> anthropic.Anthropic:
    """An SDK client; the plain ones are made once per key (making one costs ~90 ms)."""
    if sent is None and not kw:
        return _plain_client(proxy, key)
    return _new_client(proxy, key, sent, **kw)


@functools.cache
def _plain_client(proxy, key: str) -> anthropic.Anthropic:
    return _new_client(proxy, key, None)


def _new_client(proxy, key: str, sent: Sent | None, **kw) -> anthropic.Anthropic:
    hooks = {"request": [sent]} if sent else {}
    return anthropic.Anthropic(
        api_key=key,
        base_url=proxy.url,
        max_retries=0,
        http_client=httpx2.Client(event_hooks=hooks, timeout=20),
        **kw,
    )


def ask(c: anthropic.Anthropic, stream: bool, **kw):
    """messages.create, or messages.stream assembled by the SDK's own accumulator."""
    kw.setdefault("max_tokens", 4096)
    if not stream:
        return c.messages.create(**kw)
    with c.messages.stream(**kw) as s:
        return s.get_final_message()


def as_param(block) -> dict:
    """An answer's content block as the client sends it back (as Claude Code does)."""
    if block.type == "thinking":
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    if block.type == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.data}
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    return {"type": "text", "text": block.text}


def texts(message) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


def tool_uses(message) -> list:
    return [b for b in message.content if b.type == "tool_use"]


# ------------------------------------------------------------------ every upstream kind


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("kind", KINDS)
def test_system_prompt_and_image_reach_every_upstream(proxy, fleet, kind, stream):
    """A user turn with an image and text, a system prompt: the upstream gets both in its own
    protocol and the fake's echo comes back as the SDK's message."""
    model = model_for(kind)
    message = ask(
        client(proxy),
        stream,
        model=model,
        system=SYSTEM,
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {"type": "text", "text": "what is this?"},
                ],
            }
        ],
    )
    assert texts(message) == "echo: what is this?"
    assert message.stop_reason == "end_turn" and message.role == "assistant"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    (upstream,) = fleet.fake(kind).requests
    assert "SYS-7f3a" in upstream.body.decode() and PNG in upstream.body.decode()


@pytest.mark.parametrize("kind", KINDS)
def test_three_turn_tool_round_trip_with_thinking(proxy, fleet, kind):
    """Turn 1 calls a tool, turn 2 another, turn 3 answers from both results; the client sends
    each answer back as it got it (thinking blocks with their signatures included): every
    strict fake accepts the history, Gemini's signatures included. Streamed and not mixed."""
    fake = fleet.fake(kind)
    fake.scripted += [
        Reply(tool_calls=[("get_weather", {"city": "Paris"})], thinking="Need the weather."),
        Reply(tool_calls=[("get_time", {"zone": "CET"})], thinking="Now the time."),
    ]
    c = client(proxy)
    messages = [{"role": "user", "content": "Weather and time in Paris?"}]
    results = {"get_weather": "sunny, 21C", "get_time": "14:05"}
    for turn, stream in enumerate([True, False, True]):
        answer = ask(
            c,
            stream,
            model=model_for(kind),
            messages=messages,
            tools=[WEATHER, TIME],
            thinking=THINKING,
        )
        if turn == 2:
            break
        assert answer.stop_reason == "tool_use"
        (call,) = tool_uses(answer)
        assert call.name == ["get_weather", "get_time"][turn]
        assert call.input == [{"city": "Paris"}, {"zone": "CET"}][turn]
        assert any(b.type == "thinking" for b in answer.content), answer.content
        messages += [
            {"role": "assistant", "content": [as_param(b) for b in answer.content]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": results[call.name]}
                ],
            },
        ]
    assert answer.stop_reason == "end_turn"
    assert "14:05" in texts(answer)
    assert len(fake.requests) == 3


@pytest.mark.parametrize("kind", ["gemini", "unrouted"])
@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_gemini_tool_turns_when_the_client_drops_thinking(proxy, fleet, kind, stream):
    """A client that keeps only tool_use and text: the proxy restores Gemini's signatures by
    tool-call id, so the Gemini 3-like fake (400 on a missing signature) accepts each turn."""
    fake = fleet.fake(kind)
    fake.scripted += [
        Reply(tool_calls=[("get_weather", {"city": "Paris"})]),
        Reply(tool_calls=[("get_time", {"zone": "CET"})]),
    ]
    c = client(proxy)
    messages = [{"role": "user", "content": "Weather and time in Paris?"}]
    for _ in range(2):
        answer = ask(c, stream, model=model_for(kind), messages=messages, tools=[WEATHER, TIME])
        (call,) = tool_uses(answer)
        kept = [as_param(b) for b in answer.content if b.type in ("text", "tool_use")]
        messages += [
            {"role": "assistant", "content": kept},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "ok"}],
            },
        ]
    answer = ask(c, stream, model=model_for(kind), messages=messages, tools=[WEATHER, TIME])
    assert answer.stop_reason == "end_turn" and texts(answer).startswith("results:")
    sent = [json.loads(r.body) for r in fake.requests]
    signed = [p for p in sent[-1]["contents"][1]["parts"] if "functionCall" in p]
    assert signed[0].get("thoughtSignature"), "the signature was not restored"


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("kind", KINDS)
def test_parallel_tool_calls_with_distinct_ids(proxy, fleet, kind, stream):
    fake = fleet.fake(kind)
    fake.scripted.append(
        Reply(tool_calls=[("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})])
    )
    c = client(proxy)
    messages = [{"role": "user", "content": "Weather in Paris and Rome?"}]
    answer = ask(c, stream, model=model_for(kind), messages=messages, tools=[WEATHER])
    calls = tool_uses(answer)
    assert [call.input["city"] for call in calls] == ["Paris", "Rome"]
    assert len({call.id for call in calls}) == 2 and all(call.id for call in calls)
    messages += [
        {"role": "assistant", "content": [as_param(b) for b in answer.content]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": calls[0].id, "content": "sunny"},
                {"type": "tool_result", "tool_use_id": calls[1].id, "content": "rainy"},
            ],
        },
    ]
    final = ask(c, stream, model=model_for(kind), messages=messages, tools=[WEATHER])
    assert final.stop_reason == "end_turn"
    assert "sunny" in texts(final) and "rainy" in texts(final)
    assert texts(final).index("sunny") < texts(final).index("rainy")


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("kind", KINDS)
def test_thinking_comes_back_as_thinking_blocks(proxy, fleet, kind, stream):
    fleet.fake(kind).scripted.append(Reply(thinking="Pondering deeply.", text="42"))
    answer = ask(
        client(proxy),
        stream,
        model=model_for(kind),
        messages=[{"role": "user", "content": "The answer?"}],
        thinking=THINKING,
    )
    assert answer.content[0].type == "thinking"
    # Gemini's signature may come in a thinking block of its own (it sat on a text part)
    thinking = [b for b in answer.content if b.type == "thinking"]
    assert "".join(b.thinking for b in thinking) == "Pondering deeply."
    assert [b.text for b in answer.content if b.type == "text"] == ["42"]  # no empty block


@pytest.mark.parametrize("kind", KINDS)
def test_upstream_errors_raise_the_sdks_exceptions(proxy, fleet, kind):
    fake = fleet.fake(kind)
    c = client(proxy)
    messages = [{"role": "user", "content": "hi"}]
    fake.scripted.append(Fail(429, "slow down", retry_after=1))
    with pytest.raises(anthropic.RateLimitError) as err:
        c.messages.create(model=model_for(kind), max_tokens=64, messages=messages)
    assert "slow down" in str(err.value)
    fake.scripted.append(Fail(429, "slow down"))
    with (
        pytest.raises(anthropic.RateLimitError),
        c.messages.stream(model=model_for(kind), max_tokens=64, messages=messages) as s,
    ):
        s.get_final_message()
    fake.scripted.append(Fail(401, "bad upstream key"))
    with pytest.raises(anthropic.AuthenticationError):
        c.messages.create(model=model_for(kind), max_tokens=64, messages=messages)


@pytest.mark.parametrize("kind", KINDS)
def test_a_wrong_proxy_key_raises_authentication_error(proxy, fleet, kind):
    with pytest.raises(anthropic.AuthenticationError):
        client(proxy, key="not-a-proxy-key").messages.create(
            model=model_for(kind), max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
    assert fleet.fake(kind).requests == []


@pytest.mark.parametrize("kind", KINDS)
def test_stream_reaches_the_client_before_the_upstream_finishes(proxy, fleet, kind):
    """With the fake holding its last chunk, the SDK already has the first events: the
    stream is translated event by event, never buffered (Bedrock: event-stream frames in,
    SSE out)."""
    fake = fleet.fake(kind)
    fake.scripted.append(Reply(text=["one ", "two ", "three"]))
    hold_last_chunk(fake)
    timer = release_later(fake)
    c = client(proxy)
    with c.messages.stream(
        model=model_for(kind), max_tokens=64, messages=[{"role": "user", "content": "count"}]
    ) as s:
        events = iter(s)

        def first_text():
            for event in events:
                if event.type == "text":
                    return event.text
            return None

        assert arrived_first(fake, first_text)
        final = s.get_final_message()
    timer.cancel()
    assert texts(final) == "one two three"


# ------------------------------------------------------------------ passthrough to Anthropic


def test_anthropic_passthrough_swaps_the_key_and_keeps_the_bytes(proxy, fleet):
    sent = Sent()
    c = client(
        proxy, sent=sent, default_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"}
    )
    body = {
        "model": model_for("anthropic"),
        "max_tokens": 64,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": "hi"}],
        "metadata": {"user_id": "u-1"},
    }
    assert texts(c.messages.create(**body)) == "echo: hi"
    with c.messages.stream(**body) as s:
        assert texts(s.get_final_message()) == "echo: hi"
    assert len(fleet.anthropic.requests) == 2
    for client_request, upstream in zip(sent.requests, fleet.anthropic.requests, strict=True):
        assert upstream.body == client_request.content  # nothing rewritten: byte for byte
        assert upstream.headers["x-api-key"] == ANTHROPIC_KEY
        assert "authorization" not in upstream.headers
        assert upstream.headers["anthropic-version"] == client_request.headers["anthropic-version"]
        assert upstream.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    line = log_line_for(proxy, model_for("anthropic"))
    assert "translated" not in line and line["api"] == "anthropic"


def test_x_api_key_from_the_client_works_too(proxy, fleet):
    """Claude Code with ANTHROPIC_API_KEY sends x-api-key (and ?beta=true)."""
    answer = httpx.post(
        f"{proxy.url}/v1/messages?beta=true",
        headers={"x-api-key": PROXY_KEY, "anthropic-version": "2023-06-01"},
        json={
            "model": model_for("gemini"),
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}],
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["content"][-1]["text"] == "echo: hi"


# ------------------------------------------------------------------ Bedrock specifics


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "invoke-stream"])
def test_claude_on_bedrock_uses_invoke_model_with_the_bedrock_messages_body(proxy, fleet, stream):
    answer = ask(
        client(proxy),
        stream,
        model=model_for("bedrock-claude"),
        system=SYSTEM,
        messages=[{"role": "user", "content": "hi"}],
    )
    assert texts(answer) == "echo: hi"
    (upstream,) = fleet.bedrock.requests
    operation = "invoke-with-response-stream" if stream else "invoke"
    assert upstream.path == f"/model/anthropic.claude-sonnet-4-20250514-v1%3A0/{operation}"
    body = upstream.json()
    assert body["anthropic_version"] == "bedrock-2023-05-31"
    assert "model" not in body and "stream" not in body
    assert upstream.signature_ok is True


@pytest.mark.parametrize("stream", [False, True], ids=["converse", "converse-stream"])
def test_other_bedrock_models_use_converse(proxy, fleet, stream):
    answer = ask(
        client(proxy),
        stream,
        model=model_for("bedrock-nova"),
        messages=[{"role": "user", "content": "hi"}],
    )
    assert texts(answer) == "echo: hi"
    (upstream,) = fleet.bedrock.requests
    operation = "converse-stream" if stream else "converse"
    assert upstream.path == f"/model/amazon.nova-pro-v1%3A0/{operation}"
    assert upstream.signature_ok is True


# ------------------------------------------------------------------ Gemini specifics


def test_a_full_json_schema_reaches_gemini_intact(proxy, fleet):
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {"point": {"type": "object", "properties": {"x": {"type": "number"}}}},
        "properties": {
            "where": {"$ref": "#/$defs/point"},
            "mode": {"anyOf": [{"type": "string", "const": "fast"}, {"type": "integer"}]},
            "count": {"type": "integer", "exclusiveMinimum": 0},
            "tags": {"type": "object", "propertyNames": {"pattern": "^[a-z]+$"}},
        },
        "required": ["where"],
        "additionalProperties": False,
    }
    tool = {"name": "plot", "description": "Plot a point.", "input_schema": schema}
    ask(
        client(proxy),
        False,
        model=model_for("gemini"),
        messages=[{"role": "user", "content": "plot"}],
        tools=[tool],
    )
    assert fleet.gemini.tool_schemas[-1]["plot"] == json.dumps({"parametersJsonSchema": schema})


def test_the_log_line_of_a_translated_call(proxy, fleet):
    model = model_for("gemini", "claude-log")
    ask(
        client(proxy),
        True,
        model=model,
        messages=[{"role": "user", "content": "hi"}],
        metadata={"user_id": "u-1"},
    )
    line = log_line_for(proxy, model)
    assert line["translated"] == "anthropic -> gemini"
    assert line["upstream_api"] == "gemini" and line["upstream_model"] == GEMINI_MODEL
    assert "metadata" in line["dropped"]
    assert line["usage"]["input_tokens"] > 0 and line["usage"]["output_tokens"] > 0
    assert line["status"] == 200 and line["streaming"] is True


@pytest.mark.parametrize("kind", KINDS)
def test_an_upstream_error_mid_stream_becomes_an_error_event(proxy, fleet, kind):
    fleet.fake(kind).scripted.append(Fail(500, "boom mid-stream", mid_stream=True))
    c = client(proxy)
    with (
        pytest.raises(anthropic.APIStatusError) as err,
        c.messages.stream(
            model=model_for(kind), max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as s,
    ):
        s.get_final_message()
    assert "boom mid-stream" in str(err.value)


@pytest.mark.parametrize("kind", ["gemini", "bedrock-nova", "chat"])
def test_usage_counts_cached_and_thinking_tokens_as_anthropic_does(proxy, fleet, kind):
    """SPEC 10: Anthropic input_tokens + cache_read_input_tokens = the whole prompt; output
    counts the thinking too."""
    usage = Usage(prompt=100, cached=40, output=5, thoughts=7)
    fleet.fake(kind).scripted += [Reply(text="hi", usage=usage), Reply(text="hi", usage=usage)]
    for stream in (False, True):
        answer = ask(
            client(proxy),
            stream,
            model=model_for(kind),
            messages=[{"role": "user", "content": "x"}],
        )
        assert answer.usage.input_tokens == 60 and answer.usage.cache_read_input_tokens == 40
        assert answer.usage.output_tokens == 12


def test_count_tokens_passes_through_to_anthropic(proxy, fleet):
    count = client(proxy).messages.count_tokens(
        model=model_for("anthropic"), messages=[{"role": "user", "content": "count these words"}]
    )
    assert count.input_tokens == 5
    assert fleet.anthropic.requests[-1].path == "/v1/messages/count_tokens"


@pytest.mark.xfail(reason="count_tokens translation: the lead's work in progress", strict=False)
@pytest.mark.parametrize("kind", ["gemini", "bedrock-claude", "chat"])
def test_count_tokens_is_translated(proxy, fleet, kind):
    count = client(proxy).messages.count_tokens(
        model=model_for(kind), messages=[{"role": "user", "content": "count these words"}]
    )
    assert count.input_tokens > 0


@pytest.mark.xfail(reason="anthropic-beta for Bedrock: the lead's work in progress", strict=False)
def test_anthropic_beta_reaches_bedrock_in_the_body(proxy, fleet):
    c = client(proxy, default_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"})
    ask(c, False, model=model_for("bedrock-claude"), messages=[{"role": "user", "content": "hi"}])
    body = fleet.bedrock.requests[-1].json()
    assert body["anthropic_beta"] == ["interleaved-thinking-2025-05-14"]
