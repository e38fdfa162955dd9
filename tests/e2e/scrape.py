"""Reading a proxy's /metrics in end-to-end tests, with prometheus_client's own parser."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.launch import wait_for

Samples = dict[tuple[str, tuple], float]


def scrape(address: str) -> Samples:
    """(sample name, sorted labels) -> value, from GET http://address/metrics."""
    text = httpx.get(f"http://{address}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def metric(found: Samples, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 if none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and wanted <= set(ls))


def wait_metric(address: str, name: str, value: float, seconds: float = 20, **labels) -> None:
    """Wait until the metric reads `value` (a condition, not a sleep)."""
    assert wait_for(lambda: metric(scrape(address), name, **labels) == value, seconds), (
        f"{name}{labels} never became {value}: {metric(scrape(address), name, **labels)}"
    )
