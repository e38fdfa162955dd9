"""The Calo addon: mitmproxy hooks wired to the feature modules, in request order."""

from __future__ import annotations

import asyncio
import contextlib
import os
import weakref
from collections.abc import Callable
from typing import Any

from mitmproxy import command, ctx, http
from mitmproxy.exceptions import OptionsError
from mitmproxy.proxy.mode_specs import ReverseMode

from . import config as cfg
from . import metrics, mitm, startup
from .answer import Answerer
from .body import after_cut, cut_by_mitmproxy, limit_mitmproxy_bodies
from .call import Call
from .calllog import logger
from .clients import open_store
from .connect import OpenConnections
from .dialects import api_host, dialect_for_path
from .failover import is_prepared
from .forward import Forwarder
from .inbound_auth import Presented, take_client_credentials
from .metrics_live import Live
from .pipeline import Pipeline
from .routing import normal_host
from .state import SharedState, open_state
from .timeouts import sweep
from .translation import Memory
from .upstream_health import UpstreamHealth
from .usage import UsageStore
from .usage_shared import shared

CONFIG_POLL = 1.0  # seconds between checks of the config file's modification time


class Calo:
    """Authenticates, rewrites, routes, translates and logs LLM API calls.

    Cases handled, per request:
    - GET /health: answered by the proxy, never forwarded.
    - A host that is not an API host (explicit proxy mode): passed through untouched.
    - An API request: every client credential is taken out of the flow when its headers
      arrive, so no stored or shown flow ever holds it.
    - An unrecognised path in reverse mode or on an API host: 404 from the proxy.
    - A recognised call: proxy key checked (401), body validated (400), model overridden,
      routed, rolled up, translated when the upstream speaks another API, real credentials
      attached (on the wire only), then forwarded.
    - An upstream known to be down: 502 in the caller's shape, without trying it.
    - An answer of 429 or 5xx: sent again with the next key, inside the same call.
    - A request the addon prepared before (a retry, a summary, a stored upstream request
      replayed from mitmweb): only its credentials are attached again.
    """

    def __init__(
        self,
        *,
        config: str | None = None,
        model_transformer: Callable[[str], str] | None = None,
        **overrides: Any,
    ):
        unknown = set(overrides) - cfg.PYTHON_NAMES.keys()
        if unknown:
            raise TypeError(f"Calo() got unknown settings: {', '.join(sorted(unknown))}")
        self._config_path = config
        self._transformer = model_transformer
        self._overrides = {k: v for k, v in overrides.items() if v is not None}
        self.pipeline: Pipeline | None = None
        self._config_stamp: tuple[float, int] | None = None
        self._tasks: list[asyncio.Task] = []
        self.health = UpstreamHealth()
        self.connections = OpenConnections()
        self.memory = Memory()  # thought signatures, stored conversations: kept on reload
        self.usage: UsageStore | None = None  # clients' usage: kept across reloads
        self.forwarder = Forwarder(self.health, self.connections)
        self.answers = Answerer(self.forwarder)
        self._calls = self.forwarder.calls
        self._arrived: weakref.WeakKeyDictionary[http.HTTPFlow, Presented] = (
            weakref.WeakKeyDictionary()
        )
        self._body_limit: str | None = None  # the body_size_limit we set (body.py says why)
        # issue 14: state shared with other processes (state.py), and Prometheus metrics
        self.state: SharedState | None = None
        self.metrics: metrics.Metrics | None = None
        self._redis_url: str | None = None
        self._running = False

    # ------------------------------------------------------------ lifecycle

    def load(self, loader) -> None:
        loader.add_option(
            "calo_config",
            str | None,
            None,
            """
            Path of calo_addon's YAML configuration file. When unset, GEMINI_CALO_CONFIG is
            used, else ./calo.yaml if it exists. Environment variables (GEMINI_CALO_*) override
            the file's values; see the README for every key.
            """,
        )

    def configure(self, updated: set[str]) -> None:
        if self.pipeline is not None and "calo_config" not in updated:
            return
        startup.watch()  # while mitmproxy starts, its first error ends it in one clear line
        try:
            self._load()
        except cfg.ConfigError as e:
            if self.pipeline is not None:
                raise OptionsError(f"calo_addon: {e}") from None  # refused; the old one stays
            if startup.starting():  # one clear line, no traceback, and no listener after it
                startup.stop(f"calo_addon: {e}", 2)
            # A hot reload: until configured every API request is refused (never forwarded).
            logger.error(f"calo_addon: {e}")
            return
        # Reverse mode rewrites Host before any hook; SigV4 clients signed the Host they sent,
        # so keep it. The addon sets Host itself on every request it forwards.
        if getattr(ctx.options, "keep_host_header", True) is False:
            ctx.options.keep_host_header = True

    def _load(self) -> None:
        """Build a pipeline from the configuration as it is now, and swap it in whole.
        Flows under way keep the pipeline they started with."""
        path = getattr(ctx.options, "calo_config", None) or self._config_path
        settings = cfg.load_settings(path, cfg.environment(), self._overrides)
        self._config_stamp = _stamp(settings.source)
        if self.pipeline is not None and settings == self.pipeline.settings:
            return  # nothing changed (or a refused change rolled back): keep keys' state and cache
        self._share_state(settings.state.redis_url)
        self.usage = shared(open_store(settings, self.usage), self.state)
        pipeline = Pipeline.build(settings, self._transformer, self.memory, self.usage, self.state)
        self.metrics = metrics.configure(
            self.metrics, settings.metrics.listen, pipeline.scrub, self._live
        )
        if self.metrics is not None and self._running:
            self.metrics.start()
        old, self.pipeline = self.pipeline, pipeline
        if old is not None:
            old.log.stop()
        pipeline.log.start()
        self._body_limit = limit_mitmproxy_bodies(
            ctx.options, settings.max_body_bytes, self._body_limit
        )
        logger.info("calo_addon configured from %s", settings.source)

    def _share_state(self, redis_url: str | None) -> None:
        """The state shared with other processes: chosen by the first configuration (a change
        of state.redis_url takes a restart: the keys' and summaries' state would be split)."""
        if self.state is None:
            self.state = open_state(redis_url)
            self.health.share(self.state)
            self.memory.signatures.share(self.state)
            self.memory.conversations.share(self.state)
            self._redis_url = redis_url
        elif redis_url != self._redis_url:
            logger.warning("calo_addon: state.redis_url changed; it takes effect on restart")

    def _live(self) -> Live:
        return Live(self.pipeline, self.health, self.state or SharedState(), self.memory.signatures)

    def running(self) -> None:
        startup.unwatch()
        loop = asyncio.get_running_loop()
        self._running = True
        self._tasks = [
            loop.create_task(self._watch_config_file()),
            loop.create_task(sweep(lambda: ((f, c.deadline) for f, c in self._calls.items()))),
        ]
        if self.state is not None:
            self._tasks.append(loop.create_task(self.state.start()))
        if self.metrics is not None:
            self.metrics.start()

    async def _watch_config_file(self) -> None:
        """Reload when the YAML file changes; a config that cannot work is refused, old kept."""
        while True:
            await asyncio.sleep(CONFIG_POLL)
            if self.pipeline is None or _stamp(self.pipeline.settings.source) == self._config_stamp:
                continue
            try:
                self._load()
            except cfg.ConfigError as e:
                self._config_stamp = _stamp(self.pipeline.settings.source)  # say it once
                logger.error("calo_addon: config change refused, the previous one stays: %s", e)

    def done(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.metrics is not None:
            self.metrics.stop()
        if self.state is not None and self._running:
            with contextlib.suppress(RuntimeError):  # no loop left: the process is ending
                asyncio.get_running_loop().create_task(self.state.stop())
        self._running = False
        if self.pipeline is not None:
            self.pipeline.log.stop()
        if self.usage is not None:
            self.usage.close()
            self.usage = None

    # ------------------------------------------------------------ connections

    def tls_clienthello(self, data) -> None:
        """API calls stay on HTTP/1.1 from the client on (mitm.py: SentHeaders)."""
        sni = data.client_hello.sni or ""
        reverse = isinstance(data.context.client.proxy_mode, ReverseMode)
        if reverse or self._is_api_host(sni, 443):
            data.context.client.alpn = mitm.HTTP1

    def server_connect(self, data) -> None:
        if data.server.address and tuple(data.server.address) in self.forwarder.upstreams:
            mitm.keep_http1(data.server)

    def server_connected(self, data) -> None:
        self.connections.connected(data.client.id, data.server.address)

    def server_disconnected(self, data) -> None:
        self.connections.disconnected(data.client.id, data.server.address)

    def client_disconnected(self, client) -> None:
        self.connections.client_gone(client.id)

    # ------------------------------------------------------------ request

    def _ours(self, flow: http.HTTPFlow) -> bool:
        if isinstance(flow.client_conn.proxy_mode, ReverseMode):
            return True
        return self._is_api_host(flow.request.host, flow.request.port)

    def _is_api_host(self, host: str, port: int) -> bool:
        host = normal_host(host)
        if api_host(host) is not None:
            return True  # even unconfigured: refused in shape, never passed through
        return self.pipeline is not None and f"{host}:{port}" in self.pipeline.route_addresses

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        """Take the client's credentials out of the flow the moment its headers arrive."""
        if flow.response or flow.error or is_prepared(flow) or not self._ours(flow):
            return
        self._arrived[flow] = take_client_credentials(flow.request)
        pipeline = self.pipeline
        length = flow.request.headers.get("content-length", "")
        if pipeline and length.isdigit() and int(length) > pipeline.settings.max_body_bytes:
            path = flow.request.path.partition("?")[0]
            limit = pipeline.settings.max_body_bytes
            flow.response = dialect_for_path(path).error(413, f"request body over {limit} bytes")
            flow.response.headers["connection"] = "close"  # the unread body is not a request

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        if is_prepared(flow):
            await self.forwarder.send_prepared(flow, self.pipeline)
            return
        presented = self._arrived.pop(flow, None)
        if presented is None:
            if not self._ours(flow):
                return  # explicit proxy: only API hosts are ours
            presented = take_client_credentials(flow.request)
        try:
            answer = await self.forwarder.answer_or_forward(flow, presented, self.pipeline)
        except Exception:  # noqa: BLE001 - fail closed: a bug here must never forward the request
            logger.exception("calo_addon failed on %s %s", flow.request.method, flow.request.path)
            self._calls.pop(flow, None)
            path = flow.request.path.partition("?")[0]
            answer = dialect_for_path(path).error(
                500, "calo_addon internal error; nothing was sent upstream"
            )
        if answer is not None:
            flow.response = answer

    # ------------------------------------------------------------ response

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        call = self._calls.get(flow)
        if call is not None and not call.refused and flow.response is not None:
            self.answers.on_headers(flow, call)

    async def response(self, flow: http.HTTPFlow) -> None:
        call = self._calls.pop(flow, None)
        if call is None:
            return
        error = None
        try:
            error = await self.answers.on_answer(flow, call)
        finally:
            if call.kind != "retry":
                self._finish(
                    flow, call, flow.response.status_code if flow.response else None, error
                )

    def error(self, flow: http.HTTPFlow) -> None:
        self._arrived.pop(flow, None)
        call = self._calls.pop(flow, None)
        if call is None:
            if cut_by_mitmproxy(flow):  # mitmproxy answered 413 itself (body.py says why)
                reverse = isinstance(flow.client_conn.proxy_mode, ReverseMode)
                ours = reverse or self._is_api_host(flow.request.host, flow.request.port)
                after_cut(flow, self.pipeline.log if self.pipeline and ours else None)
            return
        message = flow.error.msg if flow.error else "unknown error"
        # a streamed answer's status line reached the client: that is the status it got
        status = flow.response.status_code if flow.response and call.tap is not None else None
        if call.deadline:
            call.deadline.cancel()
            if call.deadline.expired:
                message = f"upstream timed out after {call.deadline.seconds:g}s"
                status = 504
        translator = getattr(call.tap, "translator", None)
        complete = translator.finished if translator else call.stream_complete
        never_connected = flow.server_conn.timestamp_tcp_setup is None
        if call.upstream is not None and flow.response is None and never_connected:
            self.health.mark_down(call.upstream.address, message)
        if call.kind != "retry":
            # a client that closes right after the stream's last event got the whole answer
            self._finish(flow, call, status=status, error=None if complete else message)

    def _finish(
        self, flow: http.HTTPFlow, call: Call, status: int | None, error: str | None = None
    ) -> None:
        log = self.pipeline.log if self.pipeline else call.pipeline.log  # the current file
        call.pipeline.clients.charge(call.client, call.usage)  # before the line: it is done
        record = call.finish(flow, status, error, log)
        if self.metrics is not None:
            self.metrics.observe(record)

    # ------------------------------------------------------------ commands

    @command.command("calo.status")
    def status(self) -> str:
        """calo_addon's keys per route with their use counts, and upstreams known to be down."""
        if self.pipeline is None:
            return "calo_addon: no valid configuration"
        status = self.pipeline.status(self.health.snapshot())
        if self.state is not None:
            sharing = "up" if self.state.up else "unreachable: serving on this process's state"
            status += f"\nshared state: {self.state.describe()} ({sharing})"
        return status

    @command.command("calo.usage")
    def usage_report(self) -> str:
        """Each client's usage (last minute, today, this month, in all) and its limits."""
        if self.pipeline is None:
            return "calo_addon: no valid configuration"
        return self.pipeline.clients.report()


def _stamp(source: str) -> tuple[float, int] | None:
    try:
        stat = os.stat(source)
    except OSError:
        return None
    return stat.st_mtime, stat.st_size
