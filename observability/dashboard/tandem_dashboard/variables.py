"""The dashboard's variables: which Prometheus, which release, which models.

Each list comes from a label_values query over a series the gateway always
exports, so the choices are exactly the releases and models being scraped.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models.dashboard import VariableOption, VariableRefresh, VariableSort

from tandem_dashboard.panels import DATASOURCE
from tandem_dashboard.promql import GATEWAY

# Exported by every gateway from its start, whatever its traffic.
_ALWAYS = "tandem_gateway_http_requests_in_flight"


def _query(name: str, label: str, query: str, description: str) -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .description(description)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
    )


def variables() -> list[dashboard.DatasourceVariable | dashboard.QueryVariable]:
    return [
        dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        _query(
            "namespace",
            "Namespace",
            f"label_values({_ALWAYS}, namespace)",
            'The Kubernetes namespace of the release ("local" for make run OBSERVE=1).',
        ),
        _query(
            "release",
            "Release",
            f'label_values({_ALWAYS}{{namespace="$namespace"}}, release)',
            'The Helm release name ("tandem" locally).',
        ),
        _query(
            "model",
            "Model",
            f"label_values(tandem_gateway_upstream_ready{{{GATEWAY}}}, model)",
            "The models the gateway routes to (one core pool each), by the id clients send.",
        )
        .multi(True)
        .include_all(True)
        # All, as a regex: every model, including ones added after the
        # dashboard was loaded.
        .all_value(".*")
        .current(VariableOption(selected=True, text=["All"], value=["$__all"])),
    ]
