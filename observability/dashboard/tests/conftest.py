"""The generated dashboard, as the JSON the chart ships and the e2e suites
read (panels[].targets[].expr, rows' panels included)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from generate import render


def walk(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from walk(panel.get("panels") or [])


@pytest.fixture(scope="session")
def dashboard() -> dict[str, Any]:
    return dict(json.loads(render()))


@pytest.fixture(scope="session")
def every_panel(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows and the panels they hold included, in order."""
    return list(walk(dashboard["panels"]))


@pytest.fixture(scope="session")
def panels(every_panel: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every panel that is not a row."""
    return [p for p in every_panel if p["type"] != "row"]


@pytest.fixture(scope="session")
def exprs(panels: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(panel title, expression) of every target."""
    return [(p["title"], t["expr"]) for p in panels for t in p.get("targets") or []]
