"""The openai SDK's Responses API, unchanged, through the real proxy to every upstream kind.

Codex speaks Responses with `store: false`: each turn sends the whole history back, the
`reasoning` items (with `encrypted_content`) included. These tests do the same against the
strict fakes of tests/e2e/translate_fleet.py: Gemini 3-like (400 when a call's signature is
missing), Bedrock Converse (SigV4 checked), Anthropic Messages, an OpenAI-compatible Chat
server, and unrouted calls to base_url (Gemini). The SDK's own stream accumulator
(`responses.stream(...).get_final_response()`) is the check of our event order and fields.
"""

from __future__ import annotations

import json

import openai
import pytest

from tests.e2e.translate_fleet import (
    GEMINI_MODEL,
    PERSON,
    PNG,
    arrived_first,
    hold_last_chunk,
    log_line_for,
    model_for,
    release_later,
)
from tests.e2e.translate_fleet import (
    openai_client as client,
)
from tests.fake_server import Fail, Reply

KINDS = ["gemini", "bedrock-nova", "bedrock-claude", "anthropic", "chat", "unrouted"]
ROUTED = KINDS[:-1]  # unrouted calls reach the same Gemini fake: the light tests cover them
# the SDK's two ways for every upstream; events read one by one where a stream differs most
TURNS = [(k, how) for k in ROUTED for how in ("create", "stream")] + [
    ("gemini", "events"),
    ("bedrock-nova", "events"),
    ("anthropic", "events"),
]
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
TIME = {
    "type": "function",
    "name": "get_time",
    "description": "The time in a zone.",
    "parameters": {
        "type": "object",
        "properties": {"zone": {"type": "string"}},
        "required": ["zone"],
        "additionalProperties": False,
    },
}


def ask(c: openai.OpenAI, how: str, **kw):
    """One turn: responses.create, responses.stream (the SDK's accumulator), or
    responses.create(stream=True) with the final response from `response.completed`."""
    kw.setdefault("store", False)
    if how == "create":
        return c.responses.create(**kw)
    if how == "stream":
        with c.responses.stream(**kw) as stream:
            return stream.get_final_response()
    events = list(c.responses.create(stream=True, **kw))
    numbers = [e.sequence_number for e in events]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    return events[-1].response


def as_input(item) -> dict:
    """An output item as the next turn's input item (as Codex sends it back)."""
    return item.model_dump(exclude_none=True)


def calls(response) -> list:
    return [item for item in response.output if item.type == "function_call"]


# ------------------------------------------------------------------ every upstream kind


@pytest.mark.parametrize(("kind", "how"), TURNS)
def test_three_turn_function_call_round_trip(proxy, fleet, kind, how):
    """Two function calls in two turns, then the answer from both results; the whole history
    (reasoning items included) goes back each turn, and every strict fake accepts it."""
    fake = fleet.fake(kind)
    fake.scripted += [
        Reply(tool_calls=[("get_weather", {"city": "Paris"})], thinking="Need the weather."),
        Reply(tool_calls=[("get_time", {"zone": "CET"})], thinking="Now the time."),
    ]
    c = client(proxy)
    history: list = [{"role": "user", "content": "Weather and time in Paris?"}]
    results = {"get_weather": "sunny, 21C", "get_time": "14:05"}
    for turn in range(3):
        response = ask(
            c,
            how,
            model=model_for(kind, "gpt-5"),
            instructions="Be brief.",
            input=history,
            tools=[WEATHER, TIME],
            reasoning={"effort": "low"},
            include=["reasoning.encrypted_content"],
        )
        assert response.status == "completed"
        if turn == 2:
            break
        (call,) = calls(response)
        assert call.name == ["get_weather", "get_time"][turn] and call.call_id
        assert json.loads(call.arguments) == [{"city": "Paris"}, {"zone": "CET"}][turn]
        history += [as_input(item) for item in response.output]
        history.append(
            {"type": "function_call_output", "call_id": call.call_id, "output": results[call.name]}
        )
    assert "14:05" in response.output_text
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert len(fake.requests) == 3


@pytest.mark.parametrize("how", ["create", "stream"])
@pytest.mark.parametrize("kind", ROUTED)
def test_parallel_function_calls(proxy, fleet, kind, how):
    fleet.fake(kind).scripted.append(
        Reply(tool_calls=[("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})])
    )
    c = client(proxy)
    history: list = [{"role": "user", "content": "Weather in Paris and Rome?"}]
    response = ask(c, how, model=model_for(kind, "gpt-5"), input=history, tools=[WEATHER])
    found = calls(response)
    assert [json.loads(call.arguments)["city"] for call in found] == ["Paris", "Rome"]
    assert len({call.call_id for call in found}) == 2
    history += [as_input(item) for item in response.output]
    history += [
        {"type": "function_call_output", "call_id": found[0].call_id, "output": "sunny"},
        {"type": "function_call_output", "call_id": found[1].call_id, "output": "rainy"},
    ]
    final = ask(c, how, model=model_for(kind, "gpt-5"), input=history, tools=[WEATHER])
    text = final.output_text
    assert "sunny" in text and "rainy" in text and text.index("sunny") < text.index("rainy")


@pytest.mark.parametrize("kind", KINDS)
def test_a_string_input_and_its_text_answer(proxy, fleet, kind):
    response = client(proxy).responses.create(
        model=model_for(kind, "gpt-5"), input="hello there", instructions="SYS-7f3a"
    )
    assert response.output_text == "echo: hello there"
    assert response.object == "response" and response.status == "completed"
    (upstream,) = fleet.fake(kind).requests
    assert "SYS-7f3a" in upstream.body.decode()


@pytest.mark.parametrize("kind", KINDS)
def test_429_raises_rate_limit_error(proxy, fleet, kind):
    fake = fleet.fake(kind)
    c = client(proxy)
    fake.scripted.append(Fail(429, "slow down"))
    with pytest.raises(openai.RateLimitError) as err:
        c.responses.create(model=model_for(kind, "gpt-5"), input="hi")
    assert "slow down" in str(err.value)
    fake.scripted.append(Fail(429, "slow down"))
    with pytest.raises(openai.RateLimitError):
        list(c.responses.create(model=model_for(kind, "gpt-5"), input="hi", stream=True))


def test_a_wrong_proxy_key_raises_authentication_error(proxy, fleet):
    with pytest.raises(openai.AuthenticationError):
        client(proxy, key="nope").responses.create(model=model_for("gemini", "gpt-5"), input="hi")
    assert fleet.gemini.requests == []


@pytest.mark.parametrize("kind", KINDS)
def test_stream_reaches_the_client_before_the_upstream_finishes(proxy, fleet, kind):
    fake = fleet.fake(kind)
    fake.scripted.append(Reply(text=["one ", "two ", "three"]))
    hold_last_chunk(fake)
    timer = release_later(fake)
    c = client(proxy)
    with c.responses.stream(model=model_for(kind, "gpt-5"), input="count") as stream:
        events = iter(stream)

        def first_delta():
            for event in events:
                if event.type == "response.output_text.delta":
                    return event.delta
            return None

        assert arrived_first(fake, first_delta)
        final = stream.get_final_response()
    timer.cancel()
    assert final.output_text == "one two three"


# ------------------------------------------------------------------ Gemini specifics


@pytest.mark.parametrize("how", ["create", "stream"])
def test_gemini_signatures_ride_in_encrypted_content_and_are_restored_when_dropped(
    proxy, fleet, how
):
    """Keeping the reasoning items carries Gemini's signatures (encrypted_content); a client
    that drops them still works: the proxy restores them by call id."""
    fleet.gemini.scripted += [
        Reply(tool_calls=[("get_weather", {"city": "Paris"})]),
        Reply(tool_calls=[("get_time", {"zone": "CET"})]),
    ]
    c = client(proxy)
    history: list = [{"role": "user", "content": "Weather and time in Paris?"}]
    for _ in range(2):
        response = ask(
            c, how, model=model_for("gemini", "gpt-5"), input=history, tools=[WEATHER, TIME]
        )
        reasoning = [item for item in response.output if item.type == "reasoning"]
        assert reasoning and reasoning[0].encrypted_content  # where the signature travels
        (call,) = calls(response)
        history += [as_input(item) for item in response.output if item.type != "reasoning"]
        history.append({"type": "function_call_output", "call_id": call.call_id, "output": "ok"})
    final = ask(c, how, model=model_for("gemini", "gpt-5"), input=history, tools=[WEATHER, TIME])
    assert final.output_text.startswith("results:")


@pytest.mark.parametrize("how", ["create", "stream"])
def test_json_schema_output_reaches_gemini_as_response_json_schema(proxy, fleet, how):
    fleet.gemini.scripted.append(Reply(text='{"name": "Ada", "age": 36}'))
    response = ask(
        client(proxy),
        how,
        model=model_for("gemini", "gpt-5"),
        input="Ada is 36.",
        text={
            "format": {"type": "json_schema", "name": "person", "schema": PERSON, "strict": True}
        },
    )
    assert json.loads(response.output_text) == {"name": "Ada", "age": 36}
    config = fleet.gemini.last_call().json()["generationConfig"]
    assert config["responseJsonSchema"] == PERSON
    assert config["responseMimeType"] == "application/json"


@pytest.mark.parametrize("kind", ["bedrock-nova", "anthropic", "chat"])
def test_json_schema_output_reaches_the_other_upstreams(proxy, fleet, kind):
    fleet.fake(kind).scripted.append(Reply(text='{"name": "Ada", "age": 36}'))
    response = client(proxy).responses.create(
        model=model_for(kind, "gpt-5"),
        input="Ada is 36.",
        text={"format": {"type": "json_schema", "name": "person", "schema": PERSON}},
    )
    assert json.loads(response.output_text) == {"name": "Ada", "age": 36}
    assert "Ada" in fleet.fake(kind).last_call().body.decode()


def test_json_output_without_a_schema_is_refused_where_the_upstream_cannot_promise_it(proxy, fleet):
    """Converse has no schema-less JSON mode: 400 in OpenAI's shape, nothing sent."""
    with pytest.raises(openai.BadRequestError) as err:
        client(proxy).responses.create(
            model=model_for("bedrock-nova", "gpt-5"),
            input="json please",
            text={"format": {"type": "json_object"}},
        )
    assert err.value.status_code == 400 and "JSON" in str(err.value)
    assert fleet.bedrock.requests == []


def test_json_output_without_a_schema_is_asked_of_anthropic_in_the_prompt(proxy, fleet):
    fleet.anthropic.scripted.append(Reply(text='{"ok": true}'))
    response = client(proxy).responses.create(
        model=model_for("anthropic", "gpt-5"),
        input="json please",
        text={"format": {"type": "json_object"}},
    )
    assert json.loads(response.output_text) == {"ok": True}
    assert "JSON" in json.dumps(fleet.anthropic.last_call().json()["system"])


def test_the_log_line_of_a_translated_call(proxy, fleet):
    model = model_for("gemini", "gpt-log")
    client(proxy).responses.create(
        model=model, input="hi", store=False, prompt_cache_key="k", metadata={"a": "b"}
    )
    line = log_line_for(proxy, model)
    assert line["translated"] == "responses -> gemini"
    assert line["upstream_api"] == "gemini" and line["upstream_model"] == GEMINI_MODEL
    assert {"store", "prompt_cache_key", "metadata"} <= set(line["dropped"])
    assert line["usage"]["input_tokens"] > 0


def test_previous_response_id_continues_a_stored_conversation(proxy, fleet):
    c = client(proxy)
    first = c.responses.create(model=model_for("gemini", "gpt-5"), input="remember 7", store=True)
    second = c.responses.create(
        model=model_for("gemini", "gpt-5"), input="what number?", previous_response_id=first.id
    )
    assert second.status == "completed"
    contents = fleet.gemini.last_call().json()["contents"]
    assert "remember 7" in json.dumps(contents)
    # store: false (Codex): nothing is kept, so its id cannot be continued (as at OpenAI)
    unstored = c.responses.create(model=model_for("gemini", "gpt-5"), input="x", store=False)
    with pytest.raises(openai.BadRequestError, match="previous_response_id"):
        c.responses.create(
            model=model_for("gemini", "gpt-5"), input="y", previous_response_id=unstored.id
        )


@pytest.mark.parametrize("kind", KINDS)
def test_an_upstream_error_mid_stream_ends_the_stream_with_a_failure_event(proxy, fleet, kind):
    fleet.fake(kind).scripted.append(Fail(500, "boom mid-stream", mid_stream=True))
    events = list(
        client(proxy).responses.create(model=model_for(kind, "gpt-5"), input="hi", stream=True)
    )
    assert events[0].type == "response.created"
    assert [e.type for e in events[-2:]] == ["error", "response.failed"]
    assert events[-2].message == "boom mid-stream"
    assert events[-1].response.status == "failed"
    assert events[-1].response.error.message == "boom mid-stream"


@pytest.mark.parametrize("kind", ROUTED)
def test_an_image_and_the_reasoning_effort_reach_the_upstream(proxy, fleet, kind):
    response = client(proxy).responses.create(
        model=model_for(kind, "gpt-5"),
        reasoning={"effort": "high"},
        max_output_tokens=40000,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
                    {"type": "input_text", "text": "what is this?"},
                ],
            }
        ],
    )
    assert response.output_text == "echo: what is this?"
    body = fleet.fake(kind).last_call().json()
    assert PNG in json.dumps(body)
    thinking = {
        "gemini": lambda: body["generationConfig"]["thinkingConfig"],
        "anthropic": lambda: body["thinking"]["budget_tokens"],
        "bedrock-claude": lambda: body["additionalModelRequestFields"]["thinking"],
        "chat": lambda: body["reasoning_effort"] == "high",
    }
    if kind in thinking:
        assert thinking[kind]()
