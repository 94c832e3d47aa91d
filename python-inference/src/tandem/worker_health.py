"""Is the inference pool healthy? Worker heartbeats and the watchdog that reads them.

Inference runs on worker threads the event loop never waits for, so the
loop answering /healthz says nothing about them. Three ways a pool goes bad
without anyone noticing:
- a worker thread dies (an exception outside a batch's own try): the core
  serves at reduced capacity, or with no worker at all queues every request
  until its deadline;
- a worker stalls (an ORT call that never returns): the same, silently;
- every batch fails (a broken model, a bad node): each request gets an error.

Each worker records when its current batch started (``WorkerBeats``, written
by the threads, read by the loop). The watchdog, a cheap task on the event
loop, turns that into a verdict once a second:
- a dead worker, or a batch running longer than the stall bound, is *fatal*:
  not ready and not live, so the kubelet restarts the pod (a dead thread never
  comes back; a stalled call has no timeout in ORT). Busy is not stalled: a
  saturated core starts a new batch every few hundred milliseconds.
- ``failure_threshold`` consecutive failed batches make the core not ready
  (the gateway stops sending to it) but live: a probe batch every few seconds
  turns it ready again as soon as one succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from tandem.ops.metrics import CoreMetrics

log = logging.getLogger(__name__)


class WorkerBeats:
    """What each worker is doing, shared between the worker threads and the loop.

    Times are time.monotonic() values. Writes happen under a lock so the
    failure streak cannot lose updates from two workers finishing at once.
    """

    def __init__(self, workers: int) -> None:
        self._lock = threading.Lock()
        self._started: list[float | None] = [None] * workers
        self._exited = [False] * workers
        self._failure_streak = 0

    def batch_started(self, worker: int) -> None:
        with self._lock:
            self._started[worker] = time.monotonic()

    def batch_finished(self, worker: int, *, ok: bool) -> None:
        with self._lock:
            self._started[worker] = None
            self._failure_streak = 0 if ok else self._failure_streak + 1

    def worker_exited(self, worker: int) -> None:
        """The worker returned normally (the scheduler is closing): not a death."""
        with self._lock:
            self._exited[worker] = True
            self._started[worker] = None

    def exited(self, worker: int) -> bool:
        with self._lock:
            return self._exited[worker]

    def oldest_batch_age(self, now: float) -> float:
        """Seconds since the oldest running batch started; 0 when none runs."""
        with self._lock:
            running = [started for started in self._started if started is not None]
        return now - min(running) if running else 0.0

    @property
    def failure_streak(self) -> int:
        with self._lock:
            return self._failure_streak


@dataclass(frozen=True, slots=True)
class Verdict:
    """The pool's health at one moment."""

    ready: bool
    live: bool
    reason: str = ""  # why not ready (empty when healthy)

    @staticmethod
    def healthy() -> Verdict:
        return Verdict(ready=True, live=True)


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    stall_s: float  # a batch running longer than this is stalled
    failure_threshold: int  # consecutive failed batches before not ready
    interval_s: float = 1.0  # how often the watchdog looks
    probe_interval_s: float = 5.0  # how often a failing core tries a probe batch


def judge(
    threads: Sequence[threading.Thread], beats: WorkerBeats, policy: HealthPolicy, now: float
) -> Verdict:
    """The verdict for these threads and beats (pure, so it is tested directly)."""
    dead = [
        thread.name
        for index, thread in enumerate(threads)
        if not thread.is_alive() and not beats.exited(index)
    ]
    if dead:
        return Verdict(False, False, f"inference worker died: {', '.join(dead)}")
    age = beats.oldest_batch_age(now)
    if age > policy.stall_s:
        return Verdict(
            False,
            False,
            f"an inference batch has run for {age:.0f} s (stall bound {policy.stall_s:g} s)",
        )
    streak = beats.failure_streak
    if streak >= policy.failure_threshold:
        return Verdict(False, True, f"the last {streak} inference batches failed")
    return Verdict.healthy()


VerdictListener = Callable[[Verdict], Awaitable[None]]
ProbeFn = Callable[[], Awaitable[object]]


class WorkerWatchdog:
    """Publishes the pool's verdict (metrics and a listener) and runs recovery probes."""

    def __init__(
        self,
        threads: Sequence[threading.Thread],
        beats: WorkerBeats,
        policy: HealthPolicy,
        metrics: CoreMetrics,
        *,
        on_verdict: VerdictListener,
        probe: ProbeFn,
    ) -> None:
        self._threads = threads
        self._beats = beats
        self._policy = policy
        self._metrics = metrics
        self._on_verdict = on_verdict
        self._probe = probe
        self._verdict = Verdict.healthy()
        self._next_probe = 0.0
        self._probing: asyncio.Task[None] | None = None

    @property
    def verdict(self) -> Verdict:
        return self._verdict

    async def run(self) -> None:
        """Check every interval until cancelled."""
        while True:
            await self.check()
            await asyncio.sleep(self._policy.interval_s)

    async def check(self) -> Verdict:
        now = time.monotonic()
        verdict = judge(self._threads, self._beats, self._policy, now)
        self._metrics.workers_alive.set(sum(thread.is_alive() for thread in self._threads))
        self._metrics.oldest_batch_seconds.set(self._beats.oldest_batch_age(now))
        if verdict != self._verdict:
            level = logging.INFO if verdict.ready else logging.ERROR
            fields = {"ready": verdict.ready, "live": verdict.live, "reason": verdict.reason}
            log.log(level, "worker health changed", extra=fields)
            self._verdict = verdict
            await self._on_verdict(verdict)
        probing = self._probing is not None and not self._probing.done()
        if verdict.live and not verdict.ready and not probing and now >= self._next_probe:
            # Failing batches, but every worker is alive: a probe batch shows
            # whether the model works again (its success resets the streak).
            # It runs beside the checks, which must go on while it waits.
            self._next_probe = now + self._policy.probe_interval_s
            self._probing = asyncio.create_task(self._run_probe(), name="health-probe")
        return verdict

    def stop(self) -> None:
        """Cancel a running probe (the run() task is cancelled by its owner)."""
        if self._probing is not None:
            self._probing.cancel()

    async def _run_probe(self) -> None:
        try:
            await self._probe()
        except Exception as exc:  # the probe failing is the expected case here
            log.warning("health probe batch failed", extra={"error": repr(exc)})
