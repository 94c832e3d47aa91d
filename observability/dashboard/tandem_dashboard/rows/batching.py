"""Batching: how full the batches are, and what padding costs."""

from __future__ import annotations

from grafana_foundation_sdk.builders.timeseries import Panel

from tandem_dashboard.panels import Query, timeseries_panel
from tandem_dashboard.promql import CORE, core_by_model, mean, quantile, rate, ratio

TITLE = "Batching (core)"


def _size(metric: str) -> list[Query]:
    return [
        Query(mean(metric, CORE, "model_id", core=True), "{{model_id}} mean"),
        Query(
            quantile(0.9, core_by_model(rate(metric + "_bucket", CORE)), "model_id"),
            "{{model_id}} p90",
        ),
    ]


def _tokens(metric: str) -> str:
    return f"sum by (model_id) ({core_by_model(rate(metric, CORE))})"


def panels() -> list[Panel]:
    padding = _tokens("tandem_core_batch_padding_tokens_total")
    real = _tokens("tandem_core_batch_real_tokens_total")
    return [
        timeseries_panel(
            "Batch size (texts)",
            unit="short",
            description=(
                "Texts per inference batch, mean and p90, per model. Near 1 under load means "
                "requests are not meeting in the queue (a short queue delay, or few callers); "
                "pinned at the maximum means batches are full and the queue is where time goes."
            ),
            queries=_size("tandem_core_batch_texts"),
        ),
        timeseries_panel(
            "Batch size (padded tokens)",
            unit="short",
            description=(
                "Tokens computed per batch, padding included (rows x the longest row), mean and "
                "p90, per model: the work one inference call does, bounded by the token budget. "
                "Inference time follows this, not the number of texts."
            ),
            queries=_size("tandem_core_batch_tokens"),
        ),
        timeseries_panel(
            "Padding waste",
            unit="percentunit",
            description=(
                "Share of computed tokens that were padding, per model: rows shorter than the "
                "batch's longest. High waste means texts of very different lengths share batches; "
                "it is compute spent on nothing."
            ),
            queries=[Query(ratio(padding, f"({padding}\n+\n{real})"), "{{model_id}}")],
        ),
    ]
