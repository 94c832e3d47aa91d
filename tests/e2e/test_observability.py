"""Every dashboard query and every alert rule, evaluated by a real Prometheus
that scrapes the real services (docs/observability.md).

A Prometheus (the pinned one `make prometheus-tools` builds) scrapes the
session's gateway and both cores every second, with the labels the chart's
ServiceMonitors attach, and loads the alert rules the chart renders. Then a
bounded load runs through the gateways with every outcome a panel shows
(tandem_devkit.outcomes: 200 for both models, 400, 404, and from two extra
gateways in front of the same fp32 core, 429, 503 and 504). After that every
panel's every query must parse and return data, every template variable must
list the stack's values, and every rule must load, evaluate without error and
parse on its own. A renamed metric fails here, not on an operator's screen.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tandem_devkit import dashboard, outcomes
from tandem_devkit.prometheus import (
    LOCAL_NAMESPACE,
    LOCAL_RELEASE,
    LocalPrometheus,
    ScrapeTarget,
    scrape_config,
)
from tandem_devkit.stack import ManagedProcess, StackPorts, free_port, gateway_process, http_status

from .conftest import Stack

SCRAPE_INTERVAL_S = 1.0


def _wait_live(process: ManagedProcess, ports: StackPorts, timeout_s: float = 30.0) -> None:
    """Until the gateway answers /healthz: one whose only pool is gone never turns ready."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if http_status(f"http://127.0.0.1:{ports.gateway_http}/healthz") == 200:
            return
        time.sleep(0.1)
    raise TimeoutError(f"{process.name} not live after {timeout_s:.0f} s:\n{process.tail()}")


@pytest.fixture(scope="module")
def outcome_gateways(
    stack: Stack, gateway_bin: Path, log_dir: Path
) -> Iterator[dict[str, StackPorts]]:
    """The strict and the orphan gateway of tandem_devkit.outcomes, fp32 only."""
    fp32 = stack.models["fp32"]
    # name -> (its only pool's gRPC port, its settings)
    settings = {
        "strict": (stack.core_ports["fp32"].grpc, outcomes.STRICT_GATEWAY_SETTINGS),
        "orphan": (free_port(), {}),  # nothing listens there
    }
    started: dict[str, tuple[ManagedProcess, StackPorts]] = {}
    try:
        for name, (grpc_port, env) in settings.items():
            ports = StackPorts(gateway_http=free_port(), gateway_admin=free_port())
            process = gateway_process(
                gateway_bin,
                ports,
                log_dir,
                env=env,
                name=f"gateway-{name}",
                pools={fp32: grpc_port},
            )
            started[name] = (process.start(), ports)
        for process, ports in started.values():
            _wait_live(process, ports)
        yield {name: ports for name, (_, ports) in started.items()}
    finally:
        codes = {name: process.stop() for name, (process, _) in started.items()}
        assert all(code == 0 for code in codes.values()), f"unclean exit: {codes}"


def _targets(stack: Stack, extra: dict[str, StackPorts]) -> list[ScrapeTarget]:
    gateways = [stack.ports.gateway_admin] + [ports.gateway_admin for ports in extra.values()]
    targets = [ScrapeTarget(f"127.0.0.1:{port}", "gateway") for port in gateways]
    targets += [
        ScrapeTarget(f"127.0.0.1:{ports.metrics}", "core", pool=precision)
        for precision, ports in stack.core_ports.items()
    ]
    return targets


@pytest.fixture(scope="module")
def prometheus(
    stack: Stack,
    outcome_gateways: dict[str, StackPorts],
    prometheus_bin: Path,
    chart_rule_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalPrometheus]:
    """A Prometheus that watched a load with every outcome."""
    targets = _targets(stack, outcome_gateways)
    config = scrape_config(targets, interval_s=SCRAPE_INTERVAL_S, rule_files=[chart_rule_file])
    work_dir = tmp_path_factory.mktemp("prometheus")
    with LocalPrometheus(
        prometheus_bin, port=free_port(), work_dir=work_dir, config=config
    ) as prom:
        prom.wait_scraped(t.address for t in targets)
        url = "http://127.0.0.1:{}".format
        seen = outcomes.drive(
            outcomes.OutcomeGateways(
                main=url(stack.ports.gateway_http),
                strict=url(outcome_gateways["strict"].gateway_http),
                orphan=url(outcome_gateways["orphan"].gateway_http),
            ),
            fp32_model=stack.models["fp32"],
            int8_model=stack.models["int8"],
            seconds=8.0,
            max_requests=500,
        )
        missing = [status for status in outcomes.WANTED_STATUSES if not seen[status]]
        assert not missing, f"the load produced no {missing}: {dict(seen)}"
        # Three more scrapes, so every counter's last increase is stored.
        time.sleep(3 * SCRAPE_INTERVAL_S + 0.5)
        yield prom


def _variables(stack: Stack, precision: str) -> dict[str, str]:
    return {
        "namespace": LOCAL_NAMESPACE,
        "release": LOCAL_RELEASE,
        "model": stack.models[precision],
    }


def test_every_panel_query_parses_and_returns_data(
    prometheus: LocalPrometheus, stack: Stack
) -> None:
    assert len(dashboard.panel_queries(dashboard.load())) >= 15, "the dashboard lost its panels"
    # The fp32 model saw every outcome, so even its error panels have data.
    refused, empty = dashboard.unanswered_panels(prometheus.query, _variables(stack, "fp32"))
    assert not refused, "queries Prometheus refused:\n" + "\n".join(refused)
    assert not empty, "panels with no data after the load:\n" + "\n".join(empty)


def test_the_other_models_panels_parse_and_its_success_panels_have_data(
    prometheus: LocalPrometheus, stack: Stack
) -> None:
    refused, empty = dashboard.unanswered_panels(prometheus.query, _variables(stack, "int8"))
    assert not refused, "queries Prometheus refused:\n" + "\n".join(refused)
    total = len(dashboard.panel_queries(dashboard.load()))
    assert len(empty) <= total // 2, "int8 panels with no data:\n" + "\n".join(empty)


def test_template_variables_list_the_stacks_values(
    prometheus: LocalPrometheus, stack: Stack
) -> None:
    variables = dashboard.variable_queries(dashboard.load())
    assert {"namespace", "release", "model"} <= set(variables), variables
    want = {
        "namespace": {LOCAL_NAMESPACE},
        "release": {LOCAL_RELEASE},
        "model": set(stack.models.values()),
    }
    for name, query in variables.items():
        promql = dashboard.PanelQuery(f"${name}", name, dashboard.label_values_promql(query))
        result = prometheus.query(promql.substituted({**_variables(stack, "fp32"), "model": ".*"}))
        listed = {series["metric"].get(name) for series in result}
        assert want.get(name, set()) <= listed, f"${name} lists {listed}, want {want.get(name)}"


def test_every_alert_rule_loads_and_evaluates_without_error(prometheus: LocalPrometheus) -> None:
    rules = prometheus.evaluated_rules()
    alerts = [rule["name"] for rule in rules if rule["type"] == "alerting"]
    assert len(alerts) >= 6, f"the chart's rules lost alerts: {alerts}"
    unhealthy = [
        f"{r['name']}: {r['health']} {r.get('lastError', '')}" for r in rules if r["health"] != "ok"
    ]
    assert not unhealthy, "rules that failed to evaluate:\n" + "\n".join(unhealthy)
    for rule in rules:
        prometheus.query(rule["query"])  # parses on its own (PrometheusError otherwise)
    # A rule over a renamed metric evaluates "ok" and never fires: each metric
    # a rule selects must have series.
    gone = {r["name"]: dashboard.missing_metrics(prometheus.query, r["query"]) for r in rules}
    assert not any(gone.values()), {name: g for name, g in gone.items() if g}
