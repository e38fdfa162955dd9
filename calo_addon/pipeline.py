"""Everything built from one configuration, swapped whole when the configuration changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import mitm, redact
from .calllog import CallLog
from .clients import ClientGate
from .inbound_auth import ProxyKeyCheck
from .model_override import ModelOverride
from .rollup import Rollup
from .routing import Router
from .settings import Settings
from .state import SharedState
from .summarizer import Summarizer
from .translation import Memory
from .usage import UsageStore


@dataclass(frozen=True)
class Pipeline:
    """Everything built from one configuration. Swapped whole on reload; flows keep theirs."""

    settings: Settings
    inbound: ProxyKeyCheck
    override: ModelOverride
    router: Router
    log: CallLog
    scrub: redact.Scrubber
    rollup: Rollup | None
    summarizer: Summarizer
    memory: Memory  # what translated calls remember (kept by the addon across reloads)
    route_addresses: frozenset[str]  # host:port of every route's url
    clients: ClientGate  # named client keys' rules, over usage kept across reloads

    @classmethod
    def build(
        cls,
        settings: Settings,
        transformer: Callable[[str], str] | None,
        memory: Memory | None = None,
        usage: UsageStore | None = None,
        state: SharedState | None = None,
    ) -> Pipeline:
        """`memory`, `usage`: kept across reloads by the addon (new, in memory, when not
        given). `state`: what other processes share (state.py); key pools, the rollup and the
        signature memory join it."""
        router = Router(settings)
        scrub = redact.Scrubber(settings.secrets())
        summarizer = Summarizer(router, settings.rollup.summarizer_model, mitm.send)
        pipeline = cls(
            settings=settings,
            inbound=ProxyKeyCheck.from_settings(settings),
            override=ModelOverride(settings.model_override, transformer),
            router=router,
            log=CallLog(settings.log.file, settings.log.level, scrub),
            scrub=scrub,
            rollup=Rollup(settings.rollup, summarizer) if settings.rollup.enabled else None,
            summarizer=summarizer,
            memory=memory if memory is not None else Memory(),
            route_addresses=router.route_addresses(),
            clients=ClientGate(dict(settings.clients), usage),
        )
        if state is not None:  # shared state (issue 14): pools' cooldowns, rollup summaries
            for pool in router.pools():
                pool.share(state)
            if pipeline.rollup is not None:
                pipeline.rollup.share(state)
        return pipeline

    def status(self, down: dict[str, str]) -> str:
        """Keys per route with use counts and cooldowns, the rollup cache, upstreams down."""
        lines = []
        for pool in self.router.pools():
            keys = ", ".join(
                f"{label} uses={uses} " + (f"cooling {left:.0f}s" if left else "ready")
                for label, uses, left in pool.state()
            )
            lines.append(f"route {pool.name}: {len(pool.keys)} keys ({keys or 'none'})")
        if self.rollup is not None:
            stats = self.rollup.stats()
            lines.append(
                f"rollup cache: {stats['entries']} conversations, {stats['ready']} summarised, "
                f"{stats['bytes']} bytes; summariser calls: {self.summarizer.calls}"
            )
        for address, reason in down.items():
            lines.append(f"upstream {address}: down ({reason})")
        return "\n".join(lines)
