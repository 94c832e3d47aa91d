"""The one OTLP/gRPC trace receiver of the repo, built on opentelemetry-proto and grpcio.

The services export to it exactly as they would to an OpenTelemetry Collector
(`OTEL_EXPORTER_OTLP_ENDPOINT=http://<host>:<port>`). Its users:
- tests/e2e reads the spans back in-process (`OtlpReceiver`) and checks the
  trace's shape; `make run TRACES=1` prints each request's trace as a tree
  (`format_trace`);
- the tracing benchmark runs it as a process on loopback;
- tests/k8s runs this very file in a pod (`--host 0.0.0.0 --jsonl`, shipped in
  a ConfigMap) and reads the spans back from the pod's log (`parse_jsonl`).
It imports nothing from Tandem, so it runs wherever grpcio and
opentelemetry-proto are installed (the core's image has both).
"""

from __future__ import annotations

import dataclasses
import json
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
    start_ns: int
    end_ns: int
    attributes: dict[str, object] = field(hash=False)

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


def _value(any_value: object) -> object:
    kind = any_value.WhichOneof("value")  # type: ignore[attr-defined]
    return getattr(any_value, kind) if kind else None


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: Callable[[ReceivedSpan], None]) -> None:
        self._sink = sink

    def Export(
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
                            start_ns=span.start_time_unix_nano,
                            end_ns=span.end_time_unix_nano,
                            attributes={a.key: _value(a.value) for a in span.attributes},
                        )
                    )
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpReceiver:
    """Collects spans exported over OTLP/gRPC to <host>:<port> (loopback by default).

    ``on_span``, when given, is also called with each span as it arrives.
    """

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        on_span: Callable[[ReceivedSpan], None] | None = None,
    ) -> None:
        self._spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        self._on_span = on_span
        self._host = host
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
            _TraceService(self._add), self._server
        )
        self.port = self._server.add_insecure_port(f"{host}:{port}")

    @property
    def endpoint(self) -> str:
        host = "127.0.0.1" if self._host in ("0.0.0.0", "[::]") else self._host
        return f"http://{host}:{self.port}"

    def __enter__(self) -> OtlpReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=1)

    def _add(self, span: ReceivedSpan) -> None:
        with self._lock:
            self._spans.append(span)
            if self._on_span is not None:
                self._on_span(span)

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


def to_jsonl(span: ReceivedSpan) -> str:
    """One span as one JSON line (what ``--jsonl`` prints)."""
    return json.dumps(dataclasses.asdict(span), default=str)


def parse_jsonl(text: str) -> list[ReceivedSpan]:
    """The spans in ``--jsonl`` output; other lines (the listening notice) are skipped."""
    spans = []
    for line in text.splitlines():
        entry = json.loads(line)
        if "trace_id" not in entry:
            continue
        entry["links"] = tuple(tuple(link) for link in entry["links"])
        spans.append(ReceivedSpan(**entry))
    return spans


def in_trace(spans: list[ReceivedSpan], trace_id: str) -> Iterator[ReceivedSpan]:
    return (s for s in spans if s.trace_id == trace_id)


def format_trace(spans: list[ReceivedSpan], trace_id: str) -> str:
    """One trace as an indented tree (service, span, duration), then its batches."""
    mine = list(in_trace(spans, trace_id))
    ids = {s.span_id for s in mine}
    children: dict[str, list[ReceivedSpan]] = {}
    for span in mine:
        children.setdefault(span.parent_span_id if span.parent_span_id in ids else "", []).append(
            span
        )
    lines = [f"trace {trace_id}"]

    def walk(parent: str, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: s.start_ns):
            lines.append(
                f"{'  ' * depth}{span.service:<15} {span.name:<48} {span.duration_ms:8.2f} ms"
            )
            walk(span.span_id, depth + 1)

    walk("", 1)
    for batch in spans:
        if batch.name == "tandem.batch" and any(t == trace_id for t, _ in batch.links):
            a = batch.attributes
            lines.append(
                f"  linked batch: {a.get('tandem.batch.texts')} texts from "
                f"{a.get('tandem.batch.requests')} requests, {a.get('tandem.batch.padded_tokens')} "
                f"padded tokens, worker {a.get('tandem.batch.worker')}, {batch.duration_ms:.2f} ms"
            )
    return "\n".join(lines)


def main() -> int:
    """Serve until SIGTERM/SIGINT; print how many spans arrived (or, with --jsonl, each span)."""
    import argparse  # noqa: PLC0415
    import signal  # noqa: PLC0415

    parser = argparse.ArgumentParser(description="collect OTLP/gRPC spans")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=4317)
    parser.add_argument("--jsonl", action="store_true", help="print every span as a JSON line")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    on_span = (lambda span: print(to_jsonl(span), flush=True)) if args.jsonl else None
    receiver = OtlpReceiver(port=args.port, host=args.host, on_span=on_span)
    with receiver:
        print(json.dumps({"listening": f"{args.host}:{receiver.port}"}), flush=True)
        stop.wait()
    print(json.dumps({"spans": len(receiver.spans())}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
