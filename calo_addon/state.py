"""What several proxy processes share, behind one small interface.

Processes that serve one front door must act as one: a key cooled by a 429 in one is skipped
by the others, an upstream one found down is down for all, a rollup summary or a thought
signature one made is used by all, and (issue 15) client limits count every process's calls.

The interface, `SharedState`, has two kinds of thing:

- Spaces (`space(name)`): entries that processes replicate, each owner (a KeyPool,
  UpstreamHealth, Rollup, SignatureMemory) keeping the entries it uses in its own memory,
  where the request path reads them without waiting. `put` and `delete` tell the other
  processes; `watch` hands the owner theirs. Nothing on the request path awaits the backend.
- Counters (`incr`, `admit`, `reserve`): numbers every process adds to atomically, with an
  expiry; these are awaited, so a caller pays one round trip (client limits, issue 15; the
  key rotation reserves its positions in blocks, ahead of need: `Rotation`).

`SharedState` itself is the in-memory backend, the default: one process, nobody to tell, so a
space's `put` does nothing and counters live in a dict. `state_redis.RedisState` is the
Redis/Valkey backend (`state.redis_url`); when Redis is unreachable it keeps serving on this
process's own state, says so once, and reconnects by itself.

Times that cross processes are wall-clock seconds (time.time()): monotonic clocks differ.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

Watcher = Callable[[str, Any], None]  # (key, value or None when deleted)


class Space:
    """One kind of shared entries: cooldowns, health, summaries, signatures, ..."""

    def __init__(self, name: str, state: SharedState):
        self.name = name
        self._state = state
        self._watchers: list[weakref.ref | weakref.WeakMethod | Callable] = []

    def put(self, key: str, value: Any, ttl: float) -> None:
        """Tell the other processes: `key` now holds `value`, for `ttl` seconds (JSON value)."""
        self._state._publish(self.name, key, value, ttl)

    def delete(self, key: str) -> None:
        self._state._publish(self.name, key, None, 0.0)

    def keep(self, key: str, value: Any, ttl: float) -> bool:
        """Store `key` for any process to `fetch`, without sending it to the others now: for
        entries too large to copy everywhere that one later call may need (a conversation).
        False when it will not be stored (no backend, or one known to be unreachable)."""
        return self._state._publish(self.name, key, value, ttl, tell=False)

    async def fetch(self, key: str) -> Any | None:
        """What another process stored under `key` (None: nothing, or no backend to ask)."""
        return await self._state._fetch(self.name, key)

    @property
    def watched(self) -> bool:
        return any(ref() is not None for ref in self._watchers)

    def watch(self, callback: Watcher, replay: bool = True) -> None:
        """Call `callback(key, value)` for each change another process makes (value None: the
        entry is gone), and, with `replay`, for each entry the backend holds now. A bound
        method is held weakly: an owner that is dropped (a pipeline replaced) stops watching."""
        ref = weakref.WeakMethod(callback) if hasattr(callback, "__self__") else _strong(callback)
        self._watchers.append(ref)
        if replay:
            self._state._replay(self.name, callback)

    def deliver(self, key: str, value: Any) -> None:
        """A change from another process, to every live watcher."""
        alive = []
        for ref in self._watchers:
            callback = ref()
            if callback is not None:
                alive.append(ref)
                callback(key, value)
        self._watchers = alive


def _strong(callback: Callable) -> Callable[[], Callable]:
    return lambda: callback


class SharedState:
    """The in-memory backend: the state of this process alone (see the module docstring)."""

    backend = "memory"

    def __init__(self) -> None:
        self._spaces: dict[str, Space] = {}
        self._counters: dict[str, tuple[int, float]] = {}  # name -> (value, expires at)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Begin sharing (a backend connects here); the in-memory one has nothing to do."""

    async def stop(self) -> None:
        """Stop sharing and let go of connections."""

    @property
    def up(self) -> bool:
        """Whether sharing works now (always, in memory)."""
        return True

    def describe(self) -> str:
        """Where the state lives, for a log line: never a password."""
        return "memory (this process only)"

    # ------------------------------------------------------------ spaces

    def space(self, name: str) -> Space:
        if name not in self._spaces:
            self._spaces[name] = Space(name, self)
        return self._spaces[name]

    def _publish(self, space: str, key: str, value: Any, ttl: float, tell: bool = True) -> bool:
        """One process: nobody to tell. True if the change will reach the backend."""
        return False

    async def _fetch(self, space: str, key: str) -> Any | None:
        """One process: the owner holds every entry already."""
        return None

    def _replay(self, space: str, callback: Watcher) -> None:
        """One process: the owner holds every entry already."""

    # ------------------------------------------------------------ counters

    async def incr(self, name: str, amount: int = 1, ttl: float | None = None) -> int:
        """Add `amount` to counter `name` and return its new value. A new counter expires
        `ttl` seconds after its first increment (None: never)."""
        return self.local_incr(name, amount, ttl)

    async def admit(self, name: str, cost: int, limit: int, window: float) -> bool:
        """Add `cost` to counter `name` only if it stays within `limit`; True if added. The
        counter starts a fixed window of `window` seconds at its first increment (client
        limits: `admit(f"client:{id}:rpm", 1, 60, 60)`)."""
        return self.local_admit(name, cost, limit, window)

    async def reserve(self, name: str, block: int) -> int | None:
        """The first of `block` consecutive positions of sequence `name`, taken for this
        process alone; None when the backend cannot say (the caller goes on locally)."""
        return self.local_incr(name, block, None) - block

    def rotation(self, name: str) -> Rotation:
        """The shared rotation position of key pool `name` (local only, in memory)."""
        return Rotation()

    def local_incr(self, name: str, amount: int, ttl: float | None) -> int:
        now = time.time()
        value, expires = self._counters.get(name, (0, 0.0))
        if expires and expires <= now:
            value, expires = 0, 0.0
        if value == 0 and ttl:
            expires = now + ttl
        value += amount
        self._counters[name] = (value, expires)
        return value

    def local_admit(self, name: str, cost: int, limit: int, window: float) -> bool:
        now = time.time()
        value, expires = self._counters.get(name, (0, 0.0))
        if expires and expires <= now:
            value = 0
        if value + cost > limit:
            return False
        self.local_incr(name, cost, window)
        return True


BLOCK = 32  # rotation positions a process reserves at once: one round trip per BLOCK calls


class Rotation:
    """A key pool's rotation position, shared: each process takes blocks of BLOCK positions of
    one sequence per pool, reserving the next block while it uses half of the current one, so
    `take()` never waits. Without a backend answer (in memory, Redis down) it goes on locally."""

    def __init__(self, reserve: Callable[[int], Awaitable[int | None]] | None = None):
        self._reserve = reserve
        self._position = 0
        self._end = 0  # end of the block reserved for this process
        self._next: int | None = None  # start of the block reserved next
        self._asking: asyncio.Task | None = None

    def take(self) -> int:
        """The next position of the rotation (any integer: the pool takes it modulo its size)."""
        if self._position >= self._end and self._next is not None:
            self._position, self._end, self._next = self._next, self._next + BLOCK, None
        position = self._position
        self._position += 1
        running_low = self._end - self._position < BLOCK // 2
        if running_low and self._reserve and self._next is None and not self._asking:
            self._ask()
        return position

    def _ask(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a unit test): go on locally
            return
        self._asking = loop.create_task(self._fetch())

    async def _fetch(self) -> None:
        assert self._reserve is not None  # asked for only with a backend (take())
        try:
            start = await self._reserve(BLOCK)
        finally:
            self._asking = None
        if start is not None:
            self._next = start


def open_state(redis_url: str | None) -> SharedState:
    """The backend `state.redis_url` asks for: Redis/Valkey, else this process's memory."""
    if not redis_url:
        return SharedState()
    from .state_redis import RedisState  # imported only when used

    return RedisState(redis_url)
