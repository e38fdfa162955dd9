"""Connect first: a refused, unreachable or slow upstream gets an answer in the API's shape.

mitmproxy answers a failed upstream connect with its own HTML 502 page after the `error` hook,
and no hook can replace it (`handle_protocol_error` in mitmproxy's
`proxy/layers/http/__init__.py`, SPEC 4b). It also has no connect timeout: its
`asyncio.open_connection` waits as long as the operating system does. So before a request
would make mitmproxy open a new upstream connection, the addon opens one itself, bounded by the
route's `connect_timeout`, and closes it again. If that fails, the addon decides the answer:
502 (refused, unreachable, unknown host) or 504 (no connection within the timeout), in the
caller's shape, after retrying a refused connection up to `max_retries` times.

The cost is one TCP handshake, and only when this client connection has no open connection to
that upstream yet (the first request of a connection; later ones reuse mitmproxy's). Flows that
go through an upstream proxy (`--mode upstream:...`) are not checked: the proxy connects there,
not to the API host. What stays
out of reach: a connection that fails between this check and mitmproxy's own connect, and a
TLS handshake failure, still get mitmproxy's page; the upstream is then marked down and later
requests are answered in shape (`upstream_health`).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections import Counter
from collections.abc import Callable

RETRY_DELAY = 0.1  # seconds before the first retry of a refused connection; doubles


class ConnectFailed(Exception):
    def __init__(self, reason: str, timed_out: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.timed_out = timed_out


async def try_connect(host: str, port: int, timeout: float) -> None:
    """Open a TCP connection to host:port within `timeout` seconds, then close it."""
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        raise ConnectFailed(f"accepted no connection within {timeout:g}s", True) from None
    except OSError as e:
        raise ConnectFailed(_reason(e)) from None
    writer.close()


async def check(
    host: str, port: int, timeout: float, retries: int, on_retry: Callable[[str], None]
) -> None:
    """try_connect, retrying a refused connection up to `retries` times (not a timeout: that
    is the wait the user set); raises the last ConnectFailed."""
    attempt = 0
    while True:
        try:
            return await try_connect(host, port, timeout)
        except ConnectFailed as failed:
            if failed.timed_out or attempt == retries:
                raise
            on_retry(failed.reason)
        await asyncio.sleep(RETRY_DELAY * 2**attempt)
        attempt += 1


def _reason(error: OSError) -> str:
    if isinstance(error, socket.gaierror):
        return f"cannot resolve the host ({error.strerror})"
    if error.errno:  # asyncio's own text names the address again: "Connect call failed (...)"
        return os.strerror(error.errno)
    return str(error) or type(error).__name__


class OpenConnections:
    """Which upstream addresses each client connection has an open connection to, as told by
    mitmproxy's server_connected / server_disconnected hooks."""

    def __init__(self) -> None:
        self._by_client: dict[str, Counter[tuple[str, int]]] = {}

    def connected(self, client_id: str, address: tuple[str, int] | None) -> None:
        if address:
            self._by_client.setdefault(client_id, Counter())[(address[0], address[1])] += 1

    def disconnected(self, client_id: str, address: tuple[str, int] | None) -> None:
        open_ = self._by_client.get(client_id)
        if not open_ or not address:
            return
        open_[(address[0], address[1])] -= 1
        self._by_client[client_id] = +open_  # unary plus drops the counts at zero
        if not self._by_client[client_id]:
            del self._by_client[client_id]

    def client_gone(self, client_id: str) -> None:
        self._by_client.pop(client_id, None)

    def has(self, client_id: str, host: str, port: int) -> bool:
        open_ = self._by_client.get(client_id)
        return open_ is not None and (host, port) in open_
