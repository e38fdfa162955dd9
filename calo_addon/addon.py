"""The Calo addon: mitmproxy hooks wired to the feature modules, in request order."""

from __future__ import annotations

import asyncio
import math
import os
import time
import weakref
from collections.abc import Callable
from typing import Any

import orjson
from mitmproxy import command, ctx, http
from mitmproxy.exceptions import OptionsError
from mitmproxy.proxy.mode_specs import ReverseMode

from . import config as cfg
from . import connect, encoding, mitm, redact, startup
from .aws import ClientAWS, signed_region
from .body import JsonBody, after_cut, cut_by_mitmproxy, limit_mitmproxy_bodies
from .call import Call, json_payload
from .calllog import logger
from .connect import ConnectFailed, OpenConnections
from .credentials import attach, passthrough_path, point_at
from .dialects import BY_NAME, Operation, Refusal, api_host, dialect_for_path, recognise
from .dialects.bedrock import region_from_host
from .failover import PREPARED, is_prepared, prepared_copy, retryable
from .inbound_auth import Presented, take_client_credentials
from .keypool import AllKeysCooling
from .pipeline import Pipeline
from .routing import Upstream, normal_host
from .streams import StreamTap, Transcoder, stream_format
from .timeouts import Deadline, sweep
from .translate.signatures import SignatureMemory
from .translation import Translation
from .upstream_health import UpstreamHealth

CONFIG_POLL = 1.0  # seconds between checks of the config file's modification time
HEALTH = b'{"status": "ok"}'
OUTBOUND_CREDENTIALS = ("authorization", "x-goog-api-key", "x-api-key", "x-amz-security-token")


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
        self.signatures = SignatureMemory()
        self._calls: weakref.WeakKeyDictionary[http.HTTPFlow, Call] = weakref.WeakKeyDictionary()
        self._arrived: weakref.WeakKeyDictionary[http.HTTPFlow, Presented] = (
            weakref.WeakKeyDictionary()
        )
        # a retry's flow -> the call it retries; and -> its own call, once sent
        self._retry_of: weakref.WeakKeyDictionary[http.HTTPFlow, Call] = weakref.WeakKeyDictionary()
        self._retried: weakref.WeakKeyDictionary[http.HTTPFlow, Call] = weakref.WeakKeyDictionary()
        self._upstreams: set[tuple[str, int]] = set()  # addresses the addon sends credentials to
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
        pipeline = Pipeline.build(settings, self._transformer, self.signatures)
        old, self.pipeline = self.pipeline, pipeline
        if old is not None:
            old.log.stop()
        pipeline.log.start()
        self._body_limit = limit_mitmproxy_bodies(
            ctx.options, settings.max_body_bytes, self._body_limit
        )
        logger.info("calo_addon configured from %s", settings.source)

    def running(self) -> None:
        startup.unwatch()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._watch_config_file()),
            loop.create_task(sweep(lambda: ((f, c.deadline) for f, c in self._calls.items()))),
        ]

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
        if self.pipeline is not None:
            self.pipeline.log.stop()

    # ------------------------------------------------------------ connections

    def tls_clienthello(self, data) -> None:
        """API calls stay on HTTP/1.1 from the client on (mitm.py: SentHeaders)."""
        sni = data.client_hello.sni or ""
        reverse = isinstance(data.context.client.proxy_mode, ReverseMode)
        if reverse or self._is_api_host(sni, 443):
            data.context.client.alpn = mitm.HTTP1

    def server_connect(self, data) -> None:
        if data.server.address and tuple(data.server.address) in self._upstreams:
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
            await self._send_prepared(flow)
            return
        presented = self._arrived.pop(flow, None)
        if presented is None:
            if not self._ours(flow):
                return  # explicit proxy: only API hosts are ours
            presented = take_client_credentials(flow.request)
        try:
            answer = await self._answer_or_forward(flow, presented)
        except Exception:  # noqa: BLE001 - fail closed: a bug here must never forward the request
            logger.exception("calo_addon failed on %s %s", flow.request.method, flow.request.path)
            self._calls.pop(flow, None)
            path = flow.request.path.partition("?")[0]
            answer = dialect_for_path(path).error(
                500, "calo_addon internal error; nothing was sent upstream"
            )
        if answer is not None:
            flow.response = answer

    async def _answer_or_forward(
        self, flow: http.HTTPFlow, presented: Presented
    ) -> http.Response | None:
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
            op = recognise(request.method, path, presented.source)
        except Refusal as refusal:
            return dialect_for_path(path).error(refusal.status, refusal.message, refusal.code)
        if op is None:
            message = f"{request.method} {path} is not an API this proxy serves"
            return dialect_for_path(path).error(404, message)
        call = self._calls[flow] = Call(op, pipeline, presented)
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
        model = self._choose_model(call, pipeline, request, body, payload)
        call.streaming = op.dialect.streams(op, request, payload)
        client_aws = ClientAWS.from_headers(
            call.presented.client_aws, pipeline.settings.bedrock.default_region
        )
        upstream = self._route(flow, call, pipeline, model, client_aws)
        if pipeline.rollup is not None and op.conversation:
            call.rollup = pipeline.rollup.plan(op, payload)
            if call.rollup is not None and call.rollup.used == "summary":
                body.mark_changed()
        path = self._shape_for_upstream(flow, call, pipeline, body, payload)
        await self._check_reachable(flow, call, upstream, pipeline)
        point_at(request, upstream, path)
        self._upstreams.add((upstream.host, upstream.port))
        if body:
            body.write_back()
        flow.metadata[PREPARED] = {
            "kind": "call",
            "api": op.dialect.name,
            "operation": op.name,
            "route": upstream.name,
            "url": f"{upstream.scheme}://{upstream.host}:{upstream.port}{upstream.path_prefix}",
            "wire": call.wire.name,
        }
        await self._attach(flow, call, client_aws)

    def _choose_model(
        self, call: Call, pipeline: Pipeline, request: http.Request, body, payload
    ) -> str | None:
        """The requested model, then model_override's (rewritten where the API keeps it)."""
        op = call.op
        call.requested_model = model = op.dialect.model(op, payload)
        if op.needs_body and pipeline.override:
            model = pipeline.override.apply(model)
            changed = model is not None and model != call.requested_model
            if changed and op.dialect.set_model(op, request, payload, model):
                body.mark_changed()
        call.effective_model = model
        return model

    def _route(
        self, flow: http.HTTPFlow, call: Call, pipeline: Pipeline, model, client_aws
    ) -> Upstream:
        request = flow.request
        region = (
            client_aws.region
            or region_from_host(normal_host(request.host))
            or signed_region(call.presented.signed_fields)
        )
        reverse = isinstance(flow.client_conn.proxy_mode, ReverseMode)
        client_host = None if reverse else request.host
        upstream = pipeline.router.select(call.op, model, region, client_host)
        call.upstream, call.wire = upstream, upstream.wire(call.op.dialect)
        call.upstream_model = upstream.model or model
        call.client_aws = client_aws
        return upstream

    def _shape_for_upstream(self, flow, call: Call, pipeline: Pipeline, body, payload) -> str:
        """Passthrough: the client's path on the upstream's layer, with the route's model.
        Translated: the upstream protocol's body and path. Returns the path to send to."""
        op, request, upstream = call.op, flow.request, call.upstream
        if call.wire is op.dialect:
            model = call.upstream_model
            rewrite = upstream.model and model != call.effective_model
            if rewrite and op.dialect.set_model(op, request, payload, model):
                body.mark_changed()
            return passthrough_path(request, op, upstream)
        if not call.upstream_model:
            raise Refusal(400, "the request names no model")
        call.client_request = request.copy()
        call.translation, translated = Translation.start(
            op, call.wire, payload, call.upstream_model, call.streaming, pipeline.signatures
        )
        body.replace(translated)
        request.headers["content-type"] = "application/json"
        request.headers.pop("accept-encoding", None)  # the answer is read, so take it plain
        return call.translation.path

    async def _check_reachable(self, flow, call: Call, upstream: Upstream, pipeline) -> None:
        """Refuse in shape an upstream known to be down, or one that refuses a connection."""
        if reason := self.health.refusal_reason(upstream.address):
            raise Refusal(502, reason)
        direct = flow.server_conn.via is None  # not through an upstream proxy (--mode upstream)
        if not direct or self.connections.has(flow.client_conn.id, upstream.host, upstream.port):
            return
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

    async def _attach(self, flow: http.HTTPFlow, call: Call, client_aws) -> None:
        """The real credentials, on the wire only; and the deadline for the answer."""
        for name in OUTBOUND_CREDENTIALS:  # labels a stored or copied request still carries
            flow.request.headers.pop(name, None)
        try:
            call.sent = await attach(flow, call.upstream, call.wire, client_aws)
        except AllKeysCooling as cooling:
            wait = max(1, math.ceil(cooling.retry_after))
            raise Refusal(429, str(cooling), headers={"Retry-After": str(wait)}) from None
        call.deadline = Deadline(call.upstream.timeout)

    async def _send_prepared(self, flow: http.HTTPFlow) -> None:
        """A request prepared before: a retry, a summary, or a stored upstream request
        replayed by the operator. Only its credentials are attached again."""
        meta = flow.metadata[PREPARED]
        if meta.get("kind") == "leg":
            return  # the upstream leg of a translated call, shown beside it: never sent
        parent = self._retry_of.pop(flow, None)
        pipeline = parent.pipeline if parent else self.pipeline
        wire = BY_NAME.get(meta.get("wire", ""))
        if pipeline is None or wire is None:
            flow.response = (wire or dialect_for_path(flow.request.path)).error(
                503, "calo_addon has no valid configuration for this request"
            )
            return
        upstream = (
            parent.upstream if parent else pipeline.router.by_name(meta["route"], meta.get("url"))
        )
        if upstream is None:
            flow.response = wire.error(409, f"route {meta['route']!r} is no longer configured")
            return
        op = parent.op if parent else Operation(wire, meta.get("operation", "replay"))
        kind = "retry" if parent else meta.get("kind", "replay")
        call = self._calls[flow] = Call(op, pipeline, kind=kind)
        if parent is not None:
            self._retried[flow] = call
        call.upstream, call.wire = upstream, (parent.wire if parent else wire)
        call.requested_model = call.effective_model = meta.get("model")
        try:
            await self._attach(flow, call, parent.client_aws if parent else None)
        except Refusal as refusal:
            call.refused = refusal
            flow.response = call.wire.error(refusal.status, refusal.message, refusal.code)

    # ------------------------------------------------------------ response

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        call = self._calls.get(flow)
        if call is None or call.refused or flow.response is None:
            return
        if call.deadline:
            call.deadline.cancel()  # re-armed per chunk below if the answer streams
        call.first_byte = time.monotonic()
        response = flow.response
        if call.kind != "call" or retryable(response):
            return  # retries, summaries and error answers are read whole
        content_type = response.headers.get("content-type", "")
        fmt = stream_format(content_type)
        encoding = response.headers.get("content-encoding", "")
        if call.translation is not None:
            if call.streaming and response.status_code == 200 and fmt:
                translator = call.translation.transcoder(call.observe_usage)
                call.tap = Transcoder(fmt, encoding, translator, translator.close)
                call.tap.translator = translator
                for name in ("content-encoding", "content-length"):
                    response.headers.pop(name, None)
                response.headers["content-type"] = "text/event-stream; charset=utf-8"
        elif fmt and (call.streaming or fmt == "sse"):
            call.collect_reply()
            call.tap = StreamTap(fmt, encoding, call.observe)
        if call.tap is not None:
            flow.response.stream = call.tap
            if call.deadline:
                call.tap.on_chunk = call.deadline.rearm
                call.deadline.rearm(call.pipeline.settings.stream_idle_timeout)

    async def response(self, flow: http.HTTPFlow) -> None:
        call = self._calls.pop(flow, None)
        if call is None:
            return
        error = None
        try:
            error = await self._answered(flow, call)
        finally:
            if call.kind != "retry":
                self._finish(
                    flow, call, flow.response.status_code if flow.response else None, error
                )

    async def _answered(self, flow: http.HTTPFlow, call: Call) -> str | None:
        """Everything the answer asks for; returns an error to log, if any."""
        if call.deadline:
            call.deadline.cancel()
        if call.refused is not None or call.upstream is None:
            return None
        self.health.mark_up(call.upstream.address)
        call.cool_key_if_refused(flow.response)
        if call.kind == "retry":
            return None
        if call.tap is None:
            if call.kind == "call":
                await self._retry_while_failing(flow, call)
            self._read_whole(flow, call)
            return None
        translator = getattr(call.tap, "translator", None)
        if translator is not None:
            call.stream_complete = translator.finished
            return "; ".join(translator.errors) or None
        if flow.response.status_code == 200 and not call.tap.broken:
            call.remember_reply()
        return "; ".join(call.tap.exceptions) or None

    async def _retry_while_failing(self, flow: http.HTTPFlow, call: Call) -> None:
        """Send the prepared request again while its answer is retryable, retries are left
        and a key is ready (failover.py); the last answer becomes the flow's response."""
        limit = call.pipeline.settings.max_retries
        while retryable(flow.response) and len(call.retries) < limit:
            keys = call.upstream.keys
            if call.upstream.auth.pooled and keys and not keys.ready():
                break  # every key cooling: the upstream's own answer is the client's
            call.retries.append(f"{flow.response.status_code} via {call.sent.label or '-'}")
            retry = prepared_copy(flow, "retry")
            self._retry_of[retry] = call
            await mitm.send(retry)
            if retry.response is None:
                call.retries[-1] += f" (retry failed: {retry.error.msg if retry.error else '?'})"
                break
            flow.response = retry.response
            retried = self._retried.pop(retry, None)
            if retried is not None:
                call.sent = retried.sent

    def _read_whole(self, flow: http.HTTPFlow, call: Call) -> None:
        """A whole answer: usage, translation to the client's API, the rollup's reply, and
        no secret in an error body."""
        response = flow.response
        if response is None:
            return
        raw = _decoded(response, call.pipeline.settings.max_body_bytes)
        payload = (
            json_payload(raw)
            if raw is not None and "json" in response.headers.get("content-type", "")
            else None
        )
        call.read_answer(payload, response.status_code)
        client_payload = payload
        if call.translation is not None:
            client_payload = self._translate_answer(flow, call, payload)
        if response.status_code == 200:
            call.remember_reply(client_payload)
        elif raw is not None and call.translation is None:
            _scrub_body(response, raw, call.pipeline.scrub)

    def _translate_answer(self, flow: http.HTTPFlow, call: Call, payload) -> Any:
        response, translation = flow.response, call.translation
        body, error = translation.answer(response.status_code, payload)
        if body is None:
            status = response.status_code if response.status_code >= 400 else 502
            answer = call.op.dialect.error(status, call.pipeline.scrub(error or "upstream error"))
            if "retry-after" in response.headers:
                answer.headers["retry-after"] = response.headers["retry-after"]
            flow.response = answer
            return None
        response.headers.pop("content-encoding", None)
        response.headers["content-type"] = "application/json"
        response.content = orjson.dumps(body)
        return body

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
        call.finish(flow, status, error, log)

    # ------------------------------------------------------------ commands

    @command.command("calo.status")
    def status(self) -> str:
        """calo_addon's keys per route with their use counts, and upstreams known to be down."""
        if self.pipeline is None:
            return "calo_addon: no valid configuration"
        return self.pipeline.status(self.health.snapshot())


def _decoded(response: http.Response, limit: int) -> bytes | None:
    """The answer's body decoded with a cap (a compressed bomb is never inflated), or None
    when it cannot be, or would be past `limit`: it then passes as it came, unread."""
    try:
        return encoding.decode(
            response.raw_content or b"", response.headers.get("content-encoding", ""), limit
        )
    except (ValueError, encoding.TooLarge):
        return None


def _scrub_body(response: http.Response, raw: bytes, scrub: redact.Scrubber) -> None:
    """An upstream error that echoes a real key (some do) reaches no one with it."""
    text = raw.decode("utf-8", "replace")
    cleaned = scrub(text)
    if cleaned != text:
        response.text = cleaned


def _stamp(source: str) -> tuple[float, int] | None:
    try:
        stat = os.stat(source)
    except OSError:
        return None
    return stat.st_mtime, stat.st_size
