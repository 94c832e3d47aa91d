"""A real OTLP/gRPC trace receiver for the tests, built on opentelemetry-proto and grpcio.

The services export to it exactly as they would to an OpenTelemetry Collector
(`OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:<port>`); the tests then read
the spans back and check the trace's shape: which spans exist, their
parent/child edges across the two services, and the batch spans' links.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

SPAN_KIND = {
    trace_pb2.Span.SPAN_KIND_SERVER: "server",
    trace_pb2.Span.SPAN_KIND_CLIENT: "client",
    trace_pb2.Span.SPAN_KIND_INTERNAL: "internal",
}


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root span
    links: tuple[tuple[str, str], ...]  # (trace_id, span_id) of each link
    attributes: dict[str, object] = field(hash=False)


def _value(any_value: object) -> object:
    kind = any_value.WhichOneof("value")  # type: ignore[attr-defined]
    return getattr(any_value, kind) if kind else None


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: Callable[[ReceivedSpan], None]) -> None:
        self._sink = sink

    def Export(  # noqa: N802 (generated name)
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            attrs = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            service = str(attrs.get("service.name", ""))
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self._sink(
                        ReceivedSpan(
                            service=service,
                            name=span.name,
                            kind=SPAN_KIND.get(span.kind, str(span.kind)),
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            links=tuple((ln.trace_id.hex(), ln.span_id.hex()) for ln in span.links),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                        )
                    )
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpReceiver:
    """Collects spans exported over OTLP/gRPC to 127.0.0.1:<port>."""

    def __init__(self) -> None:
        self._spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
            _TraceService(self._add), self._server
        )
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> OtlpReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=1)

    def _add(self, span: ReceivedSpan) -> None:
        with self._lock:
            self._spans.append(span)

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()

    def wait_for(
        self, done: Callable[[list[ReceivedSpan]], bool], timeout_s: float = 15.0
    ) -> list[ReceivedSpan]:
        """Poll until ``done(spans)`` holds (exporters batch and flush on a timer)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            spans = self.spans()
            if done(spans):
                return spans
            time.sleep(0.05)
        spans = self.spans()
        raise AssertionError(
            f"spans did not arrive in {timeout_s} s; got {len(spans)}: "
            + ", ".join(sorted({f"{s.service}:{s.name}" for s in spans}))
        )


def in_trace(spans: list[ReceivedSpan], trace_id: str) -> Iterator[ReceivedSpan]:
    return (s for s in spans if s.trace_id == trace_id)
