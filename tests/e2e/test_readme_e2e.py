"""Every command and SDK example the README shows works as printed.

Each ```sh block runs as one shell session would (its `export`s last until the block ends), each
command quoted inline in the prose runs on its own, and each Python example runs against the
proxy the minimal start runs. The README's ports become free loopback ports, its upstreams
local fakes (tests/fake_llm.py) behind a Google that is out of reach (as offline: only base_url,
pointed at a fake, may answer), and HOME a temporary directory; a `# NAME.yaml` block is written
where the commands run. A command that starts the proxy must print its "listening at" lines and
each reverse listener must answer /health; a curl must get a 2xx JSON answer from the proxy. A
command the test does not know how to run fails it, unless DOC_ONLY says why it cannot run here
(PYTHON_ELSEWHERE for Python): the README cannot gain a command that nobody ran.
"""

from __future__ import annotations

import json
import queue
import re
import shlex
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from calo_addon import config as cfg
from tests.e2e.launch import BIN, REPO, clean_env, free_port
from tests.fake_llm import FakeLLM

README = REPO / "README.md"
GOOGLE = "https://generativelanguage.googleapis.com"
OFFLINE = free_port()  # nothing listens there: a connection to it is refused

# What a reader has after the README's minimal start (its first `export`s).
BASE_ENV = {
    "GEMINI_CALO_API_KEYS": "AIaYourGeminiKey1,AIaYourGeminiKey2",
    "GEMINI_CALO_PROXY_API_KEYS": "team-key-1",
}

# Commands shown but not run here, each with the reason.
DOC_ONLY = {
    "scripts/test": "runs this very suite",
    "scripts/test tests/e2e -k stream": "runs part of this very suite",
    ".ci/run": "CI's entry point: it is scripts/test",
    "python my_bedrock_app.py": "stands for the reader's own program",
    "mitmdump -s mine_before.py -s calo_addon/__init__.py -s mine_after.py": (
        "mine_before.py and mine_after.py stand for the reader's own addons"
    ),
    ".venv/bin/python scripts/bench_core.py": "a benchmark: minutes of load, never asserted",
    ".venv/bin/python scripts/bench_rollup.py": "a benchmark: minutes of load, never asserted",
    ".venv/bin/python scripts/load_test.py": "a load test: minutes of load, never asserted",
    ".venv/bin/python scripts/bench_translate.py": "a benchmark: minutes of load, never asserted",
    "scripts/lock": "rewrites constraints.txt from the package index",
    "scripts/lock --upgrade": "rewrites constraints.txt from the package index",
    "pip install -c constraints.txt -e '.[dev]'": "what scripts/test runs on every change",
    "claude -p 'Summarise README.md' --output-format json": "run by test_agent_clis_e2e.py",
    "codex exec --skip-git-repo-check 'Add a test for the parser'": (
        "run by test_agent_clis_e2e.py"
    ),
    ".venv/bin/python scripts/bench_scale.py": "a benchmark: minutes of load, never asserted",
    "curl http://localhost:9464/metrics": (
        "Prometheus text, not JSON: test_metrics_e2e.py scrapes /metrics and parses it"
    ),
    "haproxy -f haproxy.cfg": (
        "the balancer of the several-machines example: test_several_machines_e2e.py runs it "
        "with this README's haproxy.cfg, two instances and one Redis"
    ),
}

# Python examples not run here, by a line that marks them, with the reason.
PYTHON_ELSEWHERE = {
    "# my_proxy.py": "run by test_ways_to_run_e2e.py::test_readme_python_api_example_runs",
    "boto3.client(": (
        "its upstream is AWS itself; test_bedrock_e2e.py drives boto3 the same way, and "
        "test_boto3_example_uses_a_proxy_aws_credentials_id_the_yaml_defines checks its key"
    ),
}

LAUNCHERS = ("scripts/start", "gemini-calo", ".venv/bin/gemini-calo", "python -m calo_addon")
TOOLS = ("mitmdump", "mitmweb", ".venv/bin/mitmdump", ".venv/bin/mitmweb")
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_INLINE = re.compile(r"`([^`\n]+)`")
_COMMAND_WORD = re.compile(
    r"^(?:[A-Z_]+=\S+ +)*(?:scripts/|\.venv/bin/|\.ci/|gemini-calo\b|python\b|pip\b|"
    r"mitmdump\b|mitmweb\b|mitmproxy\b|curl\b|export\b)"
)
_PROGRAM_NAMES = {"mitmdump", "mitmweb", "mitmproxy", "python", "curl", "pip"}
_LISTENING = re.compile(r"listening at \S*?:(\d+)")
_HOST_PORT = re.compile(r"\b(?:localhost|127\.0\.0\.1|host):(?P<host_port>\d+)")
_AT_PORT = re.compile(r"@(?P<at_port>\d+)\b")


# ---------------------------------------------------------------- reading the README


@dataclass
class Block:
    name: str
    commands: list[str]


def normalise(command: str) -> str:
    """A command as one line: continuations joined, comment and extra spaces dropped."""
    return shlex.join(shlex.split(command, comments=True))


def readme_blocks(text: str) -> list[Block]:
    """Each sh block as one session, then each inline command not already in one."""
    blocks, seen = [], set()
    for fence in _FENCE.finditer(text):
        lang, body = fence.groups()
        if lang != "sh":
            continue
        lines = [normalise(line) for line in body.replace("\\\n", " ").splitlines()]
        commands = [line for line in lines if line]
        seen.update(commands)
        heading = re.findall(r"^## (.+)$", text[: fence.start()], re.MULTILINE)[-1]
        blocks.append(Block(f"{heading}: {commands[0][:50]}", commands))
    prose = _FENCE.sub("", text)
    for span in _INLINE.findall(prose):
        if not _COMMAND_WORD.match(span) or span in _PROGRAM_NAMES or span.endswith("/"):
            continue  # not a command line: a program or a directory named in the prose
        command = normalise(span)
        if command not in seen:
            seen.add(command)
            blocks.append(Block(f"inline:{command[:60]}", [command]))
    return blocks


def named_yaml(text: str) -> dict[str, str]:
    """The yaml blocks whose first line names a file (`# local.yaml`)."""
    files = {}
    for lang, body in _FENCE.findall(text):
        first = body.splitlines()[0] if body else ""
        if lang == "yaml" and re.fullmatch(r"# [\w.-]+\.ya?ml", first):
            files[first[2:]] = body
    return files


BLOCKS = readme_blocks(README.read_text())
PYTHON = [body for lang, body in _FENCE.findall(README.read_text()) if lang == "python"]
RUNNABLE_PYTHON = [b for b in PYTHON if not any(mark in b for mark in PYTHON_ELSEWHERE)]


# ---------------------------------------------------------------- running one block


@dataclass
class Session:
    """One shell session in a temporary directory, with the README's ports and hosts swapped."""

    cwd: Path
    env: dict[str, str]
    ports: dict[int, int]
    upstreams: dict[str, str]
    proxies: list[subprocess.Popen] = field(default_factory=list)

    def swap(self, text: str) -> str:
        """Upstream URLs become their fakes and README ports loopback ones, in one pass."""

        def one(match: re.Match[str]) -> str:
            if match.group("url"):
                return self.upstreams[match.group("url")]
            if match.group("host_port"):
                return f"127.0.0.1:{self.port(match.group('host_port'))}"
            return f"@{self.port(match.group('at_port'))}"

        urls = "|".join(re.escape(url) for url in self.upstreams)
        pattern = rf"(?P<url>{urls})|{_HOST_PORT.pattern}|{_AT_PORT.pattern}"
        return re.sub(pattern, one, text)

    def port(self, readme_port: str) -> int:
        assert int(readme_port) in self.ports, (
            f"README port {readme_port}: teach test_readme_e2e.py what it stands for"
        )
        return self.ports[int(readme_port)]

    def run(self, command: str) -> None:
        if command in DOC_ONLY:
            for word in shlex.split(command):  # the repository's own paths must still exist
                if "/" in word and not word.startswith(("-", ".venv/", "http")):
                    assert (REPO / word).exists(), f"{command}: no {word}"
            return
        words = shlex.split(self.swap(command))
        env = dict(self.env)
        if words[0] == "export":
            env_assignments(words[1:], self.env)
            return
        while words and re.match(r"^[A-Z_]+=", words[0]):
            env_assignments(words[:1], env)
            words = words[1:]
        line = " ".join(words)
        if line.startswith(LAUNCHERS) or words[0] in TOOLS:
            self.start(words, env)
        elif words[0] == "curl":
            self.curl(words, env)
        else:
            pytest.fail(
                f"the README shows a command this test cannot run: {command!r}; teach "
                "tests/e2e/test_readme_e2e.py to run it, or add it to DOC_ONLY with the reason"
            )

    def start(self, words: list[str], env: dict[str, str]) -> None:
        """Start a proxy in place of the block's previous one (the README's starts are
        alternatives, each followed by the calls made to it)."""
        self.stop()
        command, expected = self.argv(words, env)
        proc = subprocess.Popen(
            command,
            cwd=self.cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.proxies.append(proc)
        listeners = listening_ports(proc, expected)
        assert {port for port, _ in listeners} <= set(self.ports.values()), listeners
        for port, reverse in listeners:  # usable, not only listening: Google is out of reach
            if reverse:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=30)
                assert health.json() == {"status": "ok"}, health.text

    def argv(self, words: list[str], env: dict[str, str]) -> tuple[list[str], int]:
        """The command with absolute paths, loopback only and free ports; and its listeners."""
        program, args = words[0], words[1:]
        web = "--web" in args or program.endswith("mitmweb")
        if program == "python":
            program = str(BIN / "python")
        elif program == "scripts/start":
            program = str(REPO / program)
        else:
            program = str(BIN / Path(program).name)
        args = [str(REPO / a) if a == "calo_addon/__init__.py" else a for a in args]
        modes = sum(a == "--mode" for a in args)
        has_port = any(_AT_PORT.search(a) for a in args) or "-p" in args
        if not program.endswith(("mitmdump", "mitmweb")):
            env.setdefault("GEMINI_CALO_HTTP_PORT", str(self.ports[8000]))
        elif not has_port:
            args += ["-p", str(self.ports[8080])]  # mitmproxy's own default
        args += ["--listen-host", "127.0.0.1"]
        if web:
            args += ["--set", f"web_port={self.ports[8081]}", "--set", "web_open_browser=false"]
        return [program, *args], max(modes, 1)

    def curl(self, words: list[str], env: dict[str, str]) -> None:
        if not self.proxies:
            self.start(["scripts/start"], dict(env))  # the proxy the minimal start runs
        result = subprocess.run(
            ["curl", "-sS", "--fail-with-body", "--max-time", "30", *words[1:]],
            cwd=self.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        json.loads(result.stdout)

    def stop(self) -> None:
        for proc in self.proxies:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.proxies.clear()


def env_assignments(words: list[str], env: dict[str, str]) -> None:
    """NAME=value words into `env`, with ~ as the session's HOME."""
    for word in words:
        name, _, value = word.partition("=")
        env[name] = env["HOME"] + value[1:] if value.startswith("~/") else value


def listening_ports(
    proc: subprocess.Popen, expected: int, seconds: float = 60
) -> list[tuple[int, bool]]:
    """(port, is reverse) of the first `expected` "listening at" lines (mitmweb's UI aside)."""
    lines: queue.Queue[str | None] = queue.Queue()
    output: list[str] = []

    def read() -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    ports: list[tuple[int, bool]] = []
    deadline = time.monotonic() + seconds
    while len(ports) < expected:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        output.append(line)
        match = _LISTENING.search(line)
        if match and "Web server" not in line:
            ports.append((int(match.group(1)), "reverse proxy" in line))
    assert len(ports) == expected, "did not start:\n" + "".join(output)
    return ports


# ---------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def fakes():
    """A Gemini-speaking upstream (Google, base_url) and an OpenAI-compatible one (Ollama)."""
    with FakeLLM() as gemini, FakeLLM() as local:
        yield gemini, local


def new_session(tmp_path: Path, fakes) -> Session:
    gemini, local = fakes
    home = tmp_path / "home"
    home.mkdir()
    return Session(
        cwd=tmp_path,
        env=clean_env(HOME=str(home), GEMINI_CALO_BASE_URL=gemini.url, **BASE_ENV),
        ports={
            8000: free_port(),  # the proxy (GEMINI_CALO_HTTP_PORT's default)
            8080: free_port(),  # mitmproxy's default port: the explicit proxy
            8081: free_port(),  # mitmweb's UI
            9000: gemini.port,  # a local server speaking Gemini's API
            11434: local.port,  # Ollama
        },
        upstreams={GOOGLE: f"http://127.0.0.1:{OFFLINE}"},  # as unreachable as Google offline
    )


@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_readme_command_runs_as_printed(block, tmp_path, fakes):
    local = fakes[1]
    local.clear()
    session = new_session(tmp_path, fakes)
    for name, body in named_yaml(README.read_text()).items():
        (tmp_path / name).write_text(session.swap(body))
    try:
        for command in block.commands:
            session.run(command)
    finally:
        session.stop()
    # what reached the Ollama stand-in is what Ollama serves: OpenAI's own /v1/ paths
    assert all(r.path.startswith("/v1/") for r in local.requests), [r.path for r in local.requests]


@pytest.mark.parametrize(
    "example", RUNNABLE_PYTHON, ids=[b.splitlines()[0][:40] for b in RUNNABLE_PYTHON]
)
def test_readme_python_example_runs_against_the_minimal_start(example, tmp_path, fakes):
    """Each SDK example, pointed at the proxy the minimal start runs, gets its answer."""
    session = new_session(tmp_path, fakes)
    (tmp_path / "example.py").write_text(session.swap(example))
    try:
        session.start(["scripts/start"], dict(session.env))
        result = subprocess.run(
            [str(BIN / "python"), "example.py"],
            cwd=tmp_path,
            env=session.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        session.stop()
    assert result.returncode == 0, result.stdout + result.stderr


def test_doc_only_commands_are_still_in_the_readme():
    shown = {command for block in BLOCKS for command in block.commands}
    assert set(DOC_ONLY) <= shown, set(DOC_ONLY) - shown
    for mark in PYTHON_ELSEWHERE:
        assert sum(mark in example for example in PYTHON) == 1, mark


def test_the_readme_runs_commands_of_every_kind():
    """The parser finds what it should: a broken fence pattern must not pass as 'nothing to run'."""
    shown = [command for block in BLOCKS for command in block.commands]
    for start in ("scripts/start", "mitmdump", "mitmweb", "gemini-calo", "curl", "export"):
        assert any(c.startswith(start) and c not in DOC_ONLY for c in shown), start


def test_every_yaml_example_is_a_valid_configuration(tmp_path):
    """Each YAML block loads, with its ${VARS} set and the global keys from the minimal start."""
    for i, (lang, body) in enumerate(_FENCE.findall(README.read_text())):
        if lang != "yaml":
            continue
        path = tmp_path / f"example{i}.yaml"
        path.write_text(body)
        env = {name: "x" for name in re.findall(r"\$\{(\w+)\}", body)}
        cfg.load_settings(str(path), {**env, **BASE_ENV})


def test_boto3_example_uses_a_proxy_aws_credentials_id_the_yaml_defines():
    text = README.read_text()
    (key_id,) = re.findall(r'aws_access_key_id="(\w+)"', text)
    (secret_var,) = re.findall(r'aws_secret_access_key=os\.environ\["(\w+)"\]', text)
    credentials = [
        yaml.safe_load(body)["proxy_aws_credentials"]
        for lang, body in _FENCE.findall(text)
        if lang == "yaml" and "proxy_aws_credentials" in body
    ]
    assert credentials and all(c == {key_id: f"${{{secret_var}}}"} for c in credentials)
