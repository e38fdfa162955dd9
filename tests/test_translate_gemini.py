"""The Gemini codec: requests, answers and streams through the neutral form, both roles.

The google-genai SDK stands in for a real Gemini client (it builds the requests we read and
parses the answers and streams we write, through an httpx.MockTransport), and its pydantic
types (which forbid unknown fields) check that what we write to Gemini is spelled right.
"""

from __future__ import annotations

import copy
import json

import httpx
import pytest
from google import genai
from google.genai import types

from calo_addon.translate import neutral as n
from calo_addon.translate.gemini import CODEC

# Base64 values, as Gemini sends thought signatures (the SDK decodes them to bytes).
SIG1 = "U0lHTkFUVVJFLTE="  # b"SIGNATURE-1"
SIG2 = "U0lHTkFUVVJFLTI="  # b"SIGNATURE-2"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="

# A schema with every keyword a sanitiser would cut: it must reach Gemini byte for byte.
HARD_SCHEMA = {
    "type": "object",
    "$defs": {"point": {"type": "object", "properties": {"x": {"type": "number"}}}},
    "properties": {
        "where": {"$ref": "#/$defs/point"},
        "either": {"anyOf": [{"type": "string"}, {"type": "integer", "exclusiveMinimum": 0}]},
        "tags": {"type": "object", "propertyNames": {"pattern": "^[a-z]+$"}},
        "kind": {"const": "fixed"},
    },
    "required": ["where"],
    "additionalProperties": False,
}


# ---------------------------------------------------------------- helpers


def sdk_client(handler) -> genai.Client:
    """A google-genai client whose HTTP goes to `handler` (never to the network)."""
    http = httpx.Client(transport=httpx.MockTransport(handler))
    options = types.HttpOptions(base_url="http://127.0.0.1:9", httpx_client=http)
    return genai.Client(api_key="test-key", http_options=options)


def capture_sdk_request(**kwargs) -> dict:
    """The body google-genai sends for generate_content(**kwargs)."""
    bodies = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={"candidates": []})

    sdk_client(handler).models.generate_content(**kwargs)
    return bodies[0]


def sse(chunks: list) -> bytes:
    """Gemini's alt=sse framing: one `data:` line per chunk."""
    return b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in chunks)


def assert_gemini_accepts(body: dict) -> None:
    """Every part of a request body parses as the SDK's types, which forbid unknown fields."""
    for content in body["contents"]:
        types.Content.model_validate(content)
    for tool in body.get("tools", []):
        types.Tool.model_validate(tool)
    if "toolConfig" in body:
        types.ToolConfig.model_validate(body["toolConfig"])
    if "generationConfig" in body:
        types.GenerationConfig.model_validate(body["generationConfig"])
    if "systemInstruction" in body:
        types.Content.model_validate(body["systemInstruction"])


def without_ids(events: list) -> list:
    """Stream events with generated ids blanked, to compare two runs."""
    out = []
    for event in copy.deepcopy(events):
        if isinstance(event, n.PartStart) and isinstance(event.part, n.ToolCall):
            event.part.id = "*"
        if isinstance(event, n.MessageStart):
            event.id = "*"
        out.append(event)
    return out


def gemini3_answer() -> dict:
    """A Gemini 3 answer: thought summary, two parallel calls of one function, the thought
    signature on the first call only (as Gemini 3 sends it)."""
    return {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "I need both cities.", "thought": True},
                        {
                            "functionCall": {"name": "weather", "args": {"city": "Paris"}},
                            "thoughtSignature": SIG1,
                        },
                        {"functionCall": {"name": "weather", "args": {"city": "Oslo"}}},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 120,
            "candidatesTokenCount": 30,
            "thoughtsTokenCount": 50,
            "cachedContentTokenCount": 100,
            "totalTokenCount": 200,
        },
        "modelVersion": "gemini-3-pro-preview",
        "responseId": "resp-1",
    }


# ---------------------------------------------------------------- reading requests


def test_reads_a_request_the_sdk_builds():
    body = capture_sdk_request(
        model="gemini-2.5-flash",
        contents=[types.Content(role="user", parts=[types.Part(text="Weather in Paris?")])],
        config=types.GenerateContentConfig(
            system_instruction="You are terse.",
            tools=[
                types.Tool(
                    function_declarations=[
                        types.FunctionDeclaration(
                            name="weather",
                            description="Current weather",
                            parameters_json_schema=HARD_SCHEMA,
                        )
                    ]
                ),
                types.Tool(google_search=types.GoogleSearch()),
            ],
            tool_config=types.ToolConfig(
                function_calling_config=types.FunctionCallingConfig(
                    mode="ANY", allowed_function_names=["weather"]
                )
            ),
            thinking_config=types.ThinkingConfig(thinking_budget=2048, include_thoughts=True),
            max_output_tokens=512,
            temperature=0.2,
            top_p=0.9,
            top_k=40,
            stop_sequences=["END"],
            seed=7,
            safety_settings=[
                types.SafetySetting(category="HARM_CATEGORY_HATE_SPEECH", threshold="BLOCK_NONE")
            ],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        ),
    )
    request = CODEC.read_request(body)

    assert request.model is None
    assert [t.text for t in request.system] == ["You are terse."]
    assert request.messages == [n.Message("user", [n.Text("Weather in Paris?")])]
    assert request.tools == [n.Tool("weather", "Current weather", HARD_SCHEMA)]
    assert request.hosted_tools == [n.HostedTool("web_search", {})]
    assert request.tool_choice == n.ToolChoice(mode="tool", name="weather")
    assert request.reasoning == n.Reasoning(budget_tokens=2048, enabled=True, include_thoughts=True)
    assert (request.max_tokens, request.temperature, request.top_p, request.top_k) == (
        512,
        0.2,
        0.9,
        40,
    )
    assert request.stop == ["END"]
    assert "safetySettings" in request.dropped
    assert "generationConfig.seed" in request.dropped


def test_reads_a_multi_turn_rest_body_with_media_calls_and_signatures():
    body = {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "What is in these?"},
                    {"inlineData": {"mimeType": "image/png", "data": PNG}},
                    {"file_data": {"mime_type": "application/pdf", "file_uri": "gs://b/doc.pdf"}},
                ],
            },
            {
                "role": "model",
                "parts": [
                    {"text": "Thinking it over", "thought": True, "thoughtSignature": SIG2},
                    {"functionCall": {"name": "look", "args": {"n": 1}}, "thoughtSignature": SIG1},
                    {"functionCall": {"name": "look", "args": {"n": 2}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "look", "response": {"result": "first"}}},
                    {"functionResponse": {"name": "look", "response": {"error": "no access"}}},
                ],
            },
        ],
        "cachedContent": "cachedContents/abc",
        "labels": {"team": "x"},
    }
    request = CODEC.read_request(body)
    user, model, results = request.messages

    assert user.parts == [
        n.Text("What is in these?"),
        n.Media(media_type="image/png", data=PNG),
        n.Media(media_type="application/pdf", url="gs://b/doc.pdf"),
    ]
    thought, signed, first, second = model.parts
    assert thought == n.Thinking(text="Thinking it over", signature=SIG2)
    assert signed == n.Thinking(signature=SIG1, attached=True)
    assert (first.name, first.arguments, second.arguments) == ("look", {"n": 1}, {"n": 2})
    assert first.id != second.id
    ok, failed = results.parts
    assert (ok.id, ok.name, ok.content, ok.is_error) == (first.id, "look", [n.Text("first")], False)
    assert (failed.id, failed.content, failed.is_error) == (second.id, [n.Text("no access")], True)
    assert sorted(request.dropped) == ["cachedContent", "labels"]


def test_function_responses_with_ids_match_their_calls_by_id():
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "go"}]},
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"id": "a", "name": "f", "args": {}}},
                    {"functionCall": {"id": "b", "name": "f", "args": {}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"id": "b", "name": "f", "response": {"x": 1}}},
                    {"functionResponse": {"id": "a", "name": "f", "response": {"output": "A"}}},
                ],
            },
        ]
    }
    results = CODEC.read_request(body).messages[2].parts
    assert [(r.id, r.content) for r in results] == [
        ("b", [n.Text('{"x": 1}')]),
        ("a", [n.Text("A")]),
    ]


def test_reads_openapi_parameters_and_response_schema_as_json_schema():
    body = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "f",
                        "parameters": {
                            "type": "OBJECT",
                            "properties": {
                                "s": {"type": "STRING", "nullable": True, "enum": ["OBJECT"]}
                            },
                        },
                    }
                ]
            }
        ],
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseSchema": {"type": "ARRAY", "items": {"type": "INTEGER"}},
        },
    }
    request = CODEC.read_request(body)
    assert request.tools[0].parameters == {
        "type": "object",
        "properties": {"s": {"type": ["string", "null"], "enum": ["OBJECT"]}},
    }
    assert request.output_format == n.OutputFormat(
        schema={"type": "array", "items": {"type": "integer"}}
    )


@pytest.mark.parametrize(
    "thinking, reasoning",
    [
        (
            {"thinkingBudget": 0},
            n.Reasoning(budget_tokens=0, enabled=False, include_thoughts=False),
        ),
        ({"thinkingBudget": -1, "includeThoughts": True}, n.Reasoning(enabled=True)),
        ({"thinkingLevel": "LOW"}, n.Reasoning(effort="low", include_thoughts=False)),
        # not a level of the neutral scale: no effort (the model's default), never the word
        ({"thinkingLevel": "THINKING_LEVEL_UNSPECIFIED"}, n.Reasoning(include_thoughts=False)),
    ],
)
def test_reads_thinking_config(thinking, reasoning):
    body = {"contents": [], "generationConfig": {"thinkingConfig": thinking}}
    assert CODEC.read_request(body).reasoning == reasoning


@pytest.mark.parametrize(
    "body, field",
    [
        ([], "body"),
        ({}, "contents"),
        ({"contents": [{"role": "system", "parts": []}]}, "contents[0].role"),
        ({"contents": [{"role": "user", "parts": "hi"}]}, "contents[0].parts"),
        (
            {"contents": [], "generationConfig": {"candidateCount": 2}},
            "generationConfig.candidateCount",
        ),
        (
            {"contents": [], "generationConfig": {"responseModalities": ["IMAGE"]}},
            "generationConfig.responseModalities",
        ),
    ],
)
def test_refuses_what_it_cannot_read(body, field):
    with pytest.raises(n.TranslationError) as caught:
        CODEC.read_request(body)
    assert caught.value.field == field


# ---------------------------------------------------------------- writing requests


def claude_code_like_request() -> n.Request:
    """What an Anthropic client (Claude Code) turns into: tools, parallel calls answered out
    of order, an image in a tool result, thinking with a signature."""
    return n.Request(
        model="gemini-2.5-pro",
        system=[n.Text("You are Claude Code."), n.Text("Be brief.")],
        messages=[
            n.Message("user", [n.Text("Read both files")]),
            n.Message(
                "assistant",
                [
                    n.Thinking(text="Two reads.", signature=SIG1),
                    n.ToolCall("toolu_1", "Read", {"path": "a"}),
                    n.ToolCall("toolu_2", "Read", {"path": "b"}),
                ],
            ),
            n.Message(
                "user",
                [
                    n.ToolResult("toolu_2", [n.Text("B"), n.Media("image/png", data=PNG)]),
                    n.ToolResult("toolu_1", [n.Text("A")]),
                    n.Text("<system-reminder>keep going</system-reminder>"),
                ],
            ),
        ],
        tools=[n.Tool("Read", "Read a file", HARD_SCHEMA)],
        tool_choice=n.ToolChoice(mode="auto"),
        max_tokens=1000,
        temperature=1.0,
        stop=["\n\nHuman:"],
        reasoning=n.Reasoning(budget_tokens=4000),
    )


def test_writes_a_request_gemini_accepts():
    body = CODEC.write_request(claude_code_like_request())
    assert_gemini_accepts(body)

    assert "model" not in body
    assert body["systemInstruction"] == {
        "parts": [{"text": "You are Claude Code."}, {"text": "Be brief."}]
    }
    _, model, results = body["contents"]
    assert model == {
        "role": "model",
        "parts": [
            {"functionCall": {"name": "Read", "args": {"path": "a"}}, "thoughtSignature": SIG1},
            {"functionCall": {"name": "Read", "args": {"path": "b"}}},
        ],
    }
    assert results == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "Read", "response": {"result": "A"}}},
            {"functionResponse": {"name": "Read", "response": {"result": "B"}}},
            {"inlineData": {"mimeType": "image/png", "data": PNG}},
            {"text": "<system-reminder>keep going</system-reminder>"},
        ],
    }
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert body["generationConfig"] == {
        "maxOutputTokens": 1000,
        "temperature": 1.0,
        "stopSequences": ["\n\nHuman:"],
        "thinkingConfig": {"thinkingBudget": 4000, "includeThoughts": True},
    }


def test_tool_schema_reaches_gemini_byte_identical():
    request = n.Request(
        messages=[n.Message("user", [n.Text("hi")])],
        tools=[n.Tool("hard", "every keyword", copy.deepcopy(HARD_SCHEMA))],
    )
    declaration = CODEC.write_request(request)["tools"][0]["functionDeclarations"][0]
    assert set(declaration) == {"name", "description", "parametersJsonSchema"}
    assert json.dumps(declaration["parametersJsonSchema"]) == json.dumps(HARD_SCHEMA)


def test_results_split_over_turns_join_one_user_turn_and_same_roles_merge():
    request = n.Request(
        messages=[
            n.Message("user", [n.Text("a")]),
            n.Message("user", [n.Text("b")]),
            n.Message("assistant", [n.ToolCall("c1", "f"), n.ToolCall("c2", "g")]),
            n.Message("user", [n.ToolResult("c2", [n.Text("G")], is_error=True)]),
            n.Message("user", [n.ToolResult("c1", [n.Text("F")])]),
            n.Message("assistant", [n.Thinking(text="unsigned thoughts")]),
            n.Message("user", [n.Text("next")]),
        ]
    )
    contents = CODEC.write_request(request)["contents"]
    assert contents == [
        {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "f", "args": {}}},
                {"functionCall": {"name": "g", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "f", "response": {"result": "F"}}},
                {"functionResponse": {"name": "g", "response": {"error": "G"}}},
                {"text": "next"},
            ],
        },
    ]


@pytest.mark.parametrize(
    "parts, written",
    [
        # signature before text: on that text
        (
            [n.Thinking(signature=SIG1, attached=True), n.Text("hi")],
            [{"text": "hi", "thoughtSignature": SIG1}],
        ),
        # nothing follows: on the previous part
        (
            [n.Text("hi"), n.Thinking(text="t", signature=SIG1)],
            [{"text": "hi", "thoughtSignature": SIG1}],
        ),
        # nothing at all to carry it: an empty text part, as Gemini itself sends
        ([n.Thinking(signature=SIG1)], [{"text": "", "thoughtSignature": SIG1}]),
        # an empty text part Gemini signed stays the signature's part
        (
            [n.Text("hi"), n.Thinking(signature=SIG1, attached=True), n.Text("")],
            [{"text": "hi"}, {"text": "", "thoughtSignature": SIG1}],
        ),
        # two signatures before one part: the first keeps its order on an empty part
        (
            [n.Thinking(signature=SIG1), n.Thinking(signature=SIG2), n.ToolCall("c", "f")],
            [
                {"text": "", "thoughtSignature": SIG1},
                {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": SIG2},
            ],
        ),
        # an empty unsigned text part is not sent (Gemini refuses it)
        ([n.Text(""), n.Text("hi")], [{"text": "hi"}]),
        # thought text without a signature is not sent back
        ([n.Thinking(text="musing"), n.Text("hi")], [{"text": "hi"}]),
    ],
)
def test_signatures_go_back_on_the_right_part(parts, written):
    request = n.Request(messages=[n.Message("user", [n.Text("q")]), n.Message("assistant", parts)])
    assert CODEC.write_request(request)["contents"][1]["parts"] == written


@pytest.mark.parametrize(
    "choice, config",
    [
        (n.ToolChoice("auto"), {"mode": "AUTO"}),
        (n.ToolChoice("none"), {"mode": "NONE"}),
        (n.ToolChoice("required"), {"mode": "ANY"}),
        (n.ToolChoice("tool", name="f"), {"mode": "ANY", "allowedFunctionNames": ["f"]}),
    ],
)
def test_writes_tool_choice(choice, config):
    request = n.Request(messages=[], tools=[n.Tool("f")], tool_choice=choice)
    assert CODEC.write_request(request)["toolConfig"] == {"functionCallingConfig": config}


def test_parallel_false_and_unknown_hosted_tools_are_named_as_dropped():
    request = n.Request(
        messages=[n.Message("user", [n.Text("hi")])],
        tools=[n.Tool("f", parameters={"type": "object"})],
        hosted_tools=[
            n.HostedTool("web_search", {"max_uses": 3}),
            n.HostedTool("code_execution"),
            n.HostedTool("tool_search"),
        ],
        tool_choice=n.ToolChoice("auto", parallel=False),
        model="gemini-3-pro-preview",
    )
    body = CODEC.write_request(request)
    assert_gemini_accepts(body)
    assert body["tools"][1:] == [{"googleSearch": {}}, {"codeExecution": {}}]
    assert request.dropped == ["tools.tool_search", "tool_choice.parallel"]


ANY_DECLARATION = {"name": "f", "parametersJsonSchema": {"type": "object"}}


def test_gemini_before_3_gets_no_built_in_tool_beside_functions():
    """Gemini 2.x refuses googleSearch beside functionDeclarations (Codex sends web_search
    with its function tools): the built-in tool is dropped and named."""
    request = n.Request(
        messages=[n.Message("user", [n.Text("hi")])],
        tools=[n.Tool("f", parameters={"type": "object"})],
        hosted_tools=[n.HostedTool("web_search")],
        model="gemini-2.5-pro",
    )
    body = CODEC.write_request(request)
    assert body["tools"] == [{"functionDeclarations": [ANY_DECLARATION]}]
    assert request.dropped == ["tools.web_search"]
    alone = n.Request(messages=request.messages, hosted_tools=[n.HostedTool("web_search")])
    alone.model = "gemini-2.5-pro"
    assert CODEC.write_request(alone)["tools"] == [{"googleSearch": {}}]


@pytest.mark.parametrize(
    "model, reasoning, thinking",
    [
        (
            "gemini-2.5-flash",
            n.Reasoning(budget_tokens=3000),
            {"thinkingBudget": 3000, "includeThoughts": True},
        ),
        (
            "gemini-2.5-flash",
            n.Reasoning(effort="low", include_thoughts=False),
            {"thinkingBudget": 4096},
        ),
        ("gemini-2.5-flash", n.Reasoning(enabled=False), {"thinkingBudget": 0}),
        (
            "gemini-2.5-flash",
            n.Reasoning(enabled=True),
            {"thinkingBudget": -1, "includeThoughts": True},
        ),
        (
            "gemini-3-pro-preview",
            n.Reasoning(effort="high"),
            {"thinkingLevel": "high", "includeThoughts": True},
        ),
        (
            "models/gemini-3-flash-preview",
            n.Reasoning(effort="minimal", include_thoughts=False),
            {"thinkingLevel": "minimal"},
        ),
        ("gemini-3-pro-preview", n.Reasoning(enabled=False), {"thinkingLevel": "low"}),
        ("gemini-3-pro-preview", n.Reasoning(budget_tokens=0), {"thinkingLevel": "low"}),
    ],
)
def test_writes_reasoning_for_the_model_generation(model, reasoning, thinking):
    request = n.Request(model=model, messages=[], reasoning=reasoning)
    config = CODEC.write_request(request)["generationConfig"]
    types.GenerationConfig.model_validate(config)
    assert config["thinkingConfig"] == thinking


@pytest.mark.parametrize(
    "output, config",
    [
        (
            n.OutputFormat(schema=HARD_SCHEMA),
            {"responseMimeType": "application/json", "responseJsonSchema": HARD_SCHEMA},
        ),
        (n.OutputFormat(), {"responseMimeType": "application/json"}),
    ],
)
def test_writes_structured_output(output, config):
    request = n.Request(messages=[], output_format=output)
    assert CODEC.write_request(request)["generationConfig"] == config


@pytest.mark.parametrize(
    "media, part",
    [
        (n.Media("image/png", data=PNG), {"inlineData": {"mimeType": "image/png", "data": PNG}}),
        (n.Media(data=PNG), {"inlineData": {"mimeType": "image/png", "data": PNG}}),
        (
            n.Media(url=f"data:image/png;base64,{PNG}"),
            {"inlineData": {"mimeType": "image/png", "data": PNG}},
        ),
        (
            n.Media("application/pdf", url="gs://bucket/a.pdf"),
            {"fileData": {"fileUri": "gs://bucket/a.pdf", "mimeType": "application/pdf"}},
        ),
        (
            n.Media(url="https://generativelanguage.googleapis.com/v1beta/files/abc"),
            {"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc"}},
        ),
        (
            n.Media(url="https://example.org/cat.jpg"),
            {"fileData": {"fileUri": "https://example.org/cat.jpg"}},
        ),
    ],
)
def test_writes_media(media, part):
    request = n.Request(messages=[n.Message("user", [media])])
    body = CODEC.write_request(request)
    assert_gemini_accepts(body)
    assert body["contents"][0]["parts"] == [part]


def test_custom_tool_becomes_a_function_of_one_string():
    grammar = {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}
    request = n.Request(
        messages=[
            n.Message("user", [n.Text("patch it")]),
            n.Message(
                "assistant", [n.ToolCall("c", "apply_patch", {"input": "*** Begin"}, "custom")]
            ),
            n.Message("user", [n.ToolResult("c", [n.Text("done")])]),
        ],
        tools=[n.Tool("apply_patch", "Apply a patch", tool_kind="custom", format=grammar)],
    )
    body = CODEC.write_request(request)
    assert_gemini_accepts(body)
    schema = body["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"]
    assert schema["required"] == ["input"] and schema["properties"]["input"]["type"] == "string"
    assert "start: /.+/" in schema["properties"]["input"]["description"]
    assert body["contents"][1]["parts"] == [
        {"functionCall": {"name": "apply_patch", "args": {"input": "*** Begin"}}}
    ]


def test_a_result_for_no_known_call_is_refused():
    request = n.Request(messages=[n.Message("user", [n.ToolResult("ghost", [n.Text("x")])])])
    with pytest.raises(n.TranslationError):
        CODEC.write_request(request)


def test_request_round_trip_through_neutral_keeps_the_body():
    body = {
        "contents": [
            {
                "role": "user",
                "parts": [{"text": "hi"}, {"inlineData": {"mimeType": "image/png", "data": PNG}}],
            },
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "f", "args": {"q": 1}}, "thoughtSignature": SIG1},
                    {"functionCall": {"name": "f", "args": {"q": 2}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "f", "response": {"result": "one"}}},
                    {"functionResponse": {"name": "f", "response": {"error": "two"}}},
                ],
            },
        ],
        "systemInstruction": {"parts": [{"text": "sys"}]},
        "tools": [
            {
                "functionDeclarations": [
                    {"name": "f", "description": "d", "parametersJsonSchema": HARD_SCHEMA}
                ]
            },
            {"googleSearch": {}},
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}},
        "generationConfig": {
            "maxOutputTokens": 99,
            "temperature": 0.5,
            "topP": 0.8,
            "topK": 20,
            "stopSequences": ["x"],
            "responseMimeType": "application/json",
            "responseJsonSchema": {"type": "object"},
            "thinkingConfig": {"thinkingBudget": 1234, "includeThoughts": True},
        },
    }
    request = CODEC.read_request(copy.deepcopy(body))
    request.model = "gemini-3-pro-preview"
    assert CODEC.write_request(request) == body


# ---------------------------------------------------------------- answers


def test_reads_a_gemini3_answer_and_puts_the_signature_back_on_its_call():
    answer = CODEC.read_response(gemini3_answer())
    assert answer.id == "resp-1" and answer.model == "gemini-3-pro-preview"
    thought, signed, paris, oslo = answer.parts
    assert thought == n.Thinking(text="I need both cities.")
    assert signed == n.Thinking(signature=SIG1, attached=True)
    assert (paris.name, paris.arguments, oslo.arguments) == (
        "weather",
        {"city": "Paris"},
        {"city": "Oslo"},
    )
    assert paris.id != oslo.id
    assert answer.stop_reason == "tool_use"
    assert answer.usage == n.Usage(
        input_tokens=120, output_tokens=80, cached_input_tokens=100, reasoning_tokens=50
    )

    follow_up = n.Request(
        model="gemini-3-pro-preview",
        messages=[
            n.Message("user", [n.Text("Weather in Paris and Oslo?")]),
            n.Message("assistant", answer.parts),
            n.Message(
                "user",
                [n.ToolResult(oslo.id, [n.Text("cold")]), n.ToolResult(paris.id, [n.Text("mild")])],
            ),
        ],
    )
    body = CODEC.write_request(follow_up)
    assert_gemini_accepts(body)
    assert body["contents"][1]["parts"] == gemini3_answer()["candidates"][0]["content"]["parts"][1:]
    assert [p["functionResponse"]["response"] for p in body["contents"][2]["parts"]] == [
        {"result": "mild"},
        {"result": "cold"},
    ]


@pytest.mark.parametrize(
    "finish, stop",
    [
        ("STOP", "end_turn"),
        ("MAX_TOKENS", "max_tokens"),
        ("SAFETY", "refusal"),
        ("RECITATION", "refusal"),
        ("PROHIBITED_CONTENT", "refusal"),
        ("SPII", "refusal"),
        ("BLOCKLIST", "refusal"),
        ("MALFORMED_FUNCTION_CALL", "error"),
        ("OTHER", "error"),
    ],
)
def test_reads_finish_reasons(finish, stop):
    payload = {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": "x"}]}, "finishReason": finish}
        ]
    }
    assert CODEC.read_response(payload).stop_reason == stop


def test_a_blocked_prompt_is_a_refusal_with_no_parts():
    payload = {
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 5},
    }
    answer = CODEC.read_response(payload)
    assert (answer.parts, answer.stop_reason, answer.usage.input_tokens) == ([], "refusal", 5)
    assert answer.id.startswith("msg_")


def test_written_answer_parses_in_the_sdk():
    answer = n.Response(
        id="msg_1",
        model="gemini-2.5-pro",
        parts=[
            n.Thinking(text="summary of thoughts"),
            n.Thinking(signature=SIG1, attached=True),
            n.Text("Calling."),
            n.ToolCall("toolu_9", "weather", {"city": "Rome"}),
        ],
        stop_reason="tool_use",
        usage=n.Usage(
            input_tokens=10, output_tokens=25, cached_input_tokens=4, reasoning_tokens=15
        ),
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=CODEC.write_response(answer))

    got = sdk_client(handler).models.generate_content(model="gemini-2.5-pro", contents="hi")
    assert got.text == "Calling."
    parts = got.candidates[0].content.parts
    assert parts[0].thought and parts[0].text == "summary of thoughts"
    assert parts[1].thought_signature == b"SIGNATURE-1" and parts[1].text == "Calling."
    assert got.function_calls[0].name == "weather" and got.function_calls[0].args == {
        "city": "Rome"
    }
    assert got.function_calls[0].id == "toolu_9"
    assert got.candidates[0].finish_reason == types.FinishReason.STOP
    usage = got.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.thoughts_token_count) == (
        10,
        10,
        15,
    )
    assert (usage.cached_content_token_count, usage.total_token_count) == (4, 35)
    assert got.response_id == "msg_1" and got.model_version == "gemini-2.5-pro"


def test_answer_round_trips_through_neutral():
    payload = gemini3_answer()
    payload["candidates"][0]["content"]["parts"].append({"text": "Done", "thoughtSignature": SIG2})
    answer = CODEC.read_response(payload)
    assert CODEC.read_response(CODEC.write_response(answer)) == answer


def test_a_signed_thought_with_text_keeps_its_signature_in_an_answer():
    """An Anthropic thinking block (text + signature) reaches a Gemini client on its own
    thought part, and comes back from it as the same block."""
    thinking = n.Thinking(text="Let me think.", signature="anthropic-sig")
    written = CODEC.write_response(n.Response("m", None, [thinking, n.Text("Hi")], "end_turn"))
    parts = written["candidates"][0]["content"]["parts"]
    assert parts == [
        {"text": "Let me think.", "thought": True, "thoughtSignature": "anthropic-sig"},
        {"text": "Hi"},
    ]
    assert CODEC.read_response(written).parts == [thinking, n.Text("Hi")]


def test_error_message():
    assert (
        CODEC.error_message(
            {"error": {"code": 429, "message": "Quota", "status": "RESOURCE_EXHAUSTED"}}
        )
        == "Quota"
    )
    assert CODEC.error_message([{"error": {"code": 500, "message": "boom"}}]) == "boom"
    assert CODEC.error_message({"candidates": []}) is None


# ---------------------------------------------------------------- streams

STREAM = [
    {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "Hmm, weather.", "thought": True}]},
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 40, "totalTokenCount": 40},
        "modelVersion": "gemini-3-pro-preview",
        "responseId": "r-7",
    },
    {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": "Let me check."}]}, "index": 0}
        ],
        "modelVersion": "gemini-3-pro-preview",
        "responseId": "r-7",
    },
    {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {
                            "functionCall": {"name": "weather", "args": {"city": "Paris"}},
                            "thoughtSignature": SIG1,
                        }
                    ],
                },
                "index": 0,
            }
        ],
        "modelVersion": "gemini-3-pro-preview",
        "responseId": "r-7",
    },
    {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": ""}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 40,
            "candidatesTokenCount": 12,
            "thoughtsTokenCount": 30,
            "totalTokenCount": 82,
        },
        "modelVersion": "gemini-3-pro-preview",
        "responseId": "r-7",
    },
]


def test_reads_a_stream_event_by_event():
    reader = CODEC.stream_reader()
    first, second, third, fourth = (reader.feed(None, chunk) for chunk in STREAM)

    assert first == [
        n.MessageStart("r-7", "gemini-3-pro-preview", n.Usage(input_tokens=40)),
        n.PartStart(0, n.Thinking()),
        n.PartDelta(0, thinking="Hmm, weather."),
    ]
    assert second == [
        n.PartStop(0),
        n.PartStart(1, n.Text("")),
        n.PartDelta(1, text="Let me check."),
    ]
    call_id = third[4].part.id
    assert call_id.startswith("call_")
    assert third == [
        n.PartStop(1),
        n.PartStart(2, n.Thinking(attached=True)),
        n.PartDelta(2, signature=SIG1),
        n.PartStop(2),
        n.PartStart(3, n.ToolCall(call_id, "weather", {})),
        n.PartDelta(3, arguments='{"city": "Paris"}'),
        n.PartStop(3),
    ]
    assert fourth == []
    usage = n.Usage(input_tokens=40, output_tokens=42, reasoning_tokens=30)
    assert reader.close() == [n.MessageStop("tool_use", usage)]


def test_stream_gives_parallel_calls_of_one_function_distinct_ids():
    reader = CODEC.stream_reader()
    chunk = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"functionCall": {"name": "f", "args": {}}},
                        {"functionCall": {"name": "f", "args": {}}},
                    ],
                }
            }
        ]
    }
    events = reader.feed(None, chunk) + reader.close()
    ids = [e.part.id for e in events if isinstance(e, n.PartStart)]
    assert len(ids) == 2 and ids[0] != ids[1]


def test_stream_error_chunk_becomes_a_stream_error():
    reader = CODEC.stream_reader()
    reader.feed(None, STREAM[0])
    error = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    assert reader.feed(None, error) == [
        n.StreamError(503, "The model is overloaded.", "UNAVAILABLE")
    ]
    assert reader.close() == []


def test_stream_final_signed_empty_text_opens_no_text_part():
    """Gemini ends a streamed text answer with an empty text part carrying the signature: a
    signed Thinking, and no empty text part a client would show (and Anthropic refuse)."""
    reader = CODEC.stream_reader()
    reader.feed(None, {"candidates": [{"content": {"role": "model", "parts": [{"text": "42"}]}}]})
    last = {"candidates": [{"content": {"parts": [{"text": "", "thoughtSignature": SIG1}]}}]}
    last["candidates"][0]["finishReason"] = "STOP"
    events = reader.feed(None, last) + reader.close()
    assert [type(e).__name__ for e in events] == [
        "PartStop",
        "PartStart",
        "PartDelta",
        "PartStop",
        "MessageStop",
    ]
    assert events[1].part == n.Thinking(attached=True) and events[2].signature == SIG1


def test_stream_reader_takes_a_json_array_stream():
    reader = CODEC.stream_reader()
    events = reader.feed(None, json.dumps(STREAM[:2]))
    assert [type(e).__name__ for e in events] == [
        "MessageStart",
        "PartStart",
        "PartDelta",
        "PartStop",
        "PartStart",
        "PartDelta",
    ]


def neutral_stream() -> list:
    """A whole answer as neutral events, as another protocol's reader makes them."""
    return [
        n.MessageStart("msg_s", "claude-sonnet-4-5", n.Usage(input_tokens=9)),
        n.PartStart(0, n.Thinking()),
        n.PartDelta(0, thinking="Need "),
        n.PartDelta(0, thinking="data."),
        n.PartStop(0),
        n.PartStart(1, n.Thinking(attached=True)),
        n.PartDelta(1, signature=SIG1),
        n.PartStop(1),
        n.PartStart(2, n.Text("")),
        n.PartDelta(2, text="Checking "),
        n.PartDelta(2, text="now."),
        n.PartStop(2),
        n.PartStart(3, n.ToolCall("toolu_a", "weather", {})),
        n.PartDelta(3, arguments='{"city": '),
        n.PartDelta(3, arguments='"Rome"}'),
        n.PartStop(3),
        n.MessageStop("tool_use", n.Usage(input_tokens=9, output_tokens=20, reasoning_tokens=5)),
    ]


def test_written_stream_parses_in_the_sdk():
    writer = CODEC.stream_writer(n.Request(model="gemini-2.5-pro"))
    chunks = [data for event in neutral_stream() for _, data in writer.write(event)] + [
        data for _, data in writer.close()
    ]
    assert all(
        "usageMetadata" not in c and "finishReason" not in c["candidates"][0] for c in chunks[:-1]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["alt"] == "sse"
        return httpx.Response(
            200, content=sse(chunks), headers={"content-type": "text/event-stream"}
        )

    got = list(
        sdk_client(handler).models.generate_content_stream(model="gemini-2.5-pro", contents="hi")
    )
    parts = [p for chunk in got for p in chunk.candidates[0].content.parts or []]
    assert [(p.text, p.thought) for p in parts[:2]] == [("Need ", True), ("data.", True)]
    assert (parts[2].text, parts[2].thought_signature) == ("Checking ", b"SIGNATURE-1")
    assert parts[3].text == "now." and parts[3].thought_signature is None
    assert (
        parts[4].function_call.args == {"city": "Rome"} and parts[4].function_call.id == "toolu_a"
    )
    last = got[-1]
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert (
        last.usage_metadata.candidates_token_count,
        last.usage_metadata.thoughts_token_count,
    ) == (15, 5)
    assert {c.response_id for c in got} == {"msg_s"} and got[0].model_version == "claude-sonnet-4-5"


def test_stream_round_trips_through_the_gemini_writer_and_reader():
    writer = CODEC.stream_writer(n.Request())
    reader = CODEC.stream_reader()
    events = []
    for event in neutral_stream():
        for _, chunk in writer.write(event):
            events += reader.feed(None, json.loads(json.dumps(chunk)))
    events += reader.close()
    # Deltas come back one per chunk; the neutral parts and their order survive.
    expected = neutral_stream()
    expected[13:15] = [n.PartDelta(3, arguments='{"city": "Rome"}')]
    expected[0].usage = n.Usage()  # the writer sends usage on the last chunk only
    assert without_ids(events) == without_ids(expected)


def test_stream_writer_ends_with_an_owed_signature_and_writes_errors():
    writer = CODEC.stream_writer(n.Request(model="gemini-2.5-flash"))
    out = []
    for event in [
        n.MessageStart("m", None),
        n.PartStart(0, n.Text("")),
        n.PartDelta(0, text="Hi"),
        n.PartStop(0),
        n.PartStart(1, n.Thinking()),
        n.PartDelta(1, signature=SIG2),
        n.PartStop(1),
        n.MessageStop("end_turn"),
        n.StreamError(429, "slow down"),
    ]:
        out += writer.write(event)
    last, error = out[-2][1], out[-1][1]
    assert last["candidates"][0]["content"]["parts"] == [{"text": "", "thoughtSignature": SIG2}]
    assert last["modelVersion"] == "gemini-2.5-flash"
    assert error == {"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}


def test_stream_keeps_a_signed_thought_with_text_on_its_own_part():
    """An Anthropic thinking block streamed to a Gemini client and read back is one Thinking
    part with its text and its signature."""
    events = [
        n.MessageStart("m", None),
        n.PartStart(0, n.Thinking()),
        n.PartDelta(0, thinking="Let me see."),
        n.PartDelta(0, signature="anthropic-sig"),
        n.PartStop(0),
        n.PartStart(1, n.Text("")),
        n.PartDelta(1, text="Hi"),
        n.PartStop(1),
        n.MessageStop("end_turn"),
    ]
    writer, reader = CODEC.stream_writer(n.Request()), CODEC.stream_reader()
    chunks = [chunk for event in events for _, chunk in writer.write(event)]
    assert chunks[1]["candidates"][0]["content"]["parts"] == [
        {"text": "", "thought": True, "thoughtSignature": "anthropic-sig"}
    ]
    read = [e for chunk in chunks for e in reader.feed(None, chunk)] + reader.close()
    assert read == events


def test_stream_writer_refuses_arguments_that_are_not_json():
    writer = CODEC.stream_writer(n.Request())
    writer.write(n.PartStart(0, n.ToolCall("c", "f")))
    writer.write(n.PartDelta(0, arguments='{"broken'))
    with pytest.raises(n.TranslationError):
        writer.write(n.PartStop(0))


def test_code_gemini_ran_reaches_the_client_as_text():
    parts = [
        {"executableCode": {"language": "PYTHON", "code": "print(2 + 2)"}},
        {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "4"}},
    ]
    payload = {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}]
    }
    expected = "\n```python\nprint(2 + 2)\n```\n\n```\n4\n```\n"
    assert n.text_of(CODEC.read_response(payload).parts) == expected
    reader = CODEC.stream_reader()
    events = reader.feed(None, payload) + reader.close()
    assert "".join(e.text for e in events if isinstance(e, n.PartDelta)) == expected


def test_part_fields_without_a_neutral_place_are_named_once():
    video = {"fileData": {"fileUri": "gs://b/v.mp4"}, "videoMetadata": {"startOffset": "1s"}}
    body = {"contents": [{"role": "user", "parts": [video, dict(video)]}]}
    request = CODEC.read_request(body)
    assert request.messages[0].parts == [n.Media(url="gs://b/v.mp4")] * 2
    assert request.dropped == ["parts.videoMetadata"]
