"""Traffic: what clients asked for and what they got, at the gateway."""

from __future__ import annotations

from grafana_foundation_sdk.builders.timeseries import Panel

from tandem_dashboard.panels import HALF, Query, timeseries_panel
from tandem_dashboard.promql import (
    CORE,
    EMBEDDINGS,
    EMBEDDINGS_ANY_MODEL,
    GATEWAY,
    core_by_model,
    quantile,
    rate,
    zero_when_absent,
)

TITLE = "Traffic (gateway)"

_REQUESTS = "tandem_gateway_http_requests_total"
_DURATION = "tandem_gateway_http_request_duration_seconds"
_LIMITER = "tandem_gateway_limiter_rejections_total"
_ADMISSION = "tandem_core_admission_refused_requests_total"
_CORE_REQUESTS = "tandem_core_requests_total"


def _requests_with_code(code: str) -> Query:
    with_code = f'{EMBEDDINGS_ANY_MODEL}, code="{code}"'
    return Query(
        zero_when_absent(
            f"sum by (model) ({rate(_REQUESTS, with_code)})",
            f"sum by (model) ({rate(_REQUESTS, EMBEDDINGS_ANY_MODEL)})",
            on="model",
        ),
        f"{{{{model}}}} {code}",
    )


def panels() -> list[Panel]:
    return [
        timeseries_panel(
            "Requests by outcome",
            unit="reqps",
            width=HALF,
            description=(
                'Embeddings requests per second at the gateway, by model and outcome: "ok" or the '
                'error code the client received (its reason). Model "none" holds requests refused '
                "before their model was read (authentication, rate and in-flight limits, malformed "
                'JSON); "unknown" those naming a model no pool serves. Look for error outcomes '
                "growing as a share of ok."
            ),
            queries=[
                Query(
                    f"sum by (model, outcome) ({rate(_REQUESTS, EMBEDDINGS_ANY_MODEL)})",
                    "{{model}} {{outcome}}",
                )
            ],
        ),
        timeseries_panel(
            "Latency through the gateway (p50, p90, p99)",
            unit="s",
            width=HALF,
            description=(
                "Time from the gateway receiving an embeddings request to its answer, per model, "
                "from the histogram's buckets (a quantile is only as fine as the bucket it falls "
                "in). Look for p99 drifting away from p50: requests are waiting for each other "
                "(see the queue row). Compare p99 with your latency target. With tracing on, "
                "the dots are exemplars: each links a slow bucket to one request's trace."
            ),
            exemplars=True,
            queries=[
                Query(
                    quantile(q, rate(_DURATION + "_bucket", EMBEDDINGS), "model"),
                    f"{{{{model}}}} p{round(q * 100)}",
                )
                for q in (0.5, 0.9, 0.99)
            ],
        ),
        timeseries_panel(
            "Overload and failure answers (429, 503, 504)",
            unit="reqps",
            width=HALF,
            description=(
                "Embeddings requests answered 429 (a limit refused them: the gateway's rate or "
                "in-flight limit, or the core's admission, see the Refusals panel), 503 (no core "
                "could take the call) or 504 (the deadline passed), per second and model; 0 while "
                "requests flow and none failed. Sustained 429s mean too few cores for the load "
                "(scale out); 503s mean a pool has no ready core; 504s mean the queue is longer "
                "than the deadline."
            ),
            queries=[_requests_with_code(code) for code in ("429", "503", "504")],
        ),
        timeseries_panel(
            "Refusals by reason",
            unit="reqps",
            width=HALF,
            description=(
                "Requests refused before any work, per second: by the gateway's limiters (rate: a "
                "client over its request rate; in_flight: the gateway's concurrency bound) and by "
                "each model's cores at admission (requests_in_flight, bytes_in_flight, deadline: "
                "the queue ahead would outlast the request's deadline). Deadline refusals are the "
                "early sign of too few cores; limiter refusals are clients above their quota."
            ),
            queries=[
                Query(
                    zero_when_absent(
                        f"sum by (limiter) ({rate(_LIMITER, GATEWAY)})",
                        f"sum({rate(_REQUESTS, EMBEDDINGS_ANY_MODEL)})",
                        on="",
                    ),
                    "gateway {{limiter}}",
                ),
                Query(
                    zero_when_absent(
                        f"sum by (model_id, reason) ({core_by_model(rate(_ADMISSION, CORE))})",
                        f"sum by (model_id) ({core_by_model(rate(_CORE_REQUESTS, CORE))})",
                        on="model_id",
                    ),
                    "core {{model_id}} {{reason}}",
                ),
            ],
        ),
    ]
