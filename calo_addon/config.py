"""Configuration: defaults < YAML file < environment variables, parsed once into the frozen
dataclasses of settings.py.

Nothing downstream reads env vars or raw dicts: `load_settings` returns a `Settings`, or raises
`ConfigError` with one line that names the bad key, value or missing variable.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from .settings import (
    AUTH_STYLES,
    DEFAULT_BASE_URL,
    LOG_LEVELS,
    AuthProvider,
    AWSCredentials,
    BedrockSettings,
    LogSettings,
    RollupSettings,
    RouteConfig,
    Settings,
)


class ConfigError(ValueError):
    """A configuration that cannot work. The message is one line naming the problem."""


# ---------------------------------------------------------------- .env and ${VAR}

_DOTENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, optional `export`, quotes and `#` comments; the seed's .env format."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _DOTENV_LINE.match(line)
        if not match:
            continue
        key, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


def environment(cwd: Path | None = None) -> dict[str, str]:
    """os.environ over the working directory's .env: .env never overrides what is set."""
    return {**read_dotenv((cwd or Path.cwd()) / ".env"), **os.environ}


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(value: Any, env: Mapping[str, str], where: str) -> Any:
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(f"{where}: environment variable {name} is not set")
            return env[name]

        return _VAR.sub(sub, value)
    if isinstance(value, list):
        return [_expand(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _expand(v, env, f"{where}.{k}") for k, v in value.items()}
    return value


# ---------------------------------------------------------------- YAML

# top-level keys that hold one value each (the sections are read by their own key sets)
_VALUE_KEYS = (
    "base_url",
    "api_keys",
    "proxy_api_keys",
    "proxy_aws_credentials",
    "model_override",
    "http_port",
    "max_body_bytes",
    "key_cooldown_max",
    "max_retries",
    "stream_idle_timeout",
    "connect_timeout",
)
_TOP_KEYS = {*_VALUE_KEYS, "model_routes", "rollup", "log", "bedrock"}
_ROUTE_KEYS = {"url", "api_keys", "auth", "timeout", "connect_timeout", "aws"}
_AWS_KEYS = {"access_key", "secret_key", "session_token", "region"}
_ROLLUP_KEYS = {"enabled", "cache_size", "threshold", "summarizer_model", "max_bytes", "ttl"}
_LOG_KEYS = {"level", "file"}
_BEDROCK_KEYS = {"default_region"}


def find_config_file(option_path: str | None, env: Mapping[str, str]) -> Path | None:
    if option_path:
        return Path(option_path).expanduser()
    if env.get("GEMINI_CALO_CONFIG"):
        return Path(env["GEMINI_CALO_CONFIG"]).expanduser()
    default = Path.cwd() / "calo.yaml"
    return default if default.is_file() else None


def _mapping(value: Any, where: str, known: set[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__} {value!r}")
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})"
        )
    return value


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    return tuple(v.strip() for v in value if v.strip())


def _key_pairs(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    """{id: secret} from YAML, or "id:secret,id2:secret2" from the environment."""
    if isinstance(value, str):
        pairs = [item.split(":", 1) for item in value.split(",") if item.strip()]
        if any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
            raise ConfigError(f"{where}: expected ACCESS_KEY_ID:SECRET pairs separated by commas")
        return tuple((k.strip(), v.strip()) for k, v in pairs)
    if isinstance(value, dict) and all(isinstance(v, str) and v for v in value.values()):
        return tuple((str(k), v) for k, v in value.items())
    raise ConfigError(f"{where}: expected a mapping of access-key id -> secret")


def _number(value: Any, where: str, kind: type = int, minimum: float = 0) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if isinstance(value, bool) or number < minimum:
        raise ConfigError(f"{where}: expected a number >= {minimum}, got {value!r}")
    return number


def _boolean(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("on", "true", "yes", "1"):
        return True
    if text in ("off", "false", "no", "0"):
        return False
    raise ConfigError(f"{where}: expected on/off, got {value!r}")


def _url(value: Any, where: str) -> str:
    if not isinstance(value, str) or not re.match(r"^https?://[^/\s]+", value):
        raise ConfigError(f"{where}: expected an http(s) URL, got {value!r}")
    return value.rstrip("/")


def resolve_auth(value: Any, where: str) -> str | AuthProvider:
    """An auth style name, a callable, or "module:callable" imported now so typos fail at startup."""
    if value is None:
        return "none"
    if callable(value) or getattr(value, "auth_style", value) in AUTH_STYLES:
        return value
    if isinstance(value, str) and re.fullmatch(r"[\w.]+:[\w.]+", value):
        module_name, _, attr = value.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                target = getattr(target, part)
        except Exception as e:  # noqa: BLE001 - whatever the module raises, say it in one line
            reason = " ".join(f"{type(e).__name__}: {e}".split())
            raise ConfigError(f"{where}: cannot load auth provider {value!r}: {reason}") from None
        if not callable(target):
            raise ConfigError(f"{where}: auth provider {value!r} is not callable")
        return target
    raise ConfigError(
        f"{where}: unknown auth {value!r} (use {' | '.join(AUTH_STYLES)} | 'module:callable')"
    )


def parse_route(glob: Any, raw: Any, where: str) -> RouteConfig:
    where = f"{where}.{glob!r}"
    if not isinstance(glob, str) or not glob:
        raise ConfigError(f"{where}: a route glob must be a non-empty string")
    entry = _mapping(raw, where, _ROUTE_KEYS)
    if "url" not in entry:
        raise ConfigError(f"{where}: route needs a url")
    aws = None
    if entry.get("aws") is not None:
        creds = _mapping(entry["aws"], f"{where}.aws", _AWS_KEYS)
        if not creds.get("access_key") or not creds.get("secret_key"):
            raise ConfigError(f"{where}.aws: needs access_key and secret_key")
        aws = AWSCredentials(**{k: str(v) for k, v in creds.items() if v is not None})
    route = RouteConfig(
        url=_url(entry["url"], f"{where}.url"),
        api_keys=_str_list(entry.get("api_keys"), f"{where}.api_keys"),
        auth=resolve_auth(entry.get("auth", "bearer"), f"{where}.auth"),
        timeout=_number(entry.get("timeout", 300), f"{where}.timeout", float, 0.001),
        connect_timeout=(
            None
            if entry.get("connect_timeout") is None
            else _number(entry["connect_timeout"], f"{where}.connect_timeout", float, 0.001)
        ),
        aws=aws,
    )
    return check_route(glob, route, where)


def check_route(glob: str, route: RouteConfig, where: str) -> RouteConfig:
    """The checks a route passes however it was given (YAML, or a Python RouteConfig)."""
    connect = route.connect_timeout
    route = replace(
        route,
        url=_url(route.url, f"{where}.url"),
        auth=resolve_auth(route.auth, f"{where}.auth"),
        timeout=_number(route.timeout, f"{where}.timeout", float, 0.001),
        connect_timeout=None
        if connect is None
        else _number(connect, f"{where}.connect_timeout", float, 0.001),
    )
    style = getattr(route.auth, "auth_style", route.auth)
    if style == "sigv4" and route.aws is None and getattr(route.auth, "credentials", None) is None:
        raise ConfigError(f"{where}: auth sigv4 needs an aws block with access_key and secret_key")
    if route.auth in ("bearer", "x-goog-api-key") and not route.api_keys:
        raise ConfigError(f"{where}: auth {route.auth} needs api_keys")
    return route


def _from_yaml(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"config file {path}: cannot read it ({e.strerror or e})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config file {path}: invalid YAML{at}") from None
    raw = _mapping(raw, str(path), _TOP_KEYS)
    return _expand(raw, env, str(path))


def _section(raw: dict[str, Any], key: str, where: str, known: set[str]) -> dict[str, Any]:
    return _mapping(raw.get(key), f"{where}.{key}", known)


def load_settings(
    option_path: str | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Defaults < YAML < environment < Python-API overrides, validated."""
    env = environment() if env is None else env
    path = find_config_file(option_path, env)
    raw = _from_yaml(path, env) if path else {}
    where = str(path) if path else "config"

    rollup = _section(raw, "rollup", where, _ROLLUP_KEYS)
    log = _section(raw, "log", where, _LOG_KEYS)
    bedrock = _section(raw, "bedrock", where, _BEDROCK_KEYS)
    routes_raw = raw.get("model_routes") or {}
    if not isinstance(routes_raw, dict):
        raise ConfigError(f"{where}.model_routes: expected a mapping of glob -> route")

    values: dict[str, tuple[Any, str]] = {}  # name -> (value, where it came from)

    def take(name: str, value: Any, origin: str) -> None:
        if value is not None:
            values[name] = (value, origin)

    for name in _VALUE_KEYS:
        take(name, raw.get(name), f"{where}.{name}")
    for name in _ROLLUP_KEYS:
        take(f"rollup.{name}", rollup.get(name), f"{where}.rollup.{name}")
    for name in _LOG_KEYS:
        take(f"log.{name}", log.get(name), f"{where}.log.{name}")
    take("bedrock.default_region", bedrock.get("default_region"), f"{where}.bedrock")

    env_names = {
        "GEMINI_CALO_API_KEYS": "api_keys",
        "GEMINI_CALO_PROXY_API_KEYS": "proxy_api_keys",
        "GEMINI_CALO_PROXY_AWS_CREDENTIALS": "proxy_aws_credentials",
        "GEMINI_CALO_BASE_URL": "base_url",
        "GEMINI_CALO_HTTP_PORT": "http_port",
        "GEMINI_CALO_MAX_BODY_BYTES": "max_body_bytes",
        "GEMINI_CALO_KEY_COOLDOWN_MAX": "key_cooldown_max",
        "GEMINI_CALO_MAX_RETRIES": "max_retries",
        "GEMINI_CALO_STREAM_IDLE_TIMEOUT": "stream_idle_timeout",
        "GEMINI_CALO_CONNECT_TIMEOUT": "connect_timeout",
        "GEMINI_CALO_LOG_LEVEL": "log.level",
        "GEMINI_CALO_LOG_FILE": "log.file",
        "GEMINI_CALO_MODEL_OVERRIDE": "model_override",
        "GEMINI_CALO_CONVERSATION_SUMMARIZATION_LRU_CACHE": "rollup.cache_size",
        "GEMINI_CALO_CONVERSATION_SIZE_SUMMARIZATION_THRESHOLD": "rollup.threshold",
        "GEMINI_CALO_ROLLUP": "rollup.enabled",
        "GEMINI_CALO_BEDROCK_REGION": "bedrock.default_region",
    }
    for env_name, name in env_names.items():
        if env.get(env_name, "").strip():
            take(name, env[env_name].strip(), env_name)
    for name, value in (overrides or {}).items():
        take(name, value, f"Calo({name}=...)")

    def get(name: str, convert: Callable[[Any, str], Any], default: Any) -> Any:
        if name not in values:
            return default
        value, origin = values[name]
        return convert(value, origin)

    level = get("log.level", lambda v, w: str(v).upper(), "CRITICAL")
    if level not in LOG_LEVELS:
        origin = values["log.level"][1]
        raise ConfigError(f"{origin}: unknown log level {level!r} (use {', '.join(LOG_LEVELS)})")

    routes = tuple(
        (glob, parse_route(glob, entry, f"{where}.model_routes"))
        for glob, entry in routes_raw.items()
    )
    if "model_routes" in values:  # Python API: RouteConfig objects (or dicts)
        given, origin = values["model_routes"]
        routes = tuple(
            (
                glob,
                check_route(glob, r, f"{origin}.{glob!r}")
                if isinstance(r, RouteConfig)
                else parse_route(glob, r, origin),
            )
            for glob, r in dict(given).items()
        )

    settings = Settings(
        api_keys=get("api_keys", _str_list, ()),
        proxy_api_keys=get("proxy_api_keys", _str_list, ()),
        proxy_aws_credentials=get("proxy_aws_credentials", _key_pairs, ()),
        base_url=get("base_url", _url, DEFAULT_BASE_URL),
        model_override=get("model_override", lambda v, w: str(v).strip() or None, None),
        model_routes=routes,
        rollup=RollupSettings(
            enabled=get("rollup.enabled", _boolean, True),
            cache_size=get("rollup.cache_size", lambda v, w: _number(v, w, int, 1), 20),
            threshold=get("rollup.threshold", lambda v, w: _number(v, w, int, 1), 4096),
            summarizer_model=get(
                "rollup.summarizer_model", lambda v, w: str(v), "gemini-2.5-flash"
            ),
            max_bytes=get("rollup.max_bytes", lambda v, w: _number(v, w, int, 1), 64 << 20),
            ttl=get("rollup.ttl", lambda v, w: _number(v, w, float, 0.001), None),
        ),
        log=LogSettings(level=level, file=get("log.file", lambda v, w: str(v), "app.log")),
        bedrock=BedrockSettings(get("bedrock.default_region", lambda v, w: str(v), "us-east-1")),
        http_port=get("http_port", lambda v, w: _number(v, w, int, 1), 8000),
        max_body_bytes=get("max_body_bytes", lambda v, w: _number(v, w, int, 1), 32 * 1024 * 1024),
        key_cooldown_max=get("key_cooldown_max", lambda v, w: _number(v, w, float, 0), 300.0),
        max_retries=get("max_retries", lambda v, w: _number(v, w, int, 0), 2),
        stream_idle_timeout=get(
            "stream_idle_timeout", lambda v, w: _number(v, w, float, 0.001), 120.0
        ),
        connect_timeout=get("connect_timeout", lambda v, w: _number(v, w, float, 0.001), 10.0),
        source=str(path) if path else "environment",
    )
    if not settings.api_keys and not any(r.api_keys or r.aws for _, r in settings.model_routes):
        raise ConfigError(
            "no api_keys configured: set GEMINI_CALO_API_KEYS or api_keys in the config file"
        )
    return settings


# Calo(...) keyword -> setting name (the Python API, SPEC section 9)
PYTHON_NAMES = {
    "api_keys": "api_keys",
    "proxy_api_keys": "proxy_api_keys",
    "base_url": "base_url",
    "model_override": "model_override",
    "model_routes": "model_routes",
    "log_level": "log.level",
    "log_file": "log.file",
    "rollup_enabled": "rollup.enabled",
    "rollup_cache_size": "rollup.cache_size",
    "rollup_threshold": "rollup.threshold",
    "summarizer_model": "rollup.summarizer_model",
    "bedrock_default_region": "bedrock.default_region",
    "max_body_bytes": "max_body_bytes",
    "max_retries": "max_retries",
    "key_cooldown_max": "key_cooldown_max",
    "connect_timeout": "connect_timeout",
    "stream_idle_timeout": "stream_idle_timeout",
}
