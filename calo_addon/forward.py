"""The request side of a call: from the client's request to one ready to go upstream.

`Forwarder.prepare` is the pipeline, one named step after another: authenticate, read the
body, choose the model (model_override), admit the client (its expiry, models and limits),
route, roll up, shape for the upstream (passthrough or translated), check the upstream is
reachable, point the request at it, attach credentials.
Any step may refuse with an error in the client's API shape. A request prepared before (a
retry, a summary, a stored upstream request replayed from mitmweb) only gets credentials again.
"""

from __future__ import annotations

import math
import weakref

from mitmproxy import http
from mitmproxy.proxy.mode_specs import ReverseMode

from . import connect, mitm
from .aws import ClientAWS, signed_region
from .body import JsonBody
from .call import Call
from .connect import ConnectFailed, OpenConnections
from .credentials import attach, passthrough_path, point_at
from .dialects import BY_NAME, Dialect, Operation, Refusal, dialect_for_path, recognise
from .dialects.base import CREDENTIAL_HEADERS
from .dialects.bedrock import region_from_host
from .failover import PREPARED
from .inbound_auth import Presented
from .keypool import AllKeysCooling
from .pipeline import Pipeline
from .routing import Upstream, normal_host
from .timeouts import Deadline
from .translation import Answered, Translation
from .upstream_health import UpstreamHealth

HEALTH = b'{"status": "ok"}'


class Forwarder:
    """Prepares calls and keeps what the addon knows about flows under way."""

    def __init__(self, health: UpstreamHealth, connections: OpenConnections):
        self.health = health
        self.connections = connections
        self.upstreams: set[tuple[str, int]] = set()  # addresses credentials are sent to
        self.calls: weakref.WeakKeyDictionary[http.HTTPFlow, Call] = weakref.WeakKeyDictionary()
        # a retry's flow -> the call it retries; and -> its own call, once sent
        self.retry_of: weakref.WeakKeyDictionary[http.HTTPFlow, Call] = weakref.WeakKeyDictionary()
        self.retried: weakref.WeakKeyDictionary[http.HTTPFlow, Call] = weakref.WeakKeyDictionary()

    async def answer_or_forward(
        self, flow: http.HTTPFlow, presented: Presented, pipeline: Pipeline | None
    ) -> http.Response | None:
        """The proxy's own answer to this request, or None once it is ready to go upstream."""
        request = flow.request
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
        call = self.calls[flow] = Call(op, pipeline, presented)
        try:
            await self.prepare(flow, call, pipeline)
        except Answered as answered:  # the proxy's own answer, e.g. an estimated token count
            call.answered = answered.note
            return answered.response
        except Refusal as refusal:
            call.refused = refusal
            answer = op.dialect.error(refusal.status, pipeline.scrub(refusal.message), refusal.code)
            answer.headers.update(refusal.headers)
            return answer
        return None

    async def prepare(self, flow: http.HTTPFlow, call: Call, pipeline: Pipeline) -> None:
        """The request pipeline, in order. Any step may refuse with an error in the API's shape."""
        request, op = flow.request, call.op
        if flow.is_replay != "request":  # a replay from mitmweb is the operator's, not a client's
            call.client = pipeline.inbound.check(request, call.presented)
        body = JsonBody(request, pipeline.settings.max_body_bytes) if op.needs_body else None
        payload = body.value if body else None
        model = self._choose_model(call, pipeline, request, body, payload)
        await pipeline.clients.admit(call.client, op, model)  # expiry, models, limits
        if pipeline.clients.counts_tokens(call.client) and op.dialect.ask_stream_usage(op, payload):
            assert body is not None  # a stream flag lives in a body
            body.mark_changed()  # a token budget is only as good as the usage reported
        call.streaming = op.dialect.streams(op, request, payload)
        client_aws = ClientAWS.from_headers(
            call.presented.client_aws, pipeline.settings.bedrock.default_region
        )
        upstream, wire = self._route(flow, call, pipeline, model, client_aws)
        if pipeline.rollup is not None and op.conversation:
            call.rollup = pipeline.rollup.plan(op, payload)
            if call.rollup is not None and call.rollup.used == "summary":
                assert body is not None, "a summary plan is made from the body it summarises"
                body.mark_changed()
        path = await self._shape_for_upstream(flow, call, pipeline, body, payload)
        await self._check_reachable(flow, call, upstream, pipeline)
        point_at(request, upstream, path)
        self.upstreams.add((upstream.host, upstream.port))
        if body:
            body.write_back()
        flow.metadata[PREPARED] = {
            "kind": "call",
            "api": op.dialect.name,
            "operation": op.name,
            "route": upstream.name,
            "url": f"{upstream.scheme}://{upstream.host}:{upstream.port}{upstream.path_prefix}",
            "wire": wire.name,
        }
        await self.attach(flow, call, client_aws)

    def _choose_model(
        self, call: Call, pipeline: Pipeline, request: http.Request, body, payload
    ) -> str | None:
        """The requested model, then model_override's (rewritten where the API keeps it)."""
        op = call.op
        call.requested_model = model = op.dialect.model(op, payload)
        if op.needs_body and pipeline.override:
            model = pipeline.override.apply(model)
            if (
                model is not None
                and model != call.requested_model
                and op.dialect.set_model(op, request, payload, model)
            ):
                body.mark_changed()
        call.effective_model = model
        return model

    def _route(
        self, flow: http.HTTPFlow, call: Call, pipeline: Pipeline, model, client_aws
    ) -> tuple[Upstream, Dialect]:
        """The upstream for this call and the protocol it speaks (set on the call too)."""
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
        return call.routed()

    async def _shape_for_upstream(self, flow, call: Call, pipeline: Pipeline, body, payload) -> str:
        """Passthrough: the client's path on the upstream's layer, with the route's model.
        Translated: the upstream protocol's body and path. Returns the path to send to."""
        (upstream, wire), op, request = call.routed(), call.op, flow.request
        if wire is op.dialect:
            model = upstream.model  # the route's model (call.upstream_model) when it names one
            if (
                model
                and model != call.effective_model
                and op.dialect.set_model(op, request, payload, model)
            ):
                body.mark_changed()
            return passthrough_path(request, op, upstream)
        if not call.upstream_model:
            raise Refusal(400, "the request names no model")
        if mitm.watched():  # kept to be shown beside the upstream leg (answer.show_both_legs)
            call.client_request = request.copy()
        await pipeline.memory.conversations.fetch_continued(payload)  # from another process
        call.translation, translated = Translation.start(
            op,
            wire,
            payload,
            call.upstream_model,
            call.streaming,
            pipeline.memory,
            request.headers,
        )
        body.replace(translated)
        request.headers["content-type"] = "application/json"
        request.headers.update(wire.translated_headers())
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

    async def attach(self, flow: http.HTTPFlow, call: Call, client_aws) -> None:
        """The real credentials, on the wire only; and the deadline for the answer."""
        for name in CREDENTIAL_HEADERS:  # labels a stored or copied request still carries
            flow.request.headers.pop(name, None)
        upstream, wire = call.routed()
        try:
            call.sent = await attach(flow, upstream, wire, client_aws)
        except AllKeysCooling as cooling:
            wait = max(1, math.ceil(cooling.retry_after))
            raise Refusal(429, str(cooling), headers={"Retry-After": str(wait)}) from None
        call.deadline = Deadline(upstream.timeout)

    async def send_prepared(self, flow: http.HTTPFlow, current: Pipeline | None) -> None:
        """A request prepared before: a retry, a summary, or a stored upstream request
        replayed by the operator. Only its credentials are attached again."""
        meta = flow.metadata[PREPARED]
        if meta.get("kind") == "leg":
            return  # the upstream leg of a translated call, shown beside it: never sent
        parent = self.retry_of.pop(flow, None)
        pipeline = parent.pipeline if parent else current
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
        call = self.calls[flow] = Call(op, pipeline, kind=kind)
        if parent is not None:
            self.retried[flow] = call
            wire = parent.routed()[1]
        call.upstream, call.wire = upstream, wire
        call.requested_model = call.effective_model = meta.get("model")
        try:
            await self.attach(flow, call, parent.client_aws if parent else None)
        except Refusal as refusal:
            call.refused = refusal
            flow.response = wire.error(refusal.status, refusal.message, refusal.code)
