"""The metrics of what the proxy holds now, read from the live objects when /metrics is asked.

- `calo_keys_cooling` (gauge, by route): keys resting after a 429/401/403;
- `calo_key_cooldowns_total` (counter, by route): keys put in cooldown by this process;
- `calo_upstream_up` (gauge, by upstream host:port): 0 while the proxy holds it for down;
- `calo_shared_state_up` (gauge, by backend): 0 while Redis is unreachable;
- `calo_rollup_summaries_cached` and `calo_thought_signatures_remembered` (gauges).

`LiveCollector` is a prometheus_client custom collector: one process serves its own /metrics
from it. A worker of `gemini-calo --workers N` serves none: `Mirror` copies the same families
into prometheus_client's multiprocess metrics every second (gauges: the largest value across
live workers, or the smallest for the *_up ones; counters: each worker's own, summed), which
the launcher serves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .calllog import logger

MIRROR_EVERY = 1.0  # seconds between copies of a worker's live values


@dataclass
class Live:
    """What the live metrics read: the addon's objects as they are at scrape time."""

    pipeline: Any  # Pipeline | None
    health: Any  # UpstreamHealth
    state: Any  # SharedState
    signatures: Any  # SignatureMemory


def families(live: Live) -> list[Metric]:
    """The live metric families, from the objects as they are now."""
    cooling = GaugeMetricFamily(
        "calo_keys_cooling", "Keys resting now after a 429, 401 or 403.", labels=["route"]
    )
    cooldowns = CounterMetricFamily(
        "calo_key_cooldowns",
        "Keys put in cooldown (since the configuration loaded).",
        labels=["route"],
    )
    upstreams = GaugeMetricFamily(
        "calo_upstream_up",
        "0 while the proxy holds an upstream for unreachable.",
        labels=["upstream"],
    )
    shared = GaugeMetricFamily(
        "calo_shared_state_up", "1 while state is shared (Redis reachable).", labels=["backend"]
    )
    shared.add_metric([live.state.backend], 1.0 if live.state.up else 0.0)
    out: list[Metric] = [cooling, cooldowns, upstreams, shared]
    down = dict(live.health.snapshot())
    pipeline = live.pipeline
    addresses = set(down)
    if pipeline is not None:
        now = time.monotonic()
        for pool in pipeline.router.pools():
            if pool.keys:
                resting = sum(1 for until in list(pool.cooling_until) if until > now)
                cooling.add_metric([pool.name], float(resting))
                cooldowns.add_metric([pool.name], float(pool.cooldowns))
        addresses |= set(pipeline.route_addresses)
        addresses.add(_address(pipeline.settings.base_url))
        if pipeline.rollup is not None:
            ready = pipeline.rollup.stats()["ready"]
            out.append(GaugeMetricFamily("calo_rollup_summaries_cached", "Summaries ready.", ready))
    for address in sorted(addresses):
        upstreams.add_metric([address], 0.0 if address in down else 1.0)
    out.append(
        GaugeMetricFamily(
            "calo_thought_signatures_remembered",
            "Thought signatures kept for clients that drop them.",
            len(live.signatures),
        )
    )
    return out


def _address(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


class LiveCollector(Collector):
    def __init__(self, read: Callable[[], Live]):
        self._read = read

    def collect(self) -> Iterable[Metric]:
        # called from the listener's thread while the event loop runs: a structure may change
        # under the read; the next scrape reads it again
        try:
            return families(self._read())
        except RuntimeError:
            return []


class Mirror:
    """A worker's live families, copied into multiprocess metrics (see the module docstring)."""

    def __init__(self, registry: CollectorRegistry):
        self._registry = registry
        self._gauges: dict[str, Gauge] = {}
        self._counters: dict[str, Counter] = {}
        self._reported: dict[tuple, float] = {}

    def copy(self, metrics: Iterable[Metric]) -> None:
        for family in metrics:
            if family.type == "gauge":
                self._copy_gauge(family)
            elif family.type == "counter":
                self._copy_counter(family)

    def _copy_gauge(self, family: Metric) -> None:
        if not family.samples:
            return  # its label names are known from its first sample
        gauge = self._gauges.get(family.name)
        names = tuple(family.samples[0].labels)
        if gauge is None:
            mode: Literal["livemin", "livemax"] = (
                "livemin" if family.name.endswith("_up") else "livemax"
            )
            gauge = Gauge(family.name, family.documentation, names, registry=self._registry,
                          multiprocess_mode=mode)  # fmt: skip
            self._gauges[family.name] = gauge
        for sample in family.samples:
            (gauge.labels(**sample.labels) if names else gauge).set(sample.value)

    def _copy_counter(self, family: Metric) -> None:
        if not family.samples:
            return
        counter = self._counters.get(family.name)
        names = tuple(family.samples[0].labels)
        if counter is None:
            counter = Counter(family.name, family.documentation, names, registry=self._registry)
            self._counters[family.name] = counter
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            key = (family.name, tuple(sorted(sample.labels.items())))
            before = self._reported.get(key, 0.0)
            delta = sample.value - before if sample.value >= before else sample.value  # reset
            self._reported[key] = sample.value
            if delta:
                (counter.labels(**sample.labels) if names else counter).inc(delta)

    async def run(self, read: Callable[[], Live]) -> None:
        """Copy every MIRROR_EVERY seconds, for as long as the worker runs."""
        while True:
            try:
                self.copy(families(read()))
            except Exception as e:  # noqa: BLE001 - metrics never stop the proxy
                logger.warning("metrics: live values not copied (%s: %s)", type(e).__name__, e)
            await asyncio.sleep(MIRROR_EVERY)
