"""The answer side of a call: streamed or read whole, retried inside the call, translated.

A passthrough stream reaches the client byte for byte, tapped beside for usage and the
rollup's reply; a translated stream is transcoded event by event. A whole answer of 429 or
5xx is sent again with the next key (failover.py) while retries are left and a key is ready;
the last answer is read for usage, translated to the client's API when the call is translated,
and an error body that echoes a secret is scrubbed.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from mitmproxy import http

from . import encoding, mitm, redact
from .call import Call, json_payload
from .failover import prepared_copy, retryable
from .forward import Forwarder
from .streams import StreamTap, Transcoder, stream_format


class Answerer:
    def __init__(self, forwarder: Forwarder):
        self.forwarder = forwarder

    def on_headers(self, flow: http.HTTPFlow, call: Call) -> None:
        """Stream the answer (passthrough: tapped beside; translated: transcoded) or, for
        retries, summaries and error answers, let mitmproxy buffer it whole."""
        if call.deadline:
            call.deadline.cancel()  # re-armed per chunk below if the answer streams
        call.first_byte = time.monotonic()
        response = flow.response
        if call.kind != "call" or retryable(response):
            return  # retries, summaries and error answers are read whole
        content_type = response.headers.get("content-type", "")
        fmt = stream_format(content_type)
        coding = response.headers.get("content-encoding", "")
        if call.translation is not None:
            if call.streaming and response.status_code == 200 and fmt:
                translator = call.translation.transcoder(call.observe_usage)
                call.tap = Transcoder(fmt, coding, translator, translator.close)
                call.tap.translator = translator
                for name in ("content-encoding", "content-length"):
                    response.headers.pop(name, None)
                response.headers["content-type"] = "text/event-stream; charset=utf-8"
        elif fmt and (call.streaming or fmt == "sse"):
            call.collect_reply()
            call.tap = StreamTap(fmt, coding, call.observe)
        if call.tap is not None:
            flow.response.stream = mitm.never_empty(call.tap)
            if call.deadline:
                call.tap.on_chunk = call.deadline.rearm
                call.deadline.rearm(call.pipeline.settings.stream_idle_timeout)

    async def on_answer(self, flow: http.HTTPFlow, call: Call) -> str | None:
        """Everything the answer asks for; returns an error to log, if any."""
        if call.deadline:
            call.deadline.cancel()
        if call.refused is not None or call.upstream is None:
            return None
        self.forwarder.health.mark_up(call.upstream.address)
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
            self.forwarder.retry_of[retry] = call
            await mitm.send(retry)
            if retry.response is None:
                call.retries[-1] += f" (retry failed: {retry.error.msg if retry.error else '?'})"
                break
            flow.response = retry.response
            retried = self.forwarder.retried.pop(retry, None)
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
