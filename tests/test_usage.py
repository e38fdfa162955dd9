"""The usage store: admission against limits (reserved on admit), charging reported tokens,
calendar budgets, and the SQLite file that keeps usage across restarts."""

from __future__ import annotations

import asyncio
import datetime
import sqlite3
import threading

import pytest

from calo_addon.usage import (
    Limits,
    LocalUsage,
    day_period,
    month_period,
    seconds_to_next_day,
    seconds_to_next_month,
)
from calo_addon.usage_db import Counts, UsageFile

NOON = datetime.datetime(2026, 11, 26, 12, 0, tzinfo=datetime.UTC).timestamp()


def tokens(n: int, inp: int = 0) -> Counts:
    return Counts(input_tokens=inp, output_tokens=n - inp, tokens=n)


def admit(store: LocalUsage, limits: Limits, now: float, client: str = "alice"):
    return asyncio.run(store.admit(client, limits, now))


# ---------------------------------------------------------------- rpm


def test_rpm_admits_n_in_a_minute_then_says_when_the_oldest_leaves():
    store = LocalUsage()
    limits = Limits(rpm=3)
    for i in range(3):
        assert store.admit_now("alice", limits, NOON + i) is None
    over = store.admit_now("alice", limits, NOON + 10)
    assert (over.limit, over.value, over.retry_after) == ("rpm", 3, 50)
    assert over.retry_after_header == "50"
    assert store.admit_now("bob", limits, NOON + 10) is None  # per client
    assert store.admit_now("alice", limits, NOON + 60) is None  # the first left the window
    assert store.admit_now("alice", limits, NOON + 60.5).limit == "rpm"


def test_a_refused_request_is_not_counted():
    store = LocalUsage()
    store.admit_now("alice", Limits(rpm=1), NOON)
    for _ in range(5):
        assert store.admit_now("alice", Limits(rpm=1), NOON + 1) is not None
    assert store.usage("alice", NOON + 1).today.requests == 1


def test_fifty_concurrent_admissions_against_rpm_10_admit_exactly_10():
    store = LocalUsage()

    async def main():
        return await asyncio.gather(
            *(store.admit("alice", Limits(rpm=10), NOON) for _ in range(50))
        )

    results = asyncio.run(main())
    assert sum(r is None for r in results) == 10
    assert {r.limit for r in results if r is not None} == {"rpm"}


def test_a_changed_limit_applies_to_the_next_request():
    store = LocalUsage()
    for _ in range(2):
        assert store.admit_now("alice", Limits(rpm=2), NOON) is None
    assert store.admit_now("alice", Limits(rpm=2), NOON) is not None
    assert store.admit_now("alice", Limits(rpm=3), NOON) is None  # usage kept, new limit
    assert store.admit_now("alice", Limits(rpm=3), NOON) is not None


# ---------------------------------------------------------------- tokens


def test_tpm_counts_reported_tokens_in_the_last_minute():
    store = LocalUsage()
    limits = Limits(tpm=100)
    assert store.admit_now("alice", limits, NOON) is None
    store.charge("alice", tokens(60), NOON)
    assert store.admit_now("alice", limits, NOON + 1) is None  # 60 < 100: admitted
    store.charge("alice", tokens(50), NOON + 20)
    over = store.admit_now("alice", limits, NOON + 30)
    # 110 in the window; once the first 60 leave (at NOON + 60) it is 50, under 100
    assert (over.limit, over.retry_after) == ("tpm", 30)
    assert store.admit_now("alice", limits, NOON + 60) is None


def test_day_budget_blocks_until_the_next_utc_day():
    store = LocalUsage()
    limits = Limits(tokens_per_day=100)
    store.admit_now("alice", limits, NOON)
    store.charge("alice", tokens(100, 30), NOON)
    over = store.admit_now("alice", limits, NOON + 5)
    assert over.limit == "tokens_per_day" and over.retry_after == 12 * 3600 - 5
    tomorrow = NOON + 12 * 3600
    assert store.admit_now("alice", limits, tomorrow) is None
    usage = store.usage("alice", tomorrow)
    assert (usage.today.tokens, usage.month.tokens, usage.total.tokens) == (0, 100, 100)
    assert (usage.total.input_tokens, usage.total.output_tokens) == (30, 70)


def test_month_budget_blocks_until_the_next_month():
    store = LocalUsage()
    store.charge("alice", tokens(10), NOON)
    over = store.admit_now("alice", Limits(tokens_per_month=10), NOON)
    assert over.limit == "tokens_per_month"
    assert over.retry_after == seconds_to_next_month(NOON) == 4 * 86400 + 12 * 3600


def test_calendar_windows():
    assert day_period(NOON) == "day:2026-11-26" and month_period(NOON) == "month:2026-11"
    assert seconds_to_next_day(NOON) == 12 * 3600
    december = datetime.datetime(2026, 12, 31, 23, 0, tzinfo=datetime.UTC).timestamp()
    assert seconds_to_next_month(december) == 3600  # into next year


# ---------------------------------------------------------------- the SQLite file


def test_usage_survives_a_restart(tmp_path):
    path = str(tmp_path / "usage.db")
    first = LocalUsage(UsageFile(path), now=NOON)
    first.admit_now("alice", Limits(), NOON)
    first.charge("alice", tokens(70, 20), NOON)
    first.charge("bob", tokens(5), NOON)
    first.close()

    second = LocalUsage(UsageFile(path), now=NOON + 60)
    usage = second.usage("alice", NOON + 60)
    assert (usage.today.requests, usage.today.tokens, usage.total.input_tokens) == (1, 70, 20)
    over = second.admit_now("alice", Limits(tokens_per_day=70), NOON + 60)
    assert over is not None and over.limit == "tokens_per_day"
    assert second.admit_now("bob", Limits(tokens_per_day=70), NOON + 60) is None
    second.close()


def test_only_the_current_day_and_month_are_read_back(tmp_path):
    path = str(tmp_path / "usage.db")
    first = LocalUsage(UsageFile(path), now=NOON)
    first.charge("alice", tokens(70), NOON)
    first.close()
    next_month = NOON + 6 * 86400  # 2 December
    second = LocalUsage(UsageFile(path), now=next_month)
    usage = second.usage("alice", next_month)
    assert (usage.today.tokens, usage.month.tokens, usage.total.tokens) == (0, 0, 70)
    second.close()


def test_every_write_adds_so_two_writers_sum(tmp_path):
    path = str(tmp_path / "usage.db")
    a, b = LocalUsage(UsageFile(path), now=NOON), LocalUsage(UsageFile(path), now=NOON)
    a.charge("alice", tokens(3), NOON)
    b.charge("alice", tokens(4), NOON)
    a.close()
    b.close()
    rows = sqlite3.connect(path).execute(
        "SELECT period, tokens FROM usage WHERE client = 'alice' ORDER BY period"
    )
    assert list(rows) == [("day:2026-11-26", 7), ("month:2026-11", 7), ("total", 7)]


def test_writes_are_batched_off_the_event_loop(tmp_path, monkeypatch):
    """Inside the event loop, many changes become one transaction, written by another thread
    a moment later; the loop never waits for SQLite."""
    store = LocalUsage(UsageFile(str(tmp_path / "usage.db")), now=NOON)
    writes: list[tuple[str, int]] = []
    real_add = UsageFile.add

    def add(self, changes):
        writes.append((threading.current_thread().name, len(changes)))
        real_add(self, changes)

    monkeypatch.setattr(UsageFile, "add", add)
    store.FLUSH_AFTER = 0.01

    async def main():
        for i in range(100):
            store.admit_now(f"c{i % 2}", Limits(), NOON)
            store.charge(f"c{i % 2}", tokens(1), NOON)
        assert writes == []  # nothing written from inside the loop
        for _ in range(1000):  # up to ~10 s for the writer thread
            if writes:
                break
            await asyncio.sleep(0.01)

    asyncio.run(main())
    ((thread, rows),) = writes
    assert thread.startswith("calo-usage") and rows == 6  # 2 clients x 3 periods
    store.close()
    total = sqlite3.connect(str(tmp_path / "usage.db")).execute(
        "SELECT SUM(requests), SUM(tokens) FROM usage WHERE period = 'total'"
    )
    assert list(total) == [(100, 100)]


def test_a_usage_file_that_cannot_be_written_is_logged_and_counting_goes_on(tmp_path, caplog):
    store = LocalUsage(UsageFile(str(tmp_path / "usage.db")), now=NOON)
    store.file._db.execute("DROP TABLE usage")
    store.charge("alice", tokens(5), NOON)
    assert "usage not written" in caplog.text
    assert store.usage("alice", NOON).today.tokens == 5
    store.close()


@pytest.mark.parametrize("bad", ["directory", "parent missing"])
def test_a_path_that_cannot_be_opened_raises(tmp_path, bad):
    path = tmp_path if bad == "directory" else tmp_path / "no" / "usage.db"
    with pytest.raises(sqlite3.Error):
        UsageFile(str(path))
