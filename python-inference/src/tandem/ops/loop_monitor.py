"""Continuous event-loop lag measurement.

A timer that should fire every INTERVAL fires late by however long the loop
was busy with something else. Under load this must stay near zero: if it
does not, something CPU-bound is running on the loop (the mistake this
project exists to show), and every request and health check waits behind it.
"""

from __future__ import annotations

import asyncio
import time

from tandem.ops.metrics import CoreMetrics

INTERVAL_S = 0.05


async def monitor_event_loop(metrics: CoreMetrics, interval_s: float = INTERVAL_S) -> None:
    while True:
        scheduled = time.perf_counter() + interval_s
        await asyncio.sleep(interval_s)
        metrics.loop_lag_seconds.observe(max(0.0, time.perf_counter() - scheduled))
