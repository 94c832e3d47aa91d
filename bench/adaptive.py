"""`make bench-core BENCH_ARGS="--only adaptive"`: the core's thread layout, before and after.

One run, side by side, the same corpus and load generator for each layout:
- before: 2 single-threaded workers, every batch on one thread, inference
  threads at the event loop's priority;
- wide + nice: wide lone batches, and inference threads 10 steps nicer than
  the loop (TANDEM_CORE_INFERENCE_NICE=10), so the loop preempts inference;
- after (the default): the scheduler runs a lone batch on a session with
  every CPU thread (TANDEM_CORE_ADAPTIVE_THREADS), priorities unchanged.

For each: a lone request's p50 over gRPC and through the gateway, saturated
throughput (1 text at concurrency 32, 32 texts at concurrency 4) and, while
the gateway is saturated, the p99 of the core's /healthz, its gRPC health
check and the gateway's /readyz, probed side by side every 50 ms. Every load
loop is bounded in requests and seconds and targets 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import statistics
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from harness import Budget, probe_summary, row, start_core, start_gateway
from loadgen import LoadGenerator, LoadResult, probe_latency

# (label, the core's environment)
LAYOUTS: tuple[tuple[str, dict[str, str]], ...] = (
    ("before: one thread per batch, equal priority",
     {"TANDEM_CORE_ADAPTIVE_THREADS": "false", "TANDEM_CORE_INFERENCE_NICE": "0"}),
    ("wide lone batches, inference nice +10",
     {"TANDEM_CORE_ADAPTIVE_THREADS": "true", "TANDEM_CORE_INFERENCE_NICE": "10"}),
    ("after (default): wide lone batches, equal priority",
     {"TANDEM_CORE_ADAPTIVE_THREADS": "true", "TANDEM_CORE_INFERENCE_NICE": "0"}),
)  # fmt: skip

Probe = Callable[[], Awaitable[None]]

# Per layout and round: short enough for 3 layouts x 3 interleaved rounds to
# stay within a few minutes, long enough for p99 over a few thousand requests.
BUDGETS = {"c1": Budget(8, 200), "sat": Budget(8, 4_000)}
QUICK_BUDGETS = {"c1": Budget(3, 50), "sat": Budget(3, 1_000)}
ROUNDS, QUICK_ROUNDS = 3, 2


async def with_probes(
    load: Awaitable[LoadResult], probes: dict[str, Probe]
) -> tuple[LoadResult, dict[str, Any]]:
    """Run ``load`` while every probe is sent every 50 ms; the first second's probes are skipped."""
    stop = asyncio.Event()
    tasks = {name: asyncio.create_task(probe_latency(get, stop)) for name, get in probes.items()}
    await asyncio.sleep(1.0)
    result = await load
    stop.set()
    return result, {name: probe_summary((await task)[20:]) for name, task in tasks.items()}


def width_counts(metrics_port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
    out = {}
    for line in text.splitlines():
        if line.startswith("tandem_core_batch_width_total{"):
            out[line.split('width="')[1].split('"')[0]] = float(line.rsplit(" ", 1)[1])
    return out


async def one_layout(
    model_dir: Path, gateway_bin: Path, load: LoadGenerator, log_dir: Path, *,
    budgets: dict[str, Budget], name: str, env: dict[str, str],
) -> dict[str, Any]:  # fmt: skip
    core, ports = start_core(model_dir, log_dir, name, **env)
    gateway = start_gateway(gateway_bin, ports, log_dir, f"{name}-gateway")
    grpc_target = f"127.0.0.1:{ports.core_grpc}"
    gateway_url = f"http://127.0.0.1:{ports.gateway_http}"
    c1, sat = budgets["c1"], budgets["sat"]
    out: dict[str, Any] = {}
    try:
        async with (
            httpx.AsyncClient(timeout=5) as http,
            grpc.aio.insecure_channel(grpc_target) as channel,
        ):
            health = health_pb2_grpc.HealthStub(channel)

            async def core_healthz() -> None:
                (await http.get(f"http://127.0.0.1:{ports.core_http}/healthz")).raise_for_status()

            async def grpc_health() -> None:
                reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
                if reply.status != health_pb2.HealthCheckResponse.SERVING:
                    raise RuntimeError(f"not serving: {reply.status}")

            async def gateway_readyz() -> None:
                (await http.get(f"{gateway_url}/readyz")).raise_for_status()

            widths_before = width_counts(ports.core_metrics)
            lone_grpc = await load.run(target=grpc_target, requests=c1.requests, seconds=c1.seconds,
                                       concurrency=1, warmup=20)  # fmt: skip
            lone_gateway = await load.run(target=gateway_url, requests=c1.requests, seconds=c1.seconds,
                                          mode="http", path="/v1/embeddings", concurrency=1, warmup=20)  # fmt: skip
            widths_lone = width_counts(ports.core_metrics)
            sat1 = await load.run(target=grpc_target, requests=sat.requests, seconds=sat.seconds,
                                  concurrency=32, warmup=8)  # fmt: skip
            sat32 = await load.run(target=grpc_target, requests=sat.requests // 32, seconds=sat.seconds,
                                   texts=32, concurrency=4, warmup=2)  # fmt: skip
            widths_sat = width_counts(ports.core_metrics)
            sat_gateway, probes = await with_probes(
                load.run(target=gateway_url, requests=sat.requests, seconds=sat.seconds,
                         mode="http", path="/v1/embeddings", concurrency=32, warmup=8),
                {"core /healthz": core_healthz, "core gRPC health": grpc_health,
                 "gateway /readyz": gateway_readyz},
            )  # fmt: skip
        out = {
            "label": name,
            "env": env,
            "rows": [
                row("gRPC, 1 text, concurrency 1", lone_grpc),
                row("gateway, 1 text, concurrency 1", lone_gateway),
                row("gRPC, 1 text, concurrency 32", sat1),
                row("gRPC, 32 texts, concurrency 4", sat32),
                row("gateway, 1 text, concurrency 32 (health probed)", sat_gateway),
            ],
            "health_while_saturated": probes,
            "wide_share": {
                "lone": _wide_share(widths_before, widths_lone),
                "saturated": _wide_share(widths_lone, widths_sat),
            },
        }
    finally:
        gateway.stop()
        out["exit_code"] = core.stop()
    return out


def _wide_share(before: dict[str, float], after: dict[str, float]) -> float:
    wide = after.get("wide", 0) - before.get("wide", 0)
    narrow = after.get("narrow", 0) - before.get("narrow", 0)
    return round(wide / max(wide + narrow, 1), 3)


async def adaptive(
    model_dir: Path, gateway_bin: Path, load: LoadGenerator, log_dir: Path, *,
    quick: bool, raw_single: dict[str, float],
) -> dict[str, Any]:  # fmt: skip
    budgets, rounds = (QUICK_BUDGETS, QUICK_ROUNDS) if quick else (BUDGETS, ROUNDS)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in LAYOUTS}
    # Interleaved rounds, each starting with the next layout, so a neighbour's
    # burst, or load that drifts over the run, on the shared CPUs hits every
    # layout alike; each figure is the median over the rounds.
    for round_ in range(rounds):
        for name, env in LAYOUTS[round_ % len(LAYOUTS) :] + LAYOUTS[: round_ % len(LAYOUTS)]:
            print(f"adaptive, round {round_ + 1}: {name} ...", flush=True)
            runs[name].append(
                await one_layout(
                    model_dir, gateway_bin, load, log_dir, budgets=budgets, name=name, env=env
                )
            )
    return {
        "cpus": os.cpu_count(),
        "rounds": rounds,
        "raw_single_latency_ms": raw_single,
        "layouts": [_median_of(results) for results in runs.values()],
    }


def _median_of(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One layout's rounds as one result: the median of every number."""

    def merge(values: list[Any]) -> Any:
        first = values[0]
        if isinstance(first, dict):
            return {key: merge([v[key] for v in values]) for key in first}
        if isinstance(first, list):
            return [merge(list(items)) for items in zip(*values, strict=True)]
        if isinstance(first, (int, float)) and not isinstance(first, bool):
            finite = [v for v in values if v is not None]
            return round(statistics.median(finite), 3) if finite else None
        return first

    return merge(results)


def render_adaptive(data: dict[str, Any]) -> list[str]:
    """The section's Markdown: one column per layout, side by side."""
    layouts = data["layouts"]
    raw = data["raw_single_latency_ms"]
    cpus = data["cpus"]
    header = "| | " + " | ".join(layout["label"] for layout in layouts) + " |"
    lines = [
        f"Median of {data['rounds']} interleaved rounds, measured {data['measured']['date']} with `{data['measured']['command']}`, on a shared",
        f"{cpus}-CPU machine (the load generator on the same CPUs; load average "
        f"{data['measured']['load_average']} at the start). The model alone, one text through",
        f"tokenizer + model, p50: {raw['1 thread']} ms on 1 thread, {raw[str(cpus) + ' threads']} ms "
        f"on {cpus} threads"
        + (
            f", {spinning} ms on {cpus} spinning threads (as the wide session runs)."
            if (spinning := raw.get(f"{cpus} threads, spinning")) is not None
            else "."
        ),
        "",
        header,
        "|---" * (len(layouts) + 1) + "|",
    ]
    for i, first in enumerate(layouts[0]["rows"]):
        cells = []
        for layout in layouts:
            r = layout["rows"][i]
            errors = sum(r["errors"].values())
            shown = (
                f"p50 {r['p50_ms']} ms"
                if "concurrency 1" in r["label"]
                else f"{r['texts_per_s']} texts/s, p99 {r['p99_ms']} ms"
            )
            cells.append(shown + (f", {errors} errors" if errors else ""))
        lines.append(f"| {first['label']} | " + " | ".join(cells) + " |")
    for probe in layouts[0]["health_while_saturated"]:
        cells = [
            f"p50 {p['p50_ms']}, p99 **{p['p99_ms']}**, max {p['max_ms']} ms"
            + (f", {p['failed']} failed" if p["failed"] else "")
            for p in (layout["health_while_saturated"][probe] for layout in layouts)
        ]
        lines.append(f"| {probe} while the gateway is saturated | " + " | ".join(cells) + " |")
    for when in ("lone", "saturated"):
        cells = [f"{layout['wide_share'][when]:.0%}" for layout in layouts]
        lines.append(f"| wide batches, {when} | " + " | ".join(cells) + " |")
    return [*lines, "", *takeaways(data)]


def takeaways(data: dict[str, Any]) -> list[str]:
    """The issue's targets, read from the numbers above (first layout = before, last = after)."""
    before, after = data["layouts"][0], data["layouts"][-1]
    best = min(data["raw_single_latency_ms"].values())

    def p50(layout: dict[str, Any], label: str) -> float:
        return float(next(r["p50_ms"] for r in layout["rows"] if r["label"] == label))

    def texts(layout: dict[str, Any], label: str) -> float:
        return float(next(r["texts_per_s"] for r in layout["rows"] if r["label"] == label))

    lone = "gateway, 1 text, concurrency 1"
    lines = [
        f"- A lone request through the gateway: p50 {p50(before, lone)} ms before, "
        f"{p50(after, lone)} ms after; the target is the model's best single-text latency "
        f"({best} ms) + 1.5 ms = {best + 1.5:.2f} ms "
        f"({'met' if p50(after, lone) <= best + 1.5 else 'missed'}).",
    ]
    for label in ("gRPC, 1 text, concurrency 32", "gRPC, 32 texts, concurrency 4"):
        ratio = texts(after, label) / max(texts(before, label), 1e-9)
        lines.append(f"- {label}: after / before throughput {ratio:.2f}.")
    for probe, summary in after["health_while_saturated"].items():
        p99 = summary["p99_ms"]
        verdict = "met" if p99 is not None and p99 <= 10 else "missed"
        lines.append(f"- {probe} while saturated: p99 {p99} ms after (target <= 10 ms: {verdict}).")
    return lines
