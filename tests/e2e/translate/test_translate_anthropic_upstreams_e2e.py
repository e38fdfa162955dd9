"""The anthropic SDK (and Claude Code's own requests) through the real proxy: what is
particular to each upstream kind. Passthrough to Anthropic keeps the bytes and swaps the key;
Bedrock takes Anthropic models through InvokeModel and the others through Converse; Gemini
gets the tools' whole JSON Schema; the log line says what was translated and dropped.
The fakes and the proxy: tests/e2e/translate_fleet.py.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.e2e.anthropic_sdk import SYSTEM, Sent, ask, client, texts
from tests.e2e.translate_fleet import (
    ANTHROPIC_KEY,
    GEMINI_MODEL,
    PROXY_KEY,
    log_line_for,
    model_for,
)
from tests.fake_server import Reply

# ------------------------------------------------------------------ passthrough to Anthropic


def test_anthropic_passthrough_swaps_the_key_and_keeps_the_bytes(proxy, fleet):
    sent = Sent()
    c = client(
        proxy, sent=sent, default_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"}
    )
    body = {
        "model": model_for("anthropic"),
        "max_tokens": 64,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": "hi"}],
        "metadata": {"user_id": "u-1"},
    }
    assert texts(c.messages.create(**body)) == "echo: hi"
    with c.messages.stream(**body) as s:
        assert texts(s.get_final_message()) == "echo: hi"
    assert len(fleet.anthropic.requests) == 2
    for client_request, upstream in zip(sent.requests, fleet.anthropic.requests, strict=True):
        assert upstream.body == client_request.content  # nothing rewritten: byte for byte
        assert upstream.headers["x-api-key"] == ANTHROPIC_KEY
        assert "authorization" not in upstream.headers
        assert upstream.headers["anthropic-version"] == client_request.headers["anthropic-version"]
        assert upstream.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    line = log_line_for(proxy, model_for("anthropic"))
    assert "translated" not in line and line["api"] == "anthropic"


def test_x_api_key_from_the_client_works_too(proxy, fleet):
    """Claude Code with ANTHROPIC_API_KEY sends x-api-key (and ?beta=true)."""
    answer = httpx.post(
        f"{proxy.url}/v1/messages?beta=true",
        headers={"x-api-key": PROXY_KEY, "anthropic-version": "2023-06-01"},
        json={
            "model": model_for("gemini"),
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}],
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["content"][-1]["text"] == "echo: hi"


# ------------------------------------------------------------------ Bedrock specifics


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "invoke-stream"])
def test_claude_on_bedrock_uses_invoke_model_with_the_bedrock_messages_body(proxy, fleet, stream):
    answer = ask(
        client(proxy),
        stream,
        model=model_for("bedrock-claude"),
        system=SYSTEM,
        messages=[{"role": "user", "content": "hi"}],
    )
    assert texts(answer) == "echo: hi"
    (upstream,) = fleet.bedrock.requests
    operation = "invoke-with-response-stream" if stream else "invoke"
    assert upstream.path == f"/model/anthropic.claude-sonnet-4-20250514-v1%3A0/{operation}"
    body = upstream.json()
    assert body["anthropic_version"] == "bedrock-2023-05-31"
    assert "model" not in body and "stream" not in body
    assert upstream.signature_ok is True


@pytest.mark.parametrize("stream", [False, True], ids=["converse", "converse-stream"])
def test_other_bedrock_models_use_converse(proxy, fleet, stream):
    answer = ask(
        client(proxy),
        stream,
        model=model_for("bedrock-nova"),
        messages=[{"role": "user", "content": "hi"}],
    )
    assert texts(answer) == "echo: hi"
    (upstream,) = fleet.bedrock.requests
    operation = "converse-stream" if stream else "converse"
    assert upstream.path == f"/model/amazon.nova-pro-v1%3A0/{operation}"
    assert upstream.signature_ok is True


# ------------------------------------------------------------------ Gemini specifics


def test_a_full_json_schema_reaches_gemini_intact(proxy, fleet):
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {"point": {"type": "object", "properties": {"x": {"type": "number"}}}},
        "properties": {
            "where": {"$ref": "#/$defs/point"},
            "mode": {"anyOf": [{"type": "string", "const": "fast"}, {"type": "integer"}]},
            "count": {"type": "integer", "exclusiveMinimum": 0},
            "tags": {"type": "object", "propertyNames": {"pattern": "^[a-z]+$"}},
        },
        "required": ["where"],
        "additionalProperties": False,
    }
    tool = {"name": "plot", "description": "Plot a point.", "input_schema": schema}
    ask(
        client(proxy),
        False,
        model=model_for("gemini"),
        messages=[{"role": "user", "content": "plot"}],
        tools=[tool],
    )
    assert fleet.gemini.tool_schemas[-1]["plot"] == json.dumps({"parametersJsonSchema": schema})


def test_the_log_line_of_a_translated_call(proxy, fleet):
    model = model_for("gemini", "claude-log")
    ask(
        client(proxy),
        True,
        model=model,
        messages=[{"role": "user", "content": "hi"}],
        metadata={"user_id": "u-1"},
    )
    line = log_line_for(proxy, model)
    assert line["translated"] == "anthropic -> gemini"
    assert line["upstream_api"] == "gemini" and line["upstream_model"] == GEMINI_MODEL
    assert "metadata" in line["dropped"]
    assert line["usage"]["input_tokens"] > 0 and line["usage"]["output_tokens"] > 0
    assert line["status"] == 200 and line["streaming"] is True


def test_count_tokens_passes_through_to_anthropic(proxy, fleet):
    count = client(proxy).messages.count_tokens(
        model=model_for("anthropic"), messages=[{"role": "user", "content": "count these words"}]
    )
    assert count.input_tokens == 5
    assert fleet.anthropic.last_call().path == "/v1/messages/count_tokens"


@pytest.mark.parametrize("kind", ["gemini", "bedrock-claude", "chat"])
def test_count_tokens_is_translated(proxy, fleet, kind):
    count = client(proxy).messages.count_tokens(
        model=model_for(kind), messages=[{"role": "user", "content": "count these words"}]
    )
    assert count.input_tokens > 0


def test_anthropic_beta_reaches_bedrock_in_the_body(proxy, fleet):
    c = client(proxy, default_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"})
    ask(c, False, model=model_for("bedrock-claude"), messages=[{"role": "user", "content": "hi"}])
    body = fleet.bedrock.last_call().json()
    assert body["anthropic_beta"] == ["interleaved-thinking-2025-05-14"]


def claude_code_body(model: str, messages: list) -> dict:
    """A turn shaped as Claude Code 2.1 sends it (reference/agent-clis.md)."""
    return {
        "model": model,
        "max_tokens": 32000,
        "stream": True,
        "system": [{"type": "text", "text": "You are Claude Code."}],
        "messages": [{"role": "system", "content": "Env: linux"}, *messages],
        "thinking": {"type": "adaptive", "display": "omitted"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"},
        "metadata": {"user_id": "user_abc_account_def_session_ghi"},
        "tools": [
            {
                "name": "Bash",
                "description": "Run a command.",
                "input_schema": {
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "type": "object",
                    "properties": {"command": {"type": "string"}},
                    "required": ["command"],
                    "additionalProperties": False,
                },
            },
            {
                "name": "WebFetch",
                "description": "Fetch a page.",
                "input_schema": {"type": "object", "properties": {"url": {"type": "string"}}},
                "defer_loading": True,
            },
        ],
    }


def sse_events(text: str) -> list[dict]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


@pytest.mark.parametrize("kind", ["gemini", "bedrock-claude", "bedrock-nova", "chat"])
def test_a_claude_code_turn_and_its_tool_round_trip(proxy, fleet, kind):
    """Claude Code's own body (system turns in messages, adaptive thinking, advisory fields,
    defer_loading), streamed, and its next turn with the thinking block sent back."""
    fleet.fake(kind).scripted.append(Reply(tool_calls=[("Bash", {"command": "ls"})]))
    headers = {
        "authorization": f"Bearer {PROXY_KEY}",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
        "x-app": "cli",
    }
    url = f"{proxy.url}/v1/messages?beta=true"
    model = model_for(kind, "claude-opus-4-5")
    first = [{"role": "user", "content": [{"type": "text", "text": "list files"}]}]
    answer = httpx.post(url, headers=headers, json=claude_code_body(model, first), timeout=20)
    assert answer.status_code == 200, answer.text
    events = sse_events(answer.text)
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
    blocks: dict[int, dict] = {}
    for event in events:
        if event["type"] == "content_block_start":
            blocks[event["index"]] = dict(event["content_block"])
        elif event["type"] == "content_block_delta":
            delta, block = event["delta"], blocks[event["index"]]
            if delta["type"] == "input_json_delta":
                block["partial"] = block.get("partial", "") + delta["partial_json"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            else:
                block["text"] += delta["text"]
    content = [blocks[i] for i in sorted(blocks)]
    for block in content:
        if block["type"] == "tool_use":
            block["input"] = json.loads(block.pop("partial", "") or "{}")
    (call,) = [b for b in content if b["type"] == "tool_use"]
    assert call["name"] == "Bash" and call["input"] == {"command": "ls"}
    second = [
        *first,
        {"role": "assistant", "content": content},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "a.txt"}],
        },
    ]
    answer = httpx.post(url, headers=headers, json=claude_code_body(model, second), timeout=20)
    assert answer.status_code == 200, answer.text
    text = "".join(
        e["delta"].get("text", "")
        for e in sse_events(answer.text)
        if e["type"] == "content_block_delta"
    )
    assert "a.txt" in text
    line = log_line_for(proxy, model)
    assert {"metadata", "context_management"} <= set(line["dropped"])
