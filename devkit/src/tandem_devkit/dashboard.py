"""The dashboard's queries, ready to send to Prometheus: every panel's target
expressions, with the dashboard's variables substituted.

The e2e and Kubernetes suites evaluate each one against a real Prometheus, so
a panel whose metric was renamed, or whose query does not parse, fails the
build instead of showing "No data" to an operator. The dashboard JSON is the
checked-in one the chart ships (deploy/helm/tandem/dashboards/).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]  # devkit/src/tandem_devkit/dashboard.py
DASHBOARD = REPO / "deploy" / "helm" / "tandem" / "dashboards" / "tandem.json"

# Grafana's built-in interval variables, as a test fixes them: windows long
# enough to hold several scrapes at the suites' scrape intervals.
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m"}

# $name, ${name} and ${name:format}, and the deprecated [[name]].
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


@dataclass(frozen=True)
class PanelQuery:
    """One target of one panel."""

    panel: str  # the panel's title
    ref_id: str
    expr: str  # as written in the dashboard, variables unsubstituted

    def substituted(self, variables: Mapping[str, str]) -> str:
        """expr with each variable replaced; an unknown one raises KeyError."""
        values = {**BUILTINS, **variables}

        def replace(match: re.Match[str]) -> str:
            name = next(group for group in match.groups() if group)
            if name not in values:
                raise KeyError(f"panel {self.panel!r} uses ${name}, which the test does not set")
            return values[name]

        return _VARIABLE.sub(replace, self.expr)


def load(path: Path = DASHBOARD) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        # A collapsed row keeps its panels inside it.
        yield from _panels(panel.get("panels") or [])


def panel_queries(dashboard: Mapping[str, Any]) -> list[PanelQuery]:
    """Every Prometheus target expression of every panel, rows included."""
    queries = []
    for panel in _panels(list(dashboard.get("panels") or [])):
        for target in panel.get("targets") or []:
            expr = target.get("expr")
            if expr:
                queries.append(PanelQuery(panel.get("title", "?"), target.get("refId", "?"), expr))
    return queries


def variable_queries(dashboard: Mapping[str, Any]) -> dict[str, str]:
    """The query of each query-type template variable (label_values(...) and the like)."""
    out = {}
    for variable in (dashboard.get("templating") or {}).get("list") or []:
        if variable.get("type") == "query":
            query = variable.get("query")
            out[variable["name"]] = query.get("query", "") if isinstance(query, dict) else query
    return out


_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<selector>.+),\s*)?(?P<label>\w+)\s*\)\s*$")


def label_values_promql(query: str) -> str:
    """Grafana's label_values(selector, label) as the PromQL whose result
    holds those values: `group by (label) (selector)`; other queries as they are."""
    match = _LABEL_VALUES.match(query)
    if match is None:
        return query
    selector = match.group("selector") or "{__name__=~'.+'}"
    return f"group by ({match.group('label')}) ({selector})"


# A metric name as a selector uses it: followed by its label matchers or a range.
_SELECTED_METRIC = re.compile(r"(?<![\w:\"])([a-zA-Z_][a-zA-Z0-9_]*)\s*(?=\{|\[)")
# Words before "{" or "[" that are not metrics: aggregation clauses and the like.
_NOT_METRICS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})


def referenced_metrics(expr: str) -> set[str]:
    """The metric names expr selects (recording rules, with a colon, excluded):
    a query can return data although one of them is gone (`a or on () 0 * b`),
    so each must also have series of its own."""
    return {name for name in _SELECTED_METRIC.findall(expr) if name not in _NOT_METRICS}


def missing_metrics(query: Callable[[str], list[dict[str, Any]]], expr: str) -> list[str]:
    """The metrics expr selects that have no series in Prometheus now."""
    return sorted(m for m in referenced_metrics(expr) if not query(f"group({m})"))


def unanswered_panels(
    query: Callable[[str], list[dict[str, Any]]],
    variables: Mapping[str, str],
    dashboard: Mapping[str, Any] | None = None,
) -> tuple[list[str], list[str]]:
    """Every panel query evaluated with query(expr): (refused, empty), each a
    list of "panel [refId]: reason" lines; both empty when every query parses,
    returns data, and every metric it selects has series."""
    refused, empty = [], []
    for panel_query in panel_queries(dashboard if dashboard is not None else load()):
        expr = panel_query.substituted(variables)
        where = f"{panel_query.panel} [{panel_query.ref_id}]"
        try:
            result = query(expr)
        except RuntimeError as err:  # PrometheusError
            refused.append(f"{where}: {err}")
            continue
        gone = missing_metrics(query, expr)
        if not result or gone:
            empty.append(
                f"{where}: {expr}" + (f" (no series of {', '.join(gone)})" if gone else "")
            )
    return refused, empty
