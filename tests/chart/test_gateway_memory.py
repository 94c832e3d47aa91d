"""The chart's gateway memory limit and GOMEMLIMIT equal `tandem-gateway memory-plan`.

The chart computes the gateway's memory plan in a template
(_gateway_memory.tpl); the gateway computes it in Go (internal/memplan). This
renders the chart for a matrix of values, runs the gateway's own command with
the environment the rendered ConfigMap gives the pod, and checks that every
number agrees: the plan is computed from the settings the gateway really runs
with, by both sides. An explicit memory limit that cannot hold the plan, and a
gateway with no in-flight cap, must be refused.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.chart.helm import ROOT, Rendered, mib, render, render_error

MiB = 1 << 20


@pytest.fixture(scope="module")
def gateway_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The gateway built from this tree, so the formula tested is the current one."""
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).exists():
        pytest.fail("go is needed to build tandem-gateway for this test")
    out = tmp_path_factory.mktemp("gateway") / "tandem-gateway"
    subprocess.run(
        [go, "build", "-o", str(out), "./cmd/tandem-gateway"],
        cwd=ROOT / "go-gateway",
        check=True,
        timeout=600,
        env={**os.environ, "CGO_ENABLED": "0"},
    )
    return out


@dataclass(frozen=True)
class Case:
    in_flight: int = 32
    body: int = 4 * MiB
    texts: int = 256
    text_bytes: int = 8192
    dimension: int | None = 384  # None: the gateway's own default
    ratio: float = 0.9

    def __str__(self) -> str:
        return (
            f"inflight={self.in_flight},body={self.body},texts={self.texts},"
            f"text={self.text_bytes},dim={self.dimension},ratio={self.ratio:g}"
        )

    def values(self) -> dict[str, Any]:
        return {
            "requestLimits": {"maxBodyBytes": self.body, "maxTextBytes": self.text_bytes},
            "core": {
                "capacity": {
                    "maxTextsPerRequest": self.texts,
                    # The core admits at least one largest request.
                    "maxInflightBytes": max(4 * MiB, self.texts * self.text_bytes),
                }
            },
            "gateway": {
                "goMemLimitRatio": self.ratio,
                "settings": {"maxInFlight": self.in_flight},
                "extraSettings": {
                    "TANDEM_GATEWAY_UPSTREAM_MAX_DIMENSION": (
                        None if self.dimension is None else str(self.dimension)
                    )
                },
            },
        }


# The chart's defaults, every input on its own, the texts bounded by the body,
# and the extremes; GOMEMLIMIT ratios that do and do not divide evenly.
CASES = [
    Case(),
    Case(dimension=None),
    Case(dimension=768),
    Case(in_flight=1),
    Case(in_flight=8, ratio=0.75),
    Case(in_flight=256),
    Case(body=1 * MiB),  # texts (2 MiB) bounded by the body
    Case(body=16 * MiB, text_bytes=65536),
    Case(texts=1, text_bytes=512),
    Case(texts=1024, body=8 * MiB),
    Case(in_flight=3, body=3_000_001, texts=7, text_bytes=777, dimension=5, ratio=0.85),
    Case(in_flight=64, ratio=1.0),
    Case(in_flight=17, ratio=0.33),
]


def memory_plan(gateway_bin: Path, rendered: Rendered, ratio: float) -> dict[str, Any]:
    """The gateway's plan for the environment the chart gives its pod."""
    env = {"PATH": os.environ.get("PATH", ""), **rendered.configmap("gateway")}
    result = subprocess.run(
        [str(gateway_bin), "memory-plan", "-gomemlimit-ratio", repr(ratio)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    plan: dict[str, Any] = json.loads(result.stdout)
    return plan


@pytest.mark.parametrize("case", CASES, ids=str)
def test_chart_plan_equals_the_gateways(gateway_bin: Path, case: Case) -> None:
    rendered = render(values=case.values())
    plan = memory_plan(gateway_bin, rendered, case.ratio)

    inputs = plan["inputs"]
    assert inputs["max_in_flight"] == case.in_flight
    assert inputs["max_body_bytes"] == case.body
    assert inputs["max_inputs"] == case.texts
    assert inputs["max_text_bytes"] == case.text_bytes
    assert inputs["dimension"] == (case.dimension or 1024)

    resources = rendered.container("gateway")["resources"]
    assert mib(resources["requests"]["memory"]) == plan["memory_request_mib"]
    assert mib(resources["limits"]["memory"]) == plan["memory_limit_mib"]
    assert "cpu" not in resources["limits"]
    gomemlimit = int(rendered.env("gateway")["GOMEMLIMIT"])
    assert gomemlimit == plan["gomemlimit_bytes"]
    # GOMEMLIMIT covers the plan; the limit leaves the rest for GC lag.
    assert plan["total_bytes"] <= gomemlimit <= plan["memory_limit_mib"] * MiB


def test_default_plan(gateway_bin: Path) -> None:
    """The numbers docs/gateway.md ("Memory") shows."""
    rendered = render()
    plan = memory_plan(gateway_bin, rendered, 0.9)
    assert plan["per_request_bytes"] == 18_843_648
    assert plan["total_bytes"] == 636_551_168
    assert rendered.container("gateway")["resources"] == {
        "requests": {"cpu": "100m", "memory": "608Mi"},
        "limits": {"memory": "675Mi"},
    }


@pytest.mark.parametrize("case", [Case(), Case(in_flight=4, ratio=0.75)], ids=str)
def test_explicit_limit_must_hold_the_plan(gateway_bin: Path, case: Case) -> None:
    plan = memory_plan(gateway_bin, render(values=case.values()), case.ratio)
    limit = plan["memory_limit_mib"]

    def explicit(limit_mib: int) -> dict[str, Any]:
        values = case.values()
        values["gateway"]["resources"] = {
            "requests": {"cpu": "250m", "memory": "64Mi"},
            "limits": {"memory": f"{limit_mib}Mi"},
        }
        return values

    rendered = render(values=explicit(limit))
    assert rendered.container("gateway")["resources"]["limits"]["memory"] == f"{limit}Mi"

    message = render_error(values=explicit(limit - 1))
    assert "gateway.resources.limits.memory" in message
    assert "memory plan" in message
    assert f"at least {limit}Mi" in message


def test_explicit_resources_without_a_limit_are_kept() -> None:
    resources = {"requests": {"cpu": "100m", "memory": "64Mi"}}
    rendered = render(values={"gateway": {"resources": resources}})
    assert rendered.container("gateway")["resources"] == resources
    assert "GOMEMLIMIT" not in rendered.env("gateway")


def test_no_in_flight_cap_is_refused() -> None:
    message = render_error(values={"gateway": {"settings": {"maxInFlight": 0}}})
    assert "gateway.settings.maxInFlight is 0" in message
