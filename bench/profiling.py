"""`make bench-profile`: where the core's and the gateway's CPU goes, as flame graphs.

The core: py-spy (bench/requirements.txt) samples the running core process
while tandem-load drives each request shape of bench/cpu_cost.py at it over
gRPC. Only threads that are running count (idle ones are left out), which
needs two settings here: --nonblocking (a paused process shows every thread
as running: half the samples were workers in Condition.wait and the
executor's idle threads) and Python frames only (with --native py-spy cannot
tell a native wait from work either). ONNX Runtime's work shows as
Session.run, the tokenizer's as its encode call; what the grpc.aio C-core
does on the event loop thread shows under the loop's frames. py-spy attaches
with ptrace: it needs root or CAP_SYS_PTRACE.

The gateway: the gateway binary has no profiling endpoint, and gets none for
this (a benchmark is no reason to open one on a production process). Its
per-request path is profiled instead with `go test -cpuprofile` of
BenchmarkEmbeddings (go-gateway/internal/httpapi/bench_test.go): the real
API handler and middleware, the real gRPC client, an in-process fake core.

Writes docs/benchmarks/flame-core-single.svg, flame-core-batch32.svg,
flame-gateway.svg and profile.json (the share of samples under the frames
the pages discuss). Loopback only; every load bounded in requests and seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import flamegraph
from cpu_cost import SHAPES
from harness import REPO, corpus_load, machine, start_core
from loadgen import LoadGenerator

# Where the samples go: each sample is charged to the innermost of its frames
# that matches one of these patterns (flamegraph.self_shares), so a metric
# update inside the servicer counts as metrics, the model call inside a
# worker as the model. py-spy frames read "function (path/file.py:line)".
CORE_GROUPS = {
    "model (ONNX Runtime Session.run)": r"onnxruntime",
    "tokenizer": r"tokenizer\.py|tokenizers",
    "tracing (OpenTelemetry)": r"opentelemetry",
    "metrics (prometheus_client)": r"prometheus_client|exemplars\.py",
    "protobuf (parse, build, serialize)": r"decoding\.py|google/protobuf|_response \(",
    "numpy (padding, pooling, normalising)": r"numpy|runtime\.py|minilm\.py",
    "request log and timings": r"request_log\.py|logs\.py|server_timing",
    "admission": r"admission\.py",
    "service (validate, stage bookkeeping)": r"service\.py",
    "servicer (Embed)": r"servicer\.py|tracing\.py",
    "batch scheduler (queue, hand-off)": r"scheduler\.py|planner\.py|worker_health\.py",
    "grpc.aio": r"grpc/",
    "asyncio event loop": r"asyncio/",
    "threading (locks, conditions)": r"threading\.py|concurrent/",
}
GATEWAY_GROUPS = {
    # The fake core's side of each call: its handler and its gRPC server transport.
    "fake core (not the gateway)": r"fakecore|grpc\.\(\*Server\)|\(\*http2Server\)|serverStream",
    "JSON response encoding": r"appendJSON|encoding/json\.",
    "request decoding": r"decodeEmbeddingsRequest|readBody|jsonscan",
    "metrics": r"prometheus",
    "tracing": r"opentelemetry|otel",
    "gRPC client and HTTP/2": r"google\.golang\.org/grpc|golang\.org/x/net/http2",
    "protobuf": r"google\.golang\.org/protobuf",
    "test harness (httptest)": r"httptest|testing\.",
    "garbage collector and allocation": r"runtime\.(gc|mallocgc|scanobject|bgsweep|markroot)",
}


async def profile_core(
    args: argparse.Namespace, load: LoadGenerator, seconds: float
) -> dict[str, Any]:
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if py_spy is None:
        raise SystemExit(
            "py-spy is not installed: make bench-profile installs bench/requirements.txt"
        )
    core, ports = start_core(args.model_dir, args.log_dir, "profile")
    assert core.process is not None
    out: dict[str, Any] = {}
    try:
        for (shape, flags), name in zip(SHAPES.items(), ("single", "batch32"), strict=True):
            target = {"target": f"127.0.0.1:{ports.core_grpc}", **flags}
            await load.run(requests=2_000, seconds=2, **target)  # warm
            with tempfile.NamedTemporaryFile(suffix=".folded") as folded:
                spy = await asyncio.create_subprocess_exec(
                    py_spy, "record", "--pid", str(core.process.pid), "--rate", str(args.rate),
                    "--duration", str(round(seconds)), "--nonblocking", "--format", "raw",
                    "--output", folded.name, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                )  # fmt: skip
                result = await load.run(requests=100_000, seconds=seconds + 1, **target)
                _, err = await asyncio.wait_for(spy.communicate(), timeout=seconds + 60)
                if spy.returncode != 0:
                    raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')}")
                text = await asyncio.to_thread(Path(folded.name).read_text)
            keep = args.log_dir / "profile" / f"core-{name}.folded"  # for a closer look
            keep.parent.mkdir(parents=True, exist_ok=True)
            keep.write_text(text)
            stacks = flamegraph.write(
                args.out_dir / f"flame-core-{name}.svg", text,
                f"Tandem core, {shape} over gRPC (py-spy, {args.rate} Hz, idle threads left out)",
                f"{result.texts_per_s:.0f} texts/s while sampled; {machine()['date']}; `make bench-profile`",
            )  # fmt: skip
            out[shape] = {
                "samples": sum(c for _, c in stacks),
                "texts_per_s": round(result.texts_per_s, 1),
                "share": flamegraph.self_shares(stacks, CORE_GROUPS),
            }
    finally:
        core.stop()
    return out


def profile_gateway(args: argparse.Namespace) -> dict[str, Any]:
    go = shutil.which("go")
    if go is None:
        raise SystemExit("go is not on PATH")
    gateway_dir = REPO / "go-gateway"
    with tempfile.TemporaryDirectory() as tmp:
        binary, prof = Path(tmp) / "httpapi.test", Path(tmp) / "cpu.prof"
        bench = subprocess.run(
            [go, "test", "-run", "^$", "-bench", "^BenchmarkEmbeddings$", "-benchtime", args.go_benchtime,
             "-benchmem", "-o", str(binary), "-cpuprofile", str(prof), "./internal/httpapi/"],
            cwd=gateway_dir, check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        text = flamegraph.folded_from_pprof(go, binary, prof)
        # The same requests traced (spans batched to an exporter that drops them),
        # not profiled: what tracing at 100% adds to the gateway's own work.
        bench += subprocess.run(
            [str(binary), "-test.run", "^$", "-test.bench", "^BenchmarkEmbeddingsTraced$",
             "-test.benchtime", args.go_benchtime, "-test.benchmem"],
            cwd=gateway_dir / "internal" / "httpapi", check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
    results = [
        line.split() for line in bench.splitlines() if line.startswith("BenchmarkEmbeddings")
    ]
    stacks = flamegraph.write(
        args.out_dir / "flame-gateway.svg", text,
        "Tandem gateway: BenchmarkEmbeddings, 1 text then 32 texts per request, 32 callers (go test -cpuprofile)",
        "handler + middleware + gRPC client, and an in-process fake core (its frames: fakecore, grpc.(*Server)); "
        + machine()["date"],
    )  # fmt: skip
    benchmarks = {
        r[0]: {"ns_per_op": float(r[2]), "bytes_per_op": int(r[4]), "allocs_per_op": int(r[6])}
        for r in results
    }
    return {
        "benchmarks": benchmarks,
        "samples": sum(c for _, c in stacks),
        "share": flamegraph.self_shares(stacks, GATEWAY_GROUPS),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    load = corpus_load(args)
    seconds = 5.0 if args.quick else 15.0
    print("core ...", flush=True)
    core = await profile_core(args, load, seconds)
    print("gateway ...", flush=True)
    gateway = profile_gateway(args)
    return {"machine": machine(), "rate_hz": args.rate, "core": core, "gateway": gateway}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument(
        "--load-bin", type=Path, default=REPO / "go-gateway" / "bin" / "tandem-load"
    )
    parser.add_argument("--out-dir", type=Path, default=REPO / "docs" / "benchmarks")
    parser.add_argument("--log-dir", type=Path, default=REPO / ".cache" / "bench")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--go-benchtime", default="3s")
    parser.add_argument(
        "--quick", action="store_true", help="short runs, for checking the script itself"
    )
    args = parser.parse_args()
    data = asyncio.run(main_async(args))
    (args.out_dir / "profile.json").write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
