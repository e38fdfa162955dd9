"""A translated call is stored as two linked flows (SPEC 10): the client's (what it sent and
got, in its own API) and the upstream leg (what the upstream got and answered), no secret in
either; replaying them from a file does the right thing for each."""

from __future__ import annotations

import json

import anthropic

from tests.e2e.launch import read_flows, wait_for
from tests.fake_gemini import FakeGemini


def test_a_translated_call_is_stored_as_the_clients_flow_and_its_upstream_leg(
    tmp_path, proxy_launcher
):
    with FakeGemini(keys={"real-gemini-key"}) as fake:
        (tmp_path / "calo.yaml").write_text(
            f"api_keys: [real-gemini-key]\nproxy_api_keys: [proxy-key-legs]\nbase_url: {fake.url}\n"
        )
        flows_file = tmp_path / "flows"
        proxy = proxy_launcher(tmp_path, {}, f"reverse:{fake.url}", args=["-w", str(flows_file)])
        client = anthropic.Anthropic(api_key="proxy-key-legs", base_url=proxy.url, max_retries=0)
        answer = client.messages.create(
            model="claude-sonnet-4-6", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        )
        assert any(block.type == "text" for block in answer.content)
        proxy.stop()  # -w is complete once mitmdump has stopped
        assert wait_for(lambda: flows_file.exists() and len(read_flows(flows_file)) == 2)
        flows = read_flows(flows_file)
    client_flow = next(f for f in flows if f.request.path.startswith("/v1/messages"))
    leg = next(f for f in flows if f is not client_flow)
    assert "translated anthropic -> gemini" in client_flow.comment
    assert json.loads(client_flow.response.content)["type"] == "message"  # Anthropic's shape
    assert client_flow.metadata["calo_upstream_leg"] == leg.id
    assert leg.request.path.endswith(":generateContent")
    assert "candidates" in json.loads(leg.response.content)  # Gemini's own answer
    assert leg.comment.startswith(f"calo: upstream leg of {client_flow.id}")
    assert leg.request.headers["x-goog-api-key"] == "[calo: default#1]"
    blob = flows_file.read_bytes()
    assert b"real-gemini-key" not in blob and b"proxy-key-legs" not in blob
