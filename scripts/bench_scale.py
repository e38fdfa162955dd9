#!/usr/bin/env python3
"""What more than one process, shared state and metrics cost or give (SPEC 11, issue 14).

A benchmark, not a test: it prints numbers and never fails on them. In one run, on small calls
(POST /v1beta/models/gemini-2.5-flash:generateContent, ~200 byte body, answered at once by the
fast fake upstream of scripts/benchlib.py), over keep-alive connections, it measures requests
per second of

  (m) one process, state in memory, metrics on (the default);
  (o) one process, state in memory, metrics off;
  (r) one process, state in Redis (a redis-server of its own on loopback), metrics on;
  (w) `gemini-calo --workers 2`, state in Redis, metrics on (summed by the launcher);

and prints the ratios the issue sets targets for (reported, never asserted):

  w / r  >= 1.6   two workers against one, both on Redis (and w / m beside it)
  r / m  >= 0.90  the Redis backend costs at most 10% against the in-memory one
  m / o  >= 0.97  metrics cost at most 3%

Each case runs --repeats times, the order alternating (m o r w, then w r o m, ...) to spread
the noise of a shared machine; the table uses the best run of each case and prints the ratio
of the medians beside it, and how busy the proxy's processes were (cores) and their CPU time
per call: on a machine whose cores other work shares, two workers can only go as far as the
cores left to them, and an unchanged CPU time per call says they cost nothing more. The load generator is one asyncio process with --concurrency raw
keep-alive connections; the kernel spreads connections over the workers (SO_REUSEPORT) by a
hash, so many connections even the split out.

    .venv/bin/python scripts/bench_scale.py            # ~2 min
    .venv/bin/python scripts/bench_scale.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import (  # beside this script
    HOST,
    Mitmdump,
    Proc,
    Request,
    Upstream,
    fmt_errors,
    request,
    run_load,
)

SMALL_PATH = "/v1beta/models/gemini-2.5-flash:generateContent"
CASES = {
    "m": "1 process, memory, metrics on",
    "o": "1 process, memory, metrics off",
    "r": "1 process, Redis, metrics on",
    "w": "--workers 2, Redis, metrics on",
}
TARGETS = (("w", "r", 1.6), ("r", "m", 0.90), ("m", "o", 0.97))
METRICS_OFF = {"GEMINI_CALO_METRICS_LISTEN": "off"}


def small_request() -> Request:
    body = (
        b'{"contents": [{"role": "user", "parts": [{"text": "Say hi in one word. Say hi in one '
        b'word. Say hi in one word. Say hi in one word. Thanks."}]}], "generationConfig": '
        b'{"temperature": 0.2, "maxOutputTokens": 16}}'
    )
    return request("POST", SMALL_PATH, body, x_goog_api_key="pk", content_type="application/json")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Redis:
    """redis-server on a free loopback port, nothing on disk."""

    def __init__(self, tmp: str):
        binary = shutil.which("redis-server") or shutil.which("valkey-server")
        if binary is None:
            raise SystemExit("bench_scale needs redis-server (apt-get install redis-server)")
        self.port = free_port()
        self.url = f"redis://{HOST}:{self.port}/0"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", HOST, "--save", "", "--dir", tmp],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        time.sleep(0.5)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Workers(Proc):
    """`gemini-calo --workers 2` on a fixed port, configured like benchlib's Mitmdump."""

    def __init__(self, up_port: int, tmp: str, env: dict[str, str]):
        self.fixed_port = free_port()
        self.listening = 0
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("GEMINI_CALO_")}
        child_env.update(
            GEMINI_CALO_API_KEYS="k1,k2,k3",
            GEMINI_CALO_PROXY_API_KEYS="pk",
            GEMINI_CALO_BASE_URL=f"http://{HOST}:{up_port}",
            GEMINI_CALO_LOG_FILE=os.path.join(tmp, "calo-workers.log"),
            GEMINI_CALO_LOG_LEVEL="INFO",
            GEMINI_CALO_ROLLUP="off",
            GEMINI_CALO_HTTP_PORT=str(self.fixed_port),
            **env,
        )
        launcher = Path(sys.executable).parent / "gemini-calo"
        argv = [str(launcher), "--workers", "2", "--listen-host", HOST]
        argv += ["--set", f"confdir={os.path.join(tmp, 'confdir-w')}"]
        argv += ["--set", "termlog_verbosity=info", "--set", "flow_detail=0"]
        super().__init__("workers", argv, child_env, tmp)

    def parse_port(self, line):
        if "listening at" in line:
            self.listening += 1
            if self.listening == 2:  # both workers
                return self.fixed_port
        return None


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration", type=float, default=5.0, help="measured seconds per run (5)")
    ap.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per run (1)")
    ap.add_argument("--concurrency", type=int, default=32, help="keep-alive connections (32)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per case, order alternating (3)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 s per case, 1 repeat")
    ap.add_argument("--cases", default="m,o,r,w", help="comma list of m,o,r,w (all)")
    args = ap.parse_args()
    chosen = [c for c in CASES if c in args.cases.split(",")]
    if args.quick:
        args.duration, args.warmup, args.repeats = 1.0, 0.5, 1
    args.repeats = max(1, min(args.repeats, 20))
    args.concurrency = max(1, min(args.concurrency, 512))

    started = time.monotonic()
    print(
        f"bench_scale: {os.cpu_count()} CPUs, concurrency {args.concurrency}, "
        f"{args.warmup:g}s warm-up + {args.duration:g}s measured per run, {args.repeats} repeats",
        flush=True,
    )
    results: dict[str, list[dict]] = {case: [] for case in CASES}
    with tempfile.TemporaryDirectory(prefix="calo-scale-") as tmp:
        procs: list = []
        try:
            upstream = Upstream(tmp)
            procs.append(upstream)
            up = upstream.wait_port()
            redis = Redis(tmp)
            procs.append(redis)
            shared = {"GEMINI_CALO_REDIS_URL": redis.url}
            make = {
                "m": lambda: Mitmdump("m", up, tmp, addon=True, env=metrics_on()),
                "o": lambda: Mitmdump("o", up, tmp, addon=True, env=METRICS_OFF),
                "r": lambda: Mitmdump("r", up, tmp, addon=True, env={**shared, **metrics_on()}),
                "w": lambda: Workers(up, tmp, {**shared, **metrics_on()}),
            }
            servers = {case: make[case]() for case in chosen}
            procs += servers.values()
            ports = {case: server.wait_port() for case, server in servers.items()}
            print("ports: " + ", ".join(f"{c} {ports[c]}" for c in chosen), flush=True)
            cases = chosen
            for rep in range(args.repeats):
                for case in cases if rep % 2 == 0 else cases[::-1]:
                    pid = servers[case].pid
                    cpu_before, wall_before = cpu_seconds(pid), time.monotonic()
                    r = run_load(
                        ports[case],
                        small_request(),
                        args.concurrency,
                        args.warmup,
                        args.duration,
                    )
                    wall = time.monotonic() - wall_before
                    r["cores"] = (cpu_seconds(pid) - cpu_before) / wall
                    results[case].append(r)
                    print(
                        f"  run {rep + 1} {case} ({CASES[case]}): {r['rps']:7.0f} rps "
                        f"(p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms; proxy busy "
                        f"{r['cores']:.2f} cores, {1000 * r['cores'] / r['rps']:.2f} ms CPU "
                        "per call)" + fmt_errors(r),
                        flush=True,
                    )
        finally:
            for proc in reversed(procs):
                proc.stop()
        split = _worker_split(os.path.join(tmp, "calo-workers.log"))

    best = {c: max(r["rps"] for r in rs) for c, rs in results.items() if rs}
    median = {c: statistics.median(r["rps"] for r in rs) for c, rs in results.items() if rs}
    cores = {c: statistics.median(r["cores"] for r in rs) for c, rs in results.items() if rs}
    print(f"\n{'case':34} {'best rps':>9} {'median':>9} {'cores':>6} {'CPU ms/call':>12}")
    for case in chosen:
        per_call = 1000 * cores[case] / median[case]
        print(
            f"{case} {CASES[case]:32} {best[case]:9.0f} {median[case]:9.0f} "
            f"{cores[case]:6.2f} {per_call:12.2f}"
        )
    print(f"\n{'ratio':10} {'best':>6} {'median':>7} {'target':>7}  result")
    for top, bottom, target in TARGETS:
        if top not in best or bottom not in best:
            continue
        ratio = best[top] / best[bottom]
        ratio_median = median[top] / median[bottom]
        verdict = "PASS" if ratio >= target else "MISS"
        print(f"{top} / {bottom}      {ratio:6.2f} {ratio_median:7.2f} {target:7.2f}  {verdict}")
    if "w" in best and "m" in best:
        print(f"w / m      {best['w'] / best['m']:6.2f} {median['w'] / median['m']:7.2f}")
    if split:
        print(f"calls per worker in (w): {split}")
    if any(r["errors"] for rs in results.values() for r in rs):
        print("!! some requests failed: see the ERRORS on the per-run lines above")
    print(f"\ntotal time {time.monotonic() - started:.0f}s")
    return 0


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of a process and of its children (a launcher's workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            pids += [int(child) for child in f.read().split()]
    except OSError:
        pass
    for one in pids:
        try:
            with open(f"/proc/{one}/stat", encoding="ascii") as f:
                fields = f.read().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        except OSError:
            continue
    return total


def metrics_on() -> dict[str, str]:
    return {"GEMINI_CALO_METRICS_LISTEN": f"{HOST}:{free_port()}"}


def _worker_split(log: str) -> dict[str, int]:
    """Calls each worker served, from the workers' shared log."""
    import json

    split: dict[str, int] = {}
    if os.path.exists(log):
        with open(log, encoding="utf-8") as f:
            for line in f:
                worker = json.loads(line).get("worker")
                if worker:
                    split[worker] = split.get(worker, 0) + 1
    return split


if __name__ == "__main__":
    sys.exit(main())
