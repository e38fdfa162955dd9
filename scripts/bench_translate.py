#!/usr/bin/env python3
"""Translation speed: an Anthropic Messages client served by a Gemini upstream (issues 12, 13).

A benchmark, not a test: it prints numbers and never fails on them. Everything is on 127.0.0.1;
the fake upstream (scripts/benchlib.py: the test suite's fakes, served by h11 in a process of
its own) answers Anthropic Messages and Gemini alike. Three measures, each against its bar:

1. Requests per second over keep-alive connections, a small Messages call (~200 B body):
     (a) the fake upstream's /v1/messages, directly;
     (b) plain `mitmdump --mode reverse:...`, the call passed to /v1/messages;
     (c) mitmdump + calo_addon, the call translated to Gemini `generateContent` (the unrouted
         base_url speaks Gemini) and its answer back to Anthropic's shape.
   Bar: c >= 0.85 x b, same run (best of --repeats runs, the order alternating).
2. Streaming: one streamed Messages call at a time; the upstream holds its first chunk
   --first-delay seconds after its headers. For each call, the moment the upstream wrote its
   first chunk (the upstream process's time.monotonic, which every process shares) and the
   moment the first byte of the body reached the client. Bar: (c) within 5 ms. References:
   (a) direct, and (b) mitmdump with stream_large_bodies=1 (it streams nothing otherwise).
3. CPU per request, in this process: a 200-turn, ~200 KB Messages conversation read into the
   neutral form and written as Gemini's body (`translation.Translation.start`), over many
   iterations of time.process_time; the JSON parse before it and the serialisation after it are
   reported apart. Bar: under 1 ms.

    .venv/bin/python scripts/bench_translate.py            # ~60 s
    .venv/bin/python scripts/bench_translate.py --quick    # smoke run, ~25 s
    .venv/bin/python scripts/bench_translate.py --cpu-only
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import (  # the shared benchmark pieces, beside this script
    Connection,
    Mitmdump,
    Proc,
    Upstream,
    alternate,
    best_and_median,
    bounded,
    load_options,
    percentile,
    ratio,
    request,
    run_load,
    upstream_stats,
)

RPS_BAR, FIRST_BYTE_BAR_MS, CPU_BAR_MS = 0.85, 5.0, 1.0
CASES = {"a": "upstream direct", "b": "mitmdump", "c": "mitmdump+calo, to Gemini"}
TURN = "lorem ipsum dolor sit amet consectetur adipiscing elit " * 18  # ~1 KB


def messages_call(stream: bool = False):
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Say hi in one word, please. Thanks."}],
    }
    if stream:
        body["stream"] = True
    headers = {"x_api_key": "pk", "anthropic_version": "2023-06-01"}
    return request(
        "POST",
        "/v1/messages",
        json.dumps(body).encode(),
        content_type="application/json",
        **headers,
    )


def start_proxies(tmp: str, up_port: int) -> list[Proc]:
    return [
        Mitmdump("b-plain", up_port, tmp, addon=False, options=("--set", "stream_large_bodies=1")),
        Mitmdump("c-translating", up_port, tmp, addon=True),
    ]


# --------------------------------------------------------------------------- 1. throughput


def throughput(args, ports: dict[str, int]) -> None:
    call = messages_call()
    print("\n1. requests per second, a small Messages call", flush=True)
    results = alternate(
        list(ports),
        args.repeats,
        lambda case: run_load(ports[case], call, args.concurrency, args.warmup, args.duration),
    )
    best, med = best_and_median(results)
    errors = sum(r["errors"] for runs in results.values() for r in runs)
    for case in results:
        print(f"  {case} {CASES[case]:26} best {best[case]:7.0f} rps, median {med[case]:7.0f}")
    c_b = ratio(best["c"], best["b"])
    print(
        f"  translated vs plain mitmdump: c/b = {c_b:.2f} (medians "
        f"{ratio(med['c'], med['b']):.2f}), bar >= {RPS_BAR}: "
        + ("PASS" if c_b >= RPS_BAR else "MISS")
        + (f" ({errors} errors!)" if errors else "")
    )


# --------------------------------------------------------------------------- 2. first byte


async def first_bytes(port: int, up_port: int, calls: int) -> tuple[list[float], list[str]]:
    """Milliseconds from the upstream's first chunk to the client's first body byte, per
    call (one at a time, on one connection); and any problems seen."""
    conn, gaps, problems = await Connection.open(port), [], []
    try:
        for _ in range(calls):
            before = upstream_stats(up_port)["streams"]
            reply = await conn.send(messages_call(stream=True))
            stats = upstream_stats(up_port)
            new = stats["streams"] - before
            sent = stats["first_chunks"][-new:] if new else []
            if reply.status != 200 or b"message_stop" not in reply.body or len(sent) != 1:
                problems.append(f"status {reply.status}, {len(sent)} streams upstream")
                continue
            gaps.append((reply.first_body_at - sent[0]) * 1000)
    finally:
        conn.close()
    return sorted(gaps), problems


def streaming(args, ports: dict[str, int], up_port: int) -> None:
    print(
        f"\n2. first byte of a streamed Messages call, {args.calls} calls one at a time; the "
        f"upstream waits {args.first_delay * 1000:g} ms before its first chunk",
        flush=True,
    )
    for case, port in ports.items():
        gaps, problems = asyncio.run(first_bytes(port, up_port, args.calls))
        within = sum(1 for gap in gaps if gap <= FIRST_BYTE_BAR_MS)
        line = (
            f"  {case} {CASES[case]:26} upstream's first chunk -> client's first byte: "
            f"p50 {percentile(gaps, 0.5):.2f} ms, p90 {percentile(gaps, 0.9):.2f} ms, "
            f"max {max(gaps, default=float('nan')):.2f} ms; within {FIRST_BYTE_BAR_MS:g} ms: "
            f"{within}/{len(gaps)}"
        )
        if case == "c":
            line += ", bar (p90): " + ("PASS" if percentile(gaps, 0.9) <= 5 else "MISS")
        print(line + (f"; {len(problems)} problems, e.g. {problems[0]}" if problems else ""))


# --------------------------------------------------------------------------- 3. CPU


def conversation(turns: int = 200) -> dict:
    """A Messages body of `turns` turns of ~1 KB, alternating, ending on a user turn."""
    messages = []
    while len(messages) < turns or messages[-1]["role"] != "user":
        role = "user" if len(messages) % 2 == 0 else "assistant"
        messages.append({"role": role, "content": f"turn {len(messages)}: {TURN}"})
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": "Be brief.",
        "messages": messages,
    }


def cpu_per_call(fn, seconds: float) -> float:
    """CPU seconds per call of fn(), called until `seconds` of CPU time have passed."""
    fn()  # warm
    calls, t0 = 0, time.process_time()
    while (spent := time.process_time() - t0) < seconds:
        fn()
        calls += 1
    return spent / calls


def cpu(quick: bool) -> None:
    import orjson
    from mitmproxy import http

    from calo_addon.dialects import GEMINI, recognise
    from calo_addon.translation import Memory, Translation

    op = recognise("POST", "/v1/messages", "x-api-key")
    raw = orjson.dumps(conversation())
    memory, seconds, headers = Memory(), 0.5 if quick else 2.0, http.Headers()

    def translate() -> dict:
        payload = orjson.loads(raw)
        return Translation.start(op, GEMINI, payload, "gemini-2.5-flash", False, memory, headers)[1]

    parse = cpu_per_call(lambda: orjson.loads(raw), seconds)
    start = cpu_per_call(translate, seconds) - parse
    upstream_body = translate()
    dumps = cpu_per_call(lambda: orjson.dumps(upstream_body), seconds)
    turns = len(orjson.loads(raw)["messages"])
    print(
        f"\n3. CPU per request in this process, a {turns}-turn Messages conversation of "
        f"{len(raw) / 1024:.0f} KB to Gemini ({len(orjson.dumps(upstream_body)) / 1024:.0f} KB):"
        f"\n  Translation.start (read to the neutral form, write Gemini's body): "
        f"{start * 1000:.3f} ms, bar < {CPU_BAR_MS:g} ms: "
        + ("PASS" if start * 1000 < CPU_BAR_MS else "MISS")
        + f"\n  beside it: orjson parse of the client's body {parse * 1000:.3f} ms, "
        f"serialising the upstream body {dumps * 1000:.3f} ms"
    )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    load_options(ap)
    ap.add_argument("--calls", type=int, default=100, help="streamed calls per case (100)")
    ap.add_argument("--first-delay", type=float, default=0.02, help="upstream's wait (0.02 s)")
    ap.add_argument("--cpu-only", action="store_true", help="only the in-process measure")
    args = bounded(ap.parse_args())
    args.calls = max(5, min(args.calls // (5 if args.quick else 1), 10_000))
    started = time.monotonic()
    if not args.cpu_only:
        print(
            f"bench_translate: {os.cpu_count()} CPUs, concurrency {args.concurrency}, "
            f"{args.warmup:g}s warm-up + {args.duration:g}s measured per run, "
            f"{args.repeats} repeats",
            flush=True,
        )
        with tempfile.TemporaryDirectory(prefix="calo-translate-") as tmp:
            procs: list[Proc] = [Upstream(tmp, first_delay=args.first_delay)]
            try:
                up_port = procs[0].wait_port()
                procs += start_proxies(tmp, up_port)
                ports = {"a": up_port, **{p.name[0]: p.wait_port() for p in procs[1:]}}
                throughput(args, ports)
                streaming(args, ports, up_port)
            finally:
                for proc in reversed(procs):
                    proc.stop()
    cpu(args.quick)
    print(f"\ntotal time {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
