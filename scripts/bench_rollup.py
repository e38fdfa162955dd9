#!/usr/bin/env python3
"""Rollup speed benchmark: what does rollup cost on a long conversation?

A benchmark, not a test: it prints numbers and never fails on them. In one run it measures
requests per second over keep-alive connections, everything on 127.0.0.1, with a 200-message
(~200 KB) OpenAI chat conversation (a system message, then user/assistant turns of ~1 KB
alternating, ending on a user turn) sent again and again, for

  (a) the fake upstream, directly (reference);
  (b) `mitmdump --mode reverse:http://127.0.0.1:UP` without the addon;
  (c) mitmdump + calo_addon, rollup ON (GEMINI_CALO_ROLLUP=on, default threshold 4096);
  (d) mitmdump + calo_addon, rollup OFF (reference);
  (e) the (c) proxy, the conversation continued: the same 200 messages + the assistant's
      reply + one more user turn, so the remembered prefix matches and its summary replaces
      it (reference: what a client following the conversation gets).

The fake upstream answers a proper ChatCompletion (choices[0].message: assistant "ok") and the
summariser's Gemini generateContent call with the text "summary". Target (reported, not
asserted): c >= 0.8 x b. Each case runs --repeats times, alternating the order; the table uses
the best run of each case (c/b med: the ratio of the medians).

Then a micro-benchmark of the rollup in this process, over conversations of about 50, 100, 200
and 400 messages of ~1 KB: a request that continues nothing remembered (miss), one that
continues a remembered conversation (hit: verified, then replaced), the reply to a conversation
remembered already, each on a body just parsed; and a naive seed-style prefix hash (json.dumps
+ SHA-256 of every prefix messages[:i], quadratic in the length).

    .venv/bin/python scripts/bench_rollup.py            # ~75 s
    .venv/bin/python scripts/bench_rollup.py --quick    # smoke run, ~25 s
    .venv/bin/python scripts/bench_rollup.py --micro-only
    .venv/bin/python scripts/bench_rollup.py --profile /tmp/rollup.prof   # + cProfile of (c)
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import (  # the shared benchmark pieces, beside this script
    ROOT,
    Mitmdump,
    Proc,
    Upstream,
    fmt_errors,
    http_request,
    print_profile,
    read_calo_log,
    request_once,
    run_load,
    upstream_bytes,
    upstream_stats,
)

MODEL = "gemini-2.5-flash"
CHAT = "/v1/chat/completions"
SUMMARISER = f"/v1beta/models/{MODEL}:generateContent"
TARGET = 0.8
TURN = "lorem ipsum dolor sit amet consectetur adipiscing elit " * 18  # ~1 KB
CASES = {
    "a": "upstream direct",
    "b": "mitmdump",
    "c": "mitmdump+calo rollup on",
    "d": "mitmdump+calo rollup off",
    "e": "c, prefix rolled up",
}


# --------------------------------------------------------------------------- conversation


def messages(count: int, system: bool = True) -> list[dict]:
    """`count` messages: a system message (if `system`), then user/assistant turns of ~1 KB
    alternating, starting with a user turn; each turn's text is distinct."""
    out = [{"role": "system", "content": "You are a helpful assistant."}] if system else []
    while len(out) < count:
        role = "assistant" if (len(out) - system) % 2 else "user"
        out.append({"role": role, "content": f"turn {len(out)}: {TURN}"})
    return out


def conversation() -> list[dict]:
    return messages(200)  # system + 199 turns, ending on a user turn


def continued() -> list[dict]:
    return [
        *conversation(),
        {"role": "assistant", "content": "ok"},  # the fake's reply to conversation()
        {"role": "user", "content": "Thanks. And what comes next?"},
    ]


def chat_request(port: int, msgs: list[dict]) -> bytes:
    body = json.dumps({"model": MODEL, "messages": msgs}).encode()
    headers = {
        "authorization": "Bearer pk",
        "content-type": "application/json",
        "accept": "application/json",
        "user-agent": "calo-bench",
    }
    return http_request("POST", CHAT, port, body, headers)


def summariser_calls(up_port: int) -> int:
    return sum(n for (path, _), n in upstream_stats(up_port).items() if path == SUMMARISER)


def chat_bytes(up_port: int) -> int:
    return sum(n for path, n in upstream_bytes(up_port).items() if path.endswith(CHAT[3:]))


def prime(c_port: int, up_port: int) -> str:
    """Have (c) remember the conversation and summarise it, then check that (e) is rolled up
    (the body the upstream receives is much smaller than the one sent)."""
    before = summariser_calls(up_port)
    reply = asyncio.run(request_once(c_port, chat_request(c_port, conversation())))
    if reply.status != 200:
        return f"priming request answered {reply.status}: {reply.body[:200]!r}"
    deadline = time.monotonic() + 20
    while summariser_calls(up_port) <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    if summariser_calls(up_port) <= before:
        return "the addon did not call the summariser within 20 s"
    time.sleep(0.3)  # the summary reaches the cache just after the upstream answered it
    request = chat_request(c_port, continued())
    sent_before = chat_bytes(up_port)
    reply = asyncio.run(request_once(c_port, request))
    forwarded = chat_bytes(up_port) - sent_before
    return (
        f"summariser called; a continued conversation of {len(request)} B went upstream as "
        f"{forwarded} B (status {reply.status})"
    )


# --------------------------------------------------------------------------- micro-benchmark


def naive_prefix_hashes(msgs: list[dict]) -> list[str]:
    """The seed-style way: serialise and hash every prefix. Quadratic in the length."""
    return [
        hashlib.sha256(json.dumps(msgs[:i], sort_keys=True).encode()).hexdigest()
        for i in range(1, len(msgs) + 1)
    ]


def timed(fn, min_seconds: float, max_calls: int) -> float:
    """Seconds per call of fn(), calling it until min_seconds have passed or max_calls."""
    fn()  # warm
    calls, t0 = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds or calls >= max_calls:
            return elapsed / calls


def micro(sizes: list[int], quick: bool) -> None:
    """Rollup's own cost per request, as in the proxy: on a body just parsed by orjson (its
    strings new, their hashes not yet computed), measured as (parse + step) - (parse)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import orjson

    from calo_addon.dialects import recognise
    from calo_addon.rollup import Rollup
    from calo_addon.settings import RollupSettings

    async def summarize(text: str) -> str:
        return "summary"

    op = recognise("POST", "/v1/chat/completions", None)
    seconds = 0.1 if quick else 0.3

    def parse_then(raw: bytes, step) -> float:
        return timed(lambda: step(orjson.loads(raw)), seconds, 20000)

    print(
        "\nmicro-benchmark: rollup per request, in this process (threshold 1), "
        f"user/assistant messages of ~{len(TURN) + 10} characters;\n"
        "miss: the cache holds an unrelated, shorter conversation; hit: the request continues "
        "a remembered conversation whose summary is ready (verified turn by turn, then "
        "replaced);\nremember again: the reply to a conversation already remembered; naive: "
        "json.dumps + SHA-256 of every prefix messages[:i], as the seed did"
    )
    header = (
        f"{'messages':>8} {'body KB':>7} {'orjson us':>9} {'miss us':>8} {'hit us':>8} "
        f"{'hit us/msg':>10} {'remember us':>11} {'naive us':>9} {'naive x vs 50':>13}"
    )
    print(header)
    print("-" * len(header))
    base_naive = None
    for n in sizes:
        msgs = messages(n if n % 2 else n + 1, system=False)  # ends on a user turn
        raw = orjson.dumps({"model": MODEL, "messages": msgs})
        rollup = Rollup(RollupSettings(threshold=1), summarize=summarize)

        async def prime(rollup=rollup, msgs=msgs) -> None:
            unrelated = messages(5, system=False)
            for history in (unrelated[:3], msgs[:-2]):  # each then answered, and remembered
                plan = rollup.plan(op, {"messages": history})
                rollup.remember(op, plan, {"role": "assistant", "content": f"re {len(history)}"})
            await rollup.settle()

        miss = Rollup(RollupSettings(threshold=1), summarize=summarize)
        asyncio.run(prime(miss))
        del miss.cache[next(k for k in miss.cache if k[0] == len(msgs) - 1)]
        msgs[-2] = {"role": "assistant", "content": f"re {len(msgs) - 2}"}
        raw = orjson.dumps({"model": MODEL, "messages": msgs})
        asyncio.run(prime())
        plan = rollup.plan(op, orjson.loads(raw))
        assert plan and plan.used == "summary" and plan.cut == len(msgs) - 1, plan
        plan = miss.plan(op, orjson.loads(raw))
        assert plan and plan.used is None, plan

        loads_s = min(timed(partial(orjson.loads, raw), seconds, 20000) for _ in range(3))
        miss_s = parse_then(raw, partial(miss.plan, op)) - loads_s
        hit_s = parse_then(raw, partial(rollup.plan, op)) - loads_s
        reply = {"role": "assistant", "content": f"re {len(msgs) - 2}"}
        history = orjson.dumps({"messages": msgs[:-2]})

        def again(body, rollup=rollup, reply=reply):
            rollup.remember(op, rollup.plan(op, body), reply)

        remember_s = parse_then(history, again) - timed(
            partial(orjson.loads, history), seconds, 20000
        )
        naive_s = timed(partial(naive_prefix_hashes, msgs), 0.2 if quick else 0.5, 20)
        base_naive = base_naive or naive_s
        print(
            f"{len(msgs):8} {len(raw) / 1024:7.0f} {loads_s * 1e6:9.1f} {miss_s * 1e6:8.1f} "
            f"{hit_s * 1e6:8.1f} {hit_s * 1e6 / len(msgs):10.2f} {remember_s * 1e6:11.1f} "
            f"{naive_s * 1e6:9.0f} {naive_s / base_naive:13.2f}"
        )
    print(
        "(naive x vs 50: time relative to the first size; linear is 2, 4, 8 for 100, 200, 400 "
        "messages, quadratic 4, 16, 64)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration", type=float, default=5.0, help="measured seconds per run (5)")
    ap.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per run (1)")
    ap.add_argument("--concurrency", type=int, default=8, help="keep-alive connections (8)")
    ap.add_argument("--repeats", type=int, default=2, help="runs per case, order alternating (2)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 s per case, 0.5 s warm-up")
    ap.add_argument("--micro-only", action="store_true", help="only the micro-benchmark")
    ap.add_argument(
        "--sizes", default="50,100,200,400", help="micro-benchmark conversation lengths"
    )
    ap.add_argument(
        "--profile",
        metavar="PATH",
        help="afterwards, run (c) under cProfile for --duration, save stats to PATH and print "
        "the hottest functions",
    )
    args = ap.parse_args()
    if args.quick:
        args.duration, args.warmup = 1.0, 0.5
    args.repeats = max(1, min(args.repeats, 20))
    args.concurrency = max(1, min(args.concurrency, 512))
    args.duration = max(0.2, min(args.duration, 120.0))
    sizes = [max(2, min(int(s), 5000)) for s in args.sizes.split(",") if s.strip()][:10]

    started = time.monotonic()
    if not args.micro_only:
        proxies(args)
    micro(sizes, args.quick)
    print(f"\ntotal time {time.monotonic() - started:.0f}s")
    return 0


def proxies(args) -> None:
    print(
        f"bench_rollup: {os.cpu_count()} CPUs, concurrency {args.concurrency}, "
        f"{args.warmup:g}s warm-up + {args.duration:g}s measured per run, {args.repeats} repeats",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="calo-rollup-") as tmp:
        procs: list[Proc] = []
        try:
            upstream = Upstream(tmp)
            procs.append(upstream)
            up_port = upstream.wait_port()
            plain = Mitmdump("b-plain", up_port, tmp, addon=False)
            procs.append(plain)
            on = Mitmdump("c-rollup-on", up_port, tmp, addon=True, env={"GEMINI_CALO_ROLLUP": "on"})
            procs.append(on)
            off = Mitmdump("d-rollup-off", up_port, tmp, addon=True)
            procs.append(off)
            ports = {
                "a": up_port,
                "b": plain.wait_port(),
                "c": on.wait_port(),
                "d": off.wait_port(),
            }
            ports["e"] = ports["c"]
            print("ports: " + ", ".join(f"{c} {CASES[c]} {p}" for c, p in ports.items()))
            print(f"priming (c): {prime(ports['c'], up_port)}", flush=True)
            requests = {c: chat_request(p, conversation()) for c, p in ports.items()}
            requests["e"] = chat_request(ports["e"], continued())
            print(
                f"request: {len(requests['b'])} B, {len(conversation())} messages; "
                f"(e): {len(requests['e'])} B, {len(continued())} messages",
                flush=True,
            )

            cases = list(CASES)
            results: dict[str, list[dict]] = {c: [] for c in cases}
            for rep in range(args.repeats):
                for case in cases if rep % 2 == 0 else cases[::-1]:
                    before = chat_bytes(up_port), upstream_stats(up_port).total()
                    r = run_load(
                        ports[case], requests[case], args.concurrency, args.warmup, args.duration
                    )
                    seen = upstream_stats(up_port).total() - before[1]
                    per = (chat_bytes(up_port) - before[0]) / seen if seen else 0
                    results[case].append(r)
                    print(
                        f"  run {rep + 1} {case}: {r['rps']:7.0f} rps (p50 {r['p50_ms']:.1f} ms, "
                        f"p99 {r['p99_ms']:.1f} ms, {r['total']} requests, "
                        f"upstream got {per / 1024:.0f} KB each)" + fmt_errors(r),
                        flush=True,
                    )
        finally:
            codes = {p.name: p.stop() for p in reversed(procs)}
        for proc in (on, off):
            records = read_calo_log(proc.log_file)
            flows = [r for r in records if "operation" in r]
            rolled: dict = {}
            for r in flows:
                key = (r.get("operation"), r.get("status"), r.get("rollup_applied"))
                rolled[key] = rolled.get(key, 0) + 1
            other = [r for r in records if "operation" not in r and r.get("level") != "INFO"]
            print(
                f"{proc.name} calo.log: {len(flows)} flow records "
                f"(operation, status, rollup_applied -> n): {rolled}"
                + (f"; {len(other)} warnings/errors, e.g. {other[0]}" if other else "")
            )
        print(f"exit codes {codes}")

    print()
    header = f"{'case':28} {'best rps':>9} {'median':>8} {'/b best':>8} {'/b med':>7} {'errors':>7}"
    print(header)
    print("-" * len(header))
    best = {c: max(r["rps"] for r in v) for c, v in results.items()}
    med = {c: statistics.median(r["rps"] for r in v) for c, v in results.items()}
    errors = {c: sum(r["errors"] for r in v) for c, v in results.items()}
    for c in cases:
        print(
            f"{c} {CASES[c]:26} {best[c]:9.0f} {med[c]:8.0f} "
            f"{best[c] / best['b'] if best['b'] else float('nan'):8.2f} "
            f"{med[c] / med['b'] if med['b'] else float('nan'):7.2f} {errors[c]:7}"
        )
    ratio = best["c"] / best["b"] if best["b"] else float("nan")
    ratio_med = med["c"] / med["b"] if med["b"] else float("nan")
    verdict = "PASS" if ratio >= TARGET else "MISS"
    print(
        f"\nrollup ON vs plain mitmdump, 200 messages ~200 KB: c/b = {ratio:.2f} "
        f"(medians {ratio_med:.2f}), target >= {TARGET}: {verdict}"
        + (f" ({sum(errors.values())} errors!)" if any(errors.values()) else "")
    )

    if args.profile:
        profile_rollup(args, tmp_prefix="calo-rollup-prof-")


def profile_rollup(args, tmp_prefix: str) -> None:
    path = os.path.abspath(args.profile)
    print(f"\nprofiling mitmdump + calo_addon (rollup on) under cProfile -> {path}")
    with tempfile.TemporaryDirectory(prefix=tmp_prefix) as tmp:
        procs: list[Proc] = []
        try:
            upstream = Upstream(tmp)
            procs.append(upstream)
            up_port = upstream.wait_port()
            calo = Mitmdump(
                "c-profile",
                up_port,
                tmp,
                addon=True,
                profile=path,
                env={"GEMINI_CALO_ROLLUP": "on"},
            )
            procs.append(calo)
            port = calo.wait_port()
            r = run_load(
                port,
                chat_request(port, conversation()),
                args.concurrency,
                args.warmup,
                args.duration,
            )
            print(f"  {r['rps']:.0f} rps under the profiler" + fmt_errors(r))
        finally:
            for p in reversed(procs):
                p.stop()
    print_profile(path)


if __name__ == "__main__":
    sys.exit(main())
