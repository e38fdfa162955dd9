"""Everything built from one configuration, swapped whole when the configuration changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import config as cfg
from . import redact
from .calllog import CallLog
from .inbound_auth import ProxyKeyCheck
from .model_override import ModelOverride
from .rollup import Rollup
from .routing import Router
from .summarizer import Summarizer


@dataclass(frozen=True)
class Pipeline:
    """Everything built from one configuration. Swapped whole on reload; flows keep theirs."""

    settings: cfg.Settings
    inbound: ProxyKeyCheck
    override: ModelOverride
    router: Router
    log: CallLog
    scrub: redact.Scrubber
    rollup: Rollup | None
    route_addresses: frozenset[str]  # host:port of every route's url

    @classmethod
    def build(cls, settings: cfg.Settings, transformer: Callable[[str], str] | None) -> Pipeline:
        router = Router(settings)
        scrub = redact.Scrubber(settings.secrets())
        return cls(
            settings=settings,
            inbound=ProxyKeyCheck(settings.proxy_api_keys, settings.proxy_aws_credentials),
            override=ModelOverride(settings.model_override, transformer),
            router=router,
            log=CallLog(settings.log.file, settings.log.level, scrub),
            scrub=scrub,
            rollup=Rollup(settings.rollup, Summarizer(router, settings.rollup.summarizer_model))
            if settings.rollup.enabled
            else None,
            route_addresses=router.route_addresses(),
        )
