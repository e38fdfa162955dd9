"""What every fake upstream (tests/fake_*.py) shares: a loopback server that records each
request, a queue of scripted answers, and streams sent chunk by chunk.

Scripting, the same for every fake (each one renders it in its own protocol):

- ``Reply(text, tool_calls, thinking, usage, stop)``: the next generation answer. ``text`` and
  ``thinking`` are a string (the fake cuts it into a few stream deltas) or a list of strings
  (exactly those deltas); ``tool_calls`` is ``[(name, input_dict), ...]``, parallel calls in
  one answer, each given a distinct id by the fake; ``usage`` is a neutral ``Usage`` (mapped to
  the protocol's own counting) or a dict sent verbatim; ``stop`` is ``end_turn``,
  ``max_tokens``, ``stop_sequence`` or ``tool_use`` (default: ``tool_use`` when there are tool
  calls, else ``end_turn``).
- ``Fail(status, message, kind, retry_after, mid_stream)``: the next answer is an error in the
  protocol's shape (``kind`` defaults from the status); ``mid_stream`` makes a streamed call
  answer 200, start the reply, then send the protocol's error event.
- ``fake.scripted`` is the queue (first in, first out). Each fake also keeps its older raw
  tuples, answered verbatim whatever the path.

Common knobs (attributes): ``requests`` (every ``Recorded`` request), ``hold_last_chunk`` with
``release`` and ``last_chunk_sent`` (the last chunk of a stream waits for ``release``, proving
the client saw the first ones before it), faults ``delay_headers`` (seconds before answering),
``frame_delay`` (seconds before each chunk), ``stall_after`` / ``cut_after`` (chunk index where
the stream stalls 5 s / the connection is cut), ``connections`` (TCP connections accepted).
"""

from __future__ import annotations

import base64
import gzip
import json
import secrets
import socket
import string
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    """One request as the fake received it (path undecoded, header names lower-case)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    signature_ok: bool | None = None  # FakeBedrock: SigV4 checked (None when not signed)
    access_key: str | None = None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Usage:
    """Neutral token counts: ``prompt`` includes the ``cached`` part; ``output`` is the visible
    answer and ``thoughts`` the reasoning, counted apart (as Gemini does)."""

    prompt: int = 10
    output: int = 5
    cached: int = 0
    thoughts: int = 0


@dataclass
class Reply:
    text: str | list[str] | None = None
    tool_calls: list[tuple[str, dict]] = field(default_factory=list)
    thinking: str | list[str] | None = None
    usage: Usage | dict | None = None
    stop: str | None = None

    @property
    def stop_reason(self) -> str:
        return self.stop or ("tool_use" if self.tool_calls else "end_turn")


@dataclass
class Fail:
    status: int
    message: str = "scripted failure"
    kind: str | None = None
    retry_after: int | None = None
    mid_stream: bool = False


def pieces(value: str | list[str] | None, count: int = 3) -> list[str]:
    """The stream deltas of a text: a list as given, a string cut in up to ``count`` parts."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    size = max(1, -(-len(value) // count))
    return [value[i : i + size] for i in range(0, len(value), size)] or [""]


def joined(value: str | list[str] | None) -> str | None:
    return "".join(value) if isinstance(value, list) else value


def words(text: str) -> frozenset[str]:
    """A set of names written as one space-separated string (long field lists stay short)."""
    return frozenset(text.split())


def token_count(text: str) -> int:
    """The fakes' deterministic tokenizer: one token per 4 characters, at least 1."""
    return max(1, (len(text) + 3) // 4)


def new_id(prefix: str, length: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def new_signature() -> str:
    """An opaque base64 blob, unique per call, like the signatures real models issue."""
    return base64.b64encode(secrets.token_bytes(48)).decode()


def default_usage(reply: Reply, prompt_text: str) -> Usage:
    """Counts derived from the request's text and the reply, so they are predictable."""
    answer = (joined(reply.text) or "") + "".join(json.dumps(i) for _, i in reply.tool_calls)
    thoughts = joined(reply.thinking) or ""
    return Usage(
        prompt=token_count(prompt_text),
        output=token_count(answer) if answer else 0,
        thoughts=token_count(thoughts) if thoughts else 0,
    )


class Wire:
    """Answers one request: whole bodies, or a stream chunk by chunk with the server's faults."""

    def __init__(self, server: FakeServer, handler: BaseHTTPRequestHandler):
        self.server, self.handler = server, handler

    def json(self, payload: Any, status: int = 200, headers: dict | None = None) -> None:
        data, encoding = json.dumps(payload).encode(), None
        if self.server.gzip_json and "gzip" in self.handler.headers.get("accept-encoding", ""):
            data, encoding = gzip.compress(data), "gzip"
        extra = dict(headers or {})
        if encoding:
            extra["content-encoding"] = encoding
        self.send(status, data, "application/json", extra)

    def send(self, status: int, data: bytes, content_type: str, headers: dict | None = None):
        h = self.handler
        h.send_response(status)
        h.send_header("content-type", content_type)
        for name, value in (headers or {}).items():
            h.send_header(name, str(value))
        h.send_header("content-length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def stream(self, content_type: str, chunks: list[bytes], headers: dict | None = None) -> None:
        """Each chunk its own HTTP chunk, flushed; the last may wait for ``server.release``."""
        h, server = self.handler, self.server
        h.send_response(200)
        h.send_header("content-type", content_type)
        for name, value in (headers or {}).items():
            h.send_header(name, str(value))
        h.send_header("transfer-encoding", "chunked")
        h.end_headers()
        try:
            for i, chunk in enumerate(chunks):
                last = i == len(chunks) - 1
                if last and server.hold_last_chunk:
                    server.release.wait(10)
                if i == server.cut_after:
                    h.close_connection = True
                    h.connection.shutdown(socket.SHUT_RDWR)
                    return
                if i == server.stall_after:
                    time.sleep(5)
                time.sleep(server.frame_delay)
                if last:
                    server.last_chunk_sent.set()
                h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                h.wfile.flush()
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if "chunked" in handler.headers.get("transfer-encoding", "").lower():
        data = b""
        while size := int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16):
            data += handler.rfile.read(size)
            handler.rfile.readline()
        handler.rfile.readline()
        return data
    return handler.rfile.read(int(handler.headers.get("content-length") or 0))


# a JSON string that begins as calo_addon/rollup.py's prompt does: the summariser's request (a
# summary itself may quote the prompt, as the fakes echo it, but never at a string's start)
SUMMARISER = b'"Summarise the conversation below'


class FakeServer:
    """A ThreadingHTTPServer on 127.0.0.1 (port 0); subclasses implement ``handle``."""

    def __init__(self, gzip_json: bool = False):
        self.gzip_json = gzip_json
        self.requests: list[Recorded] = []
        self.scripted: list[Any] = []
        self.hold_last_chunk = False
        self.release = threading.Event()
        self.last_chunk_sent = threading.Event()
        self.connections = 0
        self.delay_headers = 0.0
        self.frame_delay = 0.0
        self.stall_after: int | None = None
        self.cut_after: int | None = None
        self._lock = threading.Lock()
        self._server = self._make_server()
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def _make_server(self) -> ThreadingHTTPServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                fake._dispatch(self, b"")

            def do_POST(self):
                fake._dispatch(self, _read_body(self))

        class Server(ThreadingHTTPServer):
            def process_request(self, request, client_address):
                fake.connections += 1
                super().process_request(request, client_address)

        return Server(("127.0.0.1", 0), Handler)

    def __enter__(self) -> Self:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def clear(self) -> None:
        """Forget the requests and re-arm the hold (scripts and knobs stay)."""
        with self._lock:
            self.requests.clear()
        self.release.clear()
        self.last_chunk_sent.clear()

    def last_call(self) -> Recorded:
        """The last request that is not the proxy's rollup summariser: summaries run beside the
        calls, so one started by a call may land after it (never read ``requests[-1]``)."""
        with self._lock:
            return next(r for r in reversed(self.requests) if SUMMARISER not in r.body)

    def next_script(self, *kinds: type) -> Any:
        """Pop the head of ``scripted`` when it is one of ``kinds`` (else leave it there)."""
        with self._lock:
            if self.scripted and isinstance(self.scripted[0], kinds):
                return self.scripted.pop(0)
        return None

    def record(self, handler: BaseHTTPRequestHandler, body: bytes) -> Recorded:
        url = urlsplit(handler.path)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        return Recorded(handler.command, url.path, parse_qs(url.query), headers, body)

    def _dispatch(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        request = self.record(handler, body)
        if self.delay_headers:
            time.sleep(self.delay_headers)
        with self._lock:
            self.requests.append(request)
        try:
            self.handle(request, Wire(self, handler))
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True

    def handle(self, request: Recorded, wire: Wire) -> None:
        raise NotImplementedError
