"""Quantity arithmetic: GOMEMLIMIT from the memory limit, CPU as millicores.

The classic slips: "128M" (10^6) read as "128Mi" (2^20), "128m" (milli!)
accepted for memory, CPU rendered as a float or with "M".
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.helm import render, render_error

MiB, GiB = 1 << 20, 1 << 30


def gomemlimit(memory_limit: Any, ratio: float = 0.9) -> int | None:
    resources = {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": memory_limit}}
    # One request in flight: the memory plan (test_gateway_memory.py) then
    # needs 50 MiB, so that every limit below holds it.
    settings = {"maxInFlight": 1}
    rendered = render(
        values={"gateway": {"resources": resources, "goMemLimitRatio": ratio, "settings": settings}}
    )
    env = rendered.env("gateway")
    return int(env["GOMEMLIMIT"]) if "GOMEMLIMIT" in env else None


@pytest.mark.parametrize(
    ("limit", "limit_bytes"),
    [
        ("128Mi", 128 * MiB),
        ("1Gi", GiB),
        ("0.5Gi", GiB // 2),
        ("65536Ki", 64 * MiB),
        ("500M", 500 * 10**6),
        ("1G", 10**9),
        ("200000k", 200 * 10**6),
        ("268435456", 268435456),
        (268435456, 268435456),
        ("1.5Gi", 3 * GiB // 2),
    ],
)
def test_gomemlimit_is_ninety_percent_of_the_limit_in_bytes(limit: Any, limit_bytes: int) -> None:
    assert gomemlimit(limit) == int(limit_bytes * 0.9)


def test_default_gomemlimit() -> None:
    # The limit derived from the memory plan (675Mi by default), ratio 0.9.
    assert render().env("gateway")["GOMEMLIMIT"] == str(int(675 * MiB * 0.9))


def test_gomemlimit_ratio_is_a_value() -> None:
    assert gomemlimit("1Gi", ratio=0.75) == int(GiB * 0.75)


def test_no_memory_limit_means_no_gomemlimit() -> None:
    # Explicit resources without a memory limit.
    values = {"gateway": {"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}}
    assert "GOMEMLIMIT" not in render(values=values).env("gateway")


@pytest.mark.parametrize("limit", ["128m", "0.5m"])
def test_millibytes_are_refused(limit: str) -> None:
    """Kubernetes accepts "128m" of memory (0.128 bytes); it is always a typo for Mi."""
    message = render_error(values={"gateway": {"resources": {"limits": {"memory": limit}}}})
    assert "millibytes" in message
    assert "gateway.resources.limits.memory" in message


@pytest.mark.parametrize("limit", ["128MB", "128 Mi", "-1Gi", "1Gb", "lots"])
def test_unreadable_memory_quantities_are_refused(limit: str) -> None:
    message = render_error(values={"gateway": {"resources": {"limits": {"memory": limit}}}})
    assert "gateway.resources.limits.memory" in message


@pytest.mark.parametrize(
    ("cpus", "rendered"),
    [(0.5, "500m"), (1, "1000m"), (1.5, "1500m"), (2, "2000m"), (0.25, "250m"), (12, "12000m")],
)
def test_core_cpu_is_rendered_in_millicores(cpus: float, rendered: str) -> None:
    resources = render(values={"core": {"capacity": {"cpus": cpus}}}).container("core")["resources"]
    assert resources["requests"]["cpu"] == resources["limits"]["cpu"] == rendered


def test_tracing_add_ons_get_gomemlimit_too() -> None:
    values = {
        "tracing": {"enabled": True, "collector": {"enabled": True}, "jaeger": {"enabled": True}}
    }
    rendered = render(values=values)
    for name, ratio, limit in (
        ("tandem-otel-collector", 0.8, 256 * MiB),
        ("tandem-jaeger", 0.9, 512 * MiB),
    ):
        container = rendered.one("Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        assert int(env["GOMEMLIMIT"]) == int(limit * ratio), name
