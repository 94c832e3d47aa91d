"""metrics_app.py: /metrics alone, on its own port, from the core's own registry."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.testclient import TestClient
from support import RunningCore

from tandem.http_api.metrics_app import METRICS_PATH, create_metrics_app
from tandem.ops.metrics import CoreMetrics


def test_metrics_is_the_registrys_exposition_and_nothing_else() -> None:
    metrics = CoreMetrics()
    metrics.requests.labels("http", "embed", "ok").inc(3)
    client = TestClient(create_metrics_app(metrics.registry))
    reply = client.get(METRICS_PATH)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == CONTENT_TYPE_LATEST
    line = 'tandem_core_requests_total{method="embed",outcome="ok",transport="http"} 3.0'
    assert line in reply.text.splitlines()
    # A registry of its own: another core's counters (or a module global's) never show.
    other = CoreMetrics()
    assert (
        "tandem_core_requests_total{"
        not in TestClient(create_metrics_app(other.registry)).get(METRICS_PATH).text
    )
    assert client.get("/v1/embed").status_code == 404
    assert client.post(METRICS_PATH).status_code == 405


@pytest.mark.parametrize("path", ["/v1/model", "/readyz"])
def test_the_api_is_not_served_on_the_metrics_port(core: RunningCore, path: str) -> None:
    # A NetworkPolicy admits scrapers to the metrics port only: the API port
    # must not answer /metrics, and the metrics port nothing but /metrics.
    assert core.ports is not None
    assert core.ports.metrics != core.ports.http
    base = core.metrics_url.removesuffix(METRICS_PATH)
    assert httpx.get(f"{base}{path}", timeout=5).status_code == 404
    assert httpx.get(f"{core.http_url}/metrics", timeout=5).status_code == 404
    assert "tandem_core_ready 1.0" in httpx.get(core.metrics_url, timeout=5).text


def test_the_process_start_time_is_exported_for_restart_alerts(core: RunningCore) -> None:
    # A restart shows as a change of process_start_time_seconds (the chart's
    # PrometheusRule): it must be this process's, on its own registry.
    lines = httpx.get(core.metrics_url, timeout=5).text.splitlines()
    (start,) = [line for line in lines if line.startswith("process_start_time_seconds ")]
    assert 0 < time.time() - float(start.split()[1]) < 3600
