"""PrometheusRule: the SLO alerts are opt-in, select this release's series,
take their targets from the values, refuse a latency threshold that is not a
histogram bucket, and point every alert at a runbook section that exists.

What the alerts do with series is tested by promtool (make alerts-check,
observability/alerts/); here, what the chart renders from the values.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.chart.helm import ROOT, Manifest, render, render_error

GATEWAY_METRICS = ROOT / "go-gateway" / "internal" / "metrics" / "metrics.go"
DOCS = ROOT / "docs" / "observability.md"
ALERTS = {
    "TandemAvailabilityBudgetBurn",
    "TandemLatencyBudgetBurn",
    "TandemCoreAdmissionSaturated",
    "TandemGatewayThrottling",
    "TandemProcessRestarts",
    "TandemCoreReadinessFlapping",
    "TandemGatewayUpstreamReadinessFlapping",
}


def rule(values: dict[str, Any] | None = None, **kwargs: Any) -> Manifest:
    merged = {"prometheusRule": {"enabled": True, **(values or {})}}
    (found,) = render(values=merged, **kwargs).all("PrometheusRule")
    return found


def rules(manifest: Manifest) -> list[dict[str, Any]]:
    return [r for group in manifest["spec"]["groups"] for r in group["rules"]]


def alerts(manifest: Manifest, name: str) -> list[dict[str, Any]]:
    found = [r for r in rules(manifest) if r.get("alert") == name]
    assert found, f"no alert {name}"
    return found


def recorded(manifest: Manifest, name: str) -> str:
    (found,) = [r for r in rules(manifest) if r.get("record") == name]
    return str(found["expr"])


def histogram_buckets() -> list[float]:
    """The gateway's http_request_duration_seconds buckets, as metrics.go declares them."""
    source = GATEWAY_METRICS.read_text()
    match = re.search(
        r'Name: "http_request_duration_seconds".*?Buckets:\s*\[\]float64\{([^}]*)\}', source, re.S
    )
    assert match, f"no http_request_duration_seconds buckets in {GATEWAY_METRICS}"
    return [float(b) for b in match.group(1).split(",")]


def test_off_by_default() -> None:
    assert render().all("PrometheusRule") == []


def test_on_renders_one_rule_with_the_chart_labels_and_yours() -> None:
    manifest = rule({"labels": {"release": "kube-prometheus-stack"}})
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
    assert manifest["metadata"]["name"] == "tandem"
    labels = manifest["metadata"]["labels"]
    assert labels["release"] == "kube-prometheus-stack"
    assert labels["app.kubernetes.io/part-of"] == "tandem"
    assert labels["app.kubernetes.io/instance"] == "tandem"
    assert {r["alert"] for r in rules(manifest) if "alert" in r} == ALERTS


def test_only_fields_of_the_prometheus_rule_crd_are_rendered() -> None:
    # monitoring.coreos.com/v1 PrometheusRule: spec.groups[].rules[] are
    # Prometheus rules; label and annotation values must be strings.
    manifest = rule()
    assert set(manifest) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(manifest["spec"]) == {"groups"}
    names = [group["name"] for group in manifest["spec"]["groups"]]
    assert len(names) == len(set(names)), "group names must be unique"
    for group in manifest["spec"]["groups"]:
        assert set(group) == {"name", "rules"}
        for r in group["rules"]:
            assert set(r) <= {"record", "alert", "expr", "for", "labels", "annotations"}, r
            assert ("record" in r) != ("alert" in r), r
            assert isinstance(r["expr"], str)
            assert r["expr"].strip()
            for key in ("labels", "annotations"):
                assert all(isinstance(v, str) for v in r.get(key, {}).values()), (key, r)


def test_every_alert_has_a_severity_a_summary_a_description_and_a_runbook_in_the_docs() -> None:
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in DOCS.read_text().splitlines()
        if line.startswith("#")
    }
    for r in rules(rule()):
        if "alert" not in r:
            continue
        assert r["labels"]["severity"] in {"critical", "warning"}, r["alert"]
        assert r["annotations"]["summary"].strip(), r["alert"]
        assert "{{ $value" in r["annotations"]["description"], f"{r['alert']}: say the value"
        url = r["annotations"]["runbook_url"]
        base, anchor = url.split("#")
        assert base == "https://github.com/tandem-inference/tandem/blob/main/docs/observability.md"
        assert anchor == r["alert"].lower()
        assert anchor in headings, f"{r['alert']}: no section #{anchor} in {DOCS}"


def test_every_selector_is_this_releases() -> None:
    manifest = rule(release="prod", namespace="ml")
    for r in rules(manifest):
        selectors = re.findall(r"\{([^{}]*)\}", r["expr"])
        assert selectors, r
        for selector in selectors:
            if selector.startswith("{"):  # a template in an annotation, not PromQL
                continue
            assert 'namespace="ml"' in selector, (r.get("alert") or r.get("record"), selector)
            assert 'release="prod"' in selector, (r.get("alert") or r.get("record"), selector)
    gateway = recorded(manifest, "tandem:gateway_api_errors:ratio_rate5m")
    assert 'component="gateway"' in gateway
    assert 'route=~"embeddings|models|model"' in gateway, "API routes only, not probes"
    assert "sum by (namespace, release, model)" in gateway
    (saturation,) = alerts(manifest, "TandemCoreAdmissionSaturated")
    assert 'component="core"' in saturation["expr"]
    assert "group_left (model_id)" in saturation["expr"], "the model, joined on the target"


def test_burn_rate_rows_follow_the_workbook_with_your_objectives_and_severities() -> None:
    manifest = rule(
        {
            "slo": {
                "availability": {"objective": 0.995},
                "latency": {"objective": 0.95, "thresholdSeconds": 0.5},
                "pageSeverity": "page",
                "ticketSeverity": "ticket",
            }
        }
    )
    rows = {(14.4, "1h", "5m", "page"), (6, "6h", "30m", "page")}
    rows |= {(3, "1d", "2h", "ticket"), (1, "3d", "6h", "ticket")}
    for name, record, objective in (
        ("TandemAvailabilityBudgetBurn", "tandem:gateway_api_errors", 0.995),
        ("TandemLatencyBudgetBurn", "tandem:gateway_api_slow", 0.95),
    ):
        seen = set()
        for r in alerts(manifest, name):
            labels = r["labels"]
            long, short = labels["long_window"], labels["short_window"]
            factor = re.search(r"> \((\S+) \* \(1 - (\S+)\)\)", r["expr"])
            assert factor, r["expr"]
            assert float(factor.group(2)) == objective
            assert f"{record}:ratio_rate{long}{{" in r["expr"]
            assert f"{record}:ratio_rate{short}{{" in r["expr"]
            seen.add((float(factor.group(1)), long, short, labels["severity"]))
        assert seen == rows, name
    assert 'le="0.5"' in recorded(manifest, "tandem:gateway_api_slow:ratio_rate1h")


def test_an_integral_threshold_matches_both_spellings_of_its_bucket() -> None:
    # Prometheus 3 stores le="5.0"; Prometheus 2 stored le="5" from the text format.
    manifest = rule({"slo": {"latency": {"objective": 0.99, "thresholdSeconds": 5}}})
    assert r'le=~"5(\\.0)?"' in recorded(manifest, "tandem:gateway_api_slow:ratio_rate5m")


def test_every_gateway_bucket_is_a_threshold_and_nothing_else_is() -> None:
    buckets = histogram_buckets()
    assert len(buckets) >= 10
    for bound in buckets:
        manifest = rule({"slo": {"latency": {"objective": 0.99, "thresholdSeconds": bound}}})
        assert (
            f"took longer than {bound:g} s"
            in alerts(manifest, "TandemLatencyBudgetBurn")[0]["annotations"]["description"]
        )
    for between in (0.3, 2, 0.0051):
        message = render_error(
            values={
                "prometheusRule": {
                    "enabled": True,
                    "slo": {"latency": {"objective": 0.99, "thresholdSeconds": between}},
                }
            }
        )
        assert f"thresholdSeconds ({between:g}) must be one of" in message, message
        assert "bucket bounds (0.005, 0.01," in message, message
        assert "never see a request" in message, message


def test_operational_thresholds_flow_into_the_expressions() -> None:
    manifest = rule(
        {
            "admissionSaturation": {"ratio": 0.8, "for": "5m", "severity": "info"},
            "throttling": {"ratio": 0.2, "for": "30m", "severity": "critical"},
            "restarts": {"count": 5, "window": "6h", "severity": "critical"},
            "readinessFlapping": {"changes": 6, "window": "30m", "severity": "info"},
        }
    )
    (saturation,) = alerts(manifest, "TandemCoreAdmissionSaturated")
    assert saturation["expr"].rstrip().endswith("> 0.8")
    assert (saturation["for"], saturation["labels"]["severity"]) == ("5m", "info")
    (throttling,) = alerts(manifest, "TandemGatewayThrottling")
    assert throttling["expr"].rstrip().endswith("> 0.2")
    assert 'code="429"' in throttling["expr"]
    assert (throttling["for"], throttling["labels"]["severity"]) == ("30m", "critical")
    (restarts,) = alerts(manifest, "TandemProcessRestarts")
    assert "changes(process_start_time_seconds{" in restarts["expr"]
    assert "[6h]" in restarts["expr"]
    assert restarts["expr"].rstrip().endswith(">= 5")
    for name in ("TandemCoreReadinessFlapping", "TandemGatewayUpstreamReadinessFlapping"):
        (flapping,) = alerts(manifest, name)
        assert "[30m]) >= 6" in flapping["expr"]
        assert flapping["labels"]["severity"] == "info"


@pytest.mark.parametrize(
    "values",
    [
        {"slo": {"availability": {"objective": 1}}},
        {"slo": {"availability": {"objective": 0}}},
        {"slo": {"availability": {"objective": "0.999"}}},
        {"slo": {"latency": {"objective": 1.5, "thresholdSeconds": 1}}},
        {"slo": {"latency": {"objective": 0.99, "thresholdSeconds": 0}}},
        {"slo": {"latency": {"objective": 0.99, "thresholdSeconds": 60}}},
        {"slo": {"latency": {"objective": 0.99, "thresholdSeconds": None}}},  # null deletes
        {"slo": {"pageSeverity": ""}},
        {"slo": {"ticketSeverity": "Warning!"}},
        {"admissionSaturation": {"ratio": 0}},
        {"admissionSaturation": {"ratio": 1.5}},
        {"throttling": {"for": "15 minutes"}},
        {"restarts": {"count": 0}},
        {"restarts": {"count": 1.5}},
        {"readinessFlapping": {"changes": 1}},
        {"runbookBaseUrl": "docs/observability.md"},
        {"runbookBaseUrl": "https://example.com/runbooks#section"},
        {"labels": {"release": 1}},
        {"enabled": "yes"},
        {"alerts": {}},
    ],
)
def test_the_schema_refuses_bad_values(values: dict[str, Any]) -> None:
    assert "schema" in render_error(values={"prometheusRule": values})
