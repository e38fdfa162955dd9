#!/usr/bin/env python3
"""Load test of mitmdump + calo_addon: errors, added latency and memory under a mixed load.

A benchmark, not a test: it prints numbers and never fails on them. Everything is on
127.0.0.1; the fake upstream (scripts/benchlib.py) runs in its own process and streams SSE with
chunked transfer encoding over keep-alive connections.

Load shape (defaults): 50 keep-alive client connections, half of them streaming, 5,000 measured
requests in all after 250 unmeasured warm-up requests (which open the connections):

  non-streaming clients alternate   OpenAI  POST /v1/chat/completions (small body)
                                    Gemini  POST /v1beta/models/gemini-2.5-flash:generateContent
  streaming clients alternate       OpenAI  the same chat call with "stream": true
                                    Gemini  POST ...:streamGenerateContent?alt=sse
  (streamed answers: 5 `data:` chunks, + `data: [DONE]` for OpenAI, --chunk-delay apart)

Each mode runs the same load twice: directly against the fake (the baseline), then through
mitmdump + calo_addon (env-configured like bench_core). Latency is per request, to the full
body; "added" is the proxy's percentile minus the direct one. Every non-200 answer, malformed
answer or protocol error counts as an error. The mitmdump process's VmRSS is sampled every
0.2 s and read at each 10% of the measured requests; VmHWM is its peak.

Modes:
  plain        rollup off (GEMINI_CALO_ROLLUP=off)
  rollup-full  GEMINI_CALO_ROLLUP=on, threshold 200 characters, LRU cache of 20 conversations;
               before the load, --fill (30) distinct multi-turn OpenAI conversations over the
               threshold fill the cache to its bound (each one is remembered and summarised by
               a Gemini generateContent call the addon makes to the fake), and one follow-up
               checks that a summary is applied.

    .venv/bin/python scripts/load_test.py                  # both modes, ~40 s
    .venv/bin/python scripts/load_test.py --rollup-full    # only the rollup-full mode
    .venv/bin/python scripts/load_test.py --plain          # only the plain mode
    .venv/bin/python scripts/load_test.py --mitmdump-reference   # + mitmdump without the addon
    .venv/bin/python scripts/load_test.py --requests 20000 --concurrency 100
    .venv/bin/python scripts/load_test.py --profile /tmp/load.prof   # proxy under cProfile
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import (  # the shared benchmark pieces, beside this script
    REQUEST_TIMEOUT,
    STREAM_EVENTS,
    ClientProtocol,
    Mitmdump,
    Proc,
    RssSampler,
    Upstream,
    connect,
    header_value,
    http_request,
    percentile,
    print_profile,
    proc_status_kb,
    read_calo_log,
    request_once,
    upstream_stats,
)

MODEL = "gemini-2.5-flash"
CHAT = "/v1/chat/completions"
GENERATE = f"/v1beta/models/{MODEL}:generateContent"
STREAM = f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
KINDS = ("openai", "gemini", "openai-stream", "gemini-stream")
MAX_ERRORS = 200  # a run stops early after this many errors
ROLLUP_ENV = {
    "GEMINI_CALO_ROLLUP": "on",
    "GEMINI_CALO_CONVERSATION_SIZE_SUMMARIZATION_THRESHOLD": "200",
    "GEMINI_CALO_CONVERSATION_SUMMARIZATION_LRU_CACHE": "20",
}
MODES: dict[str, dict[str, str] | None] = {
    "mitmdump": None,  # reference: mitmdump without the addon
    "plain": {"GEMINI_CALO_ROLLUP": "off"},
    "rollup-full": ROLLUP_ENV,
}


# --------------------------------------------------------------------------- requests


def build_requests(port: int) -> dict[str, bytes]:
    question = "Say hi in one word, please. Nothing else. Thanks."
    chat = {"model": MODEL, "messages": [{"role": "user", "content": question}]}
    gemini = {
        "contents": [{"role": "user", "parts": [{"text": question}]}],
        "generationConfig": {"temperature": 0.2, "maxOutputTokens": 16},
    }
    bearer = {"authorization": "Bearer pk", "content-type": "application/json"}
    goog = {"x-goog-api-key": "pk", "content-type": "application/json"}
    sse = {"accept": "text/event-stream"}
    return {
        "openai": http_request("POST", CHAT, port, json.dumps(chat).encode(), bearer),
        "gemini": http_request("POST", GENERATE, port, json.dumps(gemini).encode(), goog),
        "openai-stream": http_request(
            "POST", CHAT, port, json.dumps(chat | {"stream": True}).encode(), bearer | sse
        ),
        "gemini-stream": http_request(
            "POST", STREAM, port, json.dumps(gemini).encode(), goog | sse
        ),
    }


def check(kind: str, reply) -> str | None:
    """What is wrong with an answer, or None."""
    if reply.status != 200:
        return f"HTTP {reply.status}: {reply.body[:160]!r}"
    ctype = (header_value(reply.head, b"content-type") or b"").decode().lower()
    try:
        if kind == "openai":
            if not (
                ctype.startswith("application/json")
                and json.loads(reply.body)["choices"][0]["message"]["content"]
            ):
                return "OpenAI answer without content"
        elif kind == "gemini":
            if not (
                ctype.startswith("application/json")
                and json.loads(reply.body)["candidates"][0]["content"]["parts"][0]["text"]
            ):
                return "Gemini answer without text"
        else:
            if not ctype.startswith("text/event-stream"):
                return f"stream answered as {ctype!r}"
            events = [e for e in reply.body.replace(b"\r\n", b"\n").split(b"\n\n") if e.strip()]
            datas = [e[5:].strip() for e in events if e.startswith(b"data:")]
            want = STREAM_EVENTS + (1 if kind == "openai-stream" else 0)
            if len(datas) != want or len(events) != want:
                return f"{kind}: {len(datas)} data events of {len(events)}, expected {want}"
            if kind == "openai-stream" and datas[-1] != b"[DONE]":
                return "OpenAI stream without data: [DONE]"
            for data in datas[:STREAM_EVENTS]:
                json.loads(data)
    except (ValueError, KeyError, IndexError, TypeError) as e:
        return f"{kind}: malformed answer ({type(e).__name__}: {e})"[:200]
    return None


# --------------------------------------------------------------------------- load


@dataclass
class LoadResult:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    ttfb: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    chunks: Counter = field(default_factory=Counter)  # chunks per streamed answer -> answers
    errors: Counter = field(default_factory=Counter)
    sent: int = 0
    measured: int = 0
    seconds: float = 0.0  # of the measured part
    rss_marks: dict[int, int] = field(default_factory=dict)  # percent of measured -> VmRSS kB
    aborted: str | None = None

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def all_latencies(self) -> list[float]:
        return sorted(x for v in self.latencies.values() for x in v)


async def drive(
    port: int,
    requests: dict[str, bytes],
    concurrency: int,
    streaming_clients: int,
    measured: int,
    warmup: int,
    max_seconds: float,
    pid: int | None = None,
) -> LoadResult:
    """`concurrency` keep-alive clients share warmup + measured requests evenly (each sends its
    share back to back, so the mix is the same whatever the latencies). Clients
    [0, streaming_clients) stream; each client alternates OpenAI and Gemini. Each client's
    first requests (its share of `warmup`) are not measured."""
    loop = asyncio.get_running_loop()
    result = LoadResult()
    total = warmup + measured
    state = {"t0": None}
    marks = {max(1, measured * p // 100): p for p in range(10, 101, 10)}

    def share(amount: int, n: int) -> int:
        return amount // concurrency + (1 if n < amount % concurrency else 0)

    async def client(n: int):
        kinds = (
            ("openai-stream", "gemini-stream") if n < streaming_clients else ("openai", "gemini")
        )
        turn = n // 2  # so that both kinds start at once across the clients
        unmeasured = share(warmup, n)
        proto: ClientProtocol | None = None
        try:
            for index in range(unmeasured + share(measured, n)):
                if result.error_count >= MAX_ERRORS:
                    return
                if index == unmeasured and state["t0"] is None:
                    state["t0"] = loop.time()
                kind = kinds[turn % 2]
                turn += 1
                try:
                    if proto is None or proto.lost or proto.transport.is_closing():
                        proto = await connect(port)
                    start = loop.time()
                    reply = await asyncio.wait_for(proto.send(requests[kind]), REQUEST_TIMEOUT)
                    end = loop.time()
                except (OSError, ValueError, TimeoutError, ConnectionError) as e:
                    result.errors[f"{kind}: {type(e).__name__}: {e}"[:200]] += 1
                    if proto is not None:
                        proto.transport.close()
                    proto = None
                    continue
                finally:
                    result.sent += 1
                problem = check(kind, reply)
                if problem:
                    result.errors[problem] += 1
                    continue
                if index < unmeasured:
                    continue
                result.latencies[kind].append(end - start)
                if kind.endswith("stream"):
                    result.ttfb[kind].append(reply.ttfb)
                    result.chunks[reply.chunks] += 1
                result.measured += 1
                if pid is not None and result.measured in marks:
                    rss = proc_status_kb(pid, "VmRSS")
                    if rss is not None:
                        result.rss_marks[marks[result.measured]] = rss
        finally:
            if proto is not None and proto.transport:
                proto.transport.close()

    t_start = loop.time()
    try:
        await asyncio.wait_for(
            asyncio.gather(*(client(n) for n in range(concurrency))), max_seconds
        )
    except TimeoutError:
        result.aborted = f"stopped after {max_seconds:g} s with {result.sent}/{total} sent"
        result.errors["run timed out"] += 1
    if result.error_count >= MAX_ERRORS:
        result.aborted = f"stopped after {result.error_count} errors"
    result.seconds = loop.time() - (state["t0"] or t_start)
    for v in (*result.latencies.values(), *result.ttfb.values()):
        v.sort()
    return result


def run_drive(port, requests, args, pid=None) -> LoadResult:
    return asyncio.run(
        drive(
            port,
            requests,
            args.concurrency,
            args.streaming_clients,
            args.requests,
            args.warmup,
            args.max_seconds,
            pid,
        )
    )


# --------------------------------------------------------------------------- rollup fill


def conversation(k: int) -> list[dict]:
    """A distinct multi-turn conversation of about 500 characters (threshold: 200)."""
    filler = "the quick brown fox jumps over the lazy dog " * 3
    return [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": f"Conversation {k}: tell me about item {k}. {filler}"},
        {"role": "assistant", "content": f"Item {k} is a thing numbered {k}. {filler}"},
        {"role": "user", "content": f"And what else about item {k}? {filler}"},
    ]


def chat_request(port: int, messages: list[dict]) -> bytes:
    body = json.dumps({"model": MODEL, "messages": messages}).encode()
    headers = {"authorization": "Bearer pk", "content-type": "application/json"}
    return http_request("POST", CHAT, port, body, headers)


def summariser_calls(up_port: int) -> int:
    return sum(n for (path, _), n in upstream_stats(up_port).items() if path == GENERATE)


def fill_rollup(port: int, up_port: int, count: int) -> dict:
    """Send `count` distinct conversations over the threshold, wait until the addon has asked
    the summariser about each, then one follow-up of the newest (which should be rolled up)."""

    async def send_all():
        proto = await connect(port)
        bad = 0
        try:
            for k in range(count):
                reply = await asyncio.wait_for(
                    proto.send(chat_request(port, conversation(k))), REQUEST_TIMEOUT
                )
                if check("openai", reply):
                    bad += 1
        finally:
            proto.transport.close()
        return bad

    before = summariser_calls(up_port)
    t0 = time.monotonic()
    bad = asyncio.run(send_all())
    sent_s = time.monotonic() - t0
    seen = 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        seen = summariser_calls(up_port) - before
        if seen >= count:
            break
        time.sleep(0.1)
    time.sleep(0.3)  # the last summary reaches the cache just after the upstream answered it
    waited_s = time.monotonic() - t0
    follow_up = [
        *conversation(count - 1),
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "Thanks. One more thing?"},
    ]
    probe = asyncio.run(asyncio.wait_for(request_once(port, chat_request(port, follow_up)), 30))
    return {
        "sent": count,
        "bad": bad,
        "summariser_calls": seen,
        "send_s": sent_s,
        "until_summarised_s": waited_s,
        "probe_ok": check("openai", probe) is None,
    }


# --------------------------------------------------------------------------- report


def ms(seconds: float) -> float:
    return seconds * 1000


def mb(kb: int | None) -> str:
    return f"{kb / 1024:.1f}" if kb else "-"


def describe_run(label: str, r: LoadResult) -> None:
    lat = r.all_latencies()
    rps = r.measured / r.seconds if r.seconds else float("nan")
    print(
        f"  {label}: {r.measured} measured of {r.sent} sent in {r.seconds:.1f} s "
        f"({rps:.0f} rps), p50 {ms(percentile(lat, 0.5)):.2f} ms, "
        f"p99 {ms(percentile(lat, 0.99)):.2f} ms, errors {r.error_count}"
        + (f" [{r.aborted}]" if r.aborted else ""),
        flush=True,
    )
    for msg, n in r.errors.most_common(5):
        print(f"    {n}x {msg}")


def kind_table(direct: LoadResult, proxy: LoadResult) -> None:
    print(
        f"    {'kind':14} {'n':>5} {'direct p50/p99 ms':>18} {'proxy p50/p99 ms':>17} "
        f"{'added p50/p99 ms':>17} {'ttfb p50 direct/proxy':>22}"
    )
    for kind in KINDS:
        d, p = direct.latencies[kind], proxy.latencies[kind]
        dp = (ms(percentile(d, 0.5)), ms(percentile(d, 0.99)))
        pp = (ms(percentile(p, 0.5)), ms(percentile(p, 0.99)))
        ttfb = (
            f"{ms(percentile(direct.ttfb[kind], 0.5)):6.2f} / "
            f"{ms(percentile(proxy.ttfb[kind], 0.5)):6.2f}"
            if kind.endswith("stream")
            else ""
        )
        print(
            f"    {kind:14} {len(p):5} {dp[0]:8.2f} /{dp[1]:7.2f} {pp[0]:8.2f} /{pp[1]:7.2f} "
            f"{pp[0] - dp[0]:+8.2f} /{pp[1] - dp[1]:+7.2f} {ttfb:>22}"
        )
    if proxy.chunks:
        spread = ", ".join(f"{c} chunks: {n}" for c, n in sorted(proxy.chunks.items()))
        print(
            f"    streamed answers through the proxy, by HTTP chunks received: {spread} "
            "(1 chunk: the proxy buffered the stream)"
        )


def run_mode(mode: str, args, tmp: str, upstream: Upstream, up_port: int) -> dict:
    env = MODES[mode]
    settings = " ".join(f"{k}={v}" for k, v in env.items()) if env else "no addon (reference)"
    print(f"\n=== {mode}: {settings}", flush=True)
    direct = run_drive(up_port, build_requests(up_port), args)
    describe_run("direct  ", direct)

    profile = None
    if args.profile:
        profile = os.path.abspath(f"{args.profile}.{mode}")
    proxy_proc = Mitmdump(mode, up_port, tmp, addon=env is not None, env=env, profile=profile)
    row: dict = {"mode": mode, "direct": direct, "hwm": None, "rss_idle": None}
    proxy = LoadResult(aborted="the proxy run did not complete")
    try:
        port = proxy_proc.wait_port()
        progress = {"measured": -1}
        sampler = RssSampler(proxy_proc.pid, lambda: progress["measured"]).start()
        time.sleep(0.3)
        row["rss_idle"] = proc_status_kb(proxy_proc.pid, "VmRSS")
        before = upstream_stats(up_port)
        if mode == "rollup-full":
            fill = fill_rollup(port, up_port, args.fill)
            row["fill"] = fill
            row["rss_filled"] = proc_status_kb(proxy_proc.pid, "VmRSS")
            print(
                f"  fill: {fill['sent']} conversations sent in {fill['send_s']:.2f} s "
                f"({fill['bad']} bad answers), summariser calls seen upstream "
                f"{fill['summariser_calls']} after {fill['until_summarised_s']:.2f} s, "
                f"follow-up {'ok' if fill['probe_ok'] else 'FAILED'}; "
                f"VmRSS {mb(row['rss_idle'])} -> {mb(row['rss_filled'])} MB",
                flush=True,
            )
        progress["measured"] = 0
        proxy = run_drive(port, build_requests(port), args, pid=proxy_proc.pid)
        row["rss_end"] = proc_status_kb(proxy_proc.pid, "VmRSS")
        row["hwm"] = proc_status_kb(proxy_proc.pid, "VmHWM")
        sampler.stop()
        row["rss_samples_peak"] = sampler.peak
        row["rss_samples"] = len(sampler.samples)
        row["upstream"] = upstream_stats(up_port) - before
    finally:
        code = proxy_proc.stop()
    row["proxy"] = proxy
    row["exit"] = code
    describe_run("proxy   ", proxy)
    kind_table(direct, proxy)
    marks = proxy.rss_marks
    print(
        "  VmRSS MB at 10..100% of measured requests: "
        + " ".join(mb(marks.get(p)) for p in range(10, 101, 10))
        + f"   (idle after start {mb(row['rss_idle'])}, VmHWM {mb(row['hwm'])}, "
        f"{row['rss_samples']} samples every 0.2 s, max sampled {mb(row['rss_samples_peak'])})"
    )

    # what went upstream
    leaked = sum(n for (_, cred), n in row["upstream"].items() if "pk" in cred)
    print("  upstream saw (path, credential -> requests):")
    for (path, cred), n in sorted(row["upstream"].items()):
        print(f"    {path}  {cred}  {n}")
    if leaked and env is not None:
        print(f"  !! the proxy key reached the upstream {leaked} times")
    row["log_flows"], row["rollups"] = 0, Counter()
    if env is not None:
        report_calo_log(row, proxy_proc.log_file, code)
    noisy = [x for x in proxy_proc.lines if "error" in x.lower() or "warn" in x.lower()]
    for line in noisy[:5]:
        print(f"  console: {line[:200]}")
    if len(noisy) > 5:
        print(f"  console: ... {len(noisy) - 5} more error/warn lines")
    if profile:
        print_profile(profile)
    return row


def report_calo_log(row: dict, log_file: str | None, code: int | None) -> None:
    records = read_calo_log(log_file)
    flows = [r for r in records if "operation" in r]
    diag = [r for r in records if "operation" not in r]
    statuses = Counter(r.get("status") for r in flows)
    rollups = Counter(r.get("rollup_applied") for r in flows)
    usage = sum(1 for r in flows if r.get("usage"))
    print(
        f"  calo.log: {len(flows)} flow records, status {dict(statuses)}, with usage {usage}, "
        f"rollup_applied {dict(rollups)}, {len(diag)} other lines; exit code {code}"
    )
    for r in diag:
        if r.get("level") not in (None, "INFO") or "unparsed" in r:
            print(f"    {json.dumps(r)[:240]}")
    row["log_flows"] = len(flows)
    row["rollups"] = rollups


def summary_table(rows: list[dict]) -> None:
    print()
    header = (
        f"{'mode':12} {'measured':>8} {'errors':>6} {'rps':>6} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'+p50 ms':>8} {'+p99 ms':>8} {'VmHWM MB':>9} {'RSS@20%':>8} {'RSS@100%':>9} "
        f"{'100/20':>7}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        d, p = row["direct"].all_latencies(), row["proxy"].all_latencies()
        errors = row["direct"].error_count + row["proxy"].error_count
        p50, p99 = ms(percentile(p, 0.5)), ms(percentile(p, 0.99))
        a50, a99 = p50 - ms(percentile(d, 0.5)), p99 - ms(percentile(d, 0.99))
        r20, r100 = row["proxy"].rss_marks.get(20), row["proxy"].rss_marks.get(100)
        ratio = f"{r100 / r20:7.3f}" if r20 and r100 else f"{'-':>7}"
        rps = row["proxy"].measured / row["proxy"].seconds if row["proxy"].seconds else 0
        print(
            f"{row['mode']:12} {row['proxy'].measured:8} {errors:6} {rps:6.0f} {p50:7.2f} "
            f"{p99:7.2f} {a50:+8.2f} {a99:+8.2f} {mb(row['hwm']):>9} {mb(r20):>8} "
            f"{mb(r100):>9} {ratio}"
        )
    print(
        "(p50/p99: through the proxy, to the full body; +p50/+p99: proxy minus direct "
        "percentile; errors: direct + proxy; RSS of the mitmdump process)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--requests", type=int, default=5000, help="measured requests per run (5000)")
    ap.add_argument("--warmup", type=int, default=250, help="unmeasured requests first (250)")
    ap.add_argument("--concurrency", type=int, default=50, help="keep-alive clients (50)")
    ap.add_argument(
        "--streaming", type=float, default=0.5, help="fraction of clients that stream (0.5)"
    )
    ap.add_argument(
        "--chunk-delay",
        type=float,
        default=0.001,
        help="seconds the fake waits before each streamed chunk (0.001)",
    )
    ap.add_argument("--plain", action="store_true", help="run the plain mode (rollup off)")
    ap.add_argument(
        "--mitmdump-reference",
        action="store_true",
        help="first run the same load through mitmdump without the addon, to tell mitmproxy's "
        "own latency and memory from the addon's",
    )
    ap.add_argument(
        "--rollup-full",
        action="store_true",
        help="run with rollup on, threshold 200, cache 20, the cache filled before the load",
    )
    ap.add_argument("--fill", type=int, default=30, help="conversations sent to fill the cache")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="time limit of one run (120)")
    ap.add_argument(
        "--profile",
        metavar="PATH",
        help="run mitmdump under cProfile (stats to PATH.<mode>) and print the hot spots",
    )
    args = ap.parse_args()
    args.requests = max(10, min(args.requests, 1_000_000))
    args.warmup = max(0, min(args.warmup, 100_000))
    args.concurrency = max(2, min(args.concurrency, 1000))
    args.streaming_clients = round(args.concurrency * max(0.0, min(args.streaming, 1.0)))
    args.fill = max(1, min(args.fill, 10_000))
    args.max_seconds = max(5.0, min(args.max_seconds, 1800.0))
    modes = [m for m, on in (("plain", args.plain), ("rollup-full", args.rollup_full)) if on]
    modes = modes or ["plain", "rollup-full"]
    if args.mitmdump_reference:
        modes.insert(0, "mitmdump")

    started = time.monotonic()
    print(
        f"load_test: {os.cpu_count()} CPUs, {args.concurrency} clients "
        f"({args.streaming_clients} streaming), {args.requests} measured requests after "
        f"{args.warmup} warm-up, chunk delay {args.chunk_delay * 1000:g} ms, modes {modes}",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="calo-load-") as tmp:
        procs: list[Proc] = []
        try:
            upstream = Upstream(tmp, chunk_delay=args.chunk_delay)
            procs.append(upstream)
            up_port = upstream.wait_port()
            for mode in modes:
                rows.append(run_mode(mode, args, tmp, upstream, up_port))
        finally:
            for p in reversed(procs):
                p.stop()
    summary_table(rows)
    for row in rows:
        if row.get("fill"):
            f = row["fill"]
            print(
                f"rollup-full: cache filled with {f['sent']} conversations (bound 20), "
                f"{f['summariser_calls']} summariser calls, follow-up rolled up: "
                f"{row['rollups'].get('summary', 0)} flow(s) with rollup_applied=summary"
            )
    print(f"\ntotal time {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
