"""The fakes and the proxy configuration shared by the translation end-to-end tests.

One proxy per test module, in front of all four strict fakes at once: the Gemini 3-like fake
(thought signatures checked), the Anthropic fake, the OpenAI Chat fake, and Bedrock with
strict validation and SigV4 checks. The route is chosen by the model's suffix, so one client
reaches every upstream kind by its model name:

    <name>-to-anthropic       Anthropic Messages (api: anthropic), model kept
    <name>-to-bedrock-claude  Bedrock, SigV4; sent as an anthropic.* model
    <name>-to-bedrock-nova    Bedrock, SigV4; sent as amazon.nova-pro (Converse)
    <name>-to-bedrock-nova2   Bedrock, SigV4; sent as us.amazon.nova-2-lite (Converse)
    <name>-to-gemini          Gemini native (api: gemini); sent as gemini-3-pro-preview
    <name>-to-chat            an OpenAI-compatible server (loopback: Chat); sent as gpt-4o
    anything else             unrouted: base_url, the Gemini fake, model kept
"""

from __future__ import annotations

import functools
import json
import threading
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest

from tests.e2e.launch import Proxy
from tests.fake_anthropic import FakeAnthropic
from tests.fake_bedrock import FakeBedrock
from tests.fake_gemini import FakeGemini
from tests.fake_openai import FakeOpenAI

PROXY_KEY = "proxy-key-translate"
GEMINI_KEY, ANTHROPIC_KEY, OPENAI_KEY = "gemini-real-key", "anthropic-real-key", "openai-real-key"
AKID, SECRET = "AKIDTRANSLATEROUTE", "translate-route-secret"
CLAUDE_ON_BEDROCK = "anthropic.claude-sonnet-4-20250514-v1:0"
NOVA = "amazon.nova-pro-v1:0"
NOVA2 = "us.amazon.nova-2-lite-v1:0"
GEMINI_MODEL = "gemini-3-pro-preview"
CHAT_MODEL = "gpt-4o"
# a 1x1 PNG
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="

# the model suffix -> (the fleet's fake attribute, the model the upstream gets or None: kept)
UPSTREAMS = {
    "anthropic": ("anthropic", None),
    "bedrock-claude": ("bedrock", CLAUDE_ON_BEDROCK),
    "bedrock-nova": ("bedrock", NOVA),
    "bedrock-nova2": ("bedrock", NOVA2),
    "gemini": ("gemini", GEMINI_MODEL),
    "chat": ("openai", CHAT_MODEL),
    "unrouted": ("gemini", None),
}


@dataclass
class Fleet:
    gemini: FakeGemini
    anthropic: FakeAnthropic
    openai: FakeOpenAI
    bedrock: FakeBedrock

    def all(self) -> list:
        return [self.gemini, self.anthropic, self.openai, self.bedrock]

    def fake(self, kind: str):
        return getattr(self, UPSTREAMS[kind][0])

    def reset(self) -> None:
        """Forget requests and scripts; no stream held back."""
        for fake in self.all():
            fake.clear()
            fake.scripted.clear()
            fake.hold_last_chunk = False


PERSON = {  # a JSON-schema output both OpenAI client APIs ask for
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


@functools.cache
def openai_client(proxy, key: str = PROXY_KEY) -> openai.OpenAI:
    """One client per key for the module (making one costs ~90 ms: its TLS context)."""
    return openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0, timeout=20)


def model_for(kind: str, name: str = "claude-sonnet-4") -> str:
    """The model a client asks for to reach upstream `kind`."""
    return "gemini-2.5-pro" if kind == "unrouted" else f"{name}-to-{kind}"


def start_fleet(stack: ExitStack) -> Fleet:
    return Fleet(
        gemini=stack.enter_context(FakeGemini(keys={GEMINI_KEY})),
        anthropic=stack.enter_context(FakeAnthropic(keys={ANTHROPIC_KEY})),
        openai=stack.enter_context(FakeOpenAI(keys={OPENAI_KEY})),
        bedrock=stack.enter_context(FakeBedrock({AKID: SECRET}, strict=True)),
    )


def write_config(folder: Path, fleet: Fleet) -> None:
    aws = f"{{access_key: {AKID}, secret_key: {SECRET}, region: us-east-1}}"
    (folder / "calo.yaml").write_text(
        f"""
api_keys: [{GEMINI_KEY}]
proxy_api_keys: [{PROXY_KEY}]
base_url: {fleet.gemini.url}
model_override: null
rollup: {{enabled: false}}
max_retries: 0          # a scripted 429 reaches the client as it is
key_cooldown_max: 0     # and leaves no key cooling for the next test
model_routes:
  "*-to-anthropic": {{url: "{fleet.anthropic.url}", api: anthropic, api_keys: [{ANTHROPIC_KEY}]}}
  "*-to-bedrock-claude":
    {{url: "{fleet.bedrock.url}", auth: sigv4, aws: {aws}, model: "{CLAUDE_ON_BEDROCK}"}}
  "*-to-bedrock-nova": {{url: "{fleet.bedrock.url}", auth: sigv4, aws: {aws}, model: "{NOVA}"}}
  "*-to-bedrock-nova2":
    {{url: "{fleet.bedrock.url}", auth: sigv4, aws: {aws}, model: "{NOVA2}"}}
  "*-to-gemini":
    {{url: "{fleet.gemini.url}", api: gemini, api_keys: [{GEMINI_KEY}], model: {GEMINI_MODEL}}}
  "*-to-chat": {{url: "{fleet.openai.url}", api_keys: [{OPENAI_KEY}], model: {CHAT_MODEL}}}
"""
    )


_SHARED: dict[str, object] = {}


def shared(request: pytest.FixtureRequest, tmp_path_factory) -> tuple[Fleet, Proxy]:
    """The fakes and the proxy in front of them, started once for every translation test
    module of the session (they are the same setup; a proxy and four fakes take seconds to
    start and stop) and stopped when the session ends. Each test starts with `Fleet.reset`."""
    if not _SHARED:
        stack = ExitStack()
        request.config.add_cleanup(stack.close)
        fleet = start_fleet(stack)
        folder = tmp_path_factory.mktemp("translate")
        write_config(folder, fleet)
        proxy = stack.enter_context(closing_proxy(folder, fleet))
        _SHARED.update(fleet=fleet, proxy=proxy)
    return _SHARED["fleet"], _SHARED["proxy"]


@contextmanager
def closing_proxy(folder: Path, fleet: Fleet):
    proxy = Proxy(folder, {}, [f"reverse:{fleet.gemini.url}"])
    try:
        yield proxy
    finally:
        proxy.stop()


def no_secret_leaked(fleet: Fleet) -> None:
    """The proxy key never reaches an upstream, in headers or bodies; every request Bedrock
    got carries a valid SigV4 signature of what arrived (the translated body)."""
    for fake in fleet.all():
        for request in fake.requests:
            assert PROXY_KEY not in json.dumps(request.headers)
            assert PROXY_KEY.encode() not in request.body
    assert all(r.signature_ok is True for r in fleet.bedrock.requests)


def log_line_for(proxy, model: str) -> dict:
    """The current test's last call log line for `model`, once written."""
    lines = proxy.api_log_lines(1, where=lambda line: line.get("requested_model") == model)
    assert lines, f"no log line for {model}"
    return lines[-1]


def hold_last_chunk(fake) -> None:
    """The fake's next stream waits before its last chunk until `arrived_first` releases it."""
    fake.release.clear()
    fake.last_chunk_sent.clear()
    fake.hold_last_chunk = True


def arrived_first(fake, first) -> bool:
    """`first()` reads the client's first event(s) of a stream the fake holds back (see
    `hold_last_chunk`): True when they arrived before the fake sent its last chunk. The
    stream is released either way."""
    try:
        got = first()
        assert got, "no first event"
        return not fake.last_chunk_sent.is_set()
    finally:
        fake.release.set()


def release_later(fake, seconds: float = 10.0) -> threading.Timer:
    """A safety net: release a held stream if a test fails before doing it."""
    timer = threading.Timer(seconds, fake.release.set)
    timer.daemon = True
    timer.start()
    return timer
