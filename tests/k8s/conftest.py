"""The Kubernetes e2e suite: the chart's release on a real cluster.

Runs against the current kube-context (KUBECONFIG): CI's own cluster
(`make e2e-k8s`, ci/cluster/README.md) or kind/minikube after `make deploy`. The
release must already be installed (`make cluster-install` or `make deploy`);
the suite then applies values-e2e.yaml to it with `helm upgrade
--reuse-values` (both models, two cores per pool sized for a 2-CPU node,
no per-client rate limit) and rolls the release back to where it was at the end.

Traffic to the services goes through 127.0.0.1 only: `kubectl port-forward`,
and the API server's pod proxy. Load comes from pods inside the release's
namespace (kube.LoadRun), bounded in requests and time.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from tandem_devkit.reference import load_reference

from .kube import PortForward, Release

REPO = Path(__file__).resolve().parents[2]
E2E_VALUES = Path(__file__).resolve().parent / "values-e2e.yaml"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tandem-k8s")
    group.addoption("--namespace", default="tandem", help="namespace of the release under test")
    group.addoption("--release", default="tandem", help="Helm release under test")
    group.addoption("--helm", default=os.environ.get("HELM", "helm"), help="helm binary")
    group.addoption(
        "--kubectl",
        default=os.environ.get("KUBECTL", "kubectl"),
        help="kubectl binary (port-forward)",
    )
    group.addoption(
        "--chart",
        default=str(REPO / "deploy" / "helm" / "tandem"),
        help="the chart the release uses",
    )
    group.addoption(
        "--prometheus-image",
        default="",
        help="a Prometheus image the cluster has (make prometheus-image-archive); "
        "without it the dashboard and alert checks are skipped",
    )
    group.addoption(
        "--no-restore", action="store_true", help="leave values-e2e.yaml applied at the end"
    )


@pytest.fixture(scope="session")
def reference() -> dict[str, Any]:
    """Vectors made with the official sentence-transformers pipeline (../shared)."""
    try:
        return load_reference()
    except FileNotFoundError as err:
        pytest.fail(str(err))


@pytest.fixture(scope="session")
def release(pytestconfig: pytest.Config) -> Iterator[Release]:
    opt = pytestconfig.getoption
    for tool in (opt("--helm"), opt("--kubectl")):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found (pass --helm / --kubectl)")
    config.load_kube_config()
    r = Release(
        namespace=opt("--namespace"),
        name=opt("--release"),
        helm=opt("--helm"),
        kubectl=opt("--kubectl"),
        chart=Path(opt("--chart")),
        api=client.ApiClient(),
    )
    try:
        before = r.revision()
    except AssertionError as e:
        pytest.fail(
            f"release {r.name} not found in namespace {r.namespace}: install it first "
            f"(make cluster-install, or make deploy)\n{e}"
        )
    try:
        r.run_helm("upgrade", r.name, str(r.chart), "--reuse-values", "-f", str(E2E_VALUES),
                   "--wait", "--timeout", "5m")  # fmt: skip
        r.settled()
        # A gateway resolves the cores' headless Service when it starts and
        # when a connection to a core ends; it does not poll DNS. Started now,
        # after the cores are ready, it knows both: every run begins the same
        # way (ci/cluster/README.md, "What the suite found").
        r.restart("gateway")
        r.serving()
        yield r
    finally:
        if not opt("--no-restore"):
            r.run_helm("rollback", r.name, str(before), "--wait", "--timeout", "5m")


@pytest.fixture
def settled(release: Release) -> Release:
    """The release with every pod ready and nothing rolling: the start of each disruptive test."""
    wanted = [("gateway", None, 1)] + [("core", p.name, 2) for p in release.pools()]
    for component, pool, want in wanted:
        name = release.deployment_name(component, pool)
        if release.apps.read_namespaced_deployment(name, release.namespace).spec.replicas != want:
            release.scale(component, want, pool)
    release.settled()
    # Each gateway answers, so no state left by an earlier test (a core
    # still busy after an overload) counts against the next one.
    release.serving()
    return release


@pytest.fixture(scope="module")
def gateway(release: Release) -> Iterator[PortForward]:
    """The gateway's Service, forwarded to 127.0.0.1."""
    port = int(release.values()["gateway"]["service"]["port"])
    with PortForward(release, f"service/{release.service_name('gateway')}", port) as pf:
        yield pf


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Quick, non-disruptive checks first; the disruptive ones last.
    order = [
        "test_release",
        "test_gateway_api",
        "test_core_readiness",
        "test_balancing",
        "test_resources",
        "test_abuse",
        "test_disruption",
        "test_tracing",
        "test_network_policy",
        "test_autoscaling",
    ]

    def key(item: pytest.Item) -> int:
        name = Path(str(item.fspath)).stem
        return order.index(name) if name in order else len(order)

    items.sort(key=key)
