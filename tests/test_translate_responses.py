"""The Responses codec against the real openai SDK (through httpx.MockTransport, loopback
only): requests the SDK and Codex build are read right, answers and streams we write are
parsed and assembled by the SDK, and everything survives a round trip."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from calo_addon.translate import neutral
from calo_addon.translate.responses import CODEC

BASE_URL = "http://127.0.0.1:9/v1"
SCHEMA = {
    "$defs": {"unit": {"enum": ["c", "f"]}},
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 1},
        "unit": {"anyOf": [{"$ref": "#/$defs/unit"}, {"type": "null"}]},
        "days": {"type": "integer", "exclusiveMinimum": 0},
    },
    "required": ["city"],
    "additionalProperties": False,
}
GRAMMAR = 'start: begin_patch hunk+ end_patch\nbegin_patch: "*** Begin Patch" LF\n'
APPLY_PATCH = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Use the `apply_patch` tool to edit files.",
    "format": {"type": "grammar", "syntax": "lark", "definition": GRAMMAR},
}
GEMINI_SIGNATURE = "CiQB0e2Kb8bm+signature/base64=="
MINIMAL_ANSWER = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1,
    "model": "m",
    "status": "completed",
    "output": [],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
}


# ---------------------------------------------------------------- helpers


def sse(events: list[tuple[str | None, Any]]) -> bytes:
    """Frame wire events as server-sent events, the way the proxy's transport does."""
    frames = [f"event: {kind}\ndata: {json.dumps(data)}\n\n" for kind, data in events]
    return "".join(frames).encode()


def client(handler) -> openai.OpenAI:
    transport = httpx.MockTransport(handler)
    return openai.OpenAI(
        api_key="x", base_url=BASE_URL, http_client=httpx.Client(transport=transport)
    )


def sdk_body(**kwargs: Any) -> dict[str, Any]:
    """The JSON body the openai SDK sends for `responses.create(**kwargs)`."""
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=MINIMAL_ANSWER)

    client(handler).responses.create(**kwargs)
    return seen[0]


def serve_answer(answer: dict[str, Any]) -> openai.OpenAI:
    return client(lambda request: httpx.Response(200, json=answer))


def serve_stream(events: list[tuple[str | None, Any]]) -> openai.OpenAI:
    headers = {"content-type": "text/event-stream"}
    return client(lambda request: httpx.Response(200, content=sse(events), headers=headers))


def write_stream(
    request: neutral.Request, events: list[neutral.Event]
) -> list[tuple[str | None, Any]]:
    writer = CODEC.stream_writer(request)
    wire = [w for event in events for w in writer.write(event)]
    return wire + writer.close()


def read_stream(wire: list[tuple[str | None, Any]]) -> list[neutral.Event]:
    reader = CODEC.stream_reader()
    return [e for kind, data in wire for e in reader.feed(kind, data)] + reader.close()


def three_turn_input() -> list[dict[str, Any]]:
    """A function-call round trip with reasoning, as a store-false client sends it back."""
    return [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": GEMINI_SIGNATURE},
        {
            "type": "function_call",
            "call_id": "call_a",
            "name": "weather",
            "arguments": '{"city": "Paris"}',
        },
        {
            "type": "function_call",
            "call_id": "call_b",
            "name": "weather",
            "arguments": '{"city": "Rome"}',
        },
        {"type": "function_call_output", "call_id": "call_a", "output": "18C"},
        {
            "type": "function_call_output",
            "call_id": "call_b",
            "output": [{"type": "input_text", "text": "24C"}],
        },
        {
            "type": "reasoning",
            "id": "rs_2",
            "summary": [{"type": "summary_text", "text": "Both known."}],
            "encrypted_content": "enc-2",
        },
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Paris 18C, Rome 24C."}],
        },
        {"type": "reasoning", "summary": [], "encrypted_content": None},  # nothing: skipped
        {"role": "user", "content": [{"type": "input_text", "text": "Thanks"}]},
    ]


def codex_body() -> dict[str, Any]:
    """What Codex 0.169 sends (agent-clis.md): developer messages, store false, ..."""
    return {
        "model": "gpt-5-codex",
        "instructions": "You are Codex.",
        "input": [
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "<permissions>"}],
            },
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "fix the bug"}],
            },
        ],
        "tools": [
            {
                "type": "function",
                "name": "shell",
                "description": "Runs a shell command",
                "strict": False,
                "parameters": {
                    "type": "object",
                    "properties": {"command": {"type": "array", "items": {"type": "string"}}},
                    "required": ["command"],
                    "additionalProperties": False,
                },
            },
            APPLY_PATCH,
            {"type": "tool_search", "execution": "server"},
            {"type": "web_search"},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "thread-1",
        "text": {"verbosity": "low"},
        "client_metadata": {"originator": "codex_exec"},
    }


# ---------------------------------------------------------------- reading requests


def test_sdk_string_input_and_instructions() -> None:
    body = sdk_body(model="gpt-5", input="hello", instructions="be brief", max_output_tokens=64)
    request = CODEC.read_request(body)
    assert request.model == "gpt-5"
    assert request.system == [neutral.Text("be brief")]
    assert request.messages == [neutral.Message("user", [neutral.Text("hello")])]
    assert request.max_tokens == 64
    assert request.dropped == []


def test_sdk_three_turn_function_calls_with_reasoning() -> None:
    body = sdk_body(
        model="gpt-5",
        input=three_turn_input(),
        tools=[
            {"type": "function", "name": "weather", "parameters": SCHEMA, "strict": True},
            APPLY_PATCH,
            {"type": "web_search", "search_context_size": "low"},
        ],
        tool_choice="required",
        parallel_tool_calls=True,
        reasoning={"effort": "high", "summary": "auto"},
        text={"format": {"type": "json_schema", "name": "w", "schema": SCHEMA, "strict": True}},
        temperature=0.2,
        top_p=0.9,
    )
    request = CODEC.read_request(body)
    first, calls, results, answer, last = request.messages
    assert first.parts == [neutral.Text("Weather in Paris and Rome?")]
    assert [m.role for m in request.messages] == ["user", "assistant", "user", "assistant", "user"]
    thinking, call_a, call_b = calls.parts
    assert thinking == neutral.Thinking(signature=GEMINI_SIGNATURE, attached=True)
    assert (call_a.id, call_a.arguments) == ("call_a", {"city": "Paris"})
    assert (call_b.id, call_b.arguments) == ("call_b", {"city": "Rome"})
    assert results.parts == [
        neutral.ToolResult("call_a", [neutral.Text("18C")], name="weather"),
        neutral.ToolResult("call_b", [neutral.Text("24C")], name="weather"),
    ]
    assert answer.parts[0] == neutral.Thinking("Both known.", "enc-2", summary=["Both known."])
    assert answer.parts[1] == neutral.Text("Paris 18C, Rome 24C.")
    assert last.parts == [neutral.Text("Thanks")]
    weather, patch = request.tools
    assert weather.parameters == SCHEMA and weather.strict is True
    assert patch.tool_kind == "custom" and patch.format == APPLY_PATCH["format"]
    assert request.hosted_tools == [
        neutral.HostedTool("web_search", {"search_context_size": "low"})
    ]
    assert request.tool_choice == neutral.ToolChoice("required", parallel=True)
    assert request.reasoning == neutral.Reasoning(effort="high", include_thoughts=True)
    assert request.output_format == neutral.OutputFormat(SCHEMA, "w", True)
    assert (request.temperature, request.top_p) == (0.2, 0.9)


def test_codex_request_drops_advisory_fields_and_keeps_apply_patch() -> None:
    request = CODEC.read_request(codex_body())
    assert request.system == [neutral.Text("You are Codex."), neutral.Text("<permissions>")]
    assert request.messages == [neutral.Message("user", [neutral.Text("fix the bug")])]
    assert set(request.dropped) == {
        "store",
        "prompt_cache_key",
        "client_metadata",
        "text.verbosity",
        "tools.tool_search",
    }
    shell, patch = request.tools
    assert shell.strict is False
    assert patch.name == "apply_patch" and patch.tool_kind == "custom"
    assert patch.parameters["required"] == ["input"]
    assert GRAMMAR in patch.parameters["properties"]["input"]["description"]
    assert request.hosted_tools == [neutral.HostedTool("web_search")]
    assert request.tool_choice == neutral.ToolChoice("auto", parallel=False)
    assert request.extra == {"include": ["reasoning.encrypted_content"], "store": False}
    assert request.stream is True


def test_large_grammar_stays_out_of_the_argument_description() -> None:
    big = dict(APPLY_PATCH, format={**APPLY_PATCH["format"], "definition": "x" * 5000})
    tool = CODEC.read_request({"model": "m", "input": "hi", "tools": [big]}).tools[0]
    assert "x" * 5000 not in tool.parameters["properties"]["input"]["description"]
    assert tool.format["definition"] == "x" * 5000


def test_custom_tool_call_items_and_choice() -> None:
    body = {
        "model": "m",
        "tools": [APPLY_PATCH],
        "tool_choice": {"type": "custom", "name": "apply_patch"},
        "input": [
            {
                "type": "custom_tool_call",
                "call_id": "c1",
                "name": "apply_patch",
                "input": "*** Begin Patch",
            },
            {"type": "custom_tool_call_output", "call_id": "c1", "output": "Done!"},
        ],
    }
    request = CODEC.read_request(body)
    assert request.messages == [
        neutral.Message(
            "assistant",
            [neutral.ToolCall("c1", "apply_patch", {"input": "*** Begin Patch"}, "custom")],
        ),
        neutral.Message(
            "user", [neutral.ToolResult("c1", [neutral.Text("Done!")], name="apply_patch")]
        ),
    ]
    assert request.tool_choice == neutral.ToolChoice("tool", "apply_patch")


def test_images_and_files() -> None:
    body = sdk_body(
        model="m",
        input=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "input_image",
                        "image_url": "data:image/png;base64,iVBO",
                        "detail": "high",
                    },
                    {
                        "type": "input_image",
                        "image_url": "https://example.com/a.jpg",
                        "detail": "auto",
                    },
                    {
                        "type": "input_file",
                        "filename": "a.pdf",
                        "file_data": "data:application/pdf;base64,JVBE",
                    },
                    {"type": "input_file", "file_url": "https://example.com/b.pdf"},
                ],
            }
        ],
    )
    parts = CODEC.read_request(body).messages[0].parts
    assert parts == [
        neutral.Media("image/png", "iVBO", detail="high"),
        neutral.Media(url="https://example.com/a.jpg", detail="auto"),
        neutral.Media("application/pdf", "JVBE", name="a.pdf"),
        neutral.Media("application/pdf", url="https://example.com/b.pdf"),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]}, None),
        ({"input": "hi", "conversation": "conv_1"}, "conversation"),
        (
            {"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{"}]},
            "input[0]",
        ),
        ({"input": 3}, "input"),
        ({"input": "hi", "tool_choice": {"type": "function"}}, "tool_choice"),
    ],
)
def test_unreadable_requests_raise(body: dict[str, Any], field: str | None) -> None:
    with pytest.raises(neutral.TranslationError) as caught:
        CODEC.read_request({"model": "m", **body})
    if field is not None:
        assert caught.value.field == field


def test_previous_response_id_and_hosted_tool_choice() -> None:
    body = {
        "model": "m",
        "input": "next",
        "previous_response_id": "resp_9",
        "tool_choice": {"type": "allowed_tools", "mode": "required", "tools": []},
        "reasoning": {"effort": "none"},
        "metadata": {"a": "b"},
    }
    request = CODEC.read_request(body)
    assert request.extra["previous_response_id"] == "resp_9"
    assert request.tool_choice == neutral.ToolChoice("required")
    assert request.reasoning == neutral.Reasoning(enabled=False, include_thoughts=False)
    assert set(request.dropped) == {"tool_choice.allowed_tools", "metadata"}


# ---------------------------------------------------------------- whole answers


def answer_parts() -> list[neutral.Part]:
    return [
        neutral.Thinking("Looking it up.", "enc-1", summary=["Looking it up."]),
        neutral.Text("Checking."),
        neutral.Thinking("", GEMINI_SIGNATURE, attached=True),
        neutral.ToolCall("call_1", "weather", {"city": "Paris"}),
        neutral.ToolCall("call_2", "apply_patch", {"input": "*** Begin Patch\n"}, "custom"),
    ]


def test_written_answer_parses_in_the_sdk() -> None:
    usage = neutral.Usage(100, 40, cached_input_tokens=30, reasoning_tokens=25)
    response = neutral.Response(
        "gemini-1", "gemini-2.5-pro", answer_parts(), "tool_use", usage=usage
    )
    parsed = serve_answer(CODEC.write_response(response)).responses.create(model="m", input="x")
    assert parsed.id == "resp_gemini-1" and parsed.status == "completed"
    kinds = [item.type for item in parsed.output]
    assert kinds == ["reasoning", "message", "reasoning", "function_call", "custom_tool_call"]
    assert parsed.output[0].summary[0].text == "Looking it up."
    assert parsed.output[2].summary == [] and parsed.output[2].encrypted_content == GEMINI_SIGNATURE
    assert parsed.output_text == "Checking."
    call = parsed.output[3]
    assert (call.call_id, json.loads(call.arguments)) == ("call_1", {"city": "Paris"})
    assert parsed.output[4].input == "*** Begin Patch\n"
    assert parsed.usage.input_tokens == 100 and parsed.usage.total_tokens == 140
    assert parsed.usage.input_tokens_details.cached_tokens == 30
    assert parsed.usage.output_tokens_details.reasoning_tokens == 25


def test_answer_round_trip() -> None:
    usage = neutral.Usage(10, 5, cached_input_tokens=2, reasoning_tokens=1)
    response = neutral.Response("resp_abc", "m", answer_parts(), "tool_use", usage=usage)
    back = CODEC.read_response(CODEC.write_response(response))
    assert back == response


def test_max_tokens_answer_is_incomplete() -> None:
    response = neutral.Response("r", "m", [neutral.Text("cut")], "max_tokens")
    written = CODEC.write_response(response)
    assert written["status"] == "incomplete"
    assert written["incomplete_details"] == {"reason": "max_output_tokens"}
    assert CODEC.read_response(written).stop_reason == "max_tokens"


def test_redacted_thinking_survives_a_client_round_trip() -> None:
    redacted = neutral.Thinking(signature="opaque-data", redacted=True)
    written = CODEC.write_response(neutral.Response("r", "m", [redacted, neutral.Text("hi")]))
    echoed = [dict(item) for item in written["output"]]
    request = CODEC.read_request({"model": "m", "input": echoed})
    assert request.messages[0].parts[0] == redacted


# ---------------------------------------------------------------- streams


def stream_events() -> list[neutral.Event]:
    usage = neutral.Usage(120, 60, cached_input_tokens=20, reasoning_tokens=30)
    return [
        neutral.MessageStart("up-1", "gemini-2.5-pro", neutral.Usage(input_tokens=120)),
        neutral.PartStart(0, neutral.Thinking()),
        neutral.PartDelta(0, thinking="Need the "),
        neutral.PartDelta(0, thinking="weather."),
        neutral.PartDelta(0, signature="enc-think"),
        neutral.PartStop(0),
        neutral.PartStart(1, neutral.Text("")),
        neutral.PartDelta(1, text="Let me "),
        neutral.PartDelta(1, text="check."),
        neutral.PartStop(1),
        neutral.PartStart(2, neutral.Thinking()),
        neutral.PartDelta(2, signature=GEMINI_SIGNATURE),
        neutral.PartStop(2),
        neutral.PartStart(3, neutral.ToolCall("call_1", "weather")),
        neutral.PartDelta(3, arguments='{"ci'),
        neutral.PartDelta(3, arguments='ty": "Par'),
        neutral.PartDelta(3, arguments='is"}'),
        neutral.PartStop(3),
        neutral.MessageStop("tool_use", usage),
    ]


def test_stream_assembles_in_the_sdk_accumulator() -> None:
    weather = {"type": "function", "name": "weather", "parameters": SCHEMA, "strict": True}
    wire = write_stream(neutral.Request(model="m"), stream_events())
    with serve_stream(wire).responses.stream(model="m", input="x", tools=[weather]) as stream:
        final = stream.get_final_response()
    assert final.status == "completed" and final.id == "resp_up-1"
    reasoning, message, signed, call = final.output
    assert reasoning.summary[0].text == "Need the weather."
    assert reasoning.encrypted_content == "enc-think"
    assert message.content[0].text == "Let me check."
    assert signed.summary == [] and signed.encrypted_content == GEMINI_SIGNATURE
    assert (call.call_id, call.name, call.arguments) == ("call_1", "weather", '{"city": "Paris"}')
    assert call.parsed_arguments == {"city": "Paris"}
    assert final.usage.input_tokens == 120 and final.usage.output_tokens == 60
    assert final.usage.input_tokens_details.cached_tokens == 20
    assert final.usage.output_tokens_details.reasoning_tokens == 30


def test_stream_event_order_and_sequence_numbers() -> None:
    wire = write_stream(neutral.Request(model="m"), stream_events())
    stream = serve_stream(wire).responses.create(model="m", input="x", stream=True)
    events = list(stream)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [e.type for e in events][:9] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
    ]
    text = [
        e.type
        for e in events
        if e.type.startswith(("response.output_text", "response.content_part"))
    ]
    assert text == [
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
    ]
    deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert deltas == ['{"ci', 'ty": "Par', 'is"}']
    assert events[-1].type == "response.completed"
    assert [e.type for e in events].count("response.output_item.done") == 4


@pytest.mark.parametrize("ascii_only", [True, False])
@pytest.mark.parametrize("size", [1, 7, 1000])
def test_stream_custom_tool_call_from_a_plain_function_call(size: int, ascii_only: bool) -> None:
    """An upstream knows apply_patch as a function; the Codex client gets its custom call,
    its input streamed raw however the JSON fragments cut escapes (\\n, \\u00e9, a surrogate
    pair)."""
    request = CODEC.read_request({"model": "m", "input": "hi", "tools": [APPLY_PATCH]})
    patch = '*** Begin Patch\n*** Add File: é.txt\n+"quoted" \\ 😀\n*** End Patch'
    arguments = json.dumps({"input": patch}, ensure_ascii=ascii_only)
    fragments = [arguments[i : i + size] for i in range(0, len(arguments), size)]
    events: list[neutral.Event] = [
        neutral.MessageStart("u", "m"),
        neutral.PartStart(0, neutral.ToolCall("call_p", "apply_patch")),
        *[neutral.PartDelta(0, arguments=f) for f in fragments],
        neutral.PartStop(0),
        neutral.MessageStop("tool_use"),
    ]
    wire = write_stream(request, events)
    deltas = [d["delta"] for k, d in wire if k == "response.custom_tool_call_input.delta"]
    assert "".join(deltas) == patch
    assert len(deltas) > 1 or size == 1000
    json.dumps(deltas).encode()  # no delta carries half a surrogate pair
    with serve_stream(wire).responses.stream(model="m", input="x") as stream:
        final = stream.get_final_response()
    (call,) = final.output
    assert (call.type, call.call_id, call.input) == ("custom_tool_call", "call_p", patch)


def test_stream_stopped_by_max_tokens_is_incomplete() -> None:
    events = [
        neutral.MessageStart("u", "m"),
        neutral.PartStart(0, neutral.Text("")),
        neutral.PartDelta(0, text="partial"),
        neutral.PartStop(0),
        neutral.MessageStop("max_tokens", neutral.Usage(5, 7)),
    ]
    wire = write_stream(neutral.Request(), events)
    last = list(serve_stream(wire).responses.create(model="m", input="x", stream=True))[-1]
    assert last.type == "response.incomplete"
    assert last.response.incomplete_details.reason == "max_output_tokens"
    assert last.response.output[0].content[0].text == "partial"


def test_stream_error_becomes_response_failed() -> None:
    events = [
        neutral.MessageStart("u", "m"),
        neutral.PartStart(0, neutral.Text("")),
        neutral.PartDelta(0, text="so far"),
        neutral.StreamError(429, "quota exhausted", "RESOURCE_EXHAUSTED"),
        neutral.PartStop(0),
    ]
    wire = write_stream(neutral.Request(), events)
    received = list(serve_stream(wire).responses.create(model="m", input="x", stream=True))
    assert [e.type for e in received][-2:] == ["error", "response.failed"]
    failed = received[-1].response
    assert (failed.status, failed.error.code, failed.error.message) == (
        "failed",
        "rate_limit_exceeded",
        "quota exhausted",
    )
    accumulator = serve_stream(wire).responses.stream(model="m", input="x")
    with pytest.raises(RuntimeError, match="response.completed"), accumulator as stream:
        stream.get_final_response()


def test_signature_given_at_part_start_reaches_the_reasoning_item() -> None:
    """The Gemini reader puts an attached signature in the Thinking it starts."""
    events = [
        neutral.MessageStart("u", "m"),
        neutral.PartStart(0, neutral.Thinking("", GEMINI_SIGNATURE, attached=True)),
        neutral.PartStop(0),
        neutral.PartStart(1, neutral.ToolCall("c", "weather", {"city": "Oslo"})),
        neutral.PartStop(1),
        neutral.MessageStop("tool_use"),
    ]
    wire = write_stream(neutral.Request(), events)
    final = wire[-1][1]["response"]
    assert [item["type"] for item in final["output"]] == ["reasoning", "function_call"]
    assert final["output"][0]["encrypted_content"] == GEMINI_SIGNATURE
    assert json.loads(final["output"][1]["arguments"]) == {"city": "Oslo"}
    echoed = CODEC.read_request({"model": "m", "input": final["output"]})
    assert echoed.messages[0].parts == [
        neutral.Thinking("", GEMINI_SIGNATURE, attached=True),
        neutral.ToolCall("c", "weather", {"city": "Oslo"}),
    ]


def test_stream_without_a_stop_fails_at_close() -> None:
    wire = write_stream(neutral.Request(), [neutral.MessageStart("u", "m")])
    assert [kind for kind, _ in wire] == [
        "response.created",
        "response.in_progress",
        "error",
        "response.failed",
    ]


def test_stream_round_trip_through_the_reader() -> None:
    events = stream_events()
    back = read_stream(write_stream(neutral.Request(), events))
    start, *middle, stop = back
    assert start == neutral.MessageStart("resp_up-1", "gemini-2.5-pro")  # usage comes at the end

    assert [type(e) for e in middle if not isinstance(e, neutral.PartDelta)] == [
        type(e) for e in events[1:-1] if not isinstance(e, neutral.PartDelta)
    ]
    assert stop == events[-1]
    assert _assembled(back) == _assembled(events)


def _assembled(events: list[neutral.Event]) -> list[tuple[str, str, str | None]]:
    """Each part's kind, its concatenated content and its signature: what a stream means."""
    parts: dict[int, list[Any]] = {}
    for event in events:
        if isinstance(event, neutral.PartStart):
            parts[event.index] = [event.part.kind, "", None]
        elif isinstance(event, neutral.PartDelta):
            entry = parts[event.index]
            entry[1] += event.text or event.thinking or event.arguments or ""
            entry[2] = event.signature or entry[2]
    return [tuple(p) for p in parts.values()]


# ---------------------------------------------------------------- upstream role


def test_write_request_for_a_responses_upstream() -> None:
    request = CODEC.read_request(sdk_body(model="m", input=three_turn_input(), instructions="sys"))
    request.system.append(neutral.Text("more"))
    request.tools = [neutral.Tool("weather", parameters=SCHEMA)]
    request.reasoning = neutral.Reasoning(budget_tokens=5000)
    body = CODEC.write_request(request)
    assert body["store"] is False
    assert body["include"] == ["reasoning.encrypted_content"]
    assert body["instructions"] == "sys"
    assert body["input"][0]["role"] == "developer"
    assert body["reasoning"] == {"effort": "medium", "summary": "auto"}
    assert body["tools"] == [
        {
            "type": "function",
            "name": "weather",
            "description": None,
            "parameters": SCHEMA,
            "strict": False,
        }
    ]
    reasoning = [i for i in body["input"] if i["type"] == "reasoning"]
    assert [r["encrypted_content"] for r in reasoning] == [GEMINI_SIGNATURE, "enc-2"]
    assert "id" not in reasoning[0]


def test_request_round_trip() -> None:
    body = sdk_body(
        model="gpt-5",
        instructions="sys",
        input=[
            *three_turn_input(),
            {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "p"},
            {"type": "custom_tool_call_output", "call_id": "c1", "output": "ok"},
            {
                "role": "user",
                "content": [
                    {
                        "type": "input_image",
                        "image_url": "data:image/png;base64,iVBO",
                        "detail": "low",
                    },
                    {
                        "type": "input_file",
                        "filename": "a.pdf",
                        "file_data": "data:application/pdf;base64,JV",
                    },
                ],
            },
        ],
        tools=[
            {"type": "function", "name": "weather", "parameters": SCHEMA, "strict": True},
            APPLY_PATCH,
        ],
        tool_choice={"type": "function", "name": "weather"},
        parallel_tool_calls=False,
        reasoning={"effort": "low", "summary": "auto"},
        text={"format": {"type": "json_object"}},
        max_output_tokens=500,
        temperature=0.5,
        stream=True,
    )
    first = CODEC.read_request(body)
    second = CODEC.read_request(CODEC.write_request(first))
    assert second.extra.pop("include") == ["reasoning.encrypted_content"]
    assert second.extra.pop("store") is False  # the writer's: the proxy keeps nothing for it
    assert second.dropped == ["store"]
    second.dropped = []
    assert second == first


def test_reading_an_upstream_stream() -> None:
    """Events as OpenAI sends them, custom tool input included, become neutral events."""
    item = {
        "type": "custom_tool_call",
        "id": "ctc_1",
        "call_id": "c",
        "name": "apply_patch",
        "input": "",
    }
    done_item = dict(item, input='a "b"\n')
    wire = [
        (
            "response.created",
            {"type": "response.created", "response": {"id": "resp_u", "model": "gpt-5"}},
        ),
        (
            "response.output_item.added",
            {"type": "response.output_item.added", "output_index": 0, "item": item},
        ),
        (
            "response.custom_tool_call_input.delta",
            {"type": "response.custom_tool_call_input.delta", "delta": 'a "b'},
        ),
        (
            "response.custom_tool_call_input.delta",
            {"type": "response.custom_tool_call_input.delta", "delta": '"\n'},
        ),
        (
            "response.output_item.done",
            {"type": "response.output_item.done", "output_index": 0, "item": done_item},
        ),
        (
            "response.completed",
            {
                "type": "response.completed",
                "response": {"status": "completed", "usage": {"input_tokens": 3}},
            },
        ),
    ]
    events = read_stream(wire)
    start = events[1]
    assert isinstance(start, neutral.PartStart) and start.part.tool_kind == "custom"
    arguments = "".join(e.arguments for e in events if isinstance(e, neutral.PartDelta))
    assert json.loads(arguments) == {"input": 'a "b"\n'}
    assert events[-1] == neutral.MessageStop("tool_use", neutral.Usage(input_tokens=3))


def test_reading_a_terse_upstream_stream() -> None:
    """No content_part.added, no output_item.done: text still opens a part, a custom call's
    JSON is still closed, and the stream still starts."""
    call = {"type": "custom_tool_call", "call_id": "c", "name": "apply_patch", "input": ""}
    wire = [
        (None, {"type": "response.output_text.delta", "delta": "Hi"}),
        (None, {"type": "response.output_item.added", "item": call}),
        (None, {"type": "response.custom_tool_call_input.delta", "delta": "x"}),
        (None, {"type": "response.completed", "response": {"status": "completed"}}),
    ]
    events = read_stream(wire)
    assert isinstance(events[0], neutral.MessageStart)
    assert _assembled(events) == [("text", "Hi", None), ("tool_call", '{"input": "x"}', None)]
    assert events[-1].stop_reason == "tool_use"


def test_reading_an_upstream_failure() -> None:
    wire = [
        ("response.created", {"type": "response.created", "response": {"id": "resp_u"}}),
        ("error", {"type": "error", "code": "rate_limit_exceeded", "message": "slow down"}),
        ("response.failed", {"type": "response.failed", "response": {"status": "failed"}}),
    ]
    events = read_stream(wire)
    assert events[1:] == [neutral.StreamError(429, "slow down", "rate_limit_exceeded")]


def test_upstream_tool_outputs_match_their_calls() -> None:
    request = neutral.Request(
        messages=[
            neutral.Message(
                "assistant",
                [
                    neutral.ToolCall("f1", "weather", {"city": "Oslo"}),
                    neutral.ToolCall("c1", "apply_patch", {"input": "p"}, "custom"),
                ],
            ),
            neutral.Message(
                "user",
                [
                    neutral.ToolResult(
                        "f1", [neutral.Text("a"), neutral.Media("image/png", "iVBO")]
                    ),
                    neutral.ToolResult("c1", [neutral.Text("ok")]),
                    neutral.Text("go on"),
                ],
            ),
        ]
    )
    items = CODEC.write_request(request)["input"]
    assert [i["type"] for i in items] == [
        "function_call",
        "custom_tool_call",
        "function_call_output",
        "custom_tool_call_output",
        "message",
    ]
    assert items[2]["output"] == [
        {"type": "input_text", "text": "a"},
        {"type": "input_image", "image_url": "data:image/png;base64,iVBO", "detail": "auto"},
    ]
    assert items[3]["output"] == "ok"
    assert CODEC.write_request(request)["include"] == []


def test_an_error_body_is_not_an_answer() -> None:
    with pytest.raises(neutral.TranslationError):
        CODEC.read_response({"error": {"message": "bad key"}})


def test_error_message() -> None:
    assert (
        CODEC.error_message({"error": {"message": "bad key", "type": "invalid_request_error"}})
        == "bad key"
    )
    assert CODEC.error_message({"output": []}) is None
    assert CODEC.error_message("text") is None


def test_a_gemini_text_answer_ends_with_its_message() -> None:
    """Gemini ends a signed text answer with an empty part carrying the signature: no empty
    message item (Codex takes the last message as the answer), the signature on a reasoning
    item after it; the same for whole answers."""
    from calo_addon.translate.gemini import CODEC as GEMINI

    parts = [{"text": "echo: hi"}, {"text": "", "thoughtSignature": GEMINI_SIGNATURE}]
    chunks = [
        {"candidates": [{"content": {"parts": [parts[0]]}}]},
        {"candidates": [{"content": {"parts": [parts[1]]}, "finishReason": "STOP"}]},
    ]
    reader = GEMINI.stream_reader()
    events = [e for c in chunks for e in reader.feed(None, c)] + reader.close()
    wire = write_stream(neutral.Request(model="m"), events)
    with serve_stream(wire).responses.stream(model="m", input="x") as stream:
        final = stream.get_final_response()
    assert [item.type for item in final.output] == ["message", "reasoning"]
    assert final.output_text == "echo: hi"
    assert final.output[1].encrypted_content == GEMINI_SIGNATURE
    whole = GEMINI.read_response({"candidates": [{"content": {"parts": parts}}]})
    output = CODEC.write_response(whole)["output"]
    assert [item["type"] for item in output] == ["message", "reasoning"]


def test_custom_call_whose_arguments_never_parsed_keeps_its_text_as_input() -> None:
    """A Chat upstream called the client's freeform tool with text that is not JSON: the
    neutral call holds that text, and it is the custom call's input."""
    call = neutral.ToolCall("c1", "apply_patch", "*** Begin Patch", "custom")
    answer = CODEC.write_response(neutral.Response("resp_1", "m", [call], "tool_use"))
    (item,) = answer["output"]
    assert item["type"] == "custom_tool_call" and item["input"] == "*** Begin Patch"
