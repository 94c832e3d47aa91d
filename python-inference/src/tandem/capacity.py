"""Worker math: one formula for CPU threads and memory, used by the service and the chart.

    threads  = workers x threads_per_worker            <= CPUs the container gets
    memory   = base + workers x (model + peak batch)   (the working set)
    request  = memory
    limit    = memory x (1 + headroom), rounded up to whole MiB

``tandem worker-math`` prints this as JSON; the Helm chart renders the core's
resources with the same formula (deploy/helm/tandem/templates/_helpers.tpl),
and a test checks the two agree for a matrix of inputs. The constants are
measured, not guessed: ``make bench-core`` measures peak RSS at saturating
load for 1, 2 and 4 workers and compares it with this formula
(docs/benchmarks/core.md).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

MIB = 1 << 20

# Resident memory of a started core without any model session: CPython,
# numpy, ONNX Runtime, grpcio, FastAPI/uvicorn, tokenizers and the tokenizer's
# vocabulary. Measured (docs/benchmarks/core.md).
BASE_MIB = 140
# A session holds its own copy of the weights, pre-packed for the CPU's GEMM
# kernels, plus allocator overhead: measured per precision, per MiB of weights.
SESSION_WEIGHT_FACTOR = {"fp32": 1.0, "int8": 1.0}
SESSION_OVERHEAD_MIB = 8
# Activation memory per padded token of a batch at the model's width, kept by
# ORT's arena after the first batch of that size (hidden 384, FFN 1536, 12
# heads x sequence attention scores, plus the pooled copies).
ACTIVATION_BYTES_PER_TOKEN = 16 * 1024
HEADROOM = 0.25


@dataclass(frozen=True)
class CapacityInputs:
    """What the formula needs; every field has a flag in ``tandem worker-math``."""

    cpus: float  # CPUs the container gets (its limit, or the host's when unlimited)
    workers: int  # 0 = derive from cpus
    threads_per_worker: int  # 0 = derive from cpus and workers
    weights_mib: float  # size of the model's weights (manifest.weights_bytes)
    precision: str  # "fp32" or "int8"
    max_batch_tokens: int
    headroom: float = HEADROOM


@dataclass(frozen=True)
class CapacityPlan:
    workers: int
    threads_per_worker: int
    cpu_threads: int  # workers x threads_per_worker
    cpus: float
    base_mib: int
    per_worker_mib: int
    memory_request_mib: int
    memory_limit_mib: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class CapacityError(ValueError):
    """A configuration that cannot work; the message names the setting to change."""


def plan_capacity(inputs: CapacityInputs) -> CapacityPlan:
    whole_cpus = max(1, math.ceil(inputs.cpus - 1e-9))
    workers = inputs.workers or 1
    threads = inputs.threads_per_worker or max(1, whole_cpus // workers)
    if workers * threads > whole_cpus:
        raise CapacityError(
            f"{workers} workers x {threads} threads = {workers * threads} CPU threads, but the "
            f"container gets {inputs.cpus:g} CPUs: lower TANDEM_CORE_WORKERS or "
            "TANDEM_CORE_THREADS_PER_WORKER, or give the pod more CPU"
        )
    per_worker = (
        inputs.weights_mib * SESSION_WEIGHT_FACTOR[inputs.precision]
        + SESSION_OVERHEAD_MIB
        + inputs.max_batch_tokens * ACTIVATION_BYTES_PER_TOKEN / MIB
    )
    per_worker_mib = math.ceil(per_worker)
    request = BASE_MIB + workers * per_worker_mib
    limit = math.ceil(request * (1 + inputs.headroom))
    return CapacityPlan(
        workers=workers,
        threads_per_worker=threads,
        cpu_threads=workers * threads,
        cpus=inputs.cpus,
        base_mib=BASE_MIB,
        per_worker_mib=per_worker_mib,
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
            f"{plan.workers} workers need about {plan.memory_request_mib} MiB "
            f"({plan.base_mib} base + {plan.workers} x {plan.per_worker_mib} per worker) but the "
            f"memory limit is {limit_mib} MiB: lower TANDEM_CORE_WORKERS or "
            "TANDEM_CORE_MAX_BATCH_TOKENS, or raise the memory limit"
        )
