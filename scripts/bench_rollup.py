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

The fake upstream (scripts/benchlib.py: the test suite's fakes) answers a proper
ChatCompletion and the summariser's Gemini generateContent call. Target (reported, not
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
import sys
import tempfile
import time
from collections import Counter
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import (  # the shared benchmark pieces, beside this script
    Mitmdump,
    Proc,
    Upstream,
    alternate,
    best_and_median,
    bounded,
    chat_reply_text,
    load_options,
    profile,
    ratio,
    read_calo_log,
    request,
    request_once,
    run_load,
    upstream_stats,
)

MODEL = "gemini-2.5-flash"
CHAT = "/v1/chat/completions"
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
        {"role": "assistant", "content": chat_reply_text()},  # the fake's reply
        {"role": "user", "content": "Thanks. And what comes next?"},
    ]


def chat_request(msgs: list[dict]):
    body = json.dumps({"model": MODEL, "messages": msgs}).encode()
    common = {"content_type": "application/json", "accept": "application/json"}
    return request("POST", CHAT, body, authorization="Bearer pk", **common)


def chat_bytes(up_port: int) -> int:
    stats = upstream_stats(up_port)["bytes"]
    return sum(n for path, n in stats.items() if path.endswith(CHAT[3:]))


def prime(c_port: int, up_port: int) -> str:
    """Have (c) remember the conversation and summarise it; wait until (e) is rolled up (the
    body the upstream receives is much smaller than the one sent)."""
    reply = asyncio.run(request_once(c_port, chat_request(conversation())))
    if reply.status != 200:
        return f"priming request answered {reply.status}: {reply.body[:200]!r}"
    follow = chat_request(continued())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        sent_before = chat_bytes(up_port)
        reply = asyncio.run(request_once(c_port, follow))
        forwarded = chat_bytes(up_port) - sent_before
        if forwarded < len(follow.body) // 10:
            return (
                f"summariser called; a continued conversation of {len(follow.body)} B went "
                f"upstream as {forwarded} B (status {reply.status})"
            )
        time.sleep(0.05)  # the summary is computed beside; ask again
    return "the continued conversation was not rolled up within 20 s"


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
    load_options(ap)
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
    args = bounded(ap.parse_args())
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
            rollup_on = {"GEMINI_CALO_ROLLUP": "on"}
            procs += [
                Mitmdump("b-plain", up_port, tmp, addon=False),
                Mitmdump("c-rollup-on", up_port, tmp, addon=True, env=rollup_on),
                Mitmdump("d-rollup-off", up_port, tmp, addon=True),
            ]
            ports = {"a": up_port, **{p.name[0]: p.wait_port() for p in procs[1:]}}
            ports["e"] = ports["c"]
            print("ports: " + ", ".join(f"{c} {CASES[c]} {p}" for c, p in ports.items()))
            print(f"priming (c): {prime(ports['c'], up_port)}", flush=True)
            requests = {c: chat_request(conversation()) for c in "abcd"}
            requests["e"] = chat_request(continued())
            print(
                f"request: {len(requests['b'].body)} B, {len(conversation())} messages; "
                f"(e): {len(requests['e'].body)} B, {len(continued())} messages",
                flush=True,
            )

            def run(case: str) -> dict:
                before = chat_bytes(up_port), upstream_stats(up_port)["requests"].total()
                r = run_load(
                    ports[case], requests[case], args.concurrency, args.warmup, args.duration
                )
                seen = upstream_stats(up_port)["requests"].total() - before[1]
                per = (chat_bytes(up_port) - before[0]) / seen if seen else 0
                r["note"] = f"upstream got {per / 1024:.0f} KB each"
                return r

            results = alternate(list(CASES), args.repeats, run)
        finally:
            codes = {p.name: p.stop() for p in reversed(procs)}
        for proc in procs[2:]:
            log_summary(proc)
        print(f"exit codes {codes}")
    table(results)
    if args.profile:
        loads = {"rollup on": chat_request(conversation())}
        profile(os.path.abspath(args.profile), {"GEMINI_CALO_ROLLUP": "on"}, loads, args)


def log_summary(proc: Mitmdump) -> None:
    records = read_calo_log(proc.log_file)
    flows = Counter(
        (r.get("operation"), r.get("status"), r.get("rollup_applied"))
        for r in records
        if "operation" in r
    )
    other = [r for r in records if "operation" not in r and r.get("level") != "INFO"]
    print(
        f"{proc.name} calo.log: {flows.total()} flow records "
        f"(operation, status, rollup_applied -> n): {dict(flows)}"
        + (f"; {len(other)} warnings/errors, e.g. {other[0]}" if other else "")
    )


def table(results: dict[str, list[dict]]) -> None:
    header = f"{'case':28} {'best rps':>9} {'median':>8} {'/b best':>8} {'/b med':>7} {'errors':>7}"
    print("\n" + header + "\n" + "-" * len(header))
    best, med = best_and_median(results)
    errors = {c: sum(r["errors"] for r in v) for c, v in results.items()}
    for c in results:
        print(
            f"{c} {CASES[c]:26} {best[c]:9.0f} {med[c]:8.0f} "
            f"{ratio(best[c], best['b']):8.2f} {ratio(med[c], med['b']):7.2f} {errors[c]:7}"
        )
    c_b = ratio(best["c"], best["b"])
    verdict = "PASS" if c_b >= TARGET else "MISS"
    print(
        f"\nrollup ON vs plain mitmdump, 200 messages ~200 KB: c/b = {c_b:.2f} "
        f"(medians {ratio(med['c'], med['b']):.2f}), target >= {TARGET}: {verdict}"
        + (f" ({sum(errors.values())} errors!)" if any(errors.values()) else "")
    )


if __name__ == "__main__":
    sys.exit(main())
