"""NetworkPolicy: the core accepts gRPC only from the gateway, its metrics port
only from metrics scrapers and its HTTP API from nobody; the gateway lets the
helm test through."""

from __future__ import annotations

from typing import Any

from tests.chart.helm import Rendered, render, scenario

CORE_HTTP = 8000


def policy(rendered: Rendered, component: str) -> dict[str, Any]:
    spec: dict[str, Any] = rendered.one("NetworkPolicy", f"tandem-{component}")["spec"]
    return spec


def pod_labels(rendered: Rendered, component: str) -> dict[str, str]:
    labels: dict[str, str] = rendered.deployment(component)["spec"]["template"]["metadata"][
        "labels"
    ]
    return labels


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return bool(selector["matchLabels"].items() <= labels.items())


def test_core_accepts_grpc_only_from_the_gateway_and_metrics_only_from_scrapers() -> None:
    rendered = render(scenario("networkpolicy"))
    core = policy(rendered, "core")
    assert selects(core["podSelector"], pod_labels(rendered, "core"))
    assert core["policyTypes"] == ["Ingress"]
    grpc_rule, metrics_rule = core["ingress"]
    assert grpc_rule["ports"] == [{"port": "grpc", "protocol": "TCP"}]
    (peer,) = grpc_rule["from"]
    assert set(peer) == {"podSelector"}, "same namespace, gateway pods only"
    assert selects(peer["podSelector"], pod_labels(rendered, "gateway"))
    assert not selects(peer["podSelector"], pod_labels(rendered, "core"))
    # Scrapers reach /metrics and nothing else: not /v1/embed on the HTTP port.
    assert metrics_rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert metrics_rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]


def test_no_rule_admits_anyone_to_the_cores_http_api() -> None:
    for rendered in (
        render(scenario("networkpolicy")),
        render(values={"networkPolicy": {"enabled": True}}),
    ):
        ports = [p["port"] for rule in policy(rendered, "core")["ingress"] for p in rule["ports"]]
        assert "http" not in ports
        assert str(CORE_HTTP) not in map(str, ports)


def test_policy_port_names_exist_on_the_core_container() -> None:
    rendered = render(scenario("networkpolicy"))
    container = rendered.container("core")
    names = {p["name"] for p in container["ports"]}
    for rule in policy(rendered, "core")["ingress"]:
        assert {p["port"] for p in rule["ports"]} <= names


def test_without_scrapers_the_core_takes_only_gateway_traffic() -> None:
    rendered = render(values={"networkPolicy": {"enabled": True}})
    core = policy(rendered, "core")
    assert len(core["ingress"]) == 1
    assert core["ingress"][0]["ports"][0]["port"] == "grpc"
    # And the gateway's API is open to everyone (no `from`), metrics to no one.
    gateway = policy(rendered, "gateway")
    assert gateway["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]


def test_restricted_api_still_admits_the_helm_test() -> None:
    rendered = render(scenario("networkpolicy"))
    api_rule = policy(rendered, "gateway")["ingress"][0]
    test_pod = rendered.one("Pod", "tandem-test-embeddings")
    assert any(
        "podSelector" in peer and selects(peer["podSelector"], test_pod["metadata"]["labels"])
        for peer in api_rule["from"]
    )
