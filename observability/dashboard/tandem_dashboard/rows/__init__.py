"""One module per row of the dashboard, in the order they appear. Each
exposes TITLE and panels(); add a row for your own model's metrics the same
way (docs/observability.md, "Dashboard")."""
