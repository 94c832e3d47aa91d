"""`make bench-gateway`: what the Go gateway adds, measured against the real core.

The same request stream (single-text requests from the same corpus) is sent
directly to the core over gRPC and through the gateway over HTTP, at light
load (one request at a time) and at about 70% of the core's capacity (open
loop, fixed rate). Direct and gateway runs alternate for several rounds and
the report takes the median of each percentile, because on a shared 2-CPU
machine one run's noise is as large as the effect being measured. The
gateway's CPU time per request comes from its /proc counters.

Results: docs/benchmarks/gateway.md (raw: gateway.json). Loopback only;
every run bounded in requests and seconds.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from harness import (
    bench_main,
    corpus_load,
    cpu_seconds,
    machine,
    start_core,
    start_gateway,
)
from loadgen import LoadResult


async def measure(args: argparse.Namespace) -> dict[str, Any]:
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
            for level, flags in (
                ("light", {"concurrency": 1, "requests": 300, "warmup": 10}),
                ("70%", {"rate": rate, "concurrency": 256, "requests": 100_000}),
            ):
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
    }


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
    return "\n".join(lines)


def main() -> int:
    return bench_main("gateway", __doc__.splitlines()[0], measure, render)


if __name__ == "__main__":
    raise SystemExit(main())
