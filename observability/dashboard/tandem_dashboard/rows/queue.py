"""Capacity: the queue, the scaling signal, the workers and the event loop."""

from __future__ import annotations

from grafana_foundation_sdk.builders.timeseries import Panel

from tandem_dashboard.panels import Query, timeseries_panel
from tandem_dashboard.promql import CORE, GATEWAY, core_by_model, quantile, rate

TITLE = "Queue and workers (core)"

GATEWAY_MODEL = f'{GATEWAY}, model=~"$model"'


def _per_model(metric: str, aggregation: str = "sum") -> str:
    return f"{aggregation} by (model_id) ({core_by_model(f'{metric}{{{CORE}}}')})"


def panels() -> list[Panel]:
    lag_buckets = core_by_model(rate("tandem_core_event_loop_lag_seconds_bucket", CORE))
    return [
        timeseries_panel(
            "Queue depth (texts)",
            unit="short",
            description=(
                "Texts waiting for a batch, summed over each model's cores. A queue that stays "
                "non-empty between bursts means the cores cannot keep up: see the scaling signal."
            ),
            queries=[Query(_per_model("tandem_core_queue_texts"), "{{model_id}}")],
        ),
        timeseries_panel(
            "Queue depth (tokens)",
            unit="short",
            description=(
                "Tokens waiting for a batch, summed over each model's cores: the work ahead, which "
                "is what a new request waits for (long texts weigh more than many short ones)."
            ),
            queries=[Query(_per_model("tandem_core_queue_tokens"), "{{model_id}}")],
        ),
        timeseries_panel(
            "Scaling signal: queue wait estimate",
            unit="s",
            description=(
                "Seconds a request arriving now would wait (work ahead over the measured rate), "
                "the average over each model's cores (what the autoscaler reads) and the worst "
                "core. Above the autoscaling target it adds cores; a worst core far above the "
                "average means the load is not spread (connections stuck to one core)."
            ),
            queries=[
                Query(
                    _per_model("tandem_core_queue_wait_estimate_seconds", "avg"),
                    "{{model_id}} average",
                ),
                Query(
                    _per_model("tandem_core_queue_wait_estimate_seconds", "max"),
                    "{{model_id}} worst core",
                ),
            ],
        ),
        timeseries_panel(
            "Workers busy / alive",
            unit="short",
            description=(
                "Inference workers running a batch now, and worker threads alive, summed over each "
                "model's cores. Busy equal to alive for long means every worker is saturated; "
                "alive below the planned workers means one died (the core reports not live)."
            ),
            queries=[
                Query(_per_model("tandem_core_busy_workers"), "{{model_id}} busy"),
                Query(_per_model("tandem_core_workers_alive"), "{{model_id}} alive"),
            ],
        ),
        timeseries_panel(
            "Event-loop lag",
            unit="s",
            description=(
                "How late each model's cores ran a timer on their event loop (p50, p99). It should "
                "stay near zero under any load: inference runs off the loop. Lag that grows with "
                "load means something blocks the loop, and every request on that core waits."
            ),
            queries=[
                Query(quantile(q, lag_buckets, "model_id"), f"{{{{model_id}}}} p{round(q * 100)}")
                for q in (0.5, 0.99)
            ],
        ),
        timeseries_panel(
            "Calls in flight to each pool",
            unit="short",
            description=(
                "Calls from the gateways to each model's core pool that have started and not "
                "ended, retries included. Compare with the cores' admission bound: at the bound, "
                "new requests are refused with 429."
            ),
            queries=[
                Query(
                    f"sum by (model) (tandem_gateway_upstream_in_flight{{{GATEWAY_MODEL}}})",
                    "{{model}}",
                )
            ],
        ),
    ]
