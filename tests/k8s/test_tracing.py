"""A request in the cluster is one trace: gateway spans and core spans, connected.

An OTLP receiver runs in a pod of the namespace (otlp_sink.py, in the core
image), the release is upgraded to export to it (tracing.otlpEndpoint), and a
request through the gateway must arrive as one trace whose parent/child edges
cross from the gateway's HTTP span, through its gRPC client span, to the
core's server span and its stage spans: the same chain the local suite checks
(tests/e2e/test_tracing.py), here across pods.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_tracing import _assert_chain

from .kube import (
    RESTRICTED_CONTAINER_SECURITY,
    RESTRICTED_POD_SECURITY,
    PortForward,
    Release,
    wait_for,
)

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
HERE = Path(__file__).resolve().parent
SINK = "e2e-otlp"


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
                "otlp_sink.py": (HERE / "otlp_sink.py").read_text(),
                "otlp_receiver.py": (SCRIPTS / "otlp_receiver.py").read_text(),
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
                        "command": ["python", "/otlp/otlp_sink.py"],
                        "env": [{"name": "PYTHONPATH", "value": "/otlp"}],
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
        wait_for(
            f"{SINK} to be ready",
            lambda: any(
                c.type == "Ready" and c.status == "True"
                for c in (r.core.read_namespaced_pod(SINK, r.namespace).status.conditions or [])
            ),
            120,
        )
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


def _spans(release: Release) -> list[object]:
    from otlp_receiver import ReceivedSpan  # noqa: PLC0415 - scripts/ is on sys.path once tests.e2e is imported

    log = release.core.read_namespaced_pod_log(SINK, release.namespace)
    spans = []
    for line in log.splitlines():
        entry = json.loads(line)
        if "trace_id" in entry:
            entry["links"] = tuple(tuple(link) for link in entry["links"])
            spans.append(ReceivedSpan(**entry))
    return spans


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
    core_server = _assert_chain(spans, trace_id)
    mine = [s for s in spans if s.trace_id == trace_id]  # type: ignore[attr-defined]
    print(f"trace {trace_id}: {len(mine)} spans, core server span {core_server.name}")
