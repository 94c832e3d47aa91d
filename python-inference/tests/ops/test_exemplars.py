"""exemplars.py: a sampled span's trace id as an exemplar, nothing for any other span."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanContext, TraceFlags

from tandem.ops.exemplars import TRACE_ID, current_trace_exemplar, trace_exemplar

TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN = 0x00F067AA0BA902B7


def _context(flags: int, trace_id: int = TRACE) -> SpanContext:
    return SpanContext(trace_id, SPAN, is_remote=True, trace_flags=TraceFlags(flags))


def test_a_sampled_span_gives_its_trace_id_in_32_hex_digits() -> None:
    exemplar = trace_exemplar(_context(TraceFlags.SAMPLED))
    assert exemplar == {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}
    assert TRACE_ID == "trace_id"  # the name Grafana's exemplar links look for
    # Leading zeros are kept: the id must match the trace store's spelling.
    assert trace_exemplar(_context(TraceFlags.SAMPLED, trace_id=1)) == {"trace_id": "0" * 31 + "1"}


def test_no_exemplar_for_an_unsampled_invalid_or_missing_span() -> None:
    assert trace_exemplar(_context(TraceFlags.DEFAULT)) is None
    assert trace_exemplar(trace.INVALID_SPAN_CONTEXT) is None
    assert trace_exemplar(None) is None


def test_the_current_span_is_used_when_sampled() -> None:
    assert current_trace_exemplar() is None  # no span at all
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        trace_id = trace.format_trace_id(span.get_span_context().trace_id)
        assert current_trace_exemplar() == {"trace_id": trace_id}
    assert current_trace_exemplar() is None
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")
    with unsampled.start_as_current_span("request"):
        assert current_trace_exemplar() is None
