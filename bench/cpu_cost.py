"""CPU per text served, read from each process's own counters.

Throughput on a shared 2-CPU machine depends on who else runs there (the load
generator, other work): the CPU-seconds a server process spends per 1,000
texts does not. It is read from /proc/<pid>/stat of the server alone
(harness.cpu_seconds), and compared with the raw loop's (tokenizer + ONNX
Runtime in a tight loop, no server), read from this process's own counters
while it runs nothing else. The difference is the work around the model:
RPC, decoding, admission, batching, metrics, logging, spans.

Every load run here is bounded in requests and seconds and targets 127.0.0.1.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from harness import Budget, cpu_seconds
from loadgen import LoadGenerator
from prometheus_client.parser import text_string_to_metric_families
from tandem_devkit.stack import ManagedProcess

# The two request shapes of issue 15: single texts from 32 callers, and
# 32-text requests from 4.
SHAPES: dict[str, dict[str, int]] = {
    "1 text, c=32": {"texts": 1, "concurrency": 32},
    "32 texts, c=4": {"texts": 32, "concurrency": 4},
}
WARM_SECONDS = 2.0


def own_cpu_seconds() -> float:
    """User + system CPU of this process, every thread included."""
    times = os.times()
    return times.user + times.system


@dataclass(frozen=True)
class CpuRun:
    """CPU spent by each process over one measured run, and what the run served."""

    texts: int
    requests: int
    wall_s: float
    cpu_s: dict[str, float]  # process name -> CPU-seconds
    client_cpu_s: float = 0.0  # the load generator's own
    errors: int = 0
    batches: dict[str, float] | None = None  # the core's batch shape (batch_shape)

    def per_1000_texts(self, name: str) -> float:
        return self.cpu_s[name] / max(self.texts, 1) * 1000

    def ms_per_request(self, name: str) -> float:
        return self.cpu_s[name] / max(self.requests, 1) * 1000

    @property
    def texts_per_s(self) -> float:
        return self.texts / self.wall_s if self.wall_s else 0.0

    def busy(self, name: str) -> float:
        """CPUs the process kept busy on average (1.0 = one whole CPU)."""
        return self.cpu_s[name] / self.wall_s if self.wall_s else 0.0


# The core's batch counters: what its batches computed, padding included.
BATCH_SERIES = {
    "tandem_core_batch_real_tokens_total": "real_tokens",
    "tandem_core_batch_padding_tokens_total": "padding_tokens",
    "tandem_core_batch_texts_count": "batches",
    "tandem_core_batch_texts_sum": "texts",
}


def batch_counters(metrics_url: str) -> dict[str, float]:
    """The core's batch counters now (scraped from its /metrics)."""
    text = httpx.get(metrics_url, timeout=10).text
    out = dict.fromkeys(BATCH_SERIES.values(), 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in BATCH_SERIES:
                out[BATCH_SERIES[sample.name]] += sample.value
    return out


def batch_shape(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Mean batch size and the padding share of computed tokens between two scrapes."""
    delta = {k: after[k] - before[k] for k in after}
    computed = delta["real_tokens"] + delta["padding_tokens"]
    return {
        "mean_batch_texts": round(delta["texts"] / delta["batches"], 2)
        if delta["batches"]
        else 0.0,
        "padding_share": round(delta["padding_tokens"] / computed, 4) if computed else 0.0,
    }


def padding_share(token_counts: list[list[int]]) -> float:
    """Padding share of computed tokens for batches of these token counts."""
    real = sum(sum(batch) for batch in token_counts)
    padded = sum(len(batch) * max(batch) for batch in token_counts)
    return round((padded - real) / padded, 4) if padded else 0.0


def measure_raw(run: Callable[[], int]) -> CpuRun:
    """CPU and wall time of ``run`` (a raw loop in this process; returns texts computed)."""
    cpu, wall = own_cpu_seconds(), time.perf_counter()
    texts = run()
    return CpuRun(
        texts=texts,
        requests=0,
        wall_s=time.perf_counter() - wall,
        cpu_s={"raw loop": own_cpu_seconds() - cpu},
    )


async def measure_served(
    load: LoadGenerator,
    processes: dict[str, ManagedProcess],
    budget: Budget,
    *,
    texts: int,
    concurrency: int,
    core_metrics_url: str | None = None,
    **target: Any,
) -> CpuRun:
    """One closed-loop run at ``concurrency`` with ``texts`` per request, after a short
    warm run at the same load (its CPU is not counted: connections, arenas, caches).
    With ``core_metrics_url``, also the core's batch shape over the run."""
    requests = max(budget.requests // texts, concurrency)
    await load.run(requests=requests, seconds=WARM_SECONDS, texts=texts,
                   concurrency=concurrency, **target)  # fmt: skip
    counters = batch_counters(core_metrics_url) if core_metrics_url else None
    before = {name: cpu_seconds(p) for name, p in processes.items()}
    result = await load.run(requests=requests, seconds=budget.seconds, texts=texts,
                            concurrency=concurrency, **target)  # fmt: skip
    after = {name: cpu_seconds(p) for name, p in processes.items()}
    shape = None
    if core_metrics_url and counters is not None:
        shape = batch_shape(counters, batch_counters(core_metrics_url))
    return CpuRun(
        texts=int(result.raw["texts"]),
        requests=int(result.raw["requests"]),
        wall_s=float(result.raw["wall_seconds"]),
        cpu_s={name: after[name] - before[name] for name in processes},
        client_cpu_s=float(result.raw["client_cpu_seconds"]),
        errors=sum(result.errors.values()),
        batches=shape,
    )


def profile_summary(profile: dict[str, Any], *, top: int = 5) -> list[str]:
    """Lines for a page: where each profiled load's samples went (bench/profiling.py's
    profile.json), the largest groups first, "other" last."""
    lines = []
    for label, entry in profile.items():
        shares = sorted(
            ((g, v) for g, v in entry["share"].items() if g != "other" and v > 0),
            key=lambda item: -item[1],
        )
        parts = [f"{g} {v:.1%}" for g, v in shares[:top]]
        rest = sum(v for _, v in shares[top:]) + entry["share"].get("other", 0.0)
        parts.append(f"the rest {rest:.1%}")
        lines.append(f"- {label} ({entry['samples']} samples): " + ", ".join(parts) + ".")
    return lines
