"""Rollup units: prefix hashing, boundaries per dialect, injection per dialect, cache bounds."""

from __future__ import annotations

import asyncio
import copy

import pytest

from calo_addon.config import RollupSettings
from calo_addon.dialects import bedrock, gemini, openai, recognise
from calo_addon.rollup import Rollup

LONG = "x" * 200


def run(coro):
    return asyncio.run(coro)


async def summarize(prompt: str) -> str:
    return f"SUMMARY({len(prompt)})"


def remembered_then_planned(op, body, reply, next_turns, **settings):
    """Send `body`, remember `reply`, wait for the summary, then plan the next request."""

    async def go():
        rollup = Rollup(RollupSettings(threshold=100, **settings), summarize)
        first = rollup.plan(op, copy.deepcopy(body))
        rollup.remember(op, first, reply)
        await rollup.settle()
        follow = copy.deepcopy(body)
        key = "contents" if op.dialect is gemini else "messages"
        follow[key] = [*follow[key], reply, *next_turns]
        plan = rollup.plan(op, follow)
        return rollup, plan, follow

    return run(go())


def test_openai_summary_replaces_turns_and_keeps_client_system():
    op = recognise("POST", "/v1/chat/completions", None)
    body = {
        "model": "m",
        "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": LONG}],
    }
    reply = {"role": "assistant", "content": "A"}
    _, plan, sent = remembered_then_planned(op, body, reply, [{"role": "user", "content": "next"}])
    assert plan.used == "summary" and plan.cut == 2
    first, summary, rest = sent["messages"]
    assert first == {"role": "system", "content": "S"} and rest == {
        "role": "user",
        "content": "next",
    }
    assert summary["role"] == "system"
    assert summary["content"].startswith(
        "Summary of the earlier part of this conversation:\nSUMMARY("
    )


def test_reply_with_tool_call_is_no_boundary():
    op = recognise("POST", "/v1/chat/completions", None)
    body = {"messages": [{"role": "user", "content": LONG}]}
    reply = {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function"}]}
    rollup, plan, sent = remembered_then_planned(
        op, body, reply, [{"role": "tool", "tool_call_id": "c1", "content": "r"}]
    )
    assert len(rollup.cache) == 0 and plan.used is None
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "tool"]


@pytest.mark.parametrize(
    ("reply", "boundary"),
    [
        ({"role": "model", "parts": [{"text": "a"}]}, True),
        ({"role": "model", "parts": [{"functionCall": {"name": "f"}}]}, False),
        ({"role": "user", "parts": [{"text": "a"}]}, False),
    ],
)
def test_gemini_boundaries(reply, boundary):
    assert gemini.is_boundary(reply) is boundary


@pytest.mark.parametrize(
    ("reply", "boundary"),
    [
        ({"role": "assistant", "content": [{"text": "a"}]}, True),
        ({"role": "assistant", "content": [{"toolUse": {"toolUseId": "t"}}]}, False),
        ({"role": "assistant", "content": [{"type": "tool_use", "id": "t"}]}, False),
    ],
)
def test_bedrock_boundaries(reply, boundary):
    assert bedrock.is_boundary(reply) is boundary


def test_gemini_injects_system_instruction():
    op = recognise("POST", "/v1beta/models/g:generateContent", None)
    body = {
        "contents": [{"role": "user", "parts": [{"text": LONG}]}],
        "systemInstruction": {"parts": [{"text": "S"}]},
    }
    reply = {"role": "model", "parts": [{"text": "A"}]}
    _, plan, sent = remembered_then_planned(
        op, body, reply, [{"role": "user", "parts": [{"text": "n"}]}]
    )
    assert plan.used == "summary"
    assert [p["text"][:7] for p in sent["systemInstruction"]["parts"]] == ["Summary", "S"]
    assert sent["contents"] == [{"role": "user", "parts": [{"text": "n"}]}]


def test_bedrock_anthropic_string_system_and_converse_array_system():
    invoke = recognise("POST", "/model/anthropic.claude/invoke", None)
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "system": "S",
        "messages": [{"role": "user", "content": LONG}],
    }
    _, _, sent = remembered_then_planned(
        invoke, body, {"role": "assistant", "content": "A"}, [{"role": "user", "content": "n"}]
    )
    assert sent["system"].startswith("Summary") and sent["system"].endswith("\n\nS")
    converse = recognise("POST", "/model/amazon.nova/converse", None)
    body = {"messages": [{"role": "user", "content": [{"text": LONG}]}]}
    reply = {"role": "assistant", "content": [{"text": "A"}]}
    _, _, sent = remembered_then_planned(
        converse, body, reply, [{"role": "user", "content": [{"text": "n"}]}]
    )
    assert sent["system"][0]["text"].startswith("Summary") and len(sent["messages"]) == 1


def test_interleaved_conversations_never_mix():
    op = recognise("POST", "/v1/chat/completions", None)

    async def go():
        rollup = Rollup(RollupSettings(threshold=100), summarize)
        for name in ("alice", "bob"):
            body = {"messages": [{"role": "user", "content": f"{name} {LONG}"}]}
            rollup.remember(op, rollup.plan(op, body), {"role": "assistant", "content": name})
        await rollup.settle()
        carol = {
            "messages": [
                {"role": "user", "content": f"carol {LONG}"},
                {"role": "assistant", "content": "alice"},
                {"role": "user", "content": "n"},
            ]
        }
        return rollup, rollup.plan(op, carol)

    rollup, plan = run(go())
    assert len(rollup.cache) == 2 and plan.used is None


def test_cache_bounded_by_entries_and_bytes():
    op = recognise("POST", "/v1/chat/completions", None)

    async def go(**settings):
        rollup = Rollup(RollupSettings(threshold=10, **settings), summarize)
        for i in range(10):
            body = {"messages": [{"role": "user", "content": f"{i} {LONG}"}]}
            rollup.remember(op, rollup.plan(op, body), {"role": "assistant", "content": "a"})
        await rollup.settle()
        return rollup

    assert len(run(go(cache_size=3)).cache) == 3
    by_bytes = run(go(cache_size=100, max_bytes=1000))
    assert by_bytes.cache.currsize <= 1000 and 1 <= len(by_bytes.cache) < 10


def test_summariser_failure_keeps_verbatim():
    op = recognise("POST", "/v1/chat/completions", None)

    async def failing(prompt):
        raise TimeoutError("too slow")

    async def go():
        rollup = Rollup(RollupSettings(threshold=10), failing)
        body = {"messages": [{"role": "user", "content": LONG}]}
        rollup.remember(op, rollup.plan(op, body), {"role": "assistant", "content": "a"})
        await rollup.settle()
        follow = {
            "messages": [
                *body["messages"],
                {"role": "assistant", "content": "a"},
                {"role": "user", "content": "n"},
            ]
        }
        before = copy.deepcopy(follow)
        return rollup.plan(op, follow), follow, before

    plan, follow, before = run(go())
    assert plan.used == "verbatim" and follow == before


def test_non_conversation_requests_are_untouched():
    for method, path in (
        ("POST", "/v1/embeddings"),
        ("POST", "/v1beta/models/g:countTokens"),
        ("GET", "/v1/models"),
    ):
        assert recognise(method, path, None).conversation is False
    assert openai.turns(recognise("POST", "/v1/embeddings", None), {"input": "x"}) is None
