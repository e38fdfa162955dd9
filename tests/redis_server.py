"""A real redis-server for tests, on a free loopback port, with nothing kept on disk.

`RedisServer()` starts it (`stop()` / `start()` again on the same port: Redis down mid-run and
back); `redis_server` is the pytest fixture, which skips, naming what is missing, where the
distribution's redis-server is not installed (scripts/test installs it when it can).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.launch import free_port

BINARY = shutil.which("redis-server") or shutil.which("valkey-server")


def answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        args = [BINARY, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while not answers_ping(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # as a crash would: no goodbye to the clients
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def redis_server(tmp_path):
    if BINARY is None:
        pytest.skip("redis-server is not installed (scripts/test installs it with apt-get as root)")
    server = RedisServer(tmp_path)
    yield server
    server.stop()
