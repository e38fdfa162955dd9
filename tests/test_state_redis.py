"""The Redis backend against a real redis-server (tests/redis_server.py): two RedisState objects
in one event loop stand for two processes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

import pytest

from calo_addon.keypool import KeyPool
from calo_addon.state import BLOCK
from calo_addon.state_redis import RedisState
from calo_addon.translate._responses_items import write_input_items
from calo_addon.translate.conversations import CHECKPOINT_EVERY, ConversationMemory
from calo_addon.translate.neutral import Message, Text

pytestmark = pytest.mark.timeout(60)


async def eventually(predicate, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.02)


async def started(url: str) -> RedisState:
    state = RedisState(url)
    await state.start()
    await eventually(lambda: state.up)
    return state


def run(coro):
    return asyncio.run(coro)


def test_a_change_reaches_the_other_process_and_a_late_one_reads_it(redis_server):
    async def go():
        a, b = await started(redis_server.url), await started(redis_server.url)
        seen: list = []
        b.space("health").watch(lambda key, value: seen.append((key, value)))
        a.space("health").put("api:443", {"reason": "refused"}, 60)
        a.space("health").put("gone:443", {"reason": "x"}, 0.001)  # expired before it is read
        await eventually(lambda: ("api:443", {"reason": "refused"}) in seen)
        late = await started(redis_server.url)  # joins after the change was made
        replayed: list = []
        late.space("health").watch(lambda key, value: replayed.append((key, value)))
        await eventually(lambda: replayed)
        assert replayed == [("api:443", {"reason": "refused"})]  # not the expired one
        a.space("health").delete("api:443")
        await eventually(lambda: ("api:443", None) in seen and ("api:443", None) in replayed)
        for state in (a, b, late):
            await state.stop()

    run(go())


def test_a_process_does_not_hear_its_own_changes(redis_server):
    async def go():
        a, b = await started(redis_server.url), await started(redis_server.url)
        mine, theirs = [], []
        a.space("s").watch(lambda k, v: mine.append(k), replay=False)
        b.space("s").watch(lambda k, v: theirs.append(k), replay=False)
        a.space("s").put("one", 1, 60)
        await eventually(lambda: theirs == ["one"])
        await a.stop()
        await b.stop()
        return mine

    assert run(go()) == []


def test_a_kept_entry_is_fetched_by_another_process_and_sent_to_no_one(redis_server):
    """`keep` stores without publishing: a watcher elsewhere hears nothing, and any process
    fetches it (None when absent or expired)."""

    async def go():
        a, b = await started(redis_server.url), await started(redis_server.url)
        heard: list = []
        b.space("conversations").watch(lambda key, value: heard.append(key), replay=False)
        a.space("conversations").keep("resp_1", [{"type": "message"}], 60)
        a.space("conversations").keep("resp_old", [1], 0.001)
        a.space("conversations").put("told", 1, 60)  # published after them: the channel works
        await eventually(lambda: "told" in heard)
        fetched = await b.space("conversations").fetch("resp_1")
        absent = await b.space("conversations").fetch("resp_2")
        expired = await b.space("conversations").fetch("resp_old")
        # a fresh start: kept before the connection is made, read while it is being made
        early = RedisState(redis_server.url)
        queued = early.space("conversations").keep("resp_early", ["e"], 60)
        await early.start()
        late = RedisState(redis_server.url)
        await late.start()
        read_while_connecting = await late.space("conversations").fetch("resp_early")
        for state in (a, b, early, late):
            await state.stop()
        return heard, fetched, absent, expired, queued, read_while_connecting

    heard, fetched, absent, expired, queued, read_while_connecting = run(go())
    assert heard == ["told"]
    assert fetched == [{"type": "message"}] and absent is None and expired is None
    assert queued is True and read_while_connecting == ["e"]


def test_a_conversation_is_stored_as_links_and_read_back_whole_elsewhere(redis_server):
    """20 answers, each continuing the one before: Redis holds whole copies only every
    CHECKPOINT_EVERY answers and links between them; another process reads any of them back
    whole, stopping early at one it holds."""

    async def go():
        a, b = await started(redis_server.url), await started(redis_server.url)
        here, there = ConversationMemory(), ConversationMemory()
        here.share(a)
        there.share(b)
        messages: list[Message] = []
        previous = None
        for n in range(20):
            turns = len(messages)
            messages = [*messages, Message("user", [Text(f"q{n}")])]
            messages = [*messages, Message("assistant", [Text(f"a{n}")])]
            here.remember(f"resp_{n}", messages, previous, turns)
            previous = f"resp_{n}"
        await eventually(lambda: a._pending == deque())
        stored = {}
        for n in range(20):
            stored[n] = await a.space("conversations").fetch(f"resp_{n}")
        await there.fetch_continued({"previous_response_id": "resp_19"})
        await there.fetch_continued({"previous_response_id": "resp_5"})
        turns = len(messages)
        messages = [*messages, Message("user", [Text("q20")]), Message("assistant", [Text("a20")])]
        here.remember("resp_20", messages, "resp_19", turns)
        here._cache["resp_20"].since -= 3600  # its chain's whole copy is as old as the TTL
        here.remember("resp_21", [*messages, Message("user", [Text("q21")])], "resp_20", turns + 2)
        await eventually(lambda: a._pending == deque())
        stored[21] = await a.space("conversations").fetch("resp_21")
        reads = []
        fetch = b.space("conversations").fetch

        async def counted(key):
            reads.append(key)
            return await fetch(key)

        b.space("conversations").fetch = counted
        await there.fetch_continued({"previous_response_id": "resp_20"})
        assert reads == ["resp_20"]  # and resp_19, held here already, was not read again
        await a.stop()
        await b.stop()
        return stored, here, there

    stored, here, there = run(go())
    whole = [n for n, entry in stored.items() if "prev" not in entry]
    assert whole == [0, CHECKPOINT_EVERY, 21]  # 21: the last whole copy was too old to link to
    assert stored[19].pop("since") == stored[CHECKPOINT_EVERY]["since"]
    assert stored[19] == {
        "prev": "resp_18",
        "depth": 19 - CHECKPOINT_EVERY,
        "items": write_input_items(
            [Message("user", [Text("q19")]), Message("assistant", [Text("a19")])]
        ),
    }
    for n in (5, 19, 20):
        assert write_input_items(there.recall(f"resp_{n}")) == write_input_items(
            here.recall(f"resp_{n}")
        )


def test_admit_is_atomic_across_processes(redis_server):
    async def go():
        a, b = await started(redis_server.url), await started(redis_server.url)
        tries = [s.admit("client:x:rpm", 1, 25, 60) for s in (a, b) for _ in range(20)]
        admitted = sum(await asyncio.gather(*tries))
        total = await a.incr("client:x:tokens", 7, ttl=60) + await b.incr("client:x:tokens", 3)
        await a.stop()
        await b.stop()
        return admitted, total

    assert run(go()) == (25, 7 + 10)


def test_rotation_blocks_never_overlap_between_processes(redis_server):
    async def go():
        a, b = await started(redis_server.url), await started(redis_server.url)
        starts = await asyncio.gather(*(s.reserve("rotation:default", BLOCK) for s in (a, b) * 3))
        await a.stop()
        await b.stop()
        return starts

    starts = sorted(run(go()))
    assert starts == [i * BLOCK for i in range(6)]


def test_pools_in_two_processes_rotate_through_one_sequence(redis_server):
    async def go():
        a, b = await started(redis_server.url), await started(redis_server.url)
        pools = [KeyPool("default", ("k1", "k2", "k3")) for _ in range(2)]
        for pool, state in zip(pools, (a, b), strict=True):
            pool.share(state)
        used = []
        for _ in range(3 * BLOCK):
            for pool in pools:
                used.append(pool.next().secret)
                await asyncio.sleep(0.001)
        sequence = await a.incr("rotation:default", 0)
        await a.stop()
        await b.stop()
        return used, sequence

    used, sequence = run(go())
    assert sequence >= 4 * BLOCK  # both took blocks of the one sequence, ahead of need
    counts = [used.count(k) for k in ("k1", "k2", "k3")]
    assert max(counts) - min(counts) <= 3, counts


def test_redis_down_then_back(redis_server, caplog):
    """Down: counters go on locally, changes wait, the log says it once. Back: the changes made
    meanwhile arrive, the log says so once, sharing goes on."""
    caplog.set_level(logging.INFO, logger="calo_addon")

    async def go():
        a, b = await started(redis_server.url), await started(redis_server.url)
        seen: list = []
        b.space("cooldowns").watch(lambda key, value: seen.append(key))
        redis_server.stop()
        await eventually(lambda: not a.up and not b.up)
        assert await a.incr("n", 1) == 1 and await a.admit("l", 1, 1, 60)  # locally
        a.space("cooldowns").put("default/made-while-down", time.time() + 60, 60)
        await asyncio.sleep(1.0)  # reconnection attempts fail meanwhile: said once only
        redis_server.start()
        await eventually(lambda: a.up and b.up)
        await eventually(lambda: "default/made-while-down" in seen)
        a.space("cooldowns").put("default/after", time.time() + 60, 60)
        await eventually(lambda: "default/after" in seen)
        await a.stop()
        await b.stop()

    run(go())
    lines = [r.getMessage() for r in caplog.records if r.name == "calo_addon"]
    down = [line for line in lines if "is unreachable" in line]
    back = [line for line in lines if "reachable again" in line]
    assert len(down) == 2 and len(back) == 2  # once per process
    assert all(f"Redis at 127.0.0.1:{redis_server.port}" in line for line in down + back)


def test_unreachable_at_start_serves_locally_and_never_shows_the_password(caplog):
    caplog.set_level(logging.INFO, logger="calo_addon")

    async def go():
        state = RedisState("redis://:pa55word@127.0.0.1:9/0")  # nothing listens on port 9
        await state.start()
        await eventually(lambda: state.failures == 1)
        value = await state.incr("n", 5)
        admitted = await state.reserve("rotation:x", BLOCK)
        assert state.space("conversations").keep("resp_1", ["x"], 60) is False  # not held
        assert await state.space("conversations").fetch("resp_1") is None
        await state.stop()
        return state, value, admitted

    state, value, reserved = run(go())
    assert value == 5 and reserved is None and not state.up
    messages = [r.getMessage() for r in caplog.records if r.name == "calo_addon"]
    assert len([m for m in messages if "unreachable" in m]) == 1
    assert not any("pa55word" in m for m in messages)
