"""Adaptive width: a lone batch runs on the wide session, a busy pool runs one batch per worker.

Stand-in sessions record what they ran (the real sessions are tested in
tests/model); the scheduler's choice is also checked where operators see it,
in tandem_core_batch_width_total.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from tandem.batching.planner import BatchLimits
from tandem.batching.scheduler import BatchScheduler, QueueLimits
from tandem.errors import Unavailable
from tandem.ops.metrics import CoreMetrics
from tandem.worker_health import HealthPolicy, judge
from tests.batching.test_scheduler import DIM, RecordingWorker, _deadline, _rows

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


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


async def test_concurrent_texts_run_narrow_one_batch_per_worker() -> None:
    gate = threading.Event()
    pool = Pool(gate=gate, max_size=1)
    # Two texts that cannot share a batch: the first batch leaves one queued,
    # so neither is alone; both run at once, each on its own worker.
    task = asyncio.create_task(pool.scheduler.submit(_rows((1, 8), (2, 8)), deadline=_deadline()))
    await _wait_until(lambda: all(w.batches for w in pool.narrow), "both workers run a batch")
    gate.set()
    await task
    assert pool.wide.batches == []
    assert pool.widths() == {"wide": 0, "narrow": 2}
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
