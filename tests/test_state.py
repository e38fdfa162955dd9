"""Shared state units: the in-memory backend, the key rotation's blocks, and each owner (key
pools, upstream health, thought signatures, rollup summaries) sharing with another "process".

`Linked` stands in for a backend between two in-process owners: what one publishes, the
other's watchers get at once. The Redis backend itself is tested against a real redis-server
in test_state_redis.py.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from typing import Any

import pytest

from calo_addon import config as cfg
from calo_addon.dialects import recognise
from calo_addon.keypool import KeyPool
from calo_addon.rollup import Rollup
from calo_addon.settings import RollupSettings
from calo_addon.state import BLOCK, Rotation, SharedState, open_state
from calo_addon.translate.neutral import Thinking
from calo_addon.translate.signatures import SignatureMemory
from calo_addon.upstream_health import UpstreamHealth


class Linked(SharedState):
    """Processes that tell each other every change at once (in place of Redis)."""

    backend = "linked"

    def __init__(self, peers: list[Linked]):
        super().__init__()
        self.peers = peers
        peers.append(self)
        self.sent: list[tuple[str, str, Any]] = []

    def _publish(self, space: str, key: str, value: Any, ttl: float, tell: bool = True) -> bool:
        value = json.loads(json.dumps(value))  # as it travels
        self.sent.append((space, key, value))
        for peer in self.peers:
            if peer is not self and space in peer._spaces:
                peer._spaces[space].deliver(key, value)
        return True


def two() -> tuple[Linked, Linked]:
    peers: list[Linked] = []
    return Linked(peers), Linked(peers)


def linked(here: Any, there: Any) -> tuple[Linked, Linked]:
    """Two owners of one kind of state, each in its own "process", linked."""
    a, b = two()
    here.share(a)
    there.share(b)
    return a, b


# ---------------------------------------------------------------- in memory


def test_memory_backend_is_the_default_and_shares_nothing():
    state = open_state(None)
    assert type(state) is SharedState and state.up and state.backend == "memory"
    pool = KeyPool("default", ("k1", "k2"))
    pool.share(state)
    pool.cool(pool.keys[0], "60")
    assert [pool.next().label for _ in range(3)] == ["default#2"] * 3


def test_counters_expire_and_admit_stops_at_the_limit(monkeypatch):
    state = SharedState()
    now = [1000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])

    async def go():
        assert await state.incr("c", 2, ttl=10) == 2
        assert await state.incr("c", 3, ttl=10) == 5
        assert [await state.admit("rpm", 1, 3, 60) for _ in range(4)] == [True] * 3 + [False]
        now[0] += 61  # both windows are over
        assert await state.incr("c", 1, ttl=10) == 1
        assert await state.admit("rpm", 3, 3, 60) and not await state.admit("rpm", 1, 3, 60)

    asyncio.run(go())


def test_rotation_without_a_backend_counts_locally():
    rotation = Rotation()
    assert [rotation.take() for _ in range(5)] == [0, 1, 2, 3, 4]


def test_rotation_takes_positions_from_reserved_blocks_asked_for_ahead():
    handed: list[int] = []

    async def reserve(block: int) -> int:
        start = 1000 + len(handed) * 100
        handed.append(start)
        return start

    async def go():
        rotation = Rotation(reserve)
        first = rotation.take()  # no block yet: local; one is asked for at once
        taken = []
        for _ in range(BLOCK + 2):
            await asyncio.sleep(0)  # the event loop turns between calls, as in the proxy
            taken.append(rotation.take())
        return first, taken

    first, taken = asyncio.run(go())
    assert first == 0 and taken[:3] == [1000, 1001, 1002]
    assert taken[BLOCK - 1] == 1000 + BLOCK - 1 and taken[BLOCK] == 1100  # the next block
    assert handed == [1000, 1100]


def test_rotation_goes_on_locally_when_the_backend_cannot_say():
    async def reserve(block: int) -> None:
        return None

    async def go():
        rotation = Rotation(reserve)
        out = []
        for _ in range(40):
            out.append(rotation.take())
            await asyncio.sleep(0)
        return out

    assert asyncio.run(go()) == list(range(40))


def test_a_dropped_owner_stops_watching():
    a, b = two()
    pool = KeyPool("default", ("k1",))
    pool.share(b)
    del pool
    KeyPool("default", ("k1",)).cool  # noqa: B018 - nothing holds the first pool any more
    a.space("cooldowns").put("default/x", time.time() + 5, 5)
    assert all(ref() is None for ref in b.space("cooldowns")._watchers)


# ---------------------------------------------------------------- owners, shared


def test_key_cooled_in_one_process_is_skipped_in_the_other():
    here, there = KeyPool("default", ("k1", "k2")), KeyPool("default", ("k1", "k2"))
    a, _ = linked(here, there)
    here.cool(here.keys[0], "60")
    assert [there.next().label for _ in range(4)] == ["default#2"] * 4
    assert 59 < there.state()[0][2] <= 60
    assert all("k1" not in repr(sent) for sent in a.sent)  # a fingerprint travels, not the key


def test_cooldowns_follow_the_key_not_its_place_in_the_list():
    here, there = KeyPool("r", ("k1", "k2")), KeyPool("r", ("k2", "k1"))
    linked(here, there)
    here.cool(here.keys[0], "60")  # k1: second in the other process's list
    assert {there.next().secret for _ in range(3)} == {"k2"}


def test_another_routes_cooldown_is_not_ours():
    here, there = KeyPool("one", ("k1", "k2")), KeyPool("two", ("k1", "k2"))
    linked(here, there)
    here.cool(here.keys[0], "60")
    assert {there.next().secret for _ in range(4)} == {"k1", "k2"}


def test_upstream_down_in_one_process_is_down_in_the_other_until_reached():
    here, there = UpstreamHealth(), UpstreamHealth()
    linked(here, there)
    here.mark_down("api.example:443", "connection refused")
    assert "connection refused" in (there.refusal_reason("api.example:443") or "")
    assert there.snapshot() == {"api.example:443": "connection refused"}
    here.mark_up("api.example:443")
    assert there.refusal_reason("api.example:443") is None


def test_reaching_an_upstream_that_was_up_publishes_nothing():
    a, _ = two()
    health = UpstreamHealth()
    health.share(a)
    for _ in range(3):
        health.mark_up("api.example:443")  # every answer: must cost nothing
    assert a.sent == []


def test_signature_remembered_in_one_process_is_recalled_in_the_other():
    here, there = SignatureMemory(), SignatureMemory()
    a, _ = linked(here, there)
    here.remember("call_1", "c2lnbmF0dXJl")
    here.remember("call_1", "c2lnbmF0dXJl")  # again: told once
    assert there.recall("call_1") == (Thinking(signature="c2lnbmF0dXJl", attached=True),)
    claude = (Thinking("Weather first.", "RXF1c2ln"), Thinking(signature="cmVk", redacted=True))
    here.remember("toolu_1", claude)  # Claude's blocks: whole, text included
    assert there.recall("toolu_1") == claude and len(a.sent) == 2
    there._remembered_elsewhere("call_2", [["sig", 5, False, False]])  # not one of ours
    there._remembered_elsewhere("call_3", "c2ln")  # a bare signature (as first shared)
    assert there.recall("call_2") is None and there.recall("call_3")[0].attached


async def summarize(prompt: str) -> str:
    return "THE SUMMARY"


def test_summary_made_in_one_process_is_used_by_the_other():
    op = recognise("POST", "/v1/chat/completions", None)
    body = {"model": "m", "messages": [{"role": "user", "content": "x" * 300}]}
    reply = {"role": "assistant", "content": "an answer"}
    follow = copy.deepcopy(body)
    follow["messages"] += [reply, {"role": "user", "content": "and then?"}]

    async def go():
        here = Rollup(RollupSettings(threshold=100), summarize)
        there = Rollup(RollupSettings(threshold=100), summarize)
        linked(here, there)
        here.remember(op, here.plan(op, copy.deepcopy(body)), reply)
        await here.settle()
        return there, there.plan(op, follow)

    there, plan = asyncio.run(go())
    assert plan.used == "summary" and plan.cut == 2
    assert "THE SUMMARY" in follow["messages"][0]["content"]
    assert there.stats()["ready"] == 1 and plan.saved == 300 + 9 - len("THE SUMMARY")


def test_a_summary_from_elsewhere_that_is_not_one_is_ignored():
    rollup = Rollup(RollupSettings(threshold=100), summarize)
    for bad in (None, {"turns": "x"}, {"turns": [], "summary": "s"}, {"summary": "s"}):
        rollup._summarised_elsewhere("k", bad)
    assert rollup.stats()["entries"] == 0


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:9464", "127.0.0.1:9464"),
        ("9100", "127.0.0.1:9100"),
        (":9100", "127.0.0.1:9100"),
        ("0.0.0.0:9100", "0.0.0.0:9100"),
        ("[::1]:9100", "[::1]:9100"),
        ("off", None),
        (False, None),  # YAML's `off`
    ],
)
def test_metrics_listen_values(value, expected):
    assert cfg.listen_address(value, "metrics.listen") == expected


@pytest.mark.parametrize("value", ["localhost", "1.2.3.4:99999", "a b:1", "http://x:1"])
def test_bad_metrics_listen_names_the_setting(value):
    with pytest.raises(cfg.ConfigError, match=r"^GEMINI_CALO_METRICS_LISTEN: expected host:port"):
        cfg.listen_address(value, "GEMINI_CALO_METRICS_LISTEN")


def test_redis_url_from_the_environment_and_its_password_is_a_secret():
    env = {"GEMINI_CALO_API_KEYS": "k", "GEMINI_CALO_REDIS_URL": "redis://:s3cret@db:6379/2"}
    settings = cfg.load_settings(None, env)
    assert settings.state.redis_url == "redis://:s3cret@db:6379/2"
    assert "s3cret" in settings.secrets()
    assert settings.metrics.listen == "127.0.0.1:9464"


def test_a_bad_redis_url_is_refused_without_showing_it():
    env = {"GEMINI_CALO_API_KEYS": "k", "GEMINI_CALO_REDIS_URL": "http://user:s3cret@db"}
    with pytest.raises(cfg.ConfigError) as refused:
        cfg.load_settings(None, env)
    assert "GEMINI_CALO_REDIS_URL" in str(refused.value) and "s3cret" not in str(refused.value)


def test_yaml_sections_for_metrics_and_state(tmp_path):
    path = tmp_path / "calo.yaml"
    path.write_text(
        "api_keys: [k]\nmetrics: {listen: off}\nstate: {redis_url: 'redis://127.0.0.1:1/0'}\n"
    )
    settings = cfg.load_settings(str(path), {})
    assert settings.metrics.listen is None and settings.state.redis_url.endswith(":1/0")
