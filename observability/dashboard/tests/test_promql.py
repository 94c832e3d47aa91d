"""The query building blocks: the label scheme and the shapes every panel reuses."""

from __future__ import annotations

import re

from tandem_dashboard.promql import (
    CORE,
    EMBEDDINGS,
    GATEWAY,
    MODEL_INFO,
    core_by_model,
    mean,
    quantile,
    rate,
    zero_when_absent,
)


def test_selectors_follow_the_label_scheme() -> None:
    assert GATEWAY == 'namespace="$namespace", release="$release", component="gateway"'
    assert CORE == 'namespace="$namespace", release="$release", component="core"'
    assert EMBEDDINGS.startswith(GATEWAY)
    assert 'route="embeddings"' in EMBEDDINGS
    assert 'model=~"$model"' in EMBEDDINGS


def test_model_info_matches_the_gateways_model_name_with_or_without_organisation() -> None:
    # The regex Prometheus would run once Grafana substitutes one model.
    pattern = re.search(r'model_id=~"([^"]+)"', MODEL_INFO)
    assert pattern is not None
    regex = pattern.group(1).replace("$model", "all-MiniLM-L6-v2")
    assert re.fullmatch(regex, "sentence-transformers/all-MiniLM-L6-v2")
    assert re.fullmatch(regex, "all-MiniLM-L6-v2")
    assert not re.fullmatch(regex, "sentence-transformers/all-MiniLM-L6-v2-int8")
    assert not re.fullmatch(regex, "other/xall-MiniLM-L6-v2")


def test_rate_uses_grafanas_rate_interval() -> None:
    assert rate("x_total", CORE) == f"rate(x_total{{{CORE}}}[$__rate_interval])"


def test_core_by_model_joins_on_the_target() -> None:
    assert core_by_model("up") == f"(up) * on (instance) group_left (model_id) {MODEL_INFO}"


def test_mean_is_the_sum_rate_over_the_count_rate() -> None:
    expr = mean("h_seconds", GATEWAY, "model")
    numerator, denominator = expr.split("\n/\n")
    assert numerator == f"sum by (model) ({rate('h_seconds_sum', GATEWAY)})"
    assert denominator == f"sum by (model) ({rate('h_seconds_count', GATEWAY)})"
    assert mean("h_seconds", GATEWAY).startswith(f"sum ({rate('h_seconds_sum', GATEWAY)})")
    core = mean("h_seconds", CORE, "model_id", core=True)
    assert core.count("group_left (model_id)") == 2


def test_quantile_keeps_le() -> None:
    assert quantile(0.99, "r", "model") == "histogram_quantile(0.99, sum by (model, le) (r))"


def test_zero_when_absent_falls_back_per_group() -> None:
    assert zero_when_absent("a", "b", "model") == "a\nor on (model)\n0 * b"
