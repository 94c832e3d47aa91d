"""The dashboard as a whole: what every panel and query must hold, so the e2e
suites can evaluate each query and an operator can read each panel."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tandem_dashboard.promql import QUERY_VARIABLES

# $name, ${name}, ${name:format} and [[name]]: every way Grafana spells one.
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
# A vector selector's braces: metric{...} or a bare {...}.
SELECTOR = re.compile(r"([a-zA-Z_:][\w:]*)?\{([^{}]*)\}")
# Values the e2e suites substitute (devkit/src/tandem_devkit/dashboard.py).
SUBSTITUTED = {"namespace": "local", "release": "tandem", "model": ".*", "__rate_interval": "1m"}


def substitute(expr: str) -> str:
    return VARIABLE.sub(lambda m: SUBSTITUTED[next(g for g in m.groups() if g)], expr)


def variables_in(text: str) -> set[str]:
    return {next(g for g in m.groups() if g) for m in VARIABLE.finditer(text)}


def test_every_panel_has_a_query_a_unit_and_a_description(panels: list[dict[str, Any]]) -> None:
    assert len(panels) >= 15
    for panel in panels:
        title = panel["title"]
        assert [t for t in panel.get("targets") or [] if t.get("expr")], title
        assert panel["fieldConfig"]["defaults"].get("unit"), title
        assert len(panel.get("description", "")) > 80, f"{title}: say what to look for"


def test_ids_are_unique_and_ref_ids_unique_per_panel(every_panel: list[dict[str, Any]]) -> None:
    ids = [p["id"] for p in every_panel]
    assert ids == list(range(1, len(ids) + 1))
    for panel in every_panel:
        refs = [t["refId"] for t in panel.get("targets") or []]
        assert len(refs) == len(set(refs)), panel["title"]


def test_panels_fit_the_grid_without_overlapping(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        g = panel["gridPos"]
        assert g["x"] >= 0, panel["title"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_queries_use_only_the_variables_the_e2e_suites_substitute(
    exprs: list[tuple[str, str]],
) -> None:
    assert set(SUBSTITUTED) == QUERY_VARIABLES
    for title, expr in exprs:
        assert variables_in(expr) <= QUERY_VARIABLES, (title, expr)


def test_every_selector_names_the_release_and_its_component(exprs: list[tuple[str, str]]) -> None:
    for title, expr in exprs:
        selectors = SELECTOR.findall(expr)
        assert selectors, (title, expr)
        for metric, labels in selectors:
            assert 'namespace="$namespace"' in labels, (title, metric)
            assert 'release="$release"' in labels, (title, metric)
            if metric.startswith("tandem_core_"):
                assert 'component="core"' in labels, (title, metric)
            if metric.startswith("tandem_gateway_"):
                assert 'component="gateway"' in labels, (title, metric)


def test_core_series_are_joined_to_their_model(exprs: list[tuple[str, str]]) -> None:
    for title, expr in exprs:
        core = {m for m, _ in SELECTOR.findall(expr) if m.startswith("tandem_core_")}
        if core - {"tandem_core_model_info"}:
            assert "* on (instance) group_left (model_id) tandem_core_model_info{" in expr, title


def test_gateway_series_with_a_model_label_select_the_model(exprs: list[tuple[str, str]]) -> None:
    with_model = (
        "tandem_gateway_http_request",
        "tandem_gateway_upstream_",
    )
    for title, expr in exprs:
        for metric, labels in SELECTOR.findall(expr):
            if metric.startswith(with_model):
                assert 'model=~"$model' in labels, (title, metric)


def test_rates_use_the_rate_interval(exprs: list[tuple[str, str]]) -> None:
    for title, expr in exprs:
        for window in re.findall(r"\b(?:rate|increase)\([^()]*\[([^\]]+)\]", expr):
            assert window == "$__rate_interval", (title, expr)


def test_variables(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert list(variables) == ["datasource", "namespace", "release", "model"]
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["model"]["multi"]
    assert variables["model"]["includeAll"]
    assert variables["model"]["allValue"] == ".*"
    # Each list depends only on the variables before it.
    earlier: set[str] = set()
    for name in ("namespace", "release", "model"):
        query = variables[name]["query"]
        assert query.startswith("label_values(tandem_gateway_"), name
        assert variables_in(query) <= earlier, name
        earlier.add(name)


def test_every_target_reads_the_datasource_variable(panels: list[dict[str, Any]]) -> None:
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]


def test_promtool_parses_every_query(exprs: list[tuple[str, str]], tmp_path: Path) -> None:
    promtool = os.environ.get("PROMTOOL")
    if not promtool:
        pytest.fail("set PROMTOOL to the promtool binary (make test-dashboard does)")
    rules = [
        {"record": f"dashboard:query{i}", "expr": substitute(expr)}
        for i, (_, expr) in enumerate(exprs)
    ]
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
