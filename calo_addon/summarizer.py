"""The rollup's summariser: one call to `rollup.summarizer_model`, in the protocol of the
upstream that serves it (a route for that model applies, SigV4 included), sent through the
proxy itself (`mitm.send`): the route's key rotation and cooldowns, mitmproxy's upstream-proxy
and TLS options, a log line (`operation: "rollup.summary"`) and a flow in mitmweb, like any
API call. The call never blocks the event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from mitmproxy import connection, http

from .credentials import point_at
from .dialects import GEMINI, Refusal
from .failover import PREPARED
from .routing import Router
from .translate import neutral
from .translate.base import Codec


class Summarizer:
    def __init__(
        self,
        router: Router,
        model: str,
        send: Callable[[http.HTTPFlow], Awaitable[None]],
    ):
        self.router = router
        self.model = model
        self._send = send
        self.calls = 0  # summaries asked for (calo.status)

    def flow(self, prompt: str) -> tuple[http.HTTPFlow, Codec]:
        """The summary call, prepared (pointed at its upstream, in its protocol, no key yet),
        and the codec that reads its answer."""
        op = GEMINI.recognise("POST", f"/v1beta/models/{self.model}:generateContent", None)
        assert op is not None  # a generateContent path, always recognised
        upstream = self.router.select(op, self.model)
        model = upstream.model or self.model
        codec, path = upstream.api.upstream_for(GEMINI, model, False)
        request = neutral.Request(
            model=model, messages=[neutral.Message("user", [neutral.Text(prompt)])]
        )
        flow = http.HTTPFlow(
            connection.Client(peername=("127.0.0.1", 0), sockname=("127.0.0.1", 0)),
            connection.Server(address=(upstream.host, upstream.port)),
        )
        flow.request = http.Request.make(
            "POST",
            "http://summarizer/",
            orjson.dumps(codec.write_request(request)),
            [(b"content-type", b"application/json")],
        )
        point_at(flow.request, upstream, path)
        flow.metadata[PREPARED] = {
            "kind": "summary",
            "route": upstream.name,
            "url": f"{upstream.scheme}://{upstream.host}:{upstream.port}{upstream.path_prefix}",
            "wire": upstream.api.name,
            "model": model,
            "api": GEMINI.name,
        }
        return flow, codec

    async def __call__(self, prompt: str) -> str:
        self.calls += 1
        flow, codec = self.flow(prompt)
        await self._send(flow)
        response = flow.response
        if response is None:
            raise RuntimeError(f"summariser call failed: {flow.error.msg if flow.error else '?'}")
        if response.status_code != 200:
            raise RuntimeError(f"summariser upstream answered {response.status_code}")
        try:
            answer = codec.read_response(orjson.loads(response.content or b"null"))
        except (ValueError, TypeError, KeyError, neutral.TranslationError, Refusal) as e:
            raise RuntimeError(f"the summariser's answer cannot be read: {e}") from None
        text = neutral.text_of(answer.parts).strip()
        if not text:
            raise ValueError("the summariser's answer has no text")
        return text
