"""Tandem's Grafana dashboard as code (docs/observability.md, "Dashboard").

generate.py writes deploy/helm/tandem/dashboards/tandem.json from build();
each row of panels is a module of rows/, and every query is built from the
selectors in promql.py, so a panel cannot forget the label scheme.
"""

from tandem_dashboard.dashboard import build

__all__ = ["build"]
