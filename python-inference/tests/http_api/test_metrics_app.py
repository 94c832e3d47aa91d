"""metrics_app.py: /metrics alone, on its own port, from the core's own registry."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.openmetrics.parser import text_string_to_metric_families
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
    assert reply.headers["content-type"] == CONTENT_TYPE_PLAIN_0_0_4
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


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
# What Prometheus 3 sends (its default scrape_protocols, protobuf left out).
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)


def _with_an_exemplar() -> CoreMetrics:
    metrics = CoreMetrics()
    metrics.request_seconds.labels("grpc", "Embed").observe(0.003, exemplar={"trace_id": TRACE_ID})
    return metrics


@pytest.mark.parametrize("accept", [PROMETHEUS_ACCEPT, "application/openmetrics-text"])
def test_openmetrics_when_asked_carries_the_exemplars(accept: str) -> None:
    client = TestClient(create_metrics_app(_with_an_exemplar().registry))
    reply = client.get(METRICS_PATH, headers={"Accept": accept})
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith(
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    )
    # A strict parse: the reply is valid OpenMetrics (it ends in # EOF, and so on).
    families = {f.name: f for f in text_string_to_metric_families(reply.text)}
    buckets = [s for s in families["tandem_core_request_duration_seconds"].samples if s.exemplar]
    assert [(b.labels["le"], b.exemplar.labels, b.exemplar.value) for b in buckets] == [
        ("0.004", {"trace_id": TRACE_ID}, 0.003)
    ]


@pytest.mark.parametrize("accept", [None, "text/plain", "text/plain;version=0.0.4", "*/*"])
def test_the_classic_text_format_stays_the_default_and_has_no_exemplars(
    accept: str | None,
) -> None:
    client = TestClient(create_metrics_app(_with_an_exemplar().registry))
    headers = {"Accept": accept} if accept else {}
    reply = client.get(METRICS_PATH, headers=headers)
    assert reply.headers["content-type"] == CONTENT_TYPE_PLAIN_0_0_4
    assert TRACE_ID not in reply.text
    assert "# EOF" not in reply.text
    line = 'tandem_core_request_duration_seconds_count{method="Embed",transport="grpc"} 1.0'
    assert line in reply.text.splitlines()


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
