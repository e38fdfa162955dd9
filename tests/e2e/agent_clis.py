"""The real agent CLIs for end-to-end tests: Claude Code and Codex, installed once from npm at
pinned versions into <repo>/.cache/agent-clis (ignored by git; CALO_AGENT_CLIS_DIR moves it),
and run offline.

Offline means: HOME is a scratch folder, every variable that turns off telemetry, update checks
and other nonessential traffic is set, and HTTP(S)_PROXY points at a `Tripwire` that records
and refuses whatever tries to leave for another host (NO_PROXY keeps loopback direct), so a
test can assert that nothing but the proxy was called.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

from tests.e2e.launch import REPO, clean_env

CLAUDE_CODE = ("@anthropic-ai/claude-code", "2.1.332")
CODEX = ("@openai/codex", "0.169.0")
# CALO_AGENT_CLIS_DIR: a cache kept elsewhere (a CI machine's fresh clones can share one)
CACHE = Path(os.environ.get("CALO_AGENT_CLIS_DIR") or REPO / ".cache" / "agent-clis")
INSTALL_SECONDS = 600
RUN_SECONDS = 120


class Unavailable(Exception):
    """The CLIs cannot be had here (no node/npm, or npm cannot reach its registry)."""


def _bin(name: str) -> Path:
    return CACHE / "node_modules" / ".bin" / name


def _version_ok(name: str, version: str) -> bool:
    """The CLI runs and is that version (run with a HOME of its own: Codex writes there)."""
    home = CACHE / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = clean_env(HOME=str(home), CODEX_HOME=str(home))
    try:
        done = subprocess.run(
            [str(_bin(name)), "--version"],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and version in done.stdout


def _installed() -> bool:
    return _version_ok("claude", CLAUDE_CODE[1]) and _version_ok("codex", CODEX[1])


def install() -> dict[str, Path]:
    """{"claude": path, "codex": path}, installed unless the cache already has these versions.
    A lock keeps two test runs of one checkout from installing at once."""
    if not (shutil.which("node") and shutil.which("npm")):
        raise Unavailable("node and npm are not installed")
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _installed():
            _npm_install()
        if not _version_ok("claude", CLAUDE_CODE[1]):
            _claude_postinstall()
        if not _installed():
            raise Unavailable(f"the CLIs in {CACHE} do not run after installing them")
    return {"claude": _bin("claude"), "codex": _bin("codex")}


def _npm_install() -> None:
    packages = [f"{name}@{version}" for name, version in (CLAUDE_CODE, CODEX)]
    env = clean_env(npm_config_update_notifier="false", npm_config_fund="false")
    try:
        done = subprocess.run(
            ["npm", "install", "--prefix", str(CACHE), "--no-audit", "--no-save", *packages],
            check=False,
            capture_output=True,
            text=True,
            timeout=INSTALL_SECONDS,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise Unavailable("npm install took too long (offline?)") from None
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.startswith("npm error")]
        raise Unavailable(f"npm install failed (offline?): {'; '.join(errors[:4])[:300]}")


def _claude_postinstall() -> None:
    """Claude Code's package puts its native binary in place with a postinstall script, which
    an npm that holds back install scripts may not have run."""
    script = CACHE / "node_modules" / CLAUDE_CODE[0] / "install.cjs"
    if script.exists():
        subprocess.run(
            ["node", str(script)], check=False, cwd=script.parent, capture_output=True, timeout=120
        )


class Tripwire:
    """An HTTP proxy that answers 403 to everything and records what was asked (CONNECT
    host:port, or the absolute URL): the CLIs' way out to any host but loopback."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        tripwire = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def refuse(self) -> None:
                tripwire.asked.append(f"{self.command} {self.path}")
                self.send_error(403, "tests: no traffic leaves the machine")

            do_CONNECT = do_GET = do_POST = do_PUT = do_HEAD = refuse

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


QUIET = {
    # Claude Code: no telemetry, error reports, update checks or other nonessential traffic
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_BUG_COMMAND": "1",
    "CLAUDE_CODE_ENABLE_TELEMETRY": "0",
    # npm-installed tools in general (Codex's own switches are in its config.toml)
    "NO_UPDATE_NOTIFIER": "1",
    "DO_NOT_TRACK": "1",
    "NO_COLOR": "1",
}
# Variables that would give a CLI a real key or another endpoint: never passed on.
_FOREIGN = ("ANTHROPIC_", "OPENAI_", "CODEX_", "CLAUDE_", "AWS_", "GEMINI_", "GOOGLE_")


def cli_env(home: Path, tripwire: Tripwire, **extra: str) -> dict[str, str]:
    """The environment a CLI runs in: scratch HOME, quiet, every other host behind the
    tripwire, none of the caller's API variables, plus `extra`."""
    env = {k: v for k, v in clean_env().items() if not k.startswith(_FOREIGN)}
    env.update(QUIET)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = tripwire.url
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), **extra)
    return env


def run_claude(claude: Path, cwd: Path, env: dict[str, str], prompt: str) -> dict:
    """`claude -p PROMPT --output-format json`: its result object."""
    done = subprocess.run(
        [str(claude), "-p", prompt, "--output-format", "json", "--max-turns", "4"]
        + ["--allowedTools", "Read"],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"claude failed ({done.returncode}): {done.stderr[-2000:]}"
    return json.loads(done.stdout)


def codex_config(home: Path, proxy_url: str, model: str, key_variable: str) -> None:
    """~/.codex/config.toml: a model provider that is the proxy; nothing that calls home."""
    (home / ".codex").mkdir(parents=True, exist_ok=True)
    (home / ".codex" / "config.toml").write_text(
        f"""model = "{model}"
model_provider = "calo"
check_for_update_on_startup = false

[analytics]
enabled = false

[features]
plugins = false
apps = false
in_app_updates = false

[model_providers.calo]
name = "calo proxy"
base_url = "{proxy_url}/v1"
env_key = "{key_variable}"
wire_api = "responses"
"""
    )


def run_codex(codex: Path, cwd: Path, env: dict[str, str], prompt: str) -> tuple[list, str]:
    """`codex exec --skip-git-repo-check --json PROMPT` in a workspace-write sandbox: (its
    JSONL events, its last message)."""
    last = cwd.parent / f"{cwd.name}-last-message.txt"
    done = subprocess.run(
        [str(codex), "exec", "--skip-git-repo-check", "--json", "-s", "workspace-write"]
        + ["-o", str(last), prompt],
        check=False,
        cwd=cwd,
        env={**env, "CODEX_HOME": env.get("CODEX_HOME", os.path.join(env["HOME"], ".codex"))},
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"codex failed ({done.returncode}): {done.stderr[-2000:]}"
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return events, last.read_text() if last.exists() else ""
