"""What the addon did to one API flow: the facts for its log line and its mitmweb comment."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from mitmproxy import http

from . import encoding, failover, redact
from .calllog import CallLog, logger
from .credentials import label_sent_credentials
from .dialects import Operation, Refusal, Usage
from .keypool import Key
from .pipeline import Pipeline
from .rollup import Plan
from .routing import Upstream
from .streams import StreamTap
from .timeouts import Deadline


@dataclass
class Call:
    """What the addon did to one API flow, for the log line and the flow comment."""

    op: Operation
    pipeline: Pipeline
    started: float = field(default_factory=time.monotonic)
    requested_model: str | None = None
    effective_model: str | None = None
    upstream: Upstream | None = None
    key_label: str | None = None
    key: Key | None = None  # the pool key used, to cool it if the upstream refuses it
    cooled: str | None = None
    retries: list[str] = field(default_factory=list)  # "status via key" per failed attempt
    streaming: bool = False
    refused: Refusal | None = None
    first_byte: float | None = None
    usage: Usage | None = None
    tap: StreamTap | None = None
    deadline: Deadline | None = None
    presented: str | None = None  # the client's key, for the inbound check
    labelled: bool = False  # real credentials in the stored flow replaced by a label
    rollup: Plan | None = None
    events: list | None = None  # stream events, kept only to give the rollup the reply

    def observe(self, event_type: str | None, event: Any) -> None:
        usage = self.op.dialect.usage(event)
        if usage is not None:
            self.usage = usage
        if self.events is not None:
            self.events.append(event)

    def remember_reply(self, payload: Any) -> None:
        """Feed the rollup the assistant's reply, from a whole response or the stream's events."""
        rollup, op = self.pipeline.rollup, self.op
        if rollup is None or self.rollup is None:
            return
        if self.events is not None:
            reply = op.dialect.reply_from_events(op, self.events)
        else:
            reply = op.dialect.reply(op, payload)
        rollup.remember(op, self.rollup, reply)

    def read_answer(self, response: http.Response | None) -> None:
        """A whole (not streamed) JSON answer: its usage, and for a 200 the rollup's reply."""
        if not response or "json" not in response.headers.get("content-type", ""):
            return
        try:  # capped: a compressed bomb is not inflated; over the cap, no usage is read
            raw = encoding.decode(
                response.raw_content or b"",
                response.headers.get("content-encoding", ""),
                self.pipeline.settings.max_body_bytes,
            )
            payload = orjson.loads(raw or b"null")
        except (ValueError, encoding.TooLarge):
            return  # the body passes through as it is; no usage to read
        self.observe(None, payload)
        if response.status_code == 200:
            self.remember_reply(payload)

    def cool_key_if_refused(self, response: http.Response | None) -> None:
        """A 401, 403 or 429 puts the key used in cooldown (Retry-After honoured)."""
        status = response.status_code if response else 0
        if self.key is None or self.upstream is None or status not in (401, 403, 429):
            return
        seconds = self.upstream.keys.cool(self.key, response.headers.get("retry-after"))
        self.cooled = f"{self.key.label} cooling {seconds:g}s after {status}"
        logger.warning("calo_addon: %s", self.cooled)

    def finish(
        self, flow: http.HTTPFlow, status: int | None, error: str | None, log: CallLog
    ) -> None:
        """Write the call's log line and its mitmweb comment; leave labels, not keys."""
        if self.refused is None and not self.labelled:
            label_sent_credentials(flow.request, self.key_label)
        record = self.record(status, error)
        if failover.is_retry(flow):
            record["retry_of"] = flow.metadata[failover.RETRY_OF]
            flow.metadata[failover.OUTCOME] = {
                "key_label": self.key_label,
                "refused": self.refused is not None,
            }
        if log.debug:
            record["request"] = message_dump(flow.request, decode=self.refused is None)
            record["response"] = message_dump(flow.response) if flow.response else None
        log.write(record)
        flow.comment = self.pipeline.scrub(comment(record))
        if error or (status or 0) >= 400:
            flow.marked = ":red_circle:"

    def record(self, status: int | None, error: str | None) -> dict[str, Any]:
        """The call's JSON log line."""
        now, upstream = time.monotonic(), self.upstream
        record: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "api": self.op.dialect.name,
            "operation": self.op.name,
            "requested_model": self.requested_model,
            "effective_model": self.effective_model,
            "route": upstream.name if upstream else None,
            "upstream_host": upstream.address if upstream else None,
            "key_label": self.key_label,
            "status": status,
            "latency_ms": round((now - self.started) * 1000, 1),
            "ttfb_ms": round((self.first_byte - self.started) * 1000, 1)
            if self.first_byte
            else None,
            "streaming": self.streaming,
            "usage": self.usage.as_dict() if self.usage else None,
            "rollup_applied": self.rollup.used if self.rollup else None,
        }
        optional = {
            "refused": self.refused.message if self.refused else None,
            "cooled": self.cooled,
            "retries": self.retries or None,
            "error": error,
        }
        record.update((k, v) for k, v in optional.items() if v)
        return record


def comment(record: dict[str, Any]) -> str:
    model = record["requested_model"] or "-"
    if record["effective_model"] and record["effective_model"] != record["requested_model"]:
        model = f"{model} -> {record['effective_model']}"
    parts = [f"calo: {record['api']} {record['operation']} {model}"]
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


def message_dump(message: http.Message, decode: bool = True) -> dict[str, Any]:
    """Headers and a bounded body preview; a refused request's compressed body is not
    inflated at all (`decode=False`)."""
    text = encoding.preview(message, 65536, decode) or ""
    dump: dict[str, Any] = {"headers": redact.headers(message.headers.items(multi=True))}
    if isinstance(message, http.Request):
        dump["query"] = redact.query(message.query.items(multi=True))
    dump["body"] = text[:65536]
    return dump
