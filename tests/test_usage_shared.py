"""usage_shared.SharedUsage: client limits counted in the shared state, so several processes
(here: two stores over one state, as two instances over one Redis) enforce one budget."""

from __future__ import annotations

import asyncio

from calo_addon.state import SharedState
from calo_addon.usage import Limits, LocalUsage
from calo_addon.usage_db import Counts
from calo_addon.usage_shared import SharedUsage, shared

NOW = 1_800_000_030.0  # 30 s into a UTC minute


def pair() -> tuple[SharedUsage, SharedUsage]:
    state = SharedState()
    return SharedUsage(LocalUsage(), state), SharedUsage(LocalUsage(), state)


def test_rpm_is_one_budget_over_every_instance():
    a, b = pair()
    limits = Limits(rpm=3)

    async def go():
        results = [await store.admit("alice", limits, NOW) for store in (a, b, a, b, a)]
        return results

    admitted = asyncio.run(go())
    assert [over is None for over in admitted] == [True, True, True, False, False]
    over = admitted[3]
    assert over.limit == "rpm" and over.retry_after == 30.0  # the rest of the minute
    assert asyncio.run(a.admit("alice", limits, NOW + 31)) is None  # the next minute


def test_concurrent_requests_over_two_instances_admit_exactly_the_limit():
    a, b = pair()

    async def go():
        calls = [store.admit("ci", Limits(rpm=10), NOW) for _ in range(25) for store in (a, b)]
        return await asyncio.gather(*calls)

    assert sum(over is None for over in asyncio.run(go())) == 10


def test_tokens_charged_on_one_instance_spend_the_budget_of_the_other():
    a, b = pair()
    limits = Limits(tokens_per_day=100)

    async def go():
        assert await b.admit("bot", limits, NOW) is None
        a.charge("bot", Counts(requests=0, tokens=100), NOW)
        await a.settle()
        return await b.admit("bot", limits, NOW)

    over = asyncio.run(go())
    assert over is not None and over.limit == "tokens_per_day"


def test_each_instance_still_records_what_it_served():
    a, b = pair()

    async def go():
        await a.admit("alice", Limits(), NOW)
        a.charge("alice", Counts(requests=0, tokens=7), NOW)
        await a.settle()

    asyncio.run(go())
    assert a.usage("alice", NOW).today.tokens == 7 and b.usage("alice", NOW).today.tokens == 0


def test_only_a_shared_backend_shares():
    store = LocalUsage()
    assert shared(store, SharedState()) is store  # in memory: one process, nothing to share
    assert shared(None, SharedState()) is None
