"""The batch scheduler: a bounded queue of texts and a pool of inference workers.

Requests put their tokenized texts on one queue and await a future on the
event loop. Each worker is a thread that owns one model session: when it is
free it takes the next batch from the queue itself (see planner.py for which
texts go together), runs it (ONNX Runtime releases the GIL, so workers use
every core while the loop keeps serving), post-processes the output rows with
each request's options, and hands the rows back to the loop. The loop never
runs model code and never sits between a worker and its next batch: a worker
goes from one batch to the next without waiting for the loop to wake up,
which on a busy 2-CPU machine is worth several percent of throughput
(docs/benchmarks/core.md).

The scheduler knows nothing about the model: it moves token rows in and
output rows out, and calls the model's two functions (tandem.model.interface:
a session's ``encode`` and the model's ``postprocess``) on worker threads.

Adaptive width: with several single-threaded workers, a busy core runs one
batch per worker (one text per CPU: the most throughput), but a lone request
would then run on one CPU while the others idle. Given a ``wide`` session
(intra-op threads = every CPU thread of the plan), a worker that takes a
batch while no other worker is busy and nothing else is queued runs it there
instead, holding every worker slot until it ends, so no other batch competes
for those CPUs. Work arriving meanwhile waits for that one batch, then runs
narrow beside its peers (docs/worker-math.md). A batch goes wide only when
the batch before it was alone too: a saturated core's queue empties for a
moment now and then, and a wide batch of one text there would hold every
worker while the next wave of requests queues behind it.

Guarantees:
- Bounded memory: the queue holds at most ``max_queue_texts`` texts and
  ``max_queue_tokens`` tokens; beyond that a request is refused at once with
  Overloaded (RESOURCE_EXHAUSTED / 429), never parked.
- Deadlines: a text whose request's deadline has passed, or whose caller went
  away, is dropped before it is computed.
- Order: a request's texts may run in several batches (even in parallel);
  each result lands at its original index.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext

from tandem.batching.planner import BatchLimits, plan_batch
from tandem.contract.v1 import embedding_pb2 as pb
from tandem.errors import DeadlineExceeded, InternalError, Overloaded, Unavailable
from tandem.ops.exemplars import trace_exemplar
from tandem.ops.logs import request_id_var
from tandem.ops.metrics import CoreMetrics
from tandem.ops.priority import lower_thread_priority
from tandem.worker_health import WorkerBeats

log = logging.getLogger(__name__)

# time.perf_counter() -> Unix time in ns, for spans recorded after the fact.
_PERF_TO_EPOCH_NS = time.time_ns() - time.perf_counter_ns()


def epoch_ns(perf_counter_s: float) -> int:
    return _PERF_TO_EPOCH_NS + int(perf_counter_s * 1e9)


# Runs one padded batch and returns the model's raw output rows, float32 [rows, width].
EncodeFn = Callable[[Sequence[np.ndarray]], np.ndarray]

# How a batch ran: on its worker's own session, or on the wide one with every CPU.
NARROW = "narrow"
WIDE = "wide"
# Turns one batch's raw rows into answers, given each row's request options
# (opaque here; the model defines them). May work in place.
PostprocessFn = Callable[[np.ndarray, Sequence[Any]], np.ndarray]


def _as_is(outputs: np.ndarray, options: Sequence[Any]) -> np.ndarray:
    """Post-processing for a model whose raw rows are the answer."""
    return outputs


@dataclass(frozen=True, slots=True)
class QueueLimits:
    max_texts: int
    max_tokens: int
    max_delay_s: float


@dataclass(frozen=True, slots=True)
class BatchedRows:
    """The scheduler's answer for one request. Times are time.perf_counter() values."""

    rows: np.ndarray  # float32 [texts, width], post-processed, in request order
    submitted: float  # queued
    first_start: float  # its first batch started
    last_end: float  # its last batch ended

    @property
    def queue_s(self) -> float:
        return self.first_start - self.submitted

    @property
    def inference_s(self) -> float:
        return self.last_end - self.first_start


class _Job:
    """One request's texts on their way through the queue and the workers.

    Its future is touched only on the event loop. Worker threads read
    ``abandoned`` and ``deadline`` (plain attributes: safe to read anywhere).
    """

    __slots__ = (
        "abandoned", "deadline", "first_start", "future", "last_end", "link",
        "options", "output", "remaining", "request_id", "rows", "submitted",
    )  # fmt: skip

    def __init__(
        self,
        rows: Sequence[np.ndarray],
        options: Any,
        deadline: float,
        future: asyncio.Future[BatchedRows],
        link: SpanContext | None,
    ) -> None:
        self.rows = rows
        self.link = link  # the request's span, for the batch spans' links
        self.request_id = request_id_var.get()  # for worker-side logs
        self.options = options  # the model's post-processing options for this request
        self.deadline = deadline  # time.monotonic(), the event loop's clock
        self.future = future
        self.abandoned = False  # deadline passed or caller gone: skip its texts
        self.output: np.ndarray | None = None
        self.remaining = len(rows)
        self.submitted = time.perf_counter()
        self.first_start = 0.0
        self.last_end = 0.0

    def fail(self, exc: BaseException) -> None:
        self.abandoned = True
        if not self.future.done():
            self.future.set_exception(exc)

    def deliver(self, index: int, row: np.ndarray, started: float, ended: float) -> None:
        if self.future.done():
            return
        if self.output is None:
            self.output = np.empty((len(self.rows), row.shape[0]), dtype=np.float32)
        self.output[index] = row
        self.first_start = started if self.first_start == 0.0 else min(self.first_start, started)
        self.last_end = max(self.last_end, ended)
        self.remaining -= 1
        if self.remaining == 0:
            self.future.set_result(
                BatchedRows(self.output, self.submitted, self.first_start, self.last_end)
            )


@dataclass(slots=True)
class _Item:
    job: _Job
    index: int
    length: int


class BatchScheduler:
    """Queues texts from many requests; worker threads run them in length-sorted batches."""

    def __init__(
        self,
        workers: Sequence[EncodeFn],
        batch_limits: BatchLimits,
        queue_limits: QueueLimits,
        metrics: CoreMetrics,
        *,
        tracer: trace.Tracer | None = None,
        span_attributes: Mapping[str, str] | None = None,
        postprocess: PostprocessFn = _as_is,
        wide: EncodeFn | None = None,
        worker_nice: int = 0,
    ) -> None:
        """``wide``: a session with every CPU thread, for lone batches (None: always narrow).

        ``worker_nice``: how many steps nicer than the event loop the worker
        threads run (tandem.ops.priority), so the loop preempts them.
        """
        if not workers:
            raise ValueError("the scheduler needs at least one worker")
        self._loop = asyncio.get_running_loop()
        self._batch_limits = batch_limits
        self._queue_limits = queue_limits
        self._metrics = metrics
        self._postprocess = postprocess
        self._tracer = tracer or trace.NoOpTracer()
        self._tracer_records = not isinstance(self._tracer, trace.NoOpTracer)
        self._span_attributes = dict(span_attributes or {})
        # Everything below is shared with the worker threads, under _ready.
        self._ready = threading.Condition()
        self._pending: list[_Item] = []  # arrival order: index 0 is the oldest
        self._queued_tokens = 0
        self._busy = 0
        self._wide = wide
        self._worker_nice = worker_nice
        self._wide_running = False  # a lone batch holds every worker slot
        self._previous_alone = True  # the last batch taken had the core to itself
        self._worker_count = len(workers)
        self._accepting = True
        self._closing = False
        self._texts_per_second = 0.0  # moving average, for Retry-After hints
        # The pool's service rate for deadline admission: moving averages of
        # real tokens and seconds per batch (their ratio weighs batches by
        # time, so many tiny batches do not drown one long one).
        self._rate_tokens = 0.0
        self._rate_seconds = 0.0
        self._running_tokens = 0  # real tokens of the batches being computed
        self.beats = WorkerBeats(len(workers))  # read by the worker watchdog
        metrics.queue_wait_estimate_seconds.set_function(self.wait_ahead_s)
        self._threads = [
            threading.Thread(
                target=self._work, args=(index, encode), name=f"inference-{index}", daemon=True
            )
            for index, encode in enumerate(workers)
        ]
        for thread in self._threads:
            thread.start()

    # --- Requests (event loop) --------------------------------------------------

    async def submit(
        self,
        rows: Sequence[np.ndarray],
        *,
        deadline: float,
        options: Any = None,
        link: SpanContext | None = None,
    ) -> BatchedRows:
        """Queue one request's token rows and wait for their output rows.

        ``options`` goes to the model's post-processing with each of the rows.

        ``deadline`` is in event-loop time (``loop.time()``). Raises Overloaded
        at once when the queue is full, DeadlineExceeded when the deadline
        passes first, Unavailable once the scheduler has stopped accepting.
        """
        if not self._accepting:
            raise Unavailable("the core is shutting down; retry on another backend")
        if deadline <= self._loop.time():
            self._metrics.rejected.labels("deadline").inc(len(rows))
            raise DeadlineExceeded("the deadline passed before the texts were queued")
        tokens = sum(int(row.shape[0]) for row in rows)
        job = _Job(rows, options, deadline, self._loop.create_future(), link)
        with self._ready:
            self._admit(len(rows), tokens)
            self._pending.extend(_Item(job, i, int(row.shape[0])) for i, row in enumerate(rows))
            self._queued_tokens += tokens
            self._publish_queue_depth()
            self._ready.notify()
        try:
            async with asyncio.timeout_at(deadline):
                return await job.future
        except TimeoutError:
            raise DeadlineExceeded("the deadline passed while the texts were queued") from None
        finally:
            # Answered, expired or caller gone (a cancelled await cancels the
            # future too): either way workers skip any of its texts still queued.
            job.abandoned = True
            if not job.future.done():
                job.fail(DeadlineExceeded("abandoned"))
                job.future.exception()  # mark retrieved: nobody awaits it now
            if job.remaining:
                self._discard(job)

    def _discard(self, job: _Job) -> None:
        """Take an abandoned job's queued texts out at once (not when a worker next looks).

        Otherwise they would count as work ahead for the queue bound and the
        deadline estimate of the next request, on a core that is in fact idle.
        """
        with self._ready:
            kept = [item for item in self._pending if item.job is not job]
            if len(kept) == len(self._pending):
                return
            self._metrics.rejected.labels("deadline").inc(len(self._pending) - len(kept))
            self._queued_tokens -= sum(item.length for item in self._pending if item.job is job)
            self._pending = kept
            self._publish_queue_depth()

    def _admit(self, texts: int, tokens: int) -> None:
        """Refuse a request the queue cannot hold (caller holds the lock)."""
        limits = self._queue_limits
        queued_texts = len(self._pending)
        # An empty queue takes any single request (its size is already bounded
        # by the request limits), so a big request can never be refused forever.
        if queued_texts and (
            queued_texts + texts > limits.max_texts
            or self._queued_tokens + tokens > limits.max_tokens
        ):
            self._metrics.rejected.labels("queue_full").inc(texts)
            rate = self._texts_per_second or 100.0
            raise Overloaded(
                f"the queue is full ({queued_texts} texts, {self._queued_tokens} tokens waiting)",
                retry_after_s=min(max(queued_texts / rate, 0.05), 30.0),
            )

    # --- Workers (their own threads) ---------------------------------------------

    def _work(self, worker: int, encode: EncodeFn) -> None:
        lower_thread_priority(self._worker_nice)
        try:
            self._serve_batches(worker, encode)
        except BaseException:
            # The thread ends here; the watchdog sees it (worker_health.py)
            # and reports the core not ready and not live.
            log.critical("inference worker died", exc_info=True, extra={"worker": worker})
            raise
        self.beats.worker_exited(worker)

    def _serve_batches(self, worker: int, encode: EncodeFn) -> None:
        while True:
            taken = self._next_batch()
            if taken is None:
                return
            batch, width = taken
            run = self._wide if width == WIDE and self._wide is not None else encode
            rows = [item.job.rows[item.index] for item in batch]
            options = [item.job.options for item in batch]
            self._metrics.worker_batches.labels(str(worker)).inc()
            self._metrics.batch_width.labels(width).inc()
            self._metrics.busy_workers.inc()
            self.beats.batch_started(worker)
            started = time.perf_counter()
            try:
                outputs = self._postprocess(run(rows), options)
            except Exception as exc:
                self.beats.batch_finished(worker, ok=False)
                self._metrics.failed_batches.inc()
                log.exception("inference batch failed", extra={"texts": len(batch)})
                self._loop.call_soon_threadsafe(_fail_all, batch, exc)
                continue
            finally:
                self._metrics.busy_workers.dec()
                with self._ready:
                    self._busy -= 1
                    if width == WIDE:
                        self._wide_running = False
                    self._running_tokens -= sum(item.length for item in batch)
                    self._ready.notify_all()  # a batch may be waiting for a free worker
            self.beats.batch_finished(worker, ok=True)
            ended = time.perf_counter()
            self._fail_non_finite(batch, outputs)
            self._record_batch(worker, batch, started, ended, width=width)
            self._loop.call_soon_threadsafe(_deliver_all, batch, outputs, started, ended)

    def _fail_non_finite(self, batch: list[_Item], outputs: np.ndarray) -> None:
        """Fail the texts whose output row holds NaN or Inf; the others are delivered.

        One np.isfinite over the whole batch costs microseconds (a batch of
        32 MiniLM vectors is 12 288 floats); a NaN row returned as an answer
        would poison a caller's index silently, whatever the model. The
        failures are scheduled before the delivery, so a failed request
        ignores its other rows.
        """
        finite = np.isfinite(outputs).all(axis=1)
        if finite.all():
            return
        bad = [item for item, ok in zip(batch, finite, strict=True) if not ok]
        self._metrics.non_finite_texts.inc(len(bad))
        jobs = {id(item.job): item.job for item in bad}
        request_ids = sorted(str(job.request_id) for job in jobs.values())
        log.error("the model produced non-finite vectors",
                  extra={"texts": len(bad), "request_ids": request_ids})  # fmt: skip
        error = InternalError(
            "the model produced a non-finite vector", reason=pb.ERROR_REASON_NON_FINITE_OUTPUT
        )
        for job in jobs.values():
            self._loop.call_soon_threadsafe(job.fail, error)

    def _next_batch(self) -> tuple[list[_Item], str] | None:
        """Block until a batch is due: the batch and its width; None once closing and idle."""
        with self._ready:
            while True:
                self._drop_dead_items()
                if not self._pending:
                    if self._closing:
                        return None
                    self._ready.wait()
                    continue
                if self._wide_running:
                    # A lone batch has every CPU; the next one starts when it
                    # ends (its end notifies every waiting worker).
                    self._ready.wait()
                    continue
                # Under load (another worker busy) the oldest text may wait up
                # to max_delay for batch-mates. On an idle core it runs at
                # once: waiting would only add latency, nobody else is coming.
                if self._busy and not self._full_batch_waiting():
                    due = self._pending[0].job.submitted + self._queue_limits.max_delay_s
                    remaining = due - time.perf_counter()
                    if remaining > 0:
                        self._ready.wait(remaining)
                        continue
                batch = self._take_batch()
                # Alone (no other batch running, nothing else waiting), and
                # the batch before it was too: the batch gets every CPU.
                # Otherwise one batch per worker. Requiring two lone batches
                # in a row keeps a saturated core's brief empty moments narrow.
                alone = not self._busy and not self._pending
                wide = alone and self._previous_alone and self._wide is not None
                self._previous_alone = alone
                width = WIDE if wide else NARROW
                self._busy += 1
                self._wide_running = width == WIDE
                if self._pending:
                    # Texts are left over: wake an idle worker to take them
                    # (after the batching delay) instead of leaving them until
                    # this worker or the next request comes along.
                    self._ready.notify()
                return batch, width

    def _full_batch_waiting(self) -> bool:
        limits = self._batch_limits
        return len(self._pending) >= limits.max_size or self._queued_tokens >= limits.max_tokens

    def _drop_dead_items(self) -> None:
        """Remove texts whose request expired or went away, before computing them."""
        now = time.monotonic()
        dead = [item for item in self._pending if item.job.abandoned or item.job.deadline <= now]
        if not dead:
            return
        self._metrics.rejected.labels("deadline").inc(len(dead))
        expired = {id(item.job): item.job for item in dead if not item.job.abandoned}
        for job in expired.values():
            job.abandoned = True
            self._loop.call_soon_threadsafe(
                job.fail, DeadlineExceeded("the deadline passed while the texts were queued")
            )
        dead_ids = {id(item) for item in dead}
        self._pending = [item for item in self._pending if id(item) not in dead_ids]
        self._queued_tokens -= sum(item.length for item in dead)
        self._publish_queue_depth()

    def _take_batch(self) -> list[_Item]:
        chosen = plan_batch([item.length for item in self._pending], 0, self._batch_limits)
        chosen_set = set(chosen)
        batch = [self._pending[i] for i in chosen]
        self._pending = [item for i, item in enumerate(self._pending) if i not in chosen_set]
        taken = sum(item.length for item in batch)
        self._queued_tokens -= taken
        self._running_tokens += taken
        self._publish_queue_depth()
        waited = time.perf_counter()
        for item in batch:
            # Each text's wait, with its request's trace as exemplar.
            self._metrics.queue_wait_seconds.observe(
                waited - item.job.submitted, exemplar=trace_exemplar(item.job.link)
            )
        return batch

    def _record_batch(
        self, worker: int, batch: list[_Item], started: float, ended: float, *, width: str
    ) -> None:
        real = sum(item.length for item in batch)
        padded = len(batch) * max(item.length for item in batch)
        duration = ended - started
        # The worker time the batch took: a wide batch held every worker.
        worker_seconds = duration * (self._worker_count if width == WIDE else 1)
        m = self._metrics
        m.batch_texts.observe(len(batch))
        m.batch_tokens.observe(padded)
        m.batch_real_tokens.inc(real)
        m.batch_padding_tokens.inc(padded - real)
        # Throughput of the whole pool, for Retry-After: one worker's rate times workers.
        rate = len(batch) / max(worker_seconds, 1e-6) * self._worker_count
        previous = self._texts_per_second
        self._texts_per_second = rate if not previous else 0.8 * previous + 0.2 * rate
        self._measure_tokens(real, worker_seconds)
        batch_span = self._trace_batch(
            worker, batch, real=real, padded=padded, started=started, ended=ended, width=width
        )
        # The exemplar is the batch's own trace, which links to its requests'.
        m.inference_seconds.observe(duration, exemplar=trace_exemplar(batch_span))

    def _trace_batch(
        self,
        worker: int,
        batch: list[_Item],
        *,
        real: int,
        padded: int,
        started: float,
        ended: float,
        width: str,
    ) -> SpanContext | None:
        """One span per batch (its own trace), linked to every request it carried.

        Returns the span's context, or None when no span was made.
        """
        if not self._tracer_records:
            return None
        contexts = {
            id(item.job): item.job.link
            for item in batch
            if item.job.link is not None and item.job.link.is_valid
        }
        if not contexts:
            return None  # only untraced work (the warm-up): nothing to link to
        span = self._tracer.start_span(
            "tandem.batch",
            context=Context(),  # a root: a batch belongs to no single request
            links=[trace.Link(c) for c in contexts.values()],
            start_time=epoch_ns(started),
            attributes={
                **self._span_attributes,
                "tandem.batch.texts": len(batch),
                "tandem.batch.requests": len(contexts),
                "tandem.batch.real_tokens": real,
                "tandem.batch.padded_tokens": padded,
                "tandem.batch.padding_ratio": round((padded - real) / padded, 4),
                "tandem.batch.worker": worker,
                "tandem.batch.width": width,
            },
        )
        span.end(end_time=epoch_ns(ended))
        return span.get_span_context()

    def _publish_queue_depth(self) -> None:
        self._metrics.queue_texts.set(len(self._pending))
        self._metrics.queue_tokens.set(self._queued_tokens)

    def _measure_tokens(self, real: int, duration: float) -> None:
        # Written by worker threads, read on the loop: float stores are atomic
        # under the GIL, and a reader mixing two updates only blurs an estimate.
        if self._rate_seconds:
            self._rate_tokens = 0.8 * self._rate_tokens + 0.2 * real
            self._rate_seconds = 0.8 * self._rate_seconds + 0.2 * duration
        else:
            self._rate_tokens, self._rate_seconds = float(real), max(duration, 1e-6)
        self._metrics.service_rate_tokens.set(self.tokens_per_second)

    @property
    def tokens_per_second(self) -> float:
        """The pool's measured rate in real tokens per second (0 before the first batch)."""
        if not self._rate_seconds:
            return 0.0
        return self._rate_tokens / self._rate_seconds * self._worker_count

    def wait_estimate_s(self, tokens: int) -> float | None:
        """Seconds until ``tokens`` more, queued now, would be computed.

        The work ahead (queued and running tokens) plus ``tokens``, at the
        measured rate: an idle pool still needs time for the request's own
        tokens. None before anything was measured, and when there is no work
        at all (nothing ahead, nothing asked).
        """
        rate = self.tokens_per_second
        with self._ready:
            ahead = self._queued_tokens + self._running_tokens
        if not rate or not (ahead + tokens):
            return None
        return (ahead + tokens) / rate

    def wait_ahead_s(self) -> float:
        """Seconds of work ahead of a request arriving now (0 when idle or unmeasured).

        The autoscaling signal: unlike CPU use, it says how long requests wait,
        which is what a latency objective is about, and it reaches the
        autoscaler before requests are refused.
        """
        return self.wait_estimate_s(0) or 0.0

    # --- Lifecycle ---------------------------------------------------------------

    @property
    def threads(self) -> list[threading.Thread]:
        """The worker threads, for the watchdog."""
        return list(self._threads)

    @property
    def queued_texts(self) -> int:
        with self._ready:
            return len(self._pending)

    def stop_accepting(self) -> None:
        """Refuse new requests (Unavailable); queued and running work carries on."""
        self._accepting = False

    async def close(self, grace_s: float) -> None:
        """Stop accepting, let queued and running work finish within ``grace_s``, stop."""
        self.stop_accepting()
        with self._ready:
            self._closing = True
            self._ready.notify_all()
        # Workers exit once the queue is empty; the loop keeps running (and
        # delivering their results) while this waits for them off the loop.
        await asyncio.to_thread(self._join_workers, time.monotonic() + grace_s)
        with self._ready:
            leftovers = self._pending
            self._pending = []
            self._queued_tokens = 0
        if leftovers:
            log.warning("shutdown grace period over; failing unfinished work",
                        extra={"queued_texts": len(leftovers)})  # fmt: skip
            _fail_all(leftovers, Unavailable("the core shut down before computing this request"))
        await asyncio.sleep(0)  # let deliveries already scheduled by workers run

    def _join_workers(self, deadline: float) -> None:
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def _deliver_all(batch: list[_Item], outputs: np.ndarray, started: float, ended: float) -> None:
    for item, row in zip(batch, outputs, strict=True):
        item.job.deliver(item.index, row, started, ended)


def _fail_all(batch: list[_Item], exc: BaseException) -> None:
    for item in batch:
        item.job.fail(exc)
