"""The settings calo_addon runs on: frozen dataclasses, built once by `config.load_settings`
(or given to `Calo(...)` as RouteConfig/AWSCredentials) and never changed afterwards.

Each field's default is spelled here and only here; config.py's table of settings says where
each value may come from (YAML path, environment variable, `Calo(...)` keyword).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from .clients import ClientConfig

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
# "auto": the credential header of the protocol the call speaks upstream (Gemini x-goog-api-key,
# OpenAI Authorization: Bearer, Anthropic x-api-key), from the route's api_keys
AuthStyle = Literal[
    "auto",
    "bearer",
    "x-goog-api-key",
    "x-api-key",
    "none",
    "sigv4",
    "bedrock-passthrough",
]
AUTH_STYLES: tuple[str, ...] = get_args(AuthStyle)
APIS = ("gemini", "openai", "anthropic", "bedrock", "responses")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class AWSCredentials:
    access_key: str
    secret_key: str
    session_token: str | None = None
    region: str = "us-east-1"


AuthProvider = Callable[..., Any]
AuthKind = Literal[AuthStyle, "custom"]  # "custom": a module:callable provider


@dataclass(frozen=True)
class Auth:
    """How a route authenticates upstream, resolved once from whatever the user gave
    (a style name, a `module:callable` string, a callable, or a create_*_provider value)."""

    kind: AuthKind
    provider: AuthProvider | None = None  # kind "custom": given the flow, sets credentials
    aws: AWSCredentials | None = None  # kind "sigv4"

    @property
    def pooled(self) -> bool:
        """Whether the route's own api_keys rotate into a header."""
        return self.kind in ("auto", "bearer", "x-goog-api-key", "x-api-key")


@dataclass(frozen=True)
class RouteConfig:
    """Where models matching one glob go, and how they authenticate there."""

    url: str
    api_keys: tuple[str, ...] = ()
    auth: Any = "auto"  # a style name, "module:callable", a callable, or an Auth
    timeout: float | None = None  # seconds for the response headers; None: the global timeout
    aws: AWSCredentials | None = None
    connect_timeout: float | None = None  # None: the global connect_timeout
    api: str | None = None  # the protocol the upstream speaks; None: inferred from the url
    model: str | None = None  # the model name sent upstream; None: the client's (overridden)

    def __post_init__(self) -> None:
        object.__setattr__(self, "api_keys", tuple(self.api_keys))
        object.__setattr__(self, "url", self.url.rstrip("/"))
        if self.auth is None:
            object.__setattr__(self, "auth", "none")


@dataclass(frozen=True)
class RollupSettings:
    enabled: bool = True
    cache_size: int = 20
    threshold: int = 4096
    summarizer_model: str = "gemini-2.5-flash"
    max_bytes: int = 64 * 1024 * 1024  # the cache's bound in bytes, beside cache_size entries
    ttl: float | None = None  # seconds an entry lives; None: until evicted


@dataclass(frozen=True)
class LogSettings:
    level: str = "CRITICAL"
    file: str = "app.log"


@dataclass(frozen=True)
class BedrockSettings:
    default_region: str = "us-east-1"


@dataclass(frozen=True)
class MetricsSettings:
    listen: str | None = "127.0.0.1:9464"  # host:port of GET /metrics; None: metrics off


@dataclass(frozen=True)
class StateSettings:
    usage_db: str | None = "calo-usage.db"  # clients' usage (SQLite); None: memory only
    redis_url: str | None = None  # redis:// or rediss:// URL; None: state in this process only


@dataclass(frozen=True)
class Settings:
    api_keys: tuple[str, ...] = ()
    proxy_api_keys: tuple[str, ...] = ()
    # (access-key id, secret) pairs SigV4 clients may sign with
    proxy_aws_credentials: tuple[tuple[str, str], ...] = ()
    base_url: str = DEFAULT_BASE_URL
    model_override: str | None = None
    model_routes: tuple[tuple[str, RouteConfig], ...] = ()
    rollup: RollupSettings = field(default_factory=RollupSettings)
    log: LogSettings = field(default_factory=LogSettings)
    bedrock: BedrockSettings = field(default_factory=BedrockSettings)
    # named client keys with limits (clients.py), in config order
    clients: tuple[tuple[str, ClientConfig], ...] = ()
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    state: StateSettings = field(default_factory=StateSettings)
    http_port: int = 8000
    max_body_bytes: int = 32 * 1024 * 1024
    key_cooldown_max: float = 300.0
    max_retries: int = 2
    timeout: float = 300.0  # seconds for the response headers (routes may differ)
    stream_idle_timeout: float = 120.0  # seconds between two chunks of a stream
    connect_timeout: float = 10.0  # seconds to open an upstream connection (routes may differ)
    source: str = "defaults"

    def secrets(self) -> frozenset[str]:
        """Every configured secret, for redaction."""
        found = set(self.api_keys) | set(self.proxy_api_keys)
        found |= {secret for _, secret in self.proxy_aws_credentials}
        for _, client in self.clients:
            found |= {client.key or "", client.aws.secret_key if client.aws else ""}
        for _, route in self.model_routes:
            found |= set(route.api_keys)
            for creds in (route.aws, getattr(route.auth, "aws", None)):
                if creds:
                    found |= {creds.secret_key, creds.session_token or ""}
        found.add(redis_password(self.state.redis_url) or "")
        return frozenset(s for s in found if s)


def redis_password(url: str | None) -> str | None:
    """The password a Redis URL carries, if any (a secret: scrubbed from every log line)."""
    if not url:
        return None
    return urlsplit(url).password
