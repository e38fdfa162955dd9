"""What the addon did to one API flow: the facts for its log line and its mitmweb comment.

A call has two protocol ends: `op` is the client's (its dialect renders the client's errors),
`wire` the protocol spoken upstream (it says where usage sits, what a stream's events are).
They are the same dialect unless the call is translated (`translation`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from mitmproxy import http

from . import encoding, redact
from .aws import ClientAWS
from .calllog import CallLog, logger, now_iso
from .credentials import Sent, label_query
from .dialects import Dialect, Operation, Refusal
from .inbound_auth import Presented
from .pipeline import Pipeline
from .rollup import Plan
from .routing import Upstream
from .timeouts import Deadline
from .translate import neutral
from .translate.accumulate import Accumulator
from .translate.base import StreamReader
from .translation import Translation
from .workers import worker_number

MAX_DUMP = 65536  # bytes of a body a DEBUG line shows
WORKER = f"{worker_number()}:{os.getpid()}" if worker_number() is not None else None


@dataclass
class Call:
    """One API flow's facts, written by the addon's hooks and read for the log line."""

    op: Operation
    pipeline: Pipeline
    presented: Presented = field(default_factory=Presented)
    client: str | None = None  # the client's name (clients:), never its key; None: unrestricted
    kind: str = "call"  # "call" | "retry" (a leg of a call) | "summary" (the rollup's own)
    started: float = field(default_factory=time.monotonic)
    requested_model: str | None = None
    effective_model: str | None = None  # after model_override
    upstream_model: str | None = None  # what was sent upstream (a route's `model:`)
    upstream: Upstream | None = None
    wire: Dialect | None = None
    translation: Translation | None = None
    client_request: http.Request | None = None  # translated: the request as the client sent it
    client_aws: ClientAWS | None = None  # X-AWS-* credentials for Bedrock passthrough
    sent: Sent = field(default_factory=Sent)
    retries: list[str] = field(default_factory=list)  # "status via key" per failed attempt
    streaming: bool = False
    refused: Refusal | None = None
    first_byte: float | None = None
    usage: neutral.Usage | None = None
    tap: Any = None  # the stream's tap or translator (streams.py)
    deadline: Deadline | None = None
    rollup: Plan | None = None
    reply: Accumulator | None = None  # a streamed reply, collected for the rollup
    reader: StreamReader | None = None  # reads the stream's events into `reply`
    stream_complete: bool = False  # the stream's last event arrived
    cooled: str | None = None
    answered: str | None = None  # the proxy answered itself (why), e.g. an estimated count

    def routed(self) -> tuple[Upstream, Dialect]:
        """The upstream and the protocol spoken to it. Routing sets both before any step that
        reads them; a call without them here is a bug, said so rather than an AttributeError."""
        if self.upstream is None or self.wire is None:
            raise RuntimeError("the call has no upstream yet: routing comes first")
        return self.upstream, self.wire

    # ------------------------------------------------------------ answers

    def observe(self, event_type: str | None, data: Any) -> None:
        """One event of a passthrough stream, read beside it."""
        wire = self.wire or self.op.dialect
        usage = wire.usage(event_type, data)
        if usage is not None:
            self.usage = usage if self.usage is None else self.usage.merged(usage)
        if wire.finished(event_type, data):
            self.stream_complete = True
        if self.reader is not None and self.reply is not None and not self.reply.overflow:
            self.reply.feed(self.reader.feed(event_type, data))

    def observe_usage(self, usage: neutral.Usage) -> None:
        self.usage = usage if self.usage is None else self.usage.merged(usage)

    def collect_reply(self) -> None:
        """Collect a streamed reply for the rollup (bounded), when the rollup wants it."""
        if self.rollup is None or self.translation is not None:
            return
        try:
            codec = (self.wire or self.op.dialect).codec(self.op)
            if codec is not None:
                self.reader, self.reply = codec.stream_reader(), Accumulator()
        except Exception as e:  # noqa: BLE001 - the rollup is extra; the stream must flow
            logger.warning("rollup: stream reply not collected (%s: %s)", type(e).__name__, e)

    def read_answer(self, payload: Any, status: int) -> None:
        """A whole JSON answer in the wire's protocol: its usage."""
        usage = (self.wire or self.op.dialect).usage(None, payload)
        if usage is not None:
            self.usage = usage

    def remember_reply(self, client_payload: Any = None) -> None:
        """Feed the rollup the assistant's reply, in the client's shape: a whole answer, or
        the stream's collected reply. Never fails the call."""
        rollup, op = self.pipeline.rollup, self.op
        if rollup is None or self.rollup is None:
            return
        try:
            if client_payload is None and self.reply is not None and not self.reply.overflow:
                if self.reader is not None:
                    self.reply.feed(self.reader.close())
                codec = op.dialect.codec(op)
                client_payload = codec.write_response(self.reply.response) if codec else None
            if client_payload is not None:
                rollup.remember(op, self.rollup, op.dialect.reply(op, client_payload))
        except Exception as e:  # noqa: BLE001 - a body the rollup cannot read is the client's
            logger.warning("rollup: reply not remembered (%s: %s)", type(e).__name__, e)

    def cool_key_if_refused(self, response: http.Response | None) -> None:
        """A 401, 403 or 429 puts the key used in cooldown (Retry-After honoured)."""
        status = response.status_code if response else 0
        key = self.sent.key
        if (
            response is None
            or key is None
            or self.upstream is None
            or status not in (401, 403, 429)
        ):
            return
        seconds = self.upstream.keys.cool(key, response.headers.get("retry-after"))
        self.cooled = f"{key.label} cooling {seconds:g}s after {status}"
        logger.warning("calo_addon: %s", self.cooled)

    # ------------------------------------------------------------ the record

    def finish(
        self, flow: http.HTTPFlow, status: int | None, error: str | None, log: CallLog
    ) -> dict[str, Any]:
        """Write the call's log line and its mitmweb comment; return the record (metrics)."""
        label_query(flow.request, self.sent)
        record = self.record(status, error)
        if log.debug:
            record["request"] = message_dump(flow.request, self.refused is not None)
            record["response"] = message_dump(flow.response, False) if flow.response else None
        log.write(record)
        flow.comment = self.pipeline.scrub(comment(record))
        if error or (status or 0) >= 400:
            flow.marked = ":red_circle:"
        return record

    def record(self, status: int | None, error: str | None) -> dict[str, Any]:
        """The call's JSON log line."""
        now, upstream = time.monotonic(), self.upstream
        record: dict[str, Any] = {
            "time": now_iso(),
            "kind": "call",
            "client": self.client,
            "api": self.op.dialect.name,
            "operation": self.op.name if self.kind != "summary" else "rollup.summary",
            "requested_model": self.requested_model,
            "effective_model": self.effective_model,
            "route": upstream.name if upstream else None,
            "upstream_host": upstream.address if upstream else None,
            "key_label": self.sent.label,
            "status": status,
            "latency_ms": round((now - self.started) * 1000, 1),
            "ttfb_ms": round((self.first_byte - self.started) * 1000, 1)
            if self.first_byte
            else None,
            "streaming": self.streaming,
            "usage": usage_dict(self.usage),
            "rollup_applied": self.rollup.used if self.rollup else None,
        }
        if WORKER is not None:  # gemini-calo --workers N: which process served the call
            record["worker"] = WORKER
        translated = self.translation
        optional = {
            "upstream_api": self.wire.name
            if self.wire and self.wire is not self.op.dialect
            else None,
            "upstream_model": self.upstream_model
            if self.upstream_model != self.effective_model
            else None,
            "translated": translated.label if translated else None,
            "answered_by_proxy": self.answered,
            "dropped": translated.dropped if translated and translated.dropped else None,
            "refused": self.refused.message if self.refused else None,
            "rollup_saved_bytes": self.rollup.saved if self.rollup else None,
            "cooled": self.cooled,
            "retries": self.retries or None,
            "error": error,
        }
        record.update((k, v) for k, v in optional.items() if v)
        return record


def usage_dict(usage: neutral.Usage | None) -> dict[str, int | None] | None:
    if usage is None:
        return None
    found = {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
    for name in ("cached_input_tokens", "reasoning_tokens"):
        if getattr(usage, name) is not None:
            found[name] = getattr(usage, name)
    return found


def comment(record: dict[str, Any]) -> str:
    model = record["requested_model"] or "-"
    if record["effective_model"] and record["effective_model"] != record["requested_model"]:
        model = f"{model} -> {record['effective_model']}"
    if record.get("upstream_model"):
        model = f"{model} (as {record['upstream_model']})"
    parts = [f"calo: {record['api']} {record['operation']} {model}"]
    if record.get("client"):
        parts.append(f"client {record['client']}")
    if record.get("translated"):
        parts.append(f"translated {record['translated']}")
    if record.get("refused"):
        parts.append(f"refused: {record['refused']}")
    else:
        parts.append(f"route {record['route']} via {record['upstream_host']}")
        parts.append(f"key {record['key_label'] or 'none'}")
    if record.get("retries"):
        parts.append(f"retried after {', '.join(record['retries'])}")
    if record.get("cooled"):
        parts.append(record["cooled"])
    if record["rollup_applied"]:
        parts.append(f"rollup {record['rollup_applied']}")
    if record["usage"]:
        parts.append(f"tokens {record['usage']['input_tokens']}/{record['usage']['output_tokens']}")
    if record.get("error"):
        parts.append(f"error: {record['error']}")
    return "; ".join(parts)


def message_dump(message: http.Message, refused: bool) -> dict[str, Any]:
    """Headers (credentials redacted) and a bounded preview of the body (decoded at most
    MAX_DUMP bytes): a refused request's body only as its size (anyone can send one)."""
    dump: dict[str, Any] = {"headers": redact.headers(message.headers.items(multi=True))}
    if isinstance(message, http.Request):
        dump["query"] = redact.query(message.query.items(multi=True))
    if refused:
        dump["body_bytes"] = len(message.raw_content or b"")
    else:
        dump["body"] = encoding.preview(message, MAX_DUMP) or ""
    return dump


def json_payload(raw: bytes) -> Any:
    """A decoded body as JSON, or None when it is not."""
    try:
        return orjson.loads(raw or b"null")
    except ValueError:
        return None
