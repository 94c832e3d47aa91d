"""The metrics listener: /metrics alone, on a port of its own.

Apart from the embedding API so that a NetworkPolicy can admit Prometheus
to this port without admitting it to /v1/embed (the chart's metricsFrom).
It runs on the same event loop as the API: a scrape is a few milliseconds of
text formatting, and never touches the model.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

METRICS_PATH = "/metrics"


def create_metrics_app(registry: CollectorRegistry) -> Starlette:
    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route(METRICS_PATH, metrics, methods=["GET"])])
