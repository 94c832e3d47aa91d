"""bench/stages.py: the time split from two scrapes of both services."""

from __future__ import annotations

import pytest
from stages import STAGES, Totals, histogram_totals, split_ms

GATEWAY = """\
# HELP tandem_gateway_http_request_duration_seconds Time to handle an HTTP request.
# TYPE tandem_gateway_http_request_duration_seconds histogram
tandem_gateway_http_request_duration_seconds_bucket{model="m",route="embeddings",le="+Inf"} {n}
tandem_gateway_http_request_duration_seconds_sum{model="m",route="embeddings"} {http}
tandem_gateway_http_request_duration_seconds_count{model="m",route="embeddings"} {n}
tandem_gateway_http_request_duration_seconds_bucket{model="none",route="healthz",le="+Inf"} 50
tandem_gateway_http_request_duration_seconds_sum{model="none",route="healthz"} 99
tandem_gateway_http_request_duration_seconds_count{model="none",route="healthz"} 50
# HELP tandem_gateway_upstream_call_duration_seconds Duration of calls to the core.
# TYPE tandem_gateway_upstream_call_duration_seconds histogram
tandem_gateway_upstream_call_duration_seconds_bucket{method="Embed",model="m",le="+Inf"} {n}
tandem_gateway_upstream_call_duration_seconds_sum{method="Embed",model="m"} {call}
tandem_gateway_upstream_call_duration_seconds_count{method="Embed",model="m"} {n}
"""

CORE = """\
# HELP tandem_core_request_duration_seconds Time from receiving a request to answering it.
# TYPE tandem_core_request_duration_seconds histogram
tandem_core_request_duration_seconds_bucket{method="Embed",transport="grpc",le="+Inf"} {n}
tandem_core_request_duration_seconds_sum{method="Embed",transport="grpc"} {core}
tandem_core_request_duration_seconds_count{method="Embed",transport="grpc"} {n}
tandem_core_request_duration_seconds_bucket{method="Embed",transport="http",le="+Inf"} 7
tandem_core_request_duration_seconds_sum{method="Embed",transport="http"} 70
tandem_core_request_duration_seconds_count{method="Embed",transport="http"} 7
# HELP tandem_core_queue_wait_seconds Time a request's texts waited in the queue.
# TYPE tandem_core_queue_wait_seconds histogram
tandem_core_queue_wait_seconds_bucket{le="+Inf"} {n}
tandem_core_queue_wait_seconds_sum {queue}
tandem_core_queue_wait_seconds_count {n}
# HELP tandem_core_tokenize_seconds Time to tokenize one request's texts.
# TYPE tandem_core_tokenize_seconds histogram
tandem_core_tokenize_seconds_bucket{le="+Inf"} {n}
tandem_core_tokenize_seconds_sum {tok}
tandem_core_tokenize_seconds_count {n}
"""


def scrape(n: int, **seconds: float) -> dict[str, Totals]:
    """Both services' exposition after ``n`` requests, with these histogram sums."""
    text = GATEWAY + CORE
    for key, value in {"n": n, **seconds}.items():
        text = text.replace("{" + key + "}", repr(value))
    return histogram_totals(text)


def test_only_the_embeddings_series_count() -> None:
    totals = histogram_totals(
        GATEWAY.replace("{n}", "4").replace("{http}", "2.0").replace("{call}", "1.0")
    )

    assert totals["gateway_http"] == Totals(2.0, 4.0)  # not the healthz series
    assert totals["upstream_call"] == Totals(1.0, 4.0)


def test_split_is_nested_means_over_the_step() -> None:
    before = scrape(100, http=5.0, call=4.0, core=3.0, queue=1.0, tok=0.1)
    # 100 more requests: 20 ms at the gateway, 18 ms in the call, 15 ms in the
    # core, of which 6 ms queued and 0.5 ms tokenizing.
    after = scrape(200, http=7.0, call=5.8, core=4.5, queue=1.6, tok=0.15)

    split = split_ms(before, after)

    assert list(split) == list(STAGES)
    assert split == pytest.approx(
        {"gateway": 2.0, "network": 3.0, "queue": 6.0, "tokenization": 0.5, "inference": 8.5}
    )
    assert sum(split.values()) == pytest.approx(20.0)


def test_a_service_that_served_nothing_during_the_step_is_an_error() -> None:
    same = scrape(100, http=5.0, call=4.0, core=3.0, queue=1.0, tok=0.1)

    with pytest.raises(ValueError, match="counted no requests"):
        split_ms(same, same)


def test_a_missing_metric_is_named() -> None:
    after = scrape(100, http=5.0, call=4.0, core=3.0, queue=1.0, tok=0.1)
    del after["tokenization"]

    with pytest.raises(ValueError, match="tandem_core_tokenize_seconds"):
        split_ms({}, after)
