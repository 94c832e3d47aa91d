"""Tracing: off by default, and the core's spans have the right shape."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tandem.batching.planner import BatchLimits
from tandem.batching.scheduler import BatchScheduler, QueueLimits
from tandem.ops.metrics import CoreMetrics
from tandem.ops.telemetry import setup_tracing, tracing_wanted

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_tracing_is_on_only_with_somewhere_to_send(environ: dict[str, str], wanted: bool) -> None:
    assert tracing_wanted(environ) is wanted


def test_off_installs_nothing() -> None:
    tracing = setup_tracing({})
    assert not tracing.enabled
    assert isinstance(tracing.tracer, trace.NoOpTracer)


def test_on_reads_service_name_and_resource_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "core-under-test")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    exporter = InMemorySpanExporter()
    tracing = setup_tracing({}, exporter=exporter)
    assert tracing.enabled
    with tracing.tracer.start_as_current_span("probe"):
        pass
    tracing.shutdown()
    (span,) = exporter.get_finished_spans()
    assert span.resource.attributes["service.name"] == "core-under-test"
    assert span.resource.attributes["deployment.environment"] == "test"


def _encode(rows: Sequence[np.ndarray]) -> np.ndarray:
    return np.ones((len(rows), 4), dtype=np.float32)


async def test_batch_span_links_every_request_it_carried() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    scheduler = BatchScheduler(
        [_encode], BatchLimits(16, 1024, 1.0), QueueLimits(64, 1 << 20, 0.05), CoreMetrics(),
        tracer=tracer, span_attributes={"tandem.model": "m"},
    )  # fmt: skip
    deadline = asyncio.get_running_loop().time() + 10

    async def request(i: int) -> trace.SpanContext:
        with tracer.start_as_current_span(f"request-{i}") as span:
            context = span.get_span_context()
            rows = [np.full(8, i, dtype=np.int32)]
            await scheduler.submit(rows, deadline=deadline, link=context)
            return context

    contexts = await asyncio.gather(*(request(i) for i in range(6)))
    untraced = await scheduler.submit([np.ones(8, np.int32)], deadline=deadline)
    assert untraced.rows.shape == (1, 4)
    await scheduler.close(1)

    batches = [s for s in exporter.get_finished_spans() if s.name == "tandem.batch"]
    linked = {link.context.span_id for batch in batches for link in batch.links}
    assert linked == {c.span_id for c in contexts}  # every request, and nothing untraced
    for batch in batches:
        assert batch.parent is None  # its own trace
        assert batch.attributes is not None
        assert batch.attributes["tandem.model"] == "m"
        assert batch.attributes["tandem.batch.texts"] == len(batch.links)
        assert batch.start_time is not None
        assert batch.end_time is not None
        assert batch.start_time <= batch.end_time
