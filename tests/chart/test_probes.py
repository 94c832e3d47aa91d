"""Probes that mean something: each points at the right port and endpoint, and
the timings give model loading room and never restart a pod that is only busy."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.helm import SCENARIOS, Rendered, render

CORE_GRPC, CORE_HTTP = 50051, 8000
GATEWAY_HTTP = 8080
EMBEDDING_SERVICE = "tandem.contract.v1.EmbeddingService"


def port_number(container: dict[str, Any], port: int | str) -> int:
    """Resolve a probe's port (a number or a container port name) to a number."""
    if isinstance(port, int):
        return port
    numbers = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    assert numbers, f"probe names port {port!r}, which the container does not declare"
    return int(numbers[0])


def budget(probe: dict[str, Any]) -> int:
    """Seconds of consecutive failures before the kubelet acts."""
    return int(probe["periodSeconds"]) * int(probe["failureThreshold"])


@pytest.mark.parametrize("values_file", SCENARIOS, ids=lambda p: p.name)
def test_core_probes(values_file: Any) -> None:
    core = render(values_file).container("core")
    startup, readiness, liveness = (
        core["startupProbe"],
        core["readinessProbe"],
        core["livenessProbe"],
    )
    # Start-up and readiness: the gRPC health of the embedding service, which is
    # SERVING only once the model is loaded and warmed and the core is not draining.
    for probe in (startup, readiness):
        assert probe["grpc"] == {"port": CORE_GRPC, "service": EMBEDDING_SERVICE}
        assert port_number(core, probe["grpc"]["port"]) == CORE_GRPC
    # Liveness: the event loop answers; never readiness, never the model.
    assert liveness["httpGet"]["path"] == "/healthz"
    assert port_number(core, liveness["httpGet"]["port"]) == CORE_HTTP
    assert "grpc" not in liveness


def test_core_probe_timings() -> None:
    core = render().container("core")
    # Model loading and warm-up get two minutes before the kubelet restarts.
    assert budget(core["startupProbe"]) >= 120
    # Probed every second while starting: ready as soon as it can serve.
    assert core["startupProbe"]["periodSeconds"] == 1
    # A saturated core is alive: liveness tolerates a minute without answers.
    assert budget(core["livenessProbe"]) >= 60
    assert core["livenessProbe"]["timeoutSeconds"] >= 5
    # Readiness reacts within ~10 s (a drain flips it at once anyway).
    assert budget(core["readinessProbe"]) <= 10


@pytest.mark.parametrize("values_file", SCENARIOS, ids=lambda p: p.name)
def test_gateway_probes(values_file: Any) -> None:
    gateway = render(values_file).container("gateway")
    for name, path in (
        ("startupProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/healthz"),
    ):
        probe = gateway[name]["httpGet"]
        assert probe["path"] == path, name
        assert port_number(gateway, probe["port"]) == GATEWAY_HTTP, name


def test_gateway_probe_timings() -> None:
    gateway = render().container("gateway")
    # /readyz asks the core with a 500 ms deadline; the probe must wait longer,
    # or a slow core shows up as a timed-out probe instead of a clear 503.
    assert gateway["readinessProbe"]["timeoutSeconds"] >= 1
    assert budget(gateway["livenessProbe"]) >= 60


def test_probe_timings_come_from_values() -> None:
    rendered: Rendered = render(
        values={
            "core": {
                "probes": {
                    "startup": {"periodSeconds": 2, "timeoutSeconds": 1, "failureThreshold": 300}
                }
            }
        }
    )
    startup = rendered.container("core")["startupProbe"]
    assert (startup["periodSeconds"], startup["failureThreshold"]) == (2, 300)
    assert startup["grpc"]["service"] == EMBEDDING_SERVICE, "timings change, the endpoint does not"


def test_container_ports_match_the_services_settings() -> None:
    rendered = render()
    core_env = rendered.env("core")
    assert int(core_env["TANDEM_CORE_GRPC_PORT"]) == CORE_GRPC
    assert int(core_env["TANDEM_CORE_HTTP_PORT"]) == CORE_HTTP
    assert int(core_env["TANDEM_CORE_METRICS_PORT"]) == 9100
    assert port_number(rendered.container("core"), "metrics") == 9100
    assert core_env["TANDEM_CORE_GRPC_HOST"] == core_env["TANDEM_CORE_HTTP_HOST"] == "0.0.0.0"
    gateway_env = rendered.env("gateway")
    assert gateway_env["TANDEM_GATEWAY_LISTEN_ADDR"] == f"0.0.0.0:{GATEWAY_HTTP}"
    assert gateway_env["TANDEM_GATEWAY_ADMIN_ADDR"] == "0.0.0.0:9090"
    assert port_number(rendered.container("gateway"), "metrics") == 9090
