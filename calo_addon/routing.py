"""Model routing: first glob (fnmatch) that matches the model wins; else the default upstream.

An `Upstream` is everything the credentials step needs: where to send, how to authenticate,
which key pool to rotate, and the timeout. Route order is config order.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from .dialects import Operation
from .keypool import KeyPool
from .settings import AuthProvider, AWSCredentials, RouteConfig, Settings

GOOGLE_HOST = "generativelanguage.googleapis.com"


@dataclass(frozen=True)
class Upstream:
    name: str  # "default" or the route's glob
    scheme: str
    host: str
    port: int
    path_prefix: str
    auth: str | AuthProvider
    keys: KeyPool
    timeout: float
    aws: AWSCredentials | None = None
    is_google: bool = False
    connect_timeout: float = 10.0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_url(cls, name: str, url: str, auth, keys: KeyPool, timeout: float, **kw) -> Upstream:
        parts = urlsplit(url)
        return cls(
            name=name,
            scheme=parts.scheme,
            host=parts.hostname or "",
            port=parts.port or (443 if parts.scheme == "https" else 80),
            path_prefix=parts.path.rstrip("/"),
            auth=auth,
            keys=keys,
            timeout=timeout,
            **kw,
        )


class Router:
    def __init__(self, settings: Settings):
        self.routes: tuple[tuple[str, Upstream], ...] = tuple(
            (glob, _route_upstream(glob, route, settings)) for glob, route in settings.model_routes
        )
        self._default_keys = KeyPool("default", settings.api_keys, settings.key_cooldown_max)
        self._base_url = settings.base_url
        self._region = settings.bedrock.default_region
        self._connect_timeout = settings.connect_timeout
        self._defaults: dict[tuple[str, str], Upstream] = {}

    def route_addresses(self) -> frozenset[str]:
        return frozenset(upstream.address for _, upstream in self.routes)

    def select(self, op: Operation, model: str | None, region: str | None = None) -> Upstream:
        if model is not None:
            for glob, upstream in self.routes:
                if fnmatchcase(model, glob):
                    return upstream
        return self.default_for(op, region or self._region)

    def default_for(self, op: Operation, region: str) -> Upstream:
        url = op.dialect.default_url(region)
        key = (op.dialect.default_auth, url or "")
        if key not in self._defaults:
            # Gemini and OpenAI share the global pool: one rotation over the real keys.
            # base_url is the Gemini upstream by definition (GEMINI_CALO_BASE_URL), so OpenAI
            # paths sent there use Google's /v1beta/openai/ layer.
            self._defaults[key] = Upstream.from_url(
                "default",
                url or self._base_url,
                op.dialect.default_auth,
                self._default_keys,
                300.0,
                is_google=url is None,
                connect_timeout=self._connect_timeout,
            )
        return self._defaults[key]

    def pools(self) -> list[KeyPool]:
        return [self._default_keys] + [u.keys for _, u in self.routes]


def _route_upstream(glob: str, route: RouteConfig, settings: Settings) -> Upstream:
    # the Python API's providers (create_aws_sigv4_provider, ...) name a built-in style
    auth = getattr(route.auth, "auth_style", route.auth)
    return Upstream.from_url(
        glob,
        route.url,
        auth,
        KeyPool(glob, route.api_keys, settings.key_cooldown_max),
        route.timeout,
        aws=getattr(route.auth, "credentials", None) or route.aws,
        is_google=urlsplit(route.url).hostname == GOOGLE_HOST,
        connect_timeout=route.connect_timeout or settings.connect_timeout,
    )
