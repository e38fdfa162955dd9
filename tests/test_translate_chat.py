"""The Chat Completions codec (calo_addon/translate/chat.py), checked against the real openai
SDK: the SDK builds the requests the reader reads (captured through httpx.MockTransport), and
parses the answers and SSE streams the writer produces. Upstream-role tests feed what vLLM,
Ollama and Google's /v1beta/openai/ layer send. Round trips go through the neutral form."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

from calo_addon.translate import neutral
from calo_addon.translate.chat import CODEC
from calo_addon.translate.neutral import (
    Media,
    Message,
    MessageStart,
    MessageStop,
    PartDelta,
    PartStart,
    PartStop,
    Text,
    Thinking,
    ToolCall,
    ToolResult,
    TranslationError,
    Unsupported,
    Usage,
)

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
PDF = base64.b64encode(b"%PDF-1.7 tiny").decode()
SIG_A = "CsYBAdHtim8signatureA=="
SIG_B = "CsYBAdHtim8signatureB=="

# A schema with the keywords sanitisers like to drop: all must survive.
COMPLEX_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {"point": {"type": "object", "properties": {"x": {"type": "number"}}}},
    "properties": {
        "where": {"$ref": "#/$defs/point"},
        "mode": {"anyOf": [{"const": "fast"}, {"type": "integer", "exclusiveMinimum": 0}]},
        "tags": {"type": "object", "propertyNames": {"pattern": "^[a-z]+$"}},
    },
    "required": ["where", "mode", "tags"],
    "additionalProperties": False,
}
LARK = 'start: "*** Begin Patch" LF body "*** End Patch"'


# ---------------------------------------------------------------- SDK plumbing


def _client(handler) -> openai.OpenAI:
    transport = httpx.MockTransport(handler)
    return openai.OpenAI(
        api_key="sk-test",
        base_url="http://127.0.0.1:9/v1",
        http_client=httpx.Client(transport=transport),
        max_retries=0,
    )


def _sdk_request(**kwargs: Any) -> dict[str, Any]:
    """The JSON body the openai SDK sends for `chat.completions.create(**kwargs)`."""
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=CODEC.write_response(_plain_answer()))

    _client(handler).chat.completions.create(**kwargs)
    return seen[0]


def _plain_answer() -> neutral.Response:
    return neutral.Response(id="chatcmpl-x", model="m", parts=[Text("ok")], stop_reason="end_turn")


def _sse(wire: list[tuple[str | None, Any]]) -> bytes:
    """Frame wire events as the product's SSE framing would (one data: line each)."""
    lines = []
    for event_type, data in wire:
        assert event_type is None  # Chat has no event names
        lines.append(f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n")
    return "".join(lines).encode()


def _serving(body: bytes | dict[str, Any]) -> openai.OpenAI:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, bytes):
            headers = {"content-type": "text/event-stream"}
            return httpx.Response(200, content=body, headers=headers)
        return httpx.Response(200, json=body)

    return _client(handler)


def _write_stream(events: list[neutral.Event], request: neutral.Request) -> list:
    writer = CODEC.stream_writer(request)
    wire = [w for event in events for w in writer.write(event)]
    return wire + writer.close()


def _read_stream(wire: list[tuple[str | None, Any]]) -> list[neutral.Event]:
    reader = CODEC.stream_reader()
    events = [e for event_type, data in wire for e in reader.feed(event_type, data)]
    return events + reader.close()


USER = [{"role": "user", "content": "hi"}]


# ---------------------------------------------------------------- client role: requests


def test_sdk_request_with_tools_images_and_settings_is_read_whole():
    body = _sdk_request(
        model="gpt-5",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in these?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "high"},
                    },
                    {"type": "image_url", "image_url": {"url": "https://127.0.0.1/cat.jpg"}},
                    {
                        "type": "file",
                        "file": {
                            "file_data": f"data:application/pdf;base64,{PDF}",
                            "filename": "a.pdf",
                        },
                    },
                ],
            },
        ],
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "locate",
                    "description": "Find a point.",
                    "parameters": COMPLEX_SCHEMA,
                    "strict": True,
                },
            },
            {
                "type": "custom",
                "custom": {
                    "name": "apply_patch",
                    "description": "Edit files.",
                    "format": {
                        "type": "grammar",
                        "grammar": {"syntax": "lark", "definition": LARK},
                    },
                },
            },
        ],
        tool_choice="required",
        parallel_tool_calls=False,
        max_completion_tokens=900,
        temperature=0.2,
        top_p=0.9,
        stop=["END", "STOP"],
        reasoning_effort="high",
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": COMPLEX_SCHEMA, "strict": True},
        },
        stream_options={"include_usage": True},
        user="u-1",
        metadata={"k": "v"},
        store=False,
        seed=7,
        service_tier="auto",
        prompt_cache_key="pk",
        safety_identifier="s",
        frequency_penalty=0.1,
        presence_penalty=0.1,
        logit_bias={"1": 2},
        web_search_options={},
        verbosity="low",
    )
    request = CODEC.read_request(body)

    assert request.model == "gpt-5"
    assert [t.text for t in request.system] == ["Be brief.", "Use tools."]
    [user] = request.messages
    assert user.role == "user"
    text, image, url_image, pdf = user.parts
    assert text == Text("What is in these?")
    assert image == Media(media_type="image/png", data=PNG, detail="high")
    assert url_image == Media(url="https://127.0.0.1/cat.jpg")
    assert pdf == Media(media_type="application/pdf", data=PDF, name="a.pdf")
    locate, patch = request.tools
    assert locate.parameters == COMPLEX_SCHEMA and locate.strict is True
    assert locate.description == "Find a point."
    assert patch.tool_kind == "custom" and patch.format["grammar"]["definition"] == LARK
    assert request.tool_choice == neutral.ToolChoice("required", parallel=False)
    assert request.max_tokens == 900
    assert (request.temperature, request.top_p, request.stop) == (0.2, 0.9, ["END", "STOP"])
    assert request.reasoning == neutral.Reasoning(effort="high")
    assert request.output_format == neutral.OutputFormat(COMPLEX_SCHEMA, "answer", True)
    assert request.extra["include_usage"] is True
    assert set(request.dropped) == {
        "user",
        "metadata",
        "store",
        "seed",
        "service_tier",
        "prompt_cache_key",
        "safety_identifier",
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "web_search_options",
        "verbosity",
    }


def test_sdk_parse_with_a_pydantic_format_reads_its_json_schema():
    class Weather(BaseModel):
        city: str
        celsius: float

    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        answer = neutral.Response(
            id="chatcmpl-1", model="m", parts=[Text('{"city":"Oslo","celsius":3}')]
        )
        return httpx.Response(200, json=CODEC.write_response(answer))

    parsed = _client(handler).chat.completions.parse(
        model="m", messages=USER, response_format=Weather
    )
    request = CODEC.read_request(seen[0])
    assert request.output_format.name == "Weather"
    assert request.output_format.strict is True
    assert request.output_format.schema["properties"]["celsius"] == {
        "title": "Celsius",
        "type": "number",
    }
    assert parsed.choices[0].message.parsed == Weather(city="Oslo", celsius=3)


@pytest.mark.parametrize(
    "extra_body",
    [
        # Google's documented form: the SDK merges it, leaving "extra_body" on the wire
        {
            "extra_body": {
                "google": {"thinking_config": {"thinking_budget": 800, "include_thoughts": True}}
            }
        },
        # the short form: "google" at the top level
        {"google": {"thinking_config": {"thinking_budget": 800, "include_thoughts": True}}},
    ],
)
def test_sdk_google_thinking_config_becomes_reasoning(extra_body):
    body = _sdk_request(model="gemini-2.5-flash", messages=USER, extra_body=extra_body)
    request = CODEC.read_request(body)
    assert request.reasoning == neutral.Reasoning(
        budget_tokens=800, enabled=True, include_thoughts=True
    )
    assert request.dropped == []


def test_google_thinking_budget_zero_and_dynamic_and_other_keys():
    off = CODEC.read_request(
        {"model": "m", "messages": USER, "google": {"thinking_config": {"thinking_budget": 0}}}
    )
    assert off.reasoning.enabled is False and off.reasoning.budget_tokens == 0
    dynamic = CODEC.read_request(
        {
            "model": "m",
            "messages": USER,
            "extra_body": {
                "google": {"thinking_config": {"thinking_budget": -1}, "cached_content": "c"}
            },
        }
    )
    assert dynamic.reasoning.enabled is True and dynamic.reasoning.budget_tokens is None
    assert dynamic.dropped == ["google.cached_content"]


@pytest.mark.parametrize(
    ("effort", "expected"),
    [
        ("minimal", neutral.Reasoning(effort="minimal")),
        ("medium", neutral.Reasoning(effort="medium")),
        ("xhigh", neutral.Reasoning(effort="high")),
        ("none", neutral.Reasoning(enabled=False, budget_tokens=0)),
    ],
)
def test_reasoning_effort_levels(effort, expected):
    body = _sdk_request(model="m", messages=USER, reasoning_effort=effort)
    assert CODEC.read_request(body).reasoning == expected


def _three_turn_conversation() -> list[dict[str, Any]]:
    """What a Chat client keeps of a Gemini thinking model's tool use, signatures included."""
    return [
        {"role": "system", "content": "You are an agent."},
        {"role": "user", "content": "Weather in Paris and Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": "Two cities: two calls.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                    "extra_content": {"google": {"thought_signature": SIG_A}},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "3C"}]},
        {"role": "assistant", "content": "Paris 18C, Oslo 3C."},
        {"role": "user", "content": "And Rome?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_3",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Rome"}'},
                    "extra_content": {"google": {"thought_signature": SIG_B}},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_3", "content": "25C"},
    ]


def test_sdk_three_turn_tool_conversation_keeps_calls_results_and_signatures():
    body = _sdk_request(
        model="gemini-3-pro",
        messages=_three_turn_conversation(),
        tools=[
            {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}
        ],
    )
    request = CODEC.read_request(body)
    assert [t.text for t in request.system] == ["You are an agent."]
    roles = [m.role for m in request.messages]
    assert roles == ["user", "assistant", "user", "assistant", "user", "assistant", "user"]
    first_calls = request.messages[1].parts
    assert first_calls == [
        Thinking(text="Two cities: two calls."),
        Thinking(text="", signature=SIG_A, attached=True),
        ToolCall("call_1", "weather", {"city": "Paris"}),
        ToolCall("call_2", "weather", {"city": "Oslo"}),
    ]
    assert request.messages[2].parts == [
        ToolResult("call_1", [Text("18C")], name="weather"),
        ToolResult("call_2", [Text("3C")], name="weather"),
    ]
    assert request.messages[5].parts == [
        Text("Checking."),
        Thinking(text="", signature=SIG_B, attached=True),
        ToolCall("call_3", "weather", {"city": "Rome"}),
    ]
    assert request.messages[6].parts == [ToolResult("call_3", [Text("25C")], name="weather")]


def test_legacy_functions_and_function_messages_pair_up():
    request = CODEC.read_request(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": None,
                    "function_call": {"name": "clock", "arguments": "{}"},
                },
                {"role": "function", "name": "clock", "content": "noon"},
            ],
            "functions": [{"name": "clock", "parameters": {"type": "object"}}],
            "function_call": {"name": "clock"},
        }
    )
    [call] = request.messages[1].parts
    [result] = request.messages[2].parts
    assert call.name == "clock" and call.id.startswith("call_")
    assert result == ToolResult(call.id, [Text("noon")], name="clock")
    assert request.tools == [neutral.Tool("clock", parameters={"type": "object"})]
    assert request.tool_choice == neutral.ToolChoice("tool", name="clock")


def test_named_tool_choices_and_allowed_tools():
    tools = [
        {"type": "function", "function": {"name": "a"}},
        {"type": "function", "function": {"name": "b"}},
        {"type": "custom", "custom": {"name": "c"}},
    ]

    def read(choice):
        return CODEC.read_request(
            {"model": "m", "messages": USER, "tools": tools, "tool_choice": choice}
        )

    assert read({"type": "function", "function": {"name": "b"}}).tool_choice == neutral.ToolChoice(
        "tool", name="b"
    )
    assert read({"type": "custom", "custom": {"name": "c"}}).tool_choice.name == "c"
    narrowed = read(
        {
            "type": "allowed_tools",
            "allowed_tools": {
                "mode": "required",
                "tools": [{"type": "function", "function": {"name": "a"}}],
            },
        }
    )
    assert narrowed.tool_choice.mode == "required"
    assert [t.name for t in narrowed.tools] == ["a"]


def test_system_message_after_the_conversation_joins_the_system_prompt_and_says_so():
    request = CODEC.read_request(
        {
            "model": "m",
            "messages": [
                {"role": "system", "content": "one"},
                {"role": "user", "content": "hi"},
                {"role": "developer", "content": "two"},
            ],
        }
    )
    assert [t.text for t in request.system] == ["one", "two"]
    assert request.extra["moved_system"] == ["messages[2]"]


def test_empty_texts_beside_tool_calls_and_empty_tool_outputs_are_no_parts():
    request = CODEC.read_request(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": ""},
            ],
        }
    )
    assert request.messages[1].parts == [ToolCall("c1", "f", {})]
    assert request.messages[2].parts == [ToolResult("c1", [], name="f")]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": ["hi"]}, "messages[0]"),
        ({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        (
            {"model": "m", "messages": [{"role": "assistant", "content": None, "tool_calls": 5}]},
            "messages[0].tool_calls",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{oops"},
                            }
                        ],
                    }
                ],
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": "[1]"},
                            }
                        ],
                    }
                ],
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "video"}]}]},
            "messages[0].content[0].type",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "data:,x"}}],
                    }
                ],
            },
            "messages[0].content[0].image_url.url",
        ),
        ({"model": "m", "messages": USER, "tools": [{"type": "function"}]}, "tools[0].function"),
        ({"model": "m", "messages": USER, "tool_choice": "sometimes"}, "tool_choice"),
        ({"model": "m", "messages": USER, "reasoning_effort": "extreme"}, "reasoning_effort"),
        (
            {"model": "m", "messages": USER, "response_format": {"type": "xml"}},
            "response_format.type",
        ),
        ({"model": "m", "messages": USER, "max_tokens": "lots"}, "max_tokens"),
        ({"model": "m", "messages": USER, "temperature": "hot"}, "temperature"),
        ({"model": "m", "messages": USER, "stop": [1]}, "stop[0]"),
        ({"model": 5, "messages": USER}, "model"),
    ],
)
def test_malformed_requests_name_the_field(body, field):
    with pytest.raises(TranslationError) as caught:
        CODEC.read_request(body)
    assert caught.value.field == field
    assert not isinstance(caught.value, Unsupported)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "m", "messages": USER, "n": 2}, "n"),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}
                        ],
                    }
                ],
            },
            "messages[0].content[0].input_audio",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}
                ],
            },
            "messages[0].content[0].file.file_id",
        ),
        ({"model": "m", "messages": USER, "tools": [{"type": "web_search"}]}, "tools[0].type"),
    ],
)
def test_features_the_answer_depends_on_are_unsupported(body, field):
    with pytest.raises(Unsupported) as caught:
        CODEC.read_request(body)
    assert caught.value.field == field


def test_n_of_one_is_fine():
    assert CODEC.read_request({"model": "m", "messages": USER, "n": 1}).messages


# ---------------------------------------------------------------- client role: whole answers


def _tool_answer() -> neutral.Response:
    return neutral.Response(
        id="chatcmpl-abc",
        model="gemini-3-pro",
        parts=[
            Thinking(text="Need both cities."),
            Text("Looking up."),
            Thinking(text="", signature=SIG_A, attached=True),
            ToolCall("call_1", "weather", {"city": "Paris"}),
            ToolCall("call_2", "weather", {"city": "Oslo", "units": ["C"]}),
        ],
        stop_reason="tool_use",
        usage=Usage(
            input_tokens=120, output_tokens=80, cached_input_tokens=100, reasoning_tokens=50
        ),
    )


def test_sdk_reads_the_written_answer():
    completion = _serving(CODEC.write_response(_tool_answer())).chat.completions.create(
        model="m", messages=USER
    )
    assert completion.id == "chatcmpl-abc"
    assert completion.object == "chat.completion"
    [choice] = completion.choices
    assert choice.finish_reason == "tool_calls"
    message = choice.message
    assert message.content == "Looking up."
    assert message.model_extra["reasoning_content"] == "Need both cities."
    first, second = message.tool_calls
    assert (first.id, first.function.name) == ("call_1", "weather")
    assert json.loads(first.function.arguments) == {"city": "Paris"}
    assert json.loads(second.function.arguments) == {"city": "Oslo", "units": ["C"]}
    assert first.model_extra["extra_content"] == {"google": {"thought_signature": SIG_A}}
    assert "extra_content" not in (second.model_extra or {})
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (120, 80, 200)
    assert usage.prompt_tokens_details.cached_tokens == 100
    assert usage.completion_tokens_details.reasoning_tokens == 50


def test_answer_with_only_tool_calls_has_null_content_and_custom_calls_come_back_custom():
    answer = neutral.Response(
        id="r1",
        model="m",
        parts=[ToolCall("call_9", "apply_patch", {"input": "*** Begin Patch"}, tool_kind="custom")],
        stop_reason="tool_use",
    )
    payload = CODEC.write_response(answer)
    assert payload["id"] == "chatcmpl-r1"
    message = _serving(payload).chat.completions.create(model="m", messages=USER).choices[0].message
    assert message.content is None
    [call] = message.tool_calls
    assert call.type == "custom"
    assert (call.id, call.custom.name, call.custom.input) == (
        "call_9",
        "apply_patch",
        "*** Begin Patch",
    )


def test_a_signature_no_tool_call_follows_rides_on_the_message():
    answer = neutral.Response(
        id="chatcmpl-1",
        model="m",
        parts=[Thinking(signature=SIG_A, attached=True), Text("Hello.")],
        stop_reason="end_turn",
    )
    message = CODEC.write_response(answer)["choices"][0]["message"]
    assert message["extra_content"] == {"google": {"thought_signature": SIG_A}}
    assert "reasoning_content" not in message


def test_reasoning_summaries_show_when_there_is_no_thought_text():
    answer = neutral.Response(
        id="chatcmpl-1",
        model="m",
        parts=[Thinking(summary=["First.", "Second."], signature="enc"), Text("Done.")],
    )
    message = CODEC.write_response(answer)["choices"][0]["message"]
    assert message["reasoning_content"] == "First.\n\nSecond."


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        (None, "stop"),
    ],
)
def test_finish_reasons(stop, finish):
    answer = neutral.Response(id="chatcmpl-1", model="m", parts=[Text("x")], stop_reason=stop)
    assert CODEC.write_response(answer)["choices"][0]["finish_reason"] == finish


# ---------------------------------------------------------------- client role: streams


def _neutral_stream(signature: bool = True) -> list[neutral.Event]:
    """Thinking, text, then two tool calls whose arguments arrive in fragments."""
    events: list[neutral.Event] = [
        MessageStart("chatcmpl-s1", "gemini-3-pro", Usage(input_tokens=120)),
        PartStart(0, Thinking()),
        PartDelta(0, thinking="Need "),
        PartDelta(0, thinking="both."),
        PartStop(0),
        PartStart(1, Text("")),
        PartDelta(1, text="Looking "),
        PartDelta(1, text="up."),
        PartStop(1),
    ]
    if signature:
        events += [
            PartStart(2, Thinking(attached=True)),
            PartDelta(2, signature=SIG_A),
            PartStop(2),
        ]
    n = 3 if signature else 2
    events += [
        PartStart(n, ToolCall("call_1", "weather")),
        PartDelta(n, arguments='{"ci'),
        PartDelta(n, arguments='ty": "Par'),
        PartDelta(n, arguments='is"}'),
        PartStop(n),
        PartStart(n + 1, ToolCall("call_2", "weather")),
        PartDelta(n + 1, arguments='{"city":'),
        PartDelta(n + 1, arguments=' "Oslo"}'),
        PartStop(n + 1),
        MessageStop(
            "tool_use",
            Usage(output_tokens=80, cached_input_tokens=100, reasoning_tokens=50),
        ),
    ]
    return events


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}


def _streaming_request() -> neutral.Request:
    return CODEC.read_request(
        {
            "model": "m",
            "messages": USER,
            "tools": [WEATHER_TOOL],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )


def test_stream_chunks_have_the_official_shape():
    wire = _write_stream(_neutral_stream(), _streaming_request())
    chunks = [data for _, data in wire[:-1]]
    assert wire[-1] == (None, "[DONE]")
    assert {(c["id"], c["created"], c["model"], c["object"]) for c in chunks} == {
        ("chatcmpl-s1", chunks[0]["created"], "gemini-3-pro", "chat.completion.chunk")
    }
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    opening = chunks[5]["choices"][0]["delta"]["tool_calls"][0]
    assert opening == {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "weather", "arguments": ""},
        "extra_content": {"google": {"thought_signature": SIG_A}},
    }
    assert chunks[6]["choices"][0]["delta"]["tool_calls"] == [
        {"index": 0, "function": {"arguments": '{"ci'}}
    ]
    finish, usage = chunks[-2], chunks[-1]
    assert finish["choices"] == [
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}
    ]
    assert usage["choices"] == []
    assert usage["usage"] == {
        "prompt_tokens": 120,
        "completion_tokens": 80,
        "total_tokens": 200,
        "prompt_tokens_details": {"cached_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 50},
    }


def test_sdk_create_stream_assembles_the_written_stream():
    body = _sse(_write_stream(_neutral_stream(), _streaming_request()))
    stream = _serving(body).chat.completions.create(
        model="m", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content", "")
        for c in chunks
        if c.choices
    )
    arguments: dict[int, str] = {}
    ids: dict[int, str] = {}
    for chunk in chunks:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            ids.setdefault(call.index, call.id)
            arguments[call.index] = arguments.get(call.index, "") + call.function.arguments
    assert (text, reasoning) == ("Looking up.", "Need both.")
    assert ids == {0: "call_1", 1: "call_2"}
    assert {i: json.loads(a) for i, a in arguments.items()} == {
        0: {"city": "Paris"},
        1: {"city": "Oslo"},
    }
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 100


@pytest.mark.parametrize("helper", ["chat", "beta"])
def test_sdk_stream_helper_assembles_the_final_message(helper):
    body = _sse(_write_stream(_neutral_stream(), _streaming_request()))
    client = _serving(body)
    completions = client.chat.completions if helper == "chat" else client.beta.chat.completions
    with completions.stream(
        model="m",
        messages=USER,
        tools=[WEATHER_TOOL],
        stream_options={"include_usage": True},
    ) as stream:
        final = stream.get_final_completion()
    [choice] = final.choices
    assert choice.finish_reason == "tool_calls"
    message = choice.message
    assert message.content == "Looking up."
    assert message.model_extra["reasoning_content"] == "Need both."
    first, second = message.tool_calls
    assert (first.id, second.id) == ("call_1", "call_2")
    assert first.function.parsed_arguments == {"city": "Paris"}
    assert second.function.parsed_arguments == {"city": "Oslo"}
    assert first.model_extra["extra_content"] == {"google": {"thought_signature": SIG_A}}
    assert final.usage.prompt_tokens == 120
    assert final.usage.prompt_tokens_details.cached_tokens == 100
    assert final.usage.completion_tokens_details.reasoning_tokens == 50


def test_stream_without_include_usage_has_no_usage_chunk():
    request = CODEC.read_request({"model": "m", "messages": USER, "stream": True})
    wire = _write_stream(_neutral_stream(signature=False), request)
    assert all(data == "[DONE]" or data["choices"] for _, data in wire)


def test_stream_error_becomes_an_error_event_the_sdk_raises():
    events = _neutral_stream()[:7] + [
        neutral.StreamError(429, "quota exhausted", "RESOURCE_EXHAUSTED")
    ]
    writer = CODEC.stream_writer(_streaming_request())
    wire = [w for e in events for w in writer.write(e)]
    assert writer.write(PartDelta(1, text="late")) == []
    wire += writer.close()
    assert wire[-1] == (
        None,
        {
            "error": {
                "message": "quota exhausted",
                "type": "rate_limit_error",
                "code": "RESOURCE_EXHAUSTED",
            }
        },
    )
    stream = _serving(_sse(wire)).chat.completions.create(model="m", messages=USER, stream=True)
    with pytest.raises(openai.APIError, match="quota exhausted"):
        list(stream)


def test_stream_custom_tool_call_goes_out_whole_as_the_client_declared_it():
    request = CODEC.read_request(
        {
            "model": "m",
            "messages": USER,
            "stream": True,
            "tools": [{"type": "custom", "custom": {"name": "apply_patch"}}],
        }
    )
    events = [
        MessageStart("chatcmpl-c", "m"),
        PartStart(0, ToolCall("call_p", "apply_patch")),  # served as a function upstream
        PartDelta(0, arguments='{"input": "*** Begin'),
        PartDelta(0, arguments=' Patch\\n"}'),
        PartStop(0),
        MessageStop("tool_use"),
    ]
    wire = _write_stream(events, request)
    calls = [
        call
        for _, data in wire
        if data != "[DONE]"
        for call in data["choices"][0]["delta"].get("tool_calls", [])
    ]
    assert calls == [
        {
            "index": 0,
            "id": "call_p",
            "type": "custom",
            "custom": {"name": "apply_patch", "input": "*** Begin Patch\n"},
        }
    ]


# ---------------------------------------------------------------- upstream role: requests


def _rich_request() -> neutral.Request:
    return neutral.Request(
        model="qwen3",
        system=[Text("Be brief.")],
        messages=[
            Message("user", [Text("Look:"), Media(media_type="image/png", data=PNG, detail="low")]),
            Message(
                "assistant",
                [
                    Thinking(text="Anthropic-style thought", signature="anthropic-sig"),
                    Text("Calling."),
                    Thinking(signature=SIG_A, attached=True),
                    ToolCall("call_1", "locate", {"where": {"x": 1}}),
                    ToolCall("call_2", "locate", {"where": {"x": 2}}),
                ],
            ),
            Message(
                "user",
                [
                    ToolResult("call_1", [Text("found")], name="locate"),
                    ToolResult(
                        "call_2",
                        [Text("a picture"), Media(media_type="image/png", data=PNG)],
                        name="locate",
                    ),
                    Text("Now summarise."),
                ],
            ),
        ],
        tools=[neutral.Tool("locate", "Find a point.", COMPLEX_SCHEMA, strict=True)],
        tool_choice=neutral.ToolChoice("tool", name="locate", parallel=False),
        max_tokens=500,
        temperature=0.5,
        top_p=0.8,
        stop=["END"],
        reasoning=neutral.Reasoning(effort="low"),
        output_format=neutral.OutputFormat(COMPLEX_SCHEMA, "out", True),
        stream=True,
    )


def test_upstream_request_shape():
    body = CODEC.write_request(_rich_request())
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look:"},
                {
                    "type": "image_url",
                    "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": "Calling.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "locate", "arguments": '{"where":{"x":1}}'},
                    "extra_content": {"google": {"thought_signature": SIG_A}},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "locate", "arguments": '{"where":{"x":2}}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "found"},
        {"role": "tool", "tool_call_id": "call_2", "content": "a picture"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "text", "text": "Now summarise."},
            ],
        },
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "locate",
                "description": "Find a point.",
                "parameters": COMPLEX_SCHEMA,
                "strict": True,
            },
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "locate"}}
    assert body["parallel_tool_calls"] is False
    assert body["max_completion_tokens"] == 500
    assert (body["temperature"], body["top_p"], body["stop"]) == (0.5, 0.8, ["END"])
    assert body["reasoning_effort"] == "low"
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": COMPLEX_SCHEMA, "strict": True},
    }
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_upstream_request_is_what_the_sdk_sends_unchanged():
    """The SDK's own request builder takes every field as we write it."""
    body = CODEC.write_request(_rich_request())
    body.pop("stream"), body.pop("stream_options")
    assert _sdk_request(**body) == body


def test_upstream_custom_tools_become_functions_of_one_string():
    request = neutral.Request(
        model="m",
        messages=[
            Message("user", [Text("patch it")]),
            Message(
                "assistant",
                [
                    ToolCall(
                        "call_p", "apply_patch", {"input": "*** Begin Patch"}, tool_kind="custom"
                    )
                ],
            ),
        ],
        tools=[
            neutral.Tool(
                "apply_patch",
                "Edit files.",
                tool_kind="custom",
                format={"type": "grammar", "grammar": {"syntax": "lark", "definition": LARK}},
            )
        ],
    )
    body = CODEC.write_request(request)
    [tool] = body["tools"]
    parameters = tool["function"]["parameters"]
    assert parameters["properties"]["input"]["type"] == "string"
    assert LARK in parameters["properties"]["input"]["description"]
    assert parameters["required"] == ["input"]
    [call] = body["messages"][1]["tool_calls"]
    assert call["type"] == "function"
    assert json.loads(call["function"]["arguments"]) == {"input": "*** Begin Patch"}


@pytest.mark.parametrize(
    ("reasoning", "effort"),
    [
        (neutral.Reasoning(budget_tokens=3000), "low"),
        (neutral.Reasoning(budget_tokens=32768), "high"),
        (neutral.Reasoning(effort="minimal"), "minimal"),
        (neutral.Reasoning(enabled=False), None),
        (neutral.Reasoning(budget_tokens=0), None),
        (neutral.Reasoning(enabled=True), None),
        (None, None),
    ],
)
def test_upstream_reasoning_effort(reasoning, effort):
    body = CODEC.write_request(neutral.Request(model="m", messages=[], reasoning=reasoning))
    assert body.get("reasoning_effort") == effort


def test_upstream_drops_and_names_what_chat_has_no_place_for():
    request = neutral.Request(
        model="m",
        messages=[Message("user", [Text("hi")])],
        hosted_tools=[neutral.HostedTool("web_search")],
        top_k=40,
        output_format=neutral.OutputFormat(),
    )
    body = CODEC.write_request(request)
    assert "top_k" not in body and "tools" not in body
    assert body["response_format"] == {"type": "json_object"}
    assert request.dropped == ["hosted_tools.web_search", "top_k"]


def test_upstream_documents_inline_and_by_url():
    pdf = Media(media_type="application/pdf", data=PDF, name="r.pdf")
    body = CODEC.write_request(
        neutral.Request(model="m", messages=[Message("user", [Text("read"), pdf])])
    )
    assert body["messages"][0]["content"][1] == {
        "type": "file",
        "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "r.pdf"},
    }
    by_url = Media(media_type="application/pdf", url="https://127.0.0.1/r.pdf")
    with pytest.raises(Unsupported):
        CODEC.write_request(neutral.Request(model="m", messages=[Message("user", [by_url])]))


def test_upstream_sends_only_gemini_style_signatures():
    """An Anthropic or Responses signature means nothing to a Chat server (and Google's layer
    would refuse it as a thought signature): only an `attached` one goes on the call."""
    request = neutral.Request(
        model="m",
        messages=[
            Message("user", [Text("go")]),
            Message(
                "assistant",
                [
                    Thinking(text="plan", signature="anthropic-sig"),
                    ToolCall("call_1", "f", {}),
                    Thinking(summary=["s"], signature="encrypted-reasoning"),
                    ToolCall("call_2", "f", {}),
                ],
            ),
        ],
    )
    [first, second] = CODEC.write_request(request)["messages"][1]["tool_calls"]
    assert "extra_content" not in first and "extra_content" not in second


# ---------------------------------------------------------------- upstream role: answers


def test_upstream_answer_from_vllm_with_reasoning_and_tool_calls():
    payload = {
        "id": "chatcmpl-v1",
        "object": "chat.completion",
        "created": 1,
        "model": "qwen3",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "reasoning_content": "Think.",
                    "reasoning": "Think.",
                    "tool_calls": [
                        {
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a": 1}'},
                            "extra_content": {"google": {"thought_signature": SIG_A}},
                        },
                        {
                            "id": "call_b",
                            "type": "function",
                            "function": {"name": "g", "arguments": "{bad"},
                        },
                    ],
                },
                "finish_reason": "stop",  # Ollama and Gemini's layer say so after calls
            }
        ],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 7,
            "total_tokens": 17,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 3},
        },
    }
    response = CODEC.read_response(payload)
    assert response.parts == [
        Thinking(text="Think."),
        Thinking(signature=SIG_A, attached=True),
        ToolCall("call_a", "f", {"a": 1}),
        ToolCall("call_b", "g", "{bad"),  # kept raw: the model's own (broken) answer
    ]
    assert response.stop_reason == "tool_use"
    assert response.usage == Usage(10, 7, 4, None, 3)
    # the raw text goes back to a Chat client exactly as it came
    written = CODEC.write_response(response)["choices"][0]["message"]["tool_calls"][1]
    assert written["function"]["arguments"] == "{bad"


def test_upstream_answer_refusal_and_length():
    refusal = CODEC.read_response(
        {
            "id": "x",
            "model": "m",
            "choices": [
                {
                    "message": {"role": "assistant", "content": None, "refusal": "I can't."},
                    "finish_reason": "stop",
                }
            ],
        }
    )
    assert refusal.parts == [Text("I can't.")] and refusal.stop_reason == "refusal"
    cut = CODEC.read_response(
        {
            "id": "x",
            "model": "m",
            "choices": [{"message": {"content": "abc"}, "finish_reason": "length"}],
        }
    )
    assert cut.stop_reason == "max_tokens"
    with pytest.raises(TranslationError):
        CODEC.read_response({"id": "x", "choices": []})


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"error": {"message": "bad key", "type": "invalid_request_error"}}, "bad key"),
        (
            [{"error": {"code": 400, "message": "google says no", "status": "INVALID_ARGUMENT"}}],
            "google says no",
        ),
        ({"error": "model not found"}, "model not found"),
        ({"object": "error", "message": "vllm says no", "type": "BadRequestError"}, "vllm says no"),
        ({"choices": []}, None),
        ("text", None),
    ],
)
def test_error_message(payload, message):
    assert CODEC.error_message(payload) == message


# ---------------------------------------------------------------- upstream role: streams


def _chunk(delta=None, finish=None, **extra) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {
        "id": "chatcmpl-u",
        "object": "chat.completion.chunk",
        "model": "qwen3",
        "choices": choices,
        **extra,
    }


def _call_delta(index, arguments, id=None, name=None, **extra):
    entry: dict[str, Any] = {"index": index, "function": {"arguments": arguments}, **extra}
    if id:
        entry.update(id=id, type="function")
        entry["function"]["name"] = name
    return {"tool_calls": [entry]}


def test_upstream_stream_from_vllm_passes_every_fragment_on_as_it_comes():
    reader = CODEC.stream_reader()
    feed = [
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"reasoning_content": "Hmm", "reasoning": "Hmm"}),
        _chunk({"reasoning_content": "."}),
        _chunk({"content": "Sure."}),
        _chunk(_call_delta(0, "", id="call_a", name="f")),
        _chunk(_call_delta(0, '{"a"')),
        _chunk(_call_delta(0, ": 1}")),
        _chunk(_call_delta(1, "", id="call_b", name="g")),
        _chunk(_call_delta(1, '{"b": 2}')),
        _chunk({}, "tool_calls"),
        _chunk(usage={"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}),
        "[DONE]",
    ]
    got = [reader.feed(None, data) for data in feed]
    assert got == [
        [MessageStart("chatcmpl-u", "qwen3")],
        [PartStart(0, Thinking()), PartDelta(0, thinking="Hmm")],
        [PartDelta(0, thinking=".")],
        [PartStop(0), PartStart(1, Text("")), PartDelta(1, text="Sure.")],
        [PartStop(1), PartStart(2, ToolCall("call_a", "f"))],
        [PartDelta(2, arguments='{"a"')],
        [PartDelta(2, arguments=": 1}")],
        [PartStop(2), PartStart(3, ToolCall("call_b", "g"))],
        [PartDelta(3, arguments='{"b": 2}')],
        [PartStop(3)],
        [MessageStop("tool_use", Usage(5, 9))],
        [],
    ]
    assert reader.close() == []


def test_upstream_stream_interleaved_calls_are_serialised():
    feed = [
        _chunk(_call_delta(0, '{"a":', id="call_a", name="f")),
        _chunk(_call_delta(1, '{"b":', id="call_b", name="g")),
        _chunk(_call_delta(1, " 2}")),
        _chunk(_call_delta(0, " 1")),
        _chunk(_call_delta(0, "}")),
        _chunk({}, "tool_calls"),
        "[DONE]",
    ]
    reader = CODEC.stream_reader()
    got = [reader.feed(None, data) for data in feed]
    assert got == [
        [
            MessageStart("chatcmpl-u", "qwen3"),
            PartStart(0, ToolCall("call_a", "f")),
            PartDelta(0, arguments='{"a":'),
        ],
        [],  # call_b waits: call_a is not whole yet
        [],
        [PartDelta(0, arguments=" 1")],
        [
            PartDelta(0, arguments="}"),
            PartStop(0),
            PartStart(1, ToolCall("call_b", "g")),
            PartDelta(1, arguments='{"b": 2}'),
        ],
        [PartStop(1)],
        [MessageStop("tool_use", Usage())],
    ]


def test_upstream_stream_from_googles_layer_with_signatures():
    feed = [
        _chunk(
            {
                "role": "assistant",
                "content": "Let me check.",
                "extra_content": {"google": {"thought_signature": SIG_B}},
            }
        ),
        _chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a":1}'},
                        "extra_content": {"google": {"thought_signature": SIG_A}},
                    },
                    {
                        "index": 1,
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a":2}'},
                    },
                ]
            },
            "stop",
            usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        ),
        "[DONE]",
    ]
    events = _read_stream([(None, data) for data in feed])
    assert events == [
        MessageStart("chatcmpl-u", "qwen3"),
        PartStart(0, Thinking(attached=True)),
        PartDelta(0, signature=SIG_B),
        PartStop(0),
        PartStart(1, Text("")),
        PartDelta(1, text="Let me check."),
        PartStop(1),
        PartStart(2, Thinking(attached=True)),
        PartDelta(2, signature=SIG_A),
        PartStop(2),
        PartStart(3, ToolCall("call_a", "f")),
        PartDelta(3, arguments='{"a":1}'),
        PartStop(3),
        PartStart(4, ToolCall("call_b", "f")),
        PartDelta(4, arguments='{"a":2}'),
        PartStop(4),
        MessageStop("tool_use", Usage(3, 4)),
    ]


def test_upstream_stream_error_event_and_early_end():
    reader = CODEC.stream_reader()
    reader.feed(None, _chunk({"content": "par"}))
    [error] = reader.feed(
        None, {"error": {"message": "overloaded", "type": "server_error", "code": 503}}
    )
    assert error == neutral.StreamError(503, "overloaded", "server_error")
    assert reader.feed(None, _chunk({"content": "more"})) == []
    assert reader.close() == []

    cut = CODEC.stream_reader()
    cut.feed(None, _chunk({"content": "par"}))
    assert cut.close() == [PartStop(0), MessageStop(None, Usage())]


def test_upstream_stream_rate_limit_type_gives_429():
    [error] = CODEC.stream_reader().feed(
        None, {"error": {"message": "slow down", "type": "rate_limit_error"}}
    )
    assert error.status == 429


def test_upstream_stream_legacy_function_call_and_calls_without_index():
    legacy = _read_stream(
        [
            (None, _chunk({"function_call": {"name": "clock", "arguments": ""}})),
            (None, _chunk({"function_call": {"arguments": '{"tz": '}})),
            (None, _chunk({"function_call": {"arguments": '"UTC"}'}})),
            (None, _chunk({}, "function_call")),
        ]
    )
    start = legacy[1]
    assert isinstance(start.part, ToolCall) and start.part.name == "clock"
    assert start.part.id.startswith("call_")
    assert legacy[2:] == [
        PartDelta(0, arguments='{"tz": '),
        PartDelta(0, arguments='"UTC"}'),
        PartStop(0),
        MessageStop("tool_use", Usage()),
    ]
    # no index on each entry (seen from some servers): a new id is a new call
    unindexed = _read_stream(
        [
            (
                None,
                _chunk({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{}"}}]}),
            ),
            (
                None,
                _chunk({"tool_calls": [{"id": "b", "function": {"name": "g", "arguments": "{}"}}]}),
            ),
            (None, _chunk({}, "tool_calls")),
        ]
    )
    starts = [e.part for e in unindexed if isinstance(e, PartStart)]
    assert starts == [ToolCall("a", "f"), ToolCall("b", "g")]


def test_stream_error_before_anything_else_is_only_the_error():
    writer = CODEC.stream_writer(_streaming_request())
    assert writer.write(neutral.StreamError(500, "boom")) == [
        (None, {"error": {"message": "boom", "type": "server_error", "code": 500}})
    ]
    assert writer.close() == []


# ---------------------------------------------------------------- round trips


def test_request_round_trip_through_chat():
    original = _rich_request()
    original.messages[1].parts.pop(0)  # Chat does not carry Anthropic thinking upstream
    # a tool's images travel in the user message after the results
    original.messages[2].parts[1].content = [Text("a picture")]
    back = CODEC.read_request(CODEC.write_request(original))
    back.extra.pop("include_usage")
    assert back == original


def test_sdk_request_round_trip_keeps_the_conversation():
    body = _sdk_request(model="m", messages=_three_turn_conversation())
    first = CODEC.read_request(body)
    rewritten = CODEC.write_request(first)
    second = CODEC.read_request(rewritten)
    # reasoning text is not sent to a plain Chat server; everything else survives
    first.messages[1].parts.pop(0)
    assert second.messages == first.messages and second.system == first.system


def test_answer_round_trip():
    original = _tool_answer()
    back = CODEC.read_response(CODEC.write_response(original))
    assert back.parts == original.parts
    assert (back.id, back.model, back.stop_reason, back.usage) == (
        original.id,
        original.model,
        original.stop_reason,
        original.usage,
    )


def test_stream_round_trip():
    events = _neutral_stream()
    back = _read_stream(_write_stream(events, _streaming_request()))
    start = events[0]
    merged = Usage(120, 80, 100, None, 50)  # the start's input count joins the end's usage
    assert back == [
        MessageStart(start.id, start.model),
        *events[1:-1],
        MessageStop("tool_use", merged),
    ]
