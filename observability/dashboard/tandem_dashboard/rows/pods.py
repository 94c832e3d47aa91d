"""Pods: how many are ready, and whether they restart."""

from __future__ import annotations

from grafana_foundation_sdk.builders.timeseries import Panel

from tandem_dashboard.panels import HALF, Query, timeseries_panel
from tandem_dashboard.promql import CORE, GATEWAY, RELEASE, core_by_model

TITLE = "Pods"

# changes() needs a window: long enough to hold a crash loop's restarts.
RESTART_WINDOW = "15m"


def panels() -> list[Panel]:
    return [
        timeseries_panel(
            "Pods ready",
            unit="short",
            width=HALF,
            description=(
                "Cores ready per model (model loaded, warmed and not draining), cores and gateways "
                "scraped. Cores up but not ready are starting or draining; a model at 0 ready "
                "answers 503."
            ),
            queries=[
                Query(
                    f"sum by (model_id) ({core_by_model(f'tandem_core_ready{{{CORE}}}')})",
                    "{{model_id}} ready",
                ),
                Query(f"sum(up{{{CORE}}})", "cores up (all models)"),
                Query(f"sum(up{{{GATEWAY}}})", "gateways up"),
            ],
        ),
        timeseries_panel(
            f"Process restarts (last {RESTART_WINDOW})",
            unit="short",
            width=HALF,
            description=(
                f"Processes that started again within the same pod over the last {RESTART_WINDOW}, "
                "by component (the process start time changed on the same target): crashes, "
                "out-of-memory kills and failed liveness probes. A rollout or scale-up makes new "
                "pods, not restarts. Anything above 0 is worth a look at the pod's last logs."
            ),
            queries=[
                Query(
                    f"sum by (component) "
                    f"(changes(process_start_time_seconds{{{RELEASE}}}[{RESTART_WINDOW}]))",
                    "{{component}}",
                )
            ],
        ),
    ]
