"""The chart's alert rules as a Prometheus rule file.

The PrometheusRule the chart renders (prometheusRule.enabled) is the one
source of the rules: promtool checks and unit-tests this file in make test,
and the e2e suites load it into a real Prometheus. Rendering goes through helm
itself, so the values flow into the expressions exactly as they would in a
cluster.

    python -m tandem_devkit.chart_rules --helm .tools/bin/helm --out rules.yaml
"""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]  # devkit/src/tandem_devkit/chart_rules.py
CHART = REPO / "deploy" / "helm" / "tandem"
TEMPLATE = "templates/prometheusrule.yaml"


def render_groups(
    helm: Path,
    *,
    namespace: str,
    release: str,
    chart: Path = CHART,
    set_values: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """spec.groups of the chart's PrometheusRule for this release."""
    argv = [
        str(helm), "template", release, str(chart),
        "--namespace", namespace,
        "--show-only", TEMPLATE,
        "--set", "prometheusRule.enabled=true",
    ]  # fmt: skip
    for value in set_values:
        argv += ["--set", value]
    rendered = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    groups: list[dict[str, Any]] = []
    for document in yaml.safe_load_all(rendered):
        if document and document.get("kind") == "PrometheusRule":
            groups += document["spec"]["groups"]
    if not groups:
        raise ValueError(f"{chart}: {TEMPLATE} rendered no rule groups")
    return groups


def write_rule_file(groups: list[dict[str, Any]], path: Path) -> Path:
    """A rule file Prometheus and promtool read (JSON is YAML)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"groups": groups}, indent=2) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--helm", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--namespace", default="local")
    parser.add_argument("--release", default="tandem")
    parser.add_argument("--set", dest="set_values", action="append", default=[])
    args = parser.parse_args(argv)
    groups = render_groups(
        args.helm, namespace=args.namespace, release=args.release, set_values=args.set_values
    )
    write_rule_file(groups, args.out)
    print(f"wrote {args.out}: {sum(len(g['rules']) for g in groups)} rules in {len(groups)} groups")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
