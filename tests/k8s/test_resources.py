"""The core runs with the resources its worker math derived, and survives saturation.

The expected numbers come from the core's own formula (`tandem worker-math`,
python-inference/src/tandem/capacity.py) applied to the release's values as
the chart renders each pool (the shared core.* with the pool's overrides, and
the pool's precision), not from the chart: the chart has to agree with it.
Then the limits are read back from inside each core container (its cgroup),
and a saturating load must not get the core OOM-killed or restarted.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from .kube import LoadRun, Release, metric

CGROUP_LIMITS = """
import json, os
def read(p):
    try:
        return open(p).read().strip()
    except OSError:
        return None
v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
print(json.dumps({
  "memory": read("/sys/fs/cgroup/memory.max") if v2
            else read("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
  "cpu": read("/sys/fs/cgroup/cpu.max") if v2 else "%s %s" % (
      read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), read("/sys/fs/cgroup/cpu/cpu.cfs_period_us")),
}))
"""


def _send_limit(values: dict[str, Any]) -> int:
    """The gateway's largest message = the core's max_request_bytes (_limits.tpl)."""
    texts = int(values["core"]["capacity"]["maxTextsPerRequest"])
    text_bytes = int(values["requestLimits"]["maxTextBytes"])
    varint = 1 if text_bytes < 1 << 7 else 2 if text_bytes < 1 << 14 else 3
    body = int(values["requestLimits"]["maxBodyBytes"])
    return min(texts * text_bytes, body) + texts * (1 + varint) + 1024


def _transit_calls(values: dict[str, Any]) -> int:
    """Gateway pods (the HPA's maximum when it autoscales) x the gateway's max in flight."""
    gateway = values["gateway"]
    scaling = gateway["autoscaling"]
    pods = scaling["maxReplicas"] if scaling["enabled"] else gateway["replicas"]
    return int(pods) * int(gateway["settings"]["maxInFlight"])


# The model's measured capacity inputs as the chart reads them (make chart-capacity).
GENERATED_CAPACITY = (
    Path(__file__).resolve().parents[2] / "deploy/helm/tandem/generated/model-capacity.json"
)


def _measured(values: dict[str, Any]) -> tuple[int, int]:
    """Weights and activation bytes per token: the values' overrides, else the generated ones."""
    cap = values["core"]["capacity"]
    generated = json.loads(GENERATED_CAPACITY.read_text())["precisions"]
    entry = generated.get(values["core"]["settings"]["precision"], {})
    weights = int(cap.get("weightsBytes") or 0) or int(entry["weightsBytes"])
    activation = int(cap.get("activationBytesPerToken") or 0) or int(
        entry["activationBytesPerToken"]
    )
    return weights, activation


def _worker_math(values: dict[str, Any]) -> dict[str, Any]:
    """`tandem worker-math` with every input the chart feeds its own copy of the formula."""
    cap = values["core"]["capacity"]
    weights, activation = _measured(values)
    send_limit = _send_limit(values)
    tandem = shutil.which("tandem") or str(Path(sys.executable).parent / "tandem")
    out = subprocess.run(
        [
            tandem,
            "worker-math",
            "--cpus",
            str(cap["cpus"]),
            "--workers",
            str(cap["workers"]),
            "--threads-per-worker",
            str(cap["threadsPerWorker"]),
            "--weights-mib",
            repr(weights / (1 << 20)),
            "--activation-bytes-per-token",
            str(activation),
            "--max-batch-tokens",
            str(cap["maxBatchTokens"]),
            "--precision",
            values["core"]["settings"]["precision"],
            "--max-inflight-requests",
            str(cap["maxInflightRequests"]),
            "--max-inflight-bytes",
            str(int(cap["maxInflightBytes"]) or 2 * send_limit),
            "--max-texts-per-request",
            str(cap["maxTextsPerRequest"]),
            "--max-request-bytes",
            str(send_limit),
            "--transit-calls",
            str(_transit_calls(values)),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    plan: dict[str, Any] = json.loads(out.stdout)
    return plan


def test_core_resources_are_the_worker_math(release: Release) -> None:
    plans = set()
    for pool in release.pools():
        values = release.pool_values(pool.name)
        plan = _worker_math(values)
        plans.add((pool.name, plan["memory_limit_mib"]))
        _check_pool(release, pool.name, values, plan)
    # Each pool got its own plan (its precision's measured inputs, its own CPUs).
    assert len({limit for _, limit in plans}) == len(plans), plans


def _check_pool(release: Release, pool: str, values: dict[str, Any], plan: dict[str, Any]) -> None:
    cpu = f"{round(float(values['core']['capacity']['cpus']) * 1000)}m"
    pods = release.pods("core", pool=pool)
    assert pods, f"no cores in pool {pool}"
    for pod in pods:
        resources = pod.spec.containers[0].resources
        assert resources.requests == {"cpu": cpu, "memory": f"{plan['memory_request_mib']}Mi"}, (
            resources
        )
        assert resources.limits == {"cpu": cpu, "memory": f"{plan['memory_limit_mib']}Mi"}, (
            resources
        )
        assert pod.status.qos_class == "Burstable"

        # The kernel enforces them: the container's own cgroup.
        seen = json.loads(release.exec(pod.metadata.name, ["python", "-c", CGROUP_LIMITS]))
        assert int(seen["memory"]) == plan["memory_limit_mib"] << 20, seen
        quota, period = seen["cpu"].split()
        assert abs(int(quota) / int(period) - float(values["core"]["capacity"]["cpus"])) < 0.01, (
            seen
        )

        # And the core planned for what it got: its worker layout from the cgroup quota.
        metrics = release.pod_get(
            pod.metadata.name, int(values["core"]["ports"]["metrics"]), "/metrics"
        )
        assert (
            metric(
                metrics,
                "tandem_core_model_info",
                workers=str(plan["workers"]),
                threads_per_worker=str(plan["threads_per_worker"]),
            )
            == 1
        ), metrics


def test_core_is_not_oom_killed_under_saturating_load(settled: Release) -> None:
    """The first pool's cores, saturated through their model."""
    release = settled
    values = release.pool_values(release.default_pool().name)
    limit = _worker_math(values)["memory_limit_mib"] << 20
    metrics_port = int(values["core"]["ports"]["metrics"])
    cores = release.pods("core")
    peaks: dict[str, int] = {}
    queued: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        # A missed sample is only a missed sample; the asserts below need some.
        while not stop.is_set():
            with contextlib.suppress(Exception):
                for pod, ws in release.working_sets("core").items():
                    peaks[pod] = max(peaks.get(pod, 0), ws)
            for p in cores:
                with contextlib.suppress(Exception):
                    text = release.pod_get(p.metadata.name, metrics_port, "/metrics")
                    queued.append(metric(text, "tandem_core_queue_texts"))
            stop.wait(1)

    sampler = threading.Thread(target=sample, daemon=True)
    # More work than two half-CPU cores can do, kept below what would miss
    # the gateway's 10 s upstream deadline: 6 callers with 8 long texts each
    # (truncated to 256 tokens, so every batch is as large as the worker
    # math allows for: the memory peak), for 45 s.
    with LoadRun(release, duration=45, concurrency=6, texts=8, words=300, timeout=30) as load:
        sampler.start()
        result = load.result()
    stop.set()
    sampler.join(timeout=20)
    print(
        f"saturation: {result.outcomes}, latency {result.summary['latency_ms']}, "
        f"peak working set { {p: v >> 20 for p, v in peaks.items()} } MiB of {limit >> 20} MiB, "
        f"queue peak {max(queued, default=0)}"
    )

    # Saturated: texts were waiting for a worker, not just being served.
    assert max(queued, default=0) >= 8, (
        f"the cores were not saturated (queue peak {max(queued, default=0)})"
    )
    # Overload is answered, never dropped: a queue-full 429 at most, and no failures otherwise.
    unexpected = {
        k: v for k, v in result.outcomes.items() if k != "ok" and not k.startswith("http_429")
    }
    assert not unexpected, f"{unexpected}; samples: {result.summary['failures'][:5]}"
    assert result.outcomes.get("ok", 0) >= 0.9 * result.requests, result.outcomes

    for pod in release.pods("core"):
        status = pod.status.container_statuses[0]
        assert status.restart_count == 0, f"{pod.metadata.name} restarted"
        last = status.last_state.terminated if status.last_state else None
        assert last is None, f"{pod.metadata.name} was terminated: {last}"
    assert peaks, "no memory samples from the kubelet"
    for pod, peak in peaks.items():
        assert peak < limit, f"{pod} peaked at {peak >> 20} MiB, limit {limit >> 20} MiB"
