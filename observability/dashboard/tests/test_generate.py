"""generate.py: the output make dashboard-check compares byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard as DashboardModel

from generate import main, render

CHECKED_IN = Path(__file__).resolve().parents[3] / "deploy/helm/tandem/dashboards/tandem.json"


def test_output_is_deterministic_sorted_and_ends_with_a_newline() -> None:
    first, second = render(), render()
    assert first == second
    assert first.endswith("}\n")
    assert first == json.dumps(json.loads(first), sort_keys=True, indent=2) + "\n"


def test_main_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "tandem.json"
    assert main(["--output", str(out)]) == 0
    assert out.read_text() == render()


def test_the_checked_in_dashboard_is_current() -> None:
    assert CHECKED_IN.read_text() == render(), "run make dashboard"


def test_the_json_decodes_back_into_the_sdks_dashboard_model() -> None:
    """What Grafana's schema (as the SDK models it) reads is what was written:
    no field the encoder emitted is unknown to the model, none is lost."""
    register_default_plugins()
    text = render()
    decoded = DashboardModel.from_json(json.loads(text))
    assert decoded.schema_version == 41  # Grafana 11.6
    assert JSONEncoder(sort_keys=True, indent=2).encode(decoded) + "\n" == text
