"""The PromQL building blocks every panel shares.

Every query selects Tandem's series by the labels docs/observability.md
defines (namespace, release, component); the dashboard's variables fill them.
A core's series carry no model label: they get the model by joining
tandem_core_model_info on the scrape target (instance). The gateway's
request series carry `model`: the routed pool's configured id, "none" for a
request refused before its model was read, "unknown" for a model no pool
serves.
"""

from __future__ import annotations

# The only variables a query may use. The e2e suites substitute exactly these
# before sending each panel's queries to a real Prometheus.
QUERY_VARIABLES = frozenset({"namespace", "release", "model", "__rate_interval"})

RELEASE = 'namespace="$namespace", release="$release"'
GATEWAY = f'{RELEASE}, component="gateway"'
CORE = f'{RELEASE}, component="core"'

# The gateway's embeddings requests of the selected models.
EMBEDDINGS = f'{GATEWAY}, route="embeddings", model=~"$model"'
# The same, plus those no model can be named for: refused before the body was
# read (authentication, rate and in-flight limits, malformed JSON) or naming a
# model no pool serves. Error panels keep them: they are most of the 429s.
EMBEDDINGS_ANY_MODEL = f'{GATEWAY}, route="embeddings", model=~"$model|none|unknown"'

# The gateway names a pool by the configured model id, which the chart and the
# local stack derive from the core's model id without its organisation prefix
# ("all-MiniLM-L6-v2-int8" for "sentence-transformers/all-MiniLM-L6-v2-int8"),
# so the same $model selects both. A pool configured with a modelId of its own
# (values.yaml models[].modelId) shows in the gateway's panels only.
MODEL_INFO = f'tandem_core_model_info{{{CORE}, model_id=~"(.+/)?$model"}}'


def rate(metric: str, selector: str) -> str:
    """The per-second rate of a counter (or histogram part) over Grafana's rate
    interval, which is at least four scrapes, so a missed scrape leaves a value."""
    return f"rate({metric}{{{selector}}}[$__rate_interval])"


def core_by_model(expr: str) -> str:
    """A per-target core expression with the target's model_id attached (and
    only the targets of the selected models kept): the join the label scheme
    prescribes, many core series to one model_info series per target."""
    return f"({expr}) * on (instance) group_left (model_id) {MODEL_INFO}"


def ratio(numerator: str, denominator: str) -> str:
    return f"{numerator}\n/\n{denominator}"


def mean(metric: str, selector: str, by: str = "", *, core: bool = False) -> str:
    """The mean observation of a histogram (metric without _sum/_count) per
    `by` (empty: over everything selected): the rate of its sum over the rate
    of its count. core=True joins each core's series to its model first."""

    total = f"sum by ({by})" if by else "sum"

    def part(suffix: str) -> str:
        r = rate(metric + suffix, selector)
        return f"{total} ({core_by_model(r) if core else r})"

    return ratio(part("_sum"), part("_count"))


def quantile(q: float, bucket_rates: str, by: str) -> str:
    """histogram_quantile over bucket rates summed per `by` (le is added)."""
    return f"histogram_quantile({q}, sum by ({by}, le) ({bucket_rates}))"


def zero_when_absent(expr: str, base: str, on: str) -> str:
    """expr, or 0 for each `on` group that has traffic (base) but no series in
    expr: a panel of rare events (errors, refusals) then draws a 0 line rather
    than "No data", which would read as a broken query. With no traffic at all
    it still shows nothing, and a renamed metric still empties it."""
    return f"{expr}\nor on ({on})\n0 * {base}"
