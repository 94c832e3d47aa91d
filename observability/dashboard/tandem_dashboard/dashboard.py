"""The whole dashboard: its variables, then each row of panels in order."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync

from tandem_dashboard.rows import batching, pods, queue, time_split, traffic
from tandem_dashboard.variables import variables

UID = "tandem"
ROWS: tuple[ModuleType, ...] = (traffic, time_split, batching, queue, pods)


def build() -> model.Dashboard:
    builder = (
        dashboard.Dashboard("Tandem")
        .uid(UID)
        .description(
            "Tandem's gateway and cores: traffic, where the time goes, batching, capacity, pods."
        )
        .tags(["tandem", "generated"])
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .time("now-1h", "now")
        .refresh("30s")
        .variables(list(variables()))
    )
    for row in ROWS:
        builder = builder.with_row(dashboard.Row(row.TITLE))
        for panel in row.panels():
            builder = builder.with_panel(panel)
    board = builder.build()
    # Stable ids in the order panels appear: Grafana links to a panel by id
    # (viewPanel=N), so a link survives regeneration unless panels move.
    for number, panel in enumerate(walk(board.panels or []), start=1):
        panel.id_val = number
    return board


def walk(panels: list[model.Panel | model.RowPanel]) -> Iterator[model.Panel | model.RowPanel]:
    """Every panel, rows first and then the panels a collapsed row holds."""
    for panel in panels:
        yield panel
        if isinstance(panel, model.RowPanel):
            yield from walk(list(panel.panels))
