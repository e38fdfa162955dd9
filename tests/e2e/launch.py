"""Starts the real proxy (mitmdump or mitmweb with the addon) on loopback for end-to-end tests."""

from __future__ import annotations

import datetime
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "calo_addon" / "__init__.py"
BIN = Path(sys.executable).parent
_LISTENING = re.compile(r"listening at (?:\w+://)?\[?([0-9a-f.:]+?)\]?:(\d+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, seconds: float = 15.0) -> bool:
    """Poll `predicate` until it holds or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def now_iso() -> str:
    """Now as the call log writes its "time" (ISO 8601, UTC, milliseconds): comparable as text."""
    moment = datetime.datetime.now(datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_test_started = {"time": ""}


@pytest.fixture(autouse=True)
def _mark_test_start():
    """Remember when the current test began: `Proxy.api_log_lines` reads that test's lines."""
    _test_started["time"] = now_iso()


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without GEMINI_CALO_* and proxy variables, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GEMINI_CALO_") and k.lower() not in _PROXY_VARS
    }
    env.update(extra)
    return env


_PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


class Proxy:
    """A running proxy. `ports` has one port per listener, in the order of `modes`."""

    def __init__(
        self,
        cwd: Path,
        env: dict[str, str],
        modes: list[str],
        args: list[str] = (),
        tool: str = "mitmdump",
        script: Path = SCRIPT,
    ):
        self.cwd = cwd
        self.log_path = cwd / "calo.log"
        self.confdir = cwd / "mitm"
        self.ca_cert = self.confdir / "mitmproxy-ca-cert.pem"
        full_env = clean_env(GEMINI_CALO_LOG_FILE=str(self.log_path), GEMINI_CALO_LOG_LEVEL="INFO")
        full_env.update(env)
        command = [str(BIN / tool), "-s", str(script), "--listen-host", "127.0.0.1"]
        for mode in modes:
            command += ["--mode", mode]
        if len(modes) == 1 and "@" not in modes[0]:
            command += ["-p", "0"]
        command += ["--set", "connection_strategy=lazy", "--set", f"confdir={self.confdir}", *args]
        self.proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        self.ports: list[int] = []
        lines = self._lines()
        deadline = time.monotonic() + 30
        while len(self.ports) < len(modes) and time.monotonic() < deadline:
            line = next(lines, None)
            if line is None:
                break
            match = _LISTENING.search(line)
            if match and not line.lstrip("[0123456789.:] ").startswith("Web server"):
                self.ports.append(int(match.group(2)))
        if len(self.ports) < len(modes):
            self.stop()
            raise RuntimeError("proxy did not start:\n" + "".join(self.output))
        threading.Thread(target=lambda: [None for _ in lines], daemon=True).start()
        self.port = self.ports[0]
        self.url = f"http://127.0.0.1:{self.port}"

    def _lines(self):
        for line in self.proc.stdout:
            self.output.append(line)
            yield line

    def read_log_lines(self) -> list[dict]:
        """The call log's complete lines as they are in the file now."""
        if not self.log_path.exists():
            return []
        text = self.log_path.read_text()
        return [json.loads(x) for x in text[: text.rfind("\n") + 1].splitlines() if x.strip()]

    def api_log_lines(
        self, count: int = 1, where: Callable[[dict], bool] = lambda line: True
    ) -> list[dict]:
        """The API call lines the current test caused (written since it began) that match
        `where`, once there are at least `count` of them (or after 15 s, as they are).

        A call's line is written when its answer is complete and reaches the file up to
        calllog.FLUSH_AFTER later, so a test waits for the lines it expects, never a guess."""
        since = _test_started["time"]

        def found() -> list[dict]:
            return [
                line
                for line in self.read_log_lines()
                if "api" in line and line["time"] >= since and where(line)
            ]

        wait_for(lambda: len(found()) >= count)
        return found()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="module")
def proxy_launcher():
    """launch(cwd, env, mode_or_modes, args=(), tool="mitmdump") -> Proxy; all stopped at the end."""
    started: list[Proxy] = []

    def launch(cwd: Path, env: dict, modes, args=(), **kw) -> Proxy:
        started.append(
            Proxy(cwd, env, [modes] if isinstance(modes, str) else list(modes), list(args), **kw)
        )
        return started[-1]

    yield launch
    for proxy in started:
        proxy.stop()
