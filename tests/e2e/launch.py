"""Starts the real proxy (mitmdump or mitmweb with the addon) on loopback for end-to-end tests."""

from __future__ import annotations

import asyncio
import datetime
import io
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
from typing import Self
from urllib.parse import quote

import httpx
import pytest
from mitmproxy.io import FlowReader
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

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
        self._reader = threading.Thread(target=lambda: [None for _ in lines], daemon=True)
        self._reader.start()
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
        """SIGTERM (mitmproxy shuts down cleanly: `-w` and HAR files are complete), then wait
        for the process and for the last line of its output."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader.join(5)


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


# ---------------------------------------------------------------- what a proxy stored

WEB_PASSWORD = "calo-e2e-web"


def web_args(port: int, password: str = WEB_PASSWORD) -> list[str]:
    """mitmweb options for a test: loopback, a fixed port and password, no browser."""
    return [
        *("--set", "web_open_browser=false", "--set", f"web_port={port}"),
        *("--set", "web_host=127.0.0.1", "--set", f"web_password={password}"),
    ]


def read_flows(source: Path | bytes) -> list:
    """Every flow in a `-w` file (or bytes from mitmweb's /flows/dump), as mitmproxy reads it."""
    data = source.read_bytes() if isinstance(source, Path) else source
    return list(FlowReader(io.BytesIO(data)).stream())


def stored_texts(flow) -> list[str]:
    """Every field of a stored flow as text: its whole state (URL, headers, metadata, comment,
    error) and its bodies both as stored and decoded, so a secret anywhere is found."""
    texts = [repr(flow.get_state())]
    for message in (getattr(flow, "request", None), getattr(flow, "response", None)):
        if message is not None and message.raw_content:
            texts.append(message.raw_content.decode("latin-1"))
            decoded = message.get_content(strict=False) or b""
            texts.append(decoded.decode("latin-1"))
    return texts


def secret_hits(secrets, texts) -> list[tuple[str, str]]:
    """(secret, where) for every secret found in any text (also percent-encoded)."""
    hits = []
    for text in texts:
        for secret in secrets:
            forms = {secret, quote(secret, safe="")}
            if any(form in text for form in forms):
                start = max(0, min(text.find(f) for f in forms if f in text) - 80)
                hits.append((secret, text[start : start + 200]))
    return hits


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


class WebView:
    """mitmweb's HTTP API as its own front end uses it, authenticated with the web password."""

    def __init__(self, port: int, password: str = WEB_PASSWORD):
        self.port, self.password = port, password
        if not wait_for(lambda: _accepts(port)):  # mitmweb may announce its proxy first
            raise RuntimeError(f"mitmweb's web server does not answer on port {port}")
        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {password}"},
            timeout=10,
        )

    def flows(self) -> list[dict]:
        """/flows: the JSON the flow list shows."""
        return self.http.get("/flows").json()

    def dump(self) -> list:
        """/flows/dump: every stored flow, whole, read back with FlowReader."""
        return read_flows(self.http.get("/flows/dump").content)

    def content(self, flow_id: str, message: str) -> bytes:
        answer = self.http.get(f"/flows/{flow_id}/{message}/content.data")
        return answer.content if answer.status_code == 200 else b""

    def texts(self) -> list[str]:
        """Everything mitmweb shows of every flow: /flows, each body, and /flows/dump."""
        flows = self.flows()
        texts = [json.dumps(flows)]
        for flow in flows:
            for message in ("request", "response"):
                texts.append(self.content(flow["id"], message).decode("latin-1"))
        texts += [text for flow in self.dump() for text in stored_texts(flow)]
        return texts

    def post(self, path: str, payload=None) -> httpx.Response:
        """A POST as mitmweb's front end sends it (with the XSRF cookie and token)."""
        if "_mitmproxy_xsrf" not in self.http.cookies:
            self.http.get("/updates")  # sets the XSRF cookie
        answer = self.http.post(
            path,
            json=payload,
            headers={"X-XSRFToken": self.http.cookies.get("_mitmproxy_xsrf") or ""},
        )
        answer.raise_for_status()
        return answer

    def command(self, name: str, *arguments: str):
        """Run a mitmproxy command as mitmweb's command bar does."""
        return self.post(f"/commands/{name}", {"arguments": list(arguments)}).json()["value"]

    def updates(self) -> Updates:
        return Updates(self.port, self.password)


class Updates:
    """mitmweb's /updates websocket, read in its own thread: every message, as text.
    A context manager; `messages` grows as mitmweb sends."""

    def __init__(self, port: int, password: str):
        self.url = f"ws://127.0.0.1:{port}/updates"
        self.password = password
        self.messages: list[str] = []
        self._connected = threading.Event()
        self._loop = None
        self._connection = None

    def __enter__(self) -> Self:
        threading.Thread(target=self._run, daemon=True).start()
        if not self._connected.wait(10) or self._connection is None:
            raise RuntimeError("mitmweb's /updates websocket did not open")
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None and self._connection is not None:
            self._loop.call_soon_threadsafe(self._connection.close)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._read())

    async def _read(self) -> None:
        request = HTTPRequest(self.url, headers={"Authorization": f"Bearer {self.password}"})
        try:
            self._connection = await websocket_connect(request)
        finally:
            self._connected.set()
        while (message := await self._connection.read_message()) is not None:
            self.messages.append(message if isinstance(message, str) else message.decode())
