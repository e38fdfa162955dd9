"""Prometheus metrics at GET /metrics on their own listener (`metrics.listen`), never the proxy's.

Per call, everything comes from the call's log record (`Call.record()`), in one place,
`Metrics.observe(record)`: the OpenTelemetry GenAI metrics in Prometheus form, as Envoy AI
Gateway exposes them, with the conventions' bucket boundaries:

- `gen_ai_client_token_usage` (histogram of tokens per call, by `gen_ai_token_type`: input,
  output, cached_input, reasoning);
- `gen_ai_server_request_duration_seconds` (with `error_type`: the status, or what failed);
- `gen_ai_server_time_to_first_token_seconds` (to the answer's first byte, successful calls);

labelled `gen_ai_operation_name` (chat, generate_content, embeddings, or calo's own operation
name), `gen_ai_provider_name` (gcp.gemini, openai, anthropic, aws.bedrock: by the upstream's
host, else the protocol spoken to it), `gen_ai_request_model` (what the client asked for),
`gen_ai_response_model` (the model sent upstream, after model_override and routes); and
`calo_requests_total` (api, route, status class, client name), `calo_retries_total`,
`calo_rollup_applied_total`, `calo_rollup_saved_bytes_total`, `calo_rollup_summaries_total`.

What the proxy holds now (keys cooling, upstreams up, the shared state's connection, ...) is
read at scrape time from the live objects (metrics_live.py).

Labels never hold a secret: model and client names are admitted once each (at most
LABEL_CAP of each; beyond, and for any name that is not a plain identifier or that holds a
configured secret, the label is "other"). With `gemini-calo --workers N`, each worker writes
its values to prometheus_client's multiprocess files and the launcher serves their sum.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram

from . import workers
from .calllog import logger
from .dialects import api_host
from .metrics_live import Live, LiveCollector, Mirror

prometheus_client.disable_created_metrics()  # no *_created series: one line per value

TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                 16777216, 67108864)  # fmt: skip
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                    40.96, 81.92)  # fmt: skip
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5,
                5.0, 7.5, 10.0)  # fmt: skip
LABEL_CAP = 100  # distinct model names (and client names) with a label of their own
OTHER = "other"
GENAI = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model",
         "gen_ai_response_model")  # fmt: skip
OPERATIONS = {
    "generateContent": "generate_content",
    "streamGenerateContent": "generate_content",
    "rollup.summary": "generate_content",
    "chat.completions": "chat",
    "messages": "chat",
    "responses": "chat",
    "converse": "chat",
    "converse-stream": "chat",
    "invoke": "chat",
    "invoke-with-response-stream": "chat",
    "embedContent": "embeddings",
    "batchEmbedContents": "embeddings",
    "embeddings": "embeddings",
}
PROVIDERS = {
    "gemini": "gcp.gemini",
    "openai": "openai",
    "responses": "openai",
    "anthropic": "anthropic",
    "bedrock": "aws.bedrock",
}
TOKEN_TYPES = (
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("cached_input", "cached_input_tokens"),
    ("reasoning", "reasoning_tokens"),
)
_PLAIN = re.compile(r"[A-Za-z0-9][\w.:/@+-]{0,127}")


class Metrics:
    """The per-call series, the live ones, and where /metrics is served.

    `address`: host:port of the listener (None: a worker of `--workers N`, whose launcher
    serves the sum of every worker's values). `live`: reads the addon's objects as they are."""

    def __init__(
        self,
        address: str | None,
        live: Callable[[], Live],
        scrub: Callable[[str], str] = lambda text: text,
    ):
        self.registry = CollectorRegistry(auto_describe=False)
        self.address = address
        self.scrub = scrub  # the current configuration's secrets (set again on reload)
        self._live = live
        self._worker = workers.worker_number() is not None
        self._listener: Listener | None = None
        self._mirror: asyncio.Task | None = None
        self.running = False
        if not self._worker:
            self.registry.register(LiveCollector(live))
        r = self.registry
        self.tokens = Histogram(
            "gen_ai_client_token_usage",
            "Tokens per call, by type (OpenTelemetry gen_ai.client.token.usage).",
            (*GENAI, "gen_ai_token_type"),
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.duration = Histogram(
            "gen_ai_server_request_duration_seconds",
            "Seconds from the request to the answer's last byte (gen_ai.server.request.duration).",
            (*GENAI, "error_type"),
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "Seconds to the answer's first byte, successful calls (gen_ai.server.time_to_first_token).",
            GENAI,
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "calo_requests",
            "API calls answered, by client API, route, status class and client name.",
            ("api", "route", "status_class", "client"),
            registry=r,
        )
        self.retries = Counter(
            "calo_retries", "Attempts sent again inside a call.", ("route",), registry=r
        )
        self.rollup_applied = Counter(
            "calo_rollup_applied", "Calls whose earlier turns a summary replaced.", ("route",),
            registry=r,
        )  # fmt: skip
        self.rollup_saved = Counter(
            "calo_rollup_saved_bytes",
            "Bytes of conversation text summaries replaced, less the summaries' own.",
            ("route",),
            registry=r,
        )
        self.summaries = Counter(
            "calo_rollup_summaries",
            "The rollup's summariser calls, by outcome (ok, failed).",
            ("outcome",),
            registry=r,
        )
        self._names: dict[str, str] = {}  # model or client name -> its label
        self._admitted = 0
        self._children: dict[tuple, tuple] = {}  # label values -> the series they feed
        self._providers: dict[tuple[str | None, str], str] = {}
        self._failed = False

    # ------------------------------------------------------------ serving

    def start(self) -> None:
        """Serve /metrics (one process), or copy the live values for the launcher (a worker).
        Called once the proxy runs."""
        self.running = True
        if self._worker:
            if self._mirror is None:
                mirror = Mirror(self.registry)
                self._mirror = asyncio.get_running_loop().create_task(mirror.run(self._live))
        elif self._listener is None and self.address:
            self._listener = listen(self.address, self.registry)

    def move(self, address: str) -> None:
        """A configuration reload changed `metrics.listen`."""
        if address == self.address:
            return
        self.address = address
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self.running:
            self.start()

    def stop(self) -> None:
        self.running = False
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._mirror is not None:
            self._mirror.cancel()
            self._mirror = None

    # ------------------------------------------------------------ one call

    def observe(self, record: dict[str, Any]) -> None:
        """Count one call from its log record. Never fails the call: a record it cannot read
        is said once in the log."""
        try:
            self._observe(record)
        except Exception as e:  # noqa: BLE001 - metrics never break a call
            if not self._failed:
                self._failed = True
                logger.warning("metrics: a call was not counted (%s: %s)", type(e).__name__, e)

    def _observe(self, record: dict[str, Any]) -> None:
        status = record.get("status")
        route = record.get("route") or ""
        key = (
            record["api"],
            record["operation"],
            route,
            status,
            bool(record.get("error")),
            record.get("client"),
            record.get("requested_model"),
            record.get("upstream_model") or record.get("effective_model"),
            record.get("upstream_host"),
            record.get("upstream_api"),
        )
        series = self._children.get(key) or self._series(key)
        requests, duration, ttft, genai, tokens = series
        requests.inc()
        duration.observe(record["latency_ms"] / 1000)
        if ttft is not None and record.get("ttfb_ms") is not None:
            ttft.observe(record["ttfb_ms"] / 1000)
        usage = record.get("usage")
        if usage:
            for kind, field in TOKEN_TYPES:
                value = usage.get(field)
                if value is not None:
                    child = tokens.get(kind)
                    if child is None:  # made when first seen: no empty series per kind
                        child = tokens[kind] = self.tokens.labels(*genai, kind)
                    child.observe(value)
        if record.get("retries"):
            self.retries.labels(route).inc(len(record["retries"]))
        if record.get("rollup_applied") == "summary":
            self.rollup_applied.labels(route).inc()
            self.rollup_saved.labels(route).inc(record.get("rollup_saved_bytes") or 0)
        if record["operation"] == "rollup.summary":
            ok = status == 200 and not record.get("error")
            self.summaries.labels("ok" if ok else "failed").inc()

    def _series(self, key: tuple) -> tuple:
        """The children one combination of labels feeds, made once (labels() is not free)."""
        api, operation, route, status, failed, client, requested, sent, host, wire = key
        genai = (
            OPERATIONS.get(operation, operation),
            self._provider(host, wire or api),
            self.name_label(requested),
            self.name_label(sent),
        )
        error = error_type(status, failed)
        series: tuple[Any, ...] = (
            self.requests.labels(api, route, status_class(status), self.name_label(client)),
            self.duration.labels(*genai, error),
            self.ttft.labels(*genai) if not error else None,
            genai,
            {},  # token type -> its series, made when first seen
        )
        if len(self._children) < 100_000:  # bounded: every part of the key is
            self._children[key] = series
        return series

    def _provider(self, host: str | None, protocol: str) -> str:
        """gen_ai.provider.name: the upstream's own host says it, else the protocol spoken."""
        if (host, protocol) not in self._providers:
            owner = api_host(host.rpartition(":")[0]) if host else None
            name = PROVIDERS.get(owner.name if owner else protocol, protocol)
            self._providers[(host, protocol)] = name
        return self._providers[(host, protocol)]

    def name_label(self, name: str | None) -> str:
        """A model or client name as a label: itself while fewer than LABEL_CAP names have
        one, if it is a plain identifier holding no configured secret; else "other"."""
        if not name:
            return ""
        label = self._names.get(name)
        if label is None:
            plain = _PLAIN.fullmatch(name) is not None and self.scrub(name) == name
            label = name if plain and self._admitted < LABEL_CAP else OTHER
            self._admitted += label != OTHER
            if len(self._names) < 10 * LABEL_CAP:
                self._names[name] = label
        return label


def status_class(status: int | None) -> str:
    return f"{status // 100}xx" if status else "none"


def error_type(status: int | None, failed: bool) -> str:
    """OpenTelemetry's error.type: the HTTP status of a failed call, "stream_error" for an
    answer that broke after its status, "connection_error" when none came; "" on success."""
    if status is not None and status >= 400:
        return str(status)
    if failed:
        return "stream_error" if status else "connection_error"
    return ""


def configure(
    current: Metrics | None,
    address: str | None,
    scrub: Callable[[str], str],
    live: Callable[[], Live],
) -> Metrics | None:
    """The metrics a (re)loaded configuration asks for: None when `metrics.listen` is off."""
    if address is None:
        if current is not None:
            current.stop()
        return None
    if current is None:
        current = Metrics(address, live)
    current.scrub = scrub
    current.move(address)
    return current


# ---------------------------------------------------------------- the listener


class Listener:
    """GET /metrics on `host:port`, in a thread of its own (prometheus_client's server)."""

    def __init__(self, address: str, registry: CollectorRegistry):
        self.address = address
        host, _, port = address.rpartition(":")
        self._server, self._thread = prometheus_client.start_http_server(
            int(port), host.strip("[]"), registry
        )

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def listen(address: str, registry: CollectorRegistry) -> Listener | None:
    """Serve /metrics on `address`; if it cannot (a second proxy on this machine holds it),
    say once, in one line, that metrics are off and why, and go on without them."""
    try:
        return Listener(address, registry)
    except OSError as e:
        reason = e.strerror or str(e)
        logger.warning("calo_addon: metrics are off: cannot listen on %s (%s)", address, reason)
        return None
