"""Model routing: the first glob (fnmatch) that matches the model wins; else the default
upstream for where the call was going.

An `Upstream` is everything the later steps need: where to send, which protocol it speaks
(`api`, a dialect), how to authenticate, which key pool to rotate, the timeouts, and the model
name to send. Route order is config order.

Unrouted calls: in reverse mode Gemini, OpenAI, Anthropic and Responses calls go to
`base_url` (Gemini's API by definition) and Bedrock calls to the region's Bedrock host. In
explicit proxy mode the client chose a host, and an unrouted call stays there: Google's host
uses base_url, a Bedrock host itself, and any other host the first route configured for it
(with that route's keys); a host no route configures is refused, naming the missing route.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from .config import resolve_auth
from .dialects import BEDROCK, BY_NAME, OPENAI, Dialect, Operation, Refusal, api_for_auth, api_host
from .dialects.gemini import GEMINI
from .keypool import KeyPool
from .settings import Auth, RouteConfig, Settings

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def normal_host(host: str) -> str:
    """A host name as routing compares it: lower case, no trailing dot, loopback as one name."""
    host = host.strip("[]").rstrip(".").lower()
    return "127.0.0.1" if host in LOOPBACK else host


@dataclass(frozen=True)
class Upstream:
    name: str  # "default" or the route's glob
    scheme: str
    host: str
    port: int
    path_prefix: str
    auth: Auth
    keys: KeyPool
    timeout: float
    connect_timeout: float
    api: Dialect  # the protocol the upstream speaks
    api_explicit: bool = False  # the route said `api:` (else inferred from the url)
    model: str | None = None  # the model name sent upstream (the route's `model:`)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_url(cls, name: str, url: str, **kw) -> Upstream:
        parts = urlsplit(url)
        return cls(
            name=name,
            scheme=parts.scheme,
            host=parts.hostname or "",
            port=parts.port or (443 if parts.scheme == "https" else 80),
            path_prefix=parts.path.rstrip("/"),
            **kw,
        )

    def wire(self, client: Dialect) -> Dialect:
        """The protocol a call from `client` speaks on this upstream: the client's own when the
        upstream speaks it (passthrough), else the upstream's (translated). A protocol the
        upstream's API also serves (OpenAI on Google's) passes through unless the route names
        its `api:`."""
        if client is self.api or (client.name in self.api.also_serves and not self.api_explicit):
            return client
        return self.api

    def credential_style(self, wire: Dialect) -> str:
        """The auth style a call speaking `wire` uses here ("auto" follows the protocol)."""
        return wire.default_auth if self.auth.kind == "auto" else self.auth.kind


def infer_api(route: RouteConfig, auth: Auth) -> Dialect:
    """SPEC 10: a route's `api:`, else from its url (Google, Bedrock, Anthropic hosts), else
    OpenAI-compatible. An auth only one API uses says that API whatever the host: SigV4 is
    Bedrock's, x-goog-api-key Gemini's."""
    if route.api:
        return BY_NAME[route.api]
    if route.aws is not None:  # AWS credentials sign for Bedrock
        return BEDROCK
    host = normal_host(urlsplit(route.url).hostname or "")
    return api_for_auth(auth.kind) or api_host(host) or OPENAI


class Router:
    def __init__(self, settings: Settings):
        self.routes: tuple[tuple[str, Upstream], ...] = tuple(
            (glob, _route_upstream(glob, route, settings)) for glob, route in settings.model_routes
        )
        self._default_keys = KeyPool("default", settings.api_keys, settings.key_cooldown_max)
        self._settings = settings
        self._defaults: dict[str, Upstream] = {}
        self._by_host: dict[str, Upstream] = {}
        for _, upstream in self.routes:
            self._by_host.setdefault(normal_host(upstream.host), upstream)

    def route_addresses(self) -> frozenset[str]:
        """host:port of every route (normalised), the hosts explicit mode claims besides APIs'."""
        return frozenset(f"{normal_host(u.host)}:{u.port}" for _, u in self.routes)

    def select(
        self,
        op: Operation,
        model: str | None,
        region: str | None = None,
        client_host: str | None = None,
    ) -> Upstream:
        """The route for `model`, else the default for this call. `client_host`: the host the
        client asked for in explicit proxy mode (None in reverse mode)."""
        if model is not None:
            for glob, upstream in self.routes:
                if fnmatchcase(model, glob):
                    return upstream
        region = region or self._settings.bedrock.default_region
        if client_host is None:
            return self._default(op.dialect.default_url(region) or self._settings.base_url)
        host = normal_host(client_host)
        if GEMINI.owns_host(host):
            return self._default(self._settings.base_url)
        if BEDROCK.owns_host(host):
            return self._default(BEDROCK.default_url(region))
        if host in self._by_host:
            return self._by_host[host]
        raise Refusal(
            404,
            f"no route for model {model!r} on {host}: add a model_routes entry with a url on "
            f"{host} (calls to a host are sent there only with that host's keys)",
        )

    def _default(self, url: str) -> Upstream:
        if url not in self._defaults:
            settings = self._settings
            bedrock = BEDROCK.owns_host(urlsplit(url).hostname or "")
            # base_url is the Gemini upstream by definition (GEMINI_CALO_BASE_URL); the
            # global keys rotate in one pool for every call that goes there.
            self._defaults[url] = Upstream.from_url(
                "default",
                url,
                auth=Auth("bedrock-passthrough") if bedrock else Auth("auto"),
                keys=self._default_keys,
                timeout=settings.timeout,
                connect_timeout=settings.connect_timeout,
                api=BEDROCK if bedrock else GEMINI,
            )
        return self._defaults[url]

    def by_name(self, name: str, url: str | None = None) -> Upstream | None:
        """A route by its glob, or the default upstream for `url` (replays and retries)."""
        if name == "default":
            return self._default(url or self._settings.base_url)
        return next((u for glob, u in self.routes if glob == name), None)

    def pools(self) -> list[KeyPool]:
        return [self._default_keys] + [u.keys for _, u in self.routes]


def _route_upstream(glob: str, route: RouteConfig, settings: Settings) -> Upstream:
    auth = resolve_auth(route.auth, f"route {glob!r}", route.aws)
    return Upstream.from_url(
        glob,
        route.url,
        auth=auth,
        keys=KeyPool(glob, route.api_keys, settings.key_cooldown_max),
        timeout=route.timeout or settings.timeout,
        connect_timeout=route.connect_timeout or settings.connect_timeout,
        api=infer_api(route, auth),
        api_explicit=route.api is not None,
        model=route.model,
    )
