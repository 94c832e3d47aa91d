"""Where the time goes: a request's time split into the gateway, the network,
the core's queue, tokenization and inference."""

from __future__ import annotations

from grafana_foundation_sdk.builders.timeseries import Panel

from tandem_dashboard.panels import HALF, Query, timeseries_panel
from tandem_dashboard.promql import CORE, EMBEDDINGS, GATEWAY, core_by_model, mean, quantile, rate

TITLE = "Where the time goes"

_STAGES = {
    "queue": "tandem_core_queue_wait_seconds",
    "tokenize": "tandem_core_tokenize_seconds",
    "inference": "tandem_core_inference_seconds",
}
_UPSTREAM = f'{GATEWAY}, method="Embed", model=~"$model"'
_CORE_CALLS = f'{CORE}, transport="grpc", method="Embed"'


def _gateway_total() -> str:
    return mean("tandem_gateway_http_request_duration_seconds", EMBEDDINGS)


def _upstream_call() -> str:
    return mean("tandem_gateway_upstream_call_duration_seconds", _UPSTREAM)


def _core_request() -> str:
    return mean("tandem_core_request_duration_seconds", _CORE_CALLS, core=True)


def _difference(minuend: str, subtrahend: str) -> str:
    return f"(\n{minuend}\n)\n-\n(\n{subtrahend}\n)"


def _stage_quantile(q: float) -> list[Query]:
    return [
        Query(
            quantile(q, core_by_model(rate(metric + "_bucket", CORE)), "model_id"),
            f"{{{{model_id}}}} {stage}",
        )
        for stage, metric in _STAGES.items()
    ]


def panels() -> list[Panel]:
    stage_help = (
        "queue: from arrival to the first batch holding the request's texts; tokenize: one "
        "request's texts; inference: one batch (padding, model, pooling)."
    )
    return [
        timeseries_panel(
            "Core stages, p50",
            unit="s",
            width=HALF,
            description=f"The typical request inside each model's cores, by stage. {stage_help}",
            queries=_stage_quantile(0.5),
        ),
        timeseries_panel(
            "Core stages, p99",
            unit="s",
            width=HALF,
            description=(
                f"The tail inside each model's cores, by stage. {stage_help} A queue p99 far above "
                "inference means requests wait for busy workers: scale out (the queue row's "
                "scaling signal). Inference growing with the batch size is the price of batching."
            ),
            queries=_stage_quantile(0.99),
        ),
        timeseries_panel(
            "Mean time split: $model",
            unit="s",
            width=24,
            stacked=True,
            description=(
                "Where an average request's time goes, stacked, one panel per model. gateway: the "
                "gateway's own work (its total minus its call to the core); network: the call to "
                "the core minus the core's own handling (network, gRPC, retries); then the core's "
                "queue wait, tokenization and inference. These are averages of different "
                "populations (requests at the gateway, calls, core requests, batches: a batch "
                "serves several requests, and a request of many texts may take several), so the "
                "stack approximates the gateway's mean latency; it does not add up exactly. Look "
                "for the layer that grows under load: queue means too few cores; gateway or "
                "network means the edge or the link, not the model."
            ),
            queries=[
                Query(_difference(_gateway_total(), _upstream_call()), "gateway"),
                Query(_difference(_upstream_call(), _core_request()), "network"),
                *(Query(mean(metric, CORE, core=True), stage) for stage, metric in _STAGES.items()),
            ],
        )
        .repeat("model")
        .repeat_direction("h")
        .max_per_row(2),
    ]
