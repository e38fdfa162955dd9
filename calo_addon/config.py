"""Configuration: defaults < YAML file < environment variables < `Calo(...)` keywords, parsed
once into the frozen dataclasses of settings.py.

Every setting is one row of `SETTINGS`: its path (the YAML key, dotted for sections, which is
also where it lives in `Settings`), its environment variable, its `Calo(...)` keyword and its
parser. Defaults live in the dataclasses only. Nothing downstream reads env vars or raw dicts:
`load_settings` returns a `Settings`, or raises `ConfigError` with one line naming the bad key
and value, or for a secret (a key, a password) only its place, never its value.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml
from dotenv import dotenv_values

from .clients import ClientConfig, duplicate_keys
from .settings import (
    APIS,
    AUTH_STYLES,
    LOG_LEVELS,
    Auth,
    AuthKind,
    AWSCredentials,
    BedrockSettings,
    LogSettings,
    MetricsSettings,
    RollupSettings,
    RouteConfig,
    Settings,
    StateSettings,
)


class ConfigError(ValueError):
    """A configuration that cannot work. The message is one line naming the problem."""


# ---------------------------------------------------------------- .env and ${VAR}


def read_dotenv(path: Path) -> dict[str, str]:
    """The variables a .env file sets (python-dotenv's reading of quotes, comments, export)."""
    if not path.is_file():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


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


# ---------------------------------------------------------------- value parsers
# Each takes (value, where) and returns the typed value or raises ConfigError naming `where`.

Parser = Callable[[Any, str], Any]


def str_list(value: Any, where: str, secret: bool = False) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{where}: expected a list of strings, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            kind = type(item).__name__
            shown = f"a {kind}" if secret else f"{item!r}"
            raise ConfigError(f"{where}[{i}]: expected a string, got {shown}")
    return tuple(v.strip() for v in value if v.strip())


def secret_list(value: Any, where: str) -> tuple[str, ...]:
    return str_list(value, where, secret=True)


def key_pairs(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    """{id: secret} from YAML, or "id:secret,id2:secret2" from the environment."""
    if isinstance(value, str):
        pairs = [item.split(":", 1) for item in value.split(",") if item.strip()]
        for i, pair in enumerate(pairs):
            if len(pair) != 2 or not pair[0].strip() or not pair[1].strip():
                raise ConfigError(f"{where}[{i}]: expected ACCESS_KEY_ID:SECRET")
        return tuple((k.strip(), v.strip()) for k, v in pairs)
    if isinstance(value, dict):
        for key_id, secret in value.items():
            if not isinstance(secret, str) or not secret:
                raise ConfigError(f"{where}.{key_id}: expected a secret string")
        return tuple((str(k), v) for k, v in value.items())
    raise ConfigError(f"{where}: expected a mapping of access-key id -> secret")


def number(kind: type, minimum: float) -> Parser:
    def parse(value: Any, where: str) -> Any:
        try:
            result = kind(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or result < minimum:
            raise ConfigError(f"{where}: expected a number >= {minimum}, got {value!r}")
        return result

    return parse


def boolean(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("on", "true", "yes", "1"):
        return True
    if text in ("off", "false", "no", "0"):
        return False
    raise ConfigError(f"{where}: expected on/off, got {value!r}")


def url(value: Any, where: str) -> str:
    if not isinstance(value, str) or not re.match(r"^https?://[^/\s]+", value):
        raise ConfigError(f"{where}: expected an http(s) URL, got {value!r}")
    return value.rstrip("/")


def text(value: Any, where: str) -> str:
    return str(value)


def optional_text(value: Any, where: str) -> str | None:
    return str(value).strip() or None


def log_level(value: Any, where: str) -> str:
    level = str(value).upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"{where}: unknown log level {level!r} (use {', '.join(LOG_LEVELS)})")
    return level


def one_of(choices: tuple[str, ...]) -> Parser:
    def parse(value: Any, where: str) -> str:
        if value not in choices:
            raise ConfigError(f"{where}: unknown value {value!r} (use {' | '.join(choices)})")
        return value

    return parse


def _mapping(value: Any, where: str, known: set[str] | frozenset[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    unknown = sorted(set(value) - known, key=str)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})"
        )
    return value


def listen_address(value: Any, where: str) -> str | None:
    """`host:port`, `[v6]:port` or a bare port (on 127.0.0.1) for a listener; `off` for none."""
    text = str(value).strip()
    if text.lower() in ("off", "false", "no", "0", "none"):
        return None
    host, _, port = text.rpartition(":")
    host = host or "127.0.0.1"
    if (
        not port.isdigit()
        or not 0 < int(port) < 65536
        or not re.fullmatch(r"[\w.-]+|\[[\w:.%]+\]", host)
    ):
        raise ConfigError(f"{where}: expected host:port or off, got {value!r}")
    return f"{host}:{int(port)}"


def redis_url(value: Any, where: str) -> str | None:
    """A redis://, rediss:// or unix:// URL. The value is never shown: it may hold a password."""
    text = str(value).strip()
    if not text:
        return None
    scheme = text.partition("://")[0].lower() if "://" in text else ""
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(
            f"{where}: expected a redis://[:password@]host:port/db URL (or rediss://, unix://); "
            f"the value given has {f'scheme {scheme!r}' if scheme else 'no scheme'}"
        )
    return text


# ---------------------------------------------------------------- auth and routes


def resolve_auth(value: Any, where: str, aws: AWSCredentials | None = None) -> Auth:
    """A style name, a callable, a create_*_provider value or "module:callable" (imported now,
    so a typo fails at startup), as one tagged Auth."""
    if isinstance(value, Auth):
        return value
    if value is None:
        return Auth("none")
    if isinstance(value, str) and value in AUTH_STYLES:
        if value == "sigv4":
            if aws is None:
                raise ConfigError(
                    f"{where}: auth sigv4 needs an aws block with access_key and secret_key"
                )
            return Auth("sigv4", aws=aws)
        return Auth(cast(AuthKind, value))  # one of AUTH_STYLES, checked just above
    if callable(value):
        return Auth("custom", provider=value)
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
        return Auth("custom", provider=target)
    raise ConfigError(
        f"{where}: unknown auth {value!r} (use {' | '.join(AUTH_STYLES)} | 'module:callable')"
    )


_ROUTE_FIELDS = frozenset(f.name for f in dataclasses.fields(RouteConfig))
_AWS_FIELDS = frozenset(f.name for f in dataclasses.fields(AWSCredentials))
_positive = number(float, 0.001)


def _aws(raw: Any, where: str) -> AWSCredentials | None:
    if raw is None or isinstance(raw, AWSCredentials):
        return raw
    creds = _mapping(raw, where, _AWS_FIELDS)
    if not creds.get("access_key") or not creds.get("secret_key"):
        raise ConfigError(f"{where}: needs access_key and secret_key")
    return AWSCredentials(**{k: str(v) for k, v in creds.items() if v is not None})


def route(glob: Any, raw: Any, where: str) -> RouteConfig:
    """One route, from a YAML mapping or a Python RouteConfig, through the same checks."""
    where = f"{where}.{glob!r}"
    if not isinstance(glob, str) or not glob:
        raise ConfigError(f"{where}: a route glob must be a non-empty string")
    if isinstance(raw, RouteConfig):
        raw = {f: getattr(raw, f) for f in _ROUTE_FIELDS}
    entry = _mapping(raw, where, _ROUTE_FIELDS)
    if "url" not in entry:
        raise ConfigError(f"{where}: route needs a url")
    aws = _aws(entry.get("aws"), f"{where}.aws")
    optional = {"timeout", "connect_timeout"}
    result = RouteConfig(
        url=url(entry["url"], f"{where}.url"),
        api_keys=secret_list(entry.get("api_keys"), f"{where}.api_keys"),
        auth=resolve_auth(entry.get("auth", "auto"), f"{where}.auth", aws),
        aws=aws,
        api=None if entry.get("api") is None else one_of(APIS)(entry["api"], f"{where}.api"),
        model=optional_text(entry["model"], f"{where}.model") if entry.get("model") else None,
        **{k: _positive(entry[k], f"{where}.{k}") for k in optional if entry.get(k) is not None},
    )
    if result.auth.pooled and not result.api_keys:
        raise ConfigError(f"{where}: needs api_keys (auth {result.auth.kind})")
    return result


def routes(value: Any, where: str) -> tuple[tuple[str, RouteConfig], ...]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping of glob -> route")
    return tuple((glob, route(glob, raw, where)) for glob, raw in value.items())


# ---------------------------------------------------------------- clients (clients.py)

_CLIENT_FIELDS = frozenset(f.name for f in dataclasses.fields(ClientConfig))
_CLIENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")  # safe in logs and metrics
_CLIENT_LIMITS = ("rpm", "tpm", "tokens_per_day", "tokens_per_month")
_count = number(int, 1)


def expiry(value: Any, where: str) -> datetime.date:
    """A date (YYYY-MM-DD, as YAML reads it or as a string) or an ISO 8601 date and time."""
    if isinstance(value, datetime.date):
        return value
    for kind in (datetime.date, datetime.datetime):
        try:
            return kind.fromisoformat(str(value).strip())
        except ValueError:
            pass
    raise ConfigError(f"{where}: expected a date (YYYY-MM-DD), got {value!r}")


def client(name: Any, raw: Any, where: str) -> ClientConfig:
    """One client, from a YAML mapping or a Python ClientConfig; errors name the client and
    the field, never a key."""
    where = f"{where}.{name}"
    if not isinstance(name, str) or not _CLIENT_NAME.match(name):
        raise ConfigError(f"{where}: a client name is up to 64 letters, digits and . _ @ -")
    if isinstance(raw, ClientConfig):
        raw = {f: getattr(raw, f) for f in _CLIENT_FIELDS}
    entry = _mapping(raw, where, _CLIENT_FIELDS)
    key = entry.get("key")
    if key is not None and (not isinstance(key, str) or not key.strip()):
        raise ConfigError(f"{where}.key: expected a non-empty string")
    aws = _aws(entry.get("aws"), f"{where}.aws")
    if not key and aws is None:
        raise ConfigError(f"{where}: needs a key or aws credentials (access_key, secret_key)")
    models = entry.get("models")
    if models is not None:
        models = str_list(models, f"{where}.models")
        if not models:
            raise ConfigError(f"{where}.models: no glob given (leave models out for any model)")
    expires = entry.get("expires")
    return ClientConfig(
        key=key.strip() if key else None,
        aws=aws,
        models=models,
        expires=None if expires is None else expiry(expires, f"{where}.expires"),
        **{k: _count(entry[k], f"{where}.{k}") for k in _CLIENT_LIMITS if entry.get(k) is not None},
    )


def clients(value: Any, where: str) -> tuple[tuple[str, ClientConfig], ...]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping of client name -> settings")
    return tuple((name, client(name, raw, where)) for name, raw in value.items())


def usage_db(value: Any, where: str) -> str | None:
    """A file path; "off" keeps usage in memory only."""
    path = str(value).strip()
    return None if path.lower() in ("", "off") else path


# ---------------------------------------------------------------- the table of settings


@dataclass(frozen=True)
class Setting:
    path: str  # YAML key ("section.key" inside a section); also the attribute path in Settings
    parse: Parser
    env: str | None = None
    python: str | None = None  # the Calo(...) keyword


SETTINGS: tuple[Setting, ...] = (
    Setting("api_keys", secret_list, "GEMINI_CALO_API_KEYS", "api_keys"),
    Setting("proxy_api_keys", secret_list, "GEMINI_CALO_PROXY_API_KEYS", "proxy_api_keys"),
    Setting("proxy_aws_credentials", key_pairs, "GEMINI_CALO_PROXY_AWS_CREDENTIALS"),
    Setting("base_url", url, "GEMINI_CALO_BASE_URL", "base_url"),
    Setting("model_override", optional_text, "GEMINI_CALO_MODEL_OVERRIDE", "model_override"),
    Setting("model_routes", routes, None, "model_routes"),
    Setting("http_port", number(int, 1), "GEMINI_CALO_HTTP_PORT"),
    Setting("max_body_bytes", number(int, 1), "GEMINI_CALO_MAX_BODY_BYTES", "max_body_bytes"),
    Setting(
        "key_cooldown_max", number(float, 0), "GEMINI_CALO_KEY_COOLDOWN_MAX", "key_cooldown_max"
    ),
    Setting("max_retries", number(int, 0), "GEMINI_CALO_MAX_RETRIES", "max_retries"),
    Setting("timeout", _positive, "GEMINI_CALO_TIMEOUT", "timeout"),
    Setting(
        "stream_idle_timeout", _positive, "GEMINI_CALO_STREAM_IDLE_TIMEOUT", "stream_idle_timeout"
    ),
    Setting("connect_timeout", _positive, "GEMINI_CALO_CONNECT_TIMEOUT", "connect_timeout"),
    Setting("log.level", log_level, "GEMINI_CALO_LOG_LEVEL", "log_level"),
    Setting("log.file", text, "GEMINI_CALO_LOG_FILE", "log_file"),
    Setting("rollup.enabled", boolean, "GEMINI_CALO_ROLLUP", "rollup_enabled"),
    Setting(
        "rollup.cache_size",
        number(int, 1),
        "GEMINI_CALO_CONVERSATION_SUMMARIZATION_LRU_CACHE",
        "rollup_cache_size",
    ),
    Setting(
        "rollup.threshold",
        number(int, 1),
        "GEMINI_CALO_CONVERSATION_SIZE_SUMMARIZATION_THRESHOLD",
        "rollup_threshold",
    ),
    Setting("rollup.summarizer_model", text, None, "summarizer_model"),
    Setting("rollup.max_bytes", number(int, 1)),
    Setting("rollup.ttl", _positive),
    Setting("bedrock.default_region", text, "GEMINI_CALO_BEDROCK_REGION", "bedrock_default_region"),
    Setting("clients", clients, None, "clients"),
    Setting("state.usage_db", usage_db, "GEMINI_CALO_USAGE_DB", "usage_db"),
    Setting("metrics.listen", listen_address, "GEMINI_CALO_METRICS_LISTEN", "metrics_listen"),
    Setting("state.redis_url", redis_url, "GEMINI_CALO_REDIS_URL", "redis_url"),
)
SECTIONS: dict[str, type] = {
    "rollup": RollupSettings,
    "log": LogSettings,
    "bedrock": BedrockSettings,
    "metrics": MetricsSettings,
    "state": StateSettings,
}
PYTHON_NAMES = {s.python: s for s in SETTINGS if s.python}


def _allowed_keys() -> dict[str, frozenset[str]]:
    """YAML keys allowed at the top ("") and in each section."""
    keys: dict[str, set[str]] = {"": set()}
    for setting in SETTINGS:
        section, _, key = setting.path.rpartition(".")
        keys[""].add(section or key)
        if section:
            keys.setdefault(section, set()).add(key)
    return {section: frozenset(names) for section, names in keys.items()}


_ALLOWED = _allowed_keys()


# ---------------------------------------------------------------- loading


def find_config_file(option_path: str | None, env: Mapping[str, str]) -> Path | None:
    if option_path:
        return Path(option_path).expanduser()
    if env.get("GEMINI_CALO_CONFIG"):
        return Path(env["GEMINI_CALO_CONFIG"]).expanduser()
    default = Path.cwd() / "calo.yaml"
    return default if default.is_file() else None


def _from_yaml(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """The file's settings by dotted path, ${VAR} expanded, unknown keys refused."""
    try:
        content = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"config file {path}: cannot read it ({e.strerror or e})") from None
    try:
        raw = yaml.safe_load(content)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config file {path}: invalid YAML{at}") from None
    raw = _expand(_mapping(raw, str(path), _ALLOWED[""]), env, str(path))
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _ALLOWED and key != "":
            section = _mapping(value, f"{path}.{key}", _ALLOWED[key])
            flat.update((f"{key}.{k}", v) for k, v in section.items())
        else:
            flat[key] = value
    return flat


def load_settings(
    option_path: str | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Defaults < YAML < environment < Python-API overrides (by `Calo(...)` keyword)."""
    env = environment() if env is None else env
    path = find_config_file(option_path, env)
    from_file = _from_yaml(path, env) if path else {}
    where = str(path) if path else "config"
    overrides = overrides or {}

    values: dict[str, Any] = {}
    for setting in SETTINGS:
        given: tuple[Any, str] | None = None
        if from_file.get(setting.path) is not None:
            given = (from_file[setting.path], f"{where}.{setting.path}")
        if setting.env and env.get(setting.env, "").strip():
            given = (env[setting.env].strip(), setting.env)
        if setting.python and overrides.get(setting.python) is not None:
            given = (overrides[setting.python], f"Calo({setting.python}=...)")
        if given is not None:
            values[setting.path] = setting.parse(*given)

    sections = {
        name: cls(**{k.partition(".")[2]: v for k, v in values.items() if k.startswith(name + ".")})
        for name, cls in SECTIONS.items()
    }
    top = {k: v for k, v in values.items() if "." not in k}
    settings = Settings(**top, **sections, source=str(path) if path else "environment")
    if not settings.api_keys and not any(r.api_keys or r.aws for _, r in settings.model_routes):
        raise ConfigError(
            "no api_keys configured: set GEMINI_CALO_API_KEYS or api_keys in the config file"
        )
    if (shared := duplicate_keys(settings)) is not None:
        raise ConfigError(shared)
    return settings
