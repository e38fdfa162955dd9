"""`gemini-calo --workers N`: N mitmdump processes serving one port, on one machine.

One mitmdump process is bound to one CPU core. Here N of them listen on the same port with
SO_REUSEPORT (mitm.share_listening_port says how), and the Linux kernel hands each new
connection to one of them: nothing of ours sits between the clients and the workers. They act
as one through the shared state in Redis (`state.redis_url`, required), and their metrics are
summed: each worker writes its values to prometheus_client's multiprocess files, and this
launcher serves their sum at `metrics.listen`.

The launcher checks what would fail in every worker alike (the configuration, the port) once,
before starting any, so a start that cannot work says why in one line. A worker that dies
later is started again (after a pause if it keeps dying young); Ctrl-C (or SIGTERM) stops all.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

WORKER_ENV = "GEMINI_CALO_WORKER"  # set by the launcher in each worker: its number, from 1
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's multiprocess directory
YOUNG = 5.0  # seconds: a worker that dies sooner after its start is "dying young"
MAX_PAUSE = 30.0  # seconds between restarts of a worker that keeps dying young
STOP_WAIT = 10.0  # seconds workers get to stop before they are killed
PR_SET_PDEATHSIG = 1  # prctl(2)
WORKER_MAIN = "import sys; from calo_addon.workers import run_worker; run_worker(sys.argv[1:])"


def worker_number() -> int | None:
    """This process's number among the launcher's workers; None when it is not one."""
    value = os.environ.get(WORKER_ENV, "")
    return int(value) if value.isdigit() else None


class Refused(Exception):
    """A start that cannot work, said in one line."""


def listen_address(args: list[str]) -> tuple[str, int]:
    """(host, port) the mitmproxy arguments listen on (the launcher always names the port)."""
    host, port = "", None
    for i, arg in enumerate(args):
        following = args[i + 1] if i + 1 < len(args) else ""
        if arg in ("-p", "--listen-port"):
            port = following
        elif arg.startswith("--listen-port="):
            port = arg.partition("=")[2]
        elif arg == "--listen-host":
            host = following
        elif arg.startswith("--listen-host="):
            host = arg.partition("=")[2]
        elif (arg == "--mode" and "@" in following) or (arg.startswith("--mode=") and "@" in arg):
            raise Refused("--workers serves the one port of --listen-port; --mode ...@PORT is not")
    if port is None or not str(port).isdigit() or int(port) == 0:
        raise Refused("--workers needs a fixed port (GEMINI_CALO_HTTP_PORT or -p PORT)")
    return host, int(port)


def check_port_free(host: str, port: int) -> None:
    """Refuse a port something already holds: a socket without SO_REUSEPORT cannot bind where
    anyone listens, even a listener with SO_REUSEPORT (another launcher's workers), which the
    workers themselves would join without a word."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise Refused(
                    f"cannot listen on {host or '*'}:{port}: the port is in use; stop what holds "
                    "it or choose another port (-p PORT; GEMINI_CALO_HTTP_PORT)"
                ) from None
            raise Refused(f"cannot listen on {host or '*'}:{port}: {e.strerror or e}") from None


class Workers:
    """Starts, watches and stops the workers."""

    def __init__(self, count: int, mitm_args: list[str], metrics_dir: str):
        self.count = count
        self.argv = [sys.executable, "-c", WORKER_MAIN, *mitm_args]
        self.metrics_dir = metrics_dir
        self.procs: dict[int, subprocess.Popen] = {}
        self.started: dict[int, float] = {}
        self.young_deaths: dict[int, int] = {}
        self._on_fork = _death_signal()

    def start(self, number: int) -> None:
        env = {**os.environ, WORKER_ENV: str(number), MULTIPROC_ENV: self.metrics_dir}
        # preexec_fn beside the metrics thread: it calls one resolved C function, nothing else
        self.procs[number] = subprocess.Popen(self.argv, env=env, preexec_fn=self._on_fork)  # noqa: PLW1509
        self.started[number] = time.monotonic()

    def run(self) -> int:
        """Until Ctrl-C: restart workers that die. Returns the exit code."""
        launched = time.monotonic()
        for number in range(1, self.count + 1):
            self.start(number)
        while True:
            pid, status = os.wait()
            found = next((n for n, p in self.procs.items() if p.pid == pid), None)
            if found is None:
                continue
            number = found
            code = os.waitstatus_to_exitcode(status)
            self.procs[number].returncode = code
            _forget(pid, self.metrics_dir)
            if time.monotonic() - launched < YOUNG and code > 0:
                self.stop()  # a start that failed (it said why on stderr): all would, alike
                return code
            self.restart(number, pid, code)

    def restart(self, number: int, pid: int, code: int) -> None:
        young = time.monotonic() - self.started[number] < YOUNG
        deaths = self.young_deaths[number] = self.young_deaths.get(number, 0) + 1 if young else 0
        pause = min(MAX_PAUSE, 2.0 ** (deaths - 1)) if deaths else 0.0
        print(
            f"gemini-calo: worker {number} (pid {pid}) exited with code {code}; starting it "
            f"again{f' in {pause:g}s' if pause else ''}",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(pause)
        self.start(number)

    def stop(self) -> None:
        """SIGTERM to every worker still running, then SIGKILL to any that outlives STOP_WAIT."""
        alive = [p for p in self.procs.values() if p.returncode is None and p.poll() is None]
        for proc in alive:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT
        for proc in alive:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _death_signal() -> Callable[[], None] | None:
    """What a worker runs between fork and exec: ask for SIGTERM when the launcher dies, even
    killed outright, so no orphaned worker keeps serving the port (Linux prctl
    PR_SET_PDEATHSIG). Resolved here, in the launcher: the child only makes the call."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None
    return lambda: prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _forget(pid: int, metrics_dir: str) -> None:
    """A dead worker's live gauges leave the sum (its counters stay: they happened)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, metrics_dir)


def _stop_on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt


def serve(count: int, mitm_args: list[str], redis_url: str | None, metrics_listen: str | None):
    """Run `count` workers of mitmdump with `mitm_args`; returns the exit code."""
    if not redis_url:
        raise Refused(
            f"--workers {count} needs shared state: set GEMINI_CALO_REDIS_URL (state.redis_url) "
            "to a Redis or Valkey server, e.g. redis://127.0.0.1:6379/0"
        )
    check_port_free(*listen_address(mitm_args))
    metrics_dir = tempfile.mkdtemp(prefix="calo-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir  # for this process's prometheus_client, too
    listener = None
    if metrics_listen:
        listener = _serve_summed_metrics(metrics_listen, metrics_dir)
    workers = Workers(count, mitm_args, metrics_dir)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        return workers.run()
    except KeyboardInterrupt:  # Ctrl-C reached every worker too; SIGTERM only this process
        workers.stop()
        return 0
    finally:
        if listener is not None:
            listener.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve_summed_metrics(address: str, metrics_dir: str):
    from prometheus_client import CollectorRegistry, multiprocess

    from .metrics import listen

    registry = CollectorRegistry(auto_describe=False)
    multiprocess.MultiProcessCollector(registry, path=metrics_dir)
    return listen(address, registry)


def run_worker(mitm_args: list[str]) -> None:
    """A worker's process: mitmdump with its TCP listeners bound with SO_REUSEPORT."""
    from mitmproxy.tools.main import mitmdump

    from .mitm import share_listening_port

    share_listening_port()
    mitmdump(mitm_args)
