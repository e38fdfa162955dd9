"""The Anthropic Messages codec (and its Bedrock InvokeModel twin) against the real anthropic SDK.

The SDK builds the requests our reader reads, and parses the answers and SSE streams our
writer writes, through httpx.MockTransport (no socket is opened).
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import anthropic
import httpx2 as httpx  # the anthropic SDK 2.x speaks httpx2 (same API as httpx)
import pytest

from calo_addon.translate import neutral
from calo_addon.translate.anthropic import BEDROCK_CODEC, CODEC

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image").decode()

# A tool schema with everything a sanitiser would be tempted to drop.
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "unit": {"type": "string", "enum": ["c", "f"]},
        "point": {
            "type": "object",
            "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
            "required": ["lat", "lon"],
            "additionalProperties": False,
        },
    },
    "properties": {
        "where": {"anyOf": [{"type": "string"}, {"$ref": "#/$defs/point"}]},
        "unit": {"$ref": "#/$defs/unit"},
        "days": {"type": "integer", "exclusiveMinimum": 0, "maximum": 14},
        "kind": {"const": "forecast"},
        "labels": {"type": "object", "propertyNames": {"pattern": "^[a-z]+$"}},
    },
    "required": ["where"],
    "additionalProperties": False,
}
WEATHER = {"name": "get_weather", "description": "Weather for a place.", "input_schema": SCHEMA}

# ---------------------------------------------------------------- helpers


def sse(events: list[tuple[str | None, Any]]) -> bytes:
    """Frame (event, data) pairs as server-sent events."""
    out = []
    for name, data in events:
        head = f"event: {name}\n" if name else ""
        out.append(f"{head}data: {json.dumps(data)}\n\n")
    return "".join(out).encode()


def sdk(handler) -> anthropic.Anthropic:
    transport = httpx.MockTransport(handler)
    return anthropic.Anthropic(
        api_key="test-key",
        base_url="http://127.0.0.1",
        max_retries=0,
        http_client=httpx.Client(transport=transport),
    )


def capture(**kwargs: Any) -> dict[str, Any]:
    """The JSON body the SDK sends for messages.create(**kwargs)."""
    bodies = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=CODEC.write_response(neutral.Response("msg_1", "m")))

    sdk(handler).messages.create(**kwargs)
    return bodies[0]


def serve_json(payload: dict[str, Any]) -> anthropic.Anthropic:
    return sdk(lambda request: httpx.Response(200, json=payload))


def serve_sse(events: list[tuple[str | None, Any]]) -> anthropic.Anthropic:
    body = sse(events)
    headers = {"content-type": "text/event-stream"}
    return sdk(lambda request: httpx.Response(200, content=body, headers=headers))


def write_stream(events: list[neutral.Event], request: neutral.Request | None = None) -> list:
    writer = CODEC.stream_writer(request or neutral.Request(model="claude-x"))
    wire = [w for event in events for w in writer.write(event)]
    return wire + writer.close()


def read_stream(reader, wire: list[tuple[str | None, Any]]) -> list[neutral.Event]:
    events = [e for name, data in wire for e in reader.feed(name, data)]
    return events + reader.close()


def final_message(wire: list) -> anthropic.types.Message:
    client = serve_sse(wire)
    with client.messages.stream(model="claude-x", max_tokens=100, messages=USER_HI) as stream:
        return stream.get_final_message()


USER_HI = [{"role": "user", "content": "hi"}]

# A realistic upstream stream: thinking with a signature, text, and two parallel tool calls
# whose arguments come in several fragments.
UPSTREAM_STREAM: list[tuple[str, dict[str, Any]]] = [
    (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_01",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-6",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 20,
                    "output_tokens": 1,
                    "cache_creation_input_tokens": 5,
                    "cache_read_input_tokens": 100,
                },
            },
        },
    ),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
    ),
    ("ping", {"type": "ping"}),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "Two "},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "cities."},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "c2lnLTE="},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    (
        "content_block_start",
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "text_delta", "text": "Checking "},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "text_delta", "text": "both."},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_a",
                "name": "get_weather",
                "input": {},
            },
        },
    ),
    *[
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {"type": "input_json_delta", "partial_json": p},
            },
        )
        for p in ['{"where": "Pa', 'ris", "da', 'ys": 3}']
    ],
    ("content_block_stop", {"type": "content_block_stop", "index": 2}),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 3,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_b",
                "name": "get_weather",
                "input": {},
            },
        },
    ),
    *[
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 3,
                "delta": {"type": "input_json_delta", "partial_json": p},
            },
        )
        for p in ['{"where": {"lat": 1', '.5, "lon": 2}, "unit": "c"}']
    ],
    ("content_block_stop", {"type": "content_block_stop", "index": 3}),
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 87},
        },
    ),
    ("message_stop", {"type": "message_stop"}),
]

# ================================================================ 1. requests the SDK builds


def sdk_conversation() -> dict[str, Any]:
    """A multi-turn tool-use conversation with thinking, images and parallel results."""
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 4096,
        "system": [
            {"type": "text", "text": "You are terse."},
            {"type": "text", "text": "Use tools.", "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather in both places?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/map.jpg"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Two calls.", "signature": "sig-1"},
                    {
                        "type": "tool_use",
                        "id": "toolu_a",
                        "name": "get_weather",
                        "input": {"where": "Paris"},
                    },
                    {
                        "type": "tool_use",
                        "id": "toolu_b",
                        "name": "get_weather",
                        "input": {"where": "Oslo"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_a", "content": "18C"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_b",
                        "content": [
                            {"type": "text", "text": "no data"},
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": PNG,
                                },
                            },
                        ],
                        "is_error": True,
                    },
                ],
            },
        ],
        "tools": [WEATHER],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": False},
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "stop_sequences": ["END"],
        "extra_body": {"top_p": 0.97},  # older SDKs' sampling settings (2.x dropped them)
    }


def test_reads_a_request_the_sdk_built():
    request = CODEC.read_request(capture(**sdk_conversation()))

    assert request.model == "claude-sonnet-4-6"
    assert [t.text for t in request.system] == ["You are terse.", "Use tools."]
    assert request.max_tokens == 4096 and request.top_p == 0.97 and request.stop == ["END"]
    assert request.reasoning == neutral.Reasoning(budget_tokens=2048, enabled=True)
    assert request.tool_choice == neutral.ToolChoice("auto", parallel=True)
    assert request.tools == [neutral.Tool("get_weather", "Weather for a place.", SCHEMA)]
    user, assistant, results = request.messages
    assert user.parts[1] == neutral.Media(media_type="image/png", data=PNG)
    assert user.parts[2] == neutral.Media(url="https://example.com/map.jpg")
    assert assistant.parts[0] == neutral.Thinking("Two calls.", "sig-1")
    assert [p.id for p in assistant.parts[1:]] == ["toolu_a", "toolu_b"]
    assert assistant.parts[2].arguments == {"where": "Oslo"}
    first, second = results.parts
    assert first == neutral.ToolResult("toolu_a", [neutral.Text("18C")], "get_weather")
    assert second.is_error and second.content[1] == neutral.Media(media_type="image/png", data=PNG)
    assert request.dropped == ["cache_control"]


def test_tool_schema_survives_exactly():
    """Nothing of the schema is sanitised on the way in or out ($defs, $ref, anyOf, ...)."""
    request = CODEC.read_request(capture(**sdk_conversation()))
    assert CODEC.write_request(request)["tools"][0]["input_schema"] == SCHEMA
    assert BEDROCK_CODEC.write_request(request)["tools"][0]["input_schema"] == SCHEMA


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, neutral.ToolChoice("auto")),
        (
            {"type": "any", "disable_parallel_tool_use": True},
            neutral.ToolChoice("required", parallel=False),
        ),
        ({"type": "tool", "name": "get_weather"}, neutral.ToolChoice("tool", "get_weather")),
        ({"type": "none"}, neutral.ToolChoice("none")),
    ],
)
def test_tool_choice_from_the_sdk(choice, expected):
    body = capture(model="m", max_tokens=10, messages=USER_HI, tools=[WEATHER], tool_choice=choice)
    request = CODEC.read_request(body)
    assert request.tool_choice == expected
    assert CODEC.write_request(request)["tool_choice"] == choice


def test_thinking_settings_from_the_sdk():
    disabled = capture(model="m", max_tokens=10, messages=USER_HI, thinking={"type": "disabled"})
    adaptive = capture(
        model="m",
        max_tokens=10,
        messages=USER_HI,
        thinking={"type": "adaptive"},
        output_config={"effort": "xhigh"},
    )
    assert CODEC.read_request(disabled).reasoning == neutral.Reasoning(enabled=False)
    read = CODEC.read_request(adaptive)
    assert read.reasoning == neutral.Reasoning(effort="high", enabled=True)
    written = CODEC.write_request(read)
    assert written["thinking"] == {"type": "adaptive"}
    assert written["output_config"] == {"effort": "xhigh"}


def test_structured_output_from_the_sdk():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    body = capture(
        model="m",
        max_tokens=10,
        messages=USER_HI,
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    request = CODEC.read_request(body)
    assert request.output_format == neutral.OutputFormat(schema=schema)
    assert CODEC.write_request(request)["output_config"] == {
        "format": {"type": "json_schema", "schema": schema}
    }
    legacy = dict(body, output_format={"type": "json_schema", "schema": schema})
    del legacy["output_config"]
    assert CODEC.read_request(legacy).output_format == neutral.OutputFormat(schema=schema)


# ================================================================ 2. answers the SDK parses

NEUTRAL_ANSWER = neutral.Response(
    id="msg_abc",
    model="gemini-2.5-pro",
    parts=[
        neutral.Thinking("Two cities.", "sig-1"),
        neutral.Text("Checking both."),
        neutral.Thinking(signature="gemini-thought-sig", attached=True),
        neutral.ToolCall("call_1", "get_weather", {"where": "Paris", "days": 3}),
        neutral.ToolCall("call_2", "get_weather", {"where": {"lat": 1.5, "lon": 2}}),
    ],
    stop_reason="tool_use",
    usage=neutral.Usage(
        input_tokens=125,
        output_tokens=87,
        cached_input_tokens=100,
        cache_write_tokens=5,
        reasoning_tokens=40,
    ),
)


def check_final(message) -> None:
    """What an Anthropic client must see for NEUTRAL_ANSWER (or its stream)."""
    kinds = [block.type for block in message.content]
    assert kinds == ["thinking", "text", "thinking", "tool_use", "tool_use"]
    assert message.content[0].thinking == "Two cities."
    assert message.content[0].signature == "sig-1"
    assert message.content[1].text == "Checking both."
    # a Gemini thought signature with no text still rides in a thinking block
    assert (message.content[2].thinking, message.content[2].signature) == ("", "gemini-thought-sig")
    assert message.content[3].input == {"where": "Paris", "days": 3}
    assert message.content[4].input == {"where": {"lat": 1.5, "lon": 2}}
    assert message.content[3].id != message.content[4].id
    assert message.stop_reason == "tool_use"
    # Anthropic's input_tokens leave the cache reads and writes out
    assert message.usage.input_tokens == 20
    assert message.usage.cache_read_input_tokens == 100
    assert message.usage.cache_creation_input_tokens == 5
    assert message.usage.output_tokens == 87


def test_sdk_reads_a_written_answer():
    client = serve_json(CODEC.write_response(NEUTRAL_ANSWER))
    message = client.messages.create(model="claude-x", max_tokens=100, messages=USER_HI)
    check_final(message)
    assert message.id == "msg_abc" and message.role == "assistant"
    assert message.usage.output_tokens_details.thinking_tokens == 40


def neutral_stream(answer: neutral.Response) -> list[neutral.Event]:
    """The answer as a neutral stream, tool arguments in several fragments."""
    events: list[neutral.Event] = [neutral.MessageStart(answer.id, answer.model, answer.usage)]
    for index, part in enumerate(answer.parts):
        if isinstance(part, neutral.Text):
            events += [neutral.PartStart(index, neutral.Text(""))]
            events += [neutral.PartDelta(index, text=w) for w in part.text.split(" ", 1)[:1]]
            events += [neutral.PartDelta(index, text=" " + w) for w in part.text.split(" ")[1:]]
        elif isinstance(part, neutral.Thinking):
            events += [neutral.PartStart(index, neutral.Thinking(attached=part.attached))]
            if part.text:
                events.append(neutral.PartDelta(index, thinking=part.text))
            events.append(neutral.PartDelta(index, signature=part.signature))
        else:
            text = json.dumps(part.arguments)
            events.append(neutral.PartStart(index, neutral.ToolCall(part.id, part.name)))
            events += [
                neutral.PartDelta(index, arguments=text[i : i + 7]) for i in range(0, len(text), 7)
            ]
        events.append(neutral.PartStop(index))
    return events + [neutral.MessageStop(answer.stop_reason, answer.usage)]


def test_sdk_assembles_a_written_stream():
    wire = write_stream(neutral_stream(NEUTRAL_ANSWER))
    assert all(name == data["type"] for name, data in wire)
    fragments = [d for _, d in wire if d.get("delta", {}).get("type") == "input_json_delta"]
    assert len(fragments) > 4  # passed through as they came, never one giant delta
    starts = [d["content_block"] for _, d in wire if d["type"] == "content_block_start"]
    assert starts[3] == {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}
    check_final(final_message(wire))


def test_upstream_stream_through_reader_and_writer_reaches_the_sdk():
    events = read_stream(CODEC.stream_reader(), UPSTREAM_STREAM)
    message = final_message(write_stream(events))
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert (message.content[0].thinking, message.content[0].signature) == (
        "Two cities.",
        "c2lnLTE=",
    )
    assert message.content[1].text == "Checking both."
    assert message.content[2].input == {"where": "Paris", "days": 3}
    assert message.content[3].input == {"where": {"lat": 1.5, "lon": 2}, "unit": "c"}
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (20, 87)
    assert message.usage.cache_read_input_tokens == 100


def test_stream_error_reaches_the_sdk_as_anthropic_error():
    events = [
        neutral.MessageStart("msg_1", "m"),
        neutral.PartStart(0, neutral.Text("")),
        neutral.PartDelta(0, text="Hel"),
        neutral.StreamError(529, "upstream overloaded"),
    ]
    wire = write_stream(events)
    assert wire[-1] == (
        "error",
        {"type": "error", "error": {"type": "overloaded_error", "message": "upstream overloaded"}},
    )
    client = serve_sse(wire)
    stream = client.messages.stream(model="m", max_tokens=10, messages=USER_HI)
    with pytest.raises(anthropic.APIStatusError) as raised, stream as events:
        events.get_final_message()
    assert raised.value.body["error"]["type"] == "overloaded_error"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, "rate_limit_error"),
        (529, "overloaded_error"),
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (500, "api_error"),
        (503, "api_error"),
        (422, "invalid_request_error"),
    ],
)
def test_stream_error_types(status, kind):
    (wire,) = write_stream([neutral.StreamError(status, "x", "throttlingException")])
    assert wire[1]["error"]["type"] == kind


def test_ping_for_slow_upstreams_is_ignored_by_the_sdk():
    writer = CODEC.stream_writer(neutral.Request(model="m"))
    wire = writer.ping()
    assert wire == [("ping", {"type": "ping"})]
    wire = writer.write(neutral.MessageStart("msg_1", "m")) + wire + writer.ping()
    wire += writer.write(neutral.PartStart(0, neutral.Text(""))) + writer.ping()
    wire += writer.write(neutral.PartDelta(0, text="ok")) + writer.write(neutral.PartStop(0))
    wire += writer.write(neutral.MessageStop("end_turn")) + writer.close()
    assert final_message(wire).content[0].text == "ok"


# ================================================================ 3. round trips

FULL_REQUEST: dict[str, Any] = {
    "model": "claude-opus-4-6",
    "max_tokens": 16000,
    "system": [{"type": "text", "text": "Be exact."}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Read these."},
                {
                    "type": "document",
                    "source": {
                        "type": "base64",
                        "media_type": "application/pdf",
                        "data": "JVBERi0=",
                    },
                    "title": "spec.pdf",
                },
                {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
                {
                    "type": "document",
                    "source": {"type": "text", "media_type": "text/plain", "data": "plain words"},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/b.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "redacted_thinking", "data": "opaque=="},
                {"type": "thinking", "thinking": "", "signature": "only-a-signature"},
                {"type": "text", "text": "Looking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"where": "Rome"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {"type": "text", "text": "And now?"},
            ],
        },
    ],
    "tools": [WEATHER, {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "thinking": {"type": "enabled", "budget_tokens": 8000},
    "stop_sequences": ["###"],
    "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
    "stream": True,
}


def test_request_round_trip_is_lossless():
    request = CODEC.read_request(copy.deepcopy(FULL_REQUEST))
    assert request.dropped == []
    assert request.hosted_tools == [neutral.HostedTool("web_search", {"max_uses": 3})]
    assert CODEC.write_request(request) == FULL_REQUEST


def test_request_round_trip_of_sampling_settings():
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 300,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
    }
    request = CODEC.read_request(body)
    assert (request.temperature, request.top_p, request.top_k) == (0.2, 0.9, 40)
    assert CODEC.write_request(request) == body


ANSWER = {
    "id": "msg_01XYZ",
    "type": "message",
    "role": "assistant",
    "model": "claude-opus-4-6",
    "content": [
        {"type": "thinking", "thinking": "Hmm.", "signature": "EqQBCkYIBx"},
        {"type": "redacted_thinking", "data": "EmwKAhgB"},
        {"type": "text", "text": "Calling."},
        {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"where": "Lima"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 12,
        "output_tokens": 70,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 2048,
        "output_tokens_details": {"thinking_tokens": 30},
    },
}


def test_answer_round_trip_is_lossless():
    response = CODEC.read_response(copy.deepcopy(ANSWER))
    assert response.usage == neutral.Usage(2060, 70, 2048, 0, 30)
    assert response.parts[1] == neutral.Thinking(signature="EmwKAhgB", redacted=True)
    assert CODEC.write_response(response) == ANSWER


def test_stream_round_trip_keeps_every_event():
    events = read_stream(CODEC.stream_reader(), UPSTREAM_STREAM)
    wire = write_stream(events, neutral.Request(model="claude-sonnet-4-6"))
    original = [(n, d) for n, d in UPSTREAM_STREAM if n != "ping"]
    assert wire[:-2] == original[:-2]
    (_, delta), (_, stop) = wire[-2:]
    assert delta["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    # cumulative counts: the input counts message_start gave are repeated, output updated
    assert delta["usage"] == {
        "output_tokens": 87,
        "input_tokens": 20,
        "cache_creation_input_tokens": 5,
        "cache_read_input_tokens": 100,
    }
    assert stop == {"type": "message_stop"}


def test_stream_reader_events_as_they_come():
    reader = CODEC.stream_reader()
    assert reader.feed("message_start", UPSTREAM_STREAM[0][1]) == [
        neutral.MessageStart("msg_01", "claude-sonnet-4-6", neutral.Usage(125, 1, 100, 5))
    ]
    assert reader.feed("content_block_start", UPSTREAM_STREAM[1][1]) == [
        neutral.PartStart(0, neutral.Thinking())
    ]
    assert reader.feed("ping", {"type": "ping"}) == []
    assert reader.feed("content_block_delta", UPSTREAM_STREAM[3][1]) == [
        neutral.PartDelta(0, thinking="Two ")
    ]
    events = read_stream(CODEC.stream_reader(), UPSTREAM_STREAM)
    fragments = [e.arguments for e in events if isinstance(e, neutral.PartDelta) and e.arguments]
    assert fragments[:3] == ['{"where": "Pa', 'ris", "da', 'ys": 3}']
    assert events[-1] == neutral.MessageStop("tool_use", neutral.Usage(125, 87, 100, 5))


# ================================================================ 4. what Claude Code sends


def claude_code_request() -> dict[str, Any]:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}},
        "required": ["command"],
        "additionalProperties": False,
    }
    return {
        "model": "claude-opus-4-6",
        "max_tokens": 32000,
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.0;"},
            {
                "type": "text",
                "text": "You are Claude Code, Anthropic's official CLI for Claude.",
                "cache_control": {"type": "ephemeral"},
            },
        ],
        "messages": [
            {"role": "system", "content": "<system-reminder>cwd: /tmp/x</system-reminder>"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "list files", "cache_control": {"type": "ephemeral"}}
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "", "signature": "Eo0CCkgIBxAC"},
                    {
                        "type": "tool_use",
                        "id": "toolu_01",
                        "name": "Bash",
                        "input": {"command": "ls"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "a.txt"}],
            },
        ],
        "tools": [
            {"name": "Bash", "description": "Run a command.", "input_schema": schema},
            {
                "name": "WebFetch",
                "description": "Fetch a page.",
                "input_schema": {"type": "object", "properties": {"url": {"type": "string"}}},
                "defer_loading": True,
            },
        ],
        "metadata": {"user_id": "user_abc_account_def_session_123"},
        "thinking": {"type": "adaptive", "display": "omitted"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"},
        "stream": True,
    }


def test_claude_code_request_names_what_it_drops():
    request = CODEC.read_request(claude_code_request())
    assert sorted(request.dropped) == [
        "cache_control",
        "context_management",
        "defer_loading",
        "metadata",
    ]
    assert request.system[-1].text == "<system-reminder>cwd: /tmp/x</system-reminder>"
    assert request.extra["system_messages"] == 1
    assert len(request.system) == 3 and [m.role for m in request.messages] == [
        "user",
        "assistant",
        "user",
    ]
    assert request.reasoning == neutral.Reasoning(
        effort="high", enabled=True, include_thoughts=False
    )
    assert request.stream
    assert request.messages[1].parts[0] == neutral.Thinking("", "Eo0CCkgIBxAC")
    assert request.messages[2].parts[0].name == "Bash"


def test_claude_code_request_to_bedrock_invoke_model():
    request = CODEC.read_request(claude_code_request())
    request.extra["anthropic_beta"] = ["interleaved-thinking-2025-05-14", "context-1m-2025-08-07"]
    body = BEDROCK_CODEC.write_request(request)
    assert body["anthropic_version"] == "bedrock-2023-05-31"
    assert body["anthropic_beta"] == ["interleaved-thinking-2025-05-14", "context-1m-2025-08-07"]
    assert "model" not in body and "stream" not in body
    assert body["thinking"] == {"type": "adaptive", "display": "omitted"}
    assert body["output_config"] == {"effort": "high"}
    assert body["max_tokens"] == 32000
    assert [b["text"] for b in body["system"]][-1].startswith("<system-reminder>")
    assert body["tools"][1] == {
        "name": "WebFetch",
        "description": "Fetch a page.",
        "input_schema": {"type": "object", "properties": {"url": {"type": "string"}}},
    }
    assert body["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "",
        "signature": "Eo0CCkgIBxAC",
    }
    for key in ("metadata", "context_management"):
        assert key not in body


# ================================================================ 5. Bedrock InvokeModel


def chunk(event: dict[str, Any]) -> tuple[str, dict[str, str]]:
    return ("chunk", {"bytes": base64.b64encode(json.dumps(event).encode()).decode()})


def test_bedrock_body_shape():
    request = neutral.Request(
        model="anthropic.claude-sonnet-4-6",
        messages=[neutral.Message("user", [neutral.Text("hi")])],
        hosted_tools=[neutral.HostedTool("web_search")],
        stream=True,
        extra={"anthropic_beta": "token-efficient-tools-2025-02-19, output-128k-2025-02-19"},
    )
    assert BEDROCK_CODEC.write_request(request) == {
        "anthropic_version": "bedrock-2023-05-31",
        "anthropic_beta": ["token-efficient-tools-2025-02-19", "output-128k-2025-02-19"],
        "max_tokens": 8192,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }
    del request.extra["anthropic_beta"]
    assert "anthropic_beta" not in BEDROCK_CODEC.write_request(request)
    assert BEDROCK_CODEC.name == "bedrock-anthropic" and CODEC.name == "anthropic"


def test_bedrock_answer_reads_as_anthropic():
    answer = dict(ANSWER, id="msg_bdrk_01")
    assert BEDROCK_CODEC.read_response(answer).id == "msg_bdrk_01"
    assert BEDROCK_CODEC.read_response(answer).parts == CODEC.read_response(ANSWER).parts


def test_bedrock_base64_chunk_stream_reads_back():
    upstream = [data for _, data in UPSTREAM_STREAM]
    wire = [chunk(event) for event in upstream]
    expected = read_stream(CODEC.stream_reader(), UPSTREAM_STREAM)
    assert read_stream(BEDROCK_CODEC.stream_reader(), wire) == expected


def test_bedrock_invocation_metrics_give_usage_the_message_delta_lacked():
    upstream = [copy.deepcopy(data) for _, data in UPSTREAM_STREAM]
    del upstream[-2]["usage"]
    upstream[-1]["amazon-bedrock-invocationMetrics"] = {
        "inputTokenCount": 20,
        "outputTokenCount": 91,
        "invocationLatency": 1500,
        "firstByteLatency": 300,
    }
    events = read_stream(BEDROCK_CODEC.stream_reader(), [chunk(e) for e in upstream])
    assert events[-1] == neutral.MessageStop("tool_use", neutral.Usage(125, 91, 100, 5))


@pytest.mark.parametrize(
    ("event_type", "status"),
    [
        ("throttlingException", 429),
        ("validationException", 400),
        ("internalServerException", 500),
        ("modelStreamErrorException", 500),
        ("serviceUnavailableException", 503),
    ],
)
def test_bedrock_stream_exceptions(event_type, status):
    reader = BEDROCK_CODEC.stream_reader()
    reader.feed(*chunk(UPSTREAM_STREAM[0][1]))
    (error,) = reader.feed(event_type, {"message": "Too many tokens, please wait."})
    assert error == neutral.StreamError(status, "Too many tokens, please wait.", event_type)
    assert reader.close() == []  # nothing owed after an error


def test_error_message_of_both_shapes():
    anthropic_error = {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert CODEC.error_message(anthropic_error) == "Overloaded"
    assert BEDROCK_CODEC.error_message({"message": "The security token is invalid."}) == (
        "The security token is invalid."
    )
    assert CODEC.error_message({"id": "msg_1"}) is None
    assert CODEC.error_message("oops") is None


# ================================================================ writing for an Anthropic upstream


def user(*parts: neutral.Part) -> neutral.Message:
    return neutral.Message("user", list(parts))


def assistant(*parts: neutral.Part) -> neutral.Message:
    return neutral.Message("assistant", list(parts))


def written(**fields: Any) -> dict[str, Any]:
    fields.setdefault("messages", [user(neutral.Text("hi"))])
    return CODEC.write_request(neutral.Request(model="claude-x", **fields))


@pytest.mark.parametrize(
    ("reasoning", "max_tokens", "thinking", "expected_max"),
    [
        (
            neutral.Reasoning(budget_tokens=2048),
            4096,
            {"type": "enabled", "budget_tokens": 2048},
            4096,
        ),
        # a budget that does not fit is halved into the cap
        (
            neutral.Reasoning(budget_tokens=32768),
            4096,
            {"type": "enabled", "budget_tokens": 2048},
            4096,
        ),
        # too small a cap for the smallest budget: the cap grows by 1024
        (
            neutral.Reasoning(budget_tokens=2000),
            1500,
            {"type": "enabled", "budget_tokens": 1024},
            2524,
        ),
        (
            neutral.Reasoning(budget_tokens=100),
            4096,
            {"type": "enabled", "budget_tokens": 1024},
            4096,
        ),
        (
            neutral.Reasoning(budget_tokens=5000),
            None,
            {"type": "enabled", "budget_tokens": 5000},
            13192,
        ),
        (neutral.Reasoning(effort="low"), 20000, {"type": "enabled", "budget_tokens": 4096}, 20000),
        (
            neutral.Reasoning(enabled=True),
            20000,
            {"type": "enabled", "budget_tokens": 12288},
            20000,
        ),
        (neutral.Reasoning(enabled=False), 100, {"type": "disabled"}, 100),
        (neutral.Reasoning(budget_tokens=0), 100, {"type": "disabled"}, 100),
        (None, None, None, 8192),
    ],
)
def test_thinking_budget_fits_max_tokens(reasoning, max_tokens, thinking, expected_max):
    body = written(reasoning=reasoning, max_tokens=max_tokens)
    assert body.get("thinking") == thinking
    assert body["max_tokens"] == expected_max
    if thinking and thinking["type"] == "enabled":
        assert 1024 <= thinking["budget_tokens"] < body["max_tokens"]


def test_thinking_leaves_out_sampling_it_forbids_and_yields_to_a_forced_tool():
    on = written(reasoning=neutral.Reasoning(effort="high"), temperature=0.3, top_k=5, top_p=0.5)
    assert "temperature" not in on and "top_k" not in on and "top_p" not in on
    assert written(reasoning=neutral.Reasoning(effort="high"), top_p=0.96)["top_p"] == 0.96
    forced = written(
        reasoning=neutral.Reasoning(effort="high"),
        tools=[neutral.Tool("f", parameters={"type": "object"})],
        tool_choice=neutral.ToolChoice("tool", "f"),
    )
    assert "thinking" not in forced and forced["tool_choice"] == {"type": "tool", "name": "f"}


def test_chat_style_history_becomes_valid_anthropic_turns():
    """Parallel results split over several turns (as Chat's role=tool messages) share one user
    message, results first; consecutive same-role turns merge; unsigned thinking is left out."""
    body = written(
        messages=[
            user(neutral.Text("weather?")),
            user(neutral.Text("both cities")),
            assistant(
                neutral.Thinking("unsigned reasoning summary"),
                neutral.Thinking(signature="gemini-sig", attached=True),
                neutral.ToolCall("functions.get_weather:0", "get_weather", {"where": "Paris"}),
                neutral.ToolCall("functions.get_weather:1", "get_weather", {"where": "Oslo"}),
            ),
            user(neutral.ToolResult("functions.get_weather:0", [neutral.Text("18C")])),
            user(neutral.Text("thanks"), neutral.ToolResult("functions.get_weather:1", [])),
        ]
    )
    first, second, third = body["messages"]
    assert first == {
        "role": "user",
        "content": [{"type": "text", "text": "weather?"}, {"type": "text", "text": "both cities"}],
    }
    assert second["content"][0] == {
        "type": "thinking",
        "thinking": "unsigned reasoning summary",
        "signature": "gemini-sig",
    }
    assert [b["id"] for b in second["content"][1:]] == [
        "functions_get_weather_0",
        "functions_get_weather_1",
    ]
    assert [b["type"] for b in third["content"]] == ["tool_result", "tool_result", "text"]
    assert third["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "functions_get_weather_0",
        "content": "18C",
    }
    assert third["content"][1] == {"type": "tool_result", "tool_use_id": "functions_get_weather_1"}


def test_thinking_text_and_its_signature_that_came_apart_are_one_block_again():
    """A Chat client keeps Anthropic's thinking text in reasoning_content and its signature
    on the tool call (extra_content): Anthropic checks the signature against that text."""
    body = written(
        messages=[
            user(neutral.Text("weather?")),
            assistant(
                neutral.Thinking("Need the weather."),
                neutral.Thinking(signature="sig-1", attached=True),
                neutral.ToolCall("toolu_1", "get_weather", {"city": "Paris"}),
            ),
            user(neutral.ToolResult("toolu_1", [neutral.Text("sunny")])),
        ]
    )
    assert body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "Need the weather.", "signature": "sig-1"},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
    ]
    alone = written(
        messages=[
            user(neutral.Text("q")),
            assistant(neutral.Thinking("unsigned"), neutral.Text("a")),
            user(neutral.Text("next")),
        ]
    )
    assert alone["messages"][1]["content"] == [{"type": "text", "text": "a"}]


def test_tool_result_with_an_image_and_an_error():
    result = neutral.ToolResult(
        "call_1", [neutral.Text("see"), neutral.Media("image/png", PNG)], is_error=True
    )
    body = written(messages=[user(result)])
    assert body["messages"][0]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "call_1",
        "content": [
            {"type": "text", "text": "see"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        ],
        "is_error": True,
    }


def test_media_anthropic_cannot_take_is_refused_by_name():
    with pytest.raises(neutral.Unsupported, match="audio/wav"):
        written(messages=[user(neutral.Media("audio/wav", "UklGRg=="))])
    with pytest.raises(neutral.Unsupported, match="url"):
        written(messages=[user(neutral.Media("image/png", url="gs://bucket/a.png"))])


def test_tools_of_other_protocols():
    body = written(
        tools=[
            neutral.Tool(
                "apply_patch", "Patch files.", tool_kind="custom", format={"type": "grammar"}
            ),
            neutral.Tool("noargs"),
            neutral.Tool("loose", parameters={"properties": {"a": {"type": "string"}}}),
        ],
        hosted_tools=[
            neutral.HostedTool("web_search", {"search_context_size": "low", "max_uses": 2}),
            neutral.HostedTool("code_interpreter"),
        ],
        tool_choice=neutral.ToolChoice("required", parallel=True),
    )
    patch, noargs, loose, search = body["tools"]
    assert patch["input_schema"]["properties"] == {"input": {"type": "string"}}
    assert noargs["input_schema"] == {"type": "object", "properties": {}}
    assert loose["input_schema"] == {"type": "object", "properties": {"a": {"type": "string"}}}
    assert search == {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": False}
    assert "tool_choice" not in written(tool_choice=neutral.ToolChoice("auto"))


def test_schemaless_json_output_is_asked_for_in_the_prompt():
    body = written(output_format=neutral.OutputFormat(), system=[neutral.Text("Be brief.")])
    assert body["system"][0] == {"type": "text", "text": "Be brief."}
    assert "JSON" in body["system"][1]["text"]
    assert "output_config" not in body


def test_malformed_requests_name_the_field():
    with pytest.raises(neutral.TranslationError):
        CODEC.read_request([])
    with pytest.raises(neutral.TranslationError) as bad_role:
        CODEC.read_request({"model": "m", "messages": [{"role": "tool", "content": "x"}]})
    assert bad_role.value.field == "messages.role"
    with pytest.raises(neutral.TranslationError) as bad_messages:
        CODEC.read_request({"model": "m", "messages": "hi"})
    assert bad_messages.value.field == "messages"


def test_reader_drops_server_tools_and_blocks_it_cannot_carry():
    body = {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "server_tool_use",
                        "id": "srvtoolu_1",
                        "name": "web_search",
                        "input": {},
                    },
                    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                    {"type": "text", "text": "Found it."},
                ],
            }
        ],
        "tools": [
            {"type": "bash_20250124", "name": "bash"},
            {"type": "code_execution_20250825", "name": "code_execution"},
        ],
        "service_tier": "auto",
        "container": "container_1",
        "mcp_servers": [{"type": "url", "url": "https://mcp.example.com", "name": "x"}],
    }
    request = CODEC.read_request(body)
    assert request.messages[0].parts == [neutral.Text("Found it.")]
    assert request.tools == [] and request.hosted_tools == []
    assert request.dropped == [
        "server_tool_use",
        "web_search_tool_result",
        "bash_20250124",
        "code_execution_20250825",
        "service_tier",
        "container",
        "mcp_servers",
    ]


# ================================================================ stream edge cases


def test_stream_reader_skips_server_tool_blocks_and_renumbers():
    wire = [
        UPSTREAM_STREAM[0],
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {
                    "type": "server_tool_use",
                    "id": "srvtoolu_1",
                    "name": "web_search",
                    "input": {},
                },
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"query": "x"}'},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "tool_use", "id": "toolu_z", "name": "now", "input": {}},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ]
    events = read_stream(CODEC.stream_reader(), wire)
    assert events[1:] == [
        neutral.PartStart(0, neutral.ToolCall("toolu_z", "now")),
        neutral.PartDelta(0, arguments="{}"),  # no fragments came: the arguments are {}
        neutral.PartStop(0),
        neutral.MessageStop(None, neutral.Usage(125, 1, 100, 5)),  # owed at close
    ]


def test_stream_reader_turns_an_error_event_into_a_stream_error():
    reader = CODEC.stream_reader()
    reader.feed("message_start", UPSTREAM_STREAM[0][1])
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert reader.feed("error", error) == [
        neutral.StreamError(529, "Overloaded", "overloaded_error")
    ]
    assert reader.close() == []


def test_stream_writer_starts_and_ends_a_message_the_events_left_open():
    writer = CODEC.stream_writer(neutral.Request(model="claude-x"))
    wire = writer.write(neutral.PartStart(0, neutral.Text("")))
    wire += writer.write(neutral.PartDelta(0, text="partial"))
    wire += writer.close()
    assert [name for name, _ in wire] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    message = final_message(wire)
    assert message.content[0].text == "partial" and message.model == "claude-x"
    assert message.stop_reason == "end_turn"


def test_stream_writer_redacted_thinking_and_unknown_input_counts():
    events = [
        neutral.MessageStart("msg_1", "m", neutral.Usage(input_tokens=50)),
        neutral.PartStart(0, neutral.Thinking(signature="opaque", redacted=True)),
        neutral.PartStop(0),
        neutral.MessageStop("end_turn", neutral.Usage(output_tokens=9)),
    ]
    wire = write_stream(events)
    assert wire[1][1]["content_block"] == {"type": "redacted_thinking", "data": "opaque"}
    assert wire[-2][1]["usage"] == {"output_tokens": 9}  # input unknown: not sent as 0
    message = final_message(wire)
    assert message.content[0].data == "opaque"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (50, 9)


def test_stream_writer_moves_content_a_part_start_carried_into_deltas():
    events = [
        neutral.PartStart(0, neutral.Thinking("pre", "sig")),
        neutral.PartDelta(0, thinking="-more"),
        neutral.PartStop(0),
        neutral.PartStart(1, neutral.Text("Hel")),
        neutral.PartDelta(1, text="lo"),
        neutral.PartStop(1),
        neutral.PartStart(2, neutral.ToolCall("call_1", "f", {"a": 1})),
        neutral.PartStop(2),
        neutral.MessageStop("tool_use"),
    ]
    wire = write_stream(events)
    starts = [d["content_block"] for _, d in wire if d["type"] == "content_block_start"]
    assert starts[0] == {"type": "thinking", "thinking": "", "signature": ""}
    assert starts[1] == {"type": "text", "text": ""}
    message = final_message(wire)
    assert (message.content[0].thinking, message.content[0].signature) == ("pre-more", "sig")
    assert message.content[1].text == "Hello"
    assert message.content[2].input == {"a": 1}


# Gemini ends a signed text answer with an empty text part that carries the signature.
GEMINI_SIGNED_TEXT_END = [
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "echo: "}]}}]},
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "hello"}]}}]},
    {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "", "thoughtSignature": "c2ln"}]},
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2},
    },
]
SIGNED_CALL = {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "Y2FsbA=="}


def gemini_stream_to_anthropic(chunks: list[dict]) -> list:
    from calo_addon.translate.gemini import CODEC as GEMINI

    return write_stream(read_stream(GEMINI.stream_reader(), [(None, c) for c in chunks]))


def test_a_gemini_text_answer_ends_with_its_text_block():
    """Claude Code takes the last block as its result: the empty signed part Gemini ends a text
    answer with must not become an empty text block or a trailing thinking block."""
    wire = gemini_stream_to_anthropic(GEMINI_SIGNED_TEXT_END)
    starts = [d["content_block"]["type"] for _, d in wire if d["type"] == "content_block_start"]
    assert starts == ["text"]
    message = final_message(wire)
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "echo: hello"


def test_a_gemini_call_signature_comes_as_the_thinking_block_before_the_call():
    chunks = [
        {"candidates": [{"content": {"parts": [{"text": "Let me look."}]}}]},
        {"candidates": [{"content": {"parts": [SIGNED_CALL]}, "finishReason": "STOP"}]},
    ]
    message = final_message(gemini_stream_to_anthropic(chunks))
    assert [b.type for b in message.content] == ["text", "thinking", "tool_use"]
    assert (message.content[1].thinking, message.content[1].signature) == ("", "Y2FsbA==")
    assert message.stop_reason == "tool_use"


def test_thinking_text_starts_its_block_at_once_with_its_signature():
    events = [
        neutral.PartStart(0, neutral.Thinking()),
        neutral.PartDelta(0, signature="s1"),
        neutral.PartDelta(0, thinking="hmm"),
        neutral.PartStop(0),
        neutral.PartStart(1, neutral.Thinking()),
        neutral.PartStop(1),  # nothing at all: no block
        neutral.PartStart(2, neutral.Text("")),
        neutral.PartDelta(2, text="done"),
        neutral.PartStop(2),
        neutral.MessageStop("end_turn"),
    ]
    message = final_message(write_stream(events))
    assert [(b.type, getattr(b, "thinking", None)) for b in message.content] == [
        ("thinking", "hmm"),
        ("text", None),
    ]
    assert message.content[0].signature == "s1"


def test_whole_gemini_answers_leave_out_the_same_blocks():
    from calo_addon.translate.gemini import CODEC as GEMINI

    parts = [{"text": "hi"}, {"text": "", "thoughtSignature": "c2ln"}]
    whole = GEMINI.read_response({"candidates": [{"content": {"parts": parts}}]})
    assert CODEC.write_response(whole)["content"] == [{"type": "text", "text": "hi"}]
    parts = [{"text": "hi"}, SIGNED_CALL]
    whole = GEMINI.read_response({"candidates": [{"content": {"parts": parts}}]})
    assert [b["type"] for b in CODEC.write_response(whole)["content"]] == [
        "text",
        "thinking",
        "tool_use",
    ]


def test_message_ids_carry_anthropics_prefix_whatever_the_upstream():
    """A Gemini responseId (no prefix) becomes msg_<id>; an Anthropic id stays as it is."""
    assert CODEC.write_response(neutral.Response("Nj9Ww021", "m"))["id"] == "msg_Nj9Ww021"
    assert CODEC.write_response(neutral.Response("msg_01abc", "m"))["id"] == "msg_01abc"
    writer = CODEC.stream_writer(neutral.Request(model="m"))
    (kind, start), *_ = writer.write(neutral.MessageStart("Nj9Ww021", "m"))
    assert kind == "message_start" and start["message"]["id"] == "msg_Nj9Ww021"
