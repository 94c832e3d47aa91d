"""Panel and query constructors: every panel names its unit and says in its
description what to look for, and every query reads the dashboard's
Prometheus data source variable."""

from __future__ import annotations

from dataclasses import dataclass

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import prometheus, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import DataSourceRef

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")

# Grid: 24 columns; panels are 8 high, three or two to a row.
HEIGHT = 8
THIRD = 8
HALF = 12


@dataclass(frozen=True)
class Query:
    """One target: a PromQL expression and the legend of its series."""

    expr: str
    legend: str


def _target(query: Query, ref_id: str, exemplars: bool) -> prometheus.Dataquery:
    return (
        prometheus.Dataquery()
        .datasource(DATASOURCE)
        .expr(query.expr)
        .legend_format(query.legend)
        .ref_id(ref_id)
        .range()
        .exemplar(exemplars)
    )


def timeseries_panel(
    title: str,
    *,
    unit: str,
    description: str,
    queries: list[Query],
    width: int = THIRD,
    stacked: bool = False,
    exemplars: bool = False,
) -> timeseries.Panel:
    """A time series panel with one target per query (refIds A, B, ...).

    stacked draws the series on top of each other, for parts of a whole (the
    time split); otherwise each is its own line from zero. exemplars asks
    Prometheus for the histogram's exemplars too: Grafana draws each as a dot
    whose trace_id links to the request's trace.
    """
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .min(0)
        .height(HEIGHT)
        .span(width)
        .fill_opacity(60 if stacked else 10)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(
                common.LegendDisplayMode.TABLE if stacked else common.LegendDisplayMode.LIST
            )
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    for i, query in enumerate(queries):
        panel = panel.with_target(_target(query, chr(ord("A") + i), exemplars))
    return panel
