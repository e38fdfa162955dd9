"""Round-robin over a route's real keys, skipping keys that are cooling down.

An upstream 429, or a 401/403 for one key, cools that key for its Retry-After (default 30 s,
at most the configured maximum). Labels name a key without revealing it.

Shared (`share`, with state.redis_url): the cooldowns and the rotation position are those of
every process serving the same keys. A cooldown travels as the key's fingerprint (a hash of
its secret, never the secret), so processes whose configurations list the keys in another
order still agree; the rotation takes its positions in blocks of one shared sequence.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .state import Rotation, SharedState, Space

DEFAULT_COOLDOWN = 30.0


@dataclass(frozen=True)
class Key:
    secret: str
    label: str
    index: int


class AllKeysCooling(Exception):
    def __init__(self, pool: str, retry_after: float):
        super().__init__(f"every key of route {pool} is cooling down")
        self.retry_after = retry_after


class KeyPool:
    def __init__(
        self, name: str, secrets: tuple[str, ...], max_cooldown: float = 300.0, clock=time.monotonic
    ):
        self.name = name
        self.keys = tuple(Key(s, f"{name}#{i + 1}", i) for i, s in enumerate(secrets))
        self.uses = [0] * len(self.keys)
        self.cooling_until = [0.0] * len(self.keys)
        self.max_cooldown = max_cooldown
        self._next = 0
        self._clock = clock
        self.cooldowns = 0  # keys put in cooldown here (calo_key_cooldowns_total)
        # shared state (share): other processes' cooldowns and the rotation's position
        self._space: Space | None = None
        self._rotation: Rotation | None = None
        self._by_fingerprint: dict[str, int] = {}

    def __bool__(self) -> bool:
        return bool(self.keys)

    def next(self) -> Key:
        if not self.keys:
            raise LookupError(f"no keys in pool {self.name}")
        now = self._clock()
        start = self._rotation.take() if self._rotation is not None else self._next
        for step in range(len(self.keys)):
            index = (start + step) % len(self.keys)
            if self.cooling_until[index] <= now:
                self._next = index + 1
                self.uses[index] += 1
                return self.keys[index]
        raise AllKeysCooling(self.name, min(self.cooling_until) - now)

    def ready(self) -> bool:
        """Whether some key is not cooling now."""
        now = self._clock()
        return any(until <= now for until in self.cooling_until)

    def cool(self, key: Key, retry_after: str | None) -> float:
        """Put `key` in cooldown; returns the seconds it will rest."""
        seconds = min(parse_retry_after(retry_after), self.max_cooldown)
        self.cooling_until[key.index] = max(self.cooling_until[key.index], self._clock() + seconds)
        self.cooldowns += 1
        if self._space is not None and seconds > 0:
            self._space.put(
                f"{self.name}/{fingerprint(key.secret)}", time.time() + seconds, seconds
            )
        return seconds

    # ------------------------------------------------------------ shared (state.py)

    def share(self, state: SharedState) -> None:
        """Cool keys that other processes cooled, tell them of ours, rotate in one sequence."""
        if not self.keys:
            return
        self._by_fingerprint = {fingerprint(k.secret): k.index for k in self.keys}
        self._rotation = state.rotation(self.name)
        self._space = state.space("cooldowns")
        self._space.watch(self._cooled_elsewhere)

    def _cooled_elsewhere(self, entry: str, until: Any) -> None:
        name, _, print_ = entry.rpartition("/")
        index = self._by_fingerprint.get(print_) if name == self.name else None
        if index is None or not isinstance(until, int | float):
            return
        here = self._clock() + (until - time.time())  # wall clock -> this pool's clock
        self.cooling_until[index] = max(self.cooling_until[index], here)

    def state(self) -> list[tuple[str, int, float]]:
        """(label, uses, seconds of cooldown left) per key."""
        now = self._clock()
        return [
            (k.label, self.uses[k.index], max(0.0, self.cooling_until[k.index] - now))
            for k in self.keys
        ]


def fingerprint(secret: str) -> str:
    """A key's name across processes: a hash of it (16 hex digits), never the key itself."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def parse_retry_after(value: str | None) -> float:
    """Retry-After as delay-seconds or an HTTP date; DEFAULT_COOLDOWN when absent or unreadable."""
    if not value:
        return DEFAULT_COOLDOWN
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return DEFAULT_COOLDOWN
    return max(0.0, when - time.time())
