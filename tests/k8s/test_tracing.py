"""A request in the cluster is one trace: gateway spans and core spans, connected.

An OTLP receiver runs in a pod of the namespace (tandem_devkit/otlp_receiver.py,
the receiver every suite uses, run by the core image's Python), the release
is upgraded to export to it (tracing.otlpEndpoint), and a request through
the gateway must arrive as one trace whose parent/child edges
cross from the gateway's HTTP span, through its gRPC client span, to the
core's server span and its stage spans: the same chain the local suite checks
(tests/e2e/test_tracing.py), here across pods.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tandem_devkit import otlp_receiver
from tandem_devkit.otlp_receiver import ReceivedSpan, parse_jsonl
from tandem_devkit.trace_shape import assert_request_chain

from .kube import (
    RESTRICTED_CONTAINER_SECURITY,
    RESTRICTED_POD_SECURITY,
    PortForward,
    Release,
    wait_for,
    wait_for_pod_ready,
)

SINK = "e2e-otlp"
# Listens on the pod's addresses; prints each span as a JSON line to the pod's log.
RECEIVER_COMMAND = [
    "python", "/otlp/otlp_receiver.py", "--host", "0.0.0.0", "--port", "4317", "--jsonl",
]  # fmt: skip


@pytest.fixture(scope="module")
def traced(release: Release, pytestconfig: pytest.Config) -> Iterator[Release]:
    r = release
    before = r.revision()
    core = r.pods("core")[0]
    r.core.create_namespaced_config_map(
        r.namespace,
        {
            "metadata": {"name": SINK},
            "data": {
                "otlp_receiver.py": Path(otlp_receiver.__file__).read_text(),
            },
        },
    )
    labels = {"app.kubernetes.io/name": SINK, "app.kubernetes.io/part-of": "tandem-e2e"}
    r.core.create_namespaced_pod(
        r.namespace,
        {
            "metadata": {"name": SINK, "labels": labels},
            "spec": {
                "automountServiceAccountToken": False,
                "securityContext": RESTRICTED_POD_SECURITY,
                "containers": [
                    {
                        "name": "sink",
                        "image": core.spec.containers[0].image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": RECEIVER_COMMAND,
                        "ports": [{"containerPort": 4317, "name": "otlp-grpc"}],
                        "readinessProbe": {"tcpSocket": {"port": 4317}, "periodSeconds": 1},
                        "resources": {
                            "requests": {"cpu": "50m", "memory": "64Mi"},
                            "limits": {"memory": "256Mi"},
                        },
                        "securityContext": RESTRICTED_CONTAINER_SECURITY,
                        "volumeMounts": [{"name": "code", "mountPath": "/otlp", "readOnly": True}],
                    }
                ],
                "volumes": [{"name": "code", "configMap": {"name": SINK}}],
            },
        },
    )
    r.core.create_namespaced_service(
        r.namespace,
        {
            "metadata": {"name": SINK},
            "spec": {"selector": labels, "ports": [{"name": "otlp-grpc", "port": 4317}]},
        },
    )
    try:
        wait_for_pod_ready(r, SINK, 120)
        endpoint = f"http://{SINK}.{r.namespace}.svc:4317"
        r.run_helm(
            "upgrade", r.name, str(r.chart), "--reuse-values",
            "--set", "tracing.enabled=true", "--set", f"tracing.otlpEndpoint={endpoint}",
            "--wait", "--timeout", "5m",
        )  # fmt: skip
        r.settled()
        r.restart("gateway")  # after the cores: see conftest.py
        r.serving()
        yield r
    finally:
        if not pytestconfig.getoption("--no-restore"):
            r.run_helm("rollback", r.name, str(before), "--wait", "--timeout", "5m")
        for delete in (
            r.core.delete_namespaced_pod,
            r.core.delete_namespaced_service,
            r.core.delete_namespaced_config_map,
        ):
            delete(SINK, r.namespace)


def _spans(release: Release) -> list[ReceivedSpan]:
    return parse_jsonl(release.core.read_namespaced_pod_log(SINK, release.namespace))


def test_a_request_is_one_trace_across_gateway_and_core_pods(traced: Release) -> None:
    release = traced
    port = int(release.values()["gateway"]["service"]["port"])
    with PortForward(release, f"service/{release.service_name('gateway')}", port) as gateway:
        reply = httpx.post(
            f"{gateway.url}/v1/embeddings",
            json={"model": "all-MiniLM-L6-v2", "input": [f"trace {secrets.token_hex(4)}"]},
            timeout=30,
        )
    assert reply.status_code == 200, reply.text
    trace_id = reply.headers["x-trace-id"]

    def arrived() -> list[object] | None:
        spans = _spans(release)
        services = {s.service for s in spans if s.trace_id == trace_id}  # type: ignore[attr-defined]
        names = {s.name for s in spans if s.trace_id == trace_id}  # type: ignore[attr-defined]
        complete = {"tandem-gateway", "tandem-core"} <= services and "tandem.inference" in names
        return spans if complete else None

    # The exporters batch and flush every few seconds.
    spans = wait_for(f"trace {trace_id} from both services", arrived, 60)
    core_server = assert_request_chain(spans, trace_id)
    mine = [s for s in spans if s.trace_id == trace_id]  # type: ignore[attr-defined]
    print(f"trace {trace_id}: {len(mine)} spans, core server span {core_server.name}")
