"""monitor_event_loop: a loop kept busy shows up as lag; an idle one does not."""

from __future__ import annotations

import asyncio
import time

import pytest

from tandem.ops.loop_monitor import monitor_event_loop
from tandem.ops.metrics import CoreMetrics

pytestmark = pytest.mark.anyio

INTERVAL_S = 0.01


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _lag(metrics: CoreMetrics) -> tuple[float, float, float]:
    """(observations, seconds in all, observations at or below 0.1 s)."""
    registry = metrics.registry
    name = "tandem_core_event_loop_lag_seconds"
    count = registry.get_sample_value(f"{name}_count") or 0.0
    total = registry.get_sample_value(f"{name}_sum") or 0.0
    small = registry.get_sample_value(f"{name}_bucket", {"le": "0.1"}) or 0.0
    return count, total, small


def _spin(seconds: float) -> None:
    """Keep the CPU (and so the event loop) busy for ``seconds``."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def _observations(metrics: CoreMetrics, at_least: float) -> None:
    deadline = time.monotonic() + 5
    while _lag(metrics)[0] < at_least:
        assert time.monotonic() < deadline, "the monitor stopped observing"
        await asyncio.sleep(INTERVAL_S)


async def test_a_blocked_loop_is_measured_as_lag() -> None:
    metrics = CoreMetrics()
    monitor = asyncio.create_task(monitor_event_loop(metrics, INTERVAL_S))
    await _observations(metrics, 3)
    before_count, before_total, before_small = _lag(metrics)
    _spin(0.3)  # CPU-bound work on the loop: the mistake the monitor exists to show
    await _observations(metrics, before_count + 1)
    monitor.cancel()
    with pytest.raises(asyncio.CancelledError):
        await monitor
    count, total, small = _lag(metrics)
    # One observation took the whole block (less the interval already waited).
    assert count - before_count >= 1
    assert small - before_small == count - before_count - 1
    assert total - before_total >= 0.3 - INTERVAL_S


async def test_an_idle_loop_is_sampled_at_its_interval_with_next_to_no_lag() -> None:
    metrics = CoreMetrics()
    monitor = asyncio.create_task(monitor_event_loop(metrics, 0.05))
    await asyncio.sleep(0.3)
    monitor.cancel()
    with pytest.raises(asyncio.CancelledError):
        await monitor
    count, total, small = _lag(metrics)
    assert 3 <= count <= 6  # 0.3 s at one observation per 50 ms
    # The lag is how late the timer fired, not the interval itself; timers fire
    # a little late on a busy machine, never by 20 ms on average.
    assert small == count
    assert 0 <= total / count < 0.02
