"""The Calo addon: mitmproxy hooks wired to the feature modules, in request order."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
import weakref
from collections.abc import Callable
from typing import Any

from mitmproxy import command, ctx, http
from mitmproxy.exceptions import OptionsError
from mitmproxy.proxy.mode_specs import ReverseMode

from . import aws, connect, failover
from . import config as cfg
from .body import JsonBody, after_cut, cut_by_mitmproxy, limit_mitmproxy_bodies
from .call import Call
from .calllog import logger
from .connect import ConnectFailed, OpenConnections
from .credentials import attach, label_sent_credentials, point_at
from .dialects import Refusal, dialect_for_path, recognise
from .inbound_auth import presented_key, strip_client_credentials
from .keypool import AllKeysCooling, Key
from .pipeline import Pipeline
from .routing import GOOGLE_HOST
from .streams import StreamTap, stream_format
from .timeouts import Deadline, sweep
from .upstream_health import UpstreamHealth

CONFIG_POLL = 1.0  # seconds between checks of the config file's modification time
API_HOSTS = frozenset({GOOGLE_HOST, "api.openai.com"})
HEALTH = b'{"status": "ok"}'


class Calo:
    """Authenticates, rewrites, routes and logs Gemini and OpenAI-compatible API calls.

    Cases handled, per request:
    - GET /health: answered by the proxy, never forwarded.
    - A host that is not an API host (explicit proxy mode): passed through untouched.
    - An unrecognised path in reverse mode or on an API host: 404 from the proxy.
    - A recognised call: proxy key checked (401), body validated (400), model overridden,
      routed, client credentials stripped, real credentials attached, then forwarded.
    - An upstream known to be down: 502 in the caller's shape, without trying it.
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
        self._overrides = {cfg.PYTHON_NAMES[k]: v for k, v in overrides.items() if v is not None}
        self.pipeline: Pipeline | None = None
        self._config_stamp: tuple[float, int] | None = None
        self._watcher: asyncio.Task | None = None
        self._sweeper: asyncio.Task | None = None
        self.health = UpstreamHealth()
        self.connections = OpenConnections()
        self.failover = failover.Failover()
        self._calls: weakref.WeakKeyDictionary[http.HTTPFlow, Call] = weakref.WeakKeyDictionary()
        self._body_limit: str | None = None  # the body_size_limit we set (body.py says why)

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
        try:
            self._load()
        except cfg.ConfigError as e:
            if self.pipeline is not None:
                raise OptionsError(f"calo_addon: {e}") from None  # refused; the old one stays
            # At startup one clear line, no traceback: mitmdump exits on an error logged while
            # starting, and until configured every API request is refused (never forwarded).
            logging.getLogger(__name__).error(f"calo_addon: {e}")
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
        old, self.pipeline = self.pipeline, Pipeline.build(settings, self._transformer)
        if old is not None:
            old.log.stop()
        self.pipeline.log.start()
        self._body_limit = limit_mitmproxy_bodies(
            ctx.options, settings.max_body_bytes, self._body_limit
        )
        logger.info("calo_addon configured from %s", settings.source)

    def running(self) -> None:
        loop = asyncio.get_running_loop()
        self._watcher = loop.create_task(self._watch_config_file())
        self._sweeper = loop.create_task(
            sweep(lambda: ((f, c.deadline) for f, c in self._calls.items()))
        )

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
        for task in (self._watcher, self._sweeper):
            if task is not None:
                task.cancel()
        if self.pipeline is not None:
            self.pipeline.log.stop()

    # ------------------------------------------------------------ request

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        """Refuse an oversized body before mitmproxy reads it."""
        pipeline = self.pipeline
        if pipeline is None or flow.response or flow.error:
            return
        length = flow.request.headers.get("content-length", "")
        if length.isdigit() and int(length) > pipeline.settings.max_body_bytes:
            self._refuse_oversized(flow, pipeline)

    def _refuse_oversized(self, flow: http.HTTPFlow, pipeline: Pipeline) -> None:
        reverse = isinstance(flow.client_conn.proxy_mode, ReverseMode)
        if not reverse and not self._is_api_host(flow.request.host, flow.request.port):
            return
        limit = pipeline.settings.max_body_bytes
        path = flow.request.path.partition("?")[0]
        flow.response = dialect_for_path(path).error(413, f"request body over {limit} bytes")
        flow.response.headers["connection"] = (
            "close"  # the unread body must not be parsed as a request
        )
        strip_client_credentials(flow.request)

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        reverse = isinstance(flow.client_conn.proxy_mode, ReverseMode)
        if not reverse and not self._is_api_host(flow.request.host, flow.request.port):
            return  # explicit proxy: only API hosts are ours
        try:
            answer = await self._answer_or_forward(flow)
        except Exception:  # noqa: BLE001 - fail closed: a bug here must never forward the request
            logger.exception("calo_addon failed on %s %s", flow.request.method, flow.request.path)
            self._calls.pop(flow, None)
            path = flow.request.path.partition("?")[0]
            answer = dialect_for_path(path).error(
                500, "calo_addon internal error; nothing was sent upstream"
            )
        if answer is not None:
            flow.response = answer
            strip_client_credentials(flow.request)  # the stored flow keeps no client key

    def _is_api_host(self, host: str, port: int) -> bool:
        if host in API_HOSTS or aws.is_bedrock_host(host):
            return True  # even unconfigured: refused in shape, never passed through
        return self.pipeline is not None and f"{host}:{port}" in self.pipeline.route_addresses

    async def _answer_or_forward(self, flow: http.HTTPFlow) -> http.Response | None:
        """The proxy's own answer to this request, or None once it is ready to go upstream."""
        request, pipeline = flow.request, self.pipeline
        path = request.path.partition("?")[0]
        if request.method == "GET" and path == "/health":
            return http.Response.make(200, HEALTH, {"content-type": "application/json"})
        if pipeline is None:
            return dialect_for_path(path).error(503, "calo_addon has no valid configuration")
        limit = pipeline.settings.max_body_bytes
        if len(request.raw_content or b"") > limit:  # a chunked body has no content-length
            return dialect_for_path(path).error(413, f"request body over {limit} bytes")
        try:
            presented, source = presented_key(request)
            op = recognise(request.method, path, source)
        except Refusal as refusal:
            return dialect_for_path(path).error(refusal.status, refusal.message, refusal.code)
        if op is None:
            message = f"{request.method} {path} is not an API this proxy serves"
            return dialect_for_path(path).error(404, message)
        call = self._calls[flow] = Call(op, pipeline, presented=presented)
        try:
            await self._prepare(flow, call, pipeline)
        except Refusal as refusal:
            call.refused = refusal
            answer = op.dialect.error(refusal.status, pipeline.scrub(refusal.message), refusal.code)
            answer.headers.update(refusal.headers)
            return answer
        return None

    async def _prepare(self, flow: http.HTTPFlow, call: Call, pipeline: Pipeline) -> None:
        """The request pipeline, in order. Any step may refuse with an error in the API's shape."""
        request, op = flow.request, call.op
        if flow.is_replay != "request":  # a replay from mitmweb is the operator's, not a client's
            pipeline.inbound.check(request, call.presented)
        body = JsonBody(request, pipeline.settings.max_body_bytes) if op.needs_body else None
        payload = body.value if body else None

        call.requested_model = op.dialect.model(op, payload)
        model = call.requested_model
        if op.needs_body and pipeline.override:
            model = pipeline.override.apply(model)
            changed = model is not None and model != call.requested_model
            if changed and op.dialect.set_model(op, request, payload, model):
                body.mark_changed()
        call.effective_model = model
        call.streaming = op.dialect.streams(op, request, payload)
        if pipeline.rollup is not None and op.conversation:
            call.rollup = pipeline.rollup.plan(op, payload)
            if call.rollup is not None:
                call.events = [] if call.streaming else None
                if call.rollup.used == "summary":
                    body.mark_changed()

        signed_for = aws.signed_region(request)
        client_aws = aws.ClientAWS.from_headers(strip_client_credentials(request))
        region = client_aws.region or aws.region_from_host(request.host) or signed_for
        upstream = call.upstream = pipeline.router.select(op, model, region)
        if reason := self.health.refusal_reason(upstream.address):
            raise Refusal(502, reason)
        direct = flow.server_conn.via is None  # not through an upstream proxy (--mode upstream)
        if direct and not self.connections.has(flow.client_conn.id, upstream.host, upstream.port):
            try:  # connect.py: so that a failure is ours to answer, in shape
                await connect.check(
                    upstream.host,
                    upstream.port,
                    upstream.connect_timeout,
                    pipeline.settings.max_retries,
                    lambda reason: call.retries.append(f"connect: {reason}"),
                )
            except ConnectFailed as failed:
                self.health.mark_down(upstream.address, failed.reason)
                status = 504 if failed.timed_out else 502
                raise Refusal(status, f"upstream {upstream.address}: {failed.reason}") from None

        point_at(request, op, upstream)
        if body:
            body.write_back()
        try:
            used = await attach(flow, upstream, client_aws)
        except AllKeysCooling as cooling:
            wait = max(1, math.ceil(cooling.retry_after))
            raise Refusal(429, str(cooling), headers={"Retry-After": str(wait)}) from None
        call.key = used if isinstance(used, Key) else None
        call.key_label = used.label if isinstance(used, Key) else used
        call.deadline = Deadline(upstream.timeout)

    def server_connected(self, data) -> None:
        self.connections.connected(data.client.id, data.server.address)

    def server_disconnected(self, data) -> None:
        self.connections.disconnected(data.client.id, data.server.address)

    def client_disconnected(self, client) -> None:
        self.connections.client_gone(client.id)

    # ------------------------------------------------------------ response

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        call = self._calls.get(flow)
        if call is None or call.refused or flow.response is None:
            return
        if call.deadline:
            call.deadline.cancel()  # re-armed per chunk below if the answer streams
        label_sent_credentials(flow.request, call.key_label)
        call.labelled = True
        call.first_byte = time.monotonic()
        content_type = flow.response.headers.get("content-type", "")
        fmt = stream_format(content_type)
        # error answers and retries are buffered: a retry replaces them before any byte leaves
        buffer = failover.retryable(flow) or failover.is_retry(flow)
        if fmt and (call.streaming or fmt == "sse") and not buffer:
            call.tap = StreamTap(
                fmt, flow.response.headers.get("content-encoding", ""), call.observe
            )
            flow.response.stream = call.tap
            if call.deadline:
                call.tap.on_chunk = call.deadline.rearm
                call.deadline.rearm(call.pipeline.settings.stream_idle_timeout)

    async def response(self, flow: http.HTTPFlow) -> None:
        call = self._calls.pop(flow, None)
        if call is None:
            return
        if call.deadline:
            call.deadline.cancel()
        if call.refused is None and call.upstream is not None:
            self.health.mark_up(call.upstream.address)
            call.cool_key_if_refused(flow.response)
            if call.tap is None:
                call.read_answer(flow.response)
            elif flow.response and flow.response.status_code == 200 and not call.tap.broken:
                call.remember_reply(None)
        if failover.is_retry(flow):
            self.failover.settle(flow)
        elif call.refused is None and call.tap is None:
            await self.failover.retry_while_failing(flow, call)
        error = None
        if call.tap and call.tap.exceptions:  # an exception event inside a 200 event stream
            error = "; ".join(call.tap.exceptions)
        self._finish(flow, call, flow.response.status_code if flow.response else None, error)

    def error(self, flow: http.HTTPFlow) -> None:
        call = self._calls.pop(flow, None)
        if call is None:
            if cut_by_mitmproxy(flow):  # mitmproxy answered 413 itself (body.py says why)
                reverse = isinstance(flow.client_conn.proxy_mode, ReverseMode)
                ours = reverse or self._is_api_host(flow.request.host, flow.request.port)
                after_cut(flow, self.pipeline.log if self.pipeline and ours else None)
            return
        message = flow.error.msg if flow.error else "unknown error"
        status = None
        if call.deadline:
            call.deadline.cancel()
            if call.deadline.expired:
                message = f"upstream timed out after {call.deadline.seconds:g}s"
                status = 504
        never_connected = flow.server_conn.timestamp_tcp_setup is None
        if call.upstream is not None and flow.response is None and never_connected:
            self.health.mark_down(call.upstream.address, message)
        self._finish(flow, call, status=status, error=message)
        if failover.is_retry(flow):
            self.failover.settle(flow)

    def _finish(
        self, flow: http.HTTPFlow, call: Call, status: int | None, error: str | None = None
    ) -> None:
        log = self.pipeline.log if self.pipeline else call.pipeline.log  # the current file
        call.finish(flow, status, error, log)

    # ------------------------------------------------------------ commands

    @command.command("calo.status")
    def status(self) -> str:
        """calo_addon's keys per route with their use counts, and upstreams known to be down."""
        if self.pipeline is None:
            return "calo_addon: no valid configuration"
        return self.pipeline.status(self.health.snapshot())


def _stamp(source: str) -> tuple[float, int] | None:
    try:
        stat = os.stat(source)
    except OSError:
        return None
    return stat.st_mtime, stat.st_size
