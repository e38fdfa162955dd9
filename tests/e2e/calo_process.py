"""`gemini-calo` run as a user runs it (the console script), for end-to-end tests: on a free
loopback port, its output read as it comes, its call log at hand."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from pathlib import Path

from tests.e2e.launch import BIN, clean_env, free_port


class CaloProcess:
    def __init__(self, cwd: Path, env: dict[str, str], args: list[str] = (), port: int = 0):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics = f"127.0.0.1:{free_port()}"
        self.log = cwd / "calo.log"
        full = clean_env(
            GEMINI_CALO_HTTP_PORT=str(self.port),
            GEMINI_CALO_METRICS_LISTEN=self.metrics,
            GEMINI_CALO_LOG_FILE=str(self.log),
            GEMINI_CALO_LOG_LEVEL="INFO",
            **env,
        )
        argv = [str(BIN / "gemini-calo"), *args, "--listen-host", "127.0.0.1"]
        argv += ["--set", f"confdir={cwd / 'mitm'}"]
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line)

    def said(self, text: str) -> int:
        return sum(text in line for line in self.output)

    def records(self) -> list[dict]:
        """The call lines of its log so far."""
        if not self.log.exists():
            return []
        lines = [json.loads(x) for x in self.log.read_text().splitlines() if x.strip()]
        return [x for x in lines if x.get("kind") == "call"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # Ctrl-C
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
