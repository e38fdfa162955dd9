#!/usr/bin/env python3
"""Throughput benchmark for calo_addon: what does the addon cost on top of plain mitmdump?

A benchmark, not a test: it prints numbers and never fails on them. In one run it measures
requests per second over keep-alive connections for

  (a) a fast fake upstream, directly;
  (b) `mitmdump --mode reverse:http://127.0.0.1:UP` without the addon;
  (c) the same mitmdump with `-s calo_addon/__init__.py` (env-configured, rollup off);

for two workloads:

  small  POST /v1beta/models/gemini-2.5-flash:generateContent, ~200 byte JSON body
  large  POST /v1/chat/completions, ~200 KB JSON body (many turns); with the addon it goes
         upstream as /v1beta/openai/chat/completions

Targets (reported, not asserted): c >= 0.9 x b for small bodies, c >= 0.8 x b for 200 KB.

Everything is on 127.0.0.1. The fake upstream is an asyncio HTTP/1.1 keep-alive server in its
own process (this script with --serve-upstream), so it does not share the load generator's GIL.
The load generator is one asyncio process with N raw keep-alive connections. Each case runs
--repeats times, alternating the order (a b c, then c b a, ...) to spread the noise of a shared
machine; the table uses the best run of each case, and every run is printed too.

    .venv/bin/python scripts/bench_core.py             # ~80 s
    .venv/bin/python scripts/bench_core.py --quick     # smoke run, ~25 s
    .venv/bin/python scripts/bench_core.py --null-addon    # + (n): a no-op addon, same hooks
    .venv/bin/python scripts/bench_core.py --profile /tmp/calo.prof   # + cProfile of (c)
"""

from __future__ import annotations

import argparse
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
from collections import Counter
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parent.parent
ADDON = ROOT / "calo_addon" / "__init__.py"
HOST = "127.0.0.1"
REQUEST_TIMEOUT = 15.0  # seconds one request may take before it counts as an error
STARTUP_TIMEOUT = 30.0  # seconds mitmdump / the upstream may take to listen

SMALL_PATH = "/v1beta/models/gemini-2.5-flash:generateContent"
LARGE_PATH = "/v1/chat/completions"

GEMINI_RESPONSE = json.dumps(
    {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "ok"}]},
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


# --------------------------------------------------------------------------- HTTP framing


def _content_length(head: bytes) -> int | None:
    """Content-Length from a header block (request/status line included), or None."""
    lower = head.lower()
    i = lower.find(b"\r\ncontent-length:")
    if i < 0:
        return None
    start = i + len(b"\r\ncontent-length:")
    end = lower.find(b"\r\n", start)
    return int(lower[start : end if end >= 0 else len(lower)].strip())


def _header(head: bytes, name: bytes) -> bytes | None:
    lower = head.lower()
    i = lower.find(b"\r\n" + name + b":")
    if i < 0:
        return None
    start = i + len(name) + 3
    end = lower.find(b"\r\n", start)
    return head[start : end if end >= 0 else len(head)].strip()


# --------------------------------------------------------------------------- fake upstream


class _UpstreamProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive: request line + headers + Content-Length body -> fixed small JSON."""

    stats: ClassVar[Counter] = Counter()  # (path, credential) -> requests

    def connection_made(self, transport):
        self.transport = transport
        self.buf = bytearray()
        self.need = -1  # total bytes of the current request once its head is parsed
        self.head = b""

    def data_received(self, data):
        self.buf += data
        while True:
            if self.need < 0:
                idx = self.buf.find(b"\r\n\r\n")
                if idx < 0:
                    return
                self.head = bytes(self.buf[:idx])
                self.need = idx + 4 + (_content_length(self.head) or 0)
            if len(self.buf) < self.need:
                return
            del self.buf[: self.need]
            self.need = -1
            self._answer(self.head)

    def _answer(self, head: bytes):
        line_end = head.find(b"\r\n")
        method, target, _ = head[: line_end if line_end >= 0 else len(head)].split(b" ", 2)
        path = target.split(b"?", 1)[0]
        if method == b"GET" and path == b"/__stats":
            body = json.dumps([[p, c, n] for (p, c), n in self.stats.items()]).encode()
        elif method == b"POST":
            cred = _header(head, b"x-goog-api-key") or _header(head, b"authorization") or b"-"
            self.stats[(path.decode(), cred.decode())] += 1
            body = GEMINI_RESPONSE if b"Content" in path else OPENAI_RESPONSE
        else:
            body = b'{"error": "fake upstream answers POST only"}'
        self.transport.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )


def serve_upstream() -> None:
    """Entry point of the upstream process: print the port, serve until stdin closes / SIGTERM."""

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


# --------------------------------------------------------------------------- load generator


class _ClientProtocol(asyncio.Protocol):
    def __init__(self):
        self.buf = bytearray()
        self.need = -1
        self.body_at = 0
        self.status = 0
        self.fut: asyncio.Future | None = None
        self.transport = None
        self.lost = False

    def connection_made(self, transport):
        self.transport = transport

    def send(self, data: bytes) -> asyncio.Future:
        self.fut = asyncio.get_running_loop().create_future()
        if self.lost or self.transport.is_closing():
            self.fut.set_exception(ConnectionError("connection already closed"))
        else:
            self.transport.write(data)
        return self.fut

    def data_received(self, data):
        self.buf += data
        if self.need < 0:
            idx = self.buf.find(b"\r\n\r\n")
            if idx < 0:
                return
            head = bytes(self.buf[:idx])
            self.status = int(head[9:12])
            length = _content_length(head)
            if length is None:
                self._fail(ValueError(f"response without content-length: {head[:200]!r}"))
                return
            self.body_at = idx + 4
            self.need = idx + 4 + length
        if len(self.buf) >= self.need:
            body = b"" if self.status == 200 else bytes(self.buf[self.body_at : self.need])
            del self.buf[: self.need]
            self.need = -1
            if self.fut and not self.fut.done():
                self.fut.set_result((self.status, body))

    def _fail(self, exc: Exception):
        if self.fut and not self.fut.done():
            self.fut.set_exception(exc)
        if self.transport:
            self.transport.close()

    def connection_lost(self, exc):
        self.lost = True
        self._fail(ConnectionError(f"connection closed: {exc}"))


def build_request(workload: str, port: int) -> bytes:
    if workload == "small":
        body = json.dumps(
            {
                "contents": [
                    {"role": "user", "parts": [{"text": "Say hi in one word. " * 4 + "Thanks."}]}
                ],
                "generationConfig": {"temperature": 0.2, "maxOutputTokens": 16},
            }
        ).encode()
        path, auth = SMALL_PATH, b"x-goog-api-key: pk"
    else:
        turn = "lorem ipsum dolor sit amet consectetur adipiscing elit " * 18  # ~1 KB
        messages = [{"role": "system", "content": "You are a helpful assistant."}]
        while True:
            role = "user" if len(messages) % 2 else "assistant"
            messages.append({"role": role, "content": f"turn {len(messages)}: {turn}"})
            body = json.dumps({"model": "gemini-2.5-flash", "messages": messages}).encode()
            if len(body) >= 200 * 1024 and role == "user":
                break
        path, auth = LARGE_PATH, b"authorization: Bearer pk"
    return (
        f"POST {path} HTTP/1.1\r\nhost: {HOST}:{port}\r\n".encode()
        + auth
        + b"\r\ncontent-type: application/json\r\naccept: application/json\r\n"
        + b"user-agent: calo-bench\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


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
            _, proto = await asyncio.wait_for(
                loop.create_connection(_ClientProtocol, HOST, port), REQUEST_TIMEOUT
            )
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
                    status, body = await asyncio.wait_for(proto.send(request), REQUEST_TIMEOUT)
                except (OSError, ValueError, TimeoutError, ConnectionError) as e:
                    errors += 1
                    error_samples[f"{type(e).__name__}: {e}"[:200]] += 1
                    return
                end = loop.time()
                total += 1
                if status != 200:
                    errors += 1
                    error_samples[f"HTTP {status}: {body[:160]!r}"] += 1
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
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

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
    return asyncio.run(_load(port, request, concurrency, warmup, duration))


def upstream_stats(port: int) -> Counter:
    async def fetch():
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(f"GET /__stats HTTP/1.1\r\nhost: {HOST}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        body = await reader.readexactly(_content_length(head) or 0)
        writer.close()
        return Counter({(p, c): n for p, c, n in json.loads(body)})

    return asyncio.run(asyncio.wait_for(fetch(), 10))


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
    def __init__(self, cwd: str):
        super().__init__(
            "fake upstream",
            [sys.executable, __file__, "--serve-upstream"],
            dict(os.environ),
            cwd,
        )

    def parse_port(self, line):
        return int(line) if line.strip().isdigit() else None


_LISTENING = re.compile(r"listening at \[?[^\]\s]*\]?:(\d+)")


class Mitmdump(Proc):
    def __init__(
        self,
        name: str,
        up_port: int,
        tmp: str,
        addon: bool,
        profile: str | None = None,
        script: Path | str = ADDON,
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
        env = {k: v for k, v in os.environ.items() if not k.startswith("GEMINI_CALO_")}
        self.log_file = None
        if addon:
            self.log_file = os.path.join(tmp, f"calo-{name}.log")
            mitm_args += ["-s", str(script)]
            env.update(
                GEMINI_CALO_API_KEYS="k1,k2,k3",
                GEMINI_CALO_PROXY_API_KEYS="pk",
                GEMINI_CALO_BASE_URL=f"http://{HOST}:{up_port}",
                GEMINI_CALO_LOG_FILE=self.log_file,
                GEMINI_CALO_LOG_LEVEL="INFO",
                GEMINI_CALO_ROLLUP="off",
            )
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
        super().__init__(name, argv, env, tmp)

    def parse_port(self, line):
        m = _LISTENING.search(line)
        return int(m.group(1)) if m else None


# --------------------------------------------------------------------------- main


TARGETS = {"small": 0.9, "large": 0.8}
CASES = {
    "a": "upstream direct",
    "b": "mitmdump",
    "c": "mitmdump+calo",
    "n": "mitmdump+null addon",
}
NULL_ADDON = """
class NullAddon:  # the hooks calo_addon has, doing nothing
    async def request(self, flow):
        pass

    def responseheaders(self, flow):
        pass

    def response(self, flow):
        pass

    def error(self, flow):
        pass


addons = [NullAddon()]
"""
LABELS = {
    "small": "small Gemini ~200 B",
    "large": "OpenAI 200 KB",
}


def _fmt_errors(result) -> str:
    if not result["errors"]:
        return ""
    top = "; ".join(f"{n}x {msg}" for msg, n in result["error_samples"].most_common(3))
    return f"  ERRORS={result['errors']} ({top})"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration", type=float, default=5.0, help="measured seconds per run (5)")
    ap.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per run (1)")
    ap.add_argument("--concurrency", type=int, default=8, help="keep-alive connections (8)")
    ap.add_argument("--repeats", type=int, default=2, help="runs per case, order alternating (2)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 s per case, 0.5 s warm-up")
    ap.add_argument("--workloads", default="small,large", help="comma list of small,large")
    ap.add_argument(
        "--profile",
        metavar="PATH",
        help="afterwards, run (c) under cProfile for --duration per workload, save stats to "
        "PATH and print the hottest functions",
    )
    ap.add_argument(
        "--null-addon",
        action="store_true",
        help="also run (n): the same mitmdump with a no-op addon that has the same hooks, to "
        "separate the cost of having any addon from calo_addon's own work",
    )
    ap.add_argument("--serve-upstream", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_upstream:
        serve_upstream()
        return 0
    if args.quick:
        args.duration, args.warmup = 1.0, 0.5
    args.repeats = max(1, min(args.repeats, 20))
    args.concurrency = max(1, min(args.concurrency, 512))
    args.duration = max(0.2, min(args.duration, 120.0))
    workloads = [w for w in args.workloads.split(",") if w in TARGETS]

    started = time.monotonic()
    print(
        f"bench_core: {os.cpu_count()} CPUs, concurrency {args.concurrency}, "
        f"{args.warmup:g}s warm-up + {args.duration:g}s measured per run, {args.repeats} repeats",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="calo-bench-") as tmp:
        procs: list[Proc] = []
        try:
            upstream = Upstream(tmp)
            procs.append(upstream)
            up_port = upstream.wait_port()
            plain = Mitmdump("b-plain", up_port, tmp, addon=False)
            procs.append(plain)
            calo = Mitmdump("c-addon", up_port, tmp, addon=True)
            procs.append(calo)
            ports = {"a": up_port, "b": plain.wait_port(), "c": calo.wait_port()}
            cases = ["a", "b", "c"]
            if args.null_addon:
                null_script = Path(tmp) / "null_addon.py"
                null_script.write_text(NULL_ADDON)
                null = Mitmdump("n-null", up_port, tmp, addon=True, script=null_script)
                procs.append(null)
                ports["n"] = null.wait_port()
                cases.append("n")
            print("ports: " + ", ".join(f"{CASES[c]} {ports[c]}" for c in cases))

            results: dict[str, dict[str, list[dict]]] = {}
            c_requests = 0
            c_upstream: Counter = Counter()
            for workload in workloads:
                results[workload] = {c: [] for c in cases}
                for rep in range(args.repeats):
                    order = cases if rep % 2 == 0 else cases[::-1]
                    for case in order:
                        request = build_request(workload, ports[case])
                        before = upstream_stats(up_port)
                        r = run_load(
                            ports[case], request, args.concurrency, args.warmup, args.duration
                        )
                        seen = upstream_stats(up_port) - before
                        r["upstream"] = seen
                        if case == "c":
                            c_requests += r["total"]
                            c_upstream += seen
                        results[workload][case].append(r)
                        print(
                            f"  {workload:5} run {rep + 1} {case}: {r['rps']:8.0f} rps "
                            f"(p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
                            f"{r['total']} requests, {len(request)} B each)" + _fmt_errors(r),
                            flush=True,
                        )

            # ---- what the addon actually sent upstream
            print("\nupstream saw from (c) (path, credential -> requests):")
            for (path, cred), n in sorted(c_upstream.items()):
                print(f"  {path}  {cred}  {n}")
            leaked = sum(n for (_, cred), n in c_upstream.items() if cred in ("pk", "Bearer pk"))
            if leaked:
                print(f"  !! the proxy key reached the upstream {leaked} times")
        finally:
            codes = {p.name: p.stop() for p in reversed(procs)}
        # calo.log is complete once mitmdump has shut down (its log listener flushed)
        log_lines = 0
        if os.path.exists(calo.log_file):
            with open(calo.log_file, encoding="utf-8") as f:
                lines = f.readlines()
            log_lines = len(lines)
            flows = sum(1 for line in lines if '"operation"' in line)
            status200 = sum(1 for line in lines if '"status": 200' in line)
            print(
                f"\ncalo.log: {log_lines} lines, {flows} flow records ({status200} with status "
                f"200); (c) completed {c_requests} requests"
            )
            if lines:
                print(f"  sample: {lines[-1].strip()[:300]}")
        else:
            print("\ncalo.log: MISSING")
        print(
            f"console lines: plain mitmdump {len(plain.lines)}, with addon {len(calo.lines)}; "
            f"exit codes {codes}"
        )
        extra = [line for line in calo.lines if "calo" in line.lower() or "error" in line.lower()]
        for line in extra[:5]:
            print(f"  addon console: {line[:200]}")

        # ---- table
        print()
        header = (
            f"{'workload':20} {'a rps':>8} {'b rps':>8} {'c rps':>8} "
            + (f"{'n rps':>8} {'n/b':>5} " if args.null_addon else "")
            + f"{'c/b':>6} "
            f"{'c/b med':>7} {'target':>7}  result"
        )
        print(header)
        print("-" * len(header))
        any_errors = False
        for workload in workloads:
            best = {k: max(r["rps"] for r in v) for k, v in results[workload].items()}
            med = {k: statistics.median(r["rps"] for r in v) for k, v in results[workload].items()}
            errs = sum(r["errors"] for v in results[workload].values() for r in v)
            any_errors |= bool(errs)
            ratio = best["c"] / best["b"] if best["b"] else float("nan")
            ratio_med = med["c"] / med["b"] if med["b"] else float("nan")
            target = TARGETS[workload]
            verdict = "PASS" if ratio >= target else "MISS"
            if errs:
                verdict += f" ({errs} errors!)"
            print(
                f"{LABELS[workload]:20} {best['a']:8.0f} {best['b']:8.0f} {best['c']:8.0f} "
                + (
                    f"{best['n']:8.0f} {best['n'] / best['b']:5.2f} "
                    if args.null_addon and best["b"]
                    else ""
                )
                + f"{ratio:6.2f} {ratio_med:7.2f} {target:>7.2f}  {verdict}"
            )
        print("(rps = best of the runs; c/b med = ratio of the medians)")
        if any_errors:
            print("!! some requests failed: see the ERRORS on the per-run lines above")

        if args.profile:
            profile_addon(args, tmp, workloads)
    print(f"\ntotal time {time.monotonic() - started:.0f}s")
    return 0


def profile_addon(args, tmp: str, workloads: list[str]) -> None:
    """Run (c) under cProfile, drive each workload for --duration, print the hot spots."""
    import pstats

    print(f"\nprofiling mitmdump + calo_addon under cProfile -> {args.profile}")
    procs: list[Proc] = []
    try:
        upstream = Upstream(tmp)
        procs.append(upstream)
        up_port = upstream.wait_port()
        calo = Mitmdump(
            "c-profile", up_port, tmp, addon=True, profile=os.path.abspath(args.profile)
        )
        procs.append(calo)
        port = calo.wait_port()
        for workload in workloads:
            r = run_load(
                port, build_request(workload, port), args.concurrency, args.warmup, args.duration
            )
            print(f"  {workload}: {r['rps']:.0f} rps under the profiler" + _fmt_errors(r))
    finally:
        for p in reversed(procs):
            p.stop()
    if not os.path.exists(args.profile):
        print("  no profile written")
        return
    stats = pstats.Stats(args.profile)
    stats.sort_stats("tottime")
    print("\n  top 25 by own time:")
    stats.print_stats(25)
    stats.sort_stats("cumulative")
    print("  calo_addon functions by cumulative time:")
    stats.print_stats(r"calo_addon", 25)


if __name__ == "__main__":
    sys.exit(main())
