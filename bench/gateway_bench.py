"""`make bench-gateway`: what the Go gateway adds, measured against the real core.

The same request stream (single-text requests from the same corpus) is sent
directly to the core over gRPC and through the gateway over HTTP, at light
load (one request at a time) and at about 70% of the core's capacity (open
loop, fixed rate). Direct and gateway runs alternate for several rounds and
the report takes the median of each percentile, because on a shared 2-CPU
machine one run's noise is as large as the effect being measured. The
gateway's CPU time per request comes from its /proc counters. Last, the
time split per stage (gateway, network, queue, tokenization, inference) at
each load, from the two services' histograms (bench/stages.py);
`--only stages` measures that section alone.

Results: docs/benchmarks/gateway.md (raw: gateway.json). Loopback only;
every run bounded in requests and seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
from typing import Any

import httpx
from cpu_cost import SHAPES, measure_served, profile_summary
from harness import (
    Budget,
    bench_main,
    corpus_load,
    cpu_seconds,
    machine,
    start_core,
    start_gateway,
)
from loadgen import LoadGenerator, LoadResult
from stages import STAGES, scrape, split_ms
from tandem_devkit.stack import StackPorts


def levels(rate: float) -> tuple[tuple[str, dict[str, Any]], ...]:
    """The two loads: one request at a time, and an open loop at ``rate`` requests/s."""
    return (
        ("light", {"concurrency": 1, "requests": 300, "warmup": 10}),
        ("70%", {"rate": rate, "concurrency": 256, "requests": 100_000}),
    )


async def stage_split(
    load: LoadGenerator, ports: StackPorts, rate: float, seconds: float
) -> list[dict[str, Any]]:
    """Mean time per request in each stage, through the gateway, at each load."""
    urls = {
        "gateway": f"http://127.0.0.1:{ports.gateway_admin}/metrics",
        "core": f"http://127.0.0.1:{ports.core_metrics}/metrics",
    }
    rows = []
    async with httpx.AsyncClient(timeout=10) as client:
        for level, flags in levels(rate):
            before = await scrape(client, urls)
            result = await load.run(target=f"http://127.0.0.1:{ports.gateway_http}",
                                    seconds=seconds, mode="http", path="/v1/embeddings", **flags)  # fmt: skip
            after = await scrape(client, urls)
            rows.append({
                "level": level,
                "requests": result.raw["requests"],
                "requests_per_s": round(result.requests_per_s, 1),
                "errors": sum(result.errors.values()),
                "stages_ms": split_ms(before, after),
            })  # fmt: skip
    return rows


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    if args.only is not None:
        return await _only(args)
    load = corpus_load(args)
    rounds = 1 if args.quick else 3
    seconds = 4 if args.quick else 10

    core, ports = start_core(args.model_dir, args.log_dir, "gateway-bench-core")
    gateway = start_gateway(args.gateway_bin, ports, args.log_dir, "gateway-bench-gateway")
    direct_target = f"127.0.0.1:{ports.core_grpc}"
    gateway_target = f"http://127.0.0.1:{ports.gateway_http}"
    try:
        capacity = await load.run(target=direct_target, requests=20_000, seconds=seconds,
                                  concurrency=32, warmup=20)  # fmt: skip
        rate = round(capacity.requests_per_s * 0.7, 1)
        runs: dict[tuple[str, str], list[LoadResult]] = {}
        gateway_cpu: dict[str, list[float]] = {"light": [], "70%": []}
        for _ in range(rounds):
            for level, flags in levels(rate):
                for path, target, extra in (
                    ("direct gRPC", direct_target, {}),
                    (
                        "through the gateway",
                        gateway_target,
                        {"mode": "http", "path": "/v1/embeddings"},
                    ),
                ):
                    before = cpu_seconds(gateway)
                    result = await load.run(target=target, seconds=seconds, **flags, **extra)
                    if path != "direct gRPC":
                        gateway_cpu[level].append(
                            (cpu_seconds(gateway) - before) / max(result.raw["requests"], 1) * 1e3
                        )
                    runs.setdefault((level, path), []).append(result)
        stages = await stage_split(load, ports, rate, seconds)
    finally:
        gateway.stop()
        core.stop()

    rows = []
    for (level, path), results in runs.items():
        rows.append({
            "level": level,
            "path": path,
            "p50_ms": round(statistics.median(r.latency_ms("p50") for r in results), 3),
            "p99_ms": round(statistics.median(r.latency_ms("p99") for r in results), 3),
            "requests_per_s": round(statistics.median(r.requests_per_s for r in results), 1),
            "errors": sum(sum(r.errors.values()) for r in results),
            "runs": len(results),
        })  # fmt: skip
    return {
        "command": args.command,
        "machine": machine(),
        "core_capacity_rps": round(capacity.requests_per_s, 1),
        "rate_70_rps": rate,
        "rows": rows,
        "gateway_cpu_ms_per_request": {
            k: round(statistics.median(v), 3) for k, v in gateway_cpu.items() if v
        },
        "stages": stages,
        "cpu": await cpu_through_gateway(args, load),
    }


async def _only(args: argparse.Namespace) -> dict[str, Any]:
    """`--only stages` or `--only cpu`: that section again, the others kept from the last results."""
    if args.only not in {"stages", "cpu"}:
        raise SystemExit(f"--only {args.only}: only 'stages' or 'cpu' can be measured on its own")
    previous = args.out.with_suffix(".json")
    if not previous.exists():
        raise SystemExit(f"--only needs the results of a full run in {previous}")
    data: dict[str, Any] = json.loads(previous.read_text())
    load = corpus_load(args)
    if args.only == "cpu":
        data["cpu"] = await cpu_through_gateway(args, load)
        return data
    seconds = 4 if args.quick else 10
    load_average = round(os.getloadavg()[0], 2)  # how busy the machine was as this run started
    core, ports = start_core(args.model_dir, args.log_dir, "gateway-bench-core")
    gateway = start_gateway(args.gateway_bin, ports, args.log_dir, "gateway-bench-gateway")
    try:
        # The 70% load is 70% of this run's capacity: the machine may be busier
        # (or quieter) than during the full run.
        capacity = await load.run(target=f"127.0.0.1:{ports.core_grpc}", requests=20_000,
                                  seconds=seconds, concurrency=32, warmup=20)  # fmt: skip
        rate = round(capacity.requests_per_s * 0.7, 1)
        data["stages"] = await stage_split(load, ports, rate, seconds)
    finally:
        gateway.stop()
        core.stop()
    data["stages_measured"] = {
        "date": machine()["date"],
        "load_average": load_average,
        "command": f'{args.command} BENCH_ARGS="--only stages{" --quick" if args.quick else ""}"',
        "core_capacity_rps": round(capacity.requests_per_s, 1),
        "rate_70_rps": rate,
    }
    return data


async def cpu_through_gateway(args: argparse.Namespace, load: LoadGenerator) -> dict[str, Any]:
    """CPU per request of the gateway and of the core, from their own /proc counters, with
    both request shapes sent through the gateway (cpu_cost.py); the core's raw loop comes
    from the last core benchmark (docs/benchmarks/core.json), when it has one."""
    budget = Budget(4, 2_000) if args.quick else Budget(15, 20_000)
    core, ports = start_core(args.model_dir, args.log_dir, "gateway-cpu-core")
    gateway = start_gateway(args.gateway_bin, ports, args.log_dir, "gateway-cpu-gateway")
    rows = {}
    try:
        for shape, flags in SHAPES.items():
            run = await measure_served(load, {"gateway": gateway, "core": core}, budget,
                                       target=f"http://127.0.0.1:{ports.gateway_http}",
                                       mode="http", path="/v1/embeddings", **flags)  # fmt: skip
            rows[shape] = {
                "texts_per_s": round(run.texts_per_s, 1),
                "gateway_cpu_ms_per_request": round(run.ms_per_request("gateway"), 3),
                "gateway_cpu_s_per_1000_texts": round(run.per_1000_texts("gateway"), 3),
                "core_cpu_s_per_1000_texts": round(run.per_1000_texts("core"), 2),
                "errors": run.errors,
            }
    finally:
        gateway.stop()
        core.stop()
    core_results = args.out.with_name("core.json")
    raw = None
    if core_results.exists():
        raw = (
            json.loads(core_results.read_text()).get("cpu", {}).get("raw_best_cpu_s_per_1000_texts")
        )
    profile = args.out.with_name("profile.json")  # make bench-profile's, when there is one
    gateway_profile = json.loads(profile.read_text())["gateway"] if profile.exists() else None
    for r in rows.values():
        r["gateway_over_raw"] = round(r["gateway_cpu_s_per_1000_texts"] / raw, 4) if raw else None
        r["stack_over_raw"] = (
            round((r["gateway_cpu_s_per_1000_texts"] + r["core_cpu_s_per_1000_texts"]) / raw, 3)
            if raw
            else None
        )
    return {
        "rows": rows,
        "profile": gateway_profile,
        "raw_cpu_s_per_1000_texts": raw,
        "date": machine()["date"],
        "load_average": round(os.getloadavg()[0], 2),
        "command": f'{args.command} BENCH_ARGS="--only cpu{" --quick" if args.quick else ""}"',
    }


def render_cpu(data: dict[str, Any]) -> list[str]:
    """CPU per request: the gateway's and the core's, each from its own counters."""
    cpu = data["cpu"]
    return [
        "## CPU per request",
        "",
        "Both request shapes through the gateway (closed loops, after a short warm run); each",
        "process's CPU (user + system) from its own /proc counters, so the figure does not depend",
        "on where the load generator runs (bench/cpu_cost.py). Raw: the core's raw loop, CPU-seconds",
        "per 1,000 texts (docs/benchmarks/core.md, section 6).",
        f"Measured {cpu['date']} with `{cpu['command']}`, on a shared 2-CPU machine (1-minute load",
        f"average {cpu['load_average']} as it started). Profile: [flame-gateway.svg](flame-gateway.svg)",
        "(`make bench-profile`).",
        "",
        "| shape | texts/s | gateway CPU ms per request | gateway CPU-s per 1,000 texts | gateway / raw "
        "| core CPU-s per 1,000 texts | (gateway + core) / raw |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {shape} | {r['texts_per_s']} | {r['gateway_cpu_ms_per_request']} | "
            f"{r['gateway_cpu_s_per_1000_texts']} | {r['gateway_over_raw']} | "
            f"{r['core_cpu_s_per_1000_texts']} | {r['stack_over_raw']} |"
            for shape, r in cpu["rows"].items()
        ],
        "",
        *_profile_lines(cpu.get("profile")),
    ]


def _profile_lines(profile: dict[str, Any] | None) -> list[str]:
    """The gateway's profile (make bench-profile), when the run found one."""
    if not profile:
        return []
    timings = ", ".join(
        f"{re.sub(r'-[0-9]+$', '', name)}: {r['ns_per_op'] / 1e3:.0f} us and "
        f"{r['allocs_per_op']} allocations per request"
        for name, r in profile["benchmarks"].items()
    )
    return [
        f"BenchmarkEmbeddings (go-gateway/internal/httpapi/bench_test.go; 32 callers, every CPU busy, "
        f"wall time per request): {timings}. Where its samples went:",
        "",
        *profile_summary({"BenchmarkEmbeddings, both shapes": profile}),
        "",
    ]


def render(data: dict[str, Any]) -> str:
    m = data["machine"]
    by = {(r["level"], r["path"]): r for r in data["rows"]}
    lines = [
        "# Gateway benchmark",
        "",
        f"Measured {m['date']} on {m['cpus']} CPUs ({m['cpu_model']}) with",
        "",
        f"    {data['command']}",
        "",
        "Single-text requests from the benchmark corpus, sent by `tandem-load` (Go) directly to the",
        "core over one gRPC connection, and through the gateway over HTTP (OpenAI JSON). Direct and",
        "gateway runs alternate; each cell is the median over the rounds. The core's capacity in this",
        f'run: {data["core_capacity_rps"]} requests/s; "70%" is an open loop at {data["rate_70_rps"]} requests/s.',
        "Loopback only; every run is bounded in requests and seconds.",
        "",
        "| load | path | p50 ms | p99 ms | requests/s | errors |",
        "|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        lines.append(
            f"| {r['level']} | {r['path']} | {r['p50_ms']} | {r['p99_ms']} | {r['requests_per_s']} | {r['errors']} |"
        )
    lines += [
        "",
        "| load | added p50 ms | added p99 ms | gateway CPU per request |",
        "|---|---|---|---|",
    ]
    for level in ("light", "70%"):
        direct, via = by[(level, "direct gRPC")], by[(level, "through the gateway")]
        cpu = data["gateway_cpu_ms_per_request"].get(level)
        lines.append(
            f"| {level} | {via['p50_ms'] - direct['p50_ms']:+.3f} | {via['p99_ms'] - direct['p99_ms']:+.3f} | "
            f"{cpu} ms |"
        )
    lines += [
        "",
        "Targets: the gateway adds at most 0.3 ms at p50 and 1.5 ms at p99. The added latency includes the",
        "HTTP/JSON client's own cost, which a gRPC client does not pay, so it is an upper bound on the",
        "gateway's share.",
        "",
    ]
    if "stages" in data:
        lines += render_stages(data)
    if "cpu" in data:
        lines += render_cpu(data)
    return "\n".join(lines)


def render_stages(data: dict[str, Any]) -> list[str]:
    """Where the time goes: the table, the chart and its takeaway."""
    rows = data["stages"]
    again = data.get("stages_measured")
    lines = [
        "## Where the time goes",
        "",
        "Mean time per request in each stage, through the gateway, from the two services' own",
        "histograms: both scraped before and after each load step, each stage the change in a",
        "histogram's `_sum` over the change in its `_count` (bench/stages.py says which histogram",
        "each stage is). Network is the gateway's gRPC call minus the core's own request time;",
        "inference is the core's request time minus its queue wait and tokenization.",
    ]
    if again:
        lines += [
            "",
            f"This section was measured on {again['date']}, on its own, with `{again['command']}`, on a",
            f"machine whose 1-minute load average was {again['load_average']} as it started: other work shared the two",
            f"CPUs, and the core's capacity was {again['core_capacity_rps']} requests/s (70% = {again['rate_70_rps']}),",
            f"against {data['core_capacity_rps']} in the run above. Every figure in it includes that contention.",
        ]
    lines += [
        "",
        "| load | requests/s | " + " | ".join(f"{s} ms" for s in STAGES) + " | sum ms |",
        "|---|---|" + "---|" * len(STAGES) + "---|",
        *[
            f"| {r['level']} | {r['requests_per_s']} | "
            + " | ".join(f"{r['stages_ms'][s]:.2f}" for s in STAGES)
            + f" | {sum(r['stages_ms'].values()):.2f} |"
            for r in rows
        ],
        "",
        "![Where a request's time goes: stacked bars of gateway, network, queue, tokenization and "
        "inference time per request, at light load and at 70% of capacity](gateway-stages.svg)",
        "",
        stages_takeaway(rows),
        "",
    ]
    return lines


def stages_takeaway(rows: list[dict[str, Any]]) -> str:
    """The stage chart in one sentence: the largest stage at each load, and the gateway's share."""
    parts = []
    for r in rows:
        total = sum(r["stages_ms"].values())
        top = max(STAGES, key=lambda s: r["stages_ms"][s])
        parts.append(
            f"{r['level']}: {r['stages_ms'][top] / total:.0%} of {total:.1f} ms is {top}, "
            f"{r['stages_ms']['gateway'] / total:.0%} the gateway"
        )
    return "Per request, " + "; ".join(parts) + "."


def main() -> int:
    return bench_main("gateway", __doc__.splitlines()[0], measure, render)


if __name__ == "__main__":
    raise SystemExit(main())
