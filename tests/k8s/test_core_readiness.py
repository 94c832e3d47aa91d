"""A core pod is not Ready before its model is loaded and warmed.

Observed, not assumed: the suite watches a fresh core pod through the API
and compares when the API reported it Ready with when the core itself logged
that loading and warm-up were done. The watch event is received on this
machine after the kubelet saw the probe pass, so if Kubernetes had marked the
pod Ready before the model was warm, the event would arrive before the log
line's time.
"""

from __future__ import annotations

import json
from datetime import datetime

from .kube import Release, is_ready, wait_for, watching_pods


def _log_time(entry: dict[str, object]) -> float:
    return datetime.fromisoformat(str(entry["time"])).timestamp()


def test_probes_check_the_model_not_the_process(release: Release) -> None:
    (container,) = release.pods("core")[0].spec.containers[:1]
    for probe in (container.startup_probe, container.readiness_probe):
        assert probe is not None
        assert probe.grpc is not None, "startup/readiness must be the gRPC health check"
        assert probe.grpc.service == "tandem.contract.v1.EmbeddingService"


def test_a_new_core_is_not_ready_until_its_model_is_warm(settled: Release) -> None:
    release = settled
    old = {p.metadata.name for p in release.pods("core")}
    victim = min(old)
    with watching_pods(release, "core") as events:
        release.core.delete_namespaced_pod(victim, release.namespace)

        def replacement_ready() -> str | None:
            fresh = [p for p in release.pods("core") if p.metadata.name not in old and is_ready(p)]
            return str(fresh[0].metadata.name) if fresh else None

        new = wait_for("a replacement core pod to be Ready", replacement_ready, 180)

    seen = [(t, pod) for t, _, pod in events if pod.metadata.name == new]
    assert seen, f"no watch events for {new}"

    def running(pod) -> bool:  # type: ignore[no-untyped-def]
        return any(c.state.running for c in (pod.status.container_statuses or []))

    running_not_ready = [t for t, pod in seen if running(pod) and not is_ready(pod)]
    became_ready = [t for t, pod in seen if is_ready(pod)]
    assert running_not_ready, "the core's container was never seen running-but-not-Ready"
    assert became_ready, f"{new} was never seen Ready in the watch"

    log = release.core.read_namespaced_pod_log(new, release.namespace)
    entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    messages = [e.get("message") for e in entries]
    # The core turns its gRPC health SERVING right after logging the phase
    # change to ready, which comes after loading the model and warming every
    # worker up (the capacity plan is logged before loading starts).
    phase_ready = [
        e
        for e in entries
        if e.get("message") == "lifecycle phase changed" and e.get("phase") == "ready"
    ]
    assert len(phase_ready) == 1, f"expected one change to phase ready in {new}: {messages}"
    ready_at = _log_time(phase_ready[0])
    assert messages.index("capacity plan") < entries.index(phase_ready[0])
    announced = [e for e in entries if e.get("message") == "ready"]
    assert announced, f"no 'ready' announcement in {new}"
    assert float(announced[0]["startup_seconds"]) > 0

    assert min(became_ready) >= ready_at, (
        f"Kubernetes reported {new} Ready at {min(became_ready):.3f}, "
        f"before the core's model was ready at {ready_at:.3f}"
    )

    # And the core says so itself: ready, with the time start-up took.
    metrics = release.pod_get(new, int(release.values()["core"]["ports"]["metrics"]), "/metrics")
    assert "tandem_core_ready 1.0" in metrics
