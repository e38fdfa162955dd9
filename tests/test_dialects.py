"""Dialect units: recognition (SPEC section 3), model in path and body, upstream paths, error
shapes and usage."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mitmproxy.test import tutils

from calo_addon import dialects
from calo_addon.dialects import GEMINI as gemini
from calo_addon.dialects import OPENAI as openai
from calo_addon.dialects import Operation, Refusal, recognise
from calo_addon.dialects.bedrock import BEDROCK

CALLS = [
    "generateContent",
    "streamGenerateContent",
    "embedContent",
    "batchEmbedContents",
    "countTokens",
]


@pytest.mark.parametrize("version", ["v1beta", "v1"])
@pytest.mark.parametrize("call", CALLS)
def test_gemini_calls(version, call):
    op = recognise("POST", f"/{version}/models/gemini-2.5-flash:{call}", None)
    assert op.dialect is gemini and op.name == call
    assert op.path_model == "gemini-2.5-flash" and op.needs_body
    assert op.path_streams is (call == "streamGenerateContent")
    assert op.conversation is (call in ("generateContent", "streamGenerateContent"))


@pytest.mark.parametrize(
    ("path", "key_source", "name", "model"),
    [
        ("/v1beta/models", None, "models.list", None),
        ("/v1beta/models/gemini-pro", None, "models.get", "gemini-pro"),
        ("/v1/models/gemini-pro", "authorization", "models.get", "gemini-pro"),
        ("/v1/models", "x-goog-api-key", "models.list", None),
        ("/v1/models", "query", "models.list", None),
    ],
)
def test_gemini_model_listing(path, key_source, name, model):
    op = recognise("GET", path, key_source)
    assert (op.dialect, op.name, op.path_model, op.needs_body) == (gemini, name, model, False)


@pytest.mark.parametrize("key_source", [None, "authorization", "x-api-key"])
def test_get_v1_models_is_openai_unless_the_key_came_googles_way(key_source):
    op = recognise("GET", "/v1/models", key_source)
    assert (op.dialect, op.name) == (openai, "models.list")


@pytest.mark.parametrize("prefix", ["/v1", "/v1beta/openai"])
@pytest.mark.parametrize(
    ("method", "tail", "name"),
    [
        ("POST", "chat/completions", "chat.completions"),
        ("POST", "embeddings", "embeddings"),
        ("GET", "models", "models.list"),
    ],
)
def test_openai_paths(prefix, method, tail, name):
    op = recognise(method, f"{prefix}/{tail}", "authorization")
    assert (op.dialect, op.name, op.path_model) == (openai, name, None)
    assert op.needs_body is (method == "POST")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1beta/models/m:generateContent"),
        ("POST", "/v1beta/models/m:deleteEverything"),
        ("POST", "/v2/models/m:generateContent"),
        ("GET", "/v1/chat/completions"),
        ("POST", "/v1/completions"),
        ("GET", "/"),
        ("GET", "/health"),
    ],
)
def test_other_requests_are_not_recognised(method, path):
    assert recognise(method, path, None) is None


def test_percent_encoded_model_is_decoded():
    op = recognise("POST", "/v1beta/models/gemini%2D2.5%2Dflash%40001:generateContent", None)
    assert op.path_model == "gemini-2.5-flash@001"


@pytest.mark.parametrize(
    "segment", ["..", "%2e%2e", "%2E%2E", "a%2Fb", "a/../b", "a%00b", "a%0Ab", "a%5Cb", "."]
)
def test_models_that_leave_their_segment_are_refused(segment):
    with pytest.raises(Refusal) as err:
        recognise("POST", f"/v1beta/models/{segment}:generateContent", None)
    assert err.value.status == 400


def test_openai_model_comes_from_the_body():
    op = recognise("POST", "/v1/chat/completions", None)
    assert openai.model(op, {"model": "gpt-4o", "messages": []}) == "gpt-4o"
    assert openai.model(op, {"messages": []}) is None
    assert openai.streams(op, tutils.treq(), {"model": "m", "stream": True}) is True


@pytest.mark.parametrize("body", [[], "text", None, 3])
def test_openai_body_must_be_an_object(body):
    op = recognise("POST", "/v1/chat/completions", None)
    with pytest.raises(Refusal) as err:
        openai.model(op, body)
    assert err.value.status == 400


def test_openai_model_must_be_a_string():
    op = recognise("POST", "/v1/embeddings", None)
    with pytest.raises(Refusal) as err:
        openai.model(op, {"model": 5})
    assert err.value.status == 400


def test_gemini_set_model_rewrites_the_path_and_keeps_the_query():
    path = "/v1beta/models/old:streamGenerateContent?alt=sse&x=1"
    request = tutils.treq(path=path.encode())
    op = recognise("POST", path.partition("?")[0], None)
    assert gemini.set_model(op, request, {}, "gemini-2.5-pro") is False
    assert request.path == "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse&x=1"


def test_openai_set_model_rewrites_the_body():
    op = recognise("POST", "/v1/chat/completions", None)
    body = {"model": "gpt-4o", "messages": []}
    request = tutils.treq(path=b"/v1/chat/completions")
    assert openai.set_model(op, request, body, "gpt-4o-mini") is True
    assert body == {"model": "gpt-4o-mini", "messages": []}
    assert request.path == "/v1/chat/completions"


@pytest.mark.parametrize(
    ("path", "google", "expected"),
    [
        ("/v1/chat/completions", True, "/v1beta/openai/chat/completions"),
        ("/v1/embeddings", True, "/v1beta/openai/embeddings"),
        ("/v1/models", True, "/v1beta/openai/models"),
        ("/v1beta/openai/chat/completions", True, "/v1beta/openai/chat/completions"),
        ("/v1beta/openai/chat/completions", False, "/v1/chat/completions"),
        ("/v1/chat/completions", False, "/v1/chat/completions"),
    ],
)
def test_openai_upstream_path(path, google, expected):
    op = recognise("POST", "/v1/chat/completions", None)
    assert openai.upstream_path(op, path, gemini if google else openai) == expected


def test_gemini_upstream_path_is_unchanged():
    op = recognise("POST", "/v1/models/m:generateContent", None)
    assert gemini.upstream_path(op, "/v1/models/m:generateContent", gemini) == (
        "/v1/models/m:generateContent"
    )


def body_of(response) -> dict:
    assert response.headers["content-type"] == "application/json"
    return json.loads(response.content)


def test_gemini_error_shape():
    response = gemini.error(401, "no key")
    assert response.status_code == 401
    assert body_of(response) == {
        "error": {"code": 401, "message": "no key", "status": "UNAUTHENTICATED"}
    }
    assert body_of(gemini.error(404, "x"))["error"]["status"] == "NOT_FOUND"
    assert body_of(gemini.error(400, "x"))["error"]["status"] == "INVALID_ARGUMENT"


def test_openai_error_shape():
    assert body_of(openai.error(401, "bad key")) == {
        "error": {
            "message": "bad key",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    server = body_of(openai.error(503, "down"))["error"]
    assert (server["type"], server["code"]) == ("server_error", None)
    assert body_of(openai.error(429, "slow"))["error"]["type"] == "rate_limit_error"


def test_usage():
    meta = {"promptTokenCount": 3, "candidatesTokenCount": 5, "thoughtsTokenCount": 2}
    gemini_usage = gemini.usage(None, {"usageMetadata": {**meta, "cachedContentTokenCount": 1}})
    assert (gemini_usage.input_tokens, gemini_usage.output_tokens) == (3, 7)  # thoughts count
    assert (gemini_usage.cached_input_tokens, gemini_usage.reasoning_tokens) == (1, 2)
    data = {
        "prompt_tokens": 2,
        "completion_tokens": 7,
        "total_tokens": 9,
        "prompt_tokens_details": {"cached_tokens": 1},
        "completion_tokens_details": {"reasoning_tokens": 4},
    }
    openai_usage = openai.usage(None, {"usage": data})
    assert (openai_usage.input_tokens, openai_usage.output_tokens) == (2, 7)
    assert (openai_usage.cached_input_tokens, openai_usage.reasoning_tokens) == (1, 4)
    assert openai_usage.total_tokens == 9
    assert gemini.usage(None, {"candidates": []}) is None and gemini.usage(None, [1]) is None
    assert openai.usage(None, {"usage": "lots"}) is None and openai.usage(None, None) is None
    assert openai.usage(None, {"usage": {"prompt_tokens": True}}).input_tokens is None


def test_turn_identity_counts_every_part_not_only_text():
    """Issue 10.15: two turns with the same text and different images are different turns."""

    def image(data):
        return {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}

    text = {"type": "text", "text": "what is this?"}
    one = {"role": "user", "content": [text, image("AAAA")]}
    other = {"role": "user", "content": [text, image("BBBB")]}
    assert openai.canonical(one) != openai.canonical(other)
    assert openai.canonical(one) == openai.canonical(json.loads(json.dumps(one)))
    gemini_one = {"role": "user", "parts": [{"text": "x"}, {"inlineData": {"data": "AAAA"}}]}
    gemini_other = {"role": "user", "parts": [{"text": "x"}, {"inlineData": {"data": "BBBB"}}]}
    assert gemini.canonical(gemini_one) != gemini.canonical(gemini_other)
    block = {"type": "image", "source": {"type": "base64", "data": "AAAA"}}
    converse_one = {"role": "user", "content": [{"text": "x"}, block]}
    converse_other = {
        "role": "user",
        "content": [{"text": "x"}, {**block, "source": {"data": "B"}}],
    }
    assert BEDROCK.canonical(converse_one) != BEDROCK.canonical(converse_other)


def test_a_malformed_tool_calls_field_is_no_crash():
    """Issue 10.14: `"tool_calls": 5` in a message is the client's problem, not an exception."""
    message = {"role": "assistant", "content": "hi", "tool_calls": 5}
    assert openai.canonical(message) == ("assistant", "hi", ())
    assert openai.is_boundary(message) is False


def test_error_shape_for_unrecognised_paths():
    assert dialects.dialect_for_path("/v1beta/whatever") is gemini
    assert dialects.dialect_for_path("/v1/assistants") is openai


path_parts = st.one_of(
    st.sampled_from(
        [
            "v1",
            "v1beta",
            "openai",
            "models",
            "chat",
            "completions",
            "embeddings",
            "m:generateContent",
            "%2e%2e",
            "%2F",
            "%00",
            "..",
            "model",
            "invoke",
            "",
        ]
    ),
    st.text(max_size=10),
)


@given(
    method=st.one_of(st.sampled_from(["GET", "POST", "PUT"]), st.text(max_size=6)),
    path=st.lists(path_parts, max_size=6).map(lambda p: "/" + "/".join(p)),
    key_source=st.sampled_from([None, "authorization", "x-goog-api-key", "x-api-key", "query"]),
)
def test_recognise_returns_an_operation_or_none_or_refuses(method, path, key_source):
    try:
        op = recognise(method, path, key_source)
    except Refusal as refusal:
        assert refusal.status == 400
        return
    assert op is None or isinstance(op, Operation)
