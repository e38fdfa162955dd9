"""Upstream health units: refusal while down, one try after the back-off, doubling to the max."""

from __future__ import annotations

from calo_addon.upstream_health import FIRST_BACKOFF, MAX_BACKOFF, UpstreamHealth

ADDRESS = "127.0.0.1:9"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_unknown_upstream_is_not_refused():
    assert UpstreamHealth().refusal_reason(ADDRESS) is None


def test_down_upstream_is_refused_with_its_reason():
    health = UpstreamHealth(Clock())
    health.mark_down(ADDRESS, "connection refused")
    reason = health.refusal_reason(ADDRESS)
    assert ADDRESS in reason and "connection refused" in reason
    assert health.refusal_reason("other:1") is None
    assert health.snapshot() == {ADDRESS: "connection refused"}


def test_after_the_backoff_one_request_may_try():
    clock = Clock()
    health = UpstreamHealth(clock)
    health.mark_down(ADDRESS, "refused")
    clock.now += FIRST_BACKOFF - 0.01
    assert health.refusal_reason(ADDRESS) is not None
    clock.now += 0.01
    assert health.refusal_reason(ADDRESS) is None  # this one tries
    assert health.refusal_reason(ADDRESS) is not None  # the others keep waiting


def test_mark_up_clears():
    health = UpstreamHealth(Clock())
    health.mark_down(ADDRESS, "refused")
    health.mark_up(ADDRESS)
    assert health.refusal_reason(ADDRESS) is None and health.snapshot() == {}


def test_backoff_doubles_up_to_the_maximum():
    clock = Clock()
    health = UpstreamHealth(clock)
    waits = []
    for _ in range(7):
        health.mark_down(ADDRESS, "refused")
        start = clock.now
        while health.refusal_reason(ADDRESS) is not None:
            clock.now += 0.5
        waits.append(clock.now - start)
    assert waits == [2.0, 4.0, 8.0, 16.0, MAX_BACKOFF, MAX_BACKOFF, MAX_BACKOFF]
