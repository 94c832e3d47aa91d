"""values.schema.json is strict: unknown keys and wrong types fail the install,
and values.yaml explains every key it has."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.chart.helm import CHART, render, render_error


@pytest.mark.parametrize(
    "values",
    [
        {"replica": 2},
        {"gateway": {"replica": 2}},
        {"core": {"capacity": {"cpu": 2}}},
        {"core": {"settings": {"drainDelay": 5}}},
        {"gateway": {"probes": {"liveness": {"periodSecond": 10}}}},
        {"gateway": {"image": {"pullpolicy": "Always"}}},
        {"tracing": {"collector": {"enable": True}}},
        {"networkPolicy": {"metricsFrom": [{"podselector": {}}]}},
        {"core": {"securityContext": {"readOnlyRootFileSystem": True}}},
    ],
    ids=str,
)
def test_unknown_keys_are_refused(values: dict[str, Any]) -> None:
    assert "additional properties" in render_error(values=values)


@pytest.mark.parametrize(
    "values",
    [
        {"gateway": {"replicas": "two"}},
        {"core": {"capacity": {"cpus": "1"}}},
        {"core": {"capacity": {"cpus": 0}}},
        {"core": {"capacity": {"workers": 1.5}}},
        {"core": {"capacity": {"maxBatchTokens": 100}}},
        {"core": {"settings": {"precision": "fp16"}}},
        {"core": {"settings": {"logLevel": "info"}}},
        {"gateway": {"settings": {"logLevel": "WARNING"}}},
        {"gateway": {"service": {"type": "ExternalName"}}},
        {"tracing": {"samplerRatio": 1.5}},
        {"tracing": {"otlpEndpoint": "otel-collector:4317"}},
        {"gateway": {"image": {"digest": "sha256:abc"}}},
        {"networkPolicy": {"enabled": "yes"}},
        {"serviceMonitor": {"interval": "30"}},
        {"core": {"ports": {"metrics": 0}}},
    ],
    ids=str,
)
def test_wrong_types_and_values_are_refused(values: dict[str, Any]) -> None:
    assert "schema" in render_error(values=values)


@pytest.mark.parametrize(
    "values",
    [
        {"gateway": {"extraSettings": {"TANDEM_GATEWAY_UPSTREAM_TARGET": "dns:///elsewhere:1"}}},
        {"gateway": {"extraSettings": {"TANDEM_GATEWAY_API_KEYS": "secret-in-values"}}},
        {"core": {"extraSettings": {"TANDEM_CORE_WORKERS": "8"}}},
        {"core": {"extraSettings": {"TANDEM_CORE_METRICS_PORT": "8000"}}},
        {"core": {"extraSettings": {"OTHER_VARIABLE": "x"}}},
        {"core": {"extraSettings": {"TANDEM_CORE_MAX_QUEUE_TEXTS": 2048}}},
    ],
    ids=str,
)
def test_extra_settings_cannot_override_what_the_chart_derives(values: dict[str, Any]) -> None:
    render_error(values=values)


def test_defaults_pass_the_schema() -> None:
    render()


KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z][\w.-]*):")


def test_values_yaml_explains_every_key() -> None:
    """Each top-level and component-level key has a comment right above it, or shares
    the comment of the key before it (a group such as podAnnotations / podLabels).
    Deeper keys are explained by their block's comment or their own."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    missing = []
    for number, line in enumerate(lines):
        match = KEY.match(line)
        if not match or len(match.group("indent")) > 2:
            continue
        above = lines[number - 1].strip() if number else ""
        commented = above.startswith("#")
        sibling = KEY.match(lines[number - 1]) if number else None
        grouped = sibling is not None and len(sibling.group("indent")) == len(match.group("indent"))
        if not (commented or grouped):
            missing.append(f"values.yaml:{number + 1}: {line.strip()}")
    assert not missing, "keys without a comment:\n" + "\n".join(missing)
