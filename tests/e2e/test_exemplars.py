"""Exemplars: from a latency bucket to the trace of a request in it, on both services.

A real gateway and a real core trace to a real OTLP receiver. After a few
requests, each service's /metrics, asked for OpenMetrics, must hold trace_id
exemplars on its latency histograms, every one naming a trace the receiver
received, and parse strictly as OpenMetrics; asked nothing, it must stay the
classic text format, with no exemplar.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_classic
from prometheus_client.samples import Sample
from tandem_devkit.otlp_receiver import OtlpReceiver
from tandem_devkit.prometheus import LocalPrometheus, ScrapeTarget, scrape_config
from tandem_devkit.stack import (
    ManagedProcess,
    StackPorts,
    core_process,
    free_port,
    gateway_process,
    served_model,
)

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
REQUESTS = 6

GATEWAY_HTTP = "tandem_gateway_http_request_duration_seconds"
GATEWAY_UPSTREAM = "tandem_gateway_upstream_call_duration_seconds"
CORE_REQUEST = "tandem_core_request_duration_seconds"
# The core's time split, each linked to the trace it belongs to: the request's
# (tokenize, queue wait) or the inference batch's own (linked to its requests).
CORE_STAGES = (
    "tandem_core_tokenize_seconds",
    "tandem_core_queue_wait_seconds",
    "tandem_core_inference_seconds",
)


@dataclass
class TracedStack:
    receiver: OtlpReceiver
    ports: StackPorts
    model: str
    core: ManagedProcess
    gateway: ManagedProcess

    @property
    def gateway_metrics(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway_admin}/metrics"

    @property
    def core_metrics(self) -> str:
        return f"http://127.0.0.1:{self.ports.core_metrics}/metrics"


@pytest.fixture(scope="module")
def traced(gateway_bin: Path, log_dir: Path) -> Iterator[TracedStack]:
    """A core and a gateway (with a named pool, as deployed) exporting every trace."""
    with OtlpReceiver() as receiver:
        otel = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # flush every 100 ms, so the test waits little
            "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        }
        ports = StackPorts.free()
        core = core_process(ports, log_dir / "exemplars", env=otel).start()
        gateway = None
        try:
            core.wait_ready(120)
            model = served_model(ports.core_http)
            gateway = gateway_process(
                gateway_bin,
                ports,
                log_dir / "exemplars",
                env=otel,
                pools={model: ports.core_grpc},
            ).start()
            gateway.wait_ready(60)
            yield TracedStack(receiver, ports, model, core, gateway)
        finally:
            if gateway is not None:
                gateway.stop()
            core.stop()


def _scrape(url: str, accept: str | None) -> httpx.Response:
    reply = httpx.get(url, headers={"Accept": accept} if accept else {}, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply


def _family_text(text: str, family: str) -> str:
    """One family's block of an OpenMetrics exposition, as a document of its own.

    The gateway's whole exposition cannot go through prometheus_client's strict
    parser: client_golang's Go collector exports the gauge go_memstats_alloc_bytes
    and the counter go_memstats_alloc_bytes_total, whose OpenMetrics family names
    clash (Prometheus's own parser streams and does not mind). Each of our
    families is parsed strictly on its own instead.
    """
    assert text.endswith("# EOF\n"), "an OpenMetrics exposition ends with # EOF"
    lines = text.splitlines()
    start = lines.index(f"# TYPE {family} histogram")
    block = [lines[start - 1]] if lines[start - 1].startswith(f"# HELP {family} ") else []
    for line in lines[start:]:
        if line.startswith("# ") and line != lines[start] and not line.startswith("# UNIT"):
            break
        block.append(line)
    return "\n".join(block) + "\n# EOF\n"


def _exemplars(text: str, family: str) -> list[Sample]:
    """The samples of family (a histogram) that carry an exemplar, from a strict parse."""
    (parsed,) = parse_openmetrics(_family_text(text, family))
    assert parsed.name == family
    assert parsed.type == "histogram"
    return [s for s in parsed.samples if s.exemplar is not None]


def _trace_ids(samples: list[Sample]) -> set[str]:
    ids = set()
    for sample in samples:
        assert sample.exemplar is not None
        assert set(sample.exemplar.labels) == {"trace_id"}, sample
        ids.add(sample.exemplar.labels["trace_id"])
    return ids


@pytest.fixture(scope="module")
def sent(traced: TracedStack) -> set[str]:
    """Send a few traced requests (and probes, which are not traced); their trace ids."""
    trace_ids = set()
    with httpx.Client(timeout=30) as client:
        for i in range(REQUESTS):
            assert client.get(f"http://127.0.0.1:{traced.ports.gateway_http}/healthz").is_success
            reply = client.post(
                f"http://127.0.0.1:{traced.ports.gateway_http}/v1/embeddings",
                json={"model": traced.model, "input": [f"exemplar {i}", "word " * (1 + i * 20)]},
            )
            assert reply.status_code == 200, reply.text
            trace_ids.add(reply.headers["x-trace-id"])
    assert len(trace_ids) == REQUESTS
    return trace_ids


def test_both_services_latency_histograms_carry_received_trace_ids(
    traced: TracedStack, sent: set[str]
) -> None:
    gateway = _scrape(traced.gateway_metrics, OPENMETRICS)
    core = _scrape(traced.core_metrics, OPENMETRICS)
    for reply in (gateway, core):
        assert reply.headers["content-type"].startswith("application/openmetrics-text")

    gateway_http = _exemplars(gateway.text, GATEWAY_HTTP)
    assert gateway_http, f"no exemplar on {GATEWAY_HTTP}"
    # Only traced requests leave one: the embeddings route, labelled by the
    # routed pool's model; probes make no spans.
    assert {(s.labels["route"], s.labels["model"]) for s in gateway_http} == {
        ("embeddings", traced.model)
    }
    assert _trace_ids(gateway_http) <= sent
    gateway_upstream = _exemplars(gateway.text, GATEWAY_UPSTREAM)
    assert _trace_ids(gateway_upstream) <= sent
    assert "Embed" in {s.labels["method"] for s in gateway_upstream}
    core_request = _exemplars(core.text, CORE_REQUEST)
    assert {(s.labels["transport"], s.labels["method"]) for s in core_request} == {
        ("grpc", "Embed")
    }
    assert _trace_ids(core_request) <= sent  # the core continues the gateway's trace

    stage_ids = set()
    for family in CORE_STAGES:
        samples = _exemplars(core.text, family)
        assert samples, f"no exemplar on {family}"
        stage_ids |= _trace_ids(samples)

    # Every exemplar leads to a trace the receiver has (spans are exported
    # every 100 ms; the batch traces of inference arrive the same way).
    wanted = (
        _trace_ids(gateway_http) | _trace_ids(gateway_upstream) | _trace_ids(core_request)
    ) | stage_ids
    spans = traced.receiver.wait_for(lambda spans: wanted <= {s.trace_id for s in spans})
    received = {s.trace_id for s in spans}
    assert wanted <= received
    print(
        f"exemplars: {len(wanted)} distinct trace ids over {REQUESTS} requests, "
        f"all among the {len(received)} traces received"
    )


def test_the_default_scrape_is_the_classic_text_format_without_exemplars(
    traced: TracedStack, sent: set[str]
) -> None:
    assert sent  # traced requests were made, so there are exemplars to leave out
    for url in (traced.gateway_metrics, traced.core_metrics):
        reply = _scrape(url, None)
        assert reply.headers["content-type"].startswith("text/plain; version=0.0.4"), url
        assert "# EOF" not in reply.text
        assert " # {" not in reply.text
        assert not any(trace_id in reply.text for trace_id in sent)
        families = {f.name for f in parse_classic(reply.text)}
        assert {GATEWAY_HTTP, CORE_REQUEST} & families, url


def test_prometheus_stores_them_and_each_leads_to_a_received_trace(
    traced: TracedStack, sent: set[str], prometheus_bin: Path, tmp_path: Path
) -> None:
    """The whole path an operator clicks through: a real Prometheus (with
    exemplar storage) scrapes both services as OpenMetrics, and the exemplars
    its API returns for the latency buckets are the requests' traces."""
    targets = [
        ScrapeTarget(f"127.0.0.1:{traced.ports.gateway_admin}", "gateway"),
        ScrapeTarget(f"127.0.0.1:{traced.ports.core_metrics}", "core", pool="fp32"),
    ]
    config = scrape_config(targets, interval_s=1)
    start = time.time()
    with LocalPrometheus(
        prometheus_bin, port=free_port(), work_dir=tmp_path, config=config
    ) as prom:
        prom.wait_scraped(t.address for t in targets)

        def stored(family: str) -> set[str]:
            found = prom.exemplars(f"{family}_bucket", start - 60, time.time() + 60)
            return {e["labels"]["trace_id"] for series in found for e in series["exemplars"]}

        for family in (GATEWAY_HTTP, CORE_REQUEST):
            deadline = time.monotonic() + 15
            ids = stored(family)
            while not ids and time.monotonic() < deadline:
                time.sleep(0.5)
                ids = stored(family)
            assert ids, f"Prometheus stored no exemplar of {family}"
            assert ids <= sent, f"{family}: exemplars {ids - sent} are not requests sent"
    received = {s.trace_id for s in traced.receiver.spans()}
    assert sent <= received
