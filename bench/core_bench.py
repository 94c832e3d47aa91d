"""`make bench-core`: the core's ceiling, served throughput and latency, the naive
pattern side by side, memory against the worker-math formula, start-up time.

Everything runs on this machine in one run, against 127.0.0.1 only, with every
load loop bounded in requests and seconds. Results: docs/benchmarks/core.md
(and the raw numbers in docs/benchmarks/core.json).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from adaptive import adaptive, render_adaptive
from cpu_cost import (
    SHAPES,
    CpuRun,
    measure_raw,
    measure_served,
    padding_share,
    profile_summary,
)
from harness import (
    Budget,
    bench_main,
    machine,
    peak_rss_mib,
    probe_summary,
    row,
    start_core,
    startup_seconds,
    with_health_probe,
    worker_batches,
    write_corpus,
)
from loadgen import LoadGenerator
from tandem.capacity import CapacityInputs, plan_capacity
from tandem.model.manifest import GraphCapacity, ModelManifest
from tandem.model.runtime import OnnxEncoder
from tandem.model.tokenizer import TextTokenizer
from tandem.settings import Settings
from tandem_devkit.stack import ManagedProcess, free_port

REPO = Path(__file__).resolve().parent.parent

CORPUS_SIZE = 1024
MIB = 1 << 20


FULL = {
    "sat": Budget(20, 20_000),
    "c1": Budget(20, 400),
    "open": Budget(15, 10_000),
    "mem": Budget(10, 4_000),
}
QUICK = {
    "sat": Budget(5, 2_000),
    "c1": Budget(5, 100),
    "open": Budget(4, 2_000),
    "mem": Budget(4, 1_000),
}


# --- 1. Raw model limit ----------------------------------------------------------


def sorted_batches(texts: Sequence[str], tokenizer: TextTokenizer, size: int) -> list[list[str]]:
    """The corpus sorted by token count, cut into batches: the best case for padding."""
    ordered = sorted(texts, key=lambda text: tokenizer.encode([text])[0].token_count)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def _run_batches(
    tokenizer: TextTokenizer, encoder: OnnxEncoder, batches: Sequence[list[str]]
) -> None:
    for batch in batches:
        encoder.encode([t.ids for t in tokenizer.encode(batch)])


def raw_one_session(
    tokenizer: TextTokenizer, graph: Path, threads: int, batches: list[list[str]], passes: int
) -> float:
    """Tokenizer + one session in a tight loop: texts per second."""
    encoder = OnnxEncoder(graph, threads)
    _run_batches(tokenizer, encoder, batches[:2])
    started = time.perf_counter()
    for _ in range(passes):
        _run_batches(tokenizer, encoder, batches)
    return sum(len(b) for b in batches) * passes / (time.perf_counter() - started)


def raw_threads(
    tokenizer: TextTokenizer, graph: Path, workers: int, batches: list[list[str]], passes: int
) -> float:
    """``workers`` sessions with 1 intra-op thread each, driven from as many Python threads."""
    encoders = [OnnxEncoder(graph, 1) for _ in range(workers)]
    for encoder in encoders:
        _run_batches(tokenizer, encoder, batches[:2])
    work = [b for _ in range(passes) for b in batches]
    texts = sum(len(b) for b in work)
    started = time.perf_counter()
    _drain_threaded(tokenizer, encoders, work)
    return texts / (time.perf_counter() - started)


def _drain_threaded(
    tokenizer: TextTokenizer, encoders: Sequence[OnnxEncoder], work: list[list[str]]
) -> None:
    """Run every batch of ``work``, one Python thread per encoder taking the next."""
    lock = threading.Lock()

    def run(encoder: OnnxEncoder) -> None:
        while True:
            with lock:
                if not work:
                    return
                batch = work.pop()
            _run_batches(tokenizer, encoder, [batch])

    pool = [threading.Thread(target=run, args=(e,)) for e in encoders]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def raw_cpu(
    tokenizer: TextTokenizer, graph: Path, workers: int, batches: list[list[str]], passes: int
) -> CpuRun:
    """The raw loop of ``raw_threads`` (the served layout: ``workers`` x 1 thread in one
    process), measured by this process's CPU: sessions are built and warmed first."""
    encoders = [OnnxEncoder(graph, 1) for _ in range(workers)]
    for encoder in encoders:
        _run_batches(tokenizer, encoder, batches[:2])
    work = [b for _ in range(passes) for b in batches]

    def run() -> int:
        _drain_threaded(tokenizer, encoders, list(work))
        return sum(len(b) for b in work)

    return measure_raw(run)


def _raw_process(
    model_dir: str, batches: list[list[str]], passes: int, start: Any, out: Any
) -> None:
    manifest = ModelManifest.read(Path(model_dir))
    tokenizer = TextTokenizer(Path(model_dir) / manifest.tokenizer, manifest.max_tokens)
    encoder = OnnxEncoder(manifest.graph_path(Path(model_dir), "fp32"), 1)
    _run_batches(tokenizer, encoder, batches[:2])
    start.wait()
    began = time.perf_counter()
    for _ in range(passes):
        _run_batches(tokenizer, encoder, batches)
    out.put((sum(len(b) for b in batches) * passes, began, time.perf_counter()))


def raw_processes(model_dir: Path, workers: int, batches: list[list[str]], passes: int) -> float:
    """``workers`` processes with 1 intra-op thread each: the multi-process alternative's ceiling."""
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    share = [batches[i::workers] for i in range(workers)]
    procs = [
        ctx.Process(target=_raw_process, args=(str(model_dir), s, passes, start, out))
        for s in share
    ]
    for p in procs:
        p.start()
    time.sleep(5)  # let every process import and load its session
    start.set()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    return sum(r[0] for r in results) / (max(r[2] for r in results) - min(r[1] for r in results))


def raw_single_latency_ms(
    tokenizer: TextTokenizer, graph: Path, threads: int, texts: Sequence[str], *, spin: bool = False
) -> float:
    """p50 of one text through tokenizer + model: the model's own latency for a lone request.

    ``spin``: the intra-op threads busy-wait between parallel steps, as the
    core's wide session does.
    """
    encoder = OnnxEncoder(graph, threads, spin=spin)
    _run_batches(tokenizer, encoder, [[texts[0]]])
    samples = []
    for text in texts[:300]:
        started = time.perf_counter()
        _run_batches(tokenizer, encoder, [[text]])
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e3


# --- Served ------------------------------------------------------------------------


async def served(
    model_dir: Path, load: LoadGenerator, log_dir: Path, budgets: dict[str, Budget]
) -> dict[str, Any]:
    core, ports = start_core(model_dir, log_dir, "served")
    out: dict[str, Any] = {"startup_s": startup_seconds(core)}
    target = f"127.0.0.1:{ports.core_grpc}"
    http_url = f"http://127.0.0.1:{ports.core_http}"
    try:
        c1 = await load.run(target=target, requests=budgets["c1"].requests, seconds=budgets["c1"].seconds,
                            concurrency=1, warmup=20)  # fmt: skip
        before = worker_batches(ports)
        sat1, probes = await with_health_probe(
            load.run(target=target, requests=budgets["sat"].requests, seconds=budgets["sat"].seconds,
                     concurrency=32, warmup=8),
            f"{http_url}/healthz",
        )  # fmt: skip
        after = worker_batches(ports)
        sat32 = await load.run(target=target, requests=budgets["sat"].requests // 32,
                               seconds=budgets["sat"].seconds, texts=32, concurrency=4, warmup=2)  # fmt: skip
        rate = sat1.requests_per_s
        loads = {}
        for share in (0.5, 0.8):
            loads[share] = await load.run(target=target, requests=budgets["open"].requests,
                                          seconds=budgets["open"].seconds, rate=round(rate * share, 1),
                                          concurrency=256)  # fmt: skip
        out["rows"] = [
            row("gRPC, 1 text, concurrency 1", c1),
            row("gRPC, 1 text, concurrency 32 (saturation)", sat1),
            row("gRPC, 32 texts, concurrency 4 (saturation)", sat32),
            row(f"gRPC, 1 text, open loop at 50% ({rate * 0.5:.0f} req/s)", loads[0.5]),
            row(f"gRPC, 1 text, open loop at 80% ({rate * 0.8:.0f} req/s)", loads[0.8]),
        ]
        out["healthz_under_saturation"] = probe_summary(probes)
        out["worker_batches"] = {w: after.get(w, 0) - before.get(w, 0) for w in after}
        out["peak_rss_mib"] = round(peak_rss_mib(core), 1)
    finally:
        out["exit_code"] = core.stop()
    return out


async def http_side_by_side(
    model_dir: Path, load: LoadGenerator, log_dir: Path, budget: Budget
) -> dict[str, Any]:
    """Ours vs the naive pattern, same model, same HTTP client, same load."""
    results: dict[str, Any] = {}
    core, ports = start_core(model_dir, log_dir, "http-ours")
    try:
        url = f"http://127.0.0.1:{ports.core_http}"
        r, probes = await with_health_probe(
            load.run(target=url, requests=budget.requests, seconds=budget.seconds, mode="http",
                     path="/v1/embed", openai="false", concurrency=32, warmup=8),
            f"{url}/healthz",
        )  # fmt: skip
        results["ours"] = {"load": row("Tandem core, HTTP", r), "healthz": probe_summary(probes)}
    finally:
        core.stop()

    port = free_port()
    naive = ManagedProcess(
        name="naive",
        argv=[sys.executable, "-m", "uvicorn", "naive_app:app", "--host", "127.0.0.1", "--port", str(port),
              "--workers", "1", "--log-level", "warning", "--app-dir", str(REPO / "bench")],
        env={"TANDEM_NAIVE_MODEL_DIR": str(model_dir)},
        ready_url=f"http://127.0.0.1:{port}/healthz",
        log_path=log_dir / "naive" / "naive.log",
    ).start()  # fmt: skip
    try:
        naive.wait_ready(120)
        url = f"http://127.0.0.1:{port}"
        r, probes = await with_health_probe(
            load.run(target=url, requests=budget.requests, seconds=budget.seconds, mode="http",
                     path="/v1/embed", openai="false", concurrency=32, warmup=8),
            f"{url}/healthz",
        )  # fmt: skip
        results["naive"] = {
            "load": row("naive: async def calls the model", r),
            "healthz": probe_summary(probes),
        }
    finally:
        naive.stop()
    return results


async def memory_by_workers(
    model_dir: Path,
    load: LoadGenerator,
    log_dir: Path,
    budget: Budget,
    model_capacity: GraphCapacity,
) -> list[dict[str, Any]]:
    """Peak RSS at saturating load against the formula.

    The corpus mixes full-length texts (256 tokens: the largest attention
    matrices) with ordinary ones, so every worker sees its worst batch.
    """
    corpus = load.corpus_file.read_text().splitlines()
    long_texts = [" ".join(corpus[i : i + 8]) for i in range(0, 512, 8)]  # > 256 tokens: truncated
    mixed = load.corpus_file.with_name("corpus-mixed.txt")
    mixed.write_text(
        "\n".join(
            t for pair in zip(long_texts, corpus[: len(long_texts)], strict=True) for t in pair
        )
        + "\n"
    )
    load = LoadGenerator(load.binary, mixed)
    # The admission and message bounds are set to what this load can send
    # (32 texts per request, no text longer than the corpus's longest), so the
    # plan's in-flight and transit terms describe this load, and the row tests
    # the base, model and per-worker terms; memory_worst_case tests the rest.
    text_bytes = max(len(t.encode()) for t in mixed.read_text().splitlines())
    rows = []
    for workers in (1, 2, 4):
        callers = 2 * workers + 2
        limits = {"max_texts_per_request": 32, "max_text_bytes": text_bytes,
                  "max_request_bytes": send_limit(32, text_bytes), "max_inflight_requests": callers}  # fmt: skip
        limits["max_inflight_bytes"] = callers * limits["max_request_bytes"]
        # 4 single-thread workers on 2 CPUs oversubscribe on purpose here: this
        # run measures memory, not speed. TANDEM_CORE_CPUS lets it start.
        env = {"TANDEM_CORE_WORKERS": str(workers), "TANDEM_CORE_THREADS_PER_WORKER": "1",
               "TANDEM_CORE_CPUS": str(workers),
               **{f"TANDEM_CORE_{k.upper()}": str(v) for k, v in limits.items()}}  # fmt: skip
        core, ports = start_core(model_dir, log_dir, f"mem-{workers}", **env)
        try:
            await load.run(target=f"127.0.0.1:{ports.core_grpc}", requests=budget.requests,
                           seconds=budget.seconds, texts=32, concurrency=callers)  # fmt: skip
            measured = peak_rss_mib(core)
            startup = startup_seconds(core)
        finally:
            core.stop()
        planned = {k: v for k, v in limits.items() if k != "max_text_bytes"}  # not a plan input
        plan = _plan(workers, model_capacity, transit_calls=callers, **planned)
        rows.append({
            "workers": workers,
            "label": f"{workers} x 1",
            "peak_rss_mib": round(measured, 1),
            "formula_mib": plan.memory_request_mib,
            "limit_mib": plan.memory_limit_mib,
            "error_pct": round((plan.memory_request_mib - measured) / measured * 100, 1),
            "startup_s": startup,
        })  # fmt: skip
    rows.append(await memory_worst_case(model_dir, load, log_dir, budget, model_capacity))
    return rows


def _plan(workers: int, model_capacity: GraphCapacity, **overrides: int) -> Any:
    """The worker math for ``workers`` single-threaded workers and the core's default limits.

    The calls in transit are the load's callers: ``max_inflight_requests`` at
    once (the CLI's default), unless ``transit_calls`` says otherwise.
    """
    defaults = {name: field.default for name, field in Settings.model_fields.items()}
    limits = {name: int(defaults[name]) for name in (
        "max_batch_tokens", "max_inflight_requests", "max_inflight_bytes",
        "max_texts_per_request", "max_request_bytes")}  # fmt: skip
    limits.update(overrides)
    limits.setdefault("transit_calls", limits["max_inflight_requests"])
    return plan_capacity(CapacityInputs(
        cpus=workers, workers=workers, threads_per_worker=1,
        weights_mib=model_capacity.weights_bytes / MIB,
        activation_bytes_per_token=model_capacity.activation_bytes_per_token, **limits,
    ))  # fmt: skip


def send_limit(texts: int, text_bytes: int, body_bytes: int = 4 << 20) -> int:
    """The gateway's largest message (go-gateway/internal/upstream/msgsize.go, _limits.tpl)."""
    varint = 1 if text_bytes < 1 << 7 else 2 if text_bytes < 1 << 14 else 3
    return min(texts * text_bytes, body_bytes) + texts * (1 + varint) + 1024


async def memory_worst_case(
    model_dir: Path,
    load: LoadGenerator,
    log_dir: Path,
    budget: Budget,
    model_capacity: GraphCapacity,
) -> dict[str, Any]:
    """The largest requests the limits allow, as many at once as admission lets in.

    256 texts of 8190 bytes per request (max_texts_per_request x
    max_text_bytes), sent max_inflight_requests at a time by 2 workers: what
    the plan's in-flight and transit terms are for. The core is configured as
    the chart configures it: max_request_bytes = the gateway's send limit and
    max_inflight_bytes = two of those (two largest requests admitted at once);
    the callers are the calls in transit. Requests beyond the admission bound
    are refused at once (counted as errors by the load generator, expected here).
    """
    words = load.corpus_file.read_text().split()
    line = " ".join(words).encode("ascii", "ignore").decode()  # 1 byte per character
    while len(line) < 8190:
        line = f"{line} {line}"
    worst = load.corpus_file.with_name("corpus-8k.txt")
    worst.write_text("".join(line[i : i + 8190].strip() + "\n" for i in range(0, 64 * 100, 100)))
    defaults = {name: field.default for name, field in Settings.model_fields.items()}
    at_once = int(defaults["max_inflight_requests"])
    workers = 2
    texts = int(defaults["max_texts_per_request"])
    limits = {"max_request_bytes": send_limit(texts, int(defaults["max_text_bytes"]))}
    limits["max_inflight_bytes"] = 2 * limits["max_request_bytes"]
    env = {"TANDEM_CORE_WORKERS": str(workers), "TANDEM_CORE_THREADS_PER_WORKER": "1",
           "TANDEM_CORE_CPUS": str(workers),
           **{f"TANDEM_CORE_{k.upper()}": str(v) for k, v in limits.items()}}  # fmt: skip
    core, ports = start_core(model_dir, log_dir, "mem-worst", **env)
    try:
        await LoadGenerator(load.binary, worst).run(
            target=f"127.0.0.1:{ports.core_grpc}", requests=min(budget.requests, 4 * at_once),
            seconds=budget.seconds, texts=texts, concurrency=at_once,
        )  # fmt: skip
        measured = peak_rss_mib(core)
    finally:
        core.stop()
    plan = _plan(workers, model_capacity, transit_calls=at_once, **limits)
    return {
        "workers": workers,
        "label": f"{workers} x 1, 256 x 8 KB texts, {at_once} requests at once (admission bound)",
        "peak_rss_mib": round(measured, 1),
        "formula_mib": plan.memory_request_mib,
        "limit_mib": plan.memory_limit_mib,
        "error_pct": round((plan.memory_request_mib - measured) / measured * 100, 1),
        "startup_s": None,  # not measured: this core starts like the 2 x 1 row
    }


async def layouts(
    model_dir: Path, load: LoadGenerator, log_dir: Path, budgets: dict[str, Budget]
) -> list[dict[str, Any]]:
    """Same load on each way to use the CPUs, fp32 and int8."""
    rows = []
    cpus = os.cpu_count() or 1
    for precision, workers, threads in (
        ("fp32", 1, cpus),
        ("fp32", cpus, 1),
        ("int8", 1, cpus),
        ("int8", cpus, 1),
    ):
        env = {"TANDEM_CORE_WORKERS": str(workers), "TANDEM_CORE_THREADS_PER_WORKER": str(threads),
               "TANDEM_CORE_PRECISION": precision}  # fmt: skip
        core, ports = start_core(
            model_dir, log_dir, f"layout-{precision}-{workers}x{threads}", **env
        )
        target = f"127.0.0.1:{ports.core_grpc}"
        try:
            c1 = await load.run(target=target, requests=budgets["c1"].requests // 2,
                                seconds=budgets["c1"].seconds, concurrency=1, warmup=10)  # fmt: skip
            sat = await load.run(target=target, requests=budgets["sat"].requests // 2,
                                 seconds=budgets["sat"].seconds / 2, concurrency=32, warmup=8)  # fmt: skip
            sat32 = await load.run(target=target, requests=budgets["sat"].requests // 64,
                                   seconds=budgets["sat"].seconds / 2, texts=32, concurrency=4, warmup=2)  # fmt: skip
        finally:
            core.stop()
        rows.append({"precision": precision, "workers": workers, "threads_per_worker": threads,
                     "c1_p50_ms": round(c1.latency_ms("p50"), 2), "sat_texts_per_s": round(sat.texts_per_s, 1),
                     "sat_p99_ms": round(sat.latency_ms("p99"), 1),
                     "sat32_texts_per_s": round(sat32.texts_per_s, 1)})  # fmt: skip
    return rows


def int8_quality(model_dir: Path, reference_file: Path) -> dict[str, float]:
    reference = json.loads(reference_file.read_text())
    manifest = ModelManifest.read(model_dir)
    tokenizer = TextTokenizer(model_dir / manifest.tokenizer, manifest.max_tokens)
    encoder = OnnxEncoder(manifest.graph_path(model_dir, "int8"), 1)
    tokenized = tokenizer.encode([i["text"] for i in reference["items"]])
    got = encoder.encode([t.ids for t in tokenized])
    got /= np.linalg.norm(got, axis=1, keepdims=True)
    want = np.array([i["embedding"] for i in reference["items"]])
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    cosines = (got * want).sum(axis=1)
    return {
        "min_cosine": round(float(cosines.min()), 4),
        "mean_cosine": round(float(cosines.mean()), 4),
    }


# --- Report ---------------------------------------------------------------------------


def latency_takeaway(data: dict[str, Any]) -> str:
    """The latency chart in one sentence, from the numbers it draws."""
    ours, naive = data["http"]["ours"]["load"], data["http"]["naive"]["load"]
    single = [r for r in data["served"]["rows"] if r["requests_per_s"] == r["texts_per_s"]]
    lightest = min(single, key=lambda r: r["texts_per_s"])
    open_loops = [r for r in single if "open loop" in r["label"]]
    busiest = max(open_loops, key=lambda r: r["texts_per_s"])
    return (
        f"Saturated over HTTP, Tandem serves {ours['texts_per_s']} texts/s at p50 {ours['p50_ms']} ms and "
        f"the naive pattern {naive['texts_per_s']} texts/s at p50 {naive['p50_ms']} ms. Over gRPC, p99 "
        f"grows from {lightest['p99_ms']} ms at {_short(lightest['label'])} to {busiest['p99_ms']} ms in the "
        f"{_short(busiest['label'])} ({busiest['texts_per_s']} texts/s); at saturation the queue sets it."
    )


def _short(label: str) -> str:
    """'gRPC, 1 text, open loop at 80% (165 req/s)' -> 'open loop at 80%'."""
    return label.split(", ", 2)[-1].split(" (", maxsplit=1)[0]


def memory_takeaway(rows: list[dict[str, Any]]) -> str:
    """The memory chart in one sentence: does the formula cover every measured peak?"""
    errors = [r["error_pct"] for r in rows]
    if min(errors) >= 0:
        return (
            f"The formula is above every measured peak, by {min(errors):g} to {max(errors):g} %, and the "
            "limit above that: a pod sized by it is not killed for memory under the loads measured here."
        )
    under = [r["label"] for r in rows if r["error_pct"] < 0]
    return f"The formula is below the measured peak for {', '.join(under)}: the plan needs a larger term there."


def render(data: dict[str, Any]) -> str:
    m, raw, served_data, side = data["machine"], data["raw"], data["served"], data["http"]
    ceiling = raw["ceiling_texts_per_s"]
    c1, sat1, sat32 = served_data["rows"][0], served_data["rows"][1], served_data["rows"][2]
    health = served_data["healthz_under_saturation"]
    cpus = m["cpus"]
    lines = [
        "# Core benchmark",
        "",
        f"Measured {m['date']} on {cpus} CPUs ({m['cpu_model']}), Python {m['python']}, with",
        "",
        f"    {data['command']}",
        "",
        "One run, one machine, side by side. Load comes from `tandem-load` (Go, one gRPC connection),",
        "which runs on the same CPUs as the server; its CPU share is shown per row. Corpus:",
        f"{data['corpus']['texts']} generated sentences of 16-64 tokens (mean {data['corpus']['mean_tokens']}),",
        "bench/corpus.py. Every load loop is bounded in requests and seconds and targets 127.0.0.1.",
        "",
        "## 1. Raw model limit (tokenizer + ONNX Runtime in a tight loop, no server)",
        "",
        "| layout | texts/s |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in raw["layouts"].items()],
        "",
        f"Ceiling: **{ceiling} texts/s**. One text alone through tokenizer + model, p50: "
        f"{raw['single_latency_ms']['1 thread']} ms on 1 thread, {raw['single_latency_ms'][f'{cpus} threads']} ms "
        f"on {cpus} threads.",
        "",
        f"## 2. Served over gRPC (default configuration: {served_data['layout']})",
        "",
        "| load | texts/s | p50 ms | p99 ms | errors | client CPU |",
        "|---|---|---|---|---|---|",
        *[
            f"| {r['label']} | {r['texts_per_s']} | {r['p50_ms']} | {r['p99_ms']} | "
            f"{sum(r['errors'].values())} | {r['client_cpu_share']} |"
            for r in served_data["rows"]
        ],
        "",
        f"- Served / raw ceiling: 1-text requests **{sat1['texts_per_s'] / ceiling:.2f}**, "
        f"32-text requests **{sat32['texts_per_s'] / ceiling:.2f}** (target >= 0.90).",
        f"- Concurrency 1: p50 {c1['p50_ms']} ms against the model's own {raw['single_latency_ms']['1 thread']} ms "
        f"for the same layout (+{c1['p50_ms'] - raw['single_latency_ms']['1 thread']:.2f} ms; target about 1.5 ms).",
        f"- `/healthz` while saturated: p50 {health['p50_ms']} ms, p99 {health['p99_ms']} ms, "
        f"max {health['max_ms']} ms, {health['failed']} failed of {health['probes']} (target p99 <= 10 ms).",
        f"- Batches per worker while one client connection saturated the core: {served_data['worker_batches']}.",
        f"- Peak RSS {served_data['peak_rss_mib']} MiB; start to ready {served_data['startup_s']} s.",
        "",
        "## 3. The naive pattern, side by side (HTTP, 1 text per request, concurrency 32)",
        "",
        "| server | texts/s | p50 ms | p99 ms | /healthz p50 ms | /healthz p99 ms | /healthz max ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in ("ours", "naive"):
        r, hz = side[key]["load"], side[key]["healthz"]
        lines.append(f"| {r['label']} | {r['texts_per_s']} | {r['p50_ms']} | {r['p99_ms']} | "
                     f"{hz['p50_ms']} | {hz['p99_ms']} | {hz['max_ms']} |")  # fmt: skip
    ratio = side["ours"]["load"]["texts_per_s"] / max(side["naive"]["load"]["texts_per_s"], 1e-9)
    lines += [
        "",
        f"Ours / naive throughput: **{ratio:.2f}x** (target >= 1.3x).",
        "",
        "![Latency against throughput: Tandem over gRPC from concurrency 1 to saturation, and Tandem "
        "and the naive pattern over HTTP at saturation](core-latency.svg)",
        "",
        latency_takeaway(data),
        "",
        "## 4. Memory by worker count against the formula",
        "",
        "32-text requests alternating full-length (256-token) and ordinary texts, at saturation, with",
        "the core's admission and message bounds set to what that load sends; then the largest requests",
        "the default limits allow, as many at once as admission lets in (the in-flight and transit",
        "terms). Peak RSS is the kernel's high-water mark (VmHWM). Formula: `tandem worker-math`",
        "(python-inference/src/tandem/capacity.py).",
        *(
            [
                "",
                f"This section was measured again on {data['memory_measured']['date']}, on its own, with",
                f"`{data['memory_measured']['command']}`; the other sections are from the run above.",
            ]
            if "memory_measured" in data
            else []
        ),
        "",
        "| workers x threads | peak RSS MiB | formula MiB | formula error | limit MiB | start to ready s |",
        "|---|---|---|---|---|---|",
        *[
            f"| {r.get('label', str(r['workers']) + ' x 1')} | {r['peak_rss_mib']} | {r['formula_mib']} | {r['error_pct']:+}% | "
            f"{r['limit_mib']} | {'—' if r['startup_s'] is None else r['startup_s']} |"
            for r in data["memory"]
        ],
        "",
        "![Peak memory against the worker-math formula: measured peak RSS beside the formula's "
        "request and limit for each configuration](core-memory.svg)",
        "",
        memory_takeaway(data["memory"]),
        "",
        "## 5. Layouts and precision (same loads, gRPC)",
        "",
        "| precision | workers x threads | c=1 p50 ms | 1 text, c=32: texts/s | p99 ms | 32 texts, c=4: texts/s |",
        "|---|---|---|---|---|---|",
        *[
            f"| {r['precision']} | {r['workers']} x {r['threads_per_worker']} | {r['c1_p50_ms']} | "
            f"{r['sat_texts_per_s']} | {r['sat_p99_ms']} | {r['sat32_texts_per_s']} |"
            for r in data["layouts"]
        ],
        "",
        f"int8 quality against the reference vectors: min cosine {data['int8_quality']['min_cosine']}, "
        f"mean {data['int8_quality']['mean_cosine']} (fp32: >= 0.9999 on every item). fp32 stays the default.",
        "[int8.md](int8.md) measures every int8 variant tried, the one built now included, for quality "
        "as search users feel it (neighbour overlap, rank correlation) and speed side by side; the "
        "rows above are from the graph built when this section last ran.",
        "",
    ]
    if "cpu" in data:
        lines += render_cpu(data)
    if "adaptive" in data:
        lines += ["## Lone requests and health under load: thread layouts side by side", "",
                  *render_adaptive(data["adaptive"]), ""]  # fmt: skip
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    budgets = QUICK if args.quick else FULL
    model_dir: Path = args.model_dir
    manifest = ModelManifest.read(model_dir)
    tokenizer = TextTokenizer(model_dir / manifest.tokenizer, manifest.max_tokens)
    corpus_file = args.log_dir / "corpus.txt"
    corpus = write_corpus(tokenizer, corpus_file, CORPUS_SIZE)
    load = LoadGenerator(args.load_bin, corpus_file)
    if args.only is not None:
        return await _only(args, budgets, load, manifest.capacity_of("fp32"))
    graph = manifest.graph_path(model_dir, "fp32")
    cpus = os.cpu_count() or 1
    passes = 1 if args.quick else 3
    by32 = sorted_batches(corpus, tokenizer, 32)
    by8 = sorted_batches(corpus, tokenizer, 8)
    unsorted32 = [corpus[i : i + 32] for i in range(0, len(corpus), 32)]
    print("raw model limit ...", flush=True)
    layouts_raw = {
        f"1 session x {cpus} threads, sorted batches of 32": raw_one_session(tokenizer, graph, cpus, by32, passes),
        f"1 session x {cpus} threads, sorted batches of 8": raw_one_session(tokenizer, graph, cpus, by8, passes),
        f"{cpus} sessions x 1 thread in one process (threads), sorted batches of 8": raw_threads(tokenizer, graph, cpus, by8, passes),
        f"{cpus} sessions x 1 thread in one process (threads), sorted batches of 32": raw_threads(tokenizer, graph, cpus, by32, passes),
        f"{cpus} processes x 1 thread, sorted batches of 8": raw_processes(model_dir, cpus, by8, passes),
        f"{cpus} sessions x 1 thread (threads), unsorted batches of 32": raw_threads(tokenizer, graph, cpus, unsorted32, passes),
    }  # fmt: skip
    raw = {
        "layouts": {k: round(v, 1) for k, v in layouts_raw.items()},
        "ceiling_texts_per_s": round(max(layouts_raw.values()), 1),
        "single_latency_ms": {
            "1 thread": round(raw_single_latency_ms(tokenizer, graph, 1, corpus), 2),
            f"{cpus} threads": round(raw_single_latency_ms(tokenizer, graph, cpus, corpus), 2),
        },
    }
    print("served ...", flush=True)
    served_data = await served(model_dir, load, args.log_dir, budgets)
    served_data["layout"] = f"{cpus} workers x 1 thread"
    print("naive side by side ...", flush=True)
    http_data = await http_side_by_side(model_dir, load, args.log_dir, budgets["sat"])
    print("memory ...", flush=True)
    memory = await memory_by_workers(
        model_dir, load, args.log_dir, budgets["mem"], manifest.capacity_of("fp32")
    )
    print("layouts ...", flush=True)
    layout_rows = await layouts(model_dir, load, args.log_dir, budgets)
    print("cpu ...", flush=True)
    cpu = await cpu_per_text(args, budgets, load)
    return {
        "command": args.command,
        "machine": machine(),
        "corpus": {
            "texts": len(corpus),
            "mean_tokens": round(
                statistics.mean(t.token_count for t in tokenizer.encode(corpus)), 1
            ),
        },
        "raw": raw,
        "served": served_data,
        "http": http_data,
        "memory": memory,
        "layouts": layout_rows,
        "int8_quality": int8_quality(model_dir, args.reference),
        "cpu": cpu,
    }


async def cpu_per_text(
    args: argparse.Namespace, budgets: dict[str, Budget], load: LoadGenerator
) -> dict[str, Any]:
    """The core's CPU-seconds per 1,000 texts (its /proc counters alone) against the raw
    loop's, for both request shapes (cpu_cost.py): a figure the load generator's
    place and the machine's other work do not move."""
    manifest = ModelManifest.read(args.model_dir)
    tokenizer = TextTokenizer(args.model_dir / manifest.tokenizer, manifest.max_tokens)
    graph = manifest.graph_path(args.model_dir, "fp32")
    corpus = load.corpus_file.read_text().splitlines()
    cpus = os.cpu_count() or 1
    passes = 1 if args.quick else 3
    by_size = {size: sorted_batches(corpus, tokenizer, size) for size in (8, 32)}
    raw = {
        f"{cpus} sessions x 1 thread (threads), sorted batches of {size}": raw_cpu(
            tokenizer, graph, cpus, batches, passes
        )
        for size, batches in by_size.items()
    }
    raw_padding = {
        label: padding_share([[t.token_count for t in tokenizer.encode(b)] for b in batches])
        for label, batches in zip(raw, by_size.values(), strict=True)
    }
    best_cpu = min(r.per_1000_texts("raw loop") for r in raw.values())
    best_rate = max(r.texts_per_s for r in raw.values())
    core, ports = start_core(args.model_dir, args.log_dir, "cpu")
    served_rows = {}
    try:
        for shape, flags in SHAPES.items():
            run = await measure_served(load, {"core": core}, budgets["sat"],
                                       core_metrics_url=f"http://127.0.0.1:{ports.core_metrics}/metrics",
                                       target=f"127.0.0.1:{ports.core_grpc}", **flags)  # fmt: skip
            served_rows[shape] = {
                "texts_per_s": round(run.texts_per_s, 1),
                "served_over_raw": round(run.texts_per_s / best_rate, 3),
                "core_cpu_s_per_1000_texts": round(run.per_1000_texts("core"), 2),
                "cpu_over_raw": round(run.per_1000_texts("core") / best_cpu, 3),
                "core_cpu_ms_per_request": round(run.ms_per_request("core"), 3),
                "core_busy_cpus": round(run.busy("core"), 2),
                "client_cpu_share": round(run.client_cpu_s / max(run.wall_s, 1e-9), 3),
                "texts": run.texts,
                "errors": run.errors,
                **(run.batches or {}),
            }
    finally:
        core.stop()
    raw_rows = {
        label: {"texts_per_s": round(r.texts_per_s, 1),
                "cpu_s_per_1000_texts": round(r.per_1000_texts("raw loop"), 2),
                "padding_share": raw_padding[label],
                "busy_cpus": round(r.busy("raw loop"), 2)}
        for label, r in raw.items()
    }  # fmt: skip
    return {
        "raw": raw_rows,
        "raw_best_cpu_s_per_1000_texts": round(best_cpu, 2),
        "raw_best_texts_per_s": round(best_rate, 1),
        "served": served_rows,
    }


def render_cpu(data: dict[str, Any]) -> list[str]:
    """Section 6: CPU per text, core alone against the raw loop."""
    cpu = data["cpu"]
    measured = cpu.get("measured")
    lines = [
        "## 6. CPU per text served (the core's own counters) against the raw loop",
        "",
        "CPU-seconds the core process spent (user + system, /proc/<pid>/stat), per 1,000 texts",
        "served, against the raw loop's (tokenizer + ONNX Runtime, the served layout of",
        "single-thread sessions on Python threads, sorted batches; this process's own counters).",
        "Unlike throughput, it does not depend on where the load generator runs or on what else",
        "shares the CPUs (bench/cpu_cost.py). Closed loops over gRPC, after a short warm run.",
        '"CPUs busy" is the CPU time over the wall time: below the raw loop\'s, the core was short of',
        "CPU (the load generator, other work on the machine), which lowers served / raw here but not",
        "the CPU per text; §2's served / raw is the throughput target's figure.",
    ]
    if measured:
        lines += [
            "",
            f"Measured {measured['date']} with `{measured['command']}`, on a shared 2-CPU machine "
            f"(1-minute load average {measured['load_average']} as it started).",
        ]
    lines += [
        "",
        "| raw loop | texts/s | CPU-seconds per 1,000 texts | padding share of tokens computed "
        "| CPUs busy |",
        "|---|---|---|---|---|",
        *[
            f"| {k} | {v['texts_per_s']} | {v['cpu_s_per_1000_texts']} | {v.get('padding_share', '—')} "
            f"| {v.get('busy_cpus', '—')} |"
            for k, v in cpu["raw"].items()
        ],
        "",
        "| served (gRPC) | texts/s | served / raw | core CPU-s per 1,000 texts | core CPU / raw "
        "| core CPU ms per request | mean batch (texts) | padding share | CPUs busy (core) | client CPU |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *[
            f"| {shape} | {r['texts_per_s']} | {r['served_over_raw']} | {r['core_cpu_s_per_1000_texts']} "
            f"| **{r['cpu_over_raw']}** | {r['core_cpu_ms_per_request']} | {r.get('mean_batch_texts', '—')} "
            f"| {r.get('padding_share', '—')} | {r.get('core_busy_cpus', '—')} | {r['client_cpu_share']} |"
            for shape, r in cpu["served"].items()
        ],
        "",
        f"Targets: core CPU / raw <= 1.10 and served / raw >= 0.90 for both shapes (raw: the lowest CPU, "
        f"{cpu['raw_best_cpu_s_per_1000_texts']} CPU-seconds per 1,000 texts, and the highest rate, "
        f"{cpu['raw_best_texts_per_s']} texts/s, of the raw loops above). Flame graphs of the core under "
        "each shape: [1 text, c=32](flame-core-single.svg), [32 texts, c=4](flame-core-batch32.svg) "
        "(`make bench-profile`).",
        "",
    ]
    if "profile" in cpu:
        lines += [
            "Where the core's samples went (py-spy, each sample charged to the innermost of its frames "
            "that a group names; bench/profiling.py):",
            "",
            *profile_summary(cpu["profile"]["core"]),
            "",
        ]
    return lines


# Sections that can be measured again on their own (`--only NAME`): memory
# depends on the configuration and the load, not on how busy the CPUs are, so
# it can be refreshed without re-running the throughput sections.
async def _only(
    args: argparse.Namespace,
    budgets: dict[str, Budget],
    load: LoadGenerator,
    model_capacity: GraphCapacity,
) -> dict[str, Any]:
    if args.only not in {"memory", "cpu", "adaptive"}:
        raise SystemExit(
            f"--only {args.only}: only 'memory', 'cpu' or 'adaptive' can be measured on its own"
        )
    previous = args.out.with_suffix(".json")
    if not previous.exists():
        raise SystemExit(f"--only needs the results of a full run in {previous}")
    data: dict[str, Any] = json.loads(previous.read_text())
    if args.only == "adaptive":
        data["adaptive"] = await adaptive_section(args, load)
        return data
    if args.only == "cpu":
        print("cpu ...", flush=True)
        data["cpu"] = await cpu_per_text(args, budgets, load)
        profile = args.out.with_name("profile.json")  # make bench-profile's, when there is one
        if profile.exists():
            data["cpu"]["profile"] = json.loads(profile.read_text())
        data["cpu"]["measured"] = {
            "date": machine()["date"],
            "load_average": round(os.getloadavg()[0], 2),
            "command": f'{args.command} BENCH_ARGS="--only cpu{" --quick" if args.quick else ""}"',
        }
        return data
    print("memory ...", flush=True)
    data["memory"] = await memory_by_workers(
        args.model_dir, load, args.log_dir, budgets["mem"], model_capacity
    )
    data["memory_measured"] = {
        "date": machine()["date"],
        "command": f'{args.command} BENCH_ARGS="--only memory"',
    }
    return data


async def adaptive_section(args: argparse.Namespace, load: LoadGenerator) -> dict[str, Any]:
    """Thread layouts side by side (bench/adaptive.py), with the model's own single-text latency."""
    manifest = ModelManifest.read(args.model_dir)
    tokenizer = TextTokenizer(args.model_dir / manifest.tokenizer, manifest.max_tokens)
    corpus = args.log_dir.joinpath("corpus.txt").read_text().splitlines()
    graph = manifest.graph_path(args.model_dir, "fp32")
    cpus = os.cpu_count() or 1
    started = {"date": machine()["date"], "load_average": round(os.getloadavg()[0], 2)}
    raw_single = {
        "1 thread": round(raw_single_latency_ms(tokenizer, graph, 1, corpus), 2),
        f"{cpus} threads": round(raw_single_latency_ms(tokenizer, graph, cpus, corpus), 2),
        f"{cpus} threads, spinning": round(
            raw_single_latency_ms(tokenizer, graph, cpus, corpus, spin=True), 2
        ),
    }
    data = await adaptive(args.model_dir, args.gateway_bin, load, args.log_dir,
                          quick=args.quick, raw_single=raw_single)  # fmt: skip
    quick = " --quick" if args.quick else ""
    data["measured"] = {**started, "command": f'{args.command} BENCH_ARGS="--only adaptive{quick}"'}
    return data


def main() -> int:
    return bench_main("core", __doc__.splitlines()[0], main_async, render)


if __name__ == "__main__":
    raise SystemExit(main())
