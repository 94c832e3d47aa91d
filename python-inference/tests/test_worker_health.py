"""Worker heartbeats and the watchdog, with stand-in workers (no model)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from tandem.batching.planner import BatchLimits
from tandem.batching.scheduler import BatchScheduler, QueueLimits
from tandem.lifecycle import Lifecycle
from tandem.ops.metrics import CoreMetrics
from tandem.service import EmbeddingService
from tandem.worker_health import HealthPolicy, Verdict, WorkerWatchdog

pytestmark = pytest.mark.anyio

DIM = 4


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Model:
    """A stand-in encoder that can be told to fail or to hang."""

    def __init__(self) -> None:
        self.failing = False
        self.release = threading.Event()
        self.release.set()  # set = never hangs

    def __call__(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        self.release.wait(30)
        if self.failing:
            raise RuntimeError("the model is broken")
        return np.ones((len(rows), DIM), dtype=np.float32)


class Harness:
    def __init__(self, workers: int, policy: HealthPolicy) -> None:
        self.model = Model()
        self.metrics = CoreMetrics()
        self.scheduler = BatchScheduler(
            [self.model] * workers,
            BatchLimits(8, 1024, 0.5),
            QueueLimits(64, 1 << 20, 0.0),
            self.metrics,
        )
        self.lifecycle = Lifecycle(self.metrics)
        self.lifecycle.attach(object.__new__(EmbeddingService))
        self.probes = 0
        self.watchdog = WorkerWatchdog(
            self.scheduler.threads,
            self.scheduler.beats,
            policy,
            self.metrics,
            on_verdict=self.lifecycle.set_worker_health,
            probe=self._probe,
        )

    async def _probe(self) -> object:
        self.probes += 1
        return await self.embed()

    async def embed(self, timeout_s: float = 10.0) -> object:
        loop = asyncio.get_running_loop()
        rows = [np.full(8, 1, dtype=np.int32)]
        return await self.scheduler.submit(rows, deadline=loop.time() + timeout_s)

    def gauge(self, name: str) -> float:
        value = self.metrics.registry.get_sample_value(name)
        assert value is not None, name
        return value


def _policy(**overrides: float) -> HealthPolicy:
    values: dict[str, float] = {
        "stall_s": 0.3,
        "failure_threshold": 3,
        "interval_s": 0.02,
        "probe_interval_s": 0.05,
    }
    values.update(overrides)
    return HealthPolicy(
        stall_s=values["stall_s"],
        failure_threshold=int(values["failure_threshold"]),
        interval_s=values["interval_s"],
        probe_interval_s=values["probe_interval_s"],
    )


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_a_worker_that_dies_outside_its_batch_makes_the_core_not_ready_and_not_live() -> None:
    harness = Harness(2, _policy())
    await harness.lifecycle.set_ready()
    assert (await harness.watchdog.check()) == Verdict.healthy()
    assert harness.gauge("tandem_core_workers_alive") == 2

    # An exception in the worker's own loop (here: taking the next batch),
    # outside the try that guards a batch: the thread ends.
    original = harness.scheduler._next_batch

    def broken_next_batch() -> object:
        if threading.current_thread().name == "inference-0":
            raise RuntimeError("bug outside the batch")
        return original()

    harness.scheduler._next_batch = broken_next_batch  # type: ignore[method-assign]
    # A worker calls it again after its current batch: serve until worker 0 has had one.
    for _ in range(50):
        await harness.embed()
        await asyncio.sleep(0.01)
        if not harness.scheduler.threads[0].is_alive():
            break

    verdict = await harness.watchdog.check()
    assert (verdict.ready, verdict.live) == (False, False)
    assert "inference-0" in verdict.reason
    assert (harness.lifecycle.ready, harness.lifecycle.live) == (False, False)
    assert "died" in harness.lifecycle.not_ready_reason
    assert harness.gauge("tandem_core_workers_alive") == 1
    assert harness.gauge("tandem_core_ready") == 0
    # The other worker still serves; the verdict stays (a dead thread never returns).
    await harness.embed()
    assert not (await harness.watchdog.check()).live
    harness.scheduler._next_batch = original  # type: ignore[method-assign]
    await harness.scheduler.close(1)


async def test_a_stalled_batch_fails_liveness_and_a_finished_one_restores_it() -> None:
    harness = Harness(2, _policy(stall_s=0.3))
    await harness.lifecycle.set_ready()
    harness.model.release.clear()  # the next batch hangs, like an ORT call that never returns
    stuck = asyncio.create_task(harness.embed())
    await asyncio.sleep(0.1)
    assert (await harness.watchdog.check()).live, "0.1 s into a batch is not a stall"
    await asyncio.sleep(0.3)
    verdict = await harness.watchdog.check()
    assert (verdict.ready, verdict.live) == (False, False)
    assert "stall bound" in verdict.reason
    assert harness.gauge("tandem_core_oldest_batch_seconds") > 0.3
    assert not harness.lifecycle.live

    harness.model.release.set()
    await stuck
    assert (await harness.watchdog.check()) == Verdict.healthy()
    assert (harness.lifecycle.ready, harness.lifecycle.live) == (True, True)
    assert harness.gauge("tandem_core_oldest_batch_seconds") == 0
    await harness.scheduler.close(1)


async def test_consecutive_failed_batches_make_it_not_ready_and_a_probe_restores_it() -> None:
    harness = Harness(1, _policy(failure_threshold=3))
    await harness.lifecycle.set_ready()
    harness.model.failing = True
    for expected_ready in (True, True, False):
        with pytest.raises(RuntimeError, match="broken"):
            await harness.embed()
        await harness.watchdog.check()
        assert harness.lifecycle.ready is expected_ready
    assert harness.lifecycle.live, "a failing model is sick, not dead: no restart"
    assert "3 inference batches failed" in harness.lifecycle.not_ready_reason
    assert harness.gauge("tandem_core_failed_batches_total") == 3

    # While it fails, probes keep failing and it stays not ready.
    for _ in range(10):
        await harness.watchdog.check()
        await asyncio.sleep(0.02)
    assert harness.probes >= 1
    assert not harness.lifecycle.ready

    # The model recovers: the next probe batch succeeds and readiness returns.
    harness.model.failing = False
    for _ in range(100):
        if harness.lifecycle.ready:
            break
        await harness.watchdog.check()
        await asyncio.sleep(0.02)
    assert harness.lifecycle.ready
    await harness.scheduler.close(1)


async def test_one_success_resets_the_failure_streak() -> None:
    harness = Harness(1, _policy(failure_threshold=2))
    await harness.lifecycle.set_ready()
    for failing in (True, False, True, False, True):
        harness.model.failing = failing
        with contextlib.suppress(RuntimeError):
            await harness.embed()
        await harness.watchdog.check()
        assert harness.lifecycle.ready, "isolated failures are not a sick model"
    await harness.scheduler.close(1)


async def test_a_saturated_pool_is_busy_not_stalled() -> None:
    # Work for far longer than the stall bound, in batches far shorter than it.
    def slow(rows: Sequence[np.ndarray]) -> np.ndarray:
        threading.Event().wait(0.02)
        return np.ones((len(rows), DIM), dtype=np.float32)

    metrics = CoreMetrics()
    scheduler = BatchScheduler(
        [slow, slow], BatchLimits(2, 1024, 0.5), QueueLimits(4096, 1 << 20, 0.0), metrics
    )
    lifecycle = Lifecycle(metrics)
    lifecycle.attach(object.__new__(EmbeddingService))
    await lifecycle.set_ready()

    async def no_probe() -> object:
        raise AssertionError("a healthy pool is never probed")

    watchdog = WorkerWatchdog(
        scheduler.threads,
        scheduler.beats,
        _policy(stall_s=0.2),
        metrics,
        on_verdict=lifecycle.set_worker_health,
        probe=no_probe,
    )
    loop = asyncio.get_running_loop()
    rows = [np.full(8, 1, dtype=np.int32)] * 64
    load = [
        asyncio.create_task(scheduler.submit(rows, deadline=loop.time() + 30)) for _ in range(8)
    ]  # 512 texts, 2 per batch, 20 ms each on 2 workers: about 2.5 s of work
    verdicts = []
    while not all(task.done() for task in load):
        verdicts.append(await watchdog.check())
        await asyncio.sleep(0.02)
    await asyncio.gather(*load)
    assert len(verdicts) > 50
    assert all(v == Verdict.healthy() for v in verdicts), {v.reason for v in verdicts}
    assert lifecycle.ready
    assert lifecycle.live
    await scheduler.close(1)


async def test_workers_that_exit_at_shutdown_are_not_dead() -> None:
    harness = Harness(2, _policy())
    await harness.lifecycle.set_ready()
    await harness.scheduler.close(1)
    assert not any(thread.is_alive() for thread in harness.scheduler.threads)
    assert (await harness.watchdog.check()) == Verdict.healthy()
