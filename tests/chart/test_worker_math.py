"""The chart's core resources and worker settings equal `tandem worker-math`.

The chart computes the capacity plan in a template (_helpers.tpl,
tandem.core.capacity); the core computes it in Python (capacity.py). This
renders the chart for a matrix of inputs and runs the core's CLI with the same
inputs: every number must agree, and every layout the CLI refuses the chart
must refuse too. The model's own inputs (weights, activation bytes per
padded token) are not typed here: the CLI reads them from the built model's
manifest, the chart from generated/model-capacity.json (`make chart-capacity`),
so a case with the defaults also proves the two copies agree; a few cases
override them to exercise the arithmetic for other models.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Any

import pytest

from tests.chart.helm import CHART, ROOT, Rendered, RenderError, mib, render, render_error
from tests.chart.test_message_limits import grpc_send_limit

TANDEM_CLI = ROOT / ".venv" / "bin" / "tandem"
MODEL_DIR = ROOT / ".cache" / "models"
GENERATED = CHART / "generated" / "model-capacity.json"
MIB = 1 << 20


@dataclass(frozen=True)
class Case:
    cpus: float
    workers: int = 0
    threads: int = 0
    precision: str = "fp32"
    max_batch_tokens: int = 1024
    weights_bytes: int = 0  # 0 = the built model's (measured), else an override
    activation_bytes: int = 0  # 0 = the built model's (measured), else an override
    inflight_requests: int = 32
    inflight_bytes: int = 0  # 0 = the chart's default: 2 x the gateway's send limit
    texts_per_request: int = 256
    # Calls in transit: gateway pods (replicas, or the HPA's maxReplicas) x maxInFlight.
    gateway_replicas: int = 1
    gateway_max_replicas: int = 0  # > 0: the gateway autoscales up to this many pods
    gateway_in_flight: int = 32
    max_text_bytes: int = 8192  # with maxTextsPerRequest, sets the gateway's send limit
    adaptive: bool = True  # the wide session for lone batches (the default)

    def __str__(self) -> str:
        return (
            f"cpus={self.cpus:g},w={self.workers},t={self.threads},"
            f"{'adaptive' if self.adaptive else 'fixed'},"
            f"{self.precision},tokens={self.max_batch_tokens},weights={self.weights_bytes},"
            f"act={self.activation_bytes},"
            f"inflight={self.inflight_requests}/{self.inflight_bytes}/{self.texts_per_request},"
            f"gw={self.gateway_replicas}/{self.gateway_max_replicas}x{self.gateway_in_flight},"
            f"text={self.max_text_bytes}"
        )

    @property
    def gateway_pods(self) -> int:
        return self.gateway_max_replicas or self.gateway_replicas

    def values(self) -> dict[str, Any]:
        return {
            "requestLimits": {"maxTextBytes": self.max_text_bytes},
            "gateway": {
                "replicas": self.gateway_replicas,
                "autoscaling": {
                    "enabled": bool(self.gateway_max_replicas),
                    "maxReplicas": self.gateway_max_replicas or 6,
                },
                "settings": {"maxInFlight": self.gateway_in_flight},
            },
            "core": {
                "capacity": {
                    "cpus": self.cpus,
                    "workers": self.workers,
                    "threadsPerWorker": self.threads,
                    "adaptiveThreads": self.adaptive,
                    "weightsBytes": self.weights_bytes,
                    "activationBytesPerToken": self.activation_bytes,
                    "maxBatchTokens": self.max_batch_tokens,
                    "maxInflightRequests": self.inflight_requests,
                    "maxInflightBytes": self.inflight_bytes,
                    "maxTextsPerRequest": self.texts_per_request,
                },
            },
            # One pool: the first keeps the unsuffixed names (Deployment tandem-core).
            "models": [{"name": "m", "precision": self.precision}],
        }


# Every branch of the formula: derived and given workers and threads, whole
# and fractional CPUs, shared and per-worker sessions, both precisions, small
# and large batches, other model sizes, and layouts that must be refused.
CASES = [
    Case(cpus=c, workers=w, threads=t)
    for c in (0.5, 1, 1.5, 2, 3.5, 4, 8)
    for w, t in ((0, 0), (1, 0), (2, 0), (0, 2), (2, 2), (3, 1))
] + [
    # Without the wide session: shared and per-worker sessions, one worker.
    Case(cpus=2, adaptive=False),
    Case(cpus=4, adaptive=False),
    Case(cpus=4, workers=2, threads=2, adaptive=False),
    Case(cpus=1, adaptive=False),
    Case(cpus=3.5, workers=3, threads=1, adaptive=False),
    Case(cpus=2, precision="int8"),
    Case(cpus=4, workers=1, precision="int8"),
    Case(cpus=1, max_batch_tokens=256),
    Case(cpus=2, max_batch_tokens=4096),
    Case(cpus=16, max_batch_tokens=65536),
    Case(cpus=4, workers=4, threads=1, max_batch_tokens=2000),
    # Other models: the override values, as a team would set before generating theirs.
    Case(cpus=2, weights_bytes=22_783_400, activation_bytes=12_345),
    Case(cpus=6, workers=2, threads=3, weights_bytes=438_000_000, activation_bytes=100 * 1024),
    Case(cpus=64, workers=64),
    Case(cpus=1, workers=64),
    # The in-flight term: the admission bounds, small and large.
    Case(cpus=2, inflight_requests=1, inflight_bytes=2 << 20),
    Case(cpus=2, inflight_requests=64, inflight_bytes=64 << 20, texts_per_request=1024),
    Case(cpus=4, inflight_requests=3, inflight_bytes=3_000_001, texts_per_request=7),
    # The transit term: gateway pods x in flight, fixed and autoscaled, and
    # other send limits (which also move the derived byte bound).
    Case(cpus=2, gateway_replicas=3),
    Case(cpus=2, gateway_replicas=3, gateway_max_replicas=10, gateway_in_flight=8),
    Case(cpus=2, gateway_in_flight=1, inflight_requests=4),
    Case(cpus=1, gateway_replicas=2, gateway_in_flight=256, max_text_bytes=512),
    Case(cpus=2, texts_per_request=1024, max_text_bytes=65536, inflight_bytes=8 << 20),
    Case(cpus=4, gateway_max_replicas=2, max_text_bytes=100, texts_per_request=3),
]


def send_limit(case: Case) -> int:
    """The gateway's send limit = the core's max_request_bytes (test_message_limits.py
    pins it to the gateway's own numbers); here it is an input of the worker math."""
    return grpc_send_limit(case.texts_per_request, case.max_text_bytes, 4 << 20)


def inflight_bytes(case: Case) -> int:
    return case.inflight_bytes or 2 * send_limit(case)


def worker_math(case: Case) -> dict[str, Any] | str:
    """The core's own plan: JSON, or the refusal message."""
    args = [
        str(TANDEM_CLI),
        "worker-math",
        "--cpus",
        repr(float(case.cpus)),
        "--workers",
        str(case.workers),
        "--threads-per-worker",
        str(case.threads),
        "--model-dir",
        str(MODEL_DIR),
        *(["--weights-mib", repr(case.weights_bytes / MIB)] if case.weights_bytes else []),
        *(
            ["--activation-bytes-per-token", str(case.activation_bytes)]
            if case.activation_bytes
            else []
        ),
        "--precision",
        case.precision,
        "--max-batch-tokens",
        str(case.max_batch_tokens),
        "--max-inflight-requests",
        str(case.inflight_requests),
        "--max-inflight-bytes",
        str(inflight_bytes(case)),
        "--max-texts-per-request",
        str(case.texts_per_request),
        "--transit-calls",
        str(case.gateway_pods * case.gateway_in_flight),
        "--max-request-bytes",
        str(send_limit(case)),
        "--adaptive-threads" if case.adaptive else "--no-adaptive-threads",
    ]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode == 2:
        return result.stderr
    assert result.returncode == 0, result.stderr
    plan: dict[str, Any] = json.loads(result.stdout)
    return plan


def millicores(quantity: str) -> int:
    assert quantity.endswith("m"), f"CPU {quantity!r} should be rendered in millicores"
    return int(quantity.removesuffix("m"))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_chart_plan_equals_worker_math(case: Case) -> None:
    plan = worker_math(case)
    if isinstance(plan, str):
        message = render_error(values=case.values())
        assert "core.capacity" in message, message
        assert "CPU threads" in message, message
        return
    rendered = render(values=case.values())
    resources = rendered.container("core")["resources"]
    assert mib(resources["requests"]["memory"]) == plan["memory_request_mib"]
    assert mib(resources["limits"]["memory"]) == plan["memory_limit_mib"]
    # CPU request = limit = the CPUs planned for, so the quota the core reads is that number.
    assert millicores(resources["requests"]["cpu"]) == round(case.cpus * 1000)
    assert resources["limits"]["cpu"] == resources["requests"]["cpu"]
    # The core runs exactly the plan the pod was sized for.
    env = rendered.env("core")
    assert int(env["TANDEM_CORE_WORKERS"]) == plan["workers"]
    assert int(env["TANDEM_CORE_THREADS_PER_WORKER"]) == plan["threads_per_worker"]
    assert env["TANDEM_CORE_ADAPTIVE_THREADS"] == str(plan["wide_threads"] > 0).lower()
    assert float(env["TANDEM_CORE_CPUS"]) == plan["cpus"]
    assert int(env["TANDEM_CORE_MAX_BATCH_TOKENS"]) == case.max_batch_tokens
    assert int(env["TANDEM_CORE_MAX_INFLIGHT_REQUESTS"]) == case.inflight_requests
    assert int(env["TANDEM_CORE_MAX_INFLIGHT_BYTES"]) == inflight_bytes(case)
    assert int(env["TANDEM_CORE_MAX_REQUEST_BYTES"]) == send_limit(case)
    assert int(env["TANDEM_CORE_TRANSIT_CALLS"]) == case.gateway_pods * case.gateway_in_flight
    assert int(env["TANDEM_CORE_MAX_TEXTS_PER_REQUEST"]) == case.texts_per_request
    assert env["TANDEM_CORE_PRECISION"] == case.precision


def test_matrix_covers_refusals_and_both_session_layouts() -> None:
    """The matrix exercises every outcome, or the comparison above proves little."""
    plans = [worker_math(c) for c in CASES]
    refused = [p for p in plans if isinstance(p, str)]
    accepted = [p for p in plans if isinstance(p, dict)]
    assert len(refused) >= 5
    assert {p["model_copies"] == 1 for p in accepted} == {True, False}
    assert {p["wide_threads"] > 0 for p in accepted} == {True, False}
    assert len({p["memory_limit_mib"] for p in accepted}) >= 10


def test_generated_capacity_is_the_built_models() -> None:
    """The drift check: the chart's generated file is what the manifest gives today.

    The same check runs in `make test` (chart-capacity-check); here it runs
    with the chart tests, so a rebuilt model with new measurements fails fast.
    """
    manifest = json.loads((MODEL_DIR / "manifest.json").read_text())
    generated = json.loads(GENERATED.read_text())
    assert generated["modelId"] == manifest["model_id"]
    assert generated["precisions"] == {
        precision: {
            "weightsBytes": measured["weights_bytes"],
            "activationBytesPerToken": measured["activation_bytes_per_token"],
        }
        for precision, measured in manifest["capacity"].items()
    }
    printed = subprocess.run(
        [str(TANDEM_CLI), "chart-capacity", "--model-dir", str(MODEL_DIR)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert printed == GENERATED.read_text(), "stale generated file: run `make chart-capacity`"


def test_overrides_replace_the_generated_values() -> None:
    """A model the generated file does not describe is sized by the two overrides."""
    case = Case(cpus=1, weights_bytes=300 * MIB, activation_bytes=64 * 1024)
    plan = plan_for(case)
    default = plan_for(Case(cpus=1))
    assert plan["memory_request_mib"] != default["memory_request_mib"]
    resources = render(values=case.values()).container("core")["resources"]
    assert mib(resources["requests"]["memory"]) == plan["memory_request_mib"]


def plan_for(case: Case) -> dict[str, Any]:
    plan = worker_math(case)
    assert isinstance(plan, dict), plan
    return plan


def test_default_plan_is_one_worker_on_one_cpu() -> None:
    plan = plan_for(Case(cpus=1))
    assert plan["workers"] == 1
    resources = render().container("core")["resources"]
    assert resources == {
        "requests": {"cpu": "1000m", "memory": f"{plan['memory_request_mib']}Mi"},
        "limits": {"cpu": "1000m", "memory": f"{plan['memory_limit_mib']}Mi"},
    }


EXPLICIT = {
    "requests": {"cpu": "2", "memory": "400Mi"},
    "limits": {"cpu": "2", "memory": "900Mi"},  # above the 2-CPU plan's 818 MiB
}


def test_explicit_resources_override_the_plan() -> None:
    rendered: Rendered = render(values={"core": {"capacity": {"cpus": 2}, "resources": EXPLICIT}})
    assert rendered.container("core")["resources"] == EXPLICIT
    # The worker settings still follow the plan for core.capacity.
    env = rendered.env("core")
    assert (env["TANDEM_CORE_WORKERS"], env["TANDEM_CORE_THREADS_PER_WORKER"]) == ("2", "1")


def two_cpu_need_mib() -> int:
    """What 2 workers x 1 thread need with the built model (the plan's request)."""
    need = plan_for(Case(cpus=2))["memory_request_mib"]
    # The fixed quantities below ("300M", "0.875Gi", "1G") sit on either side of it.
    assert 300 < need <= 896, need
    return int(need)


@pytest.mark.parametrize(
    ("limits", "complaint"),
    [
        ({"cpu": "2", "memory": "{below}Mi"}, "core.resources.limits.memory"),
        ({"cpu": "2", "memory": "300M"}, "core.resources.limits.memory"),  # 286 MiB
        ({"cpu": "1500m", "memory": "1Gi"}, "core.resources.limits.cpu"),
        ({"cpu": 1, "memory": "1Gi"}, "core.resources.limits.cpu"),
    ],
)
def test_explicit_resources_that_cannot_hold_the_plan_are_refused(
    limits: dict[str, Any], complaint: str
) -> None:
    need = two_cpu_need_mib()
    limits = {k: v.format(below=need - 1) if isinstance(v, str) else v for k, v in limits.items()}
    values = {"core": {"capacity": {"cpus": 2}, "resources": {"limits": limits}}}
    assert complaint in render_error(values=values)


@pytest.mark.parametrize(
    "limits",
    [
        {"cpu": "2", "memory": "{need}Mi"},
        {"cpu": "2000m", "memory": "{need_bytes}"},  # the same in bytes
        {"cpu": 2, "memory": "0.875Gi"},  # 896 MiB
        {"cpu": "2.5", "memory": "1G"},
    ],
)
def test_explicit_resources_that_hold_the_plan_are_accepted(limits: dict[str, Any]) -> None:
    need = two_cpu_need_mib()
    limits = {
        k: v.format(need=need, need_bytes=need * MIB) if isinstance(v, str) else v
        for k, v in limits.items()
    }
    values = {"core": {"capacity": {"cpus": 2}, "resources": {"limits": limits}}}
    try:
        render(values=values)
    except RenderError as e:
        pytest.fail(f"refused {limits}: {e}")
