"""Tracing: off by default; when on, both services get the standard OTEL_*
variables and an endpoint that exists."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.chart.helm import NAMESPACE, SCENARIOS, render, render_error, scenario

COLLECTOR_URL = f"http://tandem-otel-collector.{NAMESPACE}.svc:4317"


def env_list(rendered: Any, component: str) -> list[dict[str, Any]]:
    return list(rendered.container(component).get("env", []))


@pytest.mark.parametrize(
    "values_file", [p for p in SCENARIOS if p.name != "tracing-values.yaml"], ids=lambda p: p.name
)
def test_off_unless_enabled(values_file: Any) -> None:
    rendered = render(values_file)
    for component in ("gateway", "core"):
        assert not [name for name in rendered.env(component) if name.startswith("OTEL_")]
    assert "Deployment/tandem-jaeger" not in {
        f"{d['kind']}/{d['metadata']['name']}" for d in rendered.docs
    }


def test_both_services_export_to_the_collector() -> None:
    rendered = render(scenario("tracing"))
    for component, service_name in (("gateway", "tandem-gateway"), ("core", "tandem-core")):
        env = rendered.env(component)
        assert env["OTEL_SERVICE_NAME"] == service_name
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == COLLECTOR_URL
        assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
        assert env["OTEL_TRACES_SAMPLER_ARG"] == "0.25"
        attributes = dict(a.split("=", 1) for a in env["OTEL_RESOURCE_ATTRIBUTES"].split(","))
        assert attributes["deployment.environment.name"] == "ci"
        assert attributes["service.version"] == "0.1.0"
        assert attributes["k8s.pod.name"] == "$(K8S_POD_NAME)"
        # $(VAR) only expands variables defined earlier in the list.
        names = [e["name"] for e in env_list(rendered, component)]
        assert names.index("K8S_POD_NAME") < names.index("OTEL_RESOURCE_ATTRIBUTES")
        assert names.index("K8S_NAMESPACE_NAME") < names.index("OTEL_RESOURCE_ATTRIBUTES")
    service = rendered.one("Service", "tandem-otel-collector")
    assert [p["port"] for p in service["spec"]["ports"]] == [4317]


def collector_config(values: dict[str, Any]) -> dict[str, Any]:
    configmap = render(values=values).one("ConfigMap", "tandem-otel-collector")
    config: dict[str, Any] = yaml.safe_load(configmap["data"]["config.yaml"])
    return config


def test_collector_forwards_to_jaeger_when_there_is_one() -> None:
    config = collector_config(
        {"tracing": {"enabled": True, "collector": {"enabled": True}, "jaeger": {"enabled": True}}}
    )
    assert config["service"]["pipelines"]["traces"]["exporters"] == ["otlp/jaeger"]
    endpoint = config["exporters"]["otlp/jaeger"]["endpoint"]
    assert endpoint == f"tandem-jaeger.{NAMESPACE}.svc:4317"
    assert config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == "0.0.0.0:4317"


def test_collector_logs_spans_without_jaeger() -> None:
    config = collector_config({"tracing": {"enabled": True, "collector": {"enabled": True}}})
    assert config["service"]["pipelines"]["traces"]["exporters"] == ["debug"]
    assert set(config["exporters"]) == {"debug"}


def test_services_export_to_jaeger_directly_without_a_collector() -> None:
    rendered = render(values={"tracing": {"enabled": True, "jaeger": {"enabled": True}}})
    assert (
        rendered.env("core")["OTEL_EXPORTER_OTLP_ENDPOINT"]
        == f"http://tandem-jaeger.{NAMESPACE}.svc:4317"
    )


def test_an_explicit_endpoint_wins() -> None:
    values = {
        "tracing": {
            "enabled": True,
            "otlpEndpoint": "http://otel.observability:4317",
            "collector": {"enabled": True},
        }
    }
    rendered = render(values=values)
    assert (
        rendered.env("gateway")["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel.observability:4317"
    )


def test_enabled_without_anywhere_to_send_is_refused() -> None:
    assert "tracing.otlpEndpoint" in render_error(values={"tracing": {"enabled": True}})
