"""Everything calo_addon needs from mitmproxy beyond its documented addon API, in one place.

Each item leans on how mitmproxy 12 works inside; tests/test_mitm.py checks each assumption
against the installed mitmproxy and fails loudly when an upgrade moves it.

1. `SentHeaders`: stored flows hold labels, the wire holds real credentials. mitmproxy's
   HTTP/1 client writes a request's head with `http1.assemble_request_head`, which takes the
   header bytes from `bytes(request.data.headers)` (mitmproxy/net/http/http1/assemble.py,
   `_assemble_request_headers`), while everything that stores or shows a flow (`-w`, HAR,
   mitmweb's /flows and /updates, other addons) reads `headers.fields`. So the fields keep a
   label and `__bytes__` puts the secret in, at the moment the head is written. HTTP/2 and
   HTTP/3 build their frames from `headers.fields` (proxy/layers/http/_http2.py), so flows
   that carry credentials are kept on HTTP/1.1 upstream (`keep_http1`); a copy of the headers
   (as mitmproxy's h2->h1 conversion makes) loses the secret and sends the label: the upstream
   then refuses it, and nothing leaks.
2. `send`: a request sent again through the whole proxy (retries, the summariser), with
   mitmproxy's own replay machinery (`ReplayHandler` from addons/clientplayback.py) but
   without its one-at-a-time queue: every hook runs for it as for a client's request, the
   upstream proxy mode and TLS options apply, and it shows in mitmweb and `-w` like any flow.
3. `close_upstream`: a flow's upstream connection closed from outside (timeouts), through
   proxyserver's connection handlers, the only way to end a flow in transit (`Flow.kill`
   cannot, mitmproxy issue #4711).
4. `publish`: a flow the addon made (the upstream leg of a translated call) shown in mitmweb
   and written by `-w` like any other: every addon's hooks run for it, as mitmproxy's own
   `Master.load_flow` does (without its rewriting of hosts in reverse mode).
5. `close_after_cut`: the client connection closed after mitmproxy's own body_size_limit 413,
   which mitmproxy 12.3 can leave open (see there).
6. `never_empty`: a response stream callable that returns b"" for a chunk makes mitmproxy's
   HTTP/1 server layer write a zero-length chunk (`%x\r\n%s\r\n`, proxy/layers/http/
   _http1.py), which is the end of a chunked body: the client stops reading while the upstream
   still sends. A list of chunks is also accepted there, and an empty one sends nothing.
7. `share_listening_port`: `gemini-calo --workers N` runs N mitmdump processes on one port.
   mitmproxy binds each TCP listener with `asyncio.start_server(self.handle_stream, host,
   port)` in `AsyncioServerInstance.listen` (proxy/mode_servers.py), without `reuse_port`, so
   a second process's bind fails with EADDRINUSE. In a worker (only there), TCP listeners are
   bound the same way with `reuse_port=True`: every worker's socket has SO_REUSEPORT, and the
   Linux kernel spreads incoming connections over them (by a hash of each connection's
   addresses). No process of ours sits in the data path.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from mitmproxy import ctx, eventsequence, http
from mitmproxy.addons.clientplayback import ReplayHandler

HTTP1 = b"http/1.1"


class SentHeaders(http.Headers):
    """Headers whose stored fields hold labels while the bytes sent hold the real values."""

    def __init__(self, fields, secrets: Mapping[bytes, bytes]):
        super().__init__(fields)
        self._secrets = dict(secrets)  # lower-case name -> the real value

    def __bytes__(self) -> bytes:
        real = [(name, self._secrets.get(name.lower(), value)) for name, value in self.fields]
        return b"".join(b"%s: %s\r\n" % field for field in real)


def attach_secrets(request: http.Request, secrets: Mapping[str, str], label: str) -> None:
    """Set each header in `secrets` on the wire only; the stored request shows `label`."""
    if not secrets:
        return
    names = {name.lower().encode(): value.encode() for name, value in secrets.items()}
    held = dict(getattr(request.headers, "_secrets", {}))
    held.update(names)
    text = label.encode()
    fields = [(n, v) for n, v in request.headers.fields if n.lower() not in names]
    fields += [(name, text) for name in names]
    request.headers = SentHeaders(fields, held)


def keep_http1(server) -> None:
    """Offer only HTTP/1.1 to this upstream (see 1. above); call from `server_connect`."""
    server.alpn_offers = (HTTP1,)


# ---------------------------------------------------------------- sending again

_handlers: weakref.WeakKeyDictionary[http.HTTPFlow, ReplayHandler] = weakref.WeakKeyDictionary()


async def send(flow: http.HTTPFlow) -> None:
    """Send `flow` through the proxy and wait until it has a response or an error."""
    flow.is_replay = "request"
    flow.response = None
    flow.error = None
    handler = ReplayHandler(flow, ctx.options)
    _handlers[flow] = handler
    try:
        await handler.replay()
    finally:
        _handlers.pop(flow, None)


def close_upstream(flow: http.HTTPFlow) -> bool:
    """Close the flow's server connection; True if one was open."""
    handler = _handlers.get(flow)
    if handler is None:
        proxyserver = ctx.master.addons.get("proxyserver")
        handler = proxyserver.connections.get(flow.client_conn.id) if proxyserver else None
    io = handler.transports.get(flow.server_conn) if handler else None
    if io is None or io.writer is None:
        return False
    io.writer.close()
    return True


_published: set[asyncio.Task] = set()


def watched() -> bool:
    """Whether anything keeps or shows flows: mitmweb's (or the console's) view, `-w`, a HAR
    dump. Without them a flow made to be shown would cost every addon's hooks for nothing."""
    options = ctx.options
    return (
        ctx.master.addons.get("view") is not None
        or bool(getattr(options, "save_stream_file", None))
        or bool(getattr(options, "hardump", None))
    )


def publish(flow: http.HTTPFlow) -> None:
    """Run every addon's hooks for `flow`, soon (it is not sent anywhere), if anything keeps
    or shows flows."""
    if not watched():
        return

    async def run() -> None:
        for event in eventsequence.iterate(flow):
            await ctx.master.addons.handle_lifecycle(event)

    task = asyncio.get_running_loop().create_task(run())
    _published.add(task)
    task.add_done_callback(_published.discard)


def never_empty(stream: Callable[[bytes], bytes]) -> Callable[[bytes], list[bytes]]:
    """`flow.response.stream` for a callable that may have nothing to send for a chunk (a
    translated stream whose upstream event has no counterpart): nothing is sent then, instead
    of the end of the body."""

    def chunks(chunk: bytes) -> list[bytes]:
        out = stream(chunk)
        return [out] if out else []

    return chunks


CLOSE_WAIT = 10.0  # seconds to wait for mitmproxy's connection task to end after a cut
_closers: set[asyncio.Task] = set()  # running close_after_cut tasks (asyncio keeps weak refs)


def close_after_cut(flow: http.HTTPFlow) -> None:
    """Make sure the client's connection closes once mitmproxy's 413 has gone out.

    mitmproxy 12.3 cancels the connection's task after queueing the 413. When the client is
    still sending, that cancellation can land on `await self.server_event(...)` in
    `ConnectionHandler.handle_connection` (mitmproxy/proxy/server.py:294), outside the `try`
    that leads to `writer.close()` (server.py:319-322): the socket then stays open, the client
    waits forever and the descriptor leaks. This waits for that task to end and closes the
    writer if mitmproxy did not. Anything missing (another mitmproxy) and it does nothing.
    """
    server = ctx.master.addons.get("proxyserver")
    handler = getattr(server, "connections", {}).get(flow.client_conn.id)
    io = getattr(handler, "transports", {}).get(getattr(handler, "client", None))
    task, writer = getattr(io, "handler", None), getattr(io, "writer", None)
    if task is None or writer is None or not hasattr(writer, "is_closing"):
        return
    closer = asyncio.get_running_loop().create_task(_close_when_done(task, writer))
    _closers.add(closer)
    closer.add_done_callback(_closers.discard)


async def _close_when_done(task: asyncio.Task, writer: Any) -> None:
    await asyncio.wait([task], timeout=CLOSE_WAIT)
    if task.done() and not writer.is_closing():
        writer.close()  # the 413 queued before it still goes out first


# ---------------------------------------------------------------- one port, N processes


def share_listening_port() -> None:
    """Bind mitmproxy's TCP listeners with SO_REUSEPORT in this process (see 5. above). Call
    before mitmproxy starts; only in a worker of `gemini-calo --workers N`."""
    from mitmproxy.proxy.mode_servers import AsyncioServerInstance

    original = AsyncioServerInstance.listen
    if getattr(original, "shares_port", False):
        return

    async def listen(self, host: str, port: int) -> list:
        if self.mode.transport_protocol != "tcp" or port == 0:
            return await original(self, host, port)  # UDP modes, or a port of its own
        return [await asyncio.start_server(self.handle_stream, host, port, reuse_port=True)]

    listen.shares_port = True  # type: ignore[attr-defined]
    AsyncioServerInstance.listen = listen  # type: ignore[method-assign]
