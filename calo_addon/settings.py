"""The settings calo_addon runs on: frozen dataclasses, built once by `config.load_settings`
(or given to `Calo(...)` as RouteConfig/AWSCredentials) and never changed afterwards."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
AUTH_STYLES = ("bearer", "x-goog-api-key", "none", "sigv4", "bedrock-passthrough")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class AWSCredentials:
    access_key: str
    secret_key: str
    session_token: str | None = None
    region: str = "us-east-1"


AuthProvider = Callable[..., Any]


@dataclass(frozen=True)
class RouteConfig:
    """Where models matching one glob go, and how they authenticate there."""

    url: str
    api_keys: tuple[str, ...] = ()
    auth: str | AuthProvider | None = "bearer"
    timeout: float = 300.0
    aws: AWSCredentials | None = None
    connect_timeout: float | None = None  # None: the global connect_timeout

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
class Settings:
    api_keys: tuple[str, ...] = ()
    proxy_api_keys: tuple[str, ...] = ()
    proxy_aws_credentials: tuple[
        tuple[str, str], ...
    ] = ()  # (access-key id, secret) for SigV4 clients
    base_url: str = DEFAULT_BASE_URL
    model_override: str | None = None
    model_routes: tuple[tuple[str, RouteConfig], ...] = ()
    rollup: RollupSettings = field(default_factory=RollupSettings)
    log: LogSettings = field(default_factory=LogSettings)
    bedrock: BedrockSettings = field(default_factory=BedrockSettings)
    http_port: int = 8000
    max_body_bytes: int = 32 * 1024 * 1024
    key_cooldown_max: float = 300.0
    max_retries: int = 2
    stream_idle_timeout: float = 120.0  # seconds between two chunks of a stream
    connect_timeout: float = 10.0  # seconds to open an upstream connection (routes may differ)
    source: str = "defaults"

    def secrets(self) -> frozenset[str]:
        """Every configured secret, for redaction."""
        found = set(self.api_keys) | set(self.proxy_api_keys)
        found |= {secret for _, secret in self.proxy_aws_credentials}
        for _, route in self.model_routes:
            found |= set(route.api_keys)
            if route.aws:
                found |= {route.aws.secret_key, route.aws.session_token or ""}
        return frozenset(s for s in found if s)
