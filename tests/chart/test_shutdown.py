"""Graceful shutdown: the kubelet waits for each service's own drain.

Both services drain themselves on SIGTERM: readiness false at once, keep
serving for the drain delay, then finish in-flight work within the shutdown
budget. terminationGracePeriodSeconds must cover both, or the kubelet's
SIGKILL cuts off the requests the drain exists to protect.
"""

from __future__ import annotations

import re

from tests.chart.helm import Rendered, render, render_error


def seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, f"{duration!r} is not whole seconds"
    return int(match.group(1))


def grace(rendered: Rendered, component: str) -> int:
    return int(
        rendered.deployment(component)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    )


def test_gateway_grace_covers_drain_and_shutdown() -> None:
    rendered = render()
    env = rendered.env("gateway")
    drain, shutdown = (
        seconds(env["TANDEM_GATEWAY_DRAIN_DELAY"]),
        seconds(env["TANDEM_GATEWAY_SHUTDOWN_TIMEOUT"]),
    )
    assert (drain, shutdown) == (5, 30)
    assert grace(rendered, "gateway") == drain + shutdown + 5


def test_core_grace_covers_drain_and_shutdown() -> None:
    rendered = render()
    env = rendered.env("core")
    drain, shutdown = (
        float(env["TANDEM_CORE_DRAIN_DELAY_S"]),
        float(env["TANDEM_CORE_SHUTDOWN_GRACE_S"]),
    )
    assert drain > 0, "the core must keep serving while the gateways notice it is draining"
    assert grace(rendered, "core") == drain + shutdown + 5


def test_grace_follows_the_settings() -> None:
    rendered = render(
        values={
            "gateway": {
                "settings": {
                    "drainDelaySeconds": 10,
                    "shutdownTimeoutSeconds": 60,
                    "requestTimeoutSeconds": 45,
                }
            },
            "core": {"settings": {"drainDelaySeconds": 3, "shutdownGraceSeconds": 40}},
            "terminationGraceMarginSeconds": 7,
        }
    )
    assert grace(rendered, "gateway") == 10 + 60 + 7
    assert grace(rendered, "core") == 3 + 40 + 7
    env = rendered.env("gateway")
    # The gateway requires its write timeout above the request budget.
    assert (
        seconds(env["TANDEM_GATEWAY_HTTP_WRITE_TIMEOUT"])
        > seconds(env["TANDEM_GATEWAY_REQUEST_TIMEOUT"])
        == 45
    )


def test_shutdown_shorter_than_a_request_is_refused() -> None:
    message = render_error(
        values={
            "gateway": {"settings": {"requestTimeoutSeconds": 60, "shutdownTimeoutSeconds": 30}}
        }
    )
    assert "shutdownTimeoutSeconds" in message


def test_rollouts_never_drop_capacity() -> None:
    rendered = render()
    for component in ("gateway", "core"):
        rolling = rendered.deployment(component)["spec"]["strategy"]["rollingUpdate"]
        assert rolling["maxUnavailable"] == 0, component


def test_core_rollout_outlasts_the_cluster_dns_cache() -> None:
    """Gateways find cores through DNS, which kubeadm's CoreDNS caches for 30 s:
    an old core may only go once every gateway can have seen its replacement."""
    assert render().deployment("core")["spec"]["minReadySeconds"] > 30
    fast = render(values={"core": {"minReadySeconds": 0}})
    assert fast.deployment("core")["spec"]["minReadySeconds"] == 0
