"""track_request: one outcome, one count, one duration and (optionally) one access-log line."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from tandem.contract.v1 import embedding_pb2 as pb
from tandem.errors import CoreError, DeadlineExceeded, InvalidInput, Overloaded
from tandem.ops.metrics import CoreMetrics
from tandem.ops.request_log import track_request
from tandem.service import EmbedResult, Timings

ACCESS = "tandem.access"


def _count(metrics: CoreMetrics, outcome: str, transport: str = "http") -> float:
    labels = {"transport": transport, "method": "embed", "outcome": outcome}
    return metrics.registry.get_sample_value("tandem_core_requests_total", labels) or 0.0


def _observed(metrics: CoreMetrics, transport: str = "http") -> float:
    labels = {"transport": transport, "method": "embed"}
    value = metrics.registry.get_sample_value("tandem_core_request_duration_seconds_count", labels)
    return value or 0.0


def _inflight(metrics: CoreMetrics) -> float:
    value = metrics.registry.get_sample_value("tandem_core_inflight_requests")
    assert value is not None
    return value


def test_a_served_request_counts_as_ok_and_is_in_flight_meanwhile() -> None:
    metrics = CoreMetrics()
    with track_request(metrics, "http", "embed", access_log=False) as record:
        assert _inflight(metrics) == 1
        assert record.outcome == "ok"
    assert _inflight(metrics) == 0
    assert _count(metrics, "ok") == 1
    assert _observed(metrics) == 1
    assert _count(metrics, "ok", transport="grpc") == 0  # labelled by transport


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (InvalidInput("is empty", param="texts[0]"), "invalid_input"),
        (InvalidInput("too big", reason=pb.ERROR_REASON_TEXT_TOO_LARGE), "text_too_large"),
        (Overloaded("full", retry_after_s=1.0), "overloaded"),
        (DeadlineExceeded("late"), "deadline_exceeded"),
        (asyncio.CancelledError(), "cancelled"),
        (RuntimeError("a bug"), "internal_error"),
        (KeyboardInterrupt(), "internal_error"),
    ],
)
def test_a_failure_is_counted_by_its_code_and_raised_on(error: BaseException, outcome: str) -> None:
    metrics = CoreMetrics()
    with pytest.raises(type(error)), track_request(metrics, "grpc", "embed", access_log=False):
        raise error
    assert _count(metrics, outcome, transport="grpc") == 1
    assert _count(metrics, "ok", transport="grpc") == 0
    assert _inflight(metrics) == 0
    assert _observed(metrics, transport="grpc") == 1


def _exemplars(metrics: CoreMetrics) -> list[dict[str, str]]:
    return [
        sample.exemplar.labels
        for family in metrics.registry.collect()
        if family.name == "tandem_core_request_duration_seconds"
        for sample in family.samples
        if sample.exemplar is not None
    ]


def test_the_duration_carries_the_sampled_server_spans_trace() -> None:
    metrics = CoreMetrics()
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("POST /v1/embed") as span:
        trace_id = trace.format_trace_id(span.get_span_context().trace_id)
        with pytest.raises(Overloaded), track_request(metrics, "http", "embed", access_log=False):
            raise Overloaded("full", retry_after_s=1.0)  # failed requests are linked too
    assert _exemplars(metrics) == [{"trace_id": trace_id}]


def test_no_exemplar_without_a_sampled_span() -> None:
    metrics = CoreMetrics()
    with track_request(metrics, "grpc", "embed", access_log=False):
        pass
    with (
        TracerProvider(sampler=ALWAYS_OFF).get_tracer("test").start_as_current_span("unsampled"),
        track_request(metrics, "grpc", "embed", access_log=False),
    ):
        pass
    assert _observed(metrics, transport="grpc") == 2
    assert _exemplars(metrics) == []


def test_the_first_recorded_failure_wins() -> None:
    """The gRPC servicer records the code itself before aborting the call with another error."""
    metrics = CoreMetrics()

    def serve() -> None:
        with track_request(metrics, "grpc", "embed", access_log=False) as record:
            record.failed("overloaded")
            record.failed("invalid_input")
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError, match="abort"):
        serve()
    assert _count(metrics, "overloaded", transport="grpc") == 1
    assert _count(metrics, "internal_error", transport="grpc") == 0


def test_a_failure_recorded_without_raising_is_counted_as_recorded() -> None:
    metrics = CoreMetrics()
    with track_request(metrics, "http", "embed", access_log=False) as record:
        record.failed(CoreError("x").code)
    assert _count(metrics, "internal_error") == 1


def test_no_access_log_line_when_it_is_off(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=ACCESS):
        with track_request(CoreMetrics(), "http", "embed", access_log=False):
            pass
        with (
            pytest.raises(ValueError, match="failed"),
            track_request(CoreMetrics(), "http", "embed", access_log=False),
        ):
            raise ValueError("failed")
    assert [r for r in caplog.records if r.name == ACCESS] == []


def test_the_access_log_line_of_a_served_request_has_its_numbers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    result = EmbedResult(
        model_id="m",
        vectors=np.zeros((2, 384), dtype=np.float32),
        token_counts=[5, 7],
        truncated=[False, False],
        timings=Timings(tokenize_s=0.0012345, queue_s=0.002, inference_s=0.0305),
    )
    with (
        caplog.at_level(logging.INFO, logger=ACCESS),
        track_request(CoreMetrics(), "grpc", "Embed", access_log=True) as record,
    ):
        record.result = result
    (line,) = [r for r in caplog.records if r.name == ACCESS]
    assert line.getMessage() == "request"
    fields = {k: getattr(line, k) for k in ("transport", "method", "outcome", "texts", "tokens")}
    assert fields == {
        "transport": "grpc",
        "method": "Embed",
        "outcome": "ok",
        "texts": 2,
        "tokens": 12,
    }
    timings = (line.tokenize_ms, line.queue_ms, line.inference_ms)  # type: ignore[attr-defined]
    assert timings == (1.234, 2.0, 30.5)
    assert 0 <= line.duration_ms < 1000  # type: ignore[attr-defined]


def test_the_access_log_line_of_a_failed_request_has_its_outcome_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        caplog.at_level(logging.INFO, logger=ACCESS),
        pytest.raises(Overloaded),
        track_request(CoreMetrics(), "http", "embed", access_log=True),
    ):
        raise Overloaded("full", retry_after_s=1.0)
    (line,) = [r for r in caplog.records if r.name == ACCESS]
    assert line.outcome == "overloaded"  # type: ignore[attr-defined]
    assert not hasattr(line, "tokens")
