"""The servicer's gRPC server span: conventions, propagation, failures, and nothing when off."""

from __future__ import annotations

from typing import Any, cast

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tandem.grpc_api.tracing import RpcSpans, record_failure

SERVICE = "tandem.contract.v1.EmbeddingService"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


class FakeContext:
    """Just what RpcSpans reads from a grpc.aio.ServicerContext."""

    def __init__(self, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self._metadata = metadata

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata


def _context(metadata: tuple[tuple[str, str], ...] = ()) -> grpc.aio.ServicerContext:
    return cast(grpc.aio.ServicerContext, FakeContext(metadata))


@pytest.fixture
def recorded() -> tuple[RpcSpans, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return RpcSpans(provider.get_tracer("test"), SERVICE), exporter


def test_a_call_continues_the_callers_trace(recorded: tuple[RpcSpans, Any]) -> None:
    spans, exporter = recorded
    traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"
    with spans.server_span("Embed", _context((("traceparent", traceparent),))) as span:
        assert trace.get_current_span() is span  # stage spans become its children
    (finished,) = exporter.get_finished_spans()
    assert finished.name == f"/{SERVICE}/Embed"
    assert finished.kind == trace.SpanKind.SERVER
    assert format(finished.context.trace_id, "032x") == TRACE_ID
    assert finished.parent is not None
    assert format(finished.parent.span_id, "016x") == PARENT_ID
    assert dict(finished.attributes or {}) == {
        "rpc.system": "grpc",
        "rpc.service": SERVICE,
        "rpc.method": "Embed",
        "rpc.grpc.status_code": 0,
    }
    assert finished.status.status_code == trace.StatusCode.UNSET


def test_without_a_caller_trace_the_span_is_a_root(recorded: tuple[RpcSpans, Any]) -> None:
    spans, exporter = recorded
    with spans.server_span("GetModelInfo", _context()):
        pass
    (finished,) = exporter.get_finished_spans()
    assert finished.parent is None
    assert finished.name == f"/{SERVICE}/GetModelInfo"


def test_an_aborted_call_records_its_status(recorded: tuple[RpcSpans, Any]) -> None:
    spans, exporter = recorded

    def aborted_call() -> None:
        with spans.server_span("Embed", _context()) as span:
            record_failure(span, grpc.StatusCode.INVALID_ARGUMENT, "texts must not be empty")
            raise grpc.aio.AbortError()

    with pytest.raises(grpc.aio.AbortError):
        aborted_call()
    (finished,) = exporter.get_finished_spans()
    assert finished.attributes is not None
    assert finished.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert finished.status.status_code == trace.StatusCode.ERROR
    assert "texts must not be empty" in (finished.status.description or "")
    assert not finished.events  # an abort is an outcome, not an exception


def test_an_unexpected_exception_is_recorded_as_unknown(recorded: tuple[RpcSpans, Any]) -> None:
    spans, exporter = recorded
    with pytest.raises(RuntimeError), spans.server_span("Embed", _context()):
        raise RuntimeError("boom")
    (finished,) = exporter.get_finished_spans()
    assert finished.attributes is not None
    assert finished.attributes["rpc.grpc.status_code"] == grpc.StatusCode.UNKNOWN.value[0]
    assert finished.status.status_code == trace.StatusCode.ERROR
    assert [event.name for event in finished.events] == ["exception"]


def test_off_makes_no_span_and_reads_no_metadata() -> None:
    class Untouchable(FakeContext):
        def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
            raise AssertionError("tracing off must not read metadata")

    spans = RpcSpans(trace.NoOpTracer(), SERVICE)
    context = cast(grpc.aio.ServicerContext, Untouchable())
    with spans.server_span("Embed", context) as span:
        assert not span.is_recording()
