"""Write Tandem's Grafana dashboard (make dashboard).

    python observability/dashboard/generate.py --output deploy/helm/tandem/dashboards/tandem.json

The output is deterministic (sorted keys, two-space indent, a final newline),
so `make dashboard-check` can regenerate it and compare byte for byte.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from tandem_dashboard import build


def render() -> str:
    return JSONEncoder(sort_keys=True, indent=2).encode(build()) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True, help="the JSON file to write")
    args = parser.parse_args(argv)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
