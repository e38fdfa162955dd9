"""Client keys with limits: who may use which models, and how much.

`proxy_api_keys` are unrestricted. Each entry of `clients:` is a named key (and/or SigV4 proxy
credentials) with any of: `models` (fnmatch globs), `rpm`, `tpm`, `tokens_per_day`,
`tokens_per_month`, `expires`. inbound_auth says which client a request authenticated as;
`ClientGate.admit` is the one pipeline step that applies the client's rules, once the model
is known (after model_override), before anything is routed or sent:

- expired key: 401;
- a model no glob allows: 403, naming the model;
- over a limit: 429 with Retry-After until the window frees (usage.py counts).

Every refusal is in the caller's API shape (the pipeline renders a `Refusal`), and nothing goes
upstream. Usage is charged from what the upstream reported when the call ends (`charge`).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from .dialects import Operation, Refusal
from .usage import ClientUsage, Limits, LocalUsage, UsageStore
from .usage_db import Counts, UsageFile

if TYPE_CHECKING:
    from .settings import AWSCredentials, Settings
    from .translate.neutral import Usage


@dataclass(frozen=True)
class ClientConfig:
    """One named client. `models` None: any model. `expires`: a date (the key stops working
    when that day begins, UTC) or an aware datetime (at that instant)."""

    key: str | None = field(default=None, repr=False)  # never shown
    aws: AWSCredentials | None = field(default=None, repr=False)  # SigV4 proxy credentials
    models: tuple[str, ...] | None = None
    rpm: int | None = None
    tpm: int | None = None
    tokens_per_day: int | None = None
    tokens_per_month: int | None = None
    expires: datetime.date | datetime.datetime | None = None

    def __post_init__(self) -> None:
        if self.models is not None:
            object.__setattr__(self, "models", tuple(self.models))

    @property
    def limits(self) -> Limits:
        return Limits(self.rpm, self.tpm, self.tokens_per_day, self.tokens_per_month)

    @property
    def expires_at(self) -> float | None:
        """The moment the key stops working, as a Unix time."""
        when = self.expires
        if when is None:
            return None
        if not isinstance(when, datetime.datetime):
            when = datetime.datetime(when.year, when.month, when.day, tzinfo=datetime.UTC)
        elif when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        return when.timestamp()

    def allows(self, model: str | None, op: Operation) -> bool:
        """Whether a glob allows `model`. A call that names no model uses none (a model list)
        unless it carries a body, where a model is what it asks for."""
        if self.models is None:
            return True
        if model is None:
            return not op.needs_body
        return any(fnmatchcase(model, glob) for glob in self.models)


def tokens_of(usage: Usage | None) -> Counts | None:
    """What a call is charged: the tokens its upstream reported (None: nothing reported)."""
    if usage is None or usage.total_tokens is None:
        return None
    return Counts(
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        tokens=usage.total_tokens,
    )


class ClientGate:
    """The configured clients' rules, over the usage store shared by every pipeline (so a
    reload keeps usage, and a changed limit applies to the next request)."""

    def __init__(self, clients: Mapping[str, ClientConfig], store: UsageStore | None):
        self.clients = dict(clients)
        if self.clients and store is None:
            store = LocalUsage()
        self.store = store

    async def admit(
        self, client: str | None, op: Operation, model: str | None, now: float | None = None
    ) -> None:
        """Raise Refusal (401, 403, 429 with Retry-After) unless `client` may make this call
        now; when it may, the request is counted. None (an unrestricted key): always."""
        if client is None or self.store is None or (config := self.clients.get(client)) is None:
            return
        now = time.time() if now is None else now
        expires_at = config.expires_at
        if expires_at is not None and now >= expires_at:
            raise Refusal(401, f"the proxy API key of client {client} expired on {config.expires}")
        if not config.allows(model, op):
            allowed = ", ".join(config.models or ())
            what = f"model {model!r}" if model else "a call that names no model"
            raise Refusal(403, f"client {client} may not use {what} (allowed: {allowed})")
        over = await self.store.admit(client, config.limits, now)
        if over is not None:
            wait = over.retry_after_header
            raise Refusal(
                429,
                f"client {client} is over its {over.limit} limit ({over.value}); retry in {wait}s",
                headers={"Retry-After": wait},
            )

    def counts_tokens(self, client: str | None) -> bool:
        """Whether `client` has a token limit (its calls' usage must be reported)."""
        config = self.clients.get(client) if client is not None else None
        limits = config.limits if config is not None else None
        return limits is not None and any(
            value is not None
            for value in (limits.tpm, limits.tokens_per_day, limits.tokens_per_month)
        )

    def charge(self, client: str | None, usage: Usage | None, now: float | None = None) -> None:
        """Charge a finished call's reported tokens to its client (none: nobody's)."""
        counts = tokens_of(usage)
        if client in self.clients and counts is not None and self.store is not None:
            self.store.charge(client, counts, time.time() if now is None else now)

    def report(self, now: float | None = None) -> str:
        """Each client's usage and limits, one line each (the `calo.usage` command)."""
        if not self.clients or self.store is None:
            return "calo_addon: no clients configured"
        now = time.time() if now is None else now
        return "\n".join(
            describe(name, config, self.store.usage(name, now))
            for name, config in self.clients.items()
        )


def describe(name: str, config: ClientConfig, usage: ClientUsage) -> str:
    """One client's line: counts as "used/limit" where a limit applies."""

    def of(value: int, limit: int | None) -> str:
        return f"{value}/{limit}" if limit is not None else str(value)

    today, month, total = usage.today, usage.month, usage.total
    minute_requests = of(usage.last_minute_requests, config.rpm)
    minute_tokens = of(usage.last_minute_tokens, config.tpm)
    day_tokens = of(today.tokens, config.tokens_per_day)
    day_split = f"({today.input_tokens} in, {today.output_tokens} out)"
    parts = [
        f"last minute {minute_requests} requests, {minute_tokens} tokens",
        f"today {today.requests} requests, {day_tokens} tokens {day_split}",
        f"this month {month.requests} requests, {of(month.tokens, config.tokens_per_month)} tokens",
        f"in all {total.requests} requests, {total.tokens} tokens",
        "models " + (", ".join(config.models) if config.models is not None else "any"),
    ]
    if config.expires is not None:
        parts.append(f"expires {config.expires}")
    return f"client {name}: " + "; ".join(parts)


# ---------------------------------------------------------------- configuration checks


def duplicate_keys(settings: Settings) -> str | None:
    """A key (or SigV4 access-key id) given to two owners, as one line naming the owners and
    never the key; None when every key has one owner."""
    found = (("key", _key_owners(settings)), ("AWS access key id", _id_owners(settings)))
    for what, owners in found:
        for names in owners.values():
            clients = [n for n in names if n.startswith("client ")]
            if clients and len(names) > 1:  # proxy_api_keys listed twice is harmless
                shown = " and ".join(dict.fromkeys(names))
                return f"clients: the same {what} is given to {shown}; each needs its own"
    return None


def _key_owners(settings: Settings) -> dict[str, list[str]]:
    owners: dict[str, list[str]] = {}
    for key in settings.proxy_api_keys:
        owners.setdefault(key, []).append("proxy_api_keys")
    for name, client in settings.clients:
        if client.key:
            owners.setdefault(client.key, []).append(f"client {name}")
    return owners


def _id_owners(settings: Settings) -> dict[str, list[str]]:
    owners: dict[str, list[str]] = {}
    for key_id, _ in settings.proxy_aws_credentials:
        owners.setdefault(key_id, []).append("proxy_aws_credentials")
    for name, client in settings.clients:
        if client.aws is not None:
            owners.setdefault(client.aws.access_key, []).append(f"client {name}")
    return owners


def open_store(settings: Settings, current: UsageStore | None) -> UsageStore | None:
    """The usage store for these settings: the current one when it still fits (a reload keeps
    usage), else one over `state.usage_db`. None while no client is configured."""
    if not settings.clients:
        return current
    path = settings.state.usage_db
    if current is not None and getattr(current, "path", None) == path:
        return current
    try:
        store = LocalUsage(UsageFile(path) if path else None)
    except Exception as e:  # noqa: BLE001 - sqlite3's errors, a directory, a permission
        from .config import ConfigError  # here only: config.py imports this module

        raise ConfigError(f"state.usage_db: cannot open {path} ({e})") from None
    if current is not None:
        current.close()
    return store
