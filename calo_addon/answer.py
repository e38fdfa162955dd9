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
from .failover import PREPARED, prepared_copy, retryable
from .forward import Forwarder
from .routing import Upstream
from .streams import StreamTap, Transcoder, stream_format
from .translation import Translation


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
        if response is None or call.kind != "call" or retryable(response):
            return  # retries, summaries and error answers are read whole
        content_type = response.headers.get("content-type", "")
        fmt = stream_format(content_type)
        coding = response.headers.get("content-encoding", "")
        if call.translation is not None:
            if call.streaming and response.status_code == 200 and fmt:
                translator = call.translation.transcoder(call.observe_usage)
                call.tap = Transcoder(fmt, coding, translator, translator.close, translator.fail)
                call.tap.translator = translator
                for name in ("content-encoding", "content-length"):
                    response.headers.pop(name, None)
                response.headers["content-type"] = "text/event-stream; charset=utf-8"
        elif fmt and (call.streaming or fmt == "sse"):
            call.collect_reply()
            call.tap = StreamTap(fmt, coding, call.observe)
        if call.tap is not None:
            response.stream = mitm.never_empty(call.tap)
            if call.deadline:
                call.tap.on_chunk = call.deadline.rearm
                call.deadline.rearm(call.pipeline.settings.stream_idle_timeout)

    async def on_answer(self, flow: http.HTTPFlow, call: Call) -> str | None:
        """Everything the answer asks for; returns an error to log, if any."""
        if call.deadline:
            call.deadline.cancel()
        upstream = call.upstream
        if call.refused is not None or upstream is None:
            return None
        self.forwarder.health.mark_up(upstream.address)
        call.cool_key_if_refused(flow.response)
        if call.kind == "retry":
            return None
        if call.tap is None:
            if call.kind == "call":
                await self._retry_while_failing(flow, call, upstream)
            self._read_whole(flow, call)
            return None
        translator = getattr(call.tap, "translator", None)
        if translator is not None:
            call.stream_complete = translator.finished
            show_both_legs(flow, call)
            return "; ".join(translator.errors) or None
        if flow.response is not None and flow.response.status_code == 200 and not call.tap.broken:
            call.remember_reply()
        return "; ".join(call.tap.exceptions) or None

    async def _retry_while_failing(
        self, flow: http.HTTPFlow, call: Call, upstream: Upstream
    ) -> None:
        """Send the prepared request again while its answer is retryable, retries are left
        and a key is ready (failover.py); the last answer becomes the flow's response."""
        limit = call.pipeline.settings.max_retries
        while retryable(flow.response) and len(call.retries) < limit:
            keys = upstream.keys
            if upstream.auth.pooled and keys and not keys.ready():
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
        if response.status_code >= 400 and raw is not None:
            _scrub_body(response, raw, call.pipeline.scrub)  # before anything keeps or sends it
        client_payload = payload
        if call.translation is not None:
            leg = flow.copy() if mitm.watched() else None  # the upstream's leg, untranslated
            client_payload = self._translate_answer(flow, call, call.translation, response, payload)
            show_both_legs(flow, call, leg)
        if response.status_code == 200:
            call.remember_reply(client_payload)

    def _translate_answer(
        self,
        flow: http.HTTPFlow,
        call: Call,
        translation: Translation,
        response: http.Response,
        payload: Any,
    ) -> Any:
        """The upstream's whole answer in the client's API (or an error in its shape); returns
        the client's payload, or None when the answer became an error."""
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


def show_both_legs(flow: http.HTTPFlow, call: Call, leg: http.HTTPFlow | None = None) -> None:
    """A translated call is shown twice in mitmweb and `-w` files (SPEC 10): this flow as the
    client saw it (its request as sent, credentials taken out, and the translated answer), and
    a linked flow with the upstream's leg (the translated request, with labels for its
    credentials, and the upstream's own answer). Replaying the client's flow runs the whole
    pipeline again; replaying the leg sends it upstream again with fresh credentials."""
    if call.kind != "call" or call.translation is None or call.client_request is None:
        return
    meta = flow.metadata.pop(PREPARED, {})
    if mitm.watched():
        leg = leg or flow.copy()  # before the client's request is put back
    flow.request = call.client_request
    if leg is None:
        return
    leg.metadata[PREPARED] = {**meta, "kind": "leg", "of": flow.id}
    leg.comment = f"calo: upstream leg of {flow.id}: translated {call.translation.label}"
    flow.metadata["calo_upstream_leg"] = leg.id
    mitm.publish(leg)


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
