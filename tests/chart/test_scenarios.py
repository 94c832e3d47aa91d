"""Every ci/ scenario renders, and every object it renders is valid Kubernetes.

Validation is strict and offline: each manifest is checked against the API
schemas of the oldest and the newest Kubernetes the chart supports, with
additional properties forbidden, so a misspelled or misplaced field fails
(the schemas ship in the kubernetes-validate package). The objects that
are not Kubernetes API types are checked against their CRDs: the KEDA
ScaledObject against the CRD of the KEDA the CI cluster runs (strict), the
Prometheus Operator ServiceMonitor against the fields of its CRD that the
chart uses.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from tests.chart.helm import (
    KUBE_VERSIONS,
    SCENARIOS,
    Rendered,
    keda_scaled_object_schema,
    render,
    scenario,
)

# The ServiceMonitor fields the chart renders, by level (monitoring.coreos.com/v1).
SERVICE_MONITOR_FIELDS = {
    "": {"apiVersion", "kind", "metadata", "spec"},
    "spec": {"selector", "namespaceSelector", "endpoints", "targetLabels"},
    "spec.namespaceSelector": {"matchNames"},
    "spec.endpoints[]": {"port", "path", "interval", "scrapeTimeout", "relabelings"},
    "spec.endpoints[].relabelings[]": {"sourceLabels", "targetLabel"},
}


def validate(doc: dict[str, Any], kube_version: str) -> None:
    if doc["kind"] == "ServiceMonitor":
        check_service_monitor(doc)
    elif doc["kind"] == "PrometheusRule":
        check_prometheus_rule(doc)
    elif doc["kind"] == "ScaledObject":
        jsonschema.validate(doc, keda_scaled_object_schema())
    else:
        kubernetes_validate.validate(doc, kube_version, strict=True)


def check_service_monitor(doc: dict[str, Any]) -> None:
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(doc) <= SERVICE_MONITOR_FIELDS[""]
    spec = doc["spec"]
    assert set(spec) <= SERVICE_MONITOR_FIELDS["spec"]
    assert set(spec["namespaceSelector"]) <= SERVICE_MONITOR_FIELDS["spec.namespaceSelector"]
    assert spec["selector"]["matchLabels"]
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= SERVICE_MONITOR_FIELDS["spec.endpoints[]"]
        assert isinstance(endpoint["port"], str), "endpoints select Service ports by name"
        for relabeling in endpoint.get("relabelings", []):
            assert set(relabeling) <= SERVICE_MONITOR_FIELDS["spec.endpoints[].relabelings[]"]


def check_prometheus_rule(doc: dict[str, Any]) -> None:
    """monitoring.coreos.com/v1 PrometheusRule: the fields of its CRD the chart
    renders (tests/chart/test_prometheus_rule.py checks the rules themselves)."""
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(doc["spec"]) == {"groups"}
    for group in doc["spec"]["groups"]:
        assert set(group) == {"name", "rules"}
        for rule in group["rules"]:
            assert set(rule) <= {"record", "alert", "expr", "for", "labels", "annotations"}, rule


def test_there_are_scenarios_for_each_feature() -> None:
    names = {p.name.removesuffix("-values.yaml") for p in SCENARIOS}
    assert names >= {
        "default",
        "hpa-pdb",
        "networkpolicy",
        "explicit-resources",
        "replicas",
        "tracing",
        "two-models",
        "keda",
        "observability",
    }


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("values_file", SCENARIOS, ids=lambda p: p.name)
def test_scenario_renders_valid_objects(values_file: Path, kube_version: str) -> None:
    rendered = render(values_file, kube_version=kube_version)
    assert rendered.all("Deployment"), "every scenario deploys the services"
    for doc in rendered.docs:
        try:
            validate(doc, kube_version)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(
                f"{doc['kind']}/{doc['metadata']['name']} is invalid for Kubernetes "
                f"{kube_version} at {'.'.join(map(str, e.path))}: {e.message}"
            )


def test_validation_rejects_a_misspelled_field() -> None:
    """The check above can fail: the strict schemas refuse an unknown field."""
    deployment = copy.deepcopy(render().deployment("core"))
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["periodSecond"] = probe.pop("periodSeconds")
    for kube_version in KUBE_VERSIONS:
        with pytest.raises(kubernetes_validate.ValidationError, match="periodSecond"):
            validate(deployment, kube_version)


def test_validation_rejects_a_named_port_in_a_grpc_probe() -> None:
    """Native gRPC probes take a port number only; the schema knows it."""
    deployment = copy.deepcopy(render().deployment("core"))
    deployment["spec"]["template"]["spec"]["containers"][0]["startupProbe"]["grpc"]["port"] = "grpc"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment, KUBE_VERSIONS[0])


def kinds(rendered: Rendered) -> set[str]:
    return {d["kind"] for d in rendered.docs}


def test_default_install_is_small() -> None:
    """A laptop install: one pod of each, both models, no extras, about two CPUs in all."""
    rendered = render(scenario("default"))
    assert kinds(rendered) == {"ConfigMap", "Deployment", "Pod", "Service", "ServiceAccount"}
    assert [d["spec"]["replicas"] for d in rendered.all("Deployment")] == [1, 1, 1]
    assert {d["metadata"]["name"] for d in rendered.all("Deployment")} == {
        "tandem-core",
        "tandem-core-int8",
        "tandem-gateway",
    }
    cpu = sum(
        int(c["resources"]["requests"]["cpu"].removesuffix("m"))
        for d in rendered.all("Deployment")
        for c in d["spec"]["template"]["spec"]["containers"]
    )
    # Both pools, plus the surge core of a rollout, fit a 4-CPU laptop (values.yaml).
    assert cpu == 2100, cpu
    assert cpu + 1000 <= 4000


def test_scenarios_turn_on_what_they_are_named_for() -> None:
    hpa_pdb = render(scenario("hpa-pdb"))
    # The gateway's, and one per core pool (each inherits core.autoscaling and
    # core.podDisruptionBudget).
    assert len(hpa_pdb.all("HorizontalPodAutoscaler")) == 3
    assert len(hpa_pdb.all("PodDisruptionBudget")) == 3
    assert all("replicas" not in d["spec"] for d in hpa_pdb.all("Deployment")), (
        "with an HPA the Deployment must not set replicas, or every upgrade resets the scale"
    )
    assert len(render(scenario("networkpolicy")).all("NetworkPolicy")) == 2
    assert len(render(scenario("networkpolicy")).all("ServiceMonitor")) == 2
    replicas = render(scenario("replicas"))
    assert [d["spec"]["replicas"] for d in replicas.all("Deployment")] == [3, 3, 3]
    tracing = render(scenario("tracing"))
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in tracing.env("core")
    assert {"tandem-otel-collector", "tandem-jaeger"} <= {
        d["metadata"]["name"] for d in tracing.all("Deployment")
    }
    observability = render(scenario("observability"))
    assert len(observability.all("PrometheusRule")) == 1
    assert len(observability.all("ServiceMonitor")) == 2
    dashboards = [
        d
        for d in observability.all("ConfigMap")
        if d["metadata"]["labels"].get("grafana_dashboard")
    ]
    assert len(dashboards) == 1
    explicit = render(scenario("explicit-resources"))
    assert explicit.container("core")["resources"]["limits"]["memory"] == "640Mi"


def test_hpa_targets_the_deployments() -> None:
    rendered = render(scenario("hpa-pdb"))
    for hpa in rendered.all("HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment"
        rendered.one("Deployment", target["name"])
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_pdb_selects_its_component() -> None:
    rendered = render(scenario("hpa-pdb"))
    for pdb in rendered.all("PodDisruptionBudget"):
        deployment = rendered.one("Deployment", pdb["metadata"]["name"])
        assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
