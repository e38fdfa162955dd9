"""A configuration that cannot work stops startup with one clear line and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys

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
