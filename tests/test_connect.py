"""connect.py: the addon's own connect check, and the record of open upstream connections."""

from __future__ import annotations

import asyncio
import socket

import pytest

from calo_addon.connect import ConnectFailed, OpenConnections, try_connect


def test_open_connections_are_counted_per_client_and_address():
    open_ = OpenConnections()
    open_.connected("c1", ("up", 443))
    open_.connected("c1", ("up", 443))
    assert open_.has("c1", "up", 443) and not open_.has("c2", "up", 443)
    assert not open_.has("c1", "up", 80)
    open_.disconnected("c1", ("up", 443))
    assert open_.has("c1", "up", 443)  # the second one is still open
    open_.disconnected("c1", ("up", 443))
    assert not open_.has("c1", "up", 443)
    open_.connected("c1", ("up", 443))
    open_.client_gone("c1")
    assert not open_.has("c1", "up", 443)
    open_.disconnected("c9", None)  # unknown client, no address: nothing to do


@pytest.mark.real_connect
def test_try_connect_accepts_refuses_and_times_out():
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(8)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(0)
    fillers = [socket.socket() for _ in range(3)]
    for filler in fillers:
        filler.setblocking(False)
        filler.connect_ex(silent.getsockname())

    async def main():
        await try_connect(*listening.getsockname(), timeout=2)
        with pytest.raises(ConnectFailed) as refused:
            await try_connect(*closed.getsockname(), timeout=2)
        with pytest.raises(ConnectFailed) as slow:
            await try_connect(*silent.getsockname(), timeout=0.2)
        return refused.value, slow.value

    try:
        refused, slow = asyncio.run(main())
    finally:
        for s in (listening, closed, silent, *fillers):
            s.close()
    assert refused.reason == "Connection refused" and not refused.timed_out
    assert slow.timed_out and slow.reason == "accepted no connection within 0.2s"
