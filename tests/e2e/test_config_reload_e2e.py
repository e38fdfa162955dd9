"""Editing the YAML file reloads the configuration while streams under way keep flowing; a
file that cannot work is refused with one line and the previous configuration stays."""

from __future__ import annotations

import json
import threading

import boto3
import httpx
from botocore.config import Config

from tests.e2e.launch import wait_for
from tests.fake_bedrock import FakeBedrock

CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
BODY = json.dumps({"messages": [{"role": "user", "content": "hi"}]})


def config(fake, key):
    return f"""
api_keys: [unused]
model_routes:
  "anthropic.*": {{url: "{fake.url}", api_keys: [{key}], auth: bearer, api: bedrock}}
"""


def test_file_change_reloads_and_keeps_streams_flowing(tmp_path, proxy_launcher):
    with FakeBedrock(stream_gate=True) as fake:
        yaml_file = tmp_path / "calo.yaml"
        yaml_file.write_text(config(fake, "key-before"))
        proxy = proxy_launcher(tmp_path, {}, f"reverse:{fake.url}")
        client = boto3.client(
            "bedrock-runtime",
            endpoint_url=proxy.url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="y",
            config=Config(retries={"max_attempts": 1}),
        )
        events = []
        stream = client.converse_stream(
            modelId=CLAUDE, messages=[{"role": "user", "content": [{"text": "x"}]}]
        )
        reader = threading.Thread(target=lambda: events.extend(stream["stream"]))
        reader.start()
        assert wait_for(lambda: len(events) >= 1)  # the stream is under way, its last frame held

        fake.stream_gate = False
        yaml_file.write_text(config(fake, "key-after"))

        def uses_new_key():
            httpx.post(f"{proxy.url}/model/{CLAUDE}/invoke", content=BODY)
            return fake.last_call().headers["authorization"] == "Bearer key-after"

        assert wait_for(uses_new_key)
        fake.release.set()
        reader.join(10)
        assert "metadata" in events[-1]  # the stream that began before the reload completed
        assert fake.requests[0].headers["authorization"] == "Bearer key-before"

        yaml_file.write_text(config(fake, "key-broken") + "bogus_key: 1\n")
        assert wait_for(lambda: any("config change refused" in line for line in proxy.output))
        refused = [line for line in proxy.output if "config change refused" in line]
        assert len(refused) == 1 and "bogus_key" in refused[0]
        httpx.post(f"{proxy.url}/model/{CLAUDE}/invoke", content=BODY)
        assert fake.last_call().headers["authorization"] == "Bearer key-after"
