"""Explicit HTTPS proxy mode: unchanged SDKs configured by environment variables alone.

Each client runs in its own subprocess with only HTTPS_PROXY, its CA bundle variable and its
usual key variable set, as a user would run it. The proxy intercepts the API hosts, swaps
credentials and reroutes to our fake upstreams; every other host passes untouched.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from tests.e2e.launch import clean_env
from tests.fake_bedrock import FakeBedrock

PROXY_AKID, PROXY_SECRET = "AKIDEXPLICITPROXY", "explicit-proxy-secret"
REAL_AKID, REAL_SECRET = "AKIDEXPLICITREAL", "explicit-real-secret"
CLAUDE = "anthropic.claude-3-5-sonnet-20241022-v2:0"


@pytest.fixture(scope="module")
def fake():
    with FakeBedrock({REAL_AKID: REAL_SECRET}) as fake:
        yield fake


@pytest.fixture(scope="module")
def proxy(fake, tmp_path_factory, proxy_launcher):
    tmp = tmp_path_factory.mktemp("explicit")
    (tmp / "calo.yaml").write_text(
        f"""
api_keys: [gemini-real-key]
proxy_api_keys: [proxy-key-explicit]
proxy_aws_credentials: {{{PROXY_AKID}: {PROXY_SECRET}}}
model_routes:
  "anthropic.*":
    url: {fake.url}
    auth: sigv4
    aws: {{access_key: {REAL_AKID}, secret_key: {REAL_SECRET}, region: us-west-2}}
"""
    )
    return proxy_launcher(tmp, {}, "regular")


def run_client(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=clean_env(**env),
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_boto3_by_environment_alone_sigv4(proxy, fake):
    fake.clear()
    result = run_client(
        f"""
        import boto3, json
        c = boto3.client("bedrock-runtime", region_name="us-west-2")
        out = c.converse(modelId="{CLAUDE}", messages=[{{"role": "user", "content": [{{"text": "hi"}}]}}])
        print(json.dumps(out["usage"]))
        """,
        {
            "HTTPS_PROXY": proxy.url,
            "AWS_CA_BUNDLE": str(proxy.ca_cert),
            "AWS_ACCESS_KEY_ID": PROXY_AKID,
            "AWS_SECRET_ACCESS_KEY": PROXY_SECRET,
            "AWS_EC2_METADATA_DISABLED": "true",
        },
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["totalTokens"] == 11
    (r,) = fake.requests
    assert r.access_key == REAL_AKID and r.signature_ok is True


def test_boto3_by_environment_alone_bearer(proxy, fake):
    fake.clear()
    result = run_client(
        f"""
        import boto3, json
        c = boto3.client("bedrock-runtime", region_name="us-west-2")
        out = c.invoke_model(modelId="{CLAUDE}", body=json.dumps({{"messages": []}}))
        print(json.loads(out["body"].read())["usage"]["input_tokens"])
        """,
        {
            "HTTPS_PROXY": proxy.url,
            "AWS_CA_BUNDLE": str(proxy.ca_cert),
            "AWS_BEARER_TOKEN_BEDROCK": "proxy-key-explicit",
            "AWS_EC2_METADATA_DISABLED": "true",
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "12"
    (r,) = fake.requests
    assert r.signature_ok is True and "proxy-key-explicit" not in json.dumps(r.headers)


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: ClassVar[list] = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        _Echo.seen.append((self.path, dict(self.headers.items()), body))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


def test_unrelated_host_passes_through_untouched(proxy):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        import httpx

        body = b'{"model": "gpt-4o", "key": "x"}'
        headers = {"Authorization": "Bearer something", "x-goog-api-key": "abc", "X-Custom": "1"}
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/chat/completions?key=q"
        with httpx.Client(proxy=proxy.url) as client:
            response = client.post(url, content=body, headers=headers)
        assert response.status_code == 200 and response.content == b"ok"
        path, seen_headers, seen_body = _Echo.seen[-1]
        assert path == "/v1/chat/completions?key=q" and seen_body == body
        assert seen_headers["Authorization"] == "Bearer something"
        assert seen_headers["x-goog-api-key"] == "abc" and seen_headers["X-Custom"] == "1"
        assert not [
            line
            for line in proxy.api_log_lines(count=0)
            if line.get("upstream_host", "").endswith(str(server.server_address[1]))
        ]
    finally:
        server.shutdown()


def test_openai_and_genai_by_environment_alone(tmp_path, proxy_launcher):
    from tests.fake_llm import FakeLLM

    with FakeLLM() as llm:
        env = {
            "GEMINI_CALO_API_KEYS": "real-gemini-1,real-gemini-2",
            "GEMINI_CALO_PROXY_API_KEYS": "proxy-key-env",
            "GEMINI_CALO_BASE_URL": llm.url,
        }
        (tmp_path / "calo.yaml").write_text(
            f'model_routes:\n  "gpt-*": {{url: "{llm.url}", api_keys: [real-openai-1]}}\n'
        )
        proxy = proxy_launcher(tmp_path, env, "regular")
        common = {"HTTPS_PROXY": proxy.url, "SSL_CERT_FILE": str(proxy.ca_cert)}
        result = run_client(
            """
            import openai
            chat = openai.OpenAI(max_retries=0).chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
            print(chat.choices[0].message.content)
            """,
            {**common, "OPENAI_API_KEY": "proxy-key-env"},
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "hello from fake"
        result = run_client(
            """
            from google import genai
            client = genai.Client()
            print(client.models.generate_content(model="gemini-2.5-flash", contents="hi").text)
            """,
            {**common, "GEMINI_API_KEY": "proxy-key-env"},
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "hello from fake"
        openai_call, gemini_call = llm.requests
        assert openai_call.path == "/v1/chat/completions"  # the route, an OpenAI-compatible url
        assert openai_call.headers["authorization"] == "Bearer real-openai-1"
        assert gemini_call.path.endswith("/models/gemini-2.5-flash:generateContent")
        assert gemini_call.headers["x-goog-api-key"] == "real-gemini-1"


def test_explicit_mode_refuses_a_host_no_route_configures(tmp_path, proxy_launcher):
    """Issue 11.7: api.openai.com with no route for it is refused in OpenAI's shape, naming
    the missing route, and never sent to the Gemini base_url with the Gemini keys."""
    from tests.fake_llm import FakeLLM

    with FakeLLM() as llm:
        env = {
            "GEMINI_CALO_API_KEYS": "real-gemini-1",
            "GEMINI_CALO_PROXY_API_KEYS": "proxy-key-env",
            "GEMINI_CALO_BASE_URL": llm.url,
        }
        proxy = proxy_launcher(tmp_path, env, "regular")
        result = run_client(
            """
            import openai
            try:
                openai.OpenAI(max_retries=0).chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
            except openai.NotFoundError as e:
                print(e.status_code, e.body["message"])
            """,
            {
                "HTTPS_PROXY": proxy.url,
                "SSL_CERT_FILE": str(proxy.ca_cert),
                "OPENAI_API_KEY": "proxy-key-env",
            },
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("404 no route for model 'gpt-4o' on api.openai.com")
        assert llm.requests == []
