"""The anthropic SDK, unchanged, through the real proxy to every upstream kind (SPEC 10).

One proxy in front of strict fakes (tests/e2e/translate_fleet.py): Anthropic itself
(passthrough), Bedrock InvokeModel for anthropic.* models and Converse for the others (SigV4
checked by the fake), Gemini 3-like (thought signatures checked), an OpenAI-compatible Chat
server, and unrouted calls to base_url (Gemini). Each fake refuses what its real API refuses,
so a translation that loses or misplaces something fails here.
"""

from __future__ import annotations

import json

import anthropic
import pytest

from tests.e2e.anthropic_sdk import (
    SYSTEM,
    THINKING,
    TIME,
    WEATHER,
    as_param,
    ask,
    client,
    texts,
    tool_uses,
)
from tests.e2e.translate_fleet import (
    PNG,
    arrived_first,
    hold_last_chunk,
    model_for,
    release_later,
)
from tests.fake_server import Fail, Reply, Usage

KINDS = ["anthropic", "bedrock-claude", "bedrock-nova", "gemini", "chat", "unrouted"]


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
    assert message.id.startswith("msg_")
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
