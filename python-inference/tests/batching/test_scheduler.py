"""The batch scheduler with stand-in workers (the real model is tested elsewhere)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from tandem.batching.planner import BatchLimits
from tandem.batching.scheduler import BatchScheduler, QueueLimits
from tandem.errors import DeadlineExceeded, InternalError, Overloaded, Unavailable
from tandem.ops.metrics import CoreMetrics
from tandem.worker_health import HealthPolicy, judge

pytestmark = pytest.mark.anyio

DIM = 4


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class RecordingWorker:
    """Returns [row length, first id, 1, 1] per row, after ``delay_s``; records batches."""

    def __init__(self, delay_s: float = 0.0, gate: threading.Event | None = None) -> None:
        self.delay_s = delay_s
        self.gate = gate
        self.batches: list[list[int]] = []
        self.seen_ids: list[int] = []
        self.concurrent = 0
        self.max_concurrent = 0
        self._lock = threading.Lock()

    def __call__(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        with self._lock:
            self.concurrent += 1
            self.max_concurrent = max(self.max_concurrent, self.concurrent)
            self.batches.append([int(r.shape[0]) for r in rows])
            self.seen_ids.extend(int(r[0]) for r in rows)
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(self.delay_s)
        with self._lock:
            self.concurrent -= 1
        return np.array([[r.shape[0], r[0], 1.0, 1.0] for r in rows], dtype=np.float32)


def _rows(*specs: tuple[int, int]) -> list[np.ndarray]:
    """(first id, length) -> a token row."""
    return [np.full(length, first, dtype=np.int32) for first, length in specs]


def _scheduler(
    workers: Sequence[RecordingWorker],
    *,
    max_size: int = 8,
    max_tokens: int = 1024,
    queue_texts: int = 64,
    delay_s: float = 0.002,
) -> BatchScheduler:
    return BatchScheduler(
        workers,
        BatchLimits(max_size, max_tokens, 0.5),
        QueueLimits(queue_texts, 1 << 20, delay_s),
        CoreMetrics(),
    )


def _deadline(seconds: float = 10.0) -> float:
    return asyncio.get_running_loop().time() + seconds


async def test_results_come_back_in_request_order() -> None:
    worker = RecordingWorker()
    scheduler = _scheduler([worker], max_size=2)
    rows = _rows((1, 30), (2, 5), (3, 60), (4, 6), (5, 31))
    result = await scheduler.submit(rows, deadline=_deadline())
    assert result.rows[:, 1].tolist() == [1, 2, 3, 4, 5]
    assert result.rows[:, 0].tolist() == [30, 5, 60, 6, 31]
    assert len(worker.batches) >= 3  # split across batches, reassembled in order
    await scheduler.close(1)


async def test_each_row_is_postprocessed_with_its_requests_options() -> None:
    """The model's postprocess sees one batch with every row's own options, once."""
    calls: list[list[object]] = []

    def scale(outputs: np.ndarray, options: Sequence[object]) -> np.ndarray:
        calls.append(list(options))
        factors = [1 if o is None else o for o in options]
        outputs *= np.array(factors, dtype=np.float32)[:, None]
        return outputs

    gate = threading.Event()
    worker = RecordingWorker(gate=gate)
    scheduler = BatchScheduler(
        [worker],
        BatchLimits(8, 1024, 0.5),
        QueueLimits(64, 1 << 20, 0.0),
        CoreMetrics(),
        postprocess=scale,
    )
    # One request holds the only worker, so the next two share a batch.
    blocker = asyncio.create_task(scheduler.submit(_rows((1, 4)), deadline=_deadline()))
    await asyncio.sleep(0.05)
    doubled = asyncio.create_task(
        scheduler.submit(_rows((3, 4), (4, 4)), options=2, deadline=_deadline())
    )
    tripled = asyncio.create_task(scheduler.submit(_rows((5, 4)), options=3, deadline=_deadline()))
    await asyncio.sleep(0.05)
    gate.set()
    await blocker
    assert (await doubled).rows[:, 1].tolist() == [6, 8]
    assert (await tripled).rows[:, 1].tolist() == [15]
    assert calls[0] == [None]  # no options given
    assert sorted(calls[1], key=str) == [2, 2, 3]
    await scheduler.close(1)


async def test_concurrent_requests_share_batches() -> None:
    gate = threading.Event()
    worker = RecordingWorker(gate=gate)
    scheduler = _scheduler([worker], max_size=16)
    first = asyncio.create_task(scheduler.submit(_rows((1, 10)), deadline=_deadline()))
    await asyncio.sleep(0.05)  # the worker is now busy with the first request
    rest = [
        asyncio.create_task(scheduler.submit(_rows((i, 10)), deadline=_deadline()))
        for i in range(2, 12)
    ]
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.gather(first, *rest)
    assert worker.batches[0] == [10]
    assert sum(len(b) for b in worker.batches[1:]) == 10
    assert len(worker.batches) <= 3  # ten waiting requests ran together, not one by one
    await scheduler.close(1)


async def test_every_worker_runs_batches_in_parallel() -> None:
    workers = [RecordingWorker(delay_s=0.05) for _ in range(3)]
    scheduler = _scheduler(workers, max_size=1)
    await asyncio.gather(*(scheduler.submit(_rows((i, 8)), deadline=_deadline()) for i in range(9)))
    assert all(w.batches for w in workers)
    await scheduler.close(1)


async def test_full_queue_refuses_at_once_with_a_retry_hint() -> None:
    gate = threading.Event()
    scheduler = _scheduler([RecordingWorker(gate=gate)], queue_texts=4)
    busy = asyncio.create_task(scheduler.submit(_rows((1, 8)), deadline=_deadline()))
    await asyncio.sleep(0.05)
    queued = asyncio.create_task(
        scheduler.submit(_rows(*[(i, 8) for i in range(4)]), deadline=_deadline())
    )
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    with pytest.raises(Overloaded) as refused:
        await scheduler.submit(_rows((9, 8)), deadline=_deadline())
    assert time.perf_counter() - started < 0.5  # refused, not parked
    assert refused.value.retry_after_s > 0
    gate.set()
    await asyncio.gather(busy, queued)
    # The queue drained: the next request is accepted.
    await scheduler.submit(_rows((9, 8)), deadline=_deadline())
    await scheduler.close(1)


async def test_expired_texts_are_dropped_before_they_are_computed() -> None:
    gate = threading.Event()
    worker = RecordingWorker(gate=gate)
    scheduler = _scheduler([worker])
    busy = asyncio.create_task(scheduler.submit(_rows((1, 8)), deadline=_deadline()))
    await asyncio.sleep(0.05)
    with pytest.raises(DeadlineExceeded):
        await scheduler.submit(_rows((77, 8)), deadline=_deadline(0.05))
    gate.set()
    await busy
    await scheduler.submit(_rows((2, 8)), deadline=_deadline())
    assert 77 not in worker.seen_ids
    await scheduler.close(1)


async def test_cancelled_callers_work_is_dropped() -> None:
    gate = threading.Event()
    worker = RecordingWorker(gate=gate)
    scheduler = _scheduler([worker])
    busy = asyncio.create_task(scheduler.submit(_rows((1, 8)), deadline=_deadline()))
    await asyncio.sleep(0.05)
    gone = asyncio.create_task(scheduler.submit(_rows((55, 8)), deadline=_deadline()))
    await asyncio.sleep(0.01)
    gone.cancel()
    await asyncio.sleep(0.01)  # the cancellation reaches the scheduler
    gate.set()
    await busy
    await scheduler.submit(_rows((2, 8)), deadline=_deadline())
    assert 55 not in worker.seen_ids
    assert scheduler.queued_texts == 0
    await scheduler.close(1)


async def test_close_finishes_queued_work_and_refuses_new() -> None:
    worker = RecordingWorker(delay_s=0.02)
    scheduler = _scheduler([worker], max_size=1)
    pending = [
        asyncio.create_task(scheduler.submit(_rows((i, 8)), deadline=_deadline())) for i in range(5)
    ]
    await asyncio.sleep(0)
    await scheduler.close(5)
    assert all(task.result().rows.shape == (1, DIM) for task in pending)
    with pytest.raises(Unavailable):
        await scheduler.submit(_rows((1, 8)), deadline=_deadline())


async def test_a_failing_batch_fails_its_requests_only() -> None:
    calls = 0

    def flaky(rows: Sequence[np.ndarray]) -> np.ndarray:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return np.ones((len(rows), DIM), dtype=np.float32)

    scheduler = BatchScheduler(
        [flaky], BatchLimits(8, 1024, 0.5), QueueLimits(64, 1 << 20, 0.0), CoreMetrics()
    )
    with pytest.raises(RuntimeError, match="boom"):
        await scheduler.submit(_rows((1, 8)), deadline=_deadline())
    result = await scheduler.submit(_rows((1, 8)), deadline=_deadline())
    assert result.rows.shape == (1, DIM)
    await scheduler.close(1)


async def test_leftover_texts_go_to_an_idle_worker_without_waiting_for_the_busy_one() -> None:
    gate = threading.Event()
    first, second = RecordingWorker(gate=gate), RecordingWorker(gate=gate)
    scheduler = _scheduler([first, second], max_size=1, delay_s=0.001)
    # Two texts that cannot share a batch (max_size 1), and workers that hold
    # their batch until the gate opens: both texts run at once only if the
    # leftover text is handed to the idle worker.
    task = asyncio.create_task(scheduler.submit(_rows((1, 8), (2, 8)), deadline=_deadline()))
    for _ in range(200):
        if first.batches and second.batches:
            break
        await asyncio.sleep(0.005)
    both_busy = bool(first.batches and second.batches)
    gate.set()
    await task
    await scheduler.close(1)
    assert both_busy, "the second text waited for the busy worker"


async def test_a_non_finite_vector_fails_only_its_request(caplog: pytest.LogCaptureFixture) -> None:
    gate = threading.Event()

    def nan_for_666(rows: Sequence[np.ndarray]) -> np.ndarray:
        gate.wait(10)
        out = np.ones((len(rows), DIM), dtype=np.float32)
        out[[int(r[0]) == 666 for r in rows]] = np.nan
        return out

    metrics = CoreMetrics()
    scheduler = BatchScheduler(
        [nan_for_666], BatchLimits(8, 1024, 0.5), QueueLimits(64, 1 << 20, 0.0), metrics
    )
    # One request holds the only worker, so the next two share a batch.
    blocker = asyncio.create_task(scheduler.submit(_rows((1, 8)), deadline=_deadline()))
    await asyncio.sleep(0.05)
    poisoned = asyncio.create_task(scheduler.submit(_rows((2, 8), (666, 8)), deadline=_deadline()))
    healthy = asyncio.create_task(scheduler.submit(_rows((3, 8)), deadline=_deadline()))
    await asyncio.sleep(0.05)
    gate.set()
    await blocker
    with pytest.raises(InternalError, match="non-finite") as failure:
        await poisoned
    assert failure.value.code == "non_finite_output"
    result = await healthy
    assert np.isfinite(result.rows).all()
    assert metrics.registry.get_sample_value("tandem_core_non_finite_texts_total") == 1
    assert "non-finite" in caplog.text
    await scheduler.close(1)


async def test_the_scaling_signal_is_the_wait_ahead_as_scraped() -> None:
    """tandem_core_queue_wait_estimate_seconds: 0 unmeasured, the work ahead over the
    measured rate while a batch is held and texts queue, and 0 again when idle."""
    gate = threading.Event()
    worker = RecordingWorker(delay_s=0.02, gate=gate)
    metrics = CoreMetrics()
    scheduler = BatchScheduler(
        [worker], BatchLimits(4, 1024, 0.5), QueueLimits(64, 1 << 20, 0.0), metrics
    )

    def scraped() -> float:
        value = metrics.registry.get_sample_value("tandem_core_queue_wait_estimate_seconds")
        assert value is not None
        return value

    assert scraped() == 0.0  # nothing measured yet
    gate.set()
    await scheduler.submit(_rows((1, 50), (2, 50), (3, 50), (4, 50)), deadline=_deadline())
    assert scraped() == 0.0  # measured, but nothing ahead
    rate = scheduler.tokens_per_second
    gate.clear()
    # One batch of 4 x 50 tokens runs (held at the gate), 8 x 50 wait behind it.
    pending = asyncio.ensure_future(
        scheduler.submit(_rows(*((i, 50) for i in range(12))), deadline=_deadline())
    )
    await asyncio.sleep(0.05)
    assert scraped() == pytest.approx(600 / rate)
    gate.set()
    await pending
    assert scraped() == 0.0
    await scheduler.close(5)


def _exemplar_trace_ids(metrics: CoreMetrics, name: str) -> set[str]:
    return {
        sample.exemplar.labels["trace_id"]
        for family in metrics.registry.collect()
        if family.name == name
        for sample in family.samples
        if sample.exemplar is not None
    }


async def test_queue_wait_and_inference_carry_the_traces_they_belong_to() -> None:
    """Queue wait: the request's trace; inference: the batch's own (linked to its requests)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    metrics = CoreMetrics()
    scheduler = BatchScheduler(
        [RecordingWorker()], BatchLimits(8, 1024, 0.5), QueueLimits(64, 1 << 20, 0.002), metrics,
        tracer=tracer,
    )  # fmt: skip
    with tracer.start_as_current_span("request") as span:
        await scheduler.submit(_rows((1, 8)), deadline=_deadline(), link=span.get_span_context())
    await scheduler.close(1)

    request_trace = trace.format_trace_id(span.get_span_context().trace_id)
    (batch,) = [s for s in exporter.get_finished_spans() if s.name == "tandem.batch"]
    assert batch.context is not None
    batch_trace = trace.format_trace_id(batch.context.trace_id)
    assert batch_trace != request_trace
    assert _exemplar_trace_ids(metrics, "tandem_core_queue_wait_seconds") == {request_trace}
    assert _exemplar_trace_ids(metrics, "tandem_core_inference_seconds") == {batch_trace}


async def test_untraced_or_unsampled_work_leaves_no_exemplar() -> None:
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")
    for tracer in (None, unsampled):
        metrics = CoreMetrics()
        scheduler = BatchScheduler(
            [RecordingWorker()], BatchLimits(8, 1024, 0.5), QueueLimits(64, 1 << 20, 0.002),
            metrics, tracer=tracer,
        )  # fmt: skip
        link = None
        if tracer is not None:
            with tracer.start_as_current_span("request") as span:
                link = span.get_span_context()
        await scheduler.submit(_rows((1, 8)), deadline=_deadline(), link=link)
        await scheduler.close(1)
        for name in ("tandem_core_queue_wait_seconds", "tandem_core_inference_seconds"):
            assert metrics.registry.get_sample_value(f"{name}_count") == 1
            assert _exemplar_trace_ids(metrics, name) == set()


# --- Adaptive width: a lone batch on the wide session, a busy pool one batch per worker.


class Pool:
    """Two narrow stand-in workers and a wide one, behind one scheduler."""

    def __init__(self, *, wide: RecordingWorker | None = None, gate: threading.Event | None = None,
                 max_size: int = 8, delay_s: float = 0.002) -> None:  # fmt: skip
        self.narrow = [RecordingWorker(gate=gate), RecordingWorker(gate=gate)]
        self.wide = wide if wide is not None else RecordingWorker()
        self.metrics = CoreMetrics()
        self.scheduler = BatchScheduler(
            self.narrow,
            BatchLimits(max_size, 1024, 0.5),
            QueueLimits(64, 1 << 20, delay_s),
            self.metrics,
            wide=self.wide,
        )

    def widths(self) -> dict[str, float]:
        get = self.metrics.registry.get_sample_value
        return {
            width: get("tandem_core_batch_width_total", {"width": width}) or 0.0
            for width in ("wide", "narrow")
        }

    @property
    def narrow_batches(self) -> list[list[int]]:
        return [batch for worker in self.narrow for batch in worker.batches]


async def _wait_until(condition: object, what: str, timeout_s: float = 5.0) -> None:
    assert callable(condition)
    for _ in range(int(timeout_s / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting until {what}")


async def test_a_lone_text_runs_on_the_wide_session() -> None:
    pool = Pool()
    result = await pool.scheduler.submit(_rows((7, 12)), deadline=_deadline())
    assert result.rows[0].tolist() == [12, 7, 1, 1]
    assert pool.wide.batches == [[12]]
    assert pool.narrow_batches == []
    assert pool.widths() == {"wide": 1, "narrow": 0}
    await pool.scheduler.close(1)


async def _two_texts_at_once() -> Pool:
    """A pool that has just run two texts at once, each on its own worker."""
    gate = threading.Event()
    pool = Pool(gate=gate, max_size=1)
    # Two texts that cannot share a batch: the first batch leaves one queued,
    # so neither is alone; both run at once, each on its own worker.
    task = asyncio.create_task(pool.scheduler.submit(_rows((1, 8), (2, 8)), deadline=_deadline()))
    await _wait_until(lambda: all(w.batches for w in pool.narrow), "both workers run a batch")
    gate.set()
    await task
    return pool


async def test_concurrent_texts_run_narrow_one_batch_per_worker() -> None:
    pool = await _two_texts_at_once()
    assert pool.wide.batches == []
    assert pool.widths() == {"wide": 0, "narrow": 2}
    await pool.scheduler.close(1)


async def test_after_a_busy_moment_a_lone_text_runs_narrow_once_then_wide() -> None:
    # A saturated core's queue empties now and then: the first lone batch after
    # concurrent ones stays narrow, so a wave of requests does not queue behind
    # a wide batch of one text. Sequential lone texts after it run wide.
    pool = await _two_texts_at_once()
    await pool.scheduler.submit(_rows((3, 8)), deadline=_deadline())
    assert pool.widths() == {"wide": 0, "narrow": 3}
    await pool.scheduler.submit(_rows((4, 8)), deadline=_deadline())
    assert pool.wide.batches == [[8]]
    assert pool.widths() == {"wide": 1, "narrow": 3}
    await pool.scheduler.close(1)


async def test_a_wide_batch_holds_every_worker_and_delays_others_by_one_batch_only() -> None:
    release = threading.Event()
    pool = Pool(wide=RecordingWorker(gate=release), max_size=1)
    lone = asyncio.create_task(pool.scheduler.submit(_rows((1, 8)), deadline=_deadline()))
    await _wait_until(lambda: pool.wide.batches, "the lone text runs wide")
    # Arriving while the wide batch runs: the narrow workers are free threads,
    # but the wide batch holds their CPUs, so nothing else starts.
    later = [
        asyncio.create_task(pool.scheduler.submit(_rows((i, 8)), deadline=_deadline()))
        for i in (2, 3)
    ]
    await asyncio.sleep(0.1)
    assert pool.narrow_batches == []
    assert pool.scheduler.queued_texts == 2
    release.set()
    await lone
    await asyncio.gather(*later)
    # As soon as it ends, the two waiting texts run beside each other, narrow.
    assert sorted(b for w in pool.narrow for b in w.seen_ids) == [2, 3]
    assert pool.wide.batches == [[8]]
    assert pool.widths() == {"wide": 1, "narrow": 2}
    await pool.scheduler.close(1)


async def test_without_a_wide_session_every_batch_is_narrow() -> None:
    worker = RecordingWorker()
    metrics = CoreMetrics()
    scheduler = BatchScheduler(
        [worker, worker], BatchLimits(8, 1024, 0.5), QueueLimits(64, 1 << 20, 0.0), metrics
    )
    await scheduler.submit(_rows((1, 8)), deadline=_deadline())
    get = metrics.registry.get_sample_value
    assert get("tandem_core_batch_width_total", {"width": "wide"}) == 0
    assert get("tandem_core_batch_width_total", {"width": "narrow"}) == 1
    await scheduler.close(1)


async def test_close_waits_for_a_running_wide_batch_then_finishes_the_queue() -> None:
    release = threading.Event()
    pool = Pool(wide=RecordingWorker(gate=release), max_size=1)
    lone = asyncio.create_task(pool.scheduler.submit(_rows((1, 8)), deadline=_deadline()))
    await _wait_until(lambda: pool.wide.batches, "the lone text runs wide")
    queued = asyncio.create_task(pool.scheduler.submit(_rows((2, 8)), deadline=_deadline()))
    await asyncio.sleep(0.02)
    closing = asyncio.create_task(pool.scheduler.close(5))
    await asyncio.sleep(0.05)
    with pytest.raises(Unavailable):
        await pool.scheduler.submit(_rows((3, 8)), deadline=_deadline())
    release.set()
    await closing
    assert (await lone).rows.shape == (1, DIM)
    assert (await queued).rows.shape == (1, DIM)
    assert not any(thread.is_alive() for thread in pool.scheduler.threads)


async def test_a_failing_wide_batch_fails_its_request_and_frees_every_worker() -> None:
    calls = 0

    def flaky_wide(rows: Sequence[np.ndarray]) -> np.ndarray:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("wide session broke")
        return np.ones((len(rows), DIM), dtype=np.float32)

    pool = Pool()
    pool.scheduler._wide = flaky_wide
    with pytest.raises(RuntimeError, match="wide session broke"):
        await pool.scheduler.submit(_rows((1, 8)), deadline=_deadline())
    # Not stuck holding the workers: the next lone text runs (wide again).
    result = await pool.scheduler.submit(_rows((2, 8)), deadline=_deadline(2))
    assert result.rows.shape == (1, DIM)
    assert calls == 2
    await pool.scheduler.close(1)


class WorkerDeath(BaseException):
    """Not an Exception: escapes the batch's handler and ends the worker thread."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_a_worker_that_dies_in_a_wide_batch_is_reported_and_the_other_still_serves() -> None:
    died = threading.Event()

    def dying_once(rows: Sequence[np.ndarray]) -> np.ndarray:
        if not died.is_set():
            died.set()
            raise WorkerDeath
        return np.ones((len(rows), DIM), dtype=np.float32)

    pool = Pool()
    pool.scheduler._wide = dying_once
    first = asyncio.create_task(pool.scheduler.submit(_rows((1, 8)), deadline=_deadline(0.5)))
    await _wait_until(
        lambda: sum(t.is_alive() for t in pool.scheduler.threads) == 1, "one worker died"
    )
    verdict = judge(pool.scheduler.threads, pool.scheduler.beats, HealthPolicy(60, 5), now=0.0)
    assert (verdict.ready, verdict.live) == (False, False)
    assert "died" in verdict.reason
    # Its batch's request never gets an answer (it ends at its deadline), but
    # the wide slot was released: the surviving worker serves the next text.
    with pytest.raises(Exception):  # noqa: B017, PT011 (DeadlineExceeded; the type is not the point)
        await first
    result = await pool.scheduler.submit(_rows((2, 8)), deadline=_deadline(2))
    assert result.rows.shape == (1, DIM)
    await pool.scheduler.close(1)


async def test_workers_run_nicer_than_the_loop() -> None:
    seen: list[int] = []

    def record_priority(rows: Sequence[np.ndarray]) -> np.ndarray:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return np.ones((len(rows), DIM), dtype=np.float32)

    loop_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    scheduler = BatchScheduler(
        [record_priority],
        BatchLimits(8, 1024, 0.5),
        QueueLimits(64, 1 << 20, 0.0),
        CoreMetrics(),
        worker_nice=3,
    )
    await scheduler.submit(_rows((1, 8)), deadline=_deadline())
    assert seen == [min(19, loop_nice + 3)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == loop_nice
    await scheduler.close(1)


@pytest.mark.parametrize("with_wide", [True, False])
async def test_the_batch_span_says_how_wide_the_batch_ran(with_wide: bool) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    narrow, wide = RecordingWorker(), RecordingWorker()
    scheduler = BatchScheduler(
        [narrow, narrow], BatchLimits(8, 1024, 0.5), QueueLimits(64, 1 << 20, 0.0), CoreMetrics(),
        tracer=tracer, wide=wide if with_wide else None,
    )  # fmt: skip
    with tracer.start_as_current_span("request") as span:
        await scheduler.submit(_rows((1, 8)), deadline=_deadline(), link=span.get_span_context())
    await scheduler.close(1)
    (batch,) = [s for s in exporter.get_finished_spans() if s.name == "tandem.batch"]
    assert batch.attributes is not None
    assert batch.attributes["tandem.batch.width"] == ("wide" if with_wide else "narrow")
