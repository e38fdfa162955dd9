"""The fake upstreams are the oracle of the translation tests: each must accept what its real
API accepts and refuse what it refuses. Driven by the real SDKs pointed straight at them."""

from __future__ import annotations

import base64
import json

import anthropic
import boto3
import httpx
import openai
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tests.fake_anthropic import FakeAnthropic
from tests.fake_bedrock import FakeBedrock
from tests.fake_gemini import FakeGemini
from tests.fake_llm import FakeLLM
from tests.fake_openai import FakeOpenAI
from tests.fake_server import Fail, Reply, Usage, token_count

WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
    "required": ["city"],
    "additionalProperties": False,
}
CALLS = [("get_weather", {"city": "Paris", "days": 2}), ("get_time", {"zone": "CET"})]


# ------------------------------------------------------------------ Anthropic


@pytest.fixture(scope="module")
def fake_anthropic():
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def claude(fake_anthropic):
    fake_anthropic.clear()
    fake_anthropic.scripted.clear()
    return anthropic.Anthropic(api_key="sk-ant-test", base_url=fake_anthropic.url, max_retries=0)


ANTHROPIC_TOOLS = [
    {"name": "get_weather", "description": "Weather", "input_schema": WEATHER},
    {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
]
THINKING = {"type": "enabled", "budget_tokens": 1024}


def test_anthropic_three_turn_tool_round_trip_streamed(claude, fake_anthropic):
    usage = Usage(prompt=100, cached=40, output=20, thoughts=8)
    fake_anthropic.scripted = [
        Reply(text="Checking.", thinking="Two tools.", tool_calls=CALLS, usage=usage)
    ]
    body = {
        "model": "claude-test",
        "max_tokens": 4096,
        "thinking": THINKING,
        "tools": ANTHROPIC_TOOLS,
        "messages": [{"role": "user", "content": "Weather and time in Paris?"}],
    }
    with claude.messages.stream(**body) as stream:
        events = list(stream)
        first = stream.get_final_message()
    json_deltas = [e for e in events if e.type == "input_json" and e.partial_json]
    assert len(json_deltas) >= 4, "tool input must stream in several fragments"
    assert [b.type for b in first.content] == ["thinking", "text", "tool_use", "tool_use"]
    uses = [b for b in first.content if b.type == "tool_use"]
    assert [(u.name, u.input) for u in uses] == CALLS
    assert len({u.id for u in uses}) == 2 and all(u.id.startswith("toolu_") for u in uses)
    assert first.stop_reason == "tool_use"
    assert (first.usage.input_tokens, first.usage.cache_read_input_tokens) == (60, 40)
    assert first.usage.output_tokens == 28
    assert fake_anthropic.tool_schemas[-1]["get_weather"] == json.dumps(WEATHER)

    history = [
        c.model_dump(
            exclude_none=True,
            include={"type", "thinking", "signature", "text", "id", "name", "input"},
        )
        for c in first.content
    ]
    results = [
        {"type": "tool_result", "tool_use_id": u.id, "content": r}
        for u, r in zip(uses, ["sunny", "noon"])
    ]
    body["messages"] += [
        {"role": "assistant", "content": history},
        {"role": "user", "content": results},
    ]
    second = claude.messages.create(**body)
    assert second.content[-1].text == "results: sunny | noon"

    tampered = json.loads(json.dumps(body))
    tampered["messages"][1]["content"][0]["signature"] = "forged"
    with pytest.raises(anthropic.BadRequestError, match="Invalid `signature`"):
        claude.messages.create(**tampered)


def _anthropic_refusal(body_change):
    body = {
        "model": "claude-x",
        "max_tokens": 2048,
        "messages": [{"role": "user", "content": "hi"}],
    }
    body_change(body)
    return body


def _tool_turns(body):
    use = {"type": "tool_use", "id": "toolu_1", "name": "get_time", "input": {}}
    body["tools"] = ANTHROPIC_TOOLS
    body["messages"] += [{"role": "assistant", "content": [use]}]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b.pop("max_tokens"), "max_tokens: Field required"),
        (lambda b: b.update(messages=[]), "at least one message"),
        (lambda b: b["messages"].insert(0, {"role": "assistant", "content": "x"}), "first message"),
        (lambda b: b["messages"].append({"role": "user", "content": "again"}), "must alternate"),
        (
            lambda b: b["messages"].insert(0, {"role": "developer", "content": "x"}),
            "'user', 'assistant' or 'system'",
        ),
        (lambda b: b.update(foo=1), "foo: Extra inputs are not permitted"),
        (
            lambda b: b.update(thinking={"type": "enabled", "budget_tokens": 1000}),
            "greater than or equal to 1024",
        ),
        (
            lambda b: b.update(thinking={"type": "enabled", "budget_tokens": 2048}),
            "must be greater than `thinking.budget_tokens`",
        ),
        (lambda b: b.update(thinking=THINKING, temperature=0.5), "temperature"),
        (
            lambda b: b["messages"].append(
                {"role": "assistant", "content": [{"type": "text", "text": ""}]}
            ),
            "non-empty",
        ),
        (
            lambda b: b.update(tools=[{"name": "a.b", "input_schema": {"type": "object"}}]),
            "String should match pattern",
        ),
        (
            lambda b: b.update(tools=[{"name": "a", "input_schema": {"type": "string"}}]),
            "Input should be 'object'",
        ),
        (
            lambda b: (
                _tool_turns(b),
                b["messages"].append(
                    {
                        "role": "user",
                        "content": [{"type": "tool_result", "tool_use_id": "toolu_other"}],
                    }
                ),
            ),
            "unexpected `tool_use_id`",
        ),
        (
            lambda b: (
                _tool_turns(b),
                b["messages"].append({"role": "user", "content": "no results"}),
            ),
            "without `tool_result` blocks immediately after",
        ),
        (
            lambda b: (
                _tool_turns(b),
                b.update(thinking=THINKING, max_tokens=4096),
                b["messages"].append(
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1"}]}
                ),
            ),
            "must start with a thinking block",
        ),
    ],
)
def test_anthropic_refuses_what_the_api_refuses(claude, change, message):
    with pytest.raises(anthropic.BadRequestError) as err:
        claude.post("/v1/messages", body=_anthropic_refusal(change), cast_to=httpx.Response)
    assert err.value.body["type"] == "error"
    assert err.value.body["error"]["type"] == "invalid_request_error"
    assert message in err.value.body["error"]["message"]


def test_anthropic_accepts_what_claude_code_sends(claude, fake_anthropic):
    """System turns inside messages, adaptive thinking with its text omitted, and the beta
    fields Claude Code sends are part of the current API: accepted."""
    tool = {
        "name": "Read",
        "input_schema": {"$schema": "https://json-schema.org/draft/2020-12/schema", **WEATHER},
    }
    body = {
        "model": "claude-opus-x",
        "max_tokens": 32000,
        "stream": True,
        "system": [{"type": "text", "text": "You are Claude Code."}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hello"}]},
            {"role": "system", "content": "Reminder: be brief."},
        ],
        "thinking": {"type": "adaptive", "display": "omitted"},
        "context_management": {"edits": []},
        "output_config": {"effort": "high"},
        "metadata": {"user_id": "u"},
        "tools": [tool, {**tool, "name": "Later", "defer_loading": True}],
    }
    with claude.beta.messages.stream(**{k: v for k, v in body.items() if k != "stream"}) as stream:
        message = stream.get_final_message()
    thinking, text = message.content
    assert (thinking.type, thinking.thinking) == ("thinking", "") and thinking.signature
    assert text.text == "echo: hello"
    sent = fake_anthropic.requests[-1]
    assert sent.json()["messages"][1]["role"] == "system"
    again = httpx.post(
        f"{fake_anthropic.url}/v1/messages?beta=true",
        content=sent.body,
        headers={"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"},
    )
    assert again.status_code == 200 and "message_stop" in again.text


def test_anthropic_auth_count_and_errors(claude, fake_anthropic):
    r = httpx.post(
        f"{fake_anthropic.url}/v1/messages", json={}, headers={"anthropic-version": "2023-06-01"}
    )
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    text = "count these characters"
    counted = claude.messages.count_tokens(
        model="claude-x", messages=[{"role": "user", "content": text}]
    )
    assert counted.input_tokens == token_count(text)
    fake_anthropic.scripted = [Fail(429, "slow down", retry_after=7), Fail(529, "busy")]
    kwargs = {"model": "claude-x", "max_tokens": 10, "messages": [{"role": "user", "content": "a"}]}
    with pytest.raises(anthropic.RateLimitError) as err:
        claude.messages.create(**kwargs)
    assert err.value.response.headers["retry-after"] == "7"
    with pytest.raises(anthropic.InternalServerError) as err:
        claude.messages.create(**kwargs)
    assert err.value.status_code == 529 and err.value.body["error"]["type"] == "overloaded_error"
    fake_anthropic.scripted = [Fail(500, "broke mid-way", kind="api_error", mid_stream=True)]
    with (
        pytest.raises(anthropic.APIStatusError, match="broke mid-way"),
        claude.messages.stream(**kwargs) as stream,
    ):
        list(stream)


def test_anthropic_stream_holds_its_last_chunk(claude, fake_anthropic):
    fake_anthropic.hold_last_chunk = True
    try:
        kwargs = {
            "model": "claude-x",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "a"}],
        }
        with claude.messages.stream(**kwargs) as stream:
            first = next(iter(stream))
            assert first.type == "message_start" and not fake_anthropic.last_chunk_sent.is_set()
            fake_anthropic.release.set()
            assert [e.type for e in stream][-1] == "message_stop"
    finally:
        fake_anthropic.hold_last_chunk = False


# ------------------------------------------------------------------ Gemini


@pytest.fixture(scope="module")
def fake_gemini():
    with FakeGemini() as fake:
        yield fake


@pytest.fixture
def gemini(fake_gemini):
    fake_gemini.clear()
    fake_gemini.scripted.clear()
    return genai.Client(
        api_key="AIza-test", http_options=types.HttpOptions(base_url=fake_gemini.url)
    )


def _gemini_config(include_thoughts: bool = True) -> types.GenerateContentConfig:
    declarations = [
        types.FunctionDeclaration(
            name="get_weather", description="Weather", parameters_json_schema=WEATHER
        ),
        types.FunctionDeclaration(name="get_time", parameters_json_schema={"type": "object"}),
    ]
    return types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=declarations)],
        thinking_config=types.ThinkingConfig(include_thoughts=include_thoughts),
    )


def _answers(*names: str) -> types.Content:
    parts = [
        types.Part.from_function_response(name=n, response={"result": n.upper()}) for n in names
    ]
    return types.Content(role="user", parts=parts)


def test_gemini_signed_function_calls_make_the_round_trip(gemini, fake_gemini):
    usage = Usage(prompt=50, cached=10, output=9, thoughts=4)
    fake_gemini.scripted = [Reply(thinking=["Both ", "tools."], tool_calls=CALLS, usage=usage)]
    question = types.Content(role="user", parts=[types.Part(text="Weather and time?")])
    chunks = list(
        gemini.models.generate_content_stream(
            model="gemini-3-pro", contents=[question], config=_gemini_config()
        )
    )
    parts = [p for c in chunks for p in c.candidates[0].content.parts]
    assert [p.text for p in parts if p.thought] == ["Both ", "tools."]
    calls = [p for p in parts if p.function_call]
    assert [(p.function_call.name, p.function_call.args) for p in calls] == CALLS
    assert calls[0].thought_signature and calls[1].thought_signature is None
    final = chunks[-1].usage_metadata
    assert (final.prompt_token_count, final.cached_content_token_count) == (50, 10)
    assert (final.candidates_token_count, final.thoughts_token_count) == (9, 4)
    assert chunks[0].usage_metadata.candidates_token_count is None, "partial usage first"
    assert fake_gemini.tool_schemas[-1]["get_weather"] == json.dumps(
        {"parametersJsonSchema": WEATHER}
    )

    signed = types.Content(role="model", parts=calls)
    answered = gemini.models.generate_content(
        model="gemini-3-pro",
        contents=[question, signed, _answers("get_weather", "get_time")],
        config=_gemini_config(),
    )
    thought, text = answered.candidates[0].content.parts
    assert thought.thought and text.text.startswith("results: ") and text.thought_signature

    unsigned = types.Content(
        role="model", parts=[types.Part(function_call=p.function_call) for p in calls]
    )
    with pytest.raises(genai_errors.ClientError, match="missing a thought_signature") as err:
        gemini.models.generate_content(
            model="gemini-3-pro",
            contents=[question, unsigned, _answers("get_weather", "get_time")],
            config=_gemini_config(),
        )
    assert err.value.code == 400 and err.value.status == "INVALID_ARGUMENT"
    forged = types.Content(
        role="model",
        parts=[
            types.Part(function_call=calls[0].function_call, thought_signature=b"forged"),
            calls[1],
        ],
    )
    with pytest.raises(genai_errors.ClientError, match="Corrupted thought signature"):
        gemini.models.generate_content(
            model="gemini-3-pro",
            contents=[question, forged, _answers("get_weather", "get_time")],
            config=_gemini_config(),
        )
    later = [
        question,
        unsigned,
        _answers("get_weather", "get_time"),
        types.Content(role="model", parts=[types.Part(text="Done.")]),
    ]
    later.append(types.Content(role="user", parts=[types.Part(text="Thanks")]))
    assert (
        gemini.models.generate_content(model="gemini-3-pro", contents=later).text == "echo: Thanks"
    )


def _gemini_body(**extra) -> dict:
    return {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], **extra}


def _call_turns(*answered: str) -> dict:
    call = {"functionCall": {"name": "get_time", "args": {}}, "thoughtSignature": "c2ln"}
    responses = [{"functionResponse": {"name": n, "response": {}}} for n in answered]
    contents = [
        *_gemini_body()["contents"],
        {"role": "model", "parts": [call]},
        {"role": "user", "parts": responses},
    ]
    tools = [{"functionDeclarations": [{"name": "get_time"}, {"name": "other"}]}]
    return {"contents": contents, "tools": tools}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            _gemini_body(
                tools=[
                    {
                        "functionDeclarations": [
                            {
                                "name": "f",
                                "parameters": {"type": "object"},
                                "parametersJsonSchema": {"type": "object"},
                            }
                        ]
                    }
                ]
            ),
            "cannot both be set",
        ),
        (
            _gemini_body(
                tools=[
                    {
                        "functionDeclarations": [
                            {
                                "name": "f",
                                "parameters": {"type": "object", "additionalProperties": False},
                            }
                        ]
                    }
                ]
            ),
            'Unknown name "additionalProperties"',
        ),
        (_gemini_body(generationConfig={"max_tokens": 5}), 'Unknown name "max_tokens"'),
        (_gemini_body(foo=1), 'Unknown name "foo"'),
        (
            {"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]},
            "valid role: user, model",
        ),
        ({"contents": []}, "contents is not specified"),
        (
            {
                "contents": [
                    {
                        "role": "user",
                        "parts": [
                            {"text": "a", "inlineData": {"mimeType": "image/png", "data": "AA=="}}
                        ],
                    }
                ]
            },
            "oneof field 'data' is already set",
        ),
        (_call_turns("get_time", "get_time"), "number of function response parts"),
        (_call_turns("other"), "names match"),
        (
            {
                "contents": [
                    {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}
                ]
            },
            "immediately after a function call turn",
        ),
    ],
)
def test_gemini_refuses_what_the_api_refuses(gemini, body, message):
    with pytest.raises(genai_errors.ClientError) as err:
        _raw_gemini(gemini, body)
    assert err.value.code == 400 and message in err.value.message


def _raw_gemini(client: genai.Client, body: dict):
    """The SDK's own transport with a body of our choosing (its typed API would not let the
    malformed ones through)."""
    return client._api_client.request("post", "models/gemini-3-pro:generateContent", body)


def test_gemini_streams_in_both_forms_and_needs_a_key(fake_gemini, gemini):
    url = f"{fake_gemini.url}/v1beta/models/gemini-3-pro:streamGenerateContent"
    headers = {"x-goog-api-key": "AIza-test"}
    fake_gemini.scripted = [Reply(text=["one ", "two"])]
    sse = httpx.post(url, params={"alt": "sse"}, headers=headers, json=_gemini_body()).text
    events = [json.loads(line[6:]) for line in sse.splitlines() if line.startswith("data: ")]
    texts = [p.get("text") for e in events for p in e["candidates"][0]["content"]["parts"]]
    assert texts == ["one ", "two", ""], "the text signature comes last, on an empty part"
    assert events[-1]["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"
    array = httpx.post(url, headers=headers, json=_gemini_body()).json()
    assert isinstance(array, list) and array[-1]["candidates"][0]["finishReason"] == "STOP"
    assert httpx.post(url, json=_gemini_body()).status_code == 403
    counted = gemini.models.count_tokens(model="gemini-3-pro", contents="count these")
    assert counted.total_tokens == token_count("count these")
    fake_gemini.scripted = [Fail(429, "quota", retry_after=3)]
    with pytest.raises(genai_errors.ClientError) as err:
        gemini.models.generate_content(model="gemini-3-pro", contents="x")
    assert err.value.code == 429 and err.value.status == "RESOURCE_EXHAUSTED"


def test_fake_llm_shares_the_gemini_protocol_but_stays_lenient():
    with FakeLLM() as fake:
        client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=fake.url))
        assert client.models.generate_content(model="m", contents="hi").text == "hello from fake"
        fake.scripted = [Reply(tool_calls=[("anything", {"a": 1})])]
        answer = client.models.generate_content(model="m", contents="hi")
        assert answer.function_calls[0].name == "anything"
        assert answer.candidates[0].content.parts[0].thought_signature is None


# ------------------------------------------------------------------ Bedrock

AKID, SECRET = "AKIDFAKES", "fakes-secret"
CLAUDE = "anthropic.claude-sonnet-4-20250514-v1:0"


@pytest.fixture(scope="module")
def fake_bedrock():
    with FakeBedrock({AKID: SECRET}, strict=True) as fake:
        yield fake


@pytest.fixture
def bedrock(fake_bedrock):
    fake_bedrock.clear()
    fake_bedrock.scripted.clear()
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=fake_bedrock.url,
        region_name="us-east-1",
        aws_access_key_id=AKID,
        aws_secret_access_key=SECRET,
        config=Config(retries={"max_attempts": 1}),
    )


TOOL_CONFIG = {
    "tools": [
        {"toolSpec": {"name": "get_weather", "inputSchema": {"json": WEATHER}}},
        {"toolSpec": {"name": "get_time", "inputSchema": {"json": {"type": "object"}}}},
    ]
}
REASONING = {"thinking": {"type": "enabled", "budget_tokens": 1024}}
QUESTION = [{"role": "user", "content": [{"text": "Weather and time?"}]}]


def test_converse_tool_round_trip_with_reasoning(bedrock, fake_bedrock):
    usage = Usage(prompt=30, cached=10, output=5, thoughts=2)
    fake_bedrock.scripted = [
        Reply(text="On it.", thinking="Two tools.", tool_calls=CALLS, usage=usage)
    ]
    kwargs = {
        "modelId": CLAUDE,
        "toolConfig": TOOL_CONFIG,
        "additionalModelRequestFields": REASONING,
    }
    kwargs["inferenceConfig"] = {"maxTokens": 4096}
    events = list(bedrock.converse_stream(messages=QUESTION, **kwargs)["stream"])
    starts = [
        e["contentBlockStart"]["start"]["toolUse"] for e in events if "contentBlockStart" in e
    ]
    assert [s["name"] for s in starts] == ["get_weather", "get_time"]
    assert len({s["toolUseId"] for s in starts}) == 2
    fragments = [e for e in events if "toolUse" in e.get("contentBlockDelta", {}).get("delta", {})]
    assert len(fragments) >= 4
    reasoning = [
        e["contentBlockDelta"]["delta"]["reasoningContent"]
        for e in events
        if "reasoningContent" in e.get("contentBlockDelta", {}).get("delta", {})
    ]
    assert (
        reasoning[-1]["signature"] and "".join(r.get("text", "") for r in reasoning) == "Two tools."
    )
    assert events[-1]["metadata"]["usage"]["cacheReadInputTokens"] == 10
    assert events[-1]["metadata"]["usage"]["inputTokens"] == 20
    assert fake_bedrock.tool_schemas[-1]["get_weather"] == json.dumps(WEATHER)

    fake_bedrock.scripted = [Reply(thinking="Two tools.", tool_calls=CALLS)]
    turn = bedrock.converse(messages=QUESTION, **kwargs)["output"]["message"]
    ids = [b["toolUse"]["toolUseId"] for b in turn["content"] if "toolUse" in b]
    results = {
        "role": "user",
        "content": [{"toolResult": {"toolUseId": i, "content": [{"text": i}]}} for i in ids],
    }
    answer = bedrock.converse(messages=[*QUESTION, turn, results], **kwargs)
    assert ids[0] in answer["output"]["message"]["content"][-1]["text"]
    turn["content"][0]["reasoningContent"]["reasoningText"]["signature"] = "forged"
    with pytest.raises(ClientError, match="Invalid `signature`"):
        bedrock.converse(messages=[*QUESTION, turn, results], **kwargs)
    assert all(r.signature_ok for r in fake_bedrock.requests)


def _uses_and_results(stray: bool = False) -> list[dict]:
    use = {"toolUse": {"toolUseId": "tooluse_1", "name": "get_time", "input": {}}}
    result = {
        "toolResult": {
            "toolUseId": "tooluse_2" if stray else "tooluse_1",
            "content": [{"text": "noon"}],
        }
    }
    return [
        *QUESTION,
        {"role": "assistant", "content": [use]},
        {"role": "user", "content": [result]},
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"messages": _uses_and_results(stray=True), "toolConfig": TOOL_CONFIG},
            "match no toolUse",
        ),
        ({"messages": _uses_and_results()}, "toolConfig field must be defined"),
        ({"messages": [*QUESTION, *QUESTION]}, "must alternate"),
        (
            {"messages": [{"role": "assistant", "content": [{"text": "x"}]}]},
            "must start with a user message",
        ),
        ({"messages": [{"role": "user", "content": [{"text": " "}]}]}, "is blank"),
        (
            {
                "messages": QUESTION,
                "toolConfig": {
                    "tools": [
                        {"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "string"}}}}
                    ]
                },
            },
            "must be one of the following: object",
        ),
        (
            {
                "messages": QUESTION,
                "additionalModelRequestFields": {
                    "thinking": {"type": "enabled", "budget_tokens": 100}
                },
            },
            "1024",
        ),
    ],
)
def test_converse_refuses_what_bedrock_refuses(bedrock, kwargs, message):
    with pytest.raises(ClientError) as err:
        bedrock.converse(modelId=CLAUDE, **kwargs)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert message in err.value.response["Error"]["Message"]


def _signed_post(fake: FakeBedrock, path: str, body: dict) -> httpx.Response:
    """A request botocore signs but whose body boto3's own validation would not let through."""
    request = AWSRequest(
        "POST",
        f"{fake.url}{path}",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    SigV4Auth(Credentials(AKID, SECRET), "bedrock", "us-east-1").add_auth(request)
    return httpx.post(request.url, content=request.body, headers=dict(request.headers))


def test_converse_refuses_unknown_fields_even_when_signed(fake_bedrock):
    path = f"/model/{CLAUDE}/converse"
    assert _signed_post(fake_bedrock, path, {"messages": QUESTION}).status_code == 200
    for extra in ({"model": CLAUDE}, {"max_tokens": 5}):
        answer = _signed_post(fake_bedrock, path, {"messages": QUESTION, **extra})
        assert (
            answer.status_code == 400
            and answer.headers["x-amzn-errortype"] == "ValidationException"
        )
        assert "extraneous key" in answer.json()["message"]
    assert all(r.signature_ok for r in fake_bedrock.requests[-3:])


ANTHROPIC_ON_BEDROCK = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 512,
    "messages": [{"role": "user", "content": "hi"}],
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": CLAUDE}, "extraneous key [model]"),
        ({"stream": True}, "extraneous key [stream]"),
        ({"anthropic_version": "2023-06-01"}, "bedrock-2023-05-31"),
        ({"max_tokens": None}, "required key [max_tokens]"),
        ({"messages": [{"role": "assistant", "content": "x"}]}, "first message"),
    ],
)
def test_invoke_refuses_a_bad_anthropic_body(bedrock, change, message):
    body = {**ANTHROPIC_ON_BEDROCK, **change}
    body = {k: v for k, v in body.items() if v is not None}
    with pytest.raises(ClientError) as err:
        bedrock.invoke_model(modelId=CLAUDE, body=json.dumps(body))
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert message in err.value.response["Error"]["Message"]


def test_invoke_stream_tool_use_and_hold(bedrock, fake_bedrock):
    fake_bedrock.scripted = [Reply(tool_calls=CALLS[:1])]
    tools = [{"name": "get_weather", "input_schema": WEATHER}]
    fake_bedrock.hold_last_chunk = True
    try:
        stream = bedrock.invoke_model_with_response_stream(
            modelId=CLAUDE, body=json.dumps({**ANTHROPIC_ON_BEDROCK, "tools": tools})
        )
        body = iter(stream["body"])
        first = json.loads(next(body)["chunk"]["bytes"])
        assert first["type"] == "message_start" and not fake_bedrock.last_frame_sent.is_set()
        fake_bedrock.release.set()
        events = [first, *(json.loads(e["chunk"]["bytes"]) for e in body)]
    finally:
        fake_bedrock.hold_last_chunk = False
    partial = "".join(
        e["delta"]["partial_json"]
        for e in events
        if e.get("delta", {}).get("type") == "input_json_delta"
    )
    assert json.loads(partial) == CALLS[0][1]
    assert events[-1]["type"] == "message_stop" and "amazon-bedrock-invocationMetrics" in events[-1]
    assert "ping" not in [e["type"] for e in events]


# ------------------------------------------------------------------ OpenAI Chat


@pytest.fixture(scope="module")
def fake_openai():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def chat(fake_openai):
    fake_openai.clear()
    fake_openai.scripted.clear()
    return openai.OpenAI(api_key="sk-test", base_url=f"{fake_openai.url}/v1", max_retries=0)


CHAT_TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
]


def test_chat_parallel_tool_calls_stream_in_fragments(chat, fake_openai):
    fake_openai.scripted = [
        Reply(tool_calls=CALLS, usage=Usage(prompt=20, cached=5, output=6, thoughts=3))
    ]
    ask = [{"role": "user", "content": "Weather and time?"}]
    chunks = list(
        chat.chat.completions.create(
            model="m",
            messages=ask,
            tools=CHAT_TOOLS,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for delta in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            call = calls.setdefault(
                delta.index, {"id": delta.id, "name": delta.function.name, "arguments": ""}
            )
            call["arguments"] += delta.function.arguments or ""
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == CALLS
    assert len({c["id"] for c in calls.values()}) == 2
    fragments = [c for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert len(fragments) >= 6, "ids and names first, then arguments in several fragments"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 9
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 5
    without = list(chat.chat.completions.create(model="m", messages=ask, stream=True))
    assert all(c.usage is None for c in without)

    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"]},
            }
            for c in calls.values()
        ],
    }
    results = [
        {"role": "tool", "tool_call_id": c["id"], "content": c["name"]} for c in calls.values()
    ]
    done = chat.chat.completions.create(
        model="m", messages=[*ask, assistant, *results], tools=CHAT_TOOLS
    )
    assert done.choices[0].message.content == "results: get_weather | get_time"
    with pytest.raises(openai.BadRequestError, match="preceeding message with 'tool_calls'"):
        stray = [
            *ask,
            assistant,
            *results,
            {"role": "tool", "tool_call_id": "call_nope", "content": "x"},
        ]
        chat.chat.completions.create(model="m", messages=stray)
    with pytest.raises(openai.BadRequestError, match="did not have response messages"):
        chat.chat.completions.create(model="m", messages=[*ask, assistant, results[0]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"messages": "hi"}, "expected an array of objects"),
        ({"messages": []}, "empty array"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@"}}
                        ],
                    }
                ]
            },
            "base64-encoded data URL",
        ),
        (
            {"messages": [{"role": "user", "content": "x"}], "extra_body": {"foo": 1}},
            "Unrecognized request argument supplied: foo",
        ),
        (
            {
                "messages": [{"role": "user", "content": "x"}],
                "tools": [
                    {
                        "type": "function",
                        "function": {"name": "f", "parameters": {"type": "string"}},
                    }
                ],
            },
            "schema must be a JSON Schema",
        ),
        (
            {
                "messages": [{"role": "user", "content": "x"}],
                "stream_options": {"include_usage": True},
            },
            "only allowed when 'stream' is enabled",
        ),
    ],
)
def test_chat_refuses_what_openai_refuses(chat, kwargs, message):
    with pytest.raises(openai.BadRequestError) as err:
        chat.chat.completions.create(model="m", **kwargs)
    assert (
        message in err.value.body["message"] and err.value.body["type"] == "invalid_request_error"
    )


def test_chat_needs_a_key_and_reports_errors_mid_stream(chat, fake_openai):
    missing = httpx.post(f"{fake_openai.url}/v1/chat/completions", json={})
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"
    fake_openai.scripted = [Fail(500, "broke mid-way", mid_stream=True)]
    with pytest.raises(openai.APIError, match="broke mid-way"):
        list(
            chat.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hello"}], stream=True
            )
        )


PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def test_every_fake_takes_an_image_in_its_own_form(claude, gemini, bedrock, chat):
    """Valid inputs pass (a fake that refused them would fail correct translations)."""
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    content = [image, {"type": "text", "text": "what is it?"}]
    kwargs = {
        "model": "claude-x",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": content}],
    }
    assert claude.messages.create(**kwargs).content[0].text == "echo: what is it?"
    part = types.Part.from_bytes(data=base64.b64decode(PNG), mime_type="image/png")
    assert gemini.models.generate_content(model="g", contents=[part, "what is it?"]).text
    block = {"image": {"format": "png", "source": {"bytes": base64.b64decode(PNG)}}}
    out = bedrock.converse(
        modelId=CLAUDE, messages=[{"role": "user", "content": [block, {"text": "what?"}]}]
    )
    assert out["output"]["message"]["content"][0]["text"] == "echo: what?"
    url = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    answer = chat.chat.completions.create(
        model="m", messages=[{"role": "user", "content": [url, {"type": "text", "text": "it?"}]}]
    )
    assert answer.choices[0].message.content == "echo: it?"
