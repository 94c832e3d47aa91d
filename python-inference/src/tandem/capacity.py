"""Worker math: one formula for CPU threads and memory, used by the service and the chart.

    threads      = workers x threads_per_worker             <= CPUs the container gets
    model copies = 1 when workers are single-threaded (they share one ORT session),
                   else one per worker (each needs its own intra-op thread pool),
                   + 1 for the wide session (adaptive threads, more than one worker)
    batches      = workers, + 1 for the wide session (its own arena keeps its largest)
    in flight    = admitted bytes x bytes factor + admitted requests x texts x result bytes
    transit      = transit calls x max request bytes x transit factor
    memory       = base + copies x model + batches x peak batch activations + in flight
                   + transit
    request      = memory
    limit        = memory x (1 + headroom), rounded up to whole MiB

``tandem worker-math`` prints this as JSON; the Helm chart renders the core's
resources with the same formula (deploy/helm/tandem/templates/_helpers.tpl),
and a test checks the two agree for a matrix of inputs. The model's own
inputs (its weights, its activation bytes per padded token) are measured by
``tandem build-model`` and read from the model's manifest
(tandem.model.measure); the constants below belong to the core. They are
measured too, not guessed: ``make bench-core`` measures peak RSS at saturating
load for 1, 2 and 4 workers and compares it with this formula
(docs/benchmarks/core.md, docs/worker-math.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

MIB = 1 << 20

# Resident memory of a started core without any model session: CPython,
# numpy, ONNX Runtime, grpcio, FastAPI/uvicorn, tokenizers and the tokenizer's
# vocabulary. Measured (docs/benchmarks/core.md).
BASE_MIB = 130
# A session holds its own copy of the weights (the manifest's weights_bytes
# for the served precision) plus ORT's allocator and graph overhead.
SESSION_OVERHEAD_MIB = 16
HEADROOM = 0.25
# What admitted requests hold (admission.py bounds requests and text bytes in
# flight). Per byte of text: the gRPC message or HTTP body, the decoded
# strings, the tokenizer's full-length encodings (before truncation), the
# token arrays, and the raw messages of the calls being refused meanwhile
# (admission comes before parsing, so only their bytes). Per text, whatever its
# size: its vector, the response message and its encoding (JSON floats are
# ~3x the float32 bytes). The factor is measured, not derived: 256 x 8 KB
# texts, max_inflight_requests callers at once, 2 workers: peak RSS 425 MiB
# over a 313 MiB plan without this term (bench/core_bench.py, section 4), when
# the calls in transit had no term of their own. Re-fitted with that term:
# with 8 callers (2 admitted, 6 in transit) the admitted requests held about
# 33 MiB for 4 MiB of bound, so 10 still leaves room.
INFLIGHT_BYTES_FACTOR = 10
RESULT_BYTES_PER_TEXT = 8 * 1024
# What calls in transit hold: admission comes before parsing, so a call that
# arrives while the gate is full holds its raw message (at most
# max_request_bytes) until it is refused, and nothing else. How many can be
# in transit at once is set by the callers, not by the core: only gateways
# reach a core (the chart's NetworkPolicy), each with at most its max in
# flight calls open, so transit calls = gateway pods x gateway max in flight.
# Measured, not derived (bench/core_bench.py memory_worst_case, 256 x 8 KB
# messages of 2.0 MiB, 2 workers, the byte bound admitting 2 at once): peak
# RSS 421 MiB with 8 callers, and 596 to 660 MiB with 32 in four runs, i.e.
# 7.3 to 10 MiB per caller in transit, 3.6 to 4.8 raw messages' worth (grpc's
# receive buffers, the Python bytes, the allocator's arenas across threads):
# 4 puts the plan 2 to 13 % above every run (docs/worker-math.md), and the
# limit's 25 % headroom well above the highest.
TRANSIT_BYTES_FACTOR = 4


@dataclass(frozen=True)
class CapacityInputs:
    """What the formula needs; every field has a flag in ``tandem worker-math``."""

    cpus: float  # CPUs the container gets (its limit, or the host's when unlimited)
    workers: int  # 0 = derive from cpus
    threads_per_worker: int  # 0 = derive from cpus and workers
    weights_mib: float  # the served graph's weights (manifest capacity.weights_bytes)
    # Peak batch memory per padded token, measured at build time (manifest
    # capacity.activation_bytes_per_token): each worker keeps its largest batch's.
    activation_bytes_per_token: int
    max_batch_tokens: int
    max_inflight_requests: int  # admission bound: requests at once
    max_inflight_bytes: int  # admission bound: UTF-8 bytes of text at once
    max_texts_per_request: int
    # Calls that can reach the core at once (gateway pods x gateway max in
    # flight), each holding at most max_request_bytes of raw message.
    transit_calls: int
    max_request_bytes: int
    # A lone batch runs on an extra session with every CPU thread (the
    # scheduler's wide batches); only with more than one worker.
    adaptive_threads: bool = True
    headroom: float = HEADROOM


@dataclass(frozen=True)
class CapacityPlan:
    workers: int
    threads_per_worker: int
    cpu_threads: int  # workers x threads_per_worker
    wide_threads: int  # the wide session's threads (cpu_threads), 0 when there is none
    cpus: float
    base_mib: int
    model_copies: int
    model_mib: int  # one session's weights and overhead
    per_worker_mib: int  # one batch arena's peak activations (each worker's, the wide session's)
    batch_arenas: int  # workers, + 1 for the wide session
    inflight_mib: int  # what the admitted requests can hold
    transit_mib: int  # the raw messages of calls in transit (refused or not yet admitted)
    memory_request_mib: int
    memory_limit_mib: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class CapacityError(ValueError):
    """A configuration that cannot work; the message names the setting to change."""


def plan_capacity(inputs: CapacityInputs) -> CapacityPlan:
    whole_cpus = max(1, math.ceil(inputs.cpus - 1e-9))
    # Default layout: one single-threaded worker per CPU. Measured here it
    # gives the most throughput and degrades gracefully when the loop or a
    # neighbour takes CPU (one slow thread does not stall a parallel region).
    # One worker with all CPUs as threads has lower latency for a lone request.
    if inputs.workers:
        workers = inputs.workers
        threads = inputs.threads_per_worker or max(1, whole_cpus // workers)
    else:
        threads = inputs.threads_per_worker or 1
        workers = max(1, whole_cpus // threads)
    if workers * threads > whole_cpus:
        raise CapacityError(
            f"{workers} workers x {threads} threads = {workers * threads} CPU threads, but the "
            f"container gets {inputs.cpus:g} CPUs: lower TANDEM_CORE_WORKERS or "
            "TANDEM_CORE_THREADS_PER_WORKER, or give the pod more CPU"
        )
    # The wide session runs only while every worker is held, so its threads
    # add no CPU threads; but ORT cannot share weights between sessions from
    # Python (no prepacked-weights container in its API), so it is one more
    # model copy and one more arena of the largest batch.
    wide = inputs.adaptive_threads and workers > 1
    model_copies = (1 if threads == 1 else workers) + wide
    batch_arenas = workers + wide
    model_mib = math.ceil(inputs.weights_mib + SESSION_OVERHEAD_MIB)
    per_worker_mib = math.ceil(inputs.max_batch_tokens * inputs.activation_bytes_per_token / MIB)
    inflight_mib = math.ceil(
        (
            inputs.max_inflight_bytes * INFLIGHT_BYTES_FACTOR
            + inputs.max_inflight_requests * inputs.max_texts_per_request * RESULT_BYTES_PER_TEXT
        )
        / MIB
    )
    transit_mib = math.ceil(
        inputs.transit_calls * inputs.max_request_bytes * TRANSIT_BYTES_FACTOR / MIB
    )
    request = (
        BASE_MIB
        + model_copies * model_mib
        + batch_arenas * per_worker_mib
        + inflight_mib
        + transit_mib
    )
    limit = math.ceil(request * (1 + inputs.headroom))
    return CapacityPlan(
        workers=workers,
        threads_per_worker=threads,
        cpu_threads=workers * threads,
        wide_threads=workers * threads if wide else 0,
        cpus=inputs.cpus,
        base_mib=BASE_MIB,
        model_copies=model_copies,
        model_mib=model_mib,
        per_worker_mib=per_worker_mib,
        batch_arenas=batch_arenas,
        inflight_mib=inflight_mib,
        transit_mib=transit_mib,
        memory_request_mib=request,
        memory_limit_mib=limit,
    )


def check_memory_limit(plan: CapacityPlan, limit_bytes: int | None) -> None:
    """Refuse to start when the formula's working set cannot fit the cgroup memory limit."""
    if limit_bytes is None:
        return
    limit_mib = limit_bytes // MIB
    if plan.memory_request_mib > limit_mib:
        raise CapacityError(
            f"{plan.workers} workers need about {plan.memory_request_mib} MiB ({plan.base_mib} base"
            f" + {plan.model_copies} x {plan.model_mib} model + {plan.batch_arenas} x "
            f"{plan.per_worker_mib} per batch arena + {plan.inflight_mib} in flight + "
            f"{plan.transit_mib} in transit) but the memory limit is {limit_mib} MiB: lower "
            "TANDEM_CORE_WORKERS, TANDEM_CORE_MAX_BATCH_TOKENS, TANDEM_CORE_MAX_INFLIGHT_REQUESTS, "
            "TANDEM_CORE_MAX_INFLIGHT_BYTES or TANDEM_CORE_TRANSIT_CALLS, set "
            "TANDEM_CORE_ADAPTIVE_THREADS=false (one model copy less), or raise the memory limit"
        )


# Where `make chart-capacity` writes the chart's copy of the model's measured
# inputs (relative to the repository root); the chart reads it with .Files.Get.
CHART_CAPACITY_FILE = "deploy/helm/tandem/generated/model-capacity.json"


def chart_capacity_json(model_id: str, measured: Mapping[str, Mapping[str, int]]) -> str:
    """The chart's generated capacity values: the manifest's measured inputs, per precision.

    ``measured`` is the manifest's ``capacity`` (precision -> weights_bytes,
    activation_bytes_per_token). The output is stable (sorted keys, integers,
    a trailing newline), so ``make chart-capacity-check`` can diff it.
    """
    document = {
        "generatedBy": "make chart-capacity (tandem chart-capacity) from the model's "
        "manifest.json; do not edit",
        "modelId": model_id,
        "precisions": {
            precision: {
                "weightsBytes": int(values["weights_bytes"]),
                "activationBytesPerToken": int(values["activation_bytes_per_token"]),
            }
            for precision, values in sorted(measured.items())
        },
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
