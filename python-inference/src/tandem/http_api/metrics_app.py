"""The metrics listener: /metrics alone, on a port of its own.

Apart from the embedding API so that a NetworkPolicy can admit Prometheus
to this port without admitting it to /v1/embed (the chart's metricsFrom).
It runs on the same event loop as the API: a scrape is a few milliseconds of
text formatting, and never touches the model.

The format follows the Accept header (prometheus_client's own negotiation):
OpenMetrics for a scraper that asks for it, which is the only format that
carries the latency histograms' trace exemplars (ops/exemplars.py); the
classic Prometheus text format otherwise, as before.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

METRICS_PATH = "/metrics"


def create_metrics_app(registry: CollectorRegistry) -> Starlette:
    async def metrics(request: Request) -> Response:
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        # Starlette would append a charset to a text/* media type that lacks
        # one; both of prometheus_client's content types already name it.
        return Response(encode(registry), headers={"Content-Type": content_type})

    return Starlette(routes=[Route(METRICS_PATH, metrics, methods=["GET"])])
