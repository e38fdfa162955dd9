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
own process (scripts/benchlib.py, shared with the other benchmarks), so it does not share the
load generator's GIL.
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
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import (  # the shared benchmark pieces, beside this script
    HOST,
    Mitmdump,
    Proc,
    Upstream,
    fmt_errors,
    print_profile,
    run_load,
    upstream_stats,
)

SMALL_PATH = "/v1beta/models/gemini-2.5-flash:generateContent"
LARGE_PATH = "/v1/chat/completions"


# --------------------------------------------------------------------------- requests


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
    args = ap.parse_args()
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
                            f"{r['total']} requests, {len(request)} B each)" + fmt_errors(r),
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
            records = [json.loads(line) for line in lines if '"operation"' in line]
            flows = len(records)
            status200 = sum(1 for record in records if record.get("status") == 200)
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
            print(f"  {workload}: {r['rps']:.0f} rps under the profiler" + fmt_errors(r))
    finally:
        for p in reversed(procs):
            p.stop()
    print_profile(args.profile)


if __name__ == "__main__":
    sys.exit(main())
