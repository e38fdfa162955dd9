"""The Bedrock Converse codec (calo_addon/translate/converse.py), both roles.

Requests come from a real boto3 bedrock-runtime client, captured at botocore's before-send hook
(nothing leaves the process); answers and streams written for the client role are parsed back
by boto3 itself; written requests are checked against botocore's own Converse input shape.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import EventStreamError
from botocore.validate import ParamValidator

from calo_addon.translate import neutral
from calo_addon.translate.converse import CODEC
from calo_addon.translate.neutral import (
    HostedTool,
    Media,
    Message,
    MessageStart,
    MessageStop,
    OutputFormat,
    PartDelta,
    PartStart,
    PartStop,
    Reasoning,
    Request,
    Response,
    StreamError,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    Usage,
)
from tests.fake_bedrock import encode_event

CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-pro-v1:0"
NOVA2 = "us.amazon.nova-2-lite-v1:0"
LLAMA = "meta.llama3-70b-instruct-v1:0"
EVENT_STREAM = "application/vnd.amazon.eventstream"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
PDF = b"%PDF-1.7\n%fake\n"
B64_PNG = base64.b64encode(PNG).decode()
B64_PDF = base64.b64encode(PDF).decode()

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {"unit": {"type": "string", "enum": ["c", "f"]}},
    "properties": {
        "city": {"type": "string", "propertyNames": {"pattern": "^[a-z]+$"}},
        "unit": {"$ref": "#/$defs/unit"},
        "days": {"anyOf": [{"type": "integer", "exclusiveMinimum": 0}, {"const": "all"}]},
    },
    "required": ["city"],
    "additionalProperties": False,
}


# ---------------------------------------------------------------- boto3 without a network


class _Raw:
    """What botocore reads an HTTP body from (urllib3's response offers .stream())."""

    def __init__(self, chunks: list[bytes]):
        self.chunks = chunks

    def stream(self, *args: Any, **kwargs: Any):
        yield from self.chunks

    def close(self) -> None:
        pass


@pytest.fixture
def bedrock():
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="AKIDTEST",
        aws_secret_access_key="test-secret",
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"max_attempts": 0}),
    )


def serve(client, operation: str, chunks: list[bytes], headers: dict | None = None) -> list:
    """Answer `operation` with `chunks` at before-send (no network); returns the requests seen."""
    seen: list = []

    def handler(request, **kwargs):
        seen.append(request)
        return AWSResponse(request.url, 200, headers or {}, _Raw(chunks))

    client.meta.events.register(f"before-send.bedrock-runtime.{operation}", handler)
    return seen


OK_ANSWER = {
    "output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
    "metrics": {"latencyMs": 1},
}


def boto3_body(client, **kwargs: Any) -> tuple[str, dict]:
    """The URL and JSON body boto3 sends for converse(**kwargs)."""
    seen = serve(client, "Converse", [json.dumps(OK_ANSWER).encode()])
    client.converse(**kwargs)
    return seen[0].url, json.loads(seen[0].body)


def valid_for_boto3(client, body: dict, operation: str = "Converse") -> None:
    """The body, with its model id, satisfies botocore's model of the operation's input."""
    shape = client.meta.service_model.operation_model(operation).input_shape
    report = ParamValidator().validate({"modelId": CLAUDE, **body}, shape)
    assert not report.has_errors(), report.generate_report()


# ---------------------------------------------------------------- (1) boto3-built requests

TOOL_ROUND_TRIP = [
    {
        "role": "user",
        "content": [{"text": "Weather in Paris and Lyon?"}, {"cachePoint": {"type": "default"}}],
    },
    {
        "role": "assistant",
        "content": [
            {
                "reasoningContent": {
                    "reasoningText": {"text": "Two cities.", "signature": "c2lnLTE="}
                }
            },
            {"text": "Checking both."},
            {
                "toolUse": {
                    "toolUseId": "tooluse_paris",
                    "name": "get_weather",
                    "input": {"city": "paris"},
                }
            },
            {
                "toolUse": {
                    "toolUseId": "tooluse_lyon",
                    "name": "get_weather",
                    "input": {"city": "lyon", "days": 2},
                }
            },
        ],
    },
    {
        "role": "user",
        "content": [
            {
                "toolResult": {
                    "toolUseId": "tooluse_paris",
                    "content": [{"text": "18C"}],
                    "status": "success",
                }
            },
            {
                "toolResult": {
                    "toolUseId": "tooluse_lyon",
                    "content": [{"json": {"temp": 21}}],
                    "status": "error",
                }
            },
        ],
    },
    {"role": "assistant", "content": [{"text": "Paris 18C; Lyon failed."}]},
    {
        "role": "user",
        "content": [
            {"text": "Now look at these."},
            {"image": {"format": "png", "source": {"bytes": PNG}}},
            {"document": {"format": "pdf", "name": "forecast", "source": {"bytes": PDF}}},
        ],
    },
]


def boto3_kwargs() -> dict:
    return {
        "modelId": CLAUDE,
        "system": [{"text": "You are terse."}, {"cachePoint": {"type": "default"}}],
        "messages": copy.deepcopy(TOOL_ROUND_TRIP),
        "inferenceConfig": {"maxTokens": 4096, "temperature": 1.0, "stopSequences": ["END"]},
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "get_weather",
                        "description": "Weather",
                        "inputSchema": {"json": SCHEMA},
                    }
                },
                {"cachePoint": {"type": "default"}},
            ],
            "toolChoice": {"auto": {}},
        },
        "additionalModelRequestFields": {
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "anthropic_beta": ["interleaved-thinking-2025-05-14"],
        },
        "additionalModelResponseFieldPaths": ["/stop_sequence"],
        "requestMetadata": {"team": "a"},
    }


def test_boto3_request_reads_into_the_neutral_form(bedrock):
    url, body = boto3_body(bedrock, **boto3_kwargs())
    assert "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse" in url
    request = CODEC.read_request(body)

    assert request.model is None
    assert request.system == [Text("You are terse.")]
    assert (request.max_tokens, request.temperature, request.stop) == (4096, 1.0, ["END"])
    assert request.tools == [Tool(name="get_weather", description="Weather", parameters=SCHEMA)]
    assert request.tool_choice == ToolChoice(mode="auto")
    assert request.reasoning == Reasoning(enabled=True, budget_tokens=2048)
    assert set(request.dropped) == {
        "cachePoint",
        "additionalModelRequestFields.anthropic_beta",
        "additionalModelResponseFieldPaths",
        "requestMetadata",
    }
    first, calls, results, _, last = request.messages
    assert first.parts == [Text("Weather in Paris and Lyon?")]
    assert calls.parts == [
        Thinking(text="Two cities.", signature="c2lnLTE="),
        Text("Checking both."),
        ToolCall(id="tooluse_paris", name="get_weather", arguments={"city": "paris"}),
        ToolCall(id="tooluse_lyon", name="get_weather", arguments={"city": "lyon", "days": 2}),
    ]
    assert results.parts == [
        ToolResult(id="tooluse_paris", content=[Text("18C")], name="get_weather"),
        ToolResult(
            id="tooluse_lyon", content=[Text('{"temp": 21}')], name="get_weather", is_error=True
        ),
    ]
    assert last.parts == [
        Text("Now look at these."),
        Media(media_type="image/png", data=B64_PNG),
        Media(media_type="application/pdf", data=B64_PDF, name="forecast"),
    ]


def test_boto3_request_round_trips_through_the_neutral_form(bedrock):
    """Read then written for the same Claude model: the body boto3 built comes back, less the
    advisory fields and cache points named dropped (tool results become text)."""
    _, body = boto3_body(bedrock, **boto3_kwargs())
    request = CODEC.read_request(body)
    request.model = CLAUDE
    written = CODEC.write_request(request)

    expected = copy.deepcopy(body)
    expected["system"].pop()
    expected["toolConfig"]["tools"].pop()
    expected["messages"][0]["content"].pop()
    lyon = expected["messages"][2]["content"][1]["toolResult"]
    lyon["content"] = [{"text": '{"temp": 21}'}]
    del expected["messages"][2]["content"][0]["toolResult"]["status"]  # success is the default
    del expected["requestMetadata"]
    del expected["additionalModelRequestFields"]["anthropic_beta"]
    assert written == expected
    valid_for_boto3(bedrock, written)


def test_boto3_stream_request_reads_the_same(bedrock):
    seen = serve(bedrock, "ConverseStream", [])
    kwargs = boto3_kwargs()
    bedrock.converse_stream(**kwargs)
    assert seen[0].url.endswith("/converse-stream")
    streamed = CODEC.read_request(json.loads(seen[0].body))
    _, body = boto3_body(bedrock, **boto3_kwargs())
    assert streamed == CODEC.read_request(body)


def test_reading_tool_choices_effort_and_structured_output():
    base = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    tools = {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {}}}}]}
    read = CODEC.read_request
    assert read(base | {"toolConfig": tools | {"toolChoice": {"any": {}}}}).tool_choice == (
        ToolChoice(mode="required")
    )
    chosen = read(base | {"toolConfig": tools | {"toolChoice": {"tool": {"name": "f"}}}})
    assert chosen.tool_choice == ToolChoice(mode="tool", name="f")
    assert read(base | {"additionalModelRequestFields": {"top_k": 7}}).top_k == 7
    effort = read(base | {"additionalModelRequestFields": {"reasoning_effort": "low"}})
    assert effort.reasoning == Reasoning(effort="low")
    off = read(base | {"additionalModelRequestFields": {"thinking": {"type": "disabled"}}})
    assert off.reasoning == Reasoning(enabled=False, budget_tokens=0)
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    text_format = {
        "type": "json_schema",
        "structure": {"jsonSchema": {"schema": json.dumps(schema), "name": "out"}},
    }
    structured = read(base | {"outputConfig": {"textFormat": text_format, "effort": "max"}})
    assert structured.output_format == OutputFormat(schema=schema, name="out", strict=True)
    assert structured.reasoning == Reasoning(effort="high")


def test_reading_refuses_video_and_malformed_bodies():
    video = {"video": {"format": "mp4", "source": {"bytes": "AAAA"}}}
    with pytest.raises(neutral.Unsupported) as refused:
        CODEC.read_request({"messages": [{"role": "user", "content": [video]}]})
    assert refused.value.field == "video"
    with pytest.raises(neutral.TranslationError):
        CODEC.read_request({"messages": [{"role": "system", "content": [{"text": "x"}]}]})
    with pytest.raises(neutral.TranslationError):
        CODEC.read_request(["not", "an", "object"])


# ---------------------------------------------------------------- (2) writing for Bedrock


def anthropic_style_request() -> Request:
    """What the Anthropic reader makes of a Claude Code turn: system, an image, a thinking
    turn with two parallel calls, their results (in reverse order), tools, a thinking budget."""
    return Request(
        model=CLAUDE,
        system=[Text("You are Claude Code."), Text("Be brief.")],
        messages=[
            Message("user", [Text("What is in this image? Also run both checks.")]),
            Message("user", [Media(media_type="image/png", data=B64_PNG)]),
            Message(
                "assistant",
                [
                    Thinking(text="I should call both.", signature="EqQBCkYIBxgCKkB"),
                    ToolCall(id="toolu_01A", name="Bash", arguments={"command": "ls"}),
                    ToolCall(id="toolu_01B", name="Read", arguments={"path": "a.txt"}),
                ],
            ),
            Message(
                "user",
                [
                    ToolResult(id="toolu_01B", content=[Text("hello")], name="Read"),
                    ToolResult(id="toolu_01A", content=[], name="Bash", is_error=True),
                    Text("<system-reminder>keep going</system-reminder>"),
                ],
            ),
        ],
        tools=[
            Tool(name="Bash", description="Run a command", parameters=SCHEMA),
            Tool(name="Read", description="Read a file", parameters={"type": "object"}),
        ],
        tool_choice=ToolChoice(mode="auto"),
        max_tokens=32000,
        reasoning=Reasoning(enabled=True, budget_tokens=8000),
        top_k=40,
        stop=["\n\nHuman:"],
        dropped=["metadata", "context_management"],
    )


def test_write_request_for_claude_as_an_anthropic_client_sends_it(bedrock):
    body = CODEC.write_request(anthropic_style_request())
    assert body == {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": "What is in this image? Also run both checks."},
                    {"image": {"format": "png", "source": {"bytes": B64_PNG}}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {
                        "reasoningContent": {
                            "reasoningText": {
                                "text": "I should call both.",
                                "signature": "EqQBCkYIBxgCKkB",
                            }
                        }
                    },
                    {
                        "toolUse": {
                            "toolUseId": "toolu_01A",
                            "name": "Bash",
                            "input": {"command": "ls"},
                        }
                    },
                    {
                        "toolUse": {
                            "toolUseId": "toolu_01B",
                            "name": "Read",
                            "input": {"path": "a.txt"},
                        }
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "toolResult": {
                            "toolUseId": "toolu_01A",
                            "content": [{"text": "(no output)"}],
                            "status": "error",
                        }
                    },
                    {"toolResult": {"toolUseId": "toolu_01B", "content": [{"text": "hello"}]}},
                    {"text": "<system-reminder>keep going</system-reminder>"},
                ],
            },
        ],
        "system": [{"text": "You are Claude Code."}, {"text": "Be brief."}],
        "inferenceConfig": {"maxTokens": 32000, "stopSequences": ["\n\nHuman:"]},
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "Bash",
                        "inputSchema": {"json": SCHEMA},
                        "description": "Run a command",
                    }
                },
                {
                    "toolSpec": {
                        "name": "Read",
                        "inputSchema": {"json": {"type": "object"}},
                        "description": "Read a file",
                    }
                },
            ],
            "toolChoice": {"auto": {}},
        },
        "additionalModelRequestFields": {
            "thinking": {"type": "enabled", "budget_tokens": 8000},
            "top_k": 40,
        },
        "additionalModelResponseFieldPaths": ["/stop_sequence"],
    }
    assert "modelId" not in body
    valid_for_boto3(bedrock, body)


def test_write_request_for_claude_as_a_chat_client_sends_it(bedrock):
    """Chat: a data-URL image, tool results as separate tool messages, reasoning_effort, no
    max tokens, a conversation that opens with the assistant's greeting."""
    request = Request(
        model=CLAUDE,
        system=[Text("sys")],
        messages=[
            Message("assistant", [Text("Hello! How can I help?")]),
            Message("user", [Text("look"), Media(url=f"data:image/jpeg;base64,{B64_PNG}")]),
            Message(
                "assistant",
                [
                    ToolCall(id="call_1", name="f", arguments={"a": 1}),
                    ToolCall(id="call_2", name="g", arguments={}),
                ],
            ),
            Message("user", [ToolResult(id="call_1", content=[Text("one")], name="f")]),
            Message("user", [ToolResult(id="call_2", content=[Text("two")], name="g")]),
            Message("assistant", [Text("Done.")]),
            Message("user", [Text("thanks")]),
        ],
        tools=[Tool(name="f", parameters={"type": "object"}), Tool(name="g", parameters=None)],
        tool_choice=ToolChoice(mode="required", parallel=False),
        temperature=0.2,
        reasoning=Reasoning(effort="high"),
    )
    body = CODEC.write_request(request)
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["user", "assistant", "user", "assistant", "user", "assistant", "user"]
    assert body["messages"][0] == {"role": "user", "content": [{"text": "(continued)"}]}
    assert body["messages"][2]["content"][1] == {
        "image": {"format": "jpeg", "source": {"bytes": B64_PNG}}
    }
    results = [b["toolResult"]["toolUseId"] for b in body["messages"][4]["content"]]
    assert results == ["call_1", "call_2"]  # both results in ONE user message, in call order
    assert body["toolConfig"]["toolChoice"] == {"any": {}}
    assert body["toolConfig"]["tools"][1]["toolSpec"]["inputSchema"] == {
        "json": {"type": "object", "properties": {}}
    }
    budget = neutral.budget_for("high")
    assert body["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": budget}
    }
    assert body["inferenceConfig"] == {"maxTokens": budget + 4096, "temperature": 0.2}
    assert request.dropped == ["tool_choice.parallel"]
    valid_for_boto3(bedrock, body)


def test_thinking_budget_floor_and_max_tokens_raised():
    request = Request(model=CLAUDE, messages=[Message("user", [Text("hi")])], max_tokens=500)
    request.reasoning = Reasoning(budget_tokens=100)
    body = CODEC.write_request(request)
    assert body["additionalModelRequestFields"]["thinking"]["budget_tokens"] == 1024
    assert body["inferenceConfig"]["maxTokens"] == 1524
    request.reasoning = Reasoning(enabled=False)
    assert "additionalModelRequestFields" not in CODEC.write_request(request)
    request.reasoning = Reasoning(budget_tokens=0)
    assert "additionalModelRequestFields" not in CODEC.write_request(request)


def test_other_model_families_drop_claude_only_features(bedrock):
    request = anthropic_style_request()
    request.model = LLAMA
    body = CODEC.write_request(request)
    assert "additionalModelRequestFields" not in body
    assert "additionalModelResponseFieldPaths" not in body
    assert all("reasoningContent" not in b for b in body["messages"][1]["content"])
    assert "status" not in body["messages"][2]["content"][0]["toolResult"]
    assert request.dropped[2:] == ["tool_result.is_error", "reasoning", "top_k"]
    assert body["inferenceConfig"]["maxTokens"] == 32000
    nova = anthropic_style_request()
    nova.model = NOVA
    assert CODEC.write_request(nova)["messages"][2]["content"][0]["toolResult"]["status"] == "error"
    valid_for_boto3(bedrock, body)


def test_nova_2_reasons_by_effort_both_ways(bedrock):
    """Nova 2: `reasoningConfig` with an effort level (a budget becomes the smallest level that
    covers it; no maxTokens at "high"); read back from a boto3 caller the same way; its
    redacted reasoning text reads as unsigned thinking."""
    request = Request(model=NOVA2, messages=[Message("user", [Text("hi")])], max_tokens=500)
    for reasoning, effort in [
        (Reasoning(effort="minimal"), "low"),
        (Reasoning(budget_tokens=2000), neutral.effort_for(2000)),
        (Reasoning(enabled=True), "medium"),
        (Reasoning(effort="high"), "high"),
    ]:
        request.reasoning, request.dropped = reasoning, []
        body = CODEC.write_request(request)
        config = body["additionalModelRequestFields"]["reasoningConfig"]
        assert config == {"type": "enabled", "maxReasoningEffort": effort}
        assert body.get("inferenceConfig", {}).get("maxTokens") == (
            None if effort == "high" else 500
        )
        assert request.dropped == (["max_tokens"] if effort == "high" else [])
        valid_for_boto3(bedrock, body)
        assert CODEC.read_request(body).reasoning == Reasoning(effort=effort)
    request.reasoning = Reasoning(enabled=False)
    assert "additionalModelRequestFields" not in CODEC.write_request(request)
    off = {"reasoningConfig": {"type": "disabled"}}
    read = CODEC.read_request({**body, "additionalModelRequestFields": off})
    assert read.reasoning is not None and read.reasoning.enabled is False
    answer = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {"reasoningText": {"text": "[REDACTED]."}}},
                    {"text": "ok"},
                ],
            }
        },
        "stopReason": "end_turn",
        "usage": {"inputTokens": 88, "outputTokens": 2980, "totalTokens": 3068},
    }
    assert CODEC.read_response(answer).parts == [Thinking(text="[REDACTED]."), Text("ok")]


def test_thinking_dropped_when_a_tool_loop_has_no_signed_reasoning():
    """A Chat client never sees Claude's reasoning, so cannot send it back: Claude would refuse
    the tool loop with thinking on, so thinking is off for that request (and named)."""
    request = anthropic_style_request()
    request.messages[2].parts[0] = Thinking(text="unsigned")
    body = CODEC.write_request(request)
    assert "thinking" not in body["additionalModelRequestFields"]
    assert "reasoning" in request.dropped
    assert body["inferenceConfig"]["maxTokens"] == 32000


def test_thinking_kinds_written_for_claude():
    thoughts = [
        Thinking(text="", signature="gemini-sig", attached=True),
        Thinking(text="no signature"),
        Thinking(redacted=True, signature="cmVkYWN0ZWQ="),
        Thinking(text="", summary=["summed ", "up"], signature="enc"),
        Text("answer  \n"),
    ]
    request = Request(
        model=CLAUDE, messages=[Message("user", [Text("q")]), Message("assistant", thoughts)]
    )
    content = CODEC.write_request(request)["messages"][1]["content"]
    assert content == [
        {"reasoningContent": {"redactedContent": "cmVkYWN0ZWQ="}},
        {"reasoningContent": {"reasoningText": {"text": "summed up", "signature": "enc"}}},
        {"text": "answer"},  # a final assistant turn may not end in whitespace
    ]


def test_tool_choice_none_and_tool_and_hosted_tools():
    tools = [Tool(name="f", parameters={"type": "object"})]
    plain = [Message("user", [Text("hi")])]
    request = Request(model=CLAUDE, messages=plain, tools=tools, tool_choice=ToolChoice("none"))
    assert "toolConfig" not in CODEC.write_request(request)  # no tools at all is "none"
    assert request.dropped == []

    history = plain + [
        Message("assistant", [ToolCall(id="c1", name="f", arguments={})]),
        Message("user", [ToolResult(id="c1", content=[Text("r")])]),
    ]
    request = Request(model=CLAUDE, messages=history, tools=tools, tool_choice=ToolChoice("none"))
    config = CODEC.write_request(request)["toolConfig"]
    assert config == {
        "tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}]
    }
    assert request.dropped == ["tool_choice"]

    request = Request(model=CLAUDE, messages=history, tool_choice=ToolChoice("tool", name="f"))
    request.hosted_tools = [HostedTool(name="web_search")]
    body = CODEC.write_request(request)
    assert body["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}]
    }
    assert request.dropped == ["web_search"]
    request.tools = tools
    assert CODEC.write_request(request)["toolConfig"]["toolChoice"] == {"tool": {"name": "f"}}


def test_ids_document_names_and_s3_sources_are_made_acceptable(bedrock):
    long_id = "functions.bash:0/" + "x" * 80
    request = Request(
        model=CLAUDE,
        messages=[
            Message(
                "user",
                [
                    Media(media_type="application/pdf", data=B64_PDF, name="report.v2.pdf"),
                    Media(media_type="application/pdf", data=B64_PDF, name="report v2 pdf"),
                    Media(media_type="text/markdown", data="IyBoaQ=="),
                    Media(media_type="image/webp", url="s3://bucket/key.webp"),
                ],
            ),
            Message("assistant", [ToolCall(id=long_id, name="bash", arguments={})]),
            Message("user", [ToolResult(id=long_id, content=[Text("ok")])]),
        ],
    )
    body = CODEC.write_request(request)
    docs = [b["document"] for b in body["messages"][0]["content"] if "document" in b]
    assert [(d["format"], d["name"]) for d in docs] == [
        ("pdf", "report v2 pdf"),
        ("pdf", "report v2 pdf (2)"),
        ("md", "document"),
    ]
    image = body["messages"][0]["content"][3]["image"]
    assert image == {"format": "webp", "source": {"s3Location": {"uri": "s3://bucket/key.webp"}}}
    use_id = body["messages"][1]["content"][0]["toolUse"]["toolUseId"]
    assert len(use_id) == 64 and ":" in use_id and "/" not in use_id
    assert body["messages"][2]["content"][0]["toolResult"]["toolUseId"] == use_id
    valid_for_boto3(bedrock, body)


def test_structured_output_goes_to_output_config(bedrock):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    request = Request(model=CLAUDE, messages=[Message("user", [Text("count")])])
    request.output_format = OutputFormat(schema=schema, name="count")
    body = CODEC.write_request(request)
    text_format = body["outputConfig"]["textFormat"]
    assert text_format["type"] == "json_schema"
    assert json.loads(text_format["structure"]["jsonSchema"]["schema"]) == schema
    assert text_format["structure"]["jsonSchema"]["name"] == "count"
    valid_for_boto3(bedrock, body)


# ---------------------------------------------------------------- (5) what cannot be sent


def test_an_image_url_is_unsupported_with_a_clear_message():
    url = "https://example.com/cat.png?X-Amz-Signature=secret"
    request = Request(
        model=CLAUDE, messages=[Message("user", [Media(media_type="image/png", url=url)])]
    )
    with pytest.raises(neutral.Unsupported) as refused:
        CODEC.write_request(request)
    assert refused.value.field == "image url"
    assert "s3://" in str(refused.value) and "secret" not in str(refused.value)


def test_json_output_without_a_schema_is_unsupported():
    request = Request(model=CLAUDE, messages=[Message("user", [Text("json please")])])
    request.output_format = OutputFormat(schema=None)
    with pytest.raises(neutral.Unsupported) as refused:
        CODEC.write_request(request)
    assert refused.value.field == "output_format"


def test_video_media_is_unsupported():
    request = Request(
        model=CLAUDE, messages=[Message("user", [Media(media_type="video/mp4", data="AAAA")])]
    )
    with pytest.raises(neutral.Unsupported):
        CODEC.write_request(request)


# ---------------------------------------------------------------- answers


CLAUDE_ANSWER = {
    "output": {
        "message": {
            "role": "assistant",
            "content": [
                {"reasoningContent": {"reasoningText": {"text": "Hmm.", "signature": "c2ln"}}},
                {"text": "Calling."},
                {"toolUse": {"toolUseId": "tooluse_1", "name": "f", "input": {"x": [1, 2]}}},
            ],
        }
    },
    "stopReason": "tool_use",
    "usage": {
        "inputTokens": 12,
        "outputTokens": 40,
        "totalTokens": 1552,
        "cacheReadInputTokens": 1000,
        "cacheWriteInputTokens": 500,
    },
    "metrics": {"latencyMs": 912},
}


def test_read_response():
    response = CODEC.read_response(CLAUDE_ANSWER)
    assert response.id.startswith("msg_") and response.model is None
    assert response.parts == [
        Thinking(text="Hmm.", signature="c2ln"),
        Text("Calling."),
        ToolCall(id="tooluse_1", name="f", arguments={"x": [1, 2]}),
    ]
    assert response.stop_reason == "tool_use"
    assert response.usage == Usage(1512, 40, cached_input_tokens=1000, cache_write_tokens=500)


@pytest.mark.parametrize(
    ("converse", "neutral_reason"),
    [
        ("guardrail_intervened", "refusal"),
        ("content_filtered", "refusal"),
        ("model_context_window_exceeded", "max_tokens"),
        ("stop_sequence", "stop_sequence"),
        ("max_tokens", "max_tokens"),
        ("end_turn", "end_turn"),
    ],
)
def test_stop_reasons(converse, neutral_reason):
    answer = CLAUDE_ANSWER | {"stopReason": converse}
    assert CODEC.read_response(answer).stop_reason == neutral_reason


def test_written_answer_round_trips_and_boto3_parses_it(bedrock):
    response = CODEC.read_response(CLAUDE_ANSWER)
    written = CODEC.write_response(response)
    assert written["output"] == CLAUDE_ANSWER["output"]
    assert written["usage"] == CLAUDE_ANSWER["usage"]
    assert written["stopReason"] == "tool_use"

    serve(bedrock, "Converse", [json.dumps(written).encode()])
    parsed = bedrock.converse(
        modelId=CLAUDE, messages=[{"role": "user", "content": [{"text": "q"}]}]
    )
    assert parsed["output"] == CLAUDE_ANSWER["output"]
    assert parsed["usage"] == CLAUDE_ANSWER["usage"]


def test_written_answer_keeps_gemini_signatures_and_stop_sequence():
    response = Response(
        id="x",
        model="gemini-2.5-pro",
        parts=[Thinking(text="", signature="Z2VtaW5p", attached=True), Text("Hi")],
        stop_reason="stop_sequence",
        stop_sequence="END",
        usage=Usage(10, 5, cached_input_tokens=4),
    )
    written = CODEC.write_response(response)
    assert written["output"]["message"]["content"][0] == {
        "reasoningContent": {"reasoningText": {"text": "", "signature": "Z2VtaW5p"}}
    }
    assert written["additionalModelResponseFields"] == {"stop_sequence": "END"}
    assert written["usage"] == {
        "inputTokens": 6,
        "outputTokens": 5,
        "totalTokens": 15,
        "cacheReadInputTokens": 4,
    }


# ---------------------------------------------------------------- (4) usage both ways


@pytest.mark.parametrize(
    ("converse", "usage"),
    [
        ({"inputTokens": 9, "outputTokens": 2, "totalTokens": 11}, Usage(9, 2)),
        (
            {
                "inputTokens": 3,
                "outputTokens": 7,
                "totalTokens": 2010,
                "cacheReadInputTokens": 2000,
            },
            Usage(2003, 7, cached_input_tokens=2000),
        ),
        (
            {
                "inputTokens": 5,
                "outputTokens": 1,
                "totalTokens": 306,
                "cacheReadInputTokens": 100,
                "cacheWriteInputTokens": 200,
            },
            Usage(305, 1, cached_input_tokens=100, cache_write_tokens=200),
        ),
    ],
)
def test_usage_converts_both_ways(converse, usage):
    from calo_addon.translate._converse_answer import read_usage, write_usage

    assert read_usage(converse) == usage
    assert write_usage(usage) == converse


# ---------------------------------------------------------------- (3) streams

CLAUDE_STREAM = [
    ("messageStart", {"role": "assistant", "p": "abcdefgh"}),
    (
        "contentBlockDelta",
        {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Let me"}}},
    ),
    (
        "contentBlockDelta",
        {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": " think."}}},
    ),
    (
        "contentBlockDelta",
        {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "RXFRQg=="}}},
    ),
    ("contentBlockStop", {"contentBlockIndex": 0}),
    ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "I'll check"}, "p": "ab"}),
    ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": " the weather."}}),
    ("contentBlockStop", {"contentBlockIndex": 1}),
    (
        "contentBlockStart",
        {
            "contentBlockIndex": 2,
            "start": {"toolUse": {"toolUseId": "tooluse_w1", "name": "get_weather"}},
        },
    ),
    ("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"toolUse": {"input": '{"ci'}}}),
    ("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"toolUse": {"input": 'ty": "Par'}}}),
    ("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"toolUse": {"input": 'is"}'}}}),
    ("contentBlockStop", {"contentBlockIndex": 2}),
    ("messageStop", {"stopReason": "tool_use"}),
    (
        "metadata",
        {
            "usage": {
                "inputTokens": 20,
                "outputTokens": 50,
                "totalTokens": 1570,
                "cacheReadInputTokens": 1500,
            },
            "metrics": {"latencyMs": 812},
        },
    ),
]


def read_stream(events: list) -> list:
    reader = CODEC.stream_reader()
    out = []
    for event_type, data in events:
        out.append(reader.feed(event_type, data))
    return out + [reader.close()]


def test_stream_reader_emits_as_events_come():
    per_event = read_stream(CLAUDE_STREAM)
    start = per_event[0][0]
    assert isinstance(start, MessageStart) and start.id.startswith("msg_")
    assert per_event[1:] == [
        [PartStart(0, Thinking()), PartDelta(0, thinking="Let me")],
        [PartDelta(0, thinking=" think.")],
        [PartDelta(0, signature="RXFRQg==")],
        [PartStop(0)],
        [PartStart(1, Text("")), PartDelta(1, text="I'll check")],
        [PartDelta(1, text=" the weather.")],
        [PartStop(1)],
        [PartStart(2, ToolCall(id="tooluse_w1", name="get_weather"))],
        [PartDelta(2, arguments='{"ci')],
        [PartDelta(2, arguments='ty": "Par')],
        [PartDelta(2, arguments='is"}')],
        [PartStop(2)],
        [],  # the stop reason waits for the usage
        [MessageStop("tool_use", Usage(1520, 50, cached_input_tokens=1500))],
        [],  # close() owes nothing
    ]


def test_stream_reader_close_finishes_a_cut_stream():
    events = read_stream(CLAUDE_STREAM[:7])
    assert events[-1] == [PartStop(1), MessageStop(None, Usage())]
    no_metadata = read_stream(CLAUDE_STREAM[:-1])
    assert no_metadata[-1] == [MessageStop("tool_use", Usage())]


def test_stream_reader_metadata_before_message_stop():
    reader = CODEC.stream_reader()
    reader.feed("messageStart", {"role": "assistant"})
    usage = {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7}
    assert reader.feed("metadata", {"usage": usage, "metrics": {"latencyMs": 1}}) == []
    assert reader.feed("messageStop", {"stopReason": "end_turn"}) == [
        MessageStop("end_turn", Usage(3, 4))
    ]
    assert reader.close() == []


def test_stream_reader_accepts_boto3_parsed_events_and_no_start_event():
    reader = CODEC.stream_reader()
    first = reader.feed(
        None, {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "a"}}}
    )
    assert [type(e) for e in first] == [MessageStart, PartStart, PartDelta]
    tool = reader.feed(
        None, {"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"toolUse": {"input": ""}}}}
    )
    assert tool[0] == PartStop(0) and isinstance(tool[1].part, ToolCall)
    assert reader.feed(None, {"contentBlockStop": {"contentBlockIndex": 1}}) == [
        PartDelta(1, arguments="{}"),
        PartStop(1),
    ]


def test_stream_reader_fills_empty_tool_arguments_and_redacted_reasoning():
    reader = CODEC.stream_reader()
    reader.feed("messageStart", {"role": "assistant"})
    redacted = reader.feed(
        "contentBlockDelta",
        {"contentBlockIndex": 0, "delta": {"reasoningContent": {"redactedContent": "b3BhcXVl"}}},
    )
    assert redacted == [PartStart(0, Thinking(redacted=True)), PartDelta(0, signature="b3BhcXVl")]
    start = {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t", "name": "now"}}}
    assert reader.feed("contentBlockStart", start)[0] == PartStop(0)
    assert reader.feed("contentBlockStop", {"contentBlockIndex": 1}) == [
        PartDelta(1, arguments="{}"),
        PartStop(1),
    ]


@pytest.mark.parametrize(
    ("event_type", "status"),
    [
        ("internalServerException", 500),
        ("modelStreamErrorException", 500),
        ("throttlingException", 429),
        ("validationException", 400),
        ("serviceUnavailableException", 503),
        ("ThrottlingException", 429),
    ],
)
def test_stream_exceptions_become_stream_errors(event_type, status):
    reader = CODEC.stream_reader()
    reader.feed("messageStart", {"role": "assistant"})
    events = reader.feed(event_type, {"message": "slow down"})
    assert [(e.status, e.message) for e in events] == [(status, "slow down")]
    assert reader.close() == []


def frames(wire: list) -> list[bytes]:
    """The writer's events as AWS event-stream frames (exceptions with their message type)."""
    out = []
    for event_type, data in wire:
        kind = "exception" if event_type.endswith("Exception") else "event"
        out.append(encode_event(data, event_type, kind))
    return out


def boto3_stream(client, wire: list):
    """What boto3's converse_stream yields for these events, sent as AWS event-stream frames."""
    serve(client, "ConverseStream", frames(wire), {"content-type": EVENT_STREAM})
    messages = [{"role": "user", "content": [{"text": "q"}]}]
    return client.converse_stream(modelId=CLAUDE, messages=messages)["stream"]


def test_stream_writer_round_trip_and_boto3_reads_it(bedrock):
    neutral_events = [e for batch in read_stream(CLAUDE_STREAM) for e in batch]
    writer = CODEC.stream_writer(Request())
    wire = [w for event in neutral_events for w in writer.write(event)] + writer.close()

    def strip(event):
        event_type, data = event
        data = {k: v for k, v in data.items() if k != "p"}
        if event_type == "metadata":
            data["metrics"] = {"latencyMs": 0}
        return event_type, data

    expected = [strip(e) for e in CLAUDE_STREAM]
    expected[-1][1]["usage"]["totalTokens"] = 1570
    assert wire == expected

    parsed = [next(iter(event.items())) for event in boto3_stream(bedrock, wire)]
    assert [(t, {k: v for k, v in d.items()}) for t, d in parsed] == wire


def test_stream_writer_whole_tool_arguments_and_errors(bedrock):
    writer = CODEC.stream_writer(Request())
    wire = writer.write(MessageStart(id="m", model=None))
    wire += writer.write(PartStart(0, ToolCall(id="call_9", name="f", arguments={"a": 1})))
    wire += writer.write(PartStop(0))
    wire += writer.write(PartStart(1, ToolCall(id="call_10", name="g")))
    wire += writer.write(PartStop(1))
    wire += writer.write(StreamError(429, "rate limited", kind="rate_limit_error"))
    assert wire[1:] == [
        (
            "contentBlockStart",
            {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "call_9", "name": "f"}}},
        ),
        (
            "contentBlockDelta",
            {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '{"a": 1}'}}},
        ),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        (
            "contentBlockStart",
            {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "call_10", "name": "g"}}},
        ),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{}"}}}),
        ("contentBlockStop", {"contentBlockIndex": 1}),
        ("throttlingException", {"message": "rate limited"}),
    ]
    stream = boto3_stream(bedrock, wire)
    with pytest.raises(EventStreamError) as raised:
        list(stream)
    assert raised.value.response["Error"]["Code"] == "throttlingException"


def test_error_message():
    assert CODEC.error_message({"message": "Too many tokens"}) == "Too many tokens"
    assert CODEC.error_message({"Message": "Forbidden"}) == "Forbidden"
    assert CODEC.error_message({"error": {"message": "x"}}) is None
    assert CODEC.error_message("text") is None
    assert CODEC.name == "converse"


@pytest.mark.parametrize(
    "name, effort, budget",
    [
        ("minimal", "minimal", 1024),
        ("high", "high", 32768),
        ("xhigh", None, 12288),  # not on the neutral scale: no level, a medium budget
        ("HIGH", None, 12288),  # readers lower-case first; the scale itself is exact
    ],
)
def test_effort_levels_of_the_neutral_scale(name: str, effort: str | None, budget: int):
    assert neutral.effort_named(name) == effort
    assert neutral.budget_for(name) == budget
    assert neutral.effort_for(budget) == (effort or "medium")
