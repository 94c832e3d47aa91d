"""Objects that refer to each other agree: Services select the right pods and
name ports that exist, the gateway's upstream is the core's headless Service,
and every object carries the app.kubernetes.io labels."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.chart.helm import NAMESPACE, SCENARIOS, Rendered, render

RECOMMENDED_LABELS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
}
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def pods_selected(rendered: Rendered, selector: dict[str, str]) -> list[dict[str, Any]]:
    templates = [d["spec"]["template"] for d in rendered.all("Deployment")]
    return [t for t in templates if selector.items() <= t["metadata"]["labels"].items()]


def test_core_grpc_service_is_headless() -> None:
    rendered = render()
    headless = rendered.one("Service", "tandem-core-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert [p["name"] for p in headless["spec"]["ports"]] == ["grpc"]
    # Loading cores are resolved too (the gateway's health checks skip them), so a
    # gateway learns of a replacement core at its next resolution, not minutes later.
    assert headless["spec"]["publishNotReadyAddresses"] is True
    # The ClusterIP Service carries HTTP only: no gRPC through a virtual IP.
    assert [p["name"] for p in rendered.one("Service", "tandem-core")["spec"]["ports"]] == ["http"]


def test_core_metrics_have_a_service_of_their_own() -> None:
    rendered = render(values={"core": {"ports": {"metrics": 9200}}})
    service = rendered.one("Service", "tandem-core-metrics")
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("metrics", 9200, "metrics")
    ]
    assert service["spec"]["type"] == "ClusterIP"
    assert rendered.env("core")["TANDEM_CORE_METRICS_PORT"] == "9200"
    ports = {p["name"]: p["containerPort"] for p in rendered.container("core")["ports"]}
    assert ports == {"grpc": 50051, "http": 8000, "metrics": 9200}
    # Exposing the REST API never exposes metrics, and the reverse.
    api = rendered.one("Service", "tandem-core")
    assert "metrics" not in {p["name"] for p in api["spec"]["ports"]}


def test_service_monitors_scrape_the_metrics_ports() -> None:
    """One ServiceMonitor per component; the core's finds every pool's metrics Service."""
    rendered = render(values={"serviceMonitor": {"enabled": True}})
    monitors = {m["metadata"]["name"]: m for m in rendered.all("ServiceMonitor")}
    assert set(monitors) == {"tandem-core", "tandem-gateway"}
    for component, monitor in (
        ("core", monitors["tandem-core"]),
        ("gateway", monitors["tandem-gateway"]),
    ):
        (endpoint,) = monitor["spec"]["endpoints"]
        assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
        selector = monitor["spec"]["selector"]["matchLabels"]
        with_port = [
            s["metadata"]["name"]
            for s in rendered.all("Service")
            if selector.items() <= s["metadata"]["labels"].items()
            and "metrics" in {p["name"] for p in s["spec"]["ports"]}
        ]
        want = (
            ["tandem-core-int8-metrics", "tandem-core-metrics"]
            if component == "core"
            else ["tandem-gateway-metrics"]
        )
        assert sorted(with_port) == want, "exactly the metrics Services yield targets"
    # The series carry the pool: the Service label the core's monitor copies exists.
    assert monitors["tandem-core"]["spec"]["targetLabels"] == ["tandem/pool"]
    for name in ("tandem-core-metrics", "tandem-core-int8-metrics"):
        assert "tandem/pool" in rendered.one("Service", name)["metadata"]["labels"]


def upstream_pools(rendered: Rendered, configmap: str = "tandem-gateway") -> dict[str, str]:
    """TANDEM_GATEWAY_UPSTREAM_POOLS as {model id: target} (the agreed format:
    comma-separated "<model id>=<gRPC target URI>" pairs)."""
    value = rendered.one("ConfigMap", configmap)["data"]["TANDEM_GATEWAY_UPSTREAM_POOLS"]
    pairs = [p.split("=", 1) for p in value.split(",")]
    assert all(len(p) == 2 for p in pairs), value
    return dict(pairs)


def test_gateway_upstreams_are_each_pools_headless_service_through_dns() -> None:
    rendered = render()
    assert "TANDEM_GATEWAY_UPSTREAM_TARGET" not in rendered.env("gateway")
    pools = upstream_pools(rendered)
    assert list(pools) == ["all-MiniLM-L6-v2", "all-MiniLM-L6-v2-int8"]
    for model, target in pools.items():
        match = re.fullmatch(r"dns:///([^.]+)\.([^.]+)\.svc\.cluster\.local:(\d+)", target)
        assert match, f"{target} is not dns:///<service>.<namespace>.svc.cluster.local:<port>"
        service = rendered.one("Service", match.group(1))
        assert service["spec"]["clusterIP"] == "None", "the upstream must be the headless Service"
        assert match.group(2) == NAMESPACE
        assert int(match.group(3)) == service["spec"]["ports"][0]["port"] == 50051
        # The Service selects exactly the pods that serve this model.
        (pod,) = pods_selected(rendered, service["spec"]["selector"])
        env = rendered.env(
            next(
                d["metadata"]["name"].removeprefix("tandem-")
                for d in rendered.all("Deployment")
                if d["spec"]["template"] is pod
            )
        )
        want = "int8" if model.endswith("-int8") else "fp32"
        assert env["TANDEM_CORE_PRECISION"] == want, (model, env["TANDEM_CORE_PRECISION"])


def test_upstream_follows_release_namespace_and_cluster_domain() -> None:
    rendered = render(values={"clusterDomain": "corp.example"}, release="edge", namespace="ml")
    assert upstream_pools(rendered, "edge-tandem-gateway") == {
        "all-MiniLM-L6-v2": "dns:///edge-tandem-core-headless.ml.svc.corp.example:50051",
        "all-MiniLM-L6-v2-int8": "dns:///edge-tandem-core-int8-headless.ml.svc.corp.example:50051",
    }
    rendered.one("Service", "edge-tandem-core-headless")
    rendered.one("Service", "edge-tandem-core-int8-headless")


def test_model_id_override_and_a_single_model_release() -> None:
    rendered = render(values={"models": [{"name": "main", "precision": "fp32", "modelId": "mini"}]})
    assert upstream_pools(rendered) == {
        "mini": f"dns:///tandem-core-headless.{NAMESPACE}.svc.cluster.local:50051"
    }
    # One pool: exactly the objects (and names) a single-model release had.
    assert sorted(d["metadata"]["name"] for d in rendered.all("Deployment")) == [
        "tandem-core",
        "tandem-gateway",
    ]


@pytest.mark.parametrize("values_file", SCENARIOS, ids=lambda p: p.name)
def test_services_select_one_component_and_name_its_ports(values_file: Path) -> None:
    rendered = render(values_file)
    for service in rendered.all("Service"):
        selected = pods_selected(rendered, service["spec"]["selector"])
        assert len(selected) == 1, (
            f"{service['metadata']['name']} selects {len(selected)} Deployments"
        )
        container_ports = {p["name"] for c in selected[0]["spec"]["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports, (service["metadata"]["name"], port)


@pytest.mark.parametrize("values_file", SCENARIOS, ids=lambda p: p.name)
def test_every_object_has_the_recommended_labels(values_file: Path) -> None:
    for doc in render(values_file).docs:
        labels = doc["metadata"]["labels"]
        assert set(labels) >= RECOMMENDED_LABELS, f"{doc['kind']}/{doc['metadata']['name']}"
        assert labels["app.kubernetes.io/part-of"] == "tandem"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        if doc["kind"] == "Deployment":
            pod_labels = doc["spec"]["template"]["metadata"]["labels"]
            assert set(pod_labels) >= RECOMMENDED_LABELS
            assert doc["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_selectors_do_not_change_with_the_version() -> None:
    """A Deployment's selector is immutable: it must not contain the version. A core
    pool's also has its pool, so that no two Deployments select the same pods."""
    for deployment in render().all("Deployment"):
        component = deployment["spec"]["template"]["metadata"]["labels"][
            "app.kubernetes.io/component"
        ]
        assert set(deployment["spec"]["selector"]["matchLabels"]) == {
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/component",
            *(["tandem/pool"] if component == "core" else []),
        }


def test_long_release_names_still_give_valid_distinct_names() -> None:
    rendered = render(release="a-very-long-release-name-for-a-team-that-likes-words")
    names = [(d["kind"], d["metadata"]["name"]) for d in rendered.docs]
    assert len(set(names)) == len(names), "names collide after truncation"
    for kind, name in names:
        assert len(name) <= 63, (kind, name)
        assert DNS_1035_LABEL.match(name), (kind, name)
    assert any(name.endswith("-core-headless") for _, name in names), "suffixes survive"


def test_settings_change_rolls_the_pods() -> None:
    """Settings are read at start-up, so a changed ConfigMap must change the pod template."""

    def checksum(rendered: Rendered, component: str) -> str:
        annotations = rendered.deployment(component)["spec"]["template"]["metadata"]["annotations"]
        return str(annotations["checksum/config"])

    before = render()
    after = render(
        values={
            "gateway": {"settings": {"rateLimitRps": 10}},
            "core": {"settings": {"maxBatchSize": 16}},
        }
    )
    assert checksum(before, "gateway") != checksum(after, "gateway")
    assert checksum(before, "core") != checksum(after, "core")


def test_extra_settings_reach_the_configmaps() -> None:
    rendered = render(
        values={
            "gateway": {"extraSettings": {"TANDEM_GATEWAY_UPSTREAM_MAX_DIMENSION": "768"}},
            "core": {"extraSettings": {"TANDEM_CORE_MAX_QUEUE_TEXTS": "2048"}},
        }
    )
    assert rendered.env("gateway")["TANDEM_GATEWAY_UPSTREAM_MAX_DIMENSION"] == "768"
    assert rendered.env("core")["TANDEM_CORE_MAX_QUEUE_TEXTS"] == "2048"


def test_topology_spread_defaults_to_the_components_pods() -> None:
    rendered = render(SCENARIOS[[p.name for p in SCENARIOS].index("replicas-values.yaml")])
    for component in ("gateway", "core"):
        spec = rendered.deployment(component)["spec"]["template"]["spec"]
        selector = rendered.deployment(component)["spec"]["selector"]
        for constraint in spec["topologySpreadConstraints"]:
            assert constraint["labelSelector"] == selector
            assert constraint["matchLabelKeys"] == ["pod-template-hash"]
