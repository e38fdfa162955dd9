#!/usr/bin/env python3
"""Throughput benchmark for calo_addon: what does the addon cost on top of plain mitmdump?

A benchmark, not a test: it prints numbers and never fails on them. In one run it measures
requests per second over keep-alive connections for

  (a) the fake upstream, directly;
  (b) `mitmdump --mode reverse:http://127.0.0.1:UP` without the addon;
  (c) the same mitmdump with `-s calo_addon/__init__.py` (env-configured, rollup off);

for two workloads:

  small  POST /v1beta/models/gemini-2.5-flash:generateContent, ~200 byte JSON body
  large  POST /v1/chat/completions, ~200 KB JSON body (many turns); with the addon it goes
         upstream as /v1beta/openai/chat/completions

Targets (reported, not asserted): c >= 0.9 x b for small bodies, c >= 0.8 x b for 200 KB.

The fake upstream (scripts/benchlib.py: the test suite's fakes, served by h11 in a process of
its own) and the load generator (h11, asyncio, N keep-alive connections) are on 127.0.0.1. Each
case runs --repeats times, alternating the order (a b c, then c b a, ...) to spread the noise
of a shared machine; the table uses the best run of each case, and every run is printed too.

    .venv/bin/python scripts/bench_core.py             # ~80 s
    .venv/bin/python scripts/bench_core.py --quick     # smoke run, ~25 s
    .venv/bin/python scripts/bench_core.py --null-addon    # + (n): a no-op addon, same hooks
    .venv/bin/python scripts/bench_core.py --profile /tmp/calo.prof   # + cProfile of (c)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import (  # the shared benchmark pieces, beside this script
    Mitmdump,
    Proc,
    Upstream,
    alternate,
    best_and_median,
    bounded,
    load_options,
    profile,
    ratio,
    read_calo_log,
    request,
    run_load,
    upstream_stats,
)

TARGETS = {"small": 0.9, "large": 0.8}
LABELS = {"small": "small Gemini ~200 B", "large": "OpenAI 200 KB"}
CASES = {"a": "upstream direct", "b": "mitmdump", "c": "mitmdump+calo", "n": "mitmdump+null addon"}
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


def build_request(workload: str):
    common = {"content_type": "application/json", "accept": "application/json"}
    if workload == "small":
        text = "Say hi in one word. " * 4 + "Thanks."
        body = {
            "contents": [{"role": "user", "parts": [{"text": text}]}],
            "generationConfig": {"temperature": 0.2, "maxOutputTokens": 16},
        }
        path = "/v1beta/models/gemini-2.5-flash:generateContent"
        return request("POST", path, json.dumps(body).encode(), x_goog_api_key="pk", **common)
    turn = "lorem ipsum dolor sit amet consectetur adipiscing elit " * 18  # ~1 KB
    messages = [{"role": "system", "content": "You are a helpful assistant."}]
    while True:
        role = "user" if len(messages) % 2 else "assistant"
        messages.append({"role": role, "content": f"turn {len(messages)}: {turn}"})
        raw = json.dumps({"model": "gemini-2.5-flash", "messages": messages}).encode()
        if len(raw) >= 200 * 1024 and role == "user":
            return request("POST", "/v1/chat/completions", raw, authorization="Bearer pk", **common)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    load_options(ap)
    ap.add_argument("--workloads", default="small,large", help="comma list of small,large")
    ap.add_argument("--profile", metavar="PATH", help="afterwards, (c) under cProfile")
    ap.add_argument(
        "--null-addon",
        action="store_true",
        help="also run (n): mitmdump with a no-op addon that has the same hooks, to tell the "
        "cost of having any addon from calo_addon's own work",
    )
    args = bounded(ap.parse_args())
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
            procs += [
                Mitmdump("b-plain", up_port, tmp, addon=False),
                Mitmdump("c-addon", up_port, tmp, addon=True),
            ]
            if args.null_addon:
                null_script = Path(tmp) / "null_addon.py"
                null_script.write_text(NULL_ADDON)
                procs.append(Mitmdump("n-null", up_port, tmp, addon=True, script=null_script))
            plain, calo = procs[1], procs[2]
            ports = {"a": up_port, **{p.name[0]: p.wait_port() for p in procs[1:]}}
            print("ports: " + ", ".join(f"{CASES[c]} {port}" for c, port in ports.items()))
            results, sent_by_c = measure(args, workloads, ports, up_port)
        finally:
            codes = {p.name: p.stop() for p in reversed(procs)}
        report_upstream_and_log(sent_by_c, calo, plain, codes, results)
        table(args, workloads, results)
    if args.profile:
        loads = {workload: build_request(workload) for workload in workloads}
        profile(os.path.abspath(args.profile), None, loads, args)
    print(f"\ntotal time {time.monotonic() - started:.0f}s")
    return 0


def measure(args, workloads: list[str], ports: dict[str, int], up_port: int):
    """Every case of every workload, alternating; and what (c) sent upstream."""
    results: dict[str, dict[str, list[dict]]] = {}
    sent_by_c: Counter = Counter()

    def run(workload: str, case: str) -> dict:
        before = upstream_stats(up_port)["requests"]
        req = build_request(workload)
        r = run_load(ports[case], req, args.concurrency, args.warmup, args.duration)
        if case == "c":
            sent_by_c.update(upstream_stats(up_port)["requests"] - before)
        return r

    for workload in workloads:
        label = f"{workload:5} "
        results[workload] = alternate(
            list(ports), args.repeats, lambda case, w=workload: run(w, case), label
        )
    return results, sent_by_c


def report_upstream_and_log(sent_by_c: Counter, calo, plain, codes, results) -> None:
    print("\nupstream saw from (c) (path, credential -> requests):")
    for (path, credential), n in sorted(sent_by_c.items()):
        print(f"  {path}  {credential}  {n}")
    leaked = sum(n for (_, credential), n in sent_by_c.items() if credential in ("pk", "Bearer pk"))
    if leaked:
        print(f"  !! the proxy key reached the upstream {leaked} times")
    records = [r for r in read_calo_log(calo.log_file) if "operation" in r]
    completed = sum(r["total"] for runs in results.values() for r in runs["c"])
    ok = sum(1 for r in records if r.get("status") == 200)
    print(
        f"\ncalo.log: {len(records)} flow records ({ok} with status 200); "
        f"(c) completed {completed} requests"
    )
    print(
        f"console lines: plain mitmdump {len(plain.lines)}, with addon {len(calo.lines)}; "
        f"exit codes {codes}"
    )
    for line in [x for x in calo.lines if "error" in x.lower()][:5]:
        print(f"  addon console: {line[:200]}")


def table(args, workloads: list[str], results) -> None:
    null = args.null_addon
    header = (
        f"\n{'workload':20} {'a rps':>8} {'b rps':>8} {'c rps':>8} "
        + (f"{'n rps':>8} {'n/b':>5} " if null else "")
        + f"{'c/b':>6} {'c/b med':>7} {'target':>7}  result"
    )
    print(header + "\n" + "-" * len(header.strip()))
    for workload in workloads:
        best, med = best_and_median(results[workload])
        errors = sum(r["errors"] for runs in results[workload].values() for r in runs)
        c_b = ratio(best["c"], best["b"])
        verdict = ("PASS" if c_b >= TARGETS[workload] else "MISS") + (
            f" ({errors} errors!)" if errors else ""
        )
        print(
            f"{LABELS[workload]:20} {best['a']:8.0f} {best['b']:8.0f} {best['c']:8.0f} "
            + (f"{best['n']:8.0f} {ratio(best['n'], best['b']):5.2f} " if null else "")
            + f"{c_b:6.2f} {ratio(med['c'], med['b']):7.2f} {TARGETS[workload]:>7.2f}  {verdict}"
        )
    print("(rps = best of the runs; c/b med = ratio of the medians)")


if __name__ == "__main__":
    sys.exit(main())
