"""Config units: precedence, .env, ${VAR}, validation messages (one line, naming the problem)."""

from __future__ import annotations

import os.path

import pytest

from calo_addon.config import ConfigError, RouteConfig, environment, load_settings

KEYS = {"GEMINI_CALO_API_KEYS": "k1"}


@pytest.fixture(autouse=True)
def clean_cwd(tmp_path, monkeypatch):
    """No calo.yaml or .env from the repository; no GEMINI_CALO_* from the shell."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("GEMINI_CALO_"):
            monkeypatch.delenv(name)


def yaml_file(tmp_path, text: str) -> str:
    path = tmp_path / "calo.yaml"
    path.write_text(text)
    return str(path)


def error_of(tmp_path, text: str | None = None, env=None, overrides=None) -> str:
    path = yaml_file(tmp_path, text) if text is not None else None
    with pytest.raises(ConfigError) as err:
        load_settings(path, env if env is not None else {}, overrides)
    message = str(err.value)
    assert "\n" not in message, message
    return message


# ---------------------------------------------------------------- precedence


def test_defaults():
    s = load_settings(None, KEYS)
    assert s.api_keys == ("k1",)
    assert s.base_url == "https://generativelanguage.googleapis.com"
    assert (s.log.level, s.log.file) == ("CRITICAL", "app.log")
    assert (s.rollup.enabled, s.rollup.cache_size, s.rollup.threshold) == (True, 20, 4096)
    assert s.bedrock.default_region == "us-east-1"
    assert s.proxy_api_keys == () and s.model_override is None


def test_yaml_over_defaults_and_env_over_yaml(tmp_path):
    path = yaml_file(
        tmp_path, "base_url: http://from-yaml:1\napi_keys: [y1]\nlog: {level: info, file: y.log}\n"
    )
    from_yaml = load_settings(path, {})
    assert from_yaml.base_url == "http://from-yaml:1" and from_yaml.api_keys == ("y1",)
    assert from_yaml.log.level == "INFO" and from_yaml.log.file == "y.log"
    env = {"GEMINI_CALO_BASE_URL": "http://from-env:2", "GEMINI_CALO_API_KEYS": "e1, e2,,"}
    s = load_settings(path, env)
    assert s.base_url == "http://from-env:2"
    assert s.api_keys == ("e1", "e2")
    assert s.log.file == "y.log"  # not set in env: YAML stays


def test_yaml_found_by_env_var_then_cwd(tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text("api_keys: [via-env-var]\n")
    yaml_file(tmp_path, "api_keys: [via-cwd]\n")
    assert load_settings(None, {"GEMINI_CALO_CONFIG": str(other)}).api_keys == ("via-env-var",)
    assert load_settings(None, {}).api_keys == ("via-cwd",)


def test_python_overrides_win_over_env():
    s = load_settings(None, KEYS, {"api_keys": ["o1"], "base_url": "http://o:3"})
    assert s.api_keys == ("o1",) and s.base_url == "http://o:3"


def test_overrides_take_route_config_objects_in_order():
    routes = {
        "gpt-4*": RouteConfig(url="https://api.openai.com/", api_keys=["ok"]),
        "*": RouteConfig(url="http://local:9", auth=None),
    }
    s = load_settings(None, KEYS, {"model_routes": routes})
    assert [glob for glob, _ in s.model_routes] == ["gpt-4*", "*"]
    first, second = (route for _, route in s.model_routes)
    assert first.url == "https://api.openai.com" and first.api_keys == ("ok",)
    assert second.auth.kind == "none"


# ---------------------------------------------------------------- .env


def test_dotenv_quotes_comments_and_multiline_values(tmp_path):
    """Issue 16.4: `A="quoted" # note` is `quoted`; a quoted value may span lines."""
    (tmp_path / ".env").write_text('A="quoted" # note\nB="line one\nline two"\nC=plain # note\n')
    env = environment(tmp_path)
    assert (env["A"], env["B"], env["C"]) == ("quoted", "line one\nline two", "plain")


def test_errors_about_secrets_name_the_place_never_the_value(tmp_path):
    """Issue 10.5: a bad api_keys list is refused without echoing any key."""
    message = error_of(tmp_path, 'api_keys: ["AIzaRealKeyOne", 12345, "AIzaRealKeyTwo"]\n')
    assert "api_keys[1]" in message and "AIza" not in message and "12345" not in message
    text = 'api_keys: [k]\nmodel_routes:\n  "g-*": {url: "https://x", api_keys: {a: "sk-route"}}\n'
    message = error_of(tmp_path, text)
    assert "g-*" in message and "sk-route" not in message
    message = error_of(None, env={**KEYS, "GEMINI_CALO_PROXY_AWS_CREDENTIALS": "AKID:, x"})
    assert "PROXY_AWS_CREDENTIALS" in message and "AKID" not in message


def test_route_api_and_model(tmp_path):
    text = """
api_keys: [k]
model_routes:
  "claude-*": {url: "https://generativelanguage.googleapis.com", api_keys: [g], model: gemini-2.5-pro}
  "local-*": {url: "http://127.0.0.1:11434", api: openai, api_keys: [x]}
"""
    routes = dict(load_settings(yaml_file(tmp_path, text), {}).model_routes)
    assert routes["claude-*"].model == "gemini-2.5-pro" and routes["claude-*"].api is None
    assert routes["local-*"].api == "openai"
    message = error_of(tmp_path, text.replace("api: openai", "api: cobol"))
    assert "'cobol'" in message and "local-*" in message


def test_dotenv_is_read_from_cwd_and_never_overrides_set_vars(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text(
        "GEMINI_CALO_API_KEYS=dot1,dot2\n"
        "export GEMINI_CALO_BASE_URL='http://dotenv:1'\n"
        "# a comment\n"
    )
    monkeypatch.setenv("GEMINI_CALO_BASE_URL", "http://real-env:2")
    env = environment()
    assert env["GEMINI_CALO_API_KEYS"] == "dot1,dot2"
    assert env["GEMINI_CALO_BASE_URL"] == "http://real-env:2"
    s = load_settings()
    assert s.api_keys == ("dot1", "dot2") and s.base_url == "http://real-env:2"


# ---------------------------------------------------------------- ${VAR}


def test_var_expansion_everywhere_including_nested_route_fields(tmp_path):
    path = yaml_file(
        tmp_path,
        """
api_keys: ["${K1}", "pre-${K2}"]
proxy_api_keys: ["${TEAM}"]
model_routes:
  "anthropic.*":
    url: "${BEDROCK_URL}"
    auth: sigv4
    timeout: "${T}"
    aws: {access_key: "${AK}", secret_key: "${SK}", region: "${REGION}"}
rollup: {enabled: "${ROLLUP}"}
""",
    )
    env = {
        "K1": "a",
        "K2": "b",
        "TEAM": "t",
        "BEDROCK_URL": "https://bedrock-runtime.eu-west-1.amazonaws.com",
        "T": "30",
        "AK": "AKIA1",
        "SK": "sekrit",
        "REGION": "eu-west-1",
        "ROLLUP": "off",
    }
    s = load_settings(path, env)
    assert s.api_keys == ("a", "pre-b") and s.proxy_api_keys == ("t",)
    ((_, route),) = s.model_routes
    assert route.url == "https://bedrock-runtime.eu-west-1.amazonaws.com"
    assert route.timeout == 30.0
    assert (route.aws.access_key, route.aws.secret_key, route.aws.region) == (
        "AKIA1",
        "sekrit",
        "eu-west-1",
    )
    assert s.rollup.enabled is False


def test_missing_variable_is_named(tmp_path):
    message = error_of(tmp_path, 'api_keys: ["${NOT_SET_ANYWHERE}"]\n')
    assert "NOT_SET_ANYWHERE" in message


# ---------------------------------------------------------------- validation


def test_unknown_top_level_key_is_named(tmp_path):
    assert "'bogus_key'" in error_of(tmp_path, "api_keys: [k]\nbogus_key: 1\n")


def test_unknown_route_key_is_named(tmp_path):
    text = 'api_keys: [k]\nmodel_routes:\n  "gpt-*": {url: "https://x", api_keys: [k], urll: 1}\n'
    message = error_of(tmp_path, text)
    assert "'urll'" in message and "gpt-*" in message


def test_unknown_rollup_key_is_named(tmp_path):
    assert "'treshold'" in error_of(tmp_path, "api_keys: [k]\nrollup: {treshold: 5}\n")


def test_route_that_is_not_a_mapping_names_its_glob(tmp_path):
    message = error_of(tmp_path, 'api_keys: [k]\nmodel_routes:\n  "gemma-*": https://x\n')
    assert "gemma-*" in message and "mapping" in message


def test_route_without_url_names_its_glob(tmp_path):
    message = error_of(tmp_path, 'api_keys: [k]\nmodel_routes:\n  "claude-*": {api_keys: [k]}\n')
    assert "claude-*" in message and "url" in message


def test_sigv4_without_aws_credentials(tmp_path):
    text = 'api_keys: [k]\nmodel_routes:\n  "amazon.*": {url: "https://b", auth: sigv4}\n'
    message = error_of(tmp_path, text)
    assert "amazon.*" in message and "sigv4" in message


def test_bearer_route_needs_api_keys(tmp_path):
    text = 'api_keys: [k]\nmodel_routes:\n  "gpt-*": {url: "https://api.openai.com"}\n'
    message = error_of(tmp_path, text)
    assert "gpt-*" in message and "api_keys" in message


def test_no_api_keys_anywhere():
    assert "api_keys" in error_of(None, env={"GEMINI_CALO_PROXY_API_KEYS": "p"})


@pytest.mark.parametrize(("value", "enabled"), [("on", True), ("off", False), ("OFF", False)])
def test_rollup_switch(value, enabled):
    assert load_settings(None, {**KEYS, "GEMINI_CALO_ROLLUP": value}).rollup.enabled is enabled


def test_rollup_switch_rejects_maybe():
    message = error_of(None, env={**KEYS, "GEMINI_CALO_ROLLUP": "maybe"})
    assert "GEMINI_CALO_ROLLUP" in message and "'maybe'" in message


def test_bad_log_level_is_named():
    message = error_of(None, env={**KEYS, "GEMINI_CALO_LOG_LEVEL": "LOUD"})
    assert "GEMINI_CALO_LOG_LEVEL" in message and "'LOUD'" in message


def test_yaml_rollup_bounds_are_applied(tmp_path):
    """rollup.max_bytes and rollup.ttl are accepted keys; they must reach RollupSettings."""
    path = yaml_file(tmp_path, "api_keys: [k]\nrollup: {max_bytes: 1000, ttl: 60}\n")
    rollup = load_settings(path, {}).rollup
    assert (rollup.max_bytes, rollup.ttl) == (1000, 60)


# ---------------------------------------------------------------- auth providers


def route_yaml(auth: str) -> str:
    return f'api_keys: [k]\nmodel_routes:\n  "c-*": {{url: "https://c", auth: "{auth}"}}\n'


def test_module_callable_auth_is_imported(tmp_path):
    s = load_settings(yaml_file(tmp_path, route_yaml("os.path:join")), {})
    assert s.model_routes[0][1].auth.provider is os.path.join


def test_unimportable_auth_provider_is_named(tmp_path):
    message = error_of(tmp_path, route_yaml("nope.mod:x"))
    assert "nope.mod:x" in message and "c-*" in message


def test_auth_provider_failing_at_import_is_a_config_error(tmp_path, monkeypatch):
    """A provider module that raises while importing must give one line, not a traceback."""
    (tmp_path / "broken_provider.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "broken_provider:sign" in error_of(tmp_path, route_yaml("broken_provider:sign"))


def test_unknown_auth_style_in_route_config_object_fails_at_load():
    """The Python API's RouteConfig goes through the same checks as a YAML route."""
    route = RouteConfig(url="https://h", api_keys=["k"], auth="Bearer")  # a typo of "bearer"
    message = error_of(None, env=KEYS, overrides={"model_routes": {"x-*": route}})
    assert "'Bearer'" in message


def test_connect_timeout_global_per_route_and_refused_when_not_positive(tmp_path):
    text = """
api_keys: [k]
connect_timeout: 4
model_routes:
  "a-*": {url: "http://127.0.0.1:1", api_keys: [x], connect_timeout: 0.5}
  "b-*": {url: "http://127.0.0.1:2", api_keys: [x]}
"""
    s = load_settings(yaml_file(tmp_path, text), {})
    assert s.connect_timeout == 4.0
    assert [route.connect_timeout for _, route in s.model_routes] == [0.5, None]
    assert (
        load_settings(None, {**KEYS, "GEMINI_CALO_CONNECT_TIMEOUT": "2.5"}).connect_timeout == 2.5
    )
    message = error_of(tmp_path, text.replace("connect_timeout: 0.5", "connect_timeout: 0"))
    assert "model_routes" in message and "connect_timeout" in message
    message = error_of(
        tmp_path,
        None,
        overrides={"model_routes": {"g": RouteConfig(url="http://h", connect_timeout=-1)}},
    )
    assert "connect_timeout" in message
