"""Trace exemplars: the trace id a histogram observation carries, so that a slow
bucket on a dashboard leads to the trace of a request in it.

prometheus_client keeps the latest exemplar of each bucket and writes exemplars
only in the OpenMetrics format (metrics_app.py serves it when asked), so an
exemplar costs one small dict per observation and no memory per request.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import SpanContext

# The label Grafana's exemplar links and Prometheus's documentation use.
TRACE_ID = "trace_id"


def trace_exemplar(span_context: SpanContext | None) -> dict[str, str] | None:
    """The exemplar naming ``span_context``'s trace, or None.

    None unless the span is sampled: an unsampled or untraced request has no
    recorded trace for the exemplar to lead to.
    """
    if span_context is None or not (span_context.is_valid and span_context.trace_flags.sampled):
        return None
    return {TRACE_ID: trace.format_trace_id(span_context.trace_id)}


def current_trace_exemplar() -> dict[str, str] | None:
    """The exemplar naming the current span's trace (see trace_exemplar)."""
    return trace_exemplar(trace.get_current_span().get_span_context())
