#!/usr/bin/env python3
"""Shared pieces of the calo_addon benchmarks (bench_core.py, bench_rollup.py, load_test.py).

Benchmarks, not tests: they print numbers and never fail on them. Everything is on 127.0.0.1.

- A fast fake upstream: an asyncio HTTP/1.1 keep-alive server run in its own process
  (`python scripts/benchlib.py --serve-upstream`), so it does not share the load generator's
  GIL. It answers
    POST .../chat/completions                  a ChatCompletion (choices[0].message: assistant)
    POST ... with "stream": true               text/event-stream, chunked: 5 `data:` chunks +
                                               `data: [DONE]`
    POST ...:generateContent (and others)      a GenerateContentResponse, text "summary" (also
                                               what the rollup's summariser expects)
    POST ...:streamGenerateContent?alt=sse     text/event-stream, chunked: 5 `data:` chunks
    POST ...:streamGenerateContent             a JSON array sent in 5 chunks
    GET /__stats                               what it has served, per (path, credential)
  Streamed answers may pause between chunks (--chunk-delay seconds).
- An HTTP/1.1 keep-alive client protocol (Content-Length and chunked bodies) for raw asyncio
  load generators, and `run_load` (N connections, one fixed request, for a duration).
- Child processes: the fake upstream, and mitmdump (reverse mode, optionally with the addon,
  optionally under cProfile), each stopped by SIGTERM, then SIGKILL after 15 s.
- Memory probes of a child process (/proc/<pid>/status VmRSS, VmHWM) and a sampler thread.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parent.parent
ADDON = ROOT / "calo_addon" / "__init__.py"
HOST = "127.0.0.1"
REQUEST_TIMEOUT = 15.0  # seconds one request may take before it counts as an error
STARTUP_TIMEOUT = 30.0  # seconds mitmdump / the upstream may take to listen
STREAM_EVENTS = 5  # `data:` events with content in every streamed answer

GEMINI_RESPONSE = json.dumps(
    {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "summary"}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 1, "totalTokenCount": 13},
        "modelVersion": "gemini-2.5-flash",
    }
).encode()
OPENAI_RESPONSE = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "gemini-2.5-flash",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 50000, "completion_tokens": 1, "total_tokens": 50001},
    }
).encode()


def _openai_events() -> list[bytes]:
    events = []
    for i in range(STREAM_EVENTS):
        last = i == STREAM_EVENTS - 1
        chunk = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "gemini-2.5-flash",
            "choices": [
                {
                    "index": 0,
                    "delta": ({"role": "assistant"} if i == 0 else {}) | {"content": f"w{i} "},
                    "finish_reason": "stop" if last else None,
                }
            ],
        }
        if last:
            chunk["usage"] = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
        events.append(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def _gemini_chunks() -> list[bytes]:
    chunks = []
    for i in range(STREAM_EVENTS):
        last = i == STREAM_EVENTS - 1
        chunk = {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": f"w{i} "}]},
                    "index": 0,
                }
                | ({"finishReason": "STOP"} if last else {})
            ],
            "modelVersion": "gemini-2.5-flash",
        }
        if last:
            chunk["usageMetadata"] = {
                "promptTokenCount": 12,
                "candidatesTokenCount": 5,
                "totalTokenCount": 17,
            }
        chunks.append(json.dumps(chunk).encode())
    return chunks


OPENAI_SSE = _openai_events()
GEMINI_SSE = [b"data: " + c + b"\r\n\r\n" for c in _gemini_chunks()]
GEMINI_ARRAY = [
    (b"[" if i == 0 else b",\r\n") + c + (b"]" if i == STREAM_EVENTS - 1 else b"")
    for i, c in enumerate(_gemini_chunks())
]


# --------------------------------------------------------------------------- HTTP framing


def content_length(head: bytes) -> int | None:
    """Content-Length from a header block (request/status line included), or None."""
    lower = head.lower()
    i = lower.find(b"\r\ncontent-length:")
    if i < 0:
        return None
    start = i + len(b"\r\ncontent-length:")
    end = lower.find(b"\r\n", start)
    return int(lower[start : end if end >= 0 else len(lower)].strip())


def header_value(head: bytes, name: bytes) -> bytes | None:
    lower = head.lower()
    i = lower.find(b"\r\n" + name + b":")
    if i < 0:
        return None
    start = i + len(name) + 3
    end = lower.find(b"\r\n", start)
    return head[start : end if end >= 0 else len(head)].strip()


def http_request(
    method: str,
    path: str,
    port: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> bytes:
    """One HTTP/1.1 request's bytes (keep-alive, Content-Length framed)."""
    lines = [f"{method} {path} HTTP/1.1", f"host: {HOST}:{port}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# --------------------------------------------------------------------------- fake upstream

_STREAM_FLAG = re.compile(rb'"stream"\s*:\s*true')
_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
_ARRAY_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
)


class _UpstreamProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive: request line + headers + Content-Length body -> a fixed answer.

    Whole answers are written at once; streamed answers go chunk by chunk (one write each,
    `chunk_delay` seconds apart) from a task, and requests on the same connection that arrive
    meanwhile wait their turn.
    """

    stats: ClassVar[Counter] = Counter()  # (path, credential) -> requests
    body_bytes: ClassVar[Counter] = Counter()  # path -> request body bytes received
    chunk_delay: ClassVar[float] = 0.0

    def connection_made(self, transport):
        self.transport = transport
        self.buf = bytearray()
        self.need = -1  # total bytes of the current request once its head is parsed
        self.body_at = 0
        self.head = b""
        self.queue: deque[tuple[bytes, str | None]] = deque()
        self.runner: asyncio.Task | None = None

    def data_received(self, data):
        self.buf += data
        while True:
            if self.need < 0:
                idx = self.buf.find(b"\r\n\r\n")
                if idx < 0:
                    return
                self.head = bytes(self.buf[:idx])
                self.body_at = idx + 4
                self.need = idx + 4 + (content_length(self.head) or 0)
            if len(self.buf) < self.need:
                return
            stream = self._stream_kind(self.head)
            del self.buf[: self.need]
            self.need = -1
            if self.runner is None and stream is None:
                self._answer(self.head)
            else:
                self.queue.append((self.head, stream))
                if self.runner is None:
                    self.runner = asyncio.get_running_loop().create_task(self._run())

    def _stream_kind(self, head: bytes) -> str | None:
        target = head[: head.find(b"\r\n")].split(b" ", 2)[1]
        path, _, query = target.partition(b"?")
        if path.endswith(b":streamGenerateContent"):
            return "gemini-sse" if b"alt=sse" in query else "gemini-array"
        if path.endswith(b"/chat/completions"):
            # look for the flag without copying the body (it may be 200 KB)
            start = self.buf.find(b'"stream"', self.body_at, self.need)
            while start >= 0:
                if _STREAM_FLAG.match(self.buf, start, self.need):
                    return "openai-sse"
                start = self.buf.find(b'"stream"', start + 8, self.need)
        return None

    def _count(self, head: bytes, path: bytes) -> None:
        cred = header_value(head, b"x-goog-api-key") or header_value(head, b"authorization") or b"-"
        self.stats[(path.decode(), cred.decode())] += 1
        self.body_bytes[path.decode()] += content_length(head) or 0

    def _answer(self, head: bytes):
        line_end = head.find(b"\r\n")
        method, target, _ = head[: line_end if line_end >= 0 else len(head)].split(b" ", 2)
        path = target.split(b"?", 1)[0]
        if method == b"GET" and path == b"/__stats":
            body = json.dumps(
                {
                    "requests": [[p, c, n] for (p, c), n in self.stats.items()],
                    "bytes": [[p, n] for p, n in self.body_bytes.items()],
                }
            ).encode()
        elif method == b"POST":
            self._count(head, path)
            body = GEMINI_RESPONSE if b"Content" in path else OPENAI_RESPONSE
        else:
            body = b'{"error": "fake upstream answers POST only"}'
        self.transport.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )

    async def _run(self):
        try:
            while self.queue and not self.transport.is_closing():
                head, stream = self.queue.popleft()
                if stream is None:
                    self._answer(head)
                    continue
                path = head[: head.find(b"\r\n")].split(b" ", 2)[1].split(b"?", 1)[0]
                self._count(head, path)
                if stream == "gemini-array":
                    start, chunks = _ARRAY_HEAD, GEMINI_ARRAY
                else:
                    start, chunks = _SSE_HEAD, OPENAI_SSE if stream == "openai-sse" else GEMINI_SSE
                self.transport.write(start)
                for chunk in chunks:
                    if self.chunk_delay:
                        await asyncio.sleep(self.chunk_delay)
                    if self.transport.is_closing():
                        return
                    self.transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.transport.write(b"0\r\n\r\n")
        finally:
            self.runner = None
            if self.queue and not self.transport.is_closing():  # arrived during the last await
                self.runner = asyncio.get_running_loop().create_task(self._run())


def serve_upstream(chunk_delay: float = 0.0) -> None:
    """Entry point of the upstream process: print the port, serve until stdin closes / SIGTERM."""
    _UpstreamProtocol.chunk_delay = chunk_delay

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_UpstreamProtocol, HOST, 0, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        # also stop if the parent dies (its end of our stdin closes)
        loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.buffer.read1(1) or stop.set())
        await stop.wait()
        server.close()

    asyncio.run(main())


def _fetch_stats(port: int) -> dict:
    async def fetch():
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(f"GET /__stats HTTP/1.1\r\nhost: {HOST}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        body = await reader.readexactly(content_length(head) or 0)
        writer.close()
        return json.loads(body)

    return asyncio.run(asyncio.wait_for(fetch(), 10))


def upstream_stats(port: int) -> Counter:
    """Requests the fake upstream has served, per (path, credential)."""
    return Counter({(p, c): n for p, c, n in _fetch_stats(port)["requests"]})


def upstream_bytes(port: int) -> Counter:
    """Request body bytes the fake upstream has received, per path."""
    return Counter({p: n for p, n in _fetch_stats(port)["bytes"]})


# --------------------------------------------------------------------------- client


class Reply:
    __slots__ = ("body", "chunks", "head", "status", "ttfb")

    def __init__(self, status: int, head: bytes, body: bytes, chunks: int, ttfb: float):
        self.status = status
        self.head = head  # status line and headers
        self.body = body  # decoded from chunked framing if it came chunked
        self.chunks = chunks  # chunks of a chunked body (0: Content-Length framed)
        self.ttfb = ttfb  # seconds from send() to the first byte of the answer


_HEAD, _BODY, _SIZE, _DATA, _TRAILER = range(5)


class ClientProtocol(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: send() a request, await its Reply. No pipelining."""

    def __init__(self):
        self.buf = bytearray()
        self.state = _HEAD
        self.need = 0
        self.head = b""
        self.status = 0
        self.body = bytearray()
        self.chunks = 0
        self.sent_at = 0.0
        self.first_at = 0.0
        self.fut: asyncio.Future | None = None
        self.transport = None
        self.lost = False

    def connection_made(self, transport):
        self.transport = transport

    def send(self, data: bytes) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        self.fut = loop.create_future()
        self.sent_at = loop.time()
        self.first_at = 0.0
        if self.lost or self.transport.is_closing():
            self.fut.set_exception(ConnectionError("connection already closed"))
        else:
            self.transport.write(data)
        return self.fut

    def data_received(self, data):
        if not self.first_at:
            self.first_at = asyncio.get_running_loop().time()
        self.buf += data
        try:
            self._parse()
        except ValueError as e:
            self._fail(ValueError(f"protocol error: {e}"))

    def _parse(self):
        buf = self.buf
        if self.state == _HEAD:
            idx = buf.find(b"\r\n\r\n")
            if idx < 0:
                return
            self.head = head = bytes(buf[:idx])
            del buf[: idx + 4]
            self.status = int(head[9:12])
            self.body = bytearray()
            self.chunks = 0
            te = header_value(head, b"transfer-encoding")
            if te is not None and b"chunked" in te.lower():
                self.state = _SIZE
            else:
                length = content_length(head)
                if length is None:
                    raise ValueError(f"response without content-length or chunks: {head[:200]!r}")
                self.state, self.need = _BODY, length
        if self.state == _BODY:
            if len(buf) < self.need:
                return
            self.body = buf[: self.need]
            del buf[: self.need]
            self._done()
            return
        while True:
            if self.state == _SIZE:
                i = buf.find(b"\r\n")
                if i < 0:
                    return
                size = int(bytes(buf[:i]).split(b";", 1)[0].strip(), 16)
                del buf[: i + 2]
                self.state, self.need = (_TRAILER, 0) if size == 0 else (_DATA, size)
            elif self.state == _DATA:
                if len(buf) < self.need + 2:
                    return
                if buf[self.need : self.need + 2] != b"\r\n":
                    raise ValueError("chunk not followed by CRLF")
                self.body += buf[: self.need]
                del buf[: self.need + 2]
                self.chunks += 1
                self.state = _SIZE
            else:  # _TRAILER: lines until an empty one
                i = buf.find(b"\r\n")
                if i < 0:
                    return
                empty = i == 0
                del buf[: i + 2]
                if empty:
                    self._done()
                    return

    def _done(self):
        self.state = _HEAD
        if self.fut and not self.fut.done():
            ttfb = (self.first_at or self.sent_at) - self.sent_at
            self.fut.set_result(Reply(self.status, self.head, bytes(self.body), self.chunks, ttfb))

    def _fail(self, exc: Exception):
        if self.fut and not self.fut.done():
            self.fut.set_exception(exc)
        if self.transport:
            self.transport.close()

    def connection_lost(self, exc):
        self.lost = True
        self._fail(ConnectionError(f"connection closed: {exc}"))


async def connect(port: int) -> ClientProtocol:
    loop = asyncio.get_running_loop()
    _, proto = await asyncio.wait_for(
        loop.create_connection(ClientProtocol, HOST, port), REQUEST_TIMEOUT
    )
    return proto


async def request_once(port: int, request: bytes) -> Reply:
    """One request on a fresh connection."""
    proto = await connect(port)
    try:
        return await asyncio.wait_for(proto.send(request), REQUEST_TIMEOUT)
    finally:
        proto.transport.close()


async def _load(port: int, request: bytes, concurrency: int, warmup: float, duration: float):
    loop = asyncio.get_running_loop()
    t0 = loop.time() + warmup
    t1 = t0 + duration
    done = errors = total = 0
    latencies: list[float] = []
    error_samples: Counter = Counter()

    async def worker():
        nonlocal done, errors, total
        try:
            proto = await connect(port)
        except (OSError, TimeoutError) as e:
            errors += 1
            error_samples[f"connect: {e!r}"] += 1
            return
        try:
            while True:
                start = loop.time()
                if start >= t1:
                    return
                try:
                    reply = await asyncio.wait_for(proto.send(request), REQUEST_TIMEOUT)
                except (OSError, ValueError, TimeoutError, ConnectionError) as e:
                    errors += 1
                    error_samples[f"{type(e).__name__}: {e}"[:200]] += 1
                    return
                end = loop.time()
                total += 1
                if reply.status != 200:
                    errors += 1
                    error_samples[f"HTTP {reply.status}: {reply.body[:160]!r}"] += 1
                    if proto.transport.is_closing():
                        return
                    continue
                if t0 <= end < t1:
                    done += 1
                    latencies.append(end - start)
        finally:
            if proto.transport:
                proto.transport.close()

    await asyncio.wait_for(
        asyncio.gather(*(worker() for _ in range(concurrency))),
        warmup + duration + REQUEST_TIMEOUT + 5,
    )
    latencies.sort()

    def pct(q: float) -> float:
        return percentile(latencies, q) * 1000

    return {
        "rps": done / duration,
        "done": done,
        "total": total,
        "errors": errors,
        "error_samples": error_samples,
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
    }


def run_load(port, request, concurrency, warmup, duration):
    """`concurrency` keep-alive connections send `request` back to back for warmup + duration
    seconds; requests completed in the last `duration` seconds count."""
    return asyncio.run(_load(port, request, concurrency, warmup, duration))


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def fmt_errors(result) -> str:
    if not result["errors"]:
        return ""
    top = "; ".join(f"{n}x {msg}" for msg, n in result["error_samples"].most_common(3))
    return f"  ERRORS={result['errors']} ({top})"


# --------------------------------------------------------------------------- processes


class Proc:
    """A child process whose stdout is drained in a thread (lines kept for diagnostics)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: str):
        self.name = name
        self.lines: list[str] = []
        self.port: int | None = None
        self._port_found = threading.Event()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            text=True,
            bufsize=1,
        )
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _drain(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            if self.port is None:
                port = self.parse_port(line)
                if port:
                    self.port = port
                    self._port_found.set()
        self._port_found.set()  # EOF: wake the waiter

    def parse_port(self, line: str) -> int | None:
        raise NotImplementedError

    def wait_port(self) -> int:
        self._port_found.wait(STARTUP_TIMEOUT)
        if self.port is None:
            self.stop()
            tail = "\n    ".join(self.lines[-20:])
            raise SystemExit(f"{self.name} did not start listening; its output:\n    {tail}")
        return self.port

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdin:
            self.proc.stdin.close()
        self._thread.join(5)
        return self.proc.returncode


class Upstream(Proc):
    """The fake upstream in its own process."""

    def __init__(self, cwd: str, chunk_delay: float = 0.0):
        super().__init__(
            "fake upstream",
            [sys.executable, __file__, "--serve-upstream", "--chunk-delay", str(chunk_delay)],
            dict(os.environ),
            cwd,
        )

    def parse_port(self, line):
        return int(line) if line.strip().isdigit() else None


_LISTENING = re.compile(r"listening at \[?[^\]\s]*\]?:(\d+)")


class Mitmdump(Proc):
    """`mitmdump --mode reverse:http://127.0.0.1:UP -p 0`, optionally with the addon (`script`),
    configured by environment (rollup off unless `env` says otherwise), optionally under
    cProfile (stats written to `profile` when it exits)."""

    def __init__(
        self,
        name: str,
        up_port: int,
        tmp: str,
        addon: bool,
        profile: str | None = None,
        script: Path | str = ADDON,
        env: dict[str, str] | None = None,
    ):
        confdir = os.path.join(tmp, f"confdir-{name}")
        os.makedirs(confdir, exist_ok=True)
        mitm_args = [
            "--mode", f"reverse:http://{HOST}:{up_port}",
            "-p", "0",
            "--listen-host", HOST,
            "--set", "connection_strategy=lazy",
            "--set", f"confdir={confdir}",
            # "info" only so the "listening at" line (INFO) shows; flow_detail=0 prints nothing
            # per flow, so the console sees a few lines per connection, none per request.
            "--set", "termlog_verbosity=info",
            "--set", "flow_detail=0",
        ]  # fmt: skip
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("GEMINI_CALO_")}
        self.log_file = None
        if addon:
            self.log_file = os.path.join(tmp, f"calo-{name}.log")
            mitm_args += ["-s", str(script)]
            child_env.update(
                GEMINI_CALO_API_KEYS="k1,k2,k3",
                GEMINI_CALO_PROXY_API_KEYS="pk",
                GEMINI_CALO_BASE_URL=f"http://{HOST}:{up_port}",
                GEMINI_CALO_LOG_FILE=self.log_file,
                GEMINI_CALO_LOG_LEVEL="INFO",
                GEMINI_CALO_ROLLUP="off",
            )
            child_env.update(env or {})
        mitmdump = Path(sys.executable).parent / "mitmdump"
        if profile:
            code = (
                "import cProfile, sys\n"
                "from mitmproxy.tools.main import mitmdump\n"
                "p = cProfile.Profile()\n"
                "try:\n"
                "    p.runcall(mitmdump, sys.argv[2:])\n"
                "except SystemExit:\n"
                "    pass\n"
                "p.dump_stats(sys.argv[1])\n"
            )
            argv = [sys.executable, "-c", code, profile, *mitm_args]
        else:
            argv = [str(mitmdump), *mitm_args]
        # cwd = tmp: no ./calo.yaml or ./.env of the repository is picked up
        super().__init__(name, argv, child_env, tmp)

    def parse_port(self, line):
        m = _LISTENING.search(line)
        return int(m.group(1)) if m else None


def read_calo_log(path: str | None) -> list[dict]:
    """The JSON lines of a calo log file (complete once mitmdump has exited)."""
    if not path or not os.path.exists(path):
        return []
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except ValueError:
                records.append({"unparsed": line.strip()})
    return records


def print_profile(path: str, top: int = 25) -> None:
    import pstats

    if not os.path.exists(path):
        print("  no profile written")
        return
    stats = pstats.Stats(path)
    stats.sort_stats("tottime")
    print(f"\n  top {top} by own time:")
    stats.print_stats(top)
    stats.sort_stats("cumulative")
    print("  calo_addon functions by cumulative time:")
    stats.print_stats(r"calo_addon", top)


# --------------------------------------------------------------------------- memory


def proc_status_kb(pid: int, field: str) -> int | None:
    """A kB field of /proc/<pid>/status (VmRSS, VmHWM), or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler:
    """Samples a process's VmRSS every `every` seconds in a thread, with a progress counter
    read beside it, for at most `limit` seconds."""

    def __init__(self, pid: int, progress=lambda: 0, every: float = 0.2, limit: float = 900.0):
        self.pid = pid
        self.progress = progress
        self.every = every
        self.limit = limit
        self.samples: list[tuple[float, int, int]] = []  # (seconds, progress, VmRSS kB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.monotonic()

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set() and time.monotonic() - self._t0 < self.limit:
            rss = proc_status_kb(self.pid, "VmRSS")
            if rss is None:
                return
            self.samples.append((time.monotonic() - self._t0, self.progress(), rss))
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def peak(self) -> int:
        return max((s[2] for s in self.samples), default=0)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="the fake upstream of the calo_addon benchmarks")
    ap.add_argument("--serve-upstream", action="store_true", required=True)
    ap.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between SSE chunks")
    serve_upstream(max(0.0, min(ap.parse_args().chunk_delay, 1.0)))
