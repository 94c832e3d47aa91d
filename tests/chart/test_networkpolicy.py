"""NetworkPolicy: the core accepts gRPC only from the gateway and its HTTP port
only from metrics scrapers; the gateway lets the helm test through."""

from __future__ import annotations

from typing import Any

from tests.chart.helm import Rendered, render, scenario


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
    assert metrics_rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert metrics_rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]


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
