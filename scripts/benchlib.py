#!/usr/bin/env python3
"""Shared pieces of the calo_addon benchmarks (bench_core.py, bench_rollup.py, bench_translate.py,
load_test.py). Benchmarks, not tests: they print numbers and never fail on them. Everything is
on 127.0.0.1, over HTTP/1.1 keep-alive connections spoken with h11 (which mitmproxy ships).

- The fake upstream, in its own process (`python scripts/benchlib.py --serve-upstream`), so it
  does not share the load generator's GIL: an asyncio + h11 server whose answers are the test
  suite's fakes' (tests/fake_llm.py for Gemini and OpenAI Chat, tests/fake_anthropic.py for
  Anthropic Messages), rendered once per (method, target, streamed) and then served as bytes.
  Streams go chunk by chunk, `--first-delay` seconds before the first and `--chunk-delay`
  between the others. GET /__stats says what it served: requests per (path, credential), body
  bytes per path, and when (time.monotonic, shared by every process) each stream's first chunk
  left.
- A client: `Connection` (one keep-alive connection: send a `Request`, get its `Reply`) and
  `run_load` (N connections sending one request back to back for a duration).
- Child processes: the fake upstream and mitmdump (reverse mode, optionally with the addon,
  optionally under cProfile), stopped by SIGTERM, then SIGKILL.
- Memory of a child process (/proc/<pid>/status VmRSS, VmHWM).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs

import h11
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # calo_addon and the tests' fakes

from tests.fake_anthropic import FakeAnthropic
from tests.fake_llm import FakeLLM
from tests.fake_server import Recorded, Wire

ADDON = ROOT / "calo_addon" / "__init__.py"
HOST = "127.0.0.1"
REQUEST_TIMEOUT = 15.0  # seconds one request may take before it counts as an error
STARTUP_TIMEOUT = 30.0  # seconds mitmdump / the upstream may take to listen
STREAM_CHUNKS = 5  # text chunks of every streamed answer (FakeLLM's `chunks`)
_STREAM_FLAG = re.compile(rb'"stream"\s*:\s*true')
_END = h11.EndOfMessage()


# --------------------------------------------------------------------------- the fake upstream


@dataclass
class Answer:
    """An answer to serve again and again: its h11 events are built (and checked) once."""

    status: int
    headers: list[tuple[str, str]]
    chunks: list[bytes]
    streamed: bool

    @cached_property
    def head(self) -> h11.Response:
        length = [] if self.streamed else [("content-length", str(sum(map(len, self.chunks))))]
        return h11.Response(status_code=self.status, headers=[*self.headers, *length])

    @cached_property
    def data(self) -> list[h11.Data]:
        return [h11.Data(data=chunk) for chunk in self.chunks]


class _Captured(Wire):
    """A fake's Wire that keeps the answer instead of writing it to a socket."""

    def __init__(self, fake, headers: dict[str, str]):
        super().__init__(fake, SimpleNamespace(headers=headers))
        self.answer: Answer | None = None

    def send(self, status: int, data: bytes, content_type: str, headers: dict | None = None):
        self.answer = Answer(status, _fields(content_type, headers), [data], False)

    def stream(self, content_type: str, chunks: list[bytes], headers: dict | None = None):
        self.answer = Answer(200, _fields(content_type, headers), list(chunks), True)


def _fields(content_type: str, headers: dict | None) -> list[tuple[str, str]]:
    return [("content-type", content_type), *((k, str(v)) for k, v in (headers or {}).items())]


class _Renders:
    """A fake that renders answers and never listens (the h11 server below serves them)."""

    def _make_server(self):
        return SimpleNamespace(server_address=(HOST, 0))


class _LLM(_Renders, FakeLLM):
    pass


class _Anthropic(_Renders, FakeAnthropic):
    pass


class Answers:
    """The fakes' answers, rendered once per (method, target, streamed), then reused for every
    request alike (a benchmark sends the same few requests again and again)."""

    def __init__(self) -> None:
        self.llm, self.anthropic = _LLM(chunks=STREAM_CHUNKS), _Anthropic()
        self._memo: dict[tuple, Answer] = {}

    def get(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        key = (method, target, _STREAM_FLAG.search(body) is not None)
        if (answer := self._memo.get(key)) is None:
            path, _, query = target.partition("?")
            fake = self.anthropic if path.startswith("/v1/messages") else self.llm
            wire = _Captured(fake, headers)
            fake.handle(Recorded(method, path, parse_qs(query), headers, body), wire)
            answer = self._memo[key] = wire.answer
        return answer


def chat_reply_text() -> str:
    """The text of the fake upstream's answer to an OpenAI chat call (not streamed)."""
    return _LLM(chunks=STREAM_CHUNKS).chat_default_reply({}, False).text


@dataclass
class Stats:
    requests: Counter = field(default_factory=Counter)  # (path, credential) -> requests
    body_bytes: Counter = field(default_factory=Counter)  # path -> request body bytes
    streams: int = 0
    first_chunks: deque = field(default_factory=lambda: deque(maxlen=1000))  # the latest streams'

    def as_json(self) -> dict:
        return {
            "requests": [[p, c, n] for (p, c), n in self.requests.items()],
            "bytes": [[p, n] for p, n in self.body_bytes.items()],
            "streams": self.streams,
            "first_chunks": list(self.first_chunks),
        }


class UpstreamProtocol(asyncio.Protocol):
    """One connection to the fake upstream: h11 requests in, the fakes' answers out. Whole
    answers are written at once; a stream goes chunk by chunk from a task, and requests that
    arrive on the connection meanwhile wait their turn (h11 pauses)."""

    def __init__(self, answers: Answers, stats: Stats, first_delay: float, chunk_delay: float):
        self.answers, self.stats = answers, stats
        self.first_delay, self.chunk_delay = first_delay, chunk_delay
        self.conn = h11.Connection(h11.SERVER)
        self.body = bytearray()
        self.head: h11.Request | None = None
        self.streaming: asyncio.Task | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.conn.receive_data(data)
        if self.streaming is None:
            self._process()

    def connection_lost(self, exc) -> None:
        if self.streaming is not None:
            self.streaming.cancel()

    def _process(self) -> None:
        try:
            while (event := self.conn.next_event()) not in (h11.NEED_DATA, h11.PAUSED):
                if type(event) is h11.Request:
                    self.head, self.body = event, bytearray()
                elif type(event) is h11.Data:
                    self.body += event.data
                elif type(event) is h11.EndOfMessage:
                    answer = self._answer_for(self.head, bytes(self.body))
                    if answer.streamed:
                        self.streaming = asyncio.get_running_loop().create_task(
                            self._stream(answer)
                        )
                        return
                    conn = self.conn
                    data = [conn.send(answer.head), *map(conn.send, answer.data), conn.send(_END)]
                    self.transport.write(b"".join(data))  # one write: no wait for an ACK
                    conn.start_next_cycle()
                else:  # the client closed
                    return self.transport.close()
        except h11.ProtocolError:
            self.transport.close()

    def _answer_for(self, head: h11.Request, body: bytes) -> Answer:
        target = head.target.decode()
        path = target.partition("?")[0]
        if path == "/__stats":
            stats = json.dumps(self.stats.as_json()).encode()
            return Answer(200, [("content-type", "application/json")], [stats], False)
        headers = {k.decode(): v.decode() for k, v in head.headers}
        credential = headers.get("x-goog-api-key") or headers.get("authorization") or "-"
        self.stats.requests[(path, credential)] += 1
        self.stats.body_bytes[path] += len(body)
        return self.answers.get(head.method.decode(), target, headers, body)

    async def _stream(self, answer: Answer) -> None:
        write, conn = self.transport.write, self.conn
        write(conn.send(answer.head))
        for i, chunk in enumerate(answer.data):
            if delay := self.first_delay if i == 0 else self.chunk_delay:
                await asyncio.sleep(delay)
            if i == 0:  # the moment before it is written: the gap measured includes the write
                self.stats.first_chunks.append(time.monotonic())
                self.stats.streams += 1
            write(conn.send(chunk))
        write(conn.send(_END))
        self.streaming = None
        conn.start_next_cycle()
        self._process()  # requests that arrived meanwhile


def serve_upstream(first_delay: float, chunk_delay: float) -> None:
    """The upstream process: print the port, serve until SIGTERM or until stdin closes."""

    async def main():
        loop = asyncio.get_running_loop()
        answers, stats = Answers(), Stats()

        def connection() -> UpstreamProtocol:
            return UpstreamProtocol(answers, stats, first_delay, chunk_delay)

        server = await loop.create_server(connection, HOST, 0, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.buffer.read1(1) or stop.set())
        await stop.wait()
        server.close()

    asyncio.run(main())


def upstream_stats(port: int) -> dict:
    """What the fake upstream has served: "requests" (Counter per (path, credential)),
    "bytes" (Counter per path), "streams" (how many), "first_chunks" (when the latest streams'
    first chunks left, time.monotonic)."""
    raw = httpx.get(f"http://{HOST}:{port}/__stats", timeout=10).json()
    return {
        "requests": Counter({(p, c): n for p, c, n in raw["requests"]}),
        "bytes": Counter({p: n for p, n in raw["bytes"]}),
        "streams": raw["streams"],
        "first_chunks": raw["first_chunks"],
    }


# --------------------------------------------------------------------------- the client


@dataclass(frozen=True)
class Request:
    """A request to send again and again: its h11 events are built (and checked) once."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""

    @cached_property
    def events(self) -> list[h11.Event]:
        head = h11.Request(method=self.method, target=self.target, headers=self.headers)
        return [head, *([h11.Data(data=self.body)] if self.body else []), _END]


def request(method: str, target: str, body: bytes = b"", **headers: str) -> Request:
    """A Request; header names are given with `_` for `-` (x_goog_api_key="pk")."""
    fields = [("host", HOST), *((k.replace("_", "-"), v) for k, v in headers.items())]
    if method != "GET":
        fields.append(("content-length", str(len(body))))
    return Request(method, target, tuple(fields), body)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    chunks: int  # chunks of a chunked body (0 when Content-Length framed)
    ttfb: float  # seconds from sending to the first byte of the answer
    first_body_at: float  # time.monotonic() when the first byte of the body arrived


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection (h11): one request at a time, `await send(req)`."""

    def __init__(self) -> None:
        self.h11 = h11.Connection(h11.CLIENT)
        self.transport: asyncio.Transport | None = None
        self.reply: asyncio.Future[Reply] | None = None
        self.lost = False

    @classmethod
    async def open(cls, port: int) -> Connection:
        loop = asyncio.get_running_loop()
        connecting = loop.create_connection(cls, HOST, port)
        return (await asyncio.wait_for(connecting, REQUEST_TIMEOUT))[1]

    def connection_made(self, transport) -> None:
        self.transport = transport

    @property
    def usable(self) -> bool:
        return self.h11.our_state is h11.IDLE and not self.lost

    def send(self, req: Request) -> asyncio.Future[Reply]:
        self.reply = asyncio.get_running_loop().create_future()
        self.sent, self.first = time.monotonic(), 0.0
        self.status, self.headers, self.body, self.chunks, self.first_body = 0, {}, [], 0, 0.0
        if self.lost:
            self.reply.set_exception(ConnectionError("connection already closed"))
        else:
            self.transport.write(b"".join(map(self.h11.send, req.events)))  # one write
        return self.reply

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.first = self.first or now
        self.h11.receive_data(data)
        try:
            while (event := self.h11.next_event()) is not h11.NEED_DATA:
                if type(event) is h11.Response:
                    self.status = event.status_code
                    self.headers = {k.decode(): v.decode() for k, v in event.headers}
                elif type(event) is h11.Data:
                    self.first_body = self.first_body or now
                    self.body.append(event.data)
                    self.chunks += event.chunk_end
                elif type(event) is h11.EndOfMessage:
                    return self._done()
                else:
                    return self._fail(ConnectionError("the server closed the connection"))
        except h11.ProtocolError as e:
            self._fail(e)

    def _done(self) -> None:
        body, ttfb = b"".join(self.body), self.first - self.sent
        self.h11.start_next_cycle()
        reply = Reply(self.status, self.headers, body, self.chunks, ttfb, self.first_body)
        if self.reply and not self.reply.done():
            self.reply.set_result(reply)

    def _fail(self, error: Exception) -> None:
        if self.reply and not self.reply.done():
            self.reply.set_exception(error)
        self.close()

    def connection_lost(self, exc) -> None:
        self.lost = True
        self._fail(ConnectionError(f"connection closed: {exc}"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def request_once(port: int, req: Request) -> Reply:
    """One request on a fresh connection."""
    conn = await Connection.open(port)
    try:
        return await asyncio.wait_for(conn.send(req), REQUEST_TIMEOUT)
    finally:
        conn.close()


ERRORS = (OSError, TimeoutError, ConnectionError, h11.ProtocolError)


async def _load(port: int, req: Request, concurrency: int, warmup: float, duration: float):
    loop = asyncio.get_running_loop()
    t0 = loop.time() + warmup
    t1 = t0 + duration
    result = {"done": 0, "total": 0, "errors": 0, "error_samples": Counter()}
    latencies: list[float] = []

    def error(message: str) -> None:
        result["errors"] += 1
        result["error_samples"][message[:200]] += 1

    async def worker():
        try:
            conn = await Connection.open(port)
        except ERRORS as e:
            return error(f"connect: {e!r}")
        try:
            while (start := loop.time()) < t1:
                try:
                    reply = await asyncio.wait_for(conn.send(req), REQUEST_TIMEOUT)
                except ERRORS as e:
                    return error(f"{type(e).__name__}: {e}")
                end = loop.time()
                result["total"] += 1
                if reply.status != 200:
                    error(f"HTTP {reply.status}: {reply.body[:160]!r}")
                    if not conn.usable:
                        return None
                elif t0 <= end < t1:
                    result["done"] += 1
                    latencies.append(end - start)
        finally:
            conn.close()

    await asyncio.wait_for(
        asyncio.gather(*(worker() for _ in range(concurrency))),
        warmup + duration + REQUEST_TIMEOUT + 5,
    )
    latencies.sort()
    result["rps"] = result["done"] / duration
    result["p50_ms"] = percentile(latencies, 0.5) * 1000
    result["p99_ms"] = percentile(latencies, 0.99) * 1000
    return result


def run_load(port: int, req: Request, concurrency: int, warmup: float, duration: float) -> dict:
    """`concurrency` keep-alive connections send `req` back to back for warmup + duration
    seconds; requests completed in the last `duration` seconds count."""
    return asyncio.run(_load(port, req, concurrency, warmup, duration))


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def fmt_errors(result: dict) -> str:
    if not result["errors"]:
        return ""
    top = "; ".join(f"{n}x {msg}" for msg, n in result["error_samples"].most_common(3))
    return f"  ERRORS={result['errors']} ({top})"


def load_options(ap, duration: float = 5.0) -> None:
    """The options every load benchmark shares."""
    ap.add_argument("--duration", type=float, default=duration, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per run (1)")
    ap.add_argument("--concurrency", type=int, default=8, help="keep-alive connections (8)")
    ap.add_argument("--repeats", type=int, default=2, help="runs per case, order alternating (2)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 s per case, 0.5 s warm-up")


def bounded(args):
    """`args` of load_options, with --quick applied and every value in a sane range."""
    if args.quick:
        args.duration, args.warmup = 1.0, 0.5
    args.repeats = max(1, min(args.repeats, 20))
    args.concurrency = max(1, min(args.concurrency, 512))
    args.duration = max(0.2, min(args.duration, 120.0))
    return args


def alternate(cases: list[str], repeats: int, run, label: str = "") -> dict[str, list[dict]]:
    """`run(case)` for every case `repeats` times, the order alternating (a b c, c b a, ...)
    to spread the noise of a shared machine; each run printed (with its "note", if any)."""
    results: dict[str, list[dict]] = {case: [] for case in cases}
    for rep in range(repeats):
        for case in cases if rep % 2 == 0 else cases[::-1]:
            r = run(case)
            results[case].append(r)
            print(
                f"  {label}run {rep + 1} {case}: {r['rps']:8.0f} rps (p50 {r['p50_ms']:.1f} ms, "
                f"p99 {r['p99_ms']:.1f} ms, {r['total']} requests"
                + (f", {r['note']})" if "note" in r else ")")
                + fmt_errors(r),
                flush=True,
            )
    return results


def best_and_median(results: dict[str, list[dict]]) -> tuple[dict, dict]:
    """Per case: the best requests per second of its runs, and their median."""
    best = {c: max(r["rps"] for r in runs) for c, runs in results.items()}
    median = {c: statistics.median(r["rps"] for r in runs) for c, runs in results.items()}
    return best, median


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


# --------------------------------------------------------------------------- processes


class Proc:
    """A child process whose stdout is drained in a thread; `port` from its first port line."""

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

    def _drain(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if self.port is None and (port := self.parse_port(line)):
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

    def __init__(self, cwd: str, chunk_delay: float = 0.0, first_delay: float = 0.0):
        delays = ["--chunk-delay", str(chunk_delay), "--first-delay", str(first_delay)]
        argv = [sys.executable, __file__, "--serve-upstream", *delays]
        super().__init__("fake upstream", argv, dict(os.environ), cwd)

    def parse_port(self, line: str) -> int | None:
        return int(line) if line.strip().isdigit() else None


_LISTENING = re.compile(r"listening at \[?[^\]\s]*\]?:(\d+)")
_PROFILED = """import cProfile, sys
from mitmproxy.tools.main import mitmdump
p = cProfile.Profile()
try:
    p.runcall(mitmdump, sys.argv[2:])
except SystemExit:
    pass
p.dump_stats(sys.argv[1])
"""


class Mitmdump(Proc):
    """`mitmdump --mode reverse:http://127.0.0.1:UP -p 0` (and `options`), optionally with the
    addon (`script`), configured by environment (proxy key "pk", keys k1..k3, rollup off unless
    `env` says otherwise), optionally under cProfile (stats written to `profile` at exit)."""

    def __init__(
        self,
        name: str,
        up_port: int,
        tmp: str,
        addon: bool,
        profile: str | None = None,
        script: Path | str = ADDON,
        env: dict[str, str] | None = None,
        options: tuple[str, ...] = (),
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
            *options,
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
        if profile:
            argv = [sys.executable, "-c", _PROFILED, profile, *mitm_args]
        else:
            argv = [str(Path(sys.executable).parent / "mitmdump"), *mitm_args]
        # cwd = tmp: no ./calo.yaml or ./.env of the repository is picked up
        super().__init__(name, argv, child_env, tmp)

    def parse_port(self, line: str) -> int | None:
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


def profile(path: str, env: dict[str, str] | None, loads: dict[str, Request], args) -> None:
    """mitmdump + calo_addon (configured by `env`) under cProfile, driven with each of `loads`
    for --duration; then its hot spots."""
    print(f"\nprofiling mitmdump + calo_addon under cProfile -> {path}")
    with tempfile.TemporaryDirectory(prefix="calo-profile-") as tmp:
        procs: list[Proc] = [Upstream(tmp)]
        try:
            up_port = procs[0].wait_port()
            procs.append(Mitmdump("profile", up_port, tmp, addon=True, profile=path, env=env))
            port = procs[-1].wait_port()
            for label, req in loads.items():
                r = run_load(port, req, args.concurrency, args.warmup, args.duration)
                print(f"  {label}: {r['rps']:.0f} rps under the profiler" + fmt_errors(r))
        finally:
            for proc in reversed(procs):
                proc.stop()
    print_profile(path)


# --------------------------------------------------------------------------- memory


def proc_status_kb(pid: int, name: str) -> int | None:
    """A kB field of /proc/<pid>/status (VmRSS, VmHWM), or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="the fake upstream of the calo_addon benchmarks")
    ap.add_argument("--serve-upstream", action="store_true", required=True)
    ap.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between chunks")
    ap.add_argument("--first-delay", type=float, default=0.0, help="seconds before chunk 1")
    args = ap.parse_args()
    serve_upstream(max(0.0, min(args.first_delay, 1.0)), max(0.0, min(args.chunk_delay, 1.0)))
