"""One server's measurements, the same for every server.

In order: the sample's vectors (for the agreement check), one text at
concurrency 1, one text at concurrency 32 with every health probe of the
server running, 32 texts at concurrency 4, then the process tree's RSS. CPU
time is the tree's /proc counters read around each saturating run. Every
load run is bounded in requests and seconds.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from harness import probe_summary, row
from loadgen import LoadGenerator, LoadResult, probe_latency

from peers.proctree import tree_cpu_seconds, tree_rss_mib
from peers.servers import Endpoint, Running


@dataclass(frozen=True)
class Run:
    """One load run's shape and bounds."""

    texts: int
    concurrency: int
    requests: int
    seconds: float
    warmup: int


@dataclass(frozen=True)
class Plan:
    """The three load runs of every server."""

    lone: Run  # 1 text, concurrency 1
    single: Run  # 1 text, concurrency 32 (saturation; health probed meanwhile)
    batch: Run  # 32 texts, concurrency 4 (saturation)
    probe_delay_s: float  # probes start once the load has built up

    @classmethod
    def full(cls) -> Plan:
        return cls(
            lone=Run(1, 1, 600, 12, 20),
            single=Run(1, 32, 20_000, 20, 32),
            batch=Run(32, 4, 2_000, 20, 4),
            probe_delay_s=2.0,
        )

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            lone=Run(1, 1, 100, 3, 5),
            single=Run(1, 32, 2_000, 5, 8),
            batch=Run(32, 4, 200, 5, 2),
            probe_delay_s=1.0,
        )


async def embed_all(
    client: httpx.AsyncClient, endpoint: Endpoint, texts: Sequence[str], per_request: int = 16
) -> list[list[float]]:
    """The vectors of ``texts``, in requests of ``per_request`` texts."""
    vectors: list[list[float]] = []
    for i in range(0, len(texts), per_request):
        reply = await client.post(
            endpoint.base_url + endpoint.path,
            json=endpoint.body(texts[i : i + per_request]),
            timeout=30,
        )
        reply.raise_for_status()
        vectors.extend(endpoint.vectors(reply.json()))
    return vectors


async def _load(load: LoadGenerator, endpoint: Endpoint, run: Run) -> LoadResult:
    return await load.run(
        target=endpoint.base_url, requests=run.requests, seconds=run.seconds, mode="http",
        path=endpoint.path, openai=str(endpoint.openai).lower(), texts=run.texts,
        concurrency=run.concurrency, warmup=run.warmup,
    )  # fmt: skip


async def _probed(
    server: Running, load: LoadGenerator, run: Run, delay_s: float
) -> tuple[LoadResult, dict[str, list[float]]]:
    """Run ``run`` while every health probe of the server runs, from ``delay_s`` in."""
    loading = asyncio.create_task(_load(load, server.endpoint, run))
    await asyncio.sleep(delay_s)
    stop = asyncio.Event()
    probes = {
        name: asyncio.create_task(probe_latency(get, stop)) for name, get in server.probes.items()
    }
    try:
        result = await loading
    finally:
        stop.set()
        latencies = {name: await task for name, task in probes.items()}
    return result, latencies


def cpu_per_1000(cpu_s: float, result: LoadResult) -> float:
    """CPU-seconds per 1,000 texts served in a run (NaN if none was)."""
    texts = int(result.raw["texts"])
    return cpu_s / texts * 1000 if texts else math.nan


async def measure_server(server: Running, load: LoadGenerator, plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": server.key,
        "label": server.label,
        "first_embedding_s": round(server.first_embedding_s, 2),
        # The lock keeps other benchmarks off the CPUs, not everything: how busy
        # the machine was shows whether a row can be compared with the others.
        "load_average_before": round(os.getloadavg()[0], 2),
    }
    lone = await _load(load, server.endpoint, plan.lone)
    out["lone"] = row("1 text, concurrency 1", lone)

    before = tree_cpu_seconds(server.pids)
    single, probes = await _probed(server, load, plan.single, plan.probe_delay_s)
    cpu = tree_cpu_seconds(server.pids) - before
    out["single"] = row("1 text, concurrency 32", single)
    out["single"]["cpu_s_per_1000_texts"] = round(cpu_per_1000(cpu, single), 3)
    out["health"] = {name: probe_summary(latencies) for name, latencies in probes.items()}

    before = tree_cpu_seconds(server.pids)
    batch = await _load(load, server.endpoint, plan.batch)
    cpu = tree_cpu_seconds(server.pids) - before
    out["batch"] = row("32 texts, concurrency 4", batch)
    out["batch"]["cpu_s_per_1000_texts"] = round(cpu_per_1000(cpu, batch), 3)

    out["load_average_after"] = round(os.getloadavg()[0], 2)
    out["rss_after_load_mib"] = round(tree_rss_mib(server.pids), 1)
    out["rss_by_process_mib"] = {
        p.name: round(tree_rss_mib([p.process.pid]), 1)
        for p in server.processes
        if p.process is not None
    }
    return out
