#!/usr/bin/env python3
"""Load test of mitmdump + calo_addon: errors, added latency and memory under a mixed load.

A benchmark, not a test: it prints numbers and never fails on them. Everything is on
127.0.0.1; the fake upstream (scripts/benchlib.py: the test suite's fakes, served by h11 in a
process of its own) streams SSE with chunked transfer encoding over keep-alive connections.

Load shape (defaults): 50 keep-alive client connections, half of them streaming, 5,000 measured
requests in all after 250 unmeasured warm-up requests (which open the connections):

  non-streaming clients alternate   OpenAI  POST /v1/chat/completions (small body)
                                    Gemini  POST /v1beta/models/gemini-2.5-flash:generateContent
  streaming clients alternate       OpenAI  the same chat call with "stream": true
                                    Gemini  POST ...:streamGenerateContent?alt=sse
  (streamed answers: 5 text chunks, --chunk-delay apart; OpenAI's end with `data: [DONE]`)

Each mode runs the same load twice: directly against the fake (the baseline), then through
mitmdump + calo_addon (env-configured like bench_core). Latency is per request, to the full
body; "added" is the proxy's percentile minus the direct one. Every non-200 answer, malformed
answer or protocol error counts as an error. The mitmdump process's VmRSS is read at each 10%
of the measured requests; VmHWM is its peak.

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
    ERRORS,
    REQUEST_TIMEOUT,
    STREAM_CHUNKS,
    Connection,
    Mitmdump,
    Proc,
    Reply,
    Request,
    Upstream,
    chat_reply_text,
    percentile,
    print_profile,
    proc_status_kb,
    read_calo_log,
    request,
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


def chat(messages: list[dict], stream: bool = False) -> Request:
    body: dict = {"model": MODEL, "messages": messages}
    if stream:  # usage comes in a last chunk only when asked for, as OpenAI does
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    headers = {"content_type": "application/json", "authorization": "Bearer pk"}
    if stream:
        headers["accept"] = "text/event-stream"
    return request("POST", CHAT, json.dumps(body).encode(), **headers)


def build_requests() -> dict[str, Request]:
    question = "Say hi in one word, please. Nothing else. Thanks."
    gemini = json.dumps(
        {
            "contents": [{"role": "user", "parts": [{"text": question}]}],
            "generationConfig": {"temperature": 0.2, "maxOutputTokens": 16},
        }
    ).encode()
    goog = {"x_goog_api_key": "pk", "content_type": "application/json"}
    messages = [{"role": "user", "content": question}]
    return {
        "openai": chat(messages),
        "gemini": request("POST", GENERATE, gemini, **goog),
        "openai-stream": chat(messages, stream=True),
        "gemini-stream": request("POST", STREAM, gemini, accept="text/event-stream", **goog),
    }


def check(kind: str, reply: Reply) -> str | None:
    """What is wrong with an answer, or None."""
    if reply.status != 200:
        return f"HTTP {reply.status}: {reply.body[:160]!r}"
    content_type = reply.headers.get("content-type", "")
    try:
        if kind == "openai":
            if not json.loads(reply.body)["choices"][0]["message"]["content"]:
                return "OpenAI answer without content"
        elif kind == "gemini":
            if not json.loads(reply.body)["candidates"][0]["content"]["parts"][0]["text"]:
                return "Gemini answer without text"
        else:
            if not content_type.startswith("text/event-stream"):
                return f"stream answered as {content_type!r}"
            events = [e for e in reply.body.replace(b"\r\n", b"\n").split(b"\n\n") if e.strip()]
            datas = [e[5:].strip() for e in events if e.startswith(b"data:")]
            if len(datas) != len(events) or len(datas) < STREAM_CHUNKS:
                return f"{kind}: {len(datas)} data events of {len(events)}"
            if kind == "openai-stream" and datas.pop() != b"[DONE]":
                return "OpenAI stream without data: [DONE]"
            for data in datas:
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


async def drive(port: int, args, pid: int | None = None) -> LoadResult:
    """`args.concurrency` keep-alive clients share warmup + measured requests evenly (each sends
    its share back to back, so the mix is the same whatever the latencies). The first
    `args.streaming_clients` stream; each client alternates OpenAI and Gemini, and its first
    requests (its share of the warm-up) are not measured."""
    loop = asyncio.get_running_loop()
    requests, result = build_requests(), LoadResult()
    n = args.concurrency
    state = {"t0": None}
    marks = {max(1, args.requests * p // 100): p for p in range(10, 101, 10)}

    def share(amount: int, client: int) -> int:
        return amount // n + (1 if client < amount % n else 0)

    def measured(kind: str, reply: Reply, seconds: float) -> None:
        result.latencies[kind].append(seconds)
        if kind.endswith("stream"):
            result.ttfb[kind].append(reply.ttfb)
            result.chunks[reply.chunks] += 1
        result.measured += 1
        rss = proc_status_kb(pid, "VmRSS") if pid and result.measured in marks else None
        if rss is not None:
            result.rss_marks[marks[result.measured]] = rss

    async def client(number: int) -> None:
        streams = number < args.streaming_clients
        kinds = ("openai-stream", "gemini-stream") if streams else ("openai", "gemini")
        unmeasured = share(args.warmup, number)
        conn: Connection | None = None
        try:
            for index in range(unmeasured + share(args.requests, number)):
                if result.error_count >= MAX_ERRORS:
                    return
                if index == unmeasured and state["t0"] is None:
                    state["t0"] = loop.time()
                kind = kinds[(number // 2 + index) % 2]  # both kinds start at once
                result.sent += 1
                try:
                    if conn is None or not conn.usable:
                        conn = await Connection.open(port)
                    start = loop.time()
                    reply = await asyncio.wait_for(conn.send(requests[kind]), REQUEST_TIMEOUT)
                    seconds = loop.time() - start
                except ERRORS as e:
                    result.errors[f"{kind}: {type(e).__name__}: {e}"[:200]] += 1
                    conn = conn.close() if conn else None
                    continue
                if problem := check(kind, reply):
                    result.errors[problem] += 1
                elif index >= unmeasured:
                    measured(kind, reply, seconds)
        finally:
            if conn is not None:
                conn.close()

    t_start = loop.time()
    try:
        await asyncio.wait_for(asyncio.gather(*map(client, range(n))), args.max_seconds)
    except TimeoutError:
        result.aborted = f"stopped after {args.max_seconds:g} s with {result.sent} sent"
        result.errors["run timed out"] += 1
    if result.error_count >= MAX_ERRORS:
        result.aborted = f"stopped after {result.error_count} errors"
    result.seconds = loop.time() - (state["t0"] or t_start)
    for values in (*result.latencies.values(), *result.ttfb.values()):
        values.sort()
    return result


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


def summariser_calls(up_port: int) -> int:
    stats = upstream_stats(up_port)["requests"]
    return sum(n for (path, _), n in stats.items() if path == GENERATE)


def fill_rollup(port: int, up_port: int, count: int) -> dict:
    """Send `count` distinct conversations over the threshold, wait until the addon has asked
    the summariser about each, then follow up the newest until it is rolled up."""

    async def send_all() -> int:
        conn = await Connection.open(port)
        try:
            replies = [await conn.send(chat(conversation(k))) for k in range(count)]
        finally:
            conn.close()
        return sum(1 for reply in replies if check("openai", reply))

    before = summariser_calls(up_port)
    t0 = time.monotonic()
    bad = asyncio.run(send_all())
    sent_s = time.monotonic() - t0
    follow_up = chat(
        [
            *conversation(count - 1),
            {"role": "assistant", "content": chat_reply_text()},
            {"role": "user", "content": "Thanks. One more thing?"},
        ]
    )
    deadline, seen, rolled = time.monotonic() + 20, 0, False
    while time.monotonic() < deadline and not rolled:
        seen = summariser_calls(up_port) - before
        if seen >= count:
            sent_before = upstream_stats(up_port)["bytes"][CHAT]
            probe = asyncio.run(request_once(port, follow_up))
            forwarded = upstream_stats(up_port)["bytes"][CHAT] - sent_before
            rolled = check("openai", probe) is None and forwarded < len(follow_up.body) // 2
        time.sleep(0.05)  # summaries are computed beside the load; look again
    return {
        "sent": count,
        "bad": bad,
        "summariser_calls": seen,
        "send_s": sent_s,
        "until_rolled_up_s": time.monotonic() - t0,
        "probe_ok": rolled,
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
        ttfb = ""
        if kind.endswith("stream"):
            ttfb = (
                f"{ms(percentile(direct.ttfb[kind], 0.5)):6.2f} / "
                f"{ms(percentile(proxy.ttfb[kind], 0.5)):6.2f}"
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


def run_mode(mode: str, args, tmp: str, up_port: int) -> dict:
    env = MODES[mode]
    settings = " ".join(f"{k}={v}" for k, v in env.items()) if env else "no addon (reference)"
    print(f"\n=== {mode}: {settings}", flush=True)
    direct = asyncio.run(drive(up_port, args))
    describe_run("direct  ", direct)
    profile = os.path.abspath(f"{args.profile}.{mode}") if args.profile else None
    proxy_proc = Mitmdump(mode, up_port, tmp, addon=env is not None, env=env, profile=profile)
    row: dict = {"mode": mode, "direct": direct, "hwm": None, "rss_idle": None}
    proxy = LoadResult(aborted="the proxy run did not complete")
    try:
        port = proxy_proc.wait_port()
        row["rss_idle"] = proc_status_kb(proxy_proc.pid, "VmRSS")
        before = upstream_stats(up_port)["requests"]
        if mode == "rollup-full":
            row["fill"] = fill = fill_rollup(port, up_port, args.fill)
            row["rss_filled"] = proc_status_kb(proxy_proc.pid, "VmRSS")
            print(
                f"  fill: {fill['sent']} conversations sent in {fill['send_s']:.2f} s "
                f"({fill['bad']} bad answers), summariser calls seen upstream "
                f"{fill['summariser_calls']}, follow-up rolled up "
                f"{'after' if fill['probe_ok'] else 'NOT within'} {fill['until_rolled_up_s']:.2f} "
                f"s; VmRSS {mb(row['rss_idle'])} -> {mb(row['rss_filled'])} MB",
                flush=True,
            )
        proxy = asyncio.run(drive(port, args, pid=proxy_proc.pid))
        row["hwm"] = proc_status_kb(proxy_proc.pid, "VmHWM")
        row["upstream"] = upstream_stats(up_port)["requests"] - before
    finally:
        code = proxy_proc.stop()
    row["proxy"], row["exit"] = proxy, code
    describe_run("proxy   ", proxy)
    kind_table(direct, proxy)
    marks = proxy.rss_marks
    print(
        "  VmRSS MB at 10..100% of measured requests: "
        + " ".join(mb(marks.get(p)) for p in range(10, 101, 10))
        + f"   (idle after start {mb(row['rss_idle'])}, peak VmHWM {mb(row['hwm'])})"
    )
    report_upstream(row, env)
    row["rollups"] = report_calo_log(proxy_proc.log_file, code) if env is not None else Counter()
    noisy = [x for x in proxy_proc.lines if "error" in x.lower() or "warn" in x.lower()]
    for line in noisy[:5]:
        print(f"  console: {line[:200]}")
    if profile:
        print_profile(profile)
    return row


def report_upstream(row: dict, env) -> None:
    upstream = row.get("upstream", Counter())
    print("  upstream saw (path, credential -> requests):")
    for (path, credential), n in sorted(upstream.items()):
        print(f"    {path}  {credential}  {n}")
    leaked = sum(n for (_, credential), n in upstream.items() if "pk" in credential)
    if leaked and env is not None:
        print(f"  !! the proxy key reached the upstream {leaked} times")


def report_calo_log(log_file: str | None, code: int | None) -> Counter:
    records = read_calo_log(log_file)
    flows = [r for r in records if "operation" in r]
    statuses = Counter(r.get("status") for r in flows)
    rollups = Counter(r.get("rollup_applied") for r in flows)
    usage = sum(1 for r in flows if r.get("usage"))
    other = [r for r in records if "operation" not in r]
    print(
        f"  calo.log: {len(flows)} flow records, status {dict(statuses)}, with usage {usage}, "
        f"rollup_applied {dict(rollups)}, {len(other)} other lines; exit code {code}"
    )
    for r in other:
        if r.get("level") not in (None, "INFO") or "unparsed" in r:
            print(f"    {json.dumps(r)[:240]}")
    return rollups


def summary_table(rows: list[dict]) -> None:
    header = (
        f"{'mode':12} {'measured':>8} {'errors':>6} {'rps':>6} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'+p50 ms':>8} {'+p99 ms':>8} {'VmHWM MB':>9} {'RSS@20%':>8} {'RSS@100%':>9} "
        f"{'100/20':>7}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for row in rows:
        d, p = row["direct"].all_latencies(), row["proxy"].all_latencies()
        errors = row["direct"].error_count + row["proxy"].error_count
        p50, p99 = ms(percentile(p, 0.5)), ms(percentile(p, 0.99))
        a50, a99 = p50 - ms(percentile(d, 0.5)), p99 - ms(percentile(d, 0.99))
        r20, r100 = row["proxy"].rss_marks.get(20), row["proxy"].rss_marks.get(100)
        growth = f"{r100 / r20:7.3f}" if r20 and r100 else f"{'-':>7}"
        rps = row["proxy"].measured / row["proxy"].seconds if row["proxy"].seconds else 0
        print(
            f"{row['mode']:12} {row['proxy'].measured:8} {errors:6} {rps:6.0f} {p50:7.2f} "
            f"{p99:7.2f} {a50:+8.2f} {a99:+8.2f} {mb(row['hwm']):>9} {mb(r20):>8} "
            f"{mb(r100):>9} {growth}"
        )
    print(
        "(p50/p99: through the proxy, to the full body; +p50/+p99: proxy minus direct "
        "percentile; errors: direct + proxy; RSS of the mitmdump process)"
    )
    for row in rows:
        if fill := row.get("fill"):
            print(
                f"rollup-full: cache filled with {fill['sent']} conversations (bound 20), "
                f"{fill['summariser_calls']} summariser calls, follow-up rolled up: "
                f"{row['rollups'].get('summary', 0)} flow(s) with rollup_applied=summary"
            )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--requests", type=int, default=5000, help="measured requests per run (5000)")
    ap.add_argument("--warmup", type=int, default=250, help="unmeasured requests first (250)")
    ap.add_argument("--concurrency", type=int, default=50, help="keep-alive clients (50)")
    ap.add_argument("--streaming", type=float, default=0.5, help="share of streaming clients")
    ap.add_argument(
        "--chunk-delay", type=float, default=0.001, help="seconds before each streamed chunk"
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
    ap.add_argument("--profile", metavar="PATH", help="mitmdump under cProfile (PATH.<mode>)")
    args = ap.parse_args()
    args.requests = max(10, min(args.requests, 1_000_000))
    args.warmup = max(0, min(args.warmup, 100_000))
    args.concurrency = max(2, min(args.concurrency, 1000))
    args.streaming_clients = round(args.concurrency * max(0.0, min(args.streaming, 1.0)))
    args.fill = max(1, min(args.fill, 10_000))
    args.max_seconds = max(5.0, min(args.max_seconds, 1800.0))
    modes = [m for m, on in (("plain", args.plain), ("rollup-full", args.rollup_full)) if on]
    modes = (["mitmdump"] if args.mitmdump_reference else []) + (modes or ["plain", "rollup-full"])

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
            rows = [run_mode(mode, args, tmp, up_port) for mode in modes]
        finally:
            for p in reversed(procs):
                p.stop()
    summary_table(rows)
    print(f"\ntotal time {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
