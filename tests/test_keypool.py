"""Key pool units: round-robin order, cooldown skipping, labels that never reveal a key."""

from __future__ import annotations

import pytest

from calo_addon.keypool import AllKeysCooling, KeyPool, parse_retry_after

SECRETS = ("sk-alpha-secret", "sk-beta-secret", "sk-gamma-secret")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_round_robin_order():
    pool = KeyPool("default", SECRETS)
    assert [pool.next().secret for _ in range(7)] == [*SECRETS, *SECRETS, SECRETS[0]]
    assert [uses for _, uses, _ in pool.state()] == [3, 2, 2]


def test_labels_name_the_pool_and_position_never_the_secret():
    pool = KeyPool("gpt-4*", SECRETS)
    labels = [pool.next().label for _ in SECRETS]
    assert labels == ["gpt-4*#1", "gpt-4*#2", "gpt-4*#3"]
    text = repr(pool.state())
    assert not any(secret in label or secret in text for secret in SECRETS for label in labels)


def test_cooling_key_is_skipped_until_its_time_is_up():
    clock = Clock()
    pool = KeyPool("p", SECRETS, clock=clock)
    first = pool.next()
    assert pool.cool(first, "10") == 10.0
    assert [pool.next().secret for _ in range(3)] == [SECRETS[1], SECRETS[2], SECRETS[1]]
    clock.now += 10
    assert [pool.next().secret for _ in range(2)] == [SECRETS[2], SECRETS[0]]


def test_all_keys_cooling_says_how_long():
    clock = Clock()
    pool = KeyPool("p", SECRETS[:2], max_cooldown=60, clock=clock)
    pool.cool(pool.next(), "5")
    pool.cool(pool.next(), "9999")  # capped at max_cooldown
    with pytest.raises(AllKeysCooling) as err:
        pool.next()
    assert err.value.retry_after == 5.0
    assert not any(secret in str(err.value) for secret in SECRETS)


def test_empty_pool():
    pool = KeyPool("none", ())
    assert not pool
    with pytest.raises(LookupError):
        pool.next()


@pytest.mark.parametrize(("value", "seconds"), [(None, 30.0), ("7", 7.0), ("soon", 30.0)])
def test_retry_after(value, seconds):
    assert parse_retry_after(value) == seconds
