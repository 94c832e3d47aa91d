"""Autoscaling per core pool: mode hpa renders an autoscaling/v2 HPA on CPU, mode
keda a KEDA ScaledObject on the cores' queue-wait signal, each with the same
scaling behaviour; neither when off. The ScaledObject is validated against the
CRD of the KEDA the CI cluster runs (copied from the Go module proxy by `make
chart-tools`), strictly: unknown fields fail."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.chart.helm import (
    NAMESPACE,
    ROOT,
    Rendered,
    keda_scaled_object_schema,
    render,
    render_error,
)

SIGNAL = "tandem_core_queue_wait_estimate_seconds"
ZERO_PODS_POLICY = {"type": "Pods", "value": 0, "periodSeconds": 15}


def keda(**overrides: Any) -> dict[str, Any]:
    return {"core": {"autoscaling": {"enabled": True, "mode": "keda", **overrides}}}


def scaled_objects(rendered: Rendered) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in rendered.all("ScaledObject")}


def core_hpas(rendered: Rendered) -> list[str]:
    return [
        d["metadata"]["name"]
        for d in rendered.all("HorizontalPodAutoscaler")
        if "gateway" not in d["metadata"]["name"]
    ]


def test_off_by_default_renders_neither() -> None:
    rendered = render()
    assert not rendered.all("ScaledObject")
    assert not rendered.all("HorizontalPodAutoscaler")


def test_hpa_mode_scales_each_pool_on_cpu_with_the_behaviour() -> None:
    rendered = render(values={"core": {"autoscaling": {"enabled": True, "mode": "hpa"}}})
    assert not rendered.all("ScaledObject")
    assert sorted(core_hpas(rendered)) == ["tandem-core", "tandem-core-int8"]
    hpa = rendered.one("HorizontalPodAutoscaler", "tandem-core")["spec"]
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["behavior"]["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 120


def test_keda_mode_reads_the_signal_from_every_core_of_its_own_pool() -> None:
    rendered = render(values=keda(minReplicas=1, maxReplicas=4, targetQueueWaitSeconds=0.25))
    assert core_hpas(rendered) == [], "KEDA creates the HPA; the chart must not render a second"
    objects = scaled_objects(rendered)
    assert sorted(objects) == ["tandem-core", "tandem-core-int8"]
    for name, obj in objects.items():
        spec = obj["spec"]
        assert spec["scaleTargetRef"]["name"] == name
        assert rendered.one("Deployment", name)
        assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 4)
        assert spec["advanced"]["horizontalPodAutoscalerConfig"]["name"] == name
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "metrics-api"
        # Value: replicas follow ceil(replicas x average / target). AverageValue
        # would divide the (already per-core) average by the replica count.
        assert trigger["metricType"] == "Value"
        meta = trigger["metadata"]
        assert meta["valueLocation"] == SIGNAL
        assert meta["format"] == "prometheus"
        assert meta["aggregateFromKubeServiceEndpoints"] == "true"
        assert meta["aggregationType"] == "average"
        assert meta["targetValue"] == "0.25"
        # KEDA takes the Service and namespace from the host's first two labels
        # and the port must be the one the endpoints publish.
        service = rendered.one("Service", f"{name}-metrics")
        (port,) = service["spec"]["ports"]
        assert meta["url"] == f"http://{name}-metrics.{NAMESPACE}.svc:{port['port']}/metrics"
        assert port["targetPort"] == "metrics"
    deployments = [rendered.one("Deployment", name) for name in objects]
    assert all("replicas" not in d["spec"] for d in deployments), (
        "a Deployment that sets replicas is scaled back at every upgrade"
    )


def test_a_pool_can_choose_its_own_mode() -> None:
    rendered = render(
        values={
            "core": {"autoscaling": {"enabled": True, "mode": "hpa"}},
            "models": [
                {"name": "fp32", "precision": "fp32", "autoscaling": {"mode": "keda"}},
                {"name": "int8", "precision": "int8"},
            ],
        }
    )
    assert list(scaled_objects(rendered)) == ["tandem-core"]
    assert core_hpas(rendered) == ["tandem-core-int8"]


def test_the_network_policy_admits_the_autoscaler_to_the_metrics_port_only_with_keda() -> None:
    def rules(values: dict[str, Any]) -> list[dict[str, Any]]:
        policy = render(values={**values, "networkPolicy": {"enabled": True}}).one(
            "NetworkPolicy", "tandem-core"
        )
        ingress: list[dict[str, Any]] = policy["spec"]["ingress"]
        return ingress

    without = rules({"core": {"autoscaling": {"enabled": True, "mode": "hpa"}}})
    with_keda = rules(keda())
    (added,) = [r for r in with_keda if r not in without]
    assert added["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    (peer,) = added["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "keda"}
    assert peer["podSelector"]["matchLabels"] == {"app": "keda-operator"}


@pytest.mark.parametrize(
    ("autoscaling", "complaint"),
    [
        ({"mode": "prometheus"}, "mode"),
        ({"targetQueueWaitSeconds": 0}, "targetQueueWaitSeconds"),
        ({"minReplicas": 0}, "minReplicas"),
        ({"pollingIntervalSeconds": 0}, "pollingIntervalSeconds"),
        ({"behavior": {"scaleUp": {"policies": [ZERO_PODS_POLICY]}}}, "value"),
        ({"behavior": {"scaleDown": {"selectPolicy": "Sometimes"}}}, "selectPolicy"),
        ({"minReplicas": 5, "maxReplicas": 2}, "above maxReplicas"),
    ],
)  # fmt: skip
def test_bad_autoscaling_values_are_refused(autoscaling: dict[str, Any], complaint: str) -> None:
    message = render_error(values=keda(**autoscaling))
    assert complaint in message, message


def test_scaled_objects_are_valid_for_the_keda_crd() -> None:
    schema = keda_scaled_object_schema()
    for obj in scaled_objects(render(values=keda(minReplicas=1))).values():
        assert obj["apiVersion"] == "keda.sh/v1alpha1"
        jsonschema.validate(obj, schema)
    broken = copy.deepcopy(next(iter(scaled_objects(render(values=keda())).values())))
    broken["spec"]["triggers"][0]["metricsType"] = "Value"  # a misspelled field
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_the_crd_copy_is_not_in_the_repository() -> None:
    assert not list(Path(ROOT / "deploy").rglob("keda.sh_*.yaml"))
