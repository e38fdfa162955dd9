"""Failover and replays inside the call, through the real proxy, with a model_transformer.

A retry or a replay sends the request as it was prepared (model transformed, routed): only its
credentials are attached again, so the transformer is never applied twice. The client's log
line after a retry names the key that answered and the usage of that answer.
"""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.launch import REPO, free_port, wait_for
from tests.fake_llm import USAGE_GEMINI, FakeLLM
from tests.fake_server import Fail

GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"
TUNED = "/v1beta/models/tuned-gemini-2.5-flash:generateContent"
KEYS = ["real-key-1", "real-key-2"]
SCRIPT = f"""
import sys

sys.path.insert(0, {str(REPO)!r})
from calo_addon import Calo

addons = [Calo(model_transformer=lambda m: f"tuned-{{m}}")]
"""
PASSWORD = "calo-failover-pw"


@pytest.fixture
def fake():
    with FakeLLM() as fake:
        yield fake


def start(tmp_path, fake, proxy_launcher, *args, tool="mitmdump"):
    script = tmp_path / "tuned.py"
    script.write_text(SCRIPT)
    env = {"GEMINI_CALO_API_KEYS": ",".join(KEYS), "GEMINI_CALO_BASE_URL": fake.url}
    return proxy_launcher(tmp_path, env, f"reverse:{fake.url}", args, tool=tool, script=script)


def ask(proxy) -> httpx.Response:
    contents = [{"role": "user", "parts": [{"text": "hi"}]}]
    return httpx.post(f"{proxy.url}{GENERATE}", json={"contents": contents}, timeout=20)


def test_a_retry_goes_to_the_transformed_model_once_and_logs_its_usage(
    tmp_path, fake, proxy_launcher
):
    proxy = start(tmp_path, fake, proxy_launcher)
    fake.scripted = [Fail(503, "overloaded")]
    answer = ask(proxy)
    assert answer.status_code == 200 and answer.json()["usageMetadata"] == USAGE_GEMINI
    assert [r.path for r in fake.requests] == [TUNED, TUNED]  # never tuned-tuned-...
    assert [r.headers["x-goog-api-key"] for r in fake.requests] == KEYS
    (line,) = proxy.api_log_lines()
    assert line["retries"] == ["503 via default#1"]
    assert (line["status"], line["key_label"]) == (200, "default#2")
    assert line["usage"] == {"input_tokens": 7, "output_tokens": 5, "total_tokens": 12}
    assert (line["requested_model"], line["effective_model"]) == (
        "gemini-2.5-flash",
        "tuned-gemini-2.5-flash",
    )


def test_a_mitmweb_replay_of_a_stored_flow_is_not_transformed_again(tmp_path, fake, proxy_launcher):
    web_port = free_port()
    web = [
        *("--set", "web_open_browser=false", "--set", f"web_port={web_port}"),
        *("--set", "web_host=127.0.0.1", "--set", f"web_password={PASSWORD}"),
    ]
    proxy = start(tmp_path, fake, proxy_launcher, *web, tool="mitmweb")
    assert ask(proxy).status_code == 200
    auth = {"Authorization": f"Bearer {PASSWORD}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{web_port}", headers=auth) as client:
        flows: list[dict] = []

        def stored() -> bool:
            flows[:] = [f for f in client.get("/flows").json() if f.get("comment")]
            return bool(flows)

        assert wait_for(stored)  # the web view has the flow, with the addon's comment
        (flow,) = flows
        assert flow["request"]["path"] == TUNED
        client.get("/updates")  # sets the XSRF cookie
        xsrf = {"X-XSRFToken": client.cookies.get("_mitmproxy_xsrf") or ""}
        replayed = client.post(f"/flows/{flow['id']}/replay", headers=xsrf)
        assert replayed.status_code == 200, replayed.text
        assert wait_for(lambda: len(fake.requests) == 2)
    assert [r.path for r in fake.requests] == [TUNED, TUNED]
    assert [r.headers["x-goog-api-key"] for r in fake.requests] == KEYS  # a fresh key, real
