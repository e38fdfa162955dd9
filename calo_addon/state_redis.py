"""The Redis/Valkey backend of the shared state (`state.redis_url`), on redis-py's asyncio API.

Layout (prefix `calo`): each space entry is a key `calo:<space>:<key>` holding
`{"v": value, "exp": wall-clock expiry}` with the same expiry in Redis (PX), so a process
that joins later finds it; each change is also published on channel `calo:events`, so the
other processes have it within a round trip, without polling. Entries only one later call may
need (a Responses conversation) are `keep`-ed: stored the same way but not published, and read
with GETs by the process that is asked for them. Counters are `calo:n:<name>`,
changed by small Lua scripts so that "add if under the limit" is atomic across processes.

No change makes a request wait for Redis: `put` queues the change for a writer task that
sends everything queued in one pipeline; the subscriber applies the other processes' changes
as they arrive. What a request may wait for: the key rotation's block reservation (one INCRBY per
32 calls of a route, asked for ahead of need), client limits, and a few GETs for
a `previous_response_id` this process does not hold.

Redis unreachable (at start or later): the proxy keeps serving on this process's own state,
logs it once, shows it in metrics (`calo_shared_state_up 0`), and reconnects by itself every
few seconds. Changes made meanwhile are kept (bounded) and sent when it is back; then every
space is read again, so what the others did meanwhile arrives too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import orjson
import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError
from redis.retry import Retry

from .calllog import logger
from .state import Rotation, SharedState, Watcher

PREFIX = "calo"
CONNECT_TIMEOUT = 2.0  # seconds to connect
COMMAND_TIMEOUT = 5.0  # seconds a command may take before Redis counts as unreachable
PING_EVERY = 5.0  # seconds between liveness checks of an idle connection
RETRY_EVERY = (0.25, 0.5, 1.0, 2.0)  # seconds between reconnection attempts, then the last
MAX_PENDING = 10_000  # changes kept while Redis is unreachable (oldest dropped beyond)
BATCH = 500  # changes per pipeline; keys per MGET when reading a space
FAILURES = (RedisError, OSError, asyncio.TimeoutError)

_INCR = """
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if v == tonumber(ARGV[1]) and tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v
"""
_ADMIT = """
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return 0 end
v = redis.call('INCRBY', KEYS[1], ARGV[1])
if v == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
"""


class RedisState(SharedState):
    backend = "redis"

    def __init__(self, url: str, prefix: str = PREFIX):
        super().__init__()
        self.url = url
        self.prefix = prefix
        self.channel = f"{prefix}:events"
        self.origin = uuid.uuid4().hex[:12]  # this process, in the messages it publishes
        self.failures = 0  # times Redis became unreachable
        self._client: aioredis.Redis | None = None
        self._pending: deque[tuple[str, str, Any, float, bool]] = deque(maxlen=MAX_PENDING)
        self._wake = asyncio.Event()
        self._connected = asyncio.Event()  # set while a session is up
        self._broken = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._said_down = False
        self._incr: AsyncScript | None = None  # Lua scripts, registered per connection
        self._admit: AsyncScript | None = None

    def describe(self) -> str:
        parts = urlsplit(self.url)
        where = parts.path if parts.scheme == "unix" else f"{parts.hostname}:{parts.port or 6379}"
        return f"Redis at {where}"

    @property
    def up(self) -> bool:
        return self._client is not None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._supervise())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, *FAILURES):
                await self._task
            self._task = None

    async def _supervise(self) -> None:
        """Connect, share, and on any failure serve locally and connect again."""
        attempt = 0
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - whatever broke, serve locally and retry
                self._went_down(e)
            attempt = 0 if self._client is not None else attempt + 1
            self._client = None
            await asyncio.sleep(RETRY_EVERY[min(attempt, len(RETRY_EVERY) - 1)])

    async def _session(self) -> None:
        client = aioredis.Redis.from_url(
            self.url,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=COMMAND_TIMEOUT,
            retry=Retry(NoBackoff(), 0),  # a failure is ours to see: we resync after it
        )
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        tasks: list[asyncio.Task] = []
        try:
            await pubsub.subscribe(self.channel)  # first, so nothing published is missed
            self._incr, self._admit = client.register_script(_INCR), client.register_script(_ADMIT)
            await self._flush(client)
            await self._read_spaces(client)
            self._broken.clear()
            self._client = client
            self._connected.set()
            self._came_up()
            loop = asyncio.get_running_loop()
            tasks = [
                loop.create_task(self._listen(pubsub)),
                loop.create_task(self._write(client)),
                loop.create_task(self._ping(client)),
                loop.create_task(self._broken.wait()),
            ]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # the failure, if one ended the session
            raise ConnectionError("the connection to Redis was lost")
        finally:
            self._client = None
            self._connected.clear()
            for task in tasks:
                task.cancel()
            with contextlib.suppress(*FAILURES):
                await pubsub.aclose()
            with contextlib.suppress(*FAILURES):
                await client.aclose()

    def _went_down(self, error: BaseException) -> None:
        if not self._said_down:
            self._said_down = True
            self.failures += 1
            reason = " ".join(f"{type(error).__name__}: {error}".split())[:300]
            logger.warning(
                "shared state: %s is unreachable (%s); serving on this process's own state "
                "and reconnecting",
                self.describe(),
                reason,
            )

    def _came_up(self) -> None:
        if self._said_down:
            self._said_down = False
            logger.warning("shared state: %s is reachable again; sharing resumed", self.describe())
        else:
            logger.info("shared state: %s", self.describe())

    def _fail(self, error: BaseException) -> None:
        """A command failed on the request path's side: end the session (it reconnects)."""
        if self._client is not None:
            self._went_down(error)
            self._broken.set()

    # ------------------------------------------------------------ spaces

    def _key(self, space: str, key: str) -> str:
        return f"{self.prefix}:{space}:{key}"

    def _publish(self, space: str, key: str, value: Any, ttl: float, tell: bool = True) -> bool:
        if not tell and self._said_down:
            return False  # kept for a later call only: not worth holding while Redis is away
        expires = time.time() + ttl if value is not None else 0
        self._pending.append((space, key, value, expires, tell))
        self._wake.set()
        return True

    async def _fetch(self, space: str, key: str) -> Any | None:
        if self._client is None and not self._said_down:  # still connecting (a fresh start)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._connected.wait(), CONNECT_TIMEOUT)
        client = self._client
        if client is None:
            return None
        try:
            entry = _entry(await client.get(self._key(space, key)))
        except FAILURES as e:
            self._fail(e)
            return None
        if entry is None or entry.get("exp", 0) <= time.time():
            return None
        return entry.get("v")

    async def _write(self, client: aioredis.Redis) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._flush(client)

    async def _flush(self, client: aioredis.Redis) -> None:
        """Send the queued changes, in order, a pipeline at a time; on failure they stay."""
        while self._pending:
            batch = [self._pending.popleft() for _ in range(min(BATCH, len(self._pending)))]
            now, pipe = time.time(), client.pipeline(transaction=False)
            for space, key, value, expires, tell in batch:
                if value is not None and expires <= now:
                    continue  # expired while it waited
                name = self._key(space, key)
                if value is None:
                    pipe.delete(name)
                else:
                    ms = max(1, int((expires - now) * 1000))
                    pipe.set(name, orjson.dumps({"v": value, "exp": expires}), px=ms)
                if tell:
                    event = {"o": self.origin, "s": space, "k": key, "v": value, "exp": expires}
                    pipe.publish(self.channel, orjson.dumps(event))
            try:
                await pipe.execute()
            except BaseException:
                self._pending.extendleft(reversed(batch))
                raise

    async def _listen(self, pubsub) -> None:
        async for message in pubsub.listen():
            try:
                event = orjson.loads(message["data"])
            except (ValueError, TypeError, KeyError):
                continue
            if event.get("o") == self.origin or event.get("s") not in self._spaces:
                continue
            value = event.get("v")
            if value is not None and event.get("exp", 0) <= time.time():
                continue
            self._spaces[event["s"]].deliver(event.get("k", ""), value)

    async def _ping(self, client: aioredis.Redis) -> None:
        while True:
            await asyncio.sleep(PING_EVERY)
            await client.ping()

    async def _read_spaces(self, client: aioredis.Redis) -> None:
        """Every entry of every space watched here, to its watchers (after a (re)connect)."""
        for name, space in self._spaces.items():
            if not space.watched:
                continue  # kept for `fetch` only (conversations): read when asked for
            async for key, value in self._entries(client, name):
                space.deliver(key, value)

    def _replay(self, space: str, callback: Watcher) -> None:
        client = self._client
        if client is None:
            return  # read with every space when the connection is made

        async def replay() -> None:
            try:
                async for key, value in self._entries(client, space):
                    callback(key, value)
            except FAILURES as e:
                self._fail(e)

        with contextlib.suppress(RuntimeError):  # no event loop: the next connect reads it
            asyncio.get_running_loop().create_task(replay())

    async def _entries(self, client: aioredis.Redis, space: str):
        prefix = self._key(space, "")
        names = [name async for name in client.scan_iter(match=f"{prefix}*", count=BATCH)]
        now = time.time()
        for start in range(0, len(names), BATCH):
            chunk = names[start : start + BATCH]
            for name, raw in zip(chunk, await client.mget(chunk), strict=True):
                entry = _entry(raw)
                if entry is not None and entry.get("exp", 0) > now:
                    yield name.decode()[len(prefix) :], entry["v"]

    # ------------------------------------------------------------ counters

    async def incr(self, name: str, amount: int = 1, ttl: float | None = None) -> int:
        if self._client is not None and self._incr is not None:
            try:
                ms = int(ttl * 1000) if ttl else 0
                return int(await self._incr(keys=[self._key("n", name)], args=[amount, ms]))
            except FAILURES as e:
                self._fail(e)
        return self.local_incr(name, amount, ttl)

    async def admit(self, name: str, cost: int, limit: int, window: float) -> bool:
        if self._client is not None and self._admit is not None:
            try:
                args = [cost, limit, max(1, int(window * 1000))]
                return bool(await self._admit(keys=[self._key("n", name)], args=args))
            except FAILURES as e:
                self._fail(e)
        return self.local_admit(name, cost, limit, window)

    async def reserve(self, name: str, block: int) -> int | None:
        if self._client is None or self._incr is None:
            return None
        try:
            return int(await self._incr(keys=[self._key("n", name)], args=[block, 0])) - block
        except FAILURES as e:
            self._fail(e)
            return None

    def rotation(self, name: str) -> Rotation:
        return Rotation(lambda block: self.reserve(f"rotation:{name}", block))


def _entry(raw: bytes | str | None) -> dict | None:
    if raw is None:
        return None
    try:
        entry = orjson.loads(raw)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) and "v" in entry else None
