"""Shared pieces of the benchmarks: starting services, reading their numbers, rows.

Every service runs on 127.0.0.1 on free ports, started with tandem_devkit.stack
(the launcher behind `make run`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from charts import render_charts
from loadgen import LoadGenerator, LoadResult, percentile, probe_latency
from tandem.model.manifest import ModelManifest
from tandem.model.tokenizer import TextTokenizer
from tandem_devkit.reference import reference_file
from tandem_devkit.stack import ManagedProcess, StackPorts, core_process, gateway_process

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Budget:
    """Bounds of every load loop: requests and seconds."""

    seconds: float
    requests: int


def start_core(
    model_dir: Path, log_dir: Path, name: str, ports: StackPorts | None = None, **env: str
) -> tuple[ManagedProcess, StackPorts]:
    ports = ports or StackPorts.free()
    process = core_process(
        ports,
        log_dir / name,
        env={"TANDEM_CORE_MODEL_DIR": str(model_dir), "TANDEM_CORE_ACCESS_LOG": "false", **env},
    ).start()
    process.wait_ready(120)
    return process, ports


def startup_seconds(process: ManagedProcess) -> float:
    """The core's own measurement from its last "ready" log line (logs are appended)."""
    ready = [
        line for line in process.log_path.read_text().splitlines() if '"message": "ready"' in line
    ]
    return float(json.loads(ready[-1])["startup_seconds"]) if ready else float("nan")


def peak_rss_mib(process: ManagedProcess) -> float:
    assert process.process is not None
    for line in Path(f"/proc/{process.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker_batches(ports: StackPorts) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{ports.core_metrics}/metrics").text
    out = {}
    for line in text.splitlines():
        if line.startswith("tandem_core_worker_batches_total{"):
            worker = line.split('worker="')[1].split('"')[0]
            out[worker] = float(line.rsplit(" ", 1)[1])
    return out


async def with_health_probe(
    load: Awaitable[LoadResult], health_url: str
) -> tuple[LoadResult, list[float]]:
    """Run ``load`` while probing ``health_url`` every 50 ms."""
    stop = asyncio.Event()
    async with httpx.AsyncClient(timeout=5) as probe_client:

        async def get() -> None:
            (await probe_client.get(health_url)).raise_for_status()

        probe = asyncio.create_task(probe_latency(get, stop))
        await asyncio.sleep(1.0)  # probes before saturation are not the point
        result = await load
        stop.set()
        latencies = await probe
        return result, latencies[20:]  # skip the first second's probes


def row(label: str, r: LoadResult) -> dict[str, Any]:
    return {
        "label": label,
        "texts_per_s": round(r.texts_per_s, 1),
        "requests_per_s": round(r.requests_per_s, 1),
        "p50_ms": round(r.latency_ms("p50"), 2),
        "p99_ms": round(r.latency_ms("p99"), 2),
        "errors": r.errors,
        "client_cpu_share": round(r.client_cpu_share, 3),
    }


def probe_summary(latencies: list[float]) -> dict[str, Any]:
    finite = [x for x in latencies if math.isfinite(x)]
    return {
        "probes": len(latencies),
        "failed": len(latencies) - len(finite),
        "p50_ms": round(percentile(finite, 50) * 1e3, 2) if finite else None,
        "p99_ms": round(percentile(finite, 99) * 1e3, 2) if finite else None,
        "max_ms": round(max(finite) * 1e3, 2) if finite else None,
    }


def start_gateway(
    binary: Path, ports: StackPorts, log_dir: Path, name: str, **env: str
) -> ManagedProcess:
    """A gateway in front of the core on ``ports``, without the per-client rate limit."""
    process = gateway_process(
        binary, ports, log_dir / name, env={"TANDEM_GATEWAY_RATE_LIMIT_RPS": "0", **env}
    ).start()
    process.wait_ready(60)
    return process


def cpu_seconds(process: ManagedProcess) -> float:
    """User + system CPU time the process has used so far."""
    assert process.process is not None
    fields = Path(f"/proc/{process.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_corpus(tokenizer: TextTokenizer, path: Path, size: int) -> list[str]:
    from corpus import make_corpus  # noqa: PLC0415

    corpus = make_corpus(size, lambda t: tokenizer.encode([t])[0].token_count)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(corpus) + "\n")
    return corpus


def corpus_load(args: argparse.Namespace, size: int = 1024) -> LoadGenerator:
    """The benchmark corpus (tokenized with the model's tokenizer) and a load generator over it."""
    manifest = ModelManifest.read(args.model_dir)
    tokenizer = TextTokenizer(args.model_dir / manifest.tokenizer, manifest.max_tokens)
    corpus_file = args.log_dir / "corpus.txt"
    write_corpus(tokenizer, corpus_file, size)
    return LoadGenerator(args.load_bin, corpus_file)


def machine() -> dict[str, Any]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}  # fmt: skip


def bench_main(
    name: str,
    description: str,
    measure: Callable[[argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]],
    render: Callable[[dict[str, Any]], str],
) -> int:
    """The command line every benchmark shares: measure, then write <name>.md, <name>.json
    and the charts the page embeds (bench/charts.py)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument(
        "--gateway-bin", type=Path, default=REPO / "go-gateway" / "bin" / "tandem-gateway"
    )
    parser.add_argument(
        "--load-bin", type=Path, default=REPO / "go-gateway" / "bin" / "tandem-load"
    )
    parser.add_argument(
        "--reference",
        type=Path,
        default=reference_file(),
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks" / f"{name}.md")
    parser.add_argument("--log-dir", type=Path, default=REPO / ".cache" / "bench")
    parser.add_argument(
        "--quick", action="store_true", help="short runs, for checking the script itself"
    )
    parser.add_argument(
        "--only",
        default=None,
        help="measure one section again and keep the others from the last results file "
        "(the page says when and how each was measured)",
    )
    parser.add_argument("--command", default=f"make bench-{name}")
    args = parser.parse_args()
    data = asyncio.run(measure(args))
    report = render(data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    args.out.write_text(report)
    for chart in render_charts(name, data, args.out.parent):
        print(f"wrote {chart}")
    print(report)
    return 0
