"""Every way to run (SPEC section 1): -s from any directory with hot reload, the gemini-calo
launcher, python -m calo_addon, the README's Python API example, two listeners in one process,
and flow files that hold no real key."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
from mitmproxy.io import FlowReader

from tests.e2e.launch import BIN, REPO, clean_env, free_port, wait_for
from tests.fake_bedrock import FakeBedrock

CLAUDE = "anthropic.claude-3-5-sonnet-20241022-v2:0"
REAL_KEY = "real-bedrock-api-key-1234"


def test_editing_init_hot_reloads_the_whole_addon(tmp_path, proxy_launcher):
    copy = tmp_path / "checkout"
    shutil.copytree(
        REPO / "calo_addon", copy / "calo_addon", ignore=shutil.ignore_patterns("__pycache__")
    )
    proxy = proxy_launcher(
        tmp_path,
        {"GEMINI_CALO_API_KEYS": "k"},
        "reverse:http://127.0.0.1:9",
        script=copy / "calo_addon" / "__init__.py",
    )
    assert httpx.get(f"{proxy.url}/health").json() == {"status": "ok"}
    addon = copy / "calo_addon" / "forward.py"  # a submodule, not the file mitmproxy watches
    addon.write_text(
        addon.read_text().replace('b\'{"status": "ok"}\'', 'b\'{"status": "reloaded"}\'')
    )
    init = copy / "calo_addon" / "__init__.py"
    time.sleep(1.1)
    init.write_text(init.read_text() + "\n")
    assert wait_for(lambda: httpx.get(f"{proxy.url}/health").json() == {"status": "reloaded"})


def _start_launcher(args, env, cwd):
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        env=clean_env(PYTHONPATH=str(REPO), **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc


def test_launcher_listens_on_gemini_calo_http_port(tmp_path):
    with FakeBedrock() as fake:
        port = free_port()
        env = {
            "GEMINI_CALO_API_KEYS": "summary-key",
            "GEMINI_CALO_HTTP_PORT": str(port),
            "GEMINI_CALO_BASE_URL": fake.url,
            "GEMINI_CALO_LOG_FILE": str(tmp_path / "calo.log"),
        }
        for command in ([str(BIN / "gemini-calo")], [sys.executable, "-m", "calo_addon"]):
            if not Path(command[0]).exists():
                command = [sys.executable, "-m", "calo_addon"]
            proc = _start_launcher(
                [*command, "--listen-host", "127.0.0.1", "--set", f"confdir={tmp_path / 'mitm'}"],
                env,
                tmp_path,
            )
            try:
                assert wait_for(lambda: _healthy(port)), proc.stdout and proc.poll()
                fake.clear()
                r = httpx.post(
                    f"http://127.0.0.1:{port}/v1beta/models/gemini-2.5-flash:generateContent",
                    json={"contents": [{"parts": [{"text": "hi"}]}]},
                )
                assert (
                    r.status_code == 200
                    and fake.last_call().headers["x-goog-api-key"] == "summary-key"
                )
            finally:
                proc.terminate()
                proc.wait(10)


def _healthy(port):
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    except httpx.HTTPError:
        return False


def test_readme_python_api_example_runs(tmp_path, proxy_launcher):
    readme = (REPO / "README.md").read_text()
    example = re.search(r"```python\n(# my_proxy\.py.*?)```", readme, re.DOTALL).group(1)
    script = tmp_path / "my_proxy.py"
    script.write_text(example)
    with FakeBedrock() as fake:
        env = {
            "GEMINI_KEYS": "gk-1,gk-2",
            "OPENAI_KEY": "ok-1",
            "INTERNAL_LLM_TOKEN": "tok",
            "PYTHONPATH": str(REPO),
            "GEMINI_CALO_BASE_URL": fake.url,  # the example keeps base_url from the environment
        }
        proxy = proxy_launcher(tmp_path, env, f"reverse:{fake.url}", script=script)
        url = f"{proxy.url}/v1beta/models/fast:generateContent"
        r = httpx.post(url, headers={"x-goog-api-key": "team-key-1"}, json={"contents": []})
        assert r.status_code == 200
        (seen,) = fake.requests
        assert seen.path == "/v1beta/models/gemini-2.5-flash:generateContent"
        assert seen.headers["x-goog-api-key"] == "gk-1"
        r = httpx.post(url, headers={"x-goog-api-key": "wrong"}, json={"contents": []})
        assert r.status_code == 401 and len(fake.requests) == 1


def test_two_listeners_in_one_process_and_flow_files_hold_no_key(tmp_path, proxy_launcher):
    with FakeBedrock() as fake:
        (tmp_path / "calo.yaml").write_text(
            f"""
api_keys: [unused-gemini-key]
proxy_api_keys: [proxy-key-dual]
model_routes:
  "anthropic.*": {{url: "{fake.url}", api_keys: ["{REAL_KEY}"], auth: bearer, api: bedrock}}
"""
        )
        reverse_port, regular_port = free_port(), free_port()
        flows = tmp_path / "flows.mitm"
        proxy = proxy_launcher(
            tmp_path,
            {},
            [f"reverse:{fake.url}@{reverse_port}", f"regular@{regular_port}"],
            ["-w", str(flows)],
        )
        assert sorted(proxy.ports) == sorted([reverse_port, regular_port])
        body = json.dumps({"messages": [{"role": "user", "content": "hi"}]})
        headers = {"Authorization": "Bearer proxy-key-dual"}
        r1 = httpx.post(
            f"http://127.0.0.1:{reverse_port}/model/{CLAUDE}/invoke", content=body, headers=headers
        )
        with httpx.Client(
            proxy=f"http://127.0.0.1:{regular_port}", verify=str(proxy.ca_cert)
        ) as client:
            r2 = client.post(
                f"https://bedrock-runtime.us-east-1.amazonaws.com/model/{CLAUDE}/invoke",
                content=body,
                headers=headers,
            )
        assert r1.status_code == r2.status_code == 200
        assert [r.headers["authorization"] for r in fake.requests] == [f"Bearer {REAL_KEY}"] * 2
        proxy.stop()
        with flows.open("rb") as f:
            stored = list(FlowReader(f).stream())
        assert len(stored) == 2
        for flow in stored:
            everything = json.dumps(flow.get_state(), default=lambda b: b.decode("latin-1"))
            assert REAL_KEY not in everything and "proxy-key-dual" not in everything
            assert flow.request.headers["authorization"] == "[calo: anthropic.*#1]"

        # replaying the stored flows (as mitmweb's replay does) re-attaches real credentials
        fake.clear()
        replay = subprocess.run(
            [
                str(BIN / "mitmdump"),
                "-s",
                str(REPO / "calo_addon" / "__init__.py"),
                "-n",
                "-C",
                str(flows),
                "--set",
                f"confdir={tmp_path / 'mitm'}",
            ],
            cwd=tmp_path,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert replay.returncode == 0, replay.stdout + replay.stderr
        assert [r.headers["authorization"] for r in fake.requests] == [f"Bearer {REAL_KEY}"] * 2
