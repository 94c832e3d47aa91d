"""The chart's NetworkPolicies, enforced: each allowed path answers, each other one is dropped.

The release is upgraded with networkPolicy.enabled (templates/networkpolicies.yaml):
the core takes gRPC only from the release's gateways and its metrics only from
networkPolicy.metricsFrom, its HTTP API from nobody; the gateway takes its API
from networkPolicy.apiFrom (everyone when empty) and its metrics from metricsFrom.
Probe pods (the core image's Python, restricted Pod Security) connect to the
pods' addresses with a 3 s connect timeout, from a namespace this module creates
and deletes, and, as the gateway, from the release's namespace. Every path is
checked both ways: before the policies exist everything answers (so a refusal
is the policy's doing, not a wrong port), and with them each outcome must be
exactly the expected one, so the test fails on a cluster that does not enforce
NetworkPolicy (ci/cluster runs kube-network-policies, which kind's default
kindnet also enforces with).
"""

from __future__ import annotations

import json
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client import V1Pod
from kubernetes.stream import stream

from .kube import (
    RESTRICTED_CONTAINER_SECURITY,
    RESTRICTED_POD_SECURITY,
    PortForward,
    Release,
    wait_for,
)

ROLE = "tandem-e2e/role"
CONNECT_TIMEOUT = 3.0
ANSWERED, DROPPED = "answered", "timeout"

# Run in a probe pod: connect to each target and say what happened. "answered"
# means the server spoke its protocol (an HTTP status line, or for gRPC the
# server's HTTP/2 SETTINGS frame after our preface); "timeout" means the
# connection was never established (a dropped SYN); anything else is an error
# and fails the test (a refused connection is not a policy: policies drop).
PROBE = r"""
import json, socket, sys, time
timeout = float(sys.argv[1])
def probe(host, port, kind, path):
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError:
        return "timeout", ""
    except OSError as e:
        return "error", repr(e)
    with s:
        s.settimeout(timeout)
        try:
            if kind == "grpc":
                s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
                head = s.recv(9)
                ok = len(head) == 9 and head[3] == 4
                return ("answered" if ok else "error"), "h2 frame " + head.hex()
            req = "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, host)
            s.sendall(req.encode())
            line = s.makefile("rb").readline(200).decode(errors="replace").strip()
            return ("answered" if line.startswith("HTTP/1.") else "error"), line
        except OSError as e:
            return "error", "after connect: " + repr(e)
out = []
for t in json.loads(sys.argv[2]):
    start = time.monotonic()
    outcome, detail = probe(t["host"], t["port"], t["kind"], t["path"])
    ms = round((time.monotonic() - start) * 1000)
    out.append({**t, "outcome": outcome, "detail": detail, "ms": ms})
print("PROBE " + json.dumps(out))
"""


@dataclass(frozen=True)
class Target:
    """One port of one pod of the release."""

    name: str  # e.g. "core grpc"
    host: str
    port: int
    kind: str  # "grpc" or "http"
    path: str = "/"


@dataclass
class Setup:
    release: Release
    other: str  # the namespace this module created
    targets: dict[str, Target]
    probes: dict[str, tuple[str, str]]  # probe name -> (namespace, pod)
    as_gateway: str  # the probe pod with the gateway's labels


def _port(pod: V1Pod, name: str) -> int:
    for p in pod.spec.containers[0].ports or []:
        if p.name == name:
            return int(p.container_port)
    raise AssertionError(f"{pod.metadata.name} has no port named {name}")


def _targets(release: Release) -> dict[str, Target]:
    core, gateway = release.pods("core")[0], release.pods("gateway")[0]
    c, g = core.status.pod_ip, gateway.status.pod_ip
    targets = [
        Target("core grpc", c, _port(core, "grpc"), "grpc"),
        Target("core http", c, _port(core, "http"), "http", "/healthz"),
        Target("core metrics", c, _port(core, "metrics"), "http", "/metrics"),
        Target("gateway http", g, _port(gateway, "http"), "http", "/healthz"),
        Target("gateway metrics", g, _port(gateway, "metrics"), "http", "/metrics"),
    ]
    return {t.name: t for t in targets}


def _probe_pod(name: str, image: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "tandem-e2e", **labels}},
        "spec": {
            "restartPolicy": "Never",
            # Bounded even if the teardown never runs.
            "activeDeadlineSeconds": 1800,
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": False,
            "securityContext": RESTRICTED_POD_SECURITY,
            "containers": [
                {
                    "name": "probe",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python", "-c", "import time; time.sleep(1800)"],
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "32Mi"},
                        "limits": {"cpu": "200m", "memory": "64Mi"},
                    },
                    "securityContext": RESTRICTED_CONTAINER_SECURITY,
                }
            ],
        },
    }


def _run(setup: Setup, probe: str, names: list[str]) -> dict[str, dict[str, Any]]:
    """Probe the named targets from one probe pod; print and return each outcome."""
    namespace, pod = setup.probes[probe]
    targets = [vars(setup.targets[n]) for n in names]
    out: str = stream(
        setup.release.core.connect_get_namespaced_pod_exec,
        pod,
        namespace,
        command=["python", "-c", PROBE, str(CONNECT_TIMEOUT), json.dumps(targets)],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _request_timeout=30 + CONNECT_TIMEOUT * 2 * len(names),
    )
    line = next((x for x in out.splitlines() if x.startswith("PROBE ")), None)
    assert line, f"probe from {pod} printed no result:\n{out}"
    results = {r["name"]: r for r in json.loads(line.removeprefix("PROBE "))}
    for r in results.values():
        print(f"  {probe:>10} -> {r['name']:<16} {r['outcome']:<8} {r['ms']:>5} ms  {r['detail']}")
    return results


def _expect(setup: Setup, probe: str, expected: dict[str, str]) -> None:
    results = _run(setup, probe, list(expected))
    got = {name: results[name]["outcome"] for name in expected}
    assert got == expected, f"from {probe}: {got} != expected {expected}"


def _enforced(setup: Setup, probe: str, dropped: str) -> None:
    """Wait (bounded) until the engine knows the probe pod's address: a new pod's
    first packets can pass before its IP reaches the policy engine (ci/cluster
    runs kube-network-policies without NRI, so it learns pod IPs from the API)."""
    wait_for(
        f"{dropped} to be dropped for {probe}",
        lambda: _run(setup, probe, [dropped])[dropped]["outcome"] == DROPPED,
        60,
        interval=0.5,
    )


def _upgrade(release: Release, values: dict[str, Any]) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(values, f)  # JSON is YAML: a values file
        f.flush()
        release.run_helm("upgrade", release.name, str(release.chart), "--reuse-values",
                         "-f", f.name, "--wait", "--timeout", "5m")  # fmt: skip


def _peers(namespace: str, role: str) -> list[dict[str, Any]]:
    return [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "podSelector": {"matchLabels": {ROLE: role}},
        }
    ]


@pytest.fixture(scope="module")
def setup(release: Release) -> Iterator[Setup]:
    r = release
    before = r.revision()
    already = bool(r.values().get("networkPolicy", {}).get("enabled"))
    other = f"tandem-e2e-netpol-{secrets.token_hex(3)}"
    image = r.pods("core")[0].spec.containers[0].image
    # Looks like a gateway to the policies (the gateway's selector labels) but
    # never turns Ready (a readiness gate nobody sets), so no Service sends it
    # traffic and the ReplicaSet (selector with pod-template-hash) ignores it.
    gateway_labels = dict(
        r.apps.read_namespaced_deployment(
            r.deployment_name("gateway"), r.namespace
        ).spec.selector.match_labels
    )
    as_gateway = f"e2e-as-gateway-{secrets.token_hex(3)}"
    # Before that pod exists: it carries the gateway's labels.
    targets = _targets(r)
    probes = {
        "outsider": (other, "outsider"),
        "scraper": (other, "scraper"),
        "api-client": (other, "api-client"),
        "as-gateway": (r.namespace, as_gateway),
    }
    r.core.create_namespace(
        {
            "metadata": {
                "name": other,
                "labels": {
                    "app.kubernetes.io/part-of": "tandem-e2e",
                    "pod-security.kubernetes.io/enforce": "restricted",
                },
            }
        }
    )
    try:
        for role in ("outsider", "scraper", "api-client"):
            r.core.create_namespaced_pod(other, _probe_pod(role, image, {ROLE: role}))
        pod = _probe_pod(as_gateway, image, gateway_labels)
        pod["spec"]["readinessGates"] = [{"conditionType": "tandem-e2e/never"}]
        r.core.create_namespaced_pod(r.namespace, pod)
        for namespace, name in probes.values():

            def running(ns: str = namespace, n: str = name) -> bool:
                phase = r.core.read_namespaced_pod(n, ns).status.phase
                assert phase not in ("Failed", "Succeeded"), f"{ns}/{n} ended: {phase}"
                return bool(phase == "Running")

            wait_for(f"{namespace}/{name} to run", running, 120)
        s = Setup(r, other, targets, probes, as_gateway)

        # Without policies every path answers: what the policies later drop
        # is reachable, on the right port.
        if already:
            print("networkPolicy already enabled in the release: no baseline without policies")
        else:
            print("baseline, no NetworkPolicy:")
            for probe in probes:
                _expect(s, probe, {name: ANSWERED for name in s.targets})

        _upgrade(r, {"networkPolicy": {"enabled": True, "apiFrom": [],
                                       "metricsFrom": _peers(other, "scraper")}})  # fmt: skip
        for probe in probes:
            _enforced(s, probe, "core http")
        yield s
    finally:
        # Always back to where this module started, also under --no-restore: a
        # policy that admits only this module's pods would refuse the next
        # tests' clients.
        try:
            r.core.delete_namespaced_pod(as_gateway, r.namespace, grace_period_seconds=0)
        except client.ApiException as e:
            if e.status != 404:
                raise
        r.core.delete_namespace(other)
        r.run_helm("rollback", r.name, str(before), "--wait", "--timeout", "5m")


def test_another_namespace_reaches_only_the_gateway_api(setup: Setup) -> None:
    print("outsider (another namespace, no role):")
    _expect(
        setup,
        "outsider",
        {
            "core grpc": DROPPED,
            "core http": DROPPED,
            "core metrics": DROPPED,
            "gateway http": ANSWERED,  # apiFrom is empty: everyone
            "gateway metrics": DROPPED,
        },
    )


def test_gateways_reach_the_cores_grpc_only(setup: Setup) -> None:
    print("as-gateway (the gateway's labels, the release's namespace):")
    _expect(
        setup,
        "as-gateway",
        {
            "core grpc": ANSWERED,
            "core http": DROPPED,
            "core metrics": DROPPED,
        },
    )
    # And the real path: each gateway pod serves every model, over gRPC to its cores.
    r = setup.release
    port = setup.targets["gateway http"].port
    models = [p.model for p in r.pools()]
    for pod in r.pods("gateway"):
        if pod.metadata.name == setup.as_gateway:
            continue
        with PortForward(r, f"pod/{pod.metadata.name}", port) as pf:
            for model in models:
                body = {"model": model, "input": "policed"}
                reply = httpx.post(f"{pf.url}/v1/embeddings", json=body, timeout=30)
                print(f"  {pod.metadata.name} -> {model}: {reply.status_code}")
                assert reply.status_code == 200, reply.text


def test_metrics_from_scrapes_metrics_but_not_the_embedding_api(setup: Setup) -> None:
    print("scraper (matches metricsFrom):")
    _expect(
        setup,
        "scraper",
        {
            "core metrics": ANSWERED,
            "gateway metrics": ANSWERED,
            "core http": DROPPED,
            "core grpc": DROPPED,
        },
    )


def test_api_from_admits_only_its_clients(setup: Setup) -> None:
    r = setup.release
    _upgrade(r, {"networkPolicy": {"apiFrom": _peers(setup.other, "api-client")}})
    print("apiFrom set to the api-client role:")
    _enforced(setup, "outsider", "gateway http")
    _expect(setup, "api-client", {"gateway http": ANSWERED, "gateway metrics": DROPPED})
    _expect(setup, "outsider", {"gateway http": DROPPED})
    _expect(setup, "scraper", {"gateway http": DROPPED, "gateway metrics": ANSWERED})
