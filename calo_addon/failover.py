"""Failover: a request whose upstream answered 429, 500, 502, 503 or 504 is sent again, with
the next healthy key, up to `max_retries` times, while no byte has reached the client.

The retry is a copy of the flow handed to mitmproxy's own client replay (`replay.client`), so
it passes through this addon again: a fresh key from the rotation (a 429'd key is cooling, so
it is skipped), SigV4 signed anew, the same route and timeout. A stream is retried only if
its upstream failed before the first byte: an error status arrives before any body, and the
addon buffers error bodies instead of streaming them. The retried answer reaches the client
whole. A refused *connection* is retried before the request leaves, by the connect check
(connect.py); one that fails after that check is mitmproxy's to answer (SPEC 4b).
"""

from __future__ import annotations

import asyncio
import logging

from mitmproxy import ctx, http

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_OF = "calo_retry_of"  # flow.metadata key on the copies this module sends
OUTCOME = "calo_outcome"  # flow.metadata key: what the addon did with a copy (key, refused)


def retryable(flow: http.HTTPFlow) -> bool:
    return flow.response is not None and flow.response.status_code in RETRY_STATUSES


def is_retry(flow: http.HTTPFlow) -> bool:
    return RETRY_OF in flow.metadata


class Failover:
    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[http.HTTPFlow]] = {}

    def settle(self, flow: http.HTTPFlow) -> None:
        """A retry finished (response or error): wake the flow waiting on it."""
        waiter = self._waiting.pop(flow.id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(flow)

    async def send_again(self, flow: http.HTTPFlow, timeout: float) -> http.HTTPFlow | None:
        """Replay a copy of `flow` and wait for it; None if it could not be replayed in time."""
        retry = flow.copy()
        retry.metadata[RETRY_OF] = flow.id
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[retry.id] = waiter
        try:
            ctx.master.commands.call("replay.client", [retry])
            return await asyncio.wait_for(waiter, timeout)
        except Exception as e:  # noqa: BLE001 - no replay (no such addon, timeout): keep the answer
            logger.warning("calo_addon: retry of %s not possible: %s", flow.request.path, e)
            return None
        finally:
            self._waiting.pop(retry.id, None)

    async def retry_while_failing(self, flow: http.HTTPFlow, call) -> None:
        """Send `flow` again while its answer is retryable and `call` has retries left; the
        last answer becomes the flow's response. `call` is the flow's calo_addon.call.Call."""
        while retryable(flow) and len(call.retries) < call.pipeline.settings.max_retries:
            call.retries.append(f"{flow.response.status_code} via {call.key_label or '-'}")
            retried = await self.send_again(flow, call.upstream.timeout + 5)
            if retried is None or retried.response is None:
                return  # the retry failed to connect: the client keeps the first answer
            outcome = retried.metadata.get(OUTCOME, {})
            flow.response = retried.response
            call.key_label = outcome.get("key_label", call.key_label)
            if outcome.get("refused"):
                return  # e.g. every key is cooling: that answer is final
