"""OpenTelemetry tracing for the core, configured by the standard OTEL_* variables.

Tracing is on when an exporter has somewhere to go: ``OTEL_EXPORTER_OTLP_ENDPOINT``
or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (OTLP over gRPC), or
``OTEL_TRACES_EXPORTER=console`` (spans printed to stderr), and
``OTEL_SDK_DISABLED`` is not true. Otherwise nothing is installed: no provider,
no exporter, no middleware, so tracing costs nothing.

The SDK itself reads the rest: ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES`` (resource), ``OTEL_TRACES_SAMPLER`` and
``OTEL_TRACES_SAMPLER_ARG`` (default parentbased_always_on), the exporter's
endpoint, headers, timeout and ``OTEL_EXPORTER_OTLP_INSECURE``.

The provider is passed explicitly to everything that makes spans instead of
being installed globally, so several cores can run in one test process.
Context propagation is W3C trace context plus baggage.

Spans the core makes (docs/core.md):
- the gRPC server span (``/tandem.contract.v1.EmbeddingService/Embed``,
  started by the servicer: grpc_api/tracing.py says why not an interceptor)
  and the HTTP server span (``POST /v1/embed``), continuing the caller's trace;
- children of it: ``tandem.tokenize``, ``tandem.queue`` (enqueue -> first batch
  start) and ``tandem.inference`` (first batch start -> last batch end);
- ``tandem.batch``: one per inference batch, linked to the span of every
  request whose texts it carried, with batch size, tokens, padding and model.
Health checks, reflection and /metrics make no spans.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tandem import __version__

log = logging.getLogger(__name__)

TRACER_NAME = "tandem.core"
DEFAULT_SERVICE_NAME = "tandem-core"
# Routes that never make spans: probes every few seconds would drown the traces.
EXCLUDED_HTTP_ROUTES = "/healthz,/readyz,/metrics"


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or exporter == "console"
    )


@dataclass
class Tracing:
    """The tracer the core's own spans use, and the instrumentation to install."""

    provider: Any  # opentelemetry.sdk.trace.TracerProvider, or None when off
    tracer: trace.Tracer

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def instrument_http(self, app: Any) -> None:
        if self.provider is None:
            return
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor  # noqa: PLC0415

        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=self.provider,
            excluded_urls=EXCLUDED_HTTP_ROUTES,
            # One server span per request, not extra spans per ASGI message.
            exclude_spans=["receive", "send"],
        )

    def shutdown(self) -> None:
        """Flush spans still buffered (bounded by the exporter's timeout)."""
        if self.provider is not None:
            self.provider.shutdown()


def setup_tracing(environ: Mapping[str, str] | None = None, exporter: Any = None) -> Tracing:
    """Build the core's tracing from the environment (``exporter`` overrides, for tests)."""
    environ = os.environ if environ is None else environ
    # Always W3C, whatever OTEL_PROPAGATORS says: the gateway speaks it.
    propagate.set_global_textmap(
        CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    )
    if exporter is None and not tracing_wanted(environ):
        return Tracing(provider=None, tracer=trace.NoOpTracer())

    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415 (only when on)
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
        BatchSpanProcessor,
        ConsoleSpanExporter,
    )

    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES from
    # the process environment; attributes passed here would override them, so
    # the default service name is only added when neither names one.
    attributes = {"service.version": __version__}
    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    if not named:
        attributes["service.name"] = DEFAULT_SERVICE_NAME
    resource = Resource.create(attributes)
    provider = TracerProvider(resource=resource)  # sampler from OTEL_TRACES_SAMPLER(_ARG)
    if exporter is None:
        if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "console":
            exporter = ConsoleSpanExporter()
        else:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
                OTLPSpanExporter,
            )

            exporter = OTLPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    log.info(
        "tracing on",
        extra={
            "service_name": resource.attributes.get("service.name"),
            "exporter": type(exporter).__name__,
        },
    )
    return Tracing(provider=provider, tracer=provider.get_tracer(TRACER_NAME, __version__))
