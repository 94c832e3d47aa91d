"""Where a request's time goes, from the services' own histograms.

Both services are scraped before and after a load step; the change in each
histogram's ``_sum`` over the change in its ``_count`` is that stage's mean
over the step, with nothing added to the request path. The stages nest, so
each is the difference of two means:

- gateway: the gateway's handling of ``POST /v1/embeddings`` (JSON decode,
  limits, routing, encode) minus its gRPC call to the core;
- network: the gRPC call as the gateway sees it minus the request as the core
  sees it (framing, loopback, HTTP/2 flow, the core's event loop picking the
  call up);
- queue: the core's queue wait (per text; the benchmark sends 1 text each);
- tokenization: the core's tokenization of the request;
- inference: the rest of the core's request time, which is the batch run
  (padding, model, pooling) and the core's answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

STAGES = ("gateway", "network", "queue", "tokenization", "inference")

# (metric family, labels a series must carry): only the embeddings path, so
# probes and health checks running alongside the load do not count.
HISTOGRAMS: dict[str, tuple[str, dict[str, str]]] = {
    "gateway_http": ("tandem_gateway_http_request_duration_seconds", {"route": "embeddings"}),
    "upstream_call": ("tandem_gateway_upstream_call_duration_seconds", {"method": "Embed"}),
    "core_request": (
        "tandem_core_request_duration_seconds",
        {"transport": "grpc", "method": "Embed"},
    ),
    "queue": ("tandem_core_queue_wait_seconds", {}),
    "tokenization": ("tandem_core_tokenize_seconds", {}),
}


@dataclass(frozen=True)
class Totals:
    """A histogram's ``_sum`` (seconds) and ``_count``, summed over the matching series."""

    seconds: float
    count: float


def histogram_totals(exposition: str) -> dict[str, Totals]:
    """Every histogram of HISTOGRAMS found in one Prometheus text exposition."""
    wanted = {family: (key, labels) for key, (family, labels) in HISTOGRAMS.items()}
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        if family.name not in wanted:
            continue
        key, labels = wanted[family.name]
        for sample in family.samples:
            if any(sample.labels.get(k) != v for k, v in labels.items()):
                continue
            if sample.name == f"{family.name}_sum":
                sums[key] = sums.get(key, 0.0) + sample.value
            elif sample.name == f"{family.name}_count":
                counts[key] = counts.get(key, 0.0) + sample.value
    return {key: Totals(sums.get(key, 0.0), counts[key]) for key in counts}


async def scrape(client: httpx.AsyncClient, urls: Mapping[str, str]) -> dict[str, Totals]:
    """The totals of every service's /metrics (``urls``: service name -> metrics URL)."""
    totals: dict[str, Totals] = {}
    for name, url in urls.items():
        response = await client.get(url)
        response.raise_for_status()
        try:
            totals.update(histogram_totals(response.text))
        except ValueError as err:
            raise ValueError(f"parsing {name}'s metrics at {url}: {err}") from err
    return totals


def split_ms(before: Mapping[str, Totals], after: Mapping[str, Totals]) -> dict[str, float]:
    """The mean milliseconds per request of every stage between two scrapes."""
    mean: dict[str, float] = {}
    for key in HISTOGRAMS:
        if key not in after:
            raise ValueError(f"no {HISTOGRAMS[key][0]} series in the scrape")
        start = before.get(key, Totals(0.0, 0.0))
        requests = after[key].count - start.count
        if requests <= 0:
            raise ValueError(f"{HISTOGRAMS[key][0]} counted no requests during the step")
        mean[key] = (after[key].seconds - start.seconds) / requests * 1e3
    split = {
        "gateway": mean["gateway_http"] - mean["upstream_call"],
        "network": mean["upstream_call"] - mean["core_request"],
        "queue": mean["queue"],
        "tokenization": mean["tokenization"],
        "inference": mean["core_request"] - mean["queue"] - mean["tokenization"],
    }
    return {stage: round(split[stage], 3) for stage in STAGES}
