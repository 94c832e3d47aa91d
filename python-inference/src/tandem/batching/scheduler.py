"""The batch scheduler: a bounded queue of texts and a pool of inference workers.

Requests put their tokenized texts on one queue and await a future. A single
dispatcher task on the event loop forms batches (see planner.py) and hands
each to a free worker, which runs it on its own thread: ONNX Runtime releases
the GIL, so the event loop keeps serving (health checks included) while every
core computes. The loop itself never runs model code.

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
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from tandem.batching.planner import BatchLimits, plan_batch
from tandem.errors import DeadlineExceeded, Overloaded, Unavailable
from tandem.metrics import CoreMetrics

log = logging.getLogger(__name__)

# Runs one padded batch and returns pooled vectors, float32 [rows, dim].
EncodeFn = Callable[[Sequence[np.ndarray]], np.ndarray]


@dataclass(frozen=True, slots=True)
class QueueLimits:
    max_texts: int
    max_tokens: int
    max_delay_s: float


@dataclass(frozen=True, slots=True)
class BatchedVectors:
    """The scheduler's answer for one request."""

    vectors: np.ndarray  # float32 [texts, dim], in request order
    queue_s: float  # enqueue -> first batch start
    inference_s: float  # first batch start -> last batch end


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """What one batch carried; passed to the batch observer (tracing hooks)."""

    texts: int
    real_tokens: int
    padded_tokens: int
    started: float  # time.perf_counter()
    finished: float
    request_ids: tuple[int, ...]  # ids of the jobs whose texts it carried


class _Job:
    """One request's texts on their way through the queue and the workers."""

    __slots__ = (
        "deadline", "first_start", "future", "job_id", "last_end", "normalize",
        "output", "remaining", "rows", "submitted",
    )  # fmt: skip

    def __init__(
        self, job_id: int, rows: Sequence[np.ndarray], normalize: bool, deadline: float
    ) -> None:
        self.job_id = job_id
        self.rows = rows
        self.normalize = normalize
        self.deadline = deadline  # loop time
        self.future: asyncio.Future[BatchedVectors] = asyncio.get_running_loop().create_future()
        self.output: np.ndarray | None = None
        self.remaining = len(rows)
        self.submitted = time.perf_counter()
        self.first_start = 0.0
        self.last_end = 0.0

    @property
    def finished(self) -> bool:
        return self.future.done()

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)

    def deliver(self, index: int, vector: np.ndarray, started: float, ended: float) -> None:
        if self.future.done():
            return
        if self.output is None:
            self.output = np.empty((len(self.rows), vector.shape[0]), dtype=np.float32)
        self.output[index] = vector
        self.first_start = started if self.first_start == 0.0 else min(self.first_start, started)
        self.last_end = max(self.last_end, ended)
        self.remaining -= 1
        if self.remaining == 0:
            self.future.set_result(
                BatchedVectors(
                    vectors=self.output,
                    queue_s=self.first_start - self.submitted,
                    inference_s=self.last_end - self.first_start,
                )
            )


@dataclass(slots=True)
class _Item:
    job: _Job
    index: int
    length: int


class BatchScheduler:
    """Queues texts from many requests and runs them in length-sorted batches."""

    def __init__(
        self,
        workers: Sequence[EncodeFn],
        batch_limits: BatchLimits,
        queue_limits: QueueLimits,
        metrics: CoreMetrics,
        on_batch: Callable[[BatchInfo], None] | None = None,
    ) -> None:
        if not workers:
            raise ValueError("the scheduler needs at least one worker")
        self._workers = list(workers)
        self._idle_workers: list[int] = list(range(len(workers)))  # indices into _workers
        self._worker_count = len(workers)
        self._executor = ThreadPoolExecutor(len(workers), thread_name_prefix="inference")
        self._batch_limits = batch_limits
        self._queue_limits = queue_limits
        self._metrics = metrics
        self._on_batch = on_batch
        self._pending: list[_Item] = []  # arrival order
        self._queued_tokens = 0
        self._next_job_id = 0
        self._wakeup = asyncio.Event()
        self._accepting = True
        self._batches: set[asyncio.Task[None]] = set()
        self._texts_per_second = 0.0  # moving average, for Retry-After hints
        self._dispatcher = asyncio.get_running_loop().create_task(
            self._dispatch_forever(), name="batch-dispatcher"
        )

    # --- Requests -------------------------------------------------------------

    async def embed(
        self, rows: Sequence[np.ndarray], *, normalize: bool, deadline: float
    ) -> BatchedVectors:
        """Queue one request's token rows and wait for their vectors.

        ``deadline`` is in event-loop time (``loop.time()``). Raises Overloaded
        at once when the queue is full, DeadlineExceeded when the deadline
        passes first, Unavailable once the scheduler has stopped accepting.
        """
        if not self._accepting:
            raise Unavailable("the core is shutting down; retry on another backend")
        loop = asyncio.get_running_loop()
        if deadline <= loop.time():
            self._metrics.rejected.labels("deadline").inc(len(rows))
            raise DeadlineExceeded("the deadline passed before the texts were queued")
        tokens = sum(int(row.shape[0]) for row in rows)
        self._admit(len(rows), tokens)

        job = _Job(self._next_job_id, rows, normalize, deadline)
        self._next_job_id += 1
        self._pending.extend(_Item(job, i, int(row.shape[0])) for i, row in enumerate(rows))
        self._queued_tokens += tokens
        self._publish_queue_depth()
        self._wakeup.set()
        try:
            async with asyncio.timeout_at(deadline):
                return await job.future
        except TimeoutError:
            raise DeadlineExceeded("the deadline passed while the texts were queued") from None
        finally:
            if not job.finished:
                # Deadline or caller gone: the dispatcher drops the rest.
                job.fail(DeadlineExceeded("abandoned"))
                job.future.exception()  # mark retrieved: nobody awaits it now
                self._wakeup.set()

    def _admit(self, texts: int, tokens: int) -> None:
        limits = self._queue_limits
        queued_texts = len(self._pending)
        # An empty queue takes any single request (its size is already bounded
        # by the request limits), so a big request can never be refused forever.
        if queued_texts and (
            queued_texts + texts > limits.max_texts
            or self._queued_tokens + tokens > limits.max_tokens
        ):
            self._metrics.rejected.labels("queue_full").inc(texts)
            raise Overloaded(
                f"the queue is full ({queued_texts} texts, {self._queued_tokens} tokens waiting)",
                retry_after_s=self._drain_estimate_s(),
            )

    def _drain_estimate_s(self) -> float:
        """Roughly how long until the current queue is worked off."""
        rate = self._texts_per_second or 100.0
        return min(max(len(self._pending) / rate, 0.05), 30.0)

    # --- Dispatching --------------------------------------------------------------

    async def _dispatch_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._drop_dead_items(loop.time())
            if not self._idle_workers or not self._pending:
                await self._wait_for_change(None)
                continue
            # Under load (some worker busy) the oldest text may wait up to
            # max_delay for batch-mates. On an idle core it runs at once:
            # waiting would only add latency, nobody else is coming soon.
            busy = self._worker_count - len(self._idle_workers)
            if busy and not self._full_batch_waiting():
                wait = self._pending[0].job.submitted + self._queue_limits.max_delay_s
                remaining = wait - time.perf_counter()
                if remaining > 0:
                    await self._wait_for_change(remaining)
                    continue
            batch = self._take_batch()
            worker = self._idle_workers.pop()
            task = loop.create_task(self._run_batch(worker, batch))
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)

    async def _wait_for_change(self, at_most_s: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), at_most_s)
        self._wakeup.clear()

    def _full_batch_waiting(self) -> bool:
        limits = self._batch_limits
        return len(self._pending) >= limits.max_size or self._queued_tokens >= limits.max_tokens

    def _drop_dead_items(self, now: float) -> None:
        """Remove texts whose request expired or went away, before computing them."""
        dead = [item for item in self._pending if item.job.finished or item.job.deadline <= now]
        if not dead:
            return
        for item in dead:
            if not item.job.finished:
                item.job.fail(DeadlineExceeded("the deadline passed while the texts were queued"))
        self._metrics.rejected.labels("deadline").inc(len(dead))
        dead_ids = {id(item) for item in dead}
        self._pending = [item for item in self._pending if id(item) not in dead_ids]
        self._queued_tokens -= sum(item.length for item in dead)
        self._publish_queue_depth()

    def _take_batch(self) -> list[_Item]:
        # pending is in arrival order, so index 0 is the oldest text.
        chosen = plan_batch([item.length for item in self._pending], 0, self._batch_limits)
        chosen_set = set(chosen)
        batch = [self._pending[i] for i in chosen]
        self._pending = [item for i, item in enumerate(self._pending) if i not in chosen_set]
        self._queued_tokens -= sum(item.length for item in batch)
        self._publish_queue_depth()
        return batch

    async def _run_batch(self, worker: int, batch: list[_Item]) -> None:
        loop = asyncio.get_running_loop()
        rows = [item.job.rows[item.index] for item in batch]
        normalize = np.fromiter(
            (item.job.normalize for item in batch), dtype=bool, count=len(batch)
        )
        started = time.perf_counter()
        for item in batch:
            self._metrics.queue_wait_seconds.observe(started - item.job.submitted)
        self._metrics.busy_workers.inc()
        self._metrics.worker_batches.labels(str(worker)).inc()
        try:
            vectors = await loop.run_in_executor(
                self._executor, _compute, self._workers[worker], rows, normalize
            )
        except Exception as exc:
            log.exception("inference batch failed", extra={"texts": len(batch)})
            for item in batch:
                item.job.fail(exc)
            return
        finally:
            self._metrics.busy_workers.dec()
            self._idle_workers.append(worker)
            self._wakeup.set()
        ended = time.perf_counter()
        for item, vector in zip(batch, vectors, strict=True):
            item.job.deliver(item.index, vector, started, ended)
        self._record_batch(batch, started, ended)

    def _record_batch(self, batch: list[_Item], started: float, ended: float) -> None:
        real = sum(item.length for item in batch)
        padded = len(batch) * max(item.length for item in batch)
        duration = ended - started
        m = self._metrics
        m.inference_seconds.observe(duration)
        m.batch_texts.observe(len(batch))
        m.batch_tokens.observe(padded)
        m.batch_real_tokens.inc(real)
        m.batch_padding_tokens.inc(padded - real)
        # Throughput of the whole pool, for Retry-After: one worker's rate times workers.
        rate = len(batch) / max(duration, 1e-6) * self._worker_count
        self._texts_per_second = (
            rate if not self._texts_per_second else (0.8 * self._texts_per_second + 0.2 * rate)
        )
        if self._on_batch is not None:
            job_ids = tuple(dict.fromkeys(item.job.job_id for item in batch))
            self._on_batch(BatchInfo(len(batch), real, padded, started, ended, job_ids))

    def _publish_queue_depth(self) -> None:
        self._metrics.queue_texts.set(len(self._pending))
        self._metrics.queue_tokens.set(self._queued_tokens)

    # --- Lifecycle ----------------------------------------------------------------

    @property
    def queued_texts(self) -> int:
        return len(self._pending)

    def stop_accepting(self) -> None:
        """Refuse new requests (Unavailable); queued and running work carries on."""
        self._accepting = False

    async def close(self, grace_s: float) -> None:
        """Stop accepting, let queued and running work finish within ``grace_s``, stop."""
        self.stop_accepting()
        try:
            async with asyncio.timeout(grace_s):
                while self._pending or self._batches:
                    self._wakeup.set()
                    await asyncio.sleep(0.01)
        except TimeoutError:
            log.warning(
                "shutdown grace period over; failing unfinished work",
                extra={"queued_texts": len(self._pending), "running_batches": len(self._batches)},
            )
            for item in self._pending:
                item.job.fail(Unavailable("the core shut down before computing this request"))
            self._pending.clear()
        self._dispatcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._dispatcher
        self._executor.shutdown(wait=False, cancel_futures=True)


def _compute(worker: EncodeFn, rows: Sequence[np.ndarray], normalize: np.ndarray) -> np.ndarray:
    """Worker-thread side of a batch: model, then L2-normalise the rows that asked."""
    vectors = worker(rows)
    if normalize.any():
        selected = vectors[normalize]
        norms = np.linalg.norm(selected, axis=1, keepdims=True)
        # Same epsilon as torch.nn.functional.normalize in sentence-transformers.
        vectors[normalize] = selected / np.maximum(norms, 1e-12)
    return vectors
