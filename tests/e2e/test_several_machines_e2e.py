"""The README's "Several machines" example, run: its haproxy.cfg (Debian's haproxy) in front of
two instances started as the README says, sharing one real Redis. Two instances on loopback
ports stand for the two machines; the README's host names and ports become those."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.calo_process import CaloProcess
from tests.e2e.launch import REPO, free_port, wait_for
from tests.e2e.scrape import wait_metric
from tests.fake_gemini import FakeGemini
from tests.fake_server import Fail

pytestmark = pytest.mark.timeout(180)

HAPROXY = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"
BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def readme_section(title: str) -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def example() -> tuple[str, list[list[str]]]:
    """The section's haproxy.cfg, and its sh blocks as commands."""
    section = readme_section("Several machines")
    blocks = re.findall(r"^```(\w*)\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    (config,) = [body for lang, body in blocks if body.startswith("# haproxy.cfg\n")]
    commands = [
        [shlex.join(shlex.split(line, comments=True)) for line in body.splitlines() if line]
        for lang, body in blocks
        if lang == "sh"
    ]
    return config, commands


def test_the_readme_example_is_what_this_test_runs():
    config, (instance, balancer) = example()
    assert instance == ["export GEMINI_CALO_REDIS_URL=redis://redis.internal:6379/0", "gemini-calo"]
    assert balancer == ["haproxy -f haproxy.cfg"]
    assert "calo-a.internal:8000" in config and "calo-b.internal:8000" in config
    assert re.search(r"^\s+bind :8000$", config, re.MULTILINE)


@pytest.fixture
def fake():
    with FakeGemini(keys={"k1", "k2"}) as fake:
        yield fake


def keys_used(fake: FakeGemini, since: int) -> list[str]:
    return [r.headers.get("x-goog-api-key") for r in fake.requests[since:]]


@pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed (scripts/test installs it)")
def test_two_instances_behind_haproxy_share_one_redis(tmp_path, fake, redis_server):
    config, (instance_commands, balancer_commands) = example()
    redis_url = instance_commands[0].partition("=")[2]
    assert instance_commands[1] == "gemini-calo"
    env = {
        "GEMINI_CALO_REDIS_URL": redis_url.replace(
            "redis.internal:6379", f"127.0.0.1:{redis_server.port}"
        ),
        "GEMINI_CALO_API_KEYS": "k1,k2",
        "GEMINI_CALO_BASE_URL": fake.url,
    }
    instances = []
    haproxy = None
    try:
        for name in ("calo-a", "calo-b"):
            cwd = tmp_path / name
            cwd.mkdir()
            instances.append(CaloProcess(cwd, env))
        for instance in instances:
            assert wait_for(lambda i=instance: i.said("listening at"), 60), instance.output
        front = free_port()
        config = config.replace("bind :8000", f"bind 127.0.0.1:{front}")
        for name, instance in zip(("calo-a", "calo-b"), instances, strict=True):
            config = config.replace(f"{name}.internal:8000", f"127.0.0.1:{instance.port}")
        (tmp_path / "haproxy.cfg").write_text(config)
        (command,) = balancer_commands
        haproxy = subprocess.Popen(
            [HAPROXY, *shlex.split(command)[1:]],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        url = f"http://127.0.0.1:{front}"
        assert wait_for(lambda: _answers(url + "/health"), 30), "haproxy did not serve"

        # both machines serve, through the balancer
        for _ in range(10):
            answer = httpx.post(url + GENERATE, json=BODY, headers={"connection": "close"})
            assert answer.status_code == 200, answer.text
        assert wait_for(lambda: all(len(i.records()) >= 3 for i in instances))

        # a 429 on whichever machine got it cools k1 for both
        fake.scripted = [Fail(429, "quota", retry_after=120)]
        assert httpx.post(url + GENERATE, json=BODY).status_code == 200
        for instance in instances:
            wait_metric(instance.metrics, "calo_keys_cooling", 1, route="default")
        before = len(fake.requests)
        for _ in range(6):
            assert httpx.post(url + GENERATE, json=BODY).status_code == 200
        assert keys_used(fake, before) == ["k2"] * 6
        assert all(any(r["key_label"] == "default#2" for r in i.records()[-3:]) for i in instances)
    finally:
        if haproxy is not None:
            haproxy.terminate()
            haproxy.wait(10)
        for instance in instances:
            instance.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_this_file_is_named_in_the_readme():
    assert Path(__file__).name in readme_section("Several machines")
