"""The Grafana dashboard ConfigMap (dashboards.*) and the ServiceMonitor
relabelings that give the dashboard's queries their labels
(docs/observability.md)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.chart.helm import (
    CHART,
    KUBE_VERSIONS,
    RELEASE,
    Manifest,
    RenderError,
    render,
    render_chart,
    render_error,
)

DASHBOARD = CHART / "dashboards" / "tandem.json"
NAME = f"{RELEASE}-dashboards"
# What the API server accepts in one ConfigMap, data and metadata together.
CONFIGMAP_LIMIT = 1024 * 1024
# The template's bound on the JSON, leaving the metadata 48 KiB.
JSON_LIMIT = 1_000_000


def dashboard_configmap(**values: object) -> Manifest:
    rendered = render(values={"dashboards": {"enabled": True, **values}})
    return rendered.one("ConfigMap", NAME)


def test_off_by_default() -> None:
    assert NAME not in {c["metadata"]["name"] for c in render().all("ConfigMap")}


def test_on_it_carries_the_checked_in_json_and_the_sidecars_label() -> None:
    configmap = dashboard_configmap()
    labels = configmap["metadata"]["labels"]
    assert labels["grafana_dashboard"] == "1"
    assert labels["app.kubernetes.io/instance"] == RELEASE
    assert "annotations" not in configmap["metadata"]
    assert list(configmap["data"]) == ["tandem.json"]
    text = configmap["data"]["tandem.json"]
    assert text == DASHBOARD.read_text(), "the ConfigMap holds the file byte for byte"
    dashboard = json.loads(text)
    assert dashboard["uid"] == "tandem"
    assert dashboard["panels"]


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_the_configmap_is_valid_kubernetes(kube_version: str) -> None:
    kubernetes_validate.validate(dashboard_configmap(), kube_version, strict=True)


def test_label_value_and_annotations_are_configurable() -> None:
    configmap = dashboard_configmap(
        label="grafana.example.com/dashboard",
        labelValue="tandem",
        annotations={"grafana_folder": "Tandem"},
    )
    labels = configmap["metadata"]["labels"]
    assert labels["grafana.example.com/dashboard"] == "tandem"
    assert "grafana_dashboard" not in labels
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "Tandem"}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"label": "a/b/c"}, "/dashboards/label"),
        ({"label": "-starts-with-dash"}, "/dashboards/label"),
        ({"label": "x" * 64}, "/dashboards/label"),
        ({"labelValue": "has space"}, "/dashboards/labelValue"),
        ({"labelValue": 1}, "/dashboards/labelValue"),
        ({"annotations": {"grafana_folder": 1}}, "/dashboards/annotations"),
        ({"folder": "Tandem"}, "folder"),
    ],
)
def test_the_schema_refuses_what_kubernetes_would(values: dict[str, object], message: str) -> None:
    assert message in render_error(values={"dashboards": {"enabled": True, **values}})


def test_the_whole_configmap_fits_the_api_servers_limit() -> None:
    size = len(DASHBOARD.read_bytes())
    assert size <= JSON_LIMIT, f"the dashboard is {size} bytes"
    manifest = yaml.safe_dump(dashboard_configmap()).encode()
    assert len(manifest) < CONFIGMAP_LIMIT


def _with_dashboard_of(size: int, tmp_path: Path) -> Path:
    chart = tmp_path / "tandem"
    shutil.copytree(CHART, chart)
    body = '{"padding": "' + "x" * (size - len('{"padding": ""}\n')) + '"}\n'
    assert len(body) == size
    (chart / "dashboards" / "tandem.json").write_text(body)
    return chart


def test_a_dashboard_at_the_bound_renders_and_one_byte_more_is_refused(tmp_path: Path) -> None:
    values = {"dashboards": {"enabled": True}}
    at_bound = render_chart(_with_dashboard_of(JSON_LIMIT, tmp_path / "at"), values, [])
    (configmap,) = [c for c in at_bound.all("ConfigMap") if c["metadata"]["name"] == NAME]
    assert len(configmap["data"]["tandem.json"]) == JSON_LIMIT
    assert len(yaml.safe_dump(configmap).encode()) < CONFIGMAP_LIMIT
    with pytest.raises(RenderError, match="1000001 bytes: a ConfigMap holds at most 1 MiB"):
        render_chart(_with_dashboard_of(JSON_LIMIT + 1, tmp_path / "over"), values, [])


def _prometheus_label(kubernetes_label: str) -> str:
    """How Kubernetes service discovery names a Service label's meta label."""
    return "__meta_kubernetes_service_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", kubernetes_label)


def test_service_monitors_give_every_series_release_and_component() -> None:
    rendered = render(values={"serviceMonitor": {"enabled": True}})
    for component in ("core", "gateway"):
        monitor = rendered.one("ServiceMonitor", f"{RELEASE}-{component}")
        (endpoint,) = monitor["spec"]["endpoints"]
        targets = {r["targetLabel"]: r["sourceLabels"] for r in endpoint["relabelings"]}
        assert targets == {
            "release": [_prometheus_label("app.kubernetes.io/instance")],
            "component": [_prometheus_label("app.kubernetes.io/component")],
        }
        # The Services the monitor selects carry those labels with the values
        # the dashboard's queries select on.
        selector = monitor["spec"]["selector"]["matchLabels"]
        services = [
            s
            for s in rendered.all("Service")
            if selector.items() <= s["metadata"]["labels"].items()
        ]
        assert services
        for service in services:
            labels = service["metadata"]["labels"]
            assert labels["app.kubernetes.io/instance"] == RELEASE
            assert labels["app.kubernetes.io/component"] == component
