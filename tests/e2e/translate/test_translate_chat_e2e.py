"""The openai SDK's Chat Completions, unchanged, through the real proxy to upstreams that
speak another API: Gemini native (a route with `api: gemini`), Bedrock Converse (SigV4
checked) and Anthropic Messages; and passthrough to an OpenAI-compatible server.

Gemini's thought signatures ride in `tool_calls[].extra_content.google.thought_signature`
(Google's own convention); a client that drops them still completes its tool conversation
with the Gemini 3-like fake, which answers 400 to a call without its signature.
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
from tests.fake_server import Fail, Reply, Usage

KINDS = ["gemini", "bedrock-nova", "bedrock-claude", "anthropic", "chat"]
# chunks put together by the client: where signatures (Gemini) and thinking text (Anthropic)
# must survive the client's own assembling
TURNS = [(k, how) for k in KINDS for how in ("create", "stream")] + [
    ("gemini", "chunks"),
    ("anthropic", "chunks"),
    ("bedrock-claude", "chunks"),
]


def function(name: str, field: str) -> dict:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"The {name} tool.",
            "parameters": {
                "type": "object",
                "properties": {field: {"type": "string"}},
                "required": [field],
            },
        },
    }


WEATHER, TIME = function("get_weather", "city"), function("get_time", "zone")


def ask(c: openai.OpenAI, how: str, **kw):
    """One turn's message: create, or the SDK's stream accumulator (chat.completions.stream),
    or create(stream=True) chunks put together here."""
    if how == "create":
        completion = c.chat.completions.create(**kw)
    elif how == "stream":
        with c.chat.completions.stream(**kw) as stream:
            completion = stream.get_final_completion()
    else:
        return assembled(c.chat.completions.create(stream=True, **kw))
    return completion.choices[0].message, completion.choices[0].finish_reason


def assembled(chunks) -> tuple[dict, str | None]:
    """Chunks of create(stream=True) as one assistant message, as a client that keeps what
    it is sent does: tool-call arguments stream as fragments by `index` (the id and name come
    first); reasoning_content and extra_content are kept."""
    message: dict = {"role": "assistant", "content": "", "tool_calls": []}
    finish = None
    for chunk in chunks:
        for choice in chunk.choices:
            delta = choice.delta
            message["content"] += delta.content or ""
            extra = delta.model_extra or {}
            if extra.get("reasoning_content"):
                message["reasoning_content"] = (
                    message.get("reasoning_content", "") + extra["reasoning_content"]
                )
            if extra.get("extra_content"):
                message["extra_content"] = extra["extra_content"]
            for call in delta.tool_calls or []:
                if call.index == len(message["tool_calls"]):
                    assert call.id and call.function.name, "a call starts with its id and name"
                    message["tool_calls"].append(call.model_dump(exclude_none=True))
                    message["tool_calls"][-1].pop("index")
                else:
                    fragment = call.function.arguments or ""
                    message["tool_calls"][call.index]["function"]["arguments"] += fragment
            finish = choice.finish_reason or finish
    if not message["tool_calls"]:
        del message["tool_calls"]
    return message, finish


def as_param(message, keep_extra: bool = True) -> dict:
    """The assistant message as the next request's message: whole, as an app that appends
    the SDK's message object sends it (extra fields such as reasoning_content and
    extra_content included); `keep_extra=False`: only OpenAI's own fields."""
    data = message if isinstance(message, dict) else message.model_dump(exclude_none=True)
    if keep_extra:
        return data
    out = {"role": "assistant", "content": data.get("content") or None}
    calls = data.get("tool_calls") or []
    if calls:
        out["tool_calls"] = [
            call if keep_extra else {k: call[k] for k in ("id", "type", "function")}
            for call in calls
        ]
    return out


def tool_calls(message) -> list[dict]:
    data = message if isinstance(message, dict) else message.model_dump(exclude_none=True)
    return data.get("tool_calls") or []


def content(message) -> str:
    return (message.get("content") if isinstance(message, dict) else message.content) or ""


# ------------------------------------------------------------------ every upstream kind


@pytest.mark.parametrize(("kind", "how"), TURNS)
def test_three_turn_tool_round_trip_with_reasoning(proxy, fleet, kind, how):
    fake = fleet.fake(kind)
    fake.scripted += [
        Reply(tool_calls=[("get_weather", {"city": "Paris"})], thinking="Need the weather."),
        Reply(tool_calls=[("get_time", {"zone": "CET"})], thinking="Now the time."),
    ]
    c = client(proxy)
    messages: list = [
        {"role": "system", "content": "Be brief. SYS-7f3a"},
        {"role": "user", "content": "Weather and time in Paris?"},
    ]
    results = {"get_weather": "sunny, 21C", "get_time": "14:05"}
    for turn in range(3):
        message, finish = ask(
            c,
            how,
            model=model_for(kind, "gpt-5"),
            messages=messages,
            tools=[WEATHER, TIME],
            reasoning_effort="low",
        )
        if turn == 2:
            break
        assert finish == "tool_calls"
        (call,) = tool_calls(message)
        assert call["function"]["name"] == ["get_weather", "get_time"][turn]
        assert (
            json.loads(call["function"]["arguments"]) == [{"city": "Paris"}, {"zone": "CET"}][turn]
        )
        messages += [
            as_param(message),
            {
                "role": "tool",
                "tool_call_id": call["id"],
                "content": results[call["function"]["name"]],
            },
        ]
    assert finish == "stop" and "14:05" in content(message)
    assert len(fake.requests) == 3
    assert all("SYS-7f3a" in r.body.decode() for r in fake.requests)


@pytest.mark.parametrize("how", ["create", "chunks"])
@pytest.mark.parametrize("kind", KINDS)
def test_parallel_tool_calls(proxy, fleet, kind, how):
    fleet.fake(kind).scripted.append(
        Reply(tool_calls=[("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})])
    )
    c = client(proxy)
    messages: list = [{"role": "user", "content": "Weather in Paris and Rome?"}]
    message, finish = ask(
        c, how, model=model_for(kind, "gpt-5"), messages=messages, tools=[WEATHER]
    )
    calls = tool_calls(message)
    assert finish == "tool_calls"
    assert [json.loads(call["function"]["arguments"])["city"] for call in calls] == [
        "Paris",
        "Rome",
    ]
    assert len({call["id"] for call in calls}) == 2
    messages += [
        as_param(message),
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": "sunny"},
        {"role": "tool", "tool_call_id": calls[1]["id"], "content": "rainy"},
    ]
    final, _ = ask(c, how, model=model_for(kind, "gpt-5"), messages=messages, tools=[WEATHER])
    text = content(final)
    assert "sunny" in text and "rainy" in text and text.index("sunny") < text.index("rainy")


@pytest.mark.parametrize("kind", KINDS)
def test_stream_with_include_usage_ends_with_a_usage_chunk(proxy, fleet, kind):
    fleet.fake(kind).scripted.append(
        Reply(text="hello", usage=Usage(prompt=100, cached=40, output=5, thoughts=7))
    )
    chunks = list(
        client(proxy).chat.completions.create(
            model=model_for(kind, "gpt-5"),
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "hello"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.prompt_tokens == 100 and last.usage.completion_tokens == 12
    assert last.usage.prompt_tokens_details.cached_tokens == 40
    if kind in ("gemini", "chat"):  # those report reasoning tokens apart
        assert last.usage.completion_tokens_details.reasoning_tokens == 7


@pytest.mark.parametrize("kind", KINDS)
def test_429_raises_rate_limit_error(proxy, fleet, kind):
    fake = fleet.fake(kind)
    c = client(proxy)
    messages = [{"role": "user", "content": "hi"}]
    fake.scripted.append(Fail(429, "slow down"))
    with pytest.raises(openai.RateLimitError) as err:
        c.chat.completions.create(model=model_for(kind, "gpt-5"), messages=messages)
    assert "slow down" in str(err.value)
    fake.scripted.append(Fail(429, "slow down"))
    with pytest.raises(openai.RateLimitError):
        list(
            c.chat.completions.create(
                model=model_for(kind, "gpt-5"), messages=messages, stream=True
            )
        )


@pytest.mark.parametrize("kind", KINDS)
def test_stream_reaches_the_client_before_the_upstream_finishes(proxy, fleet, kind):
    fake = fleet.fake(kind)
    fake.scripted.append(Reply(text=["one ", "two ", "three"]))
    hold_last_chunk(fake)
    timer = release_later(fake)
    chunks = iter(
        client(proxy).chat.completions.create(
            model=model_for(kind, "gpt-5"),
            messages=[{"role": "user", "content": "count"}],
            stream=True,
        )
    )

    def first_text():
        for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                return chunk.choices[0].delta.content
        return None

    first = []
    assert arrived_first(fake, lambda: first.append(first_text()) or first[0])
    rest = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    timer.cancel()
    assert first[0] + rest == "one two three"


# ------------------------------------------------------------------ Gemini specifics


def weather_then_time_dropping_extras(proxy, kind: str, how: str) -> tuple[dict, str | None]:
    """Two tool turns (scripted on the fake of `kind`) and the final answer, by a client that
    sends back only OpenAI's own fields: no extra_content, no reasoning_content."""
    c = client(proxy)
    messages: list = [{"role": "user", "content": "Weather and time in Paris?"}]
    for turn in range(3):
        message, finish = ask(
            c,
            how,
            model=model_for(kind, "gpt-5"),
            messages=messages,
            tools=[WEATHER, TIME],
            reasoning_effort="high",
        )
        if turn == 2:
            return message, finish
        (call,) = tool_calls(message)
        if kind == "gemini":
            assert call["extra_content"]["google"]["thought_signature"]
        messages += [
            as_param(message, keep_extra=False),
            {"role": "tool", "tool_call_id": call["id"], "content": "ok"},
        ]
    raise AssertionError("unreachable")


@pytest.mark.parametrize("how", ["create", "chunks"])
def test_signatures_ride_in_extra_content_and_a_client_that_drops_them_still_works(
    proxy, fleet, how
):
    fleet.gemini.scripted += [
        Reply(tool_calls=[("get_weather", {"city": "Paris"})]),
        Reply(tool_calls=[("get_time", {"zone": "CET"})]),
    ]
    final, finish = weather_then_time_dropping_extras(proxy, "gemini", how)
    assert finish == "stop" and content(final).startswith("results:")
    model_turns = [t for t in fleet.gemini.last_call().json()["contents"] if t["role"] == "model"]
    assert all(p.get("thoughtSignature") for t in model_turns for p in t["parts"][:1])


@pytest.mark.parametrize("how", ["create", "stream"])
@pytest.mark.parametrize("kind", ["anthropic", "bedrock-claude"])
def test_claude_thinking_comes_back_for_a_client_that_drops_reasoning_content(
    proxy, fleet, kind, how
):
    """Claude with thinking refuses a tool turn whose thinking block is missing or altered (its
    signature covers the text); LangChain and most Chat clients keep only OpenAI's fields. The
    proxy puts the whole block back by tool-call id (the fakes check it as Anthropic does)."""
    fleet.fake(kind).scripted += [
        Reply(tool_calls=[("get_weather", {"city": "Paris"})], thinking="Weather first."),
        Reply(tool_calls=[("get_time", {"zone": "CET"})], thinking="Now the time."),
    ]
    final, finish = weather_then_time_dropping_extras(proxy, kind, how)
    assert finish == "stop", final
    sent = fleet.fake(kind).last_call().body.decode()
    assert "Weather first." in sent and "Now the time." in sent


@pytest.mark.parametrize(
    ("effort", "sent_effort", "max_tokens"),
    [("minimal", "low", 300), ("medium", "medium", 300), ("high", "high", None)],
)
def test_reasoning_effort_reaches_nova_2_as_its_reasoning_config(
    proxy, fleet, effort, sent_effort, max_tokens
):
    """Nova 2 thinks by effort level (`reasoningConfig`), and refuses maxTokens at "high"
    (as the strict fake does): the proxy leaves it out and the log line says so. Nova 1 takes
    no reasoning at all (it is dropped, and named)."""
    message, finish = ask(
        client(proxy),
        "create",
        model=model_for("bedrock-nova2", "gpt-5"),
        messages=[{"role": "user", "content": "Think about it."}],
        reasoning_effort=effort,
        max_completion_tokens=300,
    )
    assert finish == "stop" and content(message).startswith("echo:")
    body = fleet.bedrock.last_call().json()
    assert body["additionalModelRequestFields"]["reasoningConfig"] == {
        "type": "enabled",
        "maxReasoningEffort": sent_effort,
    }
    assert body.get("inferenceConfig", {}).get("maxTokens") == max_tokens
    (line,) = proxy.api_log_lines(1)
    assert ("max_tokens" in line.get("dropped", [])) == (max_tokens is None)

    ask(
        client(proxy),
        "create",
        model=model_for("bedrock-nova", "gpt-5"),
        messages=[{"role": "user", "content": "Think about it."}],
        reasoning_effort=effort,
    )
    assert "additionalModelRequestFields" not in fleet.bedrock.last_call().json()
    assert "reasoning" in proxy.api_log_lines(2)[-1]["dropped"]


def test_json_schema_response_format_reaches_gemini_as_response_json_schema(proxy, fleet):
    fleet.gemini.scripted.append(Reply(text='{"name": "Ada", "age": 36}'))
    message, _ = ask(
        client(proxy),
        "create",
        model=model_for("gemini", "gpt-5"),
        messages=[{"role": "user", "content": "Ada is 36."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": PERSON, "strict": True},
        },
    )
    assert json.loads(message.content) == {"name": "Ada", "age": 36}
    config = fleet.gemini.last_call().json()["generationConfig"]
    assert config["responseJsonSchema"] == PERSON


def test_sdk_parse_with_a_json_schema_through_bedrock(proxy, fleet):
    fleet.bedrock.scripted.append(Reply(text='{"name": "Ada", "age": 36}'))
    completion = client(proxy).chat.completions.create(
        model=model_for("bedrock-nova", "gpt-5"),
        messages=[{"role": "user", "content": "Ada is 36."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": PERSON},
        },
    )
    assert json.loads(completion.choices[0].message.content)["age"] == 36
    text_format = fleet.bedrock.last_call().json()["outputConfig"]["textFormat"]
    assert json.loads(text_format["structure"]["jsonSchema"]["schema"]) == PERSON


def test_json_object_is_refused_by_bedrock_with_a_clear_400(proxy, fleet):
    with pytest.raises(openai.BadRequestError) as err:
        client(proxy).chat.completions.create(
            model=model_for("bedrock-nova", "gpt-5"),
            messages=[{"role": "user", "content": "json please"}],
            response_format={"type": "json_object"},
        )
    assert "JSON" in err.value.message
    assert fleet.bedrock.requests == []


def test_the_log_line_of_a_translated_call(proxy, fleet):
    model = model_for("gemini", "gpt-chat-log")
    client(proxy).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], user="u-1", store=False
    )
    line = log_line_for(proxy, model)
    assert line["translated"] == "openai -> gemini"
    assert line["upstream_api"] == "gemini" and line["upstream_model"] == GEMINI_MODEL
    assert "user" in line["dropped"]
    assert line["usage"]["input_tokens"] > 0 and line["usage"]["output_tokens"] > 0
    (upstream,) = fleet.gemini.requests
    assert upstream.path == f"/v1beta/models/{GEMINI_MODEL}:generateContent"


@pytest.mark.parametrize("kind", KINDS)
def test_an_upstream_error_mid_stream_raises_in_the_sdk(proxy, fleet, kind):
    fleet.fake(kind).scripted.append(Fail(500, "boom mid-stream", mid_stream=True))
    stream = client(proxy).chat.completions.create(
        model=model_for(kind, "gpt-5"), messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIError) as err:
        list(stream)
    assert "boom mid-stream" in str(err.value)


@pytest.mark.parametrize("kind", ["anthropic", "bedrock-nova", "bedrock-claude"])
def test_tool_arguments_stream_as_fragments_by_index(proxy, fleet, kind):
    """Upstreams that stream a call's arguments in pieces: the client gets them in pieces."""
    fleet.fake(kind).scripted.append(Reply(tool_calls=[("get_weather", {"city": "Paris, France"})]))
    chunks = list(
        client(proxy).chat.completions.create(
            model=model_for(kind, "gpt-5"),
            messages=[{"role": "user", "content": "weather?"}],
            tools=[WEATHER],
            stream=True,
        )
    )
    fragments = [
        call.function.arguments
        for chunk in chunks
        if chunk.choices
        for call in chunk.choices[0].delta.tool_calls or []
        if call.function and call.function.arguments
    ]
    assert len(fragments) > 1 and json.loads("".join(fragments)) == {"city": "Paris, France"}


@pytest.mark.parametrize("kind", KINDS)
def test_an_image_reaches_the_upstream(proxy, fleet, kind):
    completion = client(proxy).chat.completions.create(
        model=model_for(kind, "gpt-5"),
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "text", "text": "what is this?"},
                ],
            }
        ],
    )
    assert completion.choices[0].message.content == "echo: what is this?"
    assert PNG in fleet.fake(kind).last_call().body.decode()
