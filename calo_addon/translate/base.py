"""What every protocol codec (one module per protocol in this package) provides.

A codec reads its protocol into the neutral form and writes the neutral form out in its
protocol, in both roles: as the client's protocol (read requests, write answers and stream
events) and as the upstream's (write requests, read answers and stream events). Codecs are
pure: no I/O, no mitmproxy, no global state; JSON in and out as Python values.

Stream framing (SSE lines, AWS event-stream frames) is not a codec's business: a stream reader
is fed decoded events, `(event_type, data)` where `event_type` is the SSE `event:` field or the
event stream's `:event-type` header (None when the protocol has none) and `data` is the decoded
JSON (or the raw text, e.g. OpenAI's "[DONE]"); a stream writer returns `(event_type, data)`
pairs for the transport to frame.
"""

from __future__ import annotations

from typing import Any, Protocol

from . import neutral

WireEvent = tuple[str | None, Any]  # (event type or None, JSON value or raw text)


class StreamReader(Protocol):
    def feed(self, event_type: str | None, data: Any) -> list[neutral.Event]:
        """One upstream stream event in, the neutral events it makes (maybe none)."""
        ...

    def close(self) -> list[neutral.Event]:
        """The stream ended: events still owed (a PartStop, a MessageStop if none came)."""
        ...


class StreamWriter(Protocol):
    def write(self, event: neutral.Event) -> list[WireEvent]:
        """One neutral event in, the client protocol's events out (maybe none)."""
        ...

    def close(self) -> list[WireEvent]:
        """After the last event: anything the protocol ends with (e.g. Chat's "[DONE]")."""
        ...


class Codec(Protocol):
    name: str  # "gemini" | "anthropic" | "chat" | "responses" | "converse"

    # client role
    def read_request(self, body: Any) -> neutral.Request: ...

    def write_response(self, response: neutral.Response) -> dict[str, Any]: ...

    def stream_writer(self, request: neutral.Request) -> StreamWriter: ...

    # upstream role
    def write_request(self, request: neutral.Request) -> dict[str, Any]: ...

    def read_response(self, payload: Any) -> neutral.Response: ...

    def stream_reader(self) -> StreamReader: ...

    def error_message(self, payload: Any) -> str | None:
        """The human text of an error body in this protocol, if it is one."""
        ...


def append_turn(turns: list[dict[str, Any]], role: str, items: list, key: str = "content") -> None:
    """Add a turn's items to `turns`, joined to the last turn when it has the same role (the
    protocols that want roles to alternate)."""
    if not items:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1][key].extend(items)
    else:
        turns.append({"role": role, key: items})
