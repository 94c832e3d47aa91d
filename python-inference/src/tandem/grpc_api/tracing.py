"""The gRPC server span, started by the servicer instead of a server interceptor.

opentelemetry-instrumentation-grpc's aio interceptor made the same span, but
any grpc.aio server interceptor sends every call through extra Python
coroutines and handler wrappers, and the instrumentation also proxies the
servicer context. On this CPU-bound core that cost 5 to 7 % of throughput
whether or not the request was sampled (docs/benchmarks/README.md). Here the
span costs one context extraction and one span, and nothing at all when
tracing is off. Only EmbeddingService is traced; health checks and reflection
make no spans.

The span follows the OpenTelemetry RPC conventions: named
``/<service>/<method>``, kind SERVER, ``rpc.system``, ``rpc.service``,
``rpc.method`` and ``rpc.grpc.status_code``, status ERROR on a failed call.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

_OK = grpc.StatusCode.OK.value[0]


def _carrier(metadata: Iterable[tuple[str, str | bytes]]) -> dict[str, list[str]]:
    """Invocation metadata as the propagators' default getter reads it: one dict
    lookup per header, where a getter over the list scanned it once per header."""
    carrier: dict[str, list[str]] = {}
    for key, value in metadata:
        carrier.setdefault(key, []).append(str(value))
    return carrier


class RpcSpans:
    """Server spans for one gRPC service's methods."""

    def __init__(self, tracer: trace.Tracer, service: str) -> None:
        self._tracer = tracer
        self._service = service
        self._enabled = not isinstance(tracer, trace.NoOpTracer)

    @contextmanager
    def server_span(self, method: str, context: grpc.aio.ServicerContext) -> Iterator[trace.Span]:
        """The call's SERVER span, continuing the caller's trace; current while it runs.

        Started and made current by hand (start_span, one context attach)
        rather than with start_as_current_span inside an attached parent
        context: the same span for about half the CPU (two context switches
        and two generator context managers fewer), on every traced call.
        """
        if not self._enabled:
            yield trace.INVALID_SPAN
            return
        parent = propagate.extract(_carrier(context.invocation_metadata() or ()))
        span = self._tracer.start_span(
            f"/{self._service}/{method}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "rpc.system": "grpc",
                "rpc.service": self._service,
                "rpc.method": method,
            },
            # Failures are recorded below: an abort is an expected outcome
            # with a status code, not an exception to report.
            record_exception=False,
            set_status_on_exception=False,
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        try:
            yield span
        except grpc.aio.AbortError:
            raise  # record_failure ran before the abort
        except Exception as exc:
            span.record_exception(exc)
            record_failure(span, grpc.StatusCode.UNKNOWN, type(exc).__name__)
            raise
        else:
            span.set_attribute("rpc.grpc.status_code", _OK)
        finally:
            otel_context.detach(token)
            span.end()


def record_failure(span: trace.Span, code: grpc.StatusCode, details: str) -> None:
    """Mark the call failed with ``code`` (before aborting it)."""
    if span.is_recording():
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        span.set_status(Status(StatusCode.ERROR, f"{code.name}: {details}"))
