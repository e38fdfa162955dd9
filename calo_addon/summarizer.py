"""The rollup's summariser: one Gemini generateContent call through the proxy's own routing,
key rotation and credentials (a route for the summariser model applies, SigV4 included).

The HTTP call runs in a worker thread, so the event loop never waits on it.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

from mitmproxy import connection, http

from .credentials import attach, point_at
from .dialects import gemini
from .routing import Router

TIMEOUT = 60.0


class Summarizer:
    def __init__(self, router: Router, model: str, timeout: float = TIMEOUT):
        self.router = router
        self.model = model
        self.timeout = timeout

    async def __call__(self, prompt: str) -> str:
        path, body = gemini.summary_request(self.model, prompt)
        op = gemini.recognise("POST", path, None)
        request = http.Request.make(
            "POST",
            f"http://summarizer{path}",
            json.dumps(body),
            {"content-type": "application/json"},
        )
        upstream = self.router.select(op, self.model)
        point_at(request, op, upstream)
        flow = http.HTTPFlow(
            connection.Client(peername=("127.0.0.1", 0), sockname=("127.0.0.1", 0)),
            connection.Server(address=(upstream.host, upstream.port)),
        )
        flow.request = request
        await attach(flow, upstream)
        payload = await asyncio.to_thread(self._post, request)
        text = gemini.summary_text(payload)
        if not text:
            raise ValueError("the summariser's answer has no text")
        return text

    def _post(self, request: http.Request) -> object:
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        outbound = urllib.request.Request(
            request.url, data=request.content, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(outbound, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"summariser upstream answered {e.code}") from None
