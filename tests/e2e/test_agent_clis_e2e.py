"""Claude Code and Codex, unchanged, through the real proxy to our fakes, offline.

Claude Code (`claude -p`, Anthropic Messages) and Codex (`codex exec`, OpenAI Responses) are
served by the Gemini 3-like fake (native Gemini, which refuses a function call that comes back
without its thought signature) and by the strict, SigV4-checking Bedrock fake (InvokeModel for
Claude Code, Converse for Codex). Each CLI answers from the fake, runs a harmless tool in a
scratch folder when the fake asks for one (Claude Code's Read; Codex's shell and apply_patch)
and sends its result back. The CLIs hold only a proxy key; only the fake sees the real keys,
and nothing tries any other host (tests/e2e/agent_clis.py: the tripwire).

Skipped, with the reason, where node/npm are missing or npm cannot install the pinned CLIs;
CALO_SKIP_AGENT_CLIS=1 skips it too (about 40 s the first time, for the install).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.agent_clis import (
    INSTALL_SECONDS,
    Tripwire,
    Unavailable,
    cli_env,
    codex_config,
    install,
    run_claude,
    run_codex,
)
from tests.e2e.launch import Proxy, wait_for
from tests.fake_bedrock import FakeBedrock
from tests.fake_gemini import FakeGemini
from tests.fake_server import Reply

pytestmark = [pytest.mark.agent_cli, pytest.mark.timeout(INSTALL_SECONDS + 300)]

PROXY_KEY = "proxy-key-for-agents"
GEMINI_KEY = "real-gemini-key-agents"
AKID, AWS_SECRET = "AKIDAGENTSROUTE", "real-aws-secret-agents"
SECRETS = (GEMINI_KEY, AWS_SECRET)
GEMINI_MODEL = "gemini-3-pro-preview"
BEDROCK_CLAUDE = "anthropic.claude-sonnet-4-5-20250929-v1:0"
CODEX_MODEL = "gpt-5.5"
SECRET_WORD = "pelican"
PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hello from the fake\n*** End Patch\n"


def route(kind: str, fake_url: str, model: str) -> str:
    if kind == "gemini":
        return f"""
    url: {fake_url}
    api: gemini
    model: {model}
    api_keys: [{GEMINI_KEY}]"""
    return f"""
    url: {fake_url}
    auth: sigv4
    aws: {{access_key: {AKID}, secret_key: {AWS_SECRET}, region: us-west-2}}
    model: {model}"""


def config(kind: str, fake_url: str) -> str:
    """The README's examples: claude-* and gpt-* mapped to one upstream's model."""
    model = GEMINI_MODEL if kind == "gemini" else BEDROCK_CLAUDE
    return f"""
base_url: {fake_url}
api_keys: [{GEMINI_KEY}]
proxy_api_keys: [{PROXY_KEY}]
rollup: {{enabled: false}}
model_routes:
  "claude-*":{route(kind, fake_url, model)}
  "gpt-*":{route(kind, fake_url, model)}
"""


@dataclass
class Served:
    kind: str  # "gemini" | "bedrock"
    fake: FakeGemini | FakeBedrock
    proxy: Proxy

    @property
    def upstream_model(self) -> str:
        return GEMINI_MODEL if self.kind == "gemini" else BEDROCK_CLAUDE


@pytest.fixture(scope="module")
def clis() -> dict[str, Path]:
    if os.environ.get("CALO_SKIP_AGENT_CLIS"):
        pytest.skip("CALO_SKIP_AGENT_CLIS is set")
    try:
        return install()
    except Unavailable as reason:
        pytest.skip(f"agent CLIs unavailable: {reason}")


@pytest.fixture(scope="module")
def tripwire():
    with Tripwire() as tripwire:
        yield tripwire


@pytest.fixture(scope="module", params=["gemini", "bedrock"])
def served(request, clis, tmp_path_factory, proxy_launcher):
    kind = request.param
    fake = (
        FakeGemini(keys={GEMINI_KEY})
        if kind == "gemini"
        else FakeBedrock({AKID: AWS_SECRET}, strict=True)
    )
    with fake:
        tmp = tmp_path_factory.mktemp(f"agents-{kind}")
        (tmp / "calo.yaml").write_text(config(kind, fake.url))
        proxy = proxy_launcher(tmp, {}, f"reverse:{fake.url}")
        yield Served(kind, fake, proxy)
        proxy.stop()


@pytest.fixture
def scratch(tmp_path: Path) -> tuple[Path, Path]:
    """(HOME, the working folder with notes.txt) for one CLI run."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (work / "notes.txt").write_text(f"the secret word is {SECRET_WORD}\n")
    return home, work


# ---------------------------------------------------------------- helpers


def call_lines(proxy: Proxy) -> list[dict]:
    if not proxy.log_path.exists():
        return []
    lines = [json.loads(x) for x in proxy.log_path.read_text().splitlines() if x.strip()]
    return [line for line in lines if line.get("kind") == "call"]


class Watch:
    """What one CLI run made the fake receive and the proxy log; `replies` are the fake's
    script for it (what an earlier failed test left is dropped)."""

    def __init__(self, served: Served, *replies: Reply):
        self.served = served
        served.fake.scripted[:] = replies
        self._requests = len(served.fake.requests)
        self._lines = len(call_lines(served.proxy))

    def requests(self) -> list:
        return self.served.fake.requests[self._requests :]

    def lines(self) -> list[dict]:
        """The call lines of this run, once there is one per upstream request."""

        def logged() -> list[dict]:
            return call_lines(self.served.proxy)[self._lines :]

        wait_for(lambda: len(logged()) >= len(self.requests()), 10)
        return logged()


ADVISORY = {"anthropic": "context_management", "responses": "store"}  # SPEC 10: dropped


def assert_translated(lines: list[dict], client: str, served: Served, requested: str) -> None:
    """One streamed, translated call per turn, logged with both model names and with the
    advisory fields the CLI sent that the upstream has no place for."""
    assert lines
    for line in lines:
        assert line["status"] == 200 and line["streaming"] is True, line
        assert line["api"] == client and line["upstream_api"] == served.kind
        assert line["translated"].endswith(f"{client} -> {served.kind}")
        assert line["upstream_model"] == served.upstream_model
        assert line["requested_model"].startswith(requested), line["requested_model"]
        assert line["usage"]["output_tokens"] > 0
        assert ADVISORY[client] in line["dropped"]


def assert_keys_stayed_put(watch: Watch, tripwire: Tripwire, *folders: Path) -> None:
    """The fake got the real credentials and never the proxy key; nothing went anywhere else;
    no real secret reached the CLI's files (answers, transcripts) or the proxy's log."""
    assert tripwire.asked == []
    for request in watch.requests():
        assert (
            PROXY_KEY not in json.dumps(request.headers) and PROXY_KEY.encode() not in request.body
        )
        if watch.served.kind == "gemini":
            assert request.headers["x-goog-api-key"] == GEMINI_KEY
        else:
            assert request.signature_ok is True and request.access_key == AKID
    log = watch.served.proxy.log_path.read_text()
    assert not any(secret in log for secret in (*SECRETS, PROXY_KEY))
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                assert not any(secret.encode() in data for secret in SECRETS), path


def claude_env(served: Served, tripwire: Tripwire, home: Path) -> dict[str, str]:
    extra = {"ANTHROPIC_BASE_URL": served.proxy.url, "ANTHROPIC_AUTH_TOKEN": PROXY_KEY}
    if served.kind == "bedrock":
        extra["ANTHROPIC_MODEL"] = "claude-sonnet-4-6"  # the model variable, routed by claude-*
    return cli_env(home, tripwire, **extra)


def codex_env(served: Served, tripwire: Tripwire, home: Path) -> dict[str, str]:
    codex_config(home, served.proxy.url, CODEX_MODEL, "CALO_PROXY_KEY")
    return cli_env(home, tripwire, CALO_PROXY_KEY=PROXY_KEY)


# ---------------------------------------------------------------- Claude Code


def test_claude_code_answers_from_the_upstream(served, clis, tripwire, scratch):
    home, work = scratch
    watch = Watch(served, Reply(text="Hello from the fake upstream."))
    result = run_claude(clis["claude"], work, claude_env(served, tripwire, home), "Say hello.")
    assert result["result"] == "Hello from the fake upstream." and not result["is_error"]
    assert len(watch.requests()) == 1
    requested = "claude-sonnet-4-6" if served.kind == "bedrock" else "claude-"
    assert_translated(watch.lines(), "anthropic", served, requested)
    assert_keys_stayed_put(watch, tripwire, home, work)


def test_claude_code_runs_a_tool_and_sends_its_result_back(served, clis, tripwire, scratch):
    home, work = scratch
    notes = str(work / "notes.txt")
    watch = Watch(
        served,
        Reply(text="Let me read it.", tool_calls=[("Read", {"file_path": notes})], thinking="Hm."),
    )
    prompt = "Read notes.txt and tell me the secret word."
    result = run_claude(clis["claude"], work, claude_env(served, tripwire, home), prompt)
    assert not result["is_error"] and result["num_turns"] == 2
    assert SECRET_WORD in result["result"]  # the fake's default answer lists the tool results
    _, second = (r.json() for r in watch.requests())
    if served.kind == "gemini":
        # the call goes back with the signature the fake issued (it refuses one without)
        asked, answered = second["contents"][-2:]
        call = next(p for p in asked["parts"] if "functionCall" in p)
        assert call["functionCall"] == {"name": "Read", "args": {"file_path": notes}}
        assert call["thoughtSignature"]
        result_text = answered["parts"][0]["functionResponse"]["response"]["result"]
    else:
        asked, answered = second["messages"][-2:]
        kinds = [block["type"] for block in asked["content"]]
        assert kinds[0] == "thinking" and asked["content"][0]["signature"]
        assert "tool_use" in kinds
        result_text = json.dumps(answered["content"][0]["content"])
    assert SECRET_WORD in result_text
    assert_translated(watch.lines(), "anthropic", served, "claude-")
    assert_keys_stayed_put(watch, tripwire, home, work)


# ---------------------------------------------------------------- Codex


def test_codex_answers_from_the_upstream(served, clis, tripwire, scratch):
    home, work = scratch
    watch = Watch(served, Reply(text="Hello from the fake upstream."))
    events, last = run_codex(clis["codex"], work, codex_env(served, tripwire, home), "Say hello.")
    assert last == "Hello from the fake upstream."
    assert events[-1]["type"] == "turn.completed"
    assert len(watch.requests()) == 1
    assert_translated(watch.lines(), "responses", served, CODEX_MODEL)
    assert_keys_stayed_put(watch, tripwire, home, work)


def test_codex_runs_a_shell_command_and_apply_patch(served, clis, tripwire, scratch):
    home, work = scratch
    watch = Watch(
        served,
        Reply(text="Reading.", tool_calls=[("exec_command", {"cmd": "cat notes.txt"})]),
        Reply(text="Writing.", tool_calls=[("apply_patch", {"input": PATCH})], thinking="Ok."),
    )
    prompt = "Read notes.txt, then create hello.txt."
    events, last = run_codex(clis["codex"], work, codex_env(served, tripwire, home), prompt)
    assert (work / "hello.txt").read_text() == "hello from the fake\n"
    kinds = [e["item"]["type"] for e in events if e["type"] == "item.completed"]
    assert "command_execution" in kinds and "file_change" in kinds
    assert "Success" in last  # the fake's default answer lists apply_patch's output
    third = watch.requests()[-1].json()
    assert len(watch.requests()) == 3
    if served.kind == "gemini":
        model_turns = [c for c in third["contents"] if c["role"] == "model"]
        calls = [p for c in model_turns for p in c["parts"] if "functionCall" in p]
        assert [c["functionCall"]["name"] for c in calls] == ["exec_command", "apply_patch"]
        assert all(c["thoughtSignature"] for c in calls)  # both steps of the current turn
        assert calls[1]["functionCall"]["args"] == {"input": PATCH}  # the freeform tool's text
        results = json.dumps([c for c in third["contents"] if c["role"] == "user"])
    else:
        results = json.dumps([m for m in third["messages"] if m["role"] == "user"])
    assert SECRET_WORD in results and "hello.txt" in results
    assert_translated(watch.lines(), "responses", served, CODEX_MODEL)
    assert_keys_stayed_put(watch, tripwire, home, work)
