"""A start that cannot work (a configuration that cannot work, a port in use) ends with one
clear line and a non-zero exit, and no listener is announced after a fatal error."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.e2e.launch import BIN, REPO, SCRIPT, clean_env

CASES = [
    ("bogus_key: 1\napi_keys: [k]\n", {}, [], "bogus_key"),
    ('api_keys: ["${CALO_TEST_MISSING_VAR}"]\n', {}, [], "CALO_TEST_MISSING_VAR"),
    ('api_keys: [k]\nmodel_routes:\n  "gpt-*": 5\n', {}, [], "gpt-*"),
    ('api_keys: [k]\nmodel_routes:\n  "gpt-*": {api_keys: [x]}\n', {}, [], "gpt-*"),
    ("log: {level: INFO}\n", {}, [], "api_keys"),
    (
        None,
        {"GEMINI_CALO_API_KEYS": "k"},
        ["--set", "calo_config=/nonexistent/calo.yaml"],
        "/nonexistent/calo.yaml",
    ),
    (None, {"GEMINI_CALO_API_KEYS": "k", "GEMINI_CALO_ROLLUP": "maybe"}, [], "GEMINI_CALO_ROLLUP"),
    (
        'api_keys: [k]\nmodel_routes:\n  "anthropic.*": {url: "https://x", auth: sigv4}\n',
        {},
        [],
        "sigv4",
    ),
    (
        'api_keys: [k]\nmodel_routes:\n  "m": {url: "https://x", auth: "nope.module:fn"}\n',
        {},
        [],
        "nope.module:fn",
    ),
]


def check(output: str, returncode: int, needle: str) -> None:
    assert returncode != 0, output
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if needle in line]
    assert len(lines) == 1, output
    assert "listening at" not in output, output  # nothing announced after a fatal config error


@pytest.mark.parametrize(("yaml_text", "env", "args", "needle"), CASES)
def test_mitmdump_refuses_to_start(tmp_path, yaml_text, env, args, needle):
    if yaml_text is not None:
        (tmp_path / "calo.yaml").write_text(yaml_text)
    result = subprocess.run(
        [
            str(BIN / "mitmdump"),
            "-s",
            str(SCRIPT),
            "-p",
            "0",
            "--listen-host",
            "127.0.0.1",
            "--set",
            f"confdir={tmp_path / 'mitm'}",
            *args,
        ],
        cwd=tmp_path,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    check(result.stdout + result.stderr, result.returncode, needle)


@pytest.mark.parametrize(("yaml_text", "env", "args", "needle"), CASES[:2] + CASES[6:7])
def test_launcher_refuses_to_start(tmp_path, yaml_text, env, args, needle):
    if yaml_text is not None:
        (tmp_path / "calo.yaml").write_text(yaml_text)
    result = subprocess.run(
        [sys.executable, "-m", "calo_addon", *args],
        cwd=tmp_path,
        env=clean_env(PYTHONPATH=str(REPO), **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    check(result.stdout + result.stderr, result.returncode, needle)
    assert result.stderr.startswith("gemini-calo: ")


# ---------------------------------------------------------------- a port in use


@contextmanager
def port_in_use() -> Iterator[int]:
    """A loopback port some other program listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def check_port_in_use(result: subprocess.CompletedProcess, port: int, prefix: str) -> None:
    """Non-zero exit, no traceback, no listener, and the last line says which port is taken."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output and "listening at" not in output, output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(prefix) and f":{port}: the port is in use" in last, output
    assert sum(line.startswith(prefix) for line in output.splitlines()) == 1, output


def run(command: list[str], cwd, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


# 127.0.0.1: mitmproxy binds before the script loads, and the addon finds the error already
# logged; localhost: the name is resolved first, so the script loads before the bind fails.
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_mitmdump_with_the_port_in_use_ends_with_one_clear_line(tmp_path, host):
    with port_in_use() as port:
        command = [str(BIN / "mitmdump"), "-s", str(SCRIPT), "-p", str(port)]
        command += ["--listen-host", host, "--set", f"confdir={tmp_path / 'mitm'}"]
        result = run(command, tmp_path, clean_env(GEMINI_CALO_API_KEYS="k"))
    check_port_in_use(result, port, "calo_addon: ")


def test_launcher_with_the_port_in_use_ends_with_one_clear_line(tmp_path):
    with port_in_use() as port:
        command = [sys.executable, "-m", "calo_addon", "--listen-host", "127.0.0.1"]
        env = clean_env(
            PYTHONPATH=str(REPO), GEMINI_CALO_API_KEYS="k", GEMINI_CALO_HTTP_PORT=str(port)
        )
        result = run([*command, "--set", f"confdir={tmp_path / 'mitm'}"], tmp_path, env)
    check_port_in_use(result, port, "calo_addon: ")
    assert "GEMINI_CALO_HTTP_PORT" in result.stderr


def test_launcher_web_with_the_web_port_in_use_ends_with_one_clear_line(tmp_path):
    """mitmweb raises (rather than logs) when its web server cannot listen."""
    with port_in_use() as port:
        command = [sys.executable, "-m", "calo_addon", "--web", "-p", "0"]
        command += ["--listen-host", "127.0.0.1", "--set", f"confdir={tmp_path / 'mitm'}"]
        command += ["--set", f"web_port={port}", "--set", "web_open_browser=false"]
        result = run(command, tmp_path, clean_env(PYTHONPATH=str(REPO), GEMINI_CALO_API_KEYS="k"))
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output, output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("gemini-calo: ") and f":{port}: the port is in use" in last, output
    assert "web_port" in last


def test_any_other_startup_error_is_named_on_its_first_line():
    from calo_addon.startup import summary

    message = (
        "[Errno 99] HTTP(S) proxy failed to listen on 10.0.0.1:8080 with [Errno 99] nope\nhint"
    )
    assert summary(message) == (
        "mitmproxy could not start: HTTP(S) proxy failed to listen on 10.0.0.1:8080 with "
        "[Errno 99] nope"
    )
