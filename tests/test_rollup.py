"""Rollup units: lookup by length and key turns, boundaries and injection per dialect, bounds."""

from __future__ import annotations

import asyncio
import copy

import pytest

from calo_addon.dialects import BEDROCK as bedrock
from calo_addon.dialects import GEMINI as gemini
from calo_addon.dialects import OPENAI as openai
from calo_addon.dialects import recognise
from calo_addon.rollup import Rollup
from calo_addon.settings import RollupSettings

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


def _chat(*texts: str) -> list[dict]:
    return [{"role": ("user", "assistant")[i % 2], "content": t} for i, t in enumerate(texts)]


def test_conversations_filed_alike_never_mix():
    """Same length, same first, middle and last turn, one turn different: B never gets A's."""
    op = recognise("POST", "/v1/chat/completions", None)
    a = _chat(LONG, "a1", "same middle", "a3", "same", "same last")
    b = _chat(LONG, "b1", "same middle", "b3", "same", "same last")

    async def go():
        rollup = Rollup(RollupSettings(threshold=100), summarize)
        rollup.remember(op, rollup.plan(op, {"messages": a[:-1]}), a[-1])
        await rollup.settle()
        rollup.remember(op, rollup.plan(op, {"messages": b[:-1]}), b[-1])  # filed alike: kept out
        await rollup.settle()
        next_turn = {"role": "user", "content": "next"}
        plan_a = rollup.plan(op, {"messages": [*a, next_turn]})
        body_b = {"messages": [*b, next_turn]}
        plan_b = rollup.plan(op, copy.deepcopy(body_b))
        return rollup, plan_a, plan_b

    rollup, plan_a, plan_b = run(go())
    assert len(rollup.cache) == 1
    assert plan_a.used == "summary" and plan_a.cut == 6
    assert plan_b.used is None and plan_b.cut == 0  # verified turn by turn: no match


def test_a_request_that_continues_nothing_reads_only_a_few_turns(monkeypatch):
    """The lookup costs a few turns per remembered length, not one per turn of the request."""
    op = recognise("POST", "/v1/chat/completions", None)
    calls = []
    real = openai.canonical
    monkeypatch.setattr(openai, "canonical", lambda m: calls.append(m) or real(m))
    other = _chat(LONG, "x", "y")

    async def go():
        rollup = Rollup(RollupSettings(threshold=100), summarize)
        rollup.remember(
            op, rollup.plan(op, {"messages": other}), {"role": "assistant", "content": "z"}
        )
        await rollup.settle()
        calls.clear()
        long = _chat(*(f"turn {i} {LONG}" for i in range(199)))
        return rollup.plan(op, {"messages": long})

    plan = run(go())
    assert plan.used is None
    assert len(calls) <= 3  # last, first, middle turn of the one remembered length (4)


def test_the_summary_counts_against_max_bytes():
    op = recognise("POST", "/v1/chat/completions", None)

    async def long_summary(prompt: str) -> str:
        return "s" * 5000

    async def go():
        rollup = Rollup(RollupSettings(threshold=100, max_bytes=6000), long_summary)
        first = _chat(LONG, "a")
        rollup.remember(op, rollup.plan(op, {"messages": first[:-1]}), first[-1])
        before = rollup.cache.currsize
        await rollup.settle()
        return before, rollup.cache.currsize

    before, after = run(go())
    assert after == before + 5000


def test_a_turn_sent_in_another_form_with_the_same_content_still_matches():
    """Compared in C when every turn is a plain {role, content} pair; otherwise turn by turn,
    in canonical form, so text sent as content parts matches the same text sent as a string."""
    op = recognise("POST", "/v1/chat/completions", None)
    history = _chat(LONG, "a1")

    async def go():
        rollup = Rollup(RollupSettings(threshold=100), summarize)
        rollup.remember(op, rollup.plan(op, {"messages": history[:-1]}), history[-1])
        await rollup.settle()
        as_parts = [{"role": "user", "content": [{"type": "text", "text": LONG}]}, history[1]]
        with_name = [{**history[0], "name": "ann"}, history[1]]
        nxt = {"role": "user", "content": "next"}
        return [rollup.plan(op, {"messages": [*turns, nxt]}) for turns in (as_parts, with_name)]

    for plan in run(go()):
        assert plan.used == "summary" and plan.cut == 2
