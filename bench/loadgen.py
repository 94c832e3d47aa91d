"""A small, bounded load generator: closed loop (fixed concurrency) and open loop (fixed rate).

Every run is bounded in both request count and time, and targets 127.0.0.1 only.
The generator measures its own CPU time, because on a 2-core machine the
client competes with the server and the reader should know by how much.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

Call = Callable[[int], Awaitable[int]]  # request index -> texts embedded (raises on failure)


@dataclass
class RunResult:
    requests: int = 0
    texts: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    client_cpu_s: float = 0.0

    @property
    def texts_per_s(self) -> float:
        return self.texts / self.wall_s if self.wall_s else 0.0

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.wall_s if self.wall_s else 0.0

    def percentile_ms(self, p: float) -> float:
        return percentile(self.latencies_s, p) * 1e3


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[min(998, int(p * 10) - 1)]


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _timed(call: Call, index: int, result: RunResult) -> None:
    started = time.perf_counter()
    try:
        texts = await call(index)
    except Exception as exc:  # counted, never fatal: the report shows them
        key = type(exc).__name__ + ":" + str(getattr(exc, "code", lambda: "")())
        result.errors[key] = result.errors.get(key, 0) + 1
        return
    result.latencies_s.append(time.perf_counter() - started)
    result.requests += 1
    result.texts += texts


async def closed_loop(
    call: Call, *, concurrency: int, max_requests: int, max_seconds: float, warmup: int = 0
) -> RunResult:
    """``concurrency`` callers, each sending its next request when the last one returns."""
    for i in range(warmup):
        await call(i)
    result = RunResult()
    next_index = 0
    stop_at = time.perf_counter() + max_seconds

    async def caller() -> None:
        nonlocal next_index
        while next_index < max_requests and time.perf_counter() < stop_at:
            index = next_index
            next_index += 1
            await _timed(call, index, result)

    cpu0, wall0 = _cpu_s(), time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    result.wall_s = time.perf_counter() - wall0
    result.client_cpu_s = _cpu_s() - cpu0
    return result


async def open_loop(
    call: Call, *, rate_per_s: float, max_requests: int, max_seconds: float, max_outstanding: int = 512
) -> RunResult:
    """Requests at a fixed rate whatever the latency: what a service under real load sees."""
    result = RunResult()
    interval = 1.0 / rate_per_s
    tasks: set[asyncio.Task[None]] = set()
    cpu0, wall0 = _cpu_s(), time.perf_counter()
    for index in range(max_requests):
        due = wall0 + index * interval
        if due - wall0 > max_seconds:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(tasks) >= max_outstanding:
            result.errors["client_outstanding_cap"] = result.errors.get("client_outstanding_cap", 0) + 1
            continue
        task = asyncio.create_task(_timed(call, index, result))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=max_seconds)
    result.wall_s = time.perf_counter() - wall0
    result.client_cpu_s = _cpu_s() - cpu0
    return result


async def probe_latency(url_get: Callable[[], Awaitable[None]], stop: asyncio.Event, every_s: float = 0.05) -> list[float]:
    """Latencies of a cheap call (a health check) sent every ``every_s`` until ``stop``."""
    latencies: list[float] = []
    while not stop.is_set():
        started = time.perf_counter()
        try:
            await url_get()
            latencies.append(time.perf_counter() - started)
        except Exception:
            latencies.append(float("inf"))
        await asyncio.sleep(every_s)
    return latencies
