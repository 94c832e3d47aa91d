"""Driving load for the benchmarks: the Go load generator, plus a health probe.

The load itself comes from `tandem-load` (go-gateway/cmd/tandem-load): a Go
client costs the server's CPUs far less than a Python one would (about 3% of
one CPU at saturation here). Every run is bounded in requests and seconds and
targets 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class LoadResult:
    """One tandem-load run."""

    raw: dict[str, Any]

    @property
    def texts_per_s(self) -> float:
        return float(self.raw["texts_per_second"])

    @property
    def requests_per_s(self) -> float:
        return float(self.raw["requests_per_second"])

    @property
    def errors(self) -> dict[str, int]:
        return dict(self.raw["errors"])

    @property
    def client_cpu_share(self) -> float:
        return float(self.raw["client_cpu_seconds"]) / max(float(self.raw["wall_seconds"]), 1e-9)

    def latency_ms(self, name: str) -> float:
        return float(self.raw["latency_ms"][name])


class LoadGenerator:
    """Runs tandem-load against one target with one corpus file."""

    def __init__(self, binary: Path, corpus_file: Path) -> None:
        self.binary = binary
        self.corpus_file = corpus_file

    async def run(
        self, *, target: str, requests: int, seconds: float, **flags: object
    ) -> LoadResult:
        args = [str(self.binary), "-corpus", str(self.corpus_file), "-target", target,
                "-requests", str(requests), "-duration", f"{seconds}s"]  # fmt: skip
        for name, value in flags.items():
            args.append(f"-{name.replace('_', '-')}={value}")
        process = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=seconds + 120)
        if process.returncode != 0:
            raise RuntimeError(f"tandem-load failed: {err.decode(errors='replace')}")
        return LoadResult(json.loads(out))


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[min(998, int(p * 10) - 1)]


async def probe_latency(
    get: Callable[[], Awaitable[None]], stop: asyncio.Event, every_s: float = 0.05
) -> list[float]:
    """Latencies of a cheap call (a health check) sent every ``every_s`` until ``stop``."""
    latencies: list[float] = []
    while not stop.is_set():
        started = time.perf_counter()
        try:
            await get()
            latencies.append(time.perf_counter() - started)
        except Exception:
            latencies.append(float("inf"))
        await asyncio.sleep(every_s)
    return latencies
