"""mitmweb as the place to watch every LLM call: each API flow carries the addon's comment."""

from __future__ import annotations

import json

import boto3
import httpx
from botocore.config import Config

from tests.e2e.launch import free_port, wait_for
from tests.fake_bedrock import FakeBedrock

AKID, SECRET = "AKIDWEBPROXY", "web-proxy-secret"
REAL_AKID, REAL_SECRET = "AKIDWEBREAL", "web-real-secret"


def test_mitmweb_flows_show_the_addons_comment(tmp_path, proxy_launcher):
    with FakeBedrock({REAL_AKID: REAL_SECRET}) as fake:
        (tmp_path / "calo.yaml").write_text(
            f"""
api_keys: [unused]
proxy_aws_credentials: {{{AKID}: {SECRET}}}
model_routes:
  "anthropic.*":
    url: {fake.url}
    auth: sigv4
    aws: {{access_key: {REAL_AKID}, secret_key: {REAL_SECRET}}}
"""
        )
        web_port = free_port()
        proxy = proxy_launcher(
            tmp_path,
            {},
            f"reverse:{fake.url}",
            [
                "--set",
                "web_open_browser=false",
                "--set",
                f"web_port={web_port}",
                "--set",
                "web_host=127.0.0.1",
                "--set",
                "web_password=calo-test-pw",
            ],
            tool="mitmweb",
        )
        client = boto3.client(
            "bedrock-runtime",
            endpoint_url=proxy.url,
            region_name="us-east-1",
            aws_access_key_id=AKID,
            aws_secret_access_key=SECRET,
            config=Config(retries={"max_attempts": 1}),
        )
        client.converse(
            modelId="anthropic.claude-3-haiku-20240307-v1:0",
            messages=[{"role": "user", "content": [{"text": "hi"}]}],
        )
        assert fake.last_call().signature_ok is True

        def commented() -> list:  # the web view updates asynchronously
            flows = httpx.get(f"http://127.0.0.1:{web_port}/flows?token=calo-test-pw").json()
            return flows if flows and flows[-1].get("comment") else []

        assert wait_for(commented)
        flows = commented()
        (flow,) = [f for f in flows if "/converse" in f["request"]["path"]]
        assert flow["comment"].startswith("calo: bedrock converse anthropic.claude-3-haiku")
        assert "route anthropic.*" in flow["comment"] and "tokens 8/3" in flow["comment"]
        assert REAL_SECRET not in json.dumps(flows)

        # calo.status from mitmweb's command bar (its /commands API, with the XSRF cookie)
        with httpx.Client(base_url=f"http://127.0.0.1:{web_port}") as web:
            web.get(
                "/updates", headers={"Authorization": "Bearer calo-test-pw"}
            )  # sets the XSRF cookie
            answer = web.post(
                "/commands/calo.status",
                json={"arguments": []},
                headers={
                    "Authorization": "Bearer calo-test-pw",
                    "X-XSRFToken": web.cookies.get("_mitmproxy_xsrf") or "",
                },
            )
            assert answer.status_code == 200, answer.text
            status = answer.json()["value"]
        assert "route anthropic.*" in status and "rollup cache: 0 conversations" in status
        assert REAL_SECRET not in status and SECRET not in status
